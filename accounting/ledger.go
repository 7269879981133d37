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
// Record takes one of 64 shard locks and does two map lookups; it
// allocates only for a key, torrent or peer it has not seen. Keys are
// never forgotten: their number is bounded by the keys file.
package accounting

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"herald/access"
	"herald/swarm"
)

// DefaultMaxPeers bounds the peers a Ledger remembers unless told
// otherwise: about 100 bytes each, 400 MiB at most.
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

type shard struct {
	mu   sync.Mutex
	keys map[access.Key]*account
}

type account struct {
	total     Totals
	published Totals // as of the last commit
	// publishedActive is len(torrents) as of the last commit.
	publishedActive int
	torrents        map[swarm.InfoHash][]peer
}

// peer is the last announce of one peer of a key in a torrent.
type peer struct {
	id                   swarm.PeerID
	uploaded, downloaded uint64
	seen                 int64 // Unix seconds
}

// New returns an empty ledger whose peers expire after peerTimeout (the
// store's) and that remembers at most maxPeers (0: DefaultMaxPeers).
func New(peerTimeout time.Duration, maxPeers int) *Ledger {
	if maxPeers <= 0 {
		maxPeers = DefaultMaxPeers
	}
	l := &Ledger{timeout: int64(max(peerTimeout/time.Second, 1)), maxPeers: int64(maxPeers)}
	for i := range l.shards {
		l.shards[i].keys = make(map[access.Key]*account)
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
	sec := now.Unix()
	sh := l.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	acct := sh.keys[*key]
	if acct == nil {
		acct = &account{torrents: make(map[swarm.InfoHash][]peer)}
		sh.keys[*key] = acct
	}
	acct.total.Announces++
	ps := acct.torrents[a.InfoHash]
	i := slices.IndexFunc(ps, func(p peer) bool { return p.id == a.PeerID })
	switch {
	case i >= 0:
		p := &ps[i]
		acct.total.Uploaded += reported(a.Uploaded, p.uploaded)
		acct.total.Downloaded += reported(a.Downloaded, p.downloaded)
		if a.Event == swarm.EventStopped {
			l.forget(acct, a.InfoHash, slices.Delete(ps, i, i+1))
			return
		}
		p.uploaded, p.downloaded, p.seen = a.Uploaded, a.Downloaded, sec
	case a.Event != swarm.EventStopped && l.peers.Load() < l.maxPeers:
		l.peers.Add(1)
		acct.torrents[a.InfoHash] = append(ps, peer{id: a.PeerID, uploaded: a.Uploaded, downloaded: a.Downloaded, seen: sec})
	}
}

// forget stores ps, the peers of h left after one went, or drops h.
func (l *Ledger) forget(acct *account, h swarm.InfoHash, ps []peer) {
	l.peers.Add(-1)
	if len(ps) == 0 {
		delete(acct.torrents, h)
		return
	}
	acct.torrents[h] = ps
}

// Expire forgets the peers that last announced a peer timeout or more
// before now.
func (l *Ledger) Expire(now time.Time) {
	limit := now.Unix() - l.timeout
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		for _, acct := range sh.keys {
			for h, ps := range acct.torrents {
				live := slices.DeleteFunc(ps, func(p peer) bool { return p.seen <= limit })
				if gone := len(ps) - len(live); gone > 0 {
					l.peers.Add(int64(-gone))
					if len(live) == 0 {
						delete(acct.torrents, h)
					} else {
						acct.torrents[h] = live
					}
				}
			}
		}
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
		n += len(sh.keys)
		sh.mu.Unlock()
	}
	return n
}

