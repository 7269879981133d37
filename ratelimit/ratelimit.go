// Package ratelimit limits requests per client address (an IPv4 address, or
// an IPv6 /64, since one subscriber usually holds a whole /64) with token
// buckets kept in a fixed-size table: memory is bounded whatever the number
// of clients, and a lookup is a hash, a lock and a few compares.
//
// The table is set-associative: a client maps to one set of ways slots;
// when all are taken the least recently used slot is given to the newcomer.
// A flood from many addresses therefore evicts other clients' buckets,
// which then start full again: under pressure the limiter fails open for
// everyone but the addresses that keep hammering, which is the point.
package ratelimit

import (
	"fmt"
	"hash/maphash"
	"net/netip"
	"sync"
	"time"
)

const ways = 4

// DefaultRate and DefaultBurst are the limit herald applies unless told
// otherwise (tracker.rate_limit, tracker.rate_burst): far above what any
// client needs (one announce per torrent per interval), far below a flood.
const (
	DefaultRate  = 50
	DefaultBurst = 500
)

// Config sets the limit per client.
type Config struct {
	// Rate is the sustained requests per second a client may make.
	Rate float64
	// Burst is how many requests a client may make at once.
	Burst int
	// Clients is roughly how many clients are tracked at once; rounded
	// up to a power of two. Each costs 24 bytes. Default 65536.
	Clients int
}

// Limiter is safe for concurrent use.
type Limiter struct {
	rate  float64 // tokens per millisecond
	burst float32
	seed  maphash.Seed
	sets  []set
	mask  uint64
	epoch time.Time
}

type set struct {
	mu    sync.Mutex
	slots [ways]slot
}

type slot struct {
	key uint64 // hash of the client; 0 means empty
	// last is the time of the last refill in milliseconds since epoch; 64
	// bits do not wrap, and a reading before epoch (UDP's whole seconds)
	// is simply negative.
	last   int64
	tokens float32 // guarded by the set's mu
}

// New returns a limiter, or an error for a config that limits nothing.
func New(cfg Config) (*Limiter, error) {
	if cfg.Rate <= 0 || cfg.Burst < 1 {
		return nil, fmt.Errorf("ratelimit: rate %v and burst %d must be positive", cfg.Rate, cfg.Burst)
	}
	if cfg.Clients == 0 {
		cfg.Clients = 65536
	}
	n := 1
	for n*ways < cfg.Clients {
		n <<= 1
	}
	return &Limiter{
		rate:  cfg.Rate / 1000,
		burst: float32(cfg.Burst),
		seed:  maphash.MakeSeed(), // random per process: clients cannot aim at one set
		sets:  make([]set, n),
		mask:  uint64(n - 1),
		epoch: time.Now(),
	}, nil
}

// Key returns the part of addr that identifies a client: the IPv4
// address, or the /64 of an IPv6 one.
func Key(addr netip.Addr) [8]byte {
	var k [8]byte
	addr = addr.Unmap()
	if addr.Is4() {
		a := addr.As4()
		copy(k[:], a[:])
		k[7] = 4 // keep IPv4 keys apart from IPv6 prefixes
		return k
	}
	a := addr.As16()
	copy(k[:], a[:8])
	return k
}

// Allow takes one token from addr's bucket at time now and reports whether
// there was one.
func (l *Limiter) Allow(addr netip.Addr, now time.Time) bool {
	k := Key(addr)
	h := maphash.Bytes(l.seed, k[:]) | 1 // never 0, the empty mark
	s := &l.sets[(h>>32)&l.mask]
	ms := int64(now.Sub(l.epoch) / time.Millisecond)

	s.mu.Lock()
	victim := 0
	for i := range s.slots {
		sl := &s.slots[i]
		if sl.key == h {
			// Clock readings from several goroutines arrive out of order.
			elapsed := max(ms-sl.last, 0)
			sl.tokens = min(l.burst, sl.tokens+float32(float64(elapsed)*l.rate))
			sl.last = max(sl.last, ms)
			ok := sl.tokens >= 1
			if ok {
				sl.tokens--
			}
			s.mu.Unlock()
			return ok
		}
		if sl.key == 0 || (s.slots[victim].key != 0 && sl.last < s.slots[victim].last) {
			victim = i
		}
	}
	s.slots[victim] = slot{key: h, tokens: l.burst - 1, last: ms}
	s.mu.Unlock()
	return true
}
