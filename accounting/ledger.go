// Package accounting keeps per-key accounting for a private tracker
// (access.keys): for each member's key, the announces it made, the
// torrents it is active in, and the sums of what its clients reported
// uploading and downloading, the figures private trackers compute ratios
// from.
//
// # What is counted
//
// A client reports in each announce the bytes it uploaded and downloaded
// since it started the torrent (BEP 3's uploaded and downloaded). The
// ledger remembers, per key, torrent and peer id, the figures of the
// peer's last announce, and adds to the key's sums the difference to the
// new ones. The first announce of a peer the ledger does not know yet
// counts nothing: its figures are the baseline (a client starts a torrent
// with "started" and zeros, so nothing is lost; a peer first seen
// mid-session, after it expired or the tracker lost its state, is not
// credited twice). A figure lower than the last one means the client
// restarted its session and counts from zero again: the new figure counts
// whole. A "stopped" announce counts its difference and forgets the peer.
// The figures are what clients say; no tracker can check them.
//
// A key is active in a torrent while it has a peer there that announced
// within the peer timeout and did not stop. The ledger remembers at most
// MaxPeers peers (beyond, new peers count announces but no bytes until
// others expire), only announces with a listed key reach it, and an
// announce refused for any reason is not counted.
//
// # Cost
//
// Record takes one of 64 shard locks, finds the key with its sums in one
// open-addressing table and the peer with its baseline in another (slots
// of one cache line, tables.go), and updates both in place: an announce of
// a known peer touches about two cache lines besides the lock's, neither
// waiting for the other, and allocates nothing; a new key, torrent or
// peer may grow a table or a map. Keys are never forgotten: their number
// is bounded by the keys file. A remembered peer costs about 225 bytes
// when its key has ten torrents, 400 when it has one (live heap,
// BenchmarkLedgerMemory).
package accounting

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"herald/access"
	"herald/swarm"
)

// DefaultMaxPeers bounds the peers a Ledger remembers unless told
// otherwise: about 220 bytes each when keys have many torrents, about
// 0.9 GiB at most.
const DefaultMaxPeers = 4 << 20

// Totals are a key's sums.
type Totals struct {
	Announces  uint64 `json:"announces"`
	Uploaded   uint64 `json:"uploaded"`
	Downloaded uint64 `json:"downloaded"`
}

func (t Totals) minus(o Totals) Totals {
	return Totals{t.Announces - o.Announces, t.Uploaded - o.Uploaded, t.Downloaded - o.Downloaded}
}

// Entry is one key's accounting.
type Entry struct {
	Key access.Key `json:"key"`
	Totals
	// ActiveTorrents counts the torrents the key has a live peer in.
	ActiveTorrents int `json:"active_torrents"`
}

// Change is a key's accounting since it was last committed (see Pending).
type Change struct {
	Entry
	// Delta is what Totals grew by since the last commit.
	Delta Totals `json:"delta"`
}

const shardCount = 64

// Ledger is the per-key accounting. It is safe for concurrent use.
type Ledger struct {
	timeout  int64 // seconds
	maxPeers int64
	peers    atomic.Int64
	shards   [shardCount]shard
}

// A shard holds some keys' accounts and all their peers. An announce of
// a peer the shard knows finds the key's slot, with its sums, in the key
// table and the peer's slot in the peer table; where the peer's probe
// starts does not depend on the key, so both lines load at once. (A map of
// pointers to accounts, each with a map of torrents to slices of peers,
// was four dependent cache misses per announce under a load of many keys;
// see docs/benchmarks.md, issue 15.)
type shard struct {
	mu sync.Mutex
	// keys holds the keys with their sums and their index in info; keys
	// are never forgotten, so an index stays.
	keys  keyTable
	info  []keyInfo // by index
	peers peerTable
	// torrents counts the remembered peers of a key in a torrent: a key is
	// active in the torrents it has an entry for.
	torrents map[torrentKey]int32
}

// keyInfo is a key and its account as of the last commit.
type keyInfo struct {
	key             access.Key
	published       Totals
	publishedActive int32
}

// torrentKey is a torrent of the key whose account has index acct.
type torrentKey struct {
	acct uint32
	hash swarm.InfoHash
}

func newShard() shard {
	var seed [3]uint64
	for i := range seed {
		seed[i] = rand.Uint64()
	}
	return shard{keys: keyTable{seed: rand.Uint64()}, peers: peerTable{seed: seed}, torrents: make(map[torrentKey]int32)}
}