// Get returns key's accounting, and false when the key has none.
func (l *Ledger) Get(key access.Key) (Entry, bool) {
	sh := l.shard(&key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	acct := sh.keys[key]
	if acct == nil {
		return Entry{Key: key}, false
	}
	return Entry{Key: key, Totals: acct.total, ActiveTorrents: len(acct.torrents)}, true
}

// Page returns up to limit entries in key order, starting after the key
// after ("" for the first page): a client pages through all keys by
// passing the last key of each page as the next one's after.
func (l *Ledger) Page(after string, limit int) []Entry {
	var keys []access.Key
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		for k := range sh.keys {
			if string(k[:]) > after {
				keys = append(keys, k)
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
		for k, acct := range sh.keys {
			if acct.total != acct.published || len(acct.torrents) != acct.publishedActive {
				changes = append(changes, Change{
					Entry: Entry{Key: k, Totals: acct.total, ActiveTorrents: len(acct.torrents)},
					Delta: acct.total.minus(acct.published),
				})
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
		if acct := sh.keys[c.Key]; acct != nil {
			acct.published, acct.publishedActive = c.Totals, c.ActiveTorrents
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

// AppendState appends the whole ledger to dst. A nil ledger appends an
// empty one.
func (l *Ledger) AppendState(dst []byte) []byte {
	if l == nil {
		return binary.AppendUvarint(dst, 0)
	}
	type keyed struct {
		k access.Key
		a *account
	}
	// Each shard is appended under its lock; the count goes first, so the
	// keys are collected before.
	var all []keyed
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		for k, a := range sh.keys {
			all = append(all, keyed{k, a})
		}
		sh.mu.Unlock()
	}
	dst = binary.AppendUvarint(dst, uint64(len(all)))
	for _, e := range all {
		sh := l.shard(&e.k)
		sh.mu.Lock()
		a := e.a
		dst = append(dst, e.k[:]...)
		for _, v := range []uint64{a.total.Announces, a.total.Uploaded, a.total.Downloaded,
			a.published.Announces, a.published.Uploaded, a.published.Downloaded, uint64(a.publishedActive), uint64(len(a.torrents))} {
			dst = binary.AppendUvarint(dst, v)
		}
		for h, ps := range a.torrents {
			dst = append(dst, h[:]...)
			dst = binary.AppendUvarint(dst, uint64(len(ps)))
			for _, p := range ps {
				dst = append(dst, p.id[:]...)
				dst = binary.AppendUvarint(dst, p.uploaded)
				dst = binary.AppendUvarint(dst, p.downloaded)
				dst = binary.AppendUvarint(dst, uint64(p.seen))
			}
		}
		sh.mu.Unlock()
	}
	return dst
}

// ErrState is the error of a state Restore cannot read.
var ErrState = errors.New("accounting: malformed state")

// Restore replaces the ledger's contents with a state AppendState wrote.
// The state is read whole first: a malformed one changes nothing. Peers
// beyond MaxPeers are dropped; expired ones go at the next Expire.
func (l *Ledger) Restore(data []byte) error {
	r := stateReader{b: data}
	keys := make([]map[access.Key]*account, shardCount)
	for i := range keys {
		keys[i] = make(map[access.Key]*account)
	}
	var peers int64
	for n := r.count(access.KeyLen); n > 0 && r.err == nil; n-- {
		k, err := access.ParseKey(string(r.bytes(access.KeyLen)))
		if err != nil && r.err == nil {
			r.err = fmt.Errorf("%w: key: %v", ErrState, err)
		}
		a := &account{torrents: make(map[swarm.InfoHash][]peer)}
		a.total = Totals{r.uvarint(), r.uvarint(), r.uvarint()}
		a.published = Totals{r.uvarint(), r.uvarint(), r.uvarint()}
		a.publishedActive = int(r.uvarint())
		for t := r.count(20); t > 0 && r.err == nil; t-- {
			h := swarm.InfoHash(r.bytes(20))
			var ps []peer
			for p := r.count(20); p > 0 && r.err == nil; p-- {
				ps = append(ps, peer{id: swarm.PeerID(r.bytes(20)), uploaded: r.uvarint(), downloaded: r.uvarint(), seen: int64(r.uvarint())})
			}
			ps = ps[:min(int64(len(ps)), max(l.maxPeers-peers, 0))]
			if len(ps) > 0 {
				a.torrents[h] = ps
				peers += int64(len(ps))
			}
		}
		keys[shardOf(&k)][k] = a
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
		sh.keys = keys[i]
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
