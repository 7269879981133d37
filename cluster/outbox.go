package cluster

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"herald/swarm"
)

// outbox collects this node's announces into batches for the publisher. It
// is the store's sink, so Add runs on every announce, from every frontend
// goroutine: it copies one record into the current batch under a short lock
// and never blocks or allocates once its buffers exist.
//
// Sealed batches wait in a ring until published. The ring holds at most
// BufferBytes/BatchBytes batches; a batch sealed into a full ring pushes out
// the oldest, whose records are counted as dropped. Each batch is numbered
// when sealed, so receivers see a dropped batch as a gap and fetch this
// node's state instead.
type outbox struct {
	node       uint64
	batchBytes int
	epoch      time.Time
	seed       maphash.Seed
	kick       chan struct{} // a batch is ready; capacity 1

	// republish is the least time between two publications of a plain
	// refresh, in nanoseconds; 0 until the node runs.
	republish atomic.Int64
	// clock is nanoseconds since epoch, moved by the publisher every flush
	// interval: reading the time on every announce would cost more than
	// the rest of Add, and the window it serves is minutes long.
	clock atomic.Int64

	mu      sync.Mutex
	seq     uint32 // last number given to a batch; guarded by mu
	cur     []byte // batch being filled, header included; guarded by mu
	curRecs int    // guarded by mu
	ring    []batch
	head, n int      // ring[head] is the oldest of n sealed batches; guarded by mu
	free    [][]byte // guarded by mu
	recent  []recentEntry

	suppressed, dropped atomic.Uint64
}

type batch struct {
	buf     []byte
	records int
}

// recentEntry remembers when a peer was last put in a batch, in a lossy
// direct-mapped table: a collision forgets an entry, which only costs an
// extra publication.
type recentEntry struct {
	key uint64 // hash of info hash and address, see Add; 0 = empty
	at  int64  // nanoseconds since epoch
}

// recentSlots is the size of the table of recently published peers: 1 MiB.
const recentSlots = 1 << 16

func newOutbox(node uint64, batchBytes, bufferBytes int) *outbox {
	o := &outbox{
		node:       node,
		batchBytes: batchBytes,
		epoch:      time.Now(),
		seed:       maphash.MakeSeed(),
		kick:       make(chan struct{}, 1),
		ring:       make([]batch, max(1, bufferBytes/batchBytes)),
		recent:     make([]recentEntry, recentSlots),
	}
	o.cur = o.newBuf()
	return o
}

// newBuf returns an empty batch buffer with room for the header; mu held or
// not yet shared.
func (o *outbox) newBuf() []byte {
	var b []byte
	if k := len(o.free); k > 0 {
		b, o.free = o.free[k-1][:0], o.free[:k-1]
	} else {
		b = make([]byte, 0, o.batchBytes)
	}
	return append(b, make([]byte, HeaderLen)...)
}

// Add queues a, unless it is a refresh of a peer published recently.
func (o *outbox) Add(a *swarm.Announce) {
	var rb [RecordLen6]byte
	rec := AppendRecord(rb[:0], a)
	// Bit 0 of the key is the seeder state, bit 1 is always set so that no
	// key is 0 (the empty slot); the rest identifies the peer.
	key := maphash.Bytes(o.seed, rec[1:])&^3 | 2
	if a.Seeder() {
		key |= 1
	}
	now := o.clock.Load()
	window := o.republish.Load()

	o.mu.Lock()
	e := &o.recent[key>>2&(recentSlots-1)]
	switch {
	case a.Event == swarm.EventStopped:
		if e.key>>1 == key>>1 {
			e.key = 0
		}
	case a.Event == swarm.EventNone && e.key == key && now-e.at < window:
		o.mu.Unlock()
		o.suppressed.Add(1)
		return
	default:
		e.key, e.at = key, now
	}
	if len(o.cur)+len(rec) > o.batchBytes {
		o.sealLocked()
	}
	o.cur = append(o.cur, rec...)
	o.curRecs++
	o.mu.Unlock()
}

// sealLocked numbers the current batch, queues it, dropping the oldest if
// the ring is full, and starts a new one; mu held.
func (o *outbox) sealLocked() {
	o.seq++
	AppendHeader(o.cur[:0], Header{Kind: KindAnnounces, Node: o.node, Seq: o.seq})
	if o.n == len(o.ring) {
		old := o.ring[o.head]
		o.dropped.Add(uint64(old.records))
		o.free = append(o.free, old.buf)
		o.head = (o.head + 1) % len(o.ring)
		o.n--
	}
	o.ring[(o.head+o.n)%len(o.ring)] = batch{buf: o.cur, records: o.curRecs}
	o.n++
	o.cur, o.curRecs = o.newBuf(), 0
	select {
	case o.kick <- struct{}{}:
	default:
	}
}

// Tick moves the clock Add reads.
func (o *outbox) Tick() { o.clock.Store(int64(time.Since(o.epoch))) }

// Seal queues the current batch if it holds records, or an empty one (a
// heartbeat) if heartbeat is set and nothing is queued.
func (o *outbox) Seal(heartbeat bool) {
	o.mu.Lock()
	if o.curRecs > 0 || heartbeat && o.n == 0 {
		o.sealLocked()
	}
	o.mu.Unlock()
}

// Next takes the oldest sealed batch; ok is false when there is none.
func (o *outbox) Next() (b batch, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.n == 0 {
		return batch{}, false
	}
	b = o.ring[o.head]
	o.ring[o.head] = batch{}
	o.head = (o.head + 1) % len(o.ring)
	o.n--
	return b, true
}

// Requeue puts back a batch that could not be published, as the oldest; if
// newer batches filled the ring meanwhile, it is dropped instead.
func (o *outbox) Requeue(b batch) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.n == len(o.ring) {
		o.dropped.Add(uint64(b.records))
		o.free = append(o.free, b.buf)
		return
	}
	o.head = (o.head + len(o.ring) - 1) % len(o.ring)
	o.ring[o.head] = b
	o.n++
}

// Done recycles a published batch's buffer.
func (o *outbox) Done(b batch) {
	o.mu.Lock()
	if len(o.free) < len(o.ring)+1 {
		o.free = append(o.free, b.buf)
	}
	o.mu.Unlock()
}

// Queued returns the number of sealed batches waiting.
func (o *outbox) Queued() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n
}