// account returns key's index and slot, made when the key has none yet;
// the slot is valid until the next key is added.
func (sh *shard) account(key *access.Key) (uint32, *keySlot) {
	if s := sh.keys.find(key); s != nil {
		return s.idx - 1, s
	}
	sh.info = append(sh.info, keyInfo{key: *key})
	s := sh.keys.add(key, uint32(len(sh.info)-1))
	return s.idx - 1, s
}

// New returns an empty ledger whose peers expire after peerTimeout (the
// store's) and that remembers at most maxPeers (0: DefaultMaxPeers).
func New(peerTimeout time.Duration, maxPeers int) *Ledger {
	if maxPeers <= 0 {
		maxPeers = DefaultMaxPeers
	}
	l := &Ledger{timeout: int64(max(peerTimeout/time.Second, 1)), maxPeers: int64(maxPeers)}
	for i := range l.shards {
		l.shards[i] = newShard()
	}
	return l
}

func (l *Ledger) shard(k *access.Key) *shard { return &l.shards[shardOf(k)] }

// shardOf is the index of k's shard. Keys are random: any of their bytes
// spreads them.
func shardOf(k *access.Key) int {
	return int((uint(k[0]) ^ uint(k[7])<<3 ^ uint(k[31])<<1) % shardCount)
}

// reported is what an announce adds to a sum: the growth since the last
// figure, or the whole figure when it went down (a new session).
func reported(now, last uint64) uint64 {
	if now >= last {
		return now - last
	}
	return now
}

// Record counts an announce the tracker accepted from a client with key.
func (l *Ledger) Record(key *access.Key, a *swarm.Announce, now time.Time) {
	sec := uint32(now.Unix())
	sh := l.shard(key)
	sh.mu.Lock()
	i, acct := sh.account(key)
	acct.total.Announces++
	slot, known := sh.peers.lookup(i+1, &a.InfoHash, &a.PeerID)
	switch {
	case known:
		p := &sh.peers.slots[slot]
		acct.total.Uploaded += reported(a.Uploaded, p.uploaded)
		acct.total.Downloaded += reported(a.Downloaded, p.downloaded)
		if a.Event == swarm.EventStopped {
			sh.peers.remove(slot)
			l.peers.Add(-1)
			acct.active -= sh.untrack(torrentKey{i, a.InfoHash})
		} else {
			p.uploaded, p.downloaded, p.seen = a.Uploaded, a.Downloaded, sec
		}
	case a.Event != swarm.EventStopped && l.peers.Load() < l.maxPeers:
		l.peers.Add(1)
		sh.peers.insert(peerSlot{hash: a.InfoHash, id: a.PeerID, acct: i + 1, uploaded: a.Uploaded, downloaded: a.Downloaded, seen: sec})
		acct.active += sh.track(torrentKey{i, a.InfoHash})
	}
	sh.mu.Unlock()
}

// track counts a new peer of t and returns 1 if it is t's first.
func (sh *shard) track(t torrentKey) int32 {
	n := sh.torrents[t]
	sh.torrents[t] = n + 1
	if n == 0 {
		return 1
	}
	return 0
}

// untrack counts a peer of t gone and returns 1 if it was t's last.
func (sh *shard) untrack(t torrentKey) int32 {
	n := sh.torrents[t] - 1
	if n > 0 {
		sh.torrents[t] = n
		return 0
	}
	delete(sh.torrents, t)
	return 1
}

// Expire forgets the peers that last announced a peer timeout or more
// before now.
func (l *Ledger) Expire(now time.Time) {
	limit := now.Unix() - l.timeout
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		gone := 0
		sh.peers.removeIf(func(p *peerSlot) bool {
			if int64(p.seen) > limit {
				return false
			}
			gone++
			sh.keys.find(&sh.info[p.acct-1].key).active -= sh.untrack(torrentKey{p.acct - 1, p.hash})
			return true
		})
		l.peers.Add(int64(-gone))
		sh.mu.Unlock()
	}
}

// Run expires peers every tenth of the peer timeout until ctx is done.
func (l *Ledger) Run(ctx context.Context) {
	t := time.NewTicker(time.Duration(l.timeout) * time.Second / 10)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			l.Expire(now)
		}
	}
}

// Peers is the number of peers the ledger remembers.
func (l *Ledger) Peers() int { return int(l.peers.Load()) }

// Len is the number of keys with accounting.
func (l *Ledger) Len() int {
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n += sh.keys.n
		sh.mu.Unlock()
	}
	return n
}

// Get returns key's accounting, and false when the key has none.
func (l *Ledger) Get(key access.Key) (Entry, bool) {
	sh := l.shard(&key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if s := sh.keys.find(&key); s != nil {
		return s.entry(), true
	}
	return Entry{Key: key}, false
}

func (s *keySlot) entry() Entry {
	return Entry{Key: s.key, Totals: s.total, ActiveTorrents: int(s.active)}
}

// Page returns up to limit entries in key order, starting after the key
// after ("" for the first page): a client pages through all keys by
// passing the last key of each page as the next one's after.
func (l *Ledger) Page(after string, limit int) []Entry {
	var keys []access.Key
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		for _, s := range sh.keys.slots {
			if s.idx != 0 && string(s.key[:]) > after {
				keys = append(keys, s.key)
			}
		}
		sh.mu.Unlock()
	}
	slices.SortFunc(keys, func(a, b access.Key) int { return bytes.Compare(a[:], b[:]) })
	keys = keys[:min(len(keys), max(limit, 0))]
	entries := make([]Entry, 0, len(keys))
	for _, k := range keys {
		if e, ok := l.Get(k); ok {
			entries = append(entries, e)
		}
	}
	return entries
}

// Pending returns the keys whose accounting changed since the last
// Commit, with what changed, in no particular order. Pending changes
// nothing: a publisher commits what it got out, so that nothing is lost
// when it cannot send.
func (l *Ledger) Pending() []Change {
	var changes []Change
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		for i := range sh.keys.slots {
			s := &sh.keys.slots[i]
			if s.idx == 0 {
				continue
			}
			if info := &sh.info[s.idx-1]; s.total != info.published || s.active != info.publishedActive {
				changes = append(changes, Change{Entry: s.entry(), Delta: s.total.minus(info.published)})
			}
		}
		sh.mu.Unlock()
	}
	return changes
}

// Commit marks changes, from Pending, as sent: the next Pending reports
// what changed after them.
func (l *Ledger) Commit(changes []Change) {
	for _, c := range changes {
		sh := l.shard(&c.Key)
		sh.mu.Lock()
		if s := sh.keys.find(&c.Key); s != nil {
			info := &sh.info[s.idx-1]
			info.published, info.publishedActive = c.Totals, int32(c.ActiveTorrents)
		}
		sh.mu.Unlock()
	}
}

// The state AppendState writes and Restore reads: a count of keys, then
// per key (integers uvarint)
//
//	key          32 bytes
//	totals       announces, uploaded, downloaded
//	published    announces, uploaded, downloaded, active torrents
//	torrents     count, then per torrent: info hash (20 bytes), count of
//	             peers, then per peer: peer id (20 bytes), uploaded,
//	             downloaded, last announce (Unix seconds)
//
// AppendState writes each shard's keys, each key's torrents and each
// torrent's peers in byte order; Restore takes any order, refuses a key
// or a peer of a key's torrent that comes twice, and merges a torrent
// that does.

// AppendState appends the whole ledger to dst. A nil ledger appends an
// empty one.
func (l *Ledger) AppendState(dst []byte) []byte {
	if l == nil {
		return binary.AppendUvarint(dst, 0)
	}
	// Each shard is copied under its lock, then written; the count of keys
	// goes first, so it is put before them at the end.
	start, keys := len(dst), 0
	var accts []keySlot
	var info []keyInfo
	var peers []peerSlot
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		accts = accts[:0]
		for _, s := range sh.keys.slots {
			if s.idx != 0 {
				accts = append(accts, s)
			}
		}
		info = append(info[:0], sh.info...)
		peers = peers[:0]
		for _, p := range sh.peers.slots {
			if p.acct != 0 {
				peers = append(peers, p)
			}
		}
		sh.mu.Unlock()
		// Peers by account, then torrent and id; accounts by key.
		slices.SortFunc(peers, func(a, b peerSlot) int {
			return cmp.Or(cmp.Compare(a.acct, b.acct), bytes.Compare(a.hash[:], b.hash[:]), bytes.Compare(a.id[:], b.id[:]))
		})
		first := make([]int, len(info)+1) // key i's peers are peers[first[i]:first[i+1]]
		for _, p := range peers {
			first[p.acct]++
		}
		for i := range info {
			first[i+1] += first[i]
		}
		slices.SortFunc(accts, func(a, b keySlot) int { return bytes.Compare(a.key[:], b.key[:]) })
		keys += len(accts)
		for j := range accts {
			a := &accts[j]
			ai := a.idx - 1
			in := &info[ai]
			mine := peers[first[ai]:first[ai+1]]
			torrents := 0
			for j := range mine {
				if j == 0 || mine[j].hash != mine[j-1].hash {
					torrents++
				}
			}
			dst = append(dst, in.key[:]...)
			for _, v := range []uint64{a.total.Announces, a.total.Uploaded, a.total.Downloaded,
				in.published.Announces, in.published.Uploaded, in.published.Downloaded, uint64(in.publishedActive), uint64(torrents)} {
				dst = binary.AppendUvarint(dst, v)
			}
			for len(mine) > 0 {
				n := 1
				for n < len(mine) && mine[n].hash == mine[0].hash {
					n++
				}
				dst = append(dst, mine[0].hash[:]...)
				dst = binary.AppendUvarint(dst, uint64(n))
				for _, p := range mine[:n] {
					dst = append(dst, p.id[:]...)
					dst = binary.AppendUvarint(dst, p.uploaded)
					dst = binary.AppendUvarint(dst, p.downloaded)
					dst = binary.AppendUvarint(dst, uint64(p.seen))
				}
				mine = mine[n:]
			}
		}
	}
	count := binary.AppendUvarint(nil, uint64(keys))
	dst = append(dst, count...)
	copy(dst[start+len(count):], dst[start:])
	copy(dst[start:], count)
	return dst
}

// ErrState is the error of a state Restore cannot read.
var ErrState = errors.New("accounting: malformed state")

// Restore replaces the ledger's contents with a state AppendState wrote.
// The state is read whole first: a malformed one changes nothing. Peers
// beyond MaxPeers are dropped; expired ones go at the next Expire.
func (l *Ledger) Restore(data []byte) error {
	r := stateReader{b: data}
	var shards [shardCount]shard
	for i := range shards {
		shards[i] = newShard()
	}
	var peers int64
	for n := r.count(access.KeyLen); n > 0 && r.err == nil; n-- {
		k, err := access.ParseKey(string(r.bytes(access.KeyLen)))
		if err != nil && r.err == nil {
			r.err = fmt.Errorf("%w: key: %v", ErrState, err)
		}
		sh := &shards[shardOf(&k)]
		if sh.keys.find(&k) != nil && r.err == nil {
			r.err = fmt.Errorf("%w: key %s twice", ErrState, k)
		}
		i, a := sh.account(&k)
		a.total = Totals{r.uvarint(), r.uvarint(), r.uvarint()}
		in := &sh.info[i]
		in.published = Totals{r.uvarint(), r.uvarint(), r.uvarint()}
		in.publishedActive = int32(min(r.uvarint(), 1<<31-1))
		for t := r.count(20); t > 0 && r.err == nil; t-- {
			h := swarm.InfoHash(r.bytes(20))
			for p := r.count(20); p > 0 && r.err == nil; p-- {
				id := swarm.PeerID(r.bytes(20))
				b := peerSlot{hash: h, id: id, acct: i + 1, uploaded: r.uvarint(), downloaded: r.uvarint(), seen: uint32(min(r.uvarint(), 1<<32-1))}
				if _, dup := sh.peers.lookup(i+1, &h, &id); dup && r.err == nil {
					r.err = fmt.Errorf("%w: peer %x twice", ErrState, id)
				}
				if r.err != nil || peers >= l.maxPeers {
					continue
				}
				sh.peers.insert(b)
				peers++
				a.active += sh.track(torrentKey{i, h})
			}
		}
	}
	if r.err == nil && len(r.b) > 0 {
		r.err = fmt.Errorf("%w: %d bytes after the last key", ErrState, len(r.b))
	}
	if r.err != nil {
		return r.err
	}
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		sh.keys, sh.info, sh.peers, sh.torrents = shards[i].keys, shards[i].info, shards[i].peers, shards[i].torrents
		sh.mu.Unlock()
	}
	l.peers.Store(peers)
	return nil
}

// stateReader reads a state; its first error sticks, and after it every
// read returns zeros.
type stateReader struct {
	b   []byte
	err error
}

func (r *stateReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = fmt.Errorf("%w: truncated number", ErrState)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *stateReader) bytes(n int) []byte {
	if r.err == nil && len(r.b) < n {
		r.err = fmt.Errorf("%w: truncated", ErrState)
	}
	if r.err != nil {
		return make([]byte, n)
	}
	b := r.b[:n]
	r.b = r.b[n:]
	return b
}

// count reads a count of items of at least size bytes each, which the
// rest of the state must be able to hold.
func (r *stateReader) count(size int) int {
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b)/size) {
		r.err = fmt.Errorf("%w: count %d beyond the data", ErrState, n)
	}
	if r.err != nil {
		return 0
	}
	return int(n)
}
