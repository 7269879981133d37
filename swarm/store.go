package swarm

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Config holds the store's runtime settings. Zero fields take the defaults
// documented beside them (opentracker's compile-time constants).
type Config struct {
	// Shards is the number of independently locked torrent shards, a power
	// of two. Default 256: each shard's table and arena take whole pages,
	// so at 100,000 torrents 1024 shards cost 4 more bytes per peer than
	// 256 (docs/benchmarks.md); a lock is held for one announce, so 256
	// still leave cores little to contend for.
	Shards int
	// PeerTimeout is how long a peer stays without re-announcing. Default 45m.
	PeerTimeout time.Duration
	// TorrentTimeout is how long a torrent without peers but with a
	// completed count is kept, so its "downloaded" survives quiet spells.
	// Torrents that never completed are removed as soon as they are empty.
	// Default 24h.
	TorrentTimeout time.Duration
	// CleanInterval is how often expired peers are removed. Default 2m.
	CleanInterval time.Duration
	// MaxNumWant caps the peers one announce gets. Default 200.
	MaxNumWant int
	// MaxTorrents and MaxPeers bound memory; 0 means no bound.
	MaxTorrents int
	MaxPeers    int
	// DecoyPeers is how many random addresses of the requester's family are
	// mixed into every peer list (plausible deniability: an address seen in
	// a peer list proves nothing). Each decoy takes the place of a real
	// peer when the swarm could fill numwant, and costs the client one
	// connection attempt that goes nowhere. Default 0 (off).
	DecoyPeers int
	// Sink, if set, sees every announce the store accepted.
	Sink Sink
}

// Sink receives every announce the store accepted, from the goroutine that
// made it, after the store's lock is released: cluster sync, logs and stats
// see announces the same way whatever frontend took them. Announced must not
// block; a sink that queues work bounds its queue and counts what it drops.
type Sink interface {
	Announced(a Announce)
}

// Defaults for Config.
const (
	DefaultShards         = 256
	DefaultPeerTimeout    = 45 * time.Minute
	DefaultTorrentTimeout = 24 * time.Hour
	DefaultCleanInterval  = 2 * time.Minute
	DefaultMaxNumWant     = 200
)

// stampTicks is how many age ticks a PeerTimeout spans. A record's age is
// one byte counting ticks, so the cleaner must visit every peer before the
// byte wraps: within 256-stampTicks ticks.
const stampTicks = 120

func (c Config) withDefaults() (Config, error) {
	if c.Shards == 0 {
		c.Shards = DefaultShards
	}
	if c.PeerTimeout == 0 {
		c.PeerTimeout = DefaultPeerTimeout
	}
	if c.TorrentTimeout == 0 {
		c.TorrentTimeout = DefaultTorrentTimeout
	}
	if c.CleanInterval == 0 {
		c.CleanInterval = min(DefaultCleanInterval, c.PeerTimeout/4)
	}
	if c.MaxNumWant == 0 {
		c.MaxNumWant = DefaultMaxNumWant
	}
	switch {
	case c.Shards < 1 || c.Shards&(c.Shards-1) != 0 || c.Shards > 1<<16:
		return c, fmt.Errorf("swarm: shards %d: must be a power of two up to 65536", c.Shards)
	case c.PeerTimeout < time.Second:
		return c, fmt.Errorf("swarm: peer timeout %v: must be at least 1s", c.PeerTimeout)
	case c.CleanInterval < 0 || c.CleanInterval > c.PeerTimeout:
		return c, fmt.Errorf("swarm: clean interval %v: must be positive and at most the peer timeout %v", c.CleanInterval, c.PeerTimeout)
	case c.MaxNumWant < 0 || c.MaxTorrents < 0 || c.MaxPeers < 0 || c.TorrentTimeout < 0 || c.DecoyPeers < 0:
		return c, fmt.Errorf("swarm: negative limit in %+v", c)
	}
	return c, nil
}

// Store is the sharded in-RAM torrent store. It is safe for concurrent use.
type Store struct {
	cfg      Config
	shards   []shard
	shift    uint32 // 32 - log2(Shards): a shard is the hash's leading bits
	tickSecs uint32 // seconds per age tick
	ttlTicks uint8  // PeerTimeout in ticks
	epoch    time.Time
	clock    atomic.Uint32 // seconds since epoch, set by SetNow
	seed     [4]uint64     // keys the table hash (see home)

	torrents atomic.Int64
	peers    atomic.Int64
	// invalidAddrs counts peers refused by ValidPeer; written only on a
	// refusal, so sharing a line with the totals costs nothing normally.
	invalidAddrs atomic.Uint64
	// renewMinute maps a re-announce's age in ticks to its Renewals index.
	renewMinute [256]uint8
}

type shard struct {
	mu     sync.Mutex
	tab    []slot // open-addressed torrents (table.go), in tabMem; guarded by mu
	tabMem region
	count  int        // torrents in tab
	arena  arena      // blocks of flat torrents' records
	big    []*torrent // big torrents, indexed by their slot's ref
	free   []int      // unused indexes of big
	// Refusals at the store's bounds, bumped under mu so the write hits a
	// line this core already holds (a flood of new hashes spreads over
	// the shards instead of bouncing one shared counter), read without mu.
	torrentLimit, peerLimit atomic.Uint64
	// The shard's share of Totals, changed under mu when a count changes
	// and read without it, so Totals costs the same at any store size.
	totals [numTotals]atomic.Int64
	// renewed is the shard's share of Renewals, bumped under mu (so by a
	// load and a store: there is one writer at a time).
	renewed [RenewMinutes]atomic.Uint64
	// stopped holds the peers stopped since KeepStops, nil outside such a
	// round; guarded by mu.
	stopped map[stoppedPeer]struct{}
	_       [40]byte // keep neighbouring locks off one cache line
}

// Indexes of shard.totals.
const (
	totTorrents = iota
	totSeeders4
	totLeechers4
	totSeeders6
	totLeechers6
	totCompleted
	numTotals
)

// torrent holds the peers of a big swarm (more than maxFlat record bytes)
// in two bucketed lists on the Go heap.
type torrent struct {
	v4, v6 peerList
}

// New returns an empty store; it fails only on an invalid Config.
func New(cfg Config) (*Store, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	tick := uint32((cfg.PeerTimeout + stampTicks*time.Second - 1) / (stampTicks * time.Second))
	tick = max(tick, 1)
	s := &Store{
		cfg:         cfg,
		shards:      make([]shard, cfg.Shards),
		shift:       32 - uint32(bits.TrailingZeros(uint(cfg.Shards))),
		tickSecs:    tick,
		ttlTicks:    uint8((uint32(cfg.PeerTimeout/time.Second) + tick - 1) / tick),
		epoch:       time.Now(),
		renewMinute: renewMinutes(tick),
	}
	for i := range s.seed {
		s.seed[i] = rand.Uint64()
	}
	runtime.AddCleanup(s, releaseShards, s.shards)
	return s, nil
}

// releaseShards unmaps the shards' regions once their store is garbage.
// Each shard's lock is taken, so an announce still running on a shard
// whose store became unreachable mid-call finishes first.
func releaseShards(shards []shard) {
	for i := range shards {
		sh := &shards[i]
		sh.mu.Lock()
		sh.tab = nil
		sh.tabMem.release()
		sh.arena.mem.release()
		sh.mu.Unlock()
	}
}

// Config returns the store's settings with defaults filled in.
func (s *Store) Config() Config { return s.cfg }

// SetNow moves the store's clock; Run calls it every second, tests call it
// to move time. The clock never goes backwards.
func (s *Store) SetNow(t time.Time) {
	secs := uint32(max(t.Sub(s.epoch), 0) / time.Second)
	for {
		old := s.clock.Load()
		if secs <= old || s.clock.CompareAndSwap(old, secs) {
			return
		}
	}
}

// Run keeps the clock and removes expired peers every CleanInterval until
// ctx is done.
func (s *Store) Run(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	next := time.Now().Add(s.cfg.CleanInterval)
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			s.SetNow(now)
			if now.After(next) {
				s.Clean()
				next = now.Add(s.cfg.CleanInterval)
			}
		}
	}
}

func (s *Store) shardOf(h *InfoHash) *shard {
	// Leading bits, so that shards in order hold hashes in order: Range
	// and Dump then need to sort only within a shard.
	return &s.shards[uint64(binary.BigEndian.Uint32(h[:4]))>>s.shift]
}

// packKey writes addr's packed form into k and returns it with the family's
// record length.
func packKey(k *[PeerLen6]byte, addr netip.AddrPort) ([]byte, int) {
	a := addr.Addr().Unmap()
	if a.Is4() {
		ip := a.As4()
		copy(k[:], ip[:])
		binary.BigEndian.PutUint16(k[4:], addr.Port())
		return k[:PeerLen4], recLen4
	}
	ip := a.As16()
	copy(k[:], ip[:])
	binary.BigEndian.PutUint16(k[16:], addr.Port())
	return k[:PeerLen6], recLen6
}

// Announce records a in its swarm and appends up to a.NumWant other peers of
// the families in want to dst. A stopped announce removes the peer and
// returns no peers. The returned counts include the announcer.
func (s *Store) Announce(a *Announce, want Family, dst Peers) (Peers, Counts, error) {
	dst, c, err := s.announce(a, want, dst)
	if err == nil && s.cfg.Sink != nil {
		s.cfg.Sink.Announced(*a) // after the shard lock is released
	}
	return dst, c, err
}

func (s *Store) announce(a *Announce, want Family, dst Peers) (Peers, Counts, error) {
	if !ValidPeer(a.Addr) {
		s.invalidAddrs.Add(1)
		return dst, Counts{}, ErrInvalidAddr
	}
	var kbuf [PeerLen6]byte
	key, rl := packKey(&kbuf, a.Addr)
	now := s.clock.Load()
	stamp := uint8(now / s.tickSecs)

	sh := s.shardOf(&a.InfoHash)
	sh.mu.Lock()
	defer sh.mu.Unlock()

	if a.Event == EventStopped && sh.stopped != nil {
		sh.stopped[stoppedPeerOf(&a.InfoHash, key)] = struct{}{}
	}
	var sl *slot
	if i, ok := s.lookup(sh, &a.InfoHash); ok {
		sl = &sh.tab[i]
	} else {
		if a.Event == EventStopped {
			return dst, Counts{}, nil
		}
		if !reserve(&s.torrents, s.cfg.MaxTorrents) {
			sh.torrentLimit.Add(1)
			return dst, Counts{}, ErrTorrentLimit
		}
		sl = s.insertSlot(sh, &a.InfoHash)
		sh.totals[totTorrents].Add(1)
	}
	sl.last = now
	before := sh.famCounts(sl)

	if a.Event == EventStopped {
		if sh.delRec(sl, key, rl) {
			s.peers.Add(-1)
		}
		after := sh.famCounts(sl)
		sh.account(before, after)
		return dst, after.counts(sl.completed), nil
	}

	rec, self := sh.findRec(sl, key, rl)
	if rec == nil {
		if !reserve(&s.peers, s.cfg.MaxPeers) {
			sh.peerLimit.Add(1)
			return dst, before.counts(sl.completed), ErrPeerLimit
		}
		rec, self = sh.addRec(sl, key, rl)
	} else {
		// Only writers under mu: a load and a store, not a locked add.
		c := &sh.renewed[s.renewMinute[stamp-rec[rl-1]]]
		c.Store(c.Load() + 1)
	}
	flags := rec[rl-2]
	wasSeeder := flags&flagSeeder != 0
	if a.Seeder() {
		flags |= flagSeeder
	} else {
		flags &^= flagSeeder
	}
	// As opentracker: a completed event counts only from a seeder.
	if a.Event == EventCompleted && a.Seeder() && flags&flagCompleted == 0 {
		flags |= flagCompleted
		sl.completed++
		sh.totals[totCompleted].Add(1)
	}
	flags = flags&^(flagSynced|0xf<<originShift) | flagMark
	if a.FromCluster {
		flags |= flagSynced | a.Origin<<originShift
	}
	switch isSeeder := flags&flagSeeder != 0; {
	case isSeeder && !wasSeeder:
		sh.addSeeder(sl, rl, 1)
	case !isSeeder && wasSeeder:
		sh.addSeeder(sl, rl, -1)
	}
	rec[rl-2] = flags
	rec[rl-1] = stamp
	after := sh.famCounts(sl)
	sh.account(before, after)

	numwant := min(a.NumWant, s.cfg.MaxNumWant)
	decoys := min(s.cfg.DecoyPeers, numwant)
	sh.pick(sl, &dst, numwant-decoys, want, self, rl)
	// Decoys go to the requester's own family when it wants that one back
	// (a UDP client announcing another family's address through the ip
	// field wants its transport's family), else to the family it wants.
	fam := FamilyV4
	if rl == recLen6 {
		fam = FamilyV6
	}
	if want&fam == 0 {
		fam = want
	}
	switch {
	case decoys == 0:
	case fam == FamilyV4:
		dst.V4 = addDecoys(dst.V4, decoys, PeerLen4)
	case fam == FamilyV6:
		dst.V6 = addDecoys(dst.V6, decoys, PeerLen6)
	}
	return dst, after.counts(sl.completed), nil
}

// pick appends to dst up to numwant peers of the wanted families, never the
// requester (at self in its family's list of records of length rl).
func (t *torrent) pick(dst *Peers, numwant int, want Family, self place, rl int) {
	self4, self6 := self, nowhere
	if rl == recLen6 {
		self4, self6 = nowhere, self
	}
	n4, n6 := 0, 0
	if want&FamilyV4 != 0 {
		n4 = int(t.v4.total)
		if self4.i >= 0 {
			n4--
		}
	}
	if want&FamilyV6 != 0 {
		n6 = int(t.v6.total)
		if self6.i >= 0 {
			n6--
		}
	}
	w4, w6 := shares(n4, n6, numwant)
	if n4 > 0 {
		dst.V4 = t.v4.pick(dst.V4, w4, self4, recLen4)
	}
	if n6 > 0 {
		dst.V6 = t.v6.pick(dst.V6, w6, self6, recLen6)
	}
}

// shares splits numwant between n4 IPv4 and n6 IPv6 peers on offer: when
// both families cannot be given in full, each gets up to a quarter of
// numwant first and the rest is shared in proportion to the peers each has
// left, as opentracker does. A share may exceed what a family has; pick
// caps it.
func shares(n4, n6, numwant int) (w4, w6 int) {
	if n4+n6 <= numwant || n4 == 0 || n6 == 0 {
		return numwant, numwant
	}
	w4 = min(n4, numwant/4)
	w6 = min(n6, numwant/4)
	rest := numwant - w4 - w6
	left4, left6 := n4-w4, n6-w6
	if left4+left6 > 0 {
		extra4 := rest * left4 / (left4 + left6)
		w4 += extra4
		w6 += min(rest-extra4, left6)
	}
	return w4, w6
}

// reserve counts one more torrent or peer in n unless that passes limit
// (0: no limit). Adding first and taking it back keeps the bound exact when
// shards race; checking before adding would let each of them pass at
// limit-1.
func reserve(n *atomic.Int64, limit int) bool {
	if v := n.Add(1); limit > 0 && v > int64(limit) {
		n.Add(-1)
		return false
	}
	return true
}

// Scrape returns a torrent's counts, and false when the store has no such torrent.
func (s *Store) Scrape(h InfoHash) (Counts, bool) {
	sh := s.shardOf(&h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	i, ok := s.lookup(sh, &h)
	if !ok {
		return Counts{}, false
	}
	sl := &sh.tab[i]
	return sh.famCounts(sl).counts(sl.completed), true
}

// Torrents and Peers return the current totals; they are exact and cheap.
func (s *Store) Torrents() int { return int(s.torrents.Load()) }
func (s *Store) Peers() int    { return int(s.peers.Load()) }

// Refusals count what the store refused since New: each announce refused,
// and each Restore (snapshot load, cluster catch-up) stopped, with
// ErrTorrentLimit or ErrPeerLimit, and each announce refused and restored
// peer dropped by ValidPeer.
type Refusals struct {
	TorrentLimit uint64 // new torrents refused at MaxTorrents
	PeerLimit    uint64 // new peers refused at MaxPeers
	InvalidAddr  uint64 // peers refused by ValidPeer
}

// Refusals sums the shards' counts with atomic loads, taking no lock.
func (s *Store) Refusals() Refusals {
	var r Refusals
	for i := range s.shards {
		r.TorrentLimit += s.shards[i].torrentLimit.Load()
		r.PeerLimit += s.shards[i].peerLimit.Load()
	}
	r.InvalidAddr = s.invalidAddrs.Load()
	return r
}

// RenewMinutes is how many minutes of re-announce age Renewals tells
// apart, as opentracker's OT_PEER_TIMEOUT; older re-announces count in the
// last.
const RenewMinutes = 45

// Renewals count the announces of peers the store already held, by the
// whole minutes since the peer's previous announce (opentracker's
// mode=renew): how often clients really re-announce. Ages are measured in
// the store's age ticks (PeerTimeout/120, 23 s by default).
type Renewals [RenewMinutes]uint64

// renewMinutes returns the Renewals index of a re-announce for each age
// in ticks (a table: one load on the announce path).
func renewMinutes(tickSecs uint32) (m [256]uint8) {
	for ticks := range m {
		m[ticks] = uint8(min(uint32(ticks)*tickSecs/60, RenewMinutes-1))
	}
	return m
}

// Renewals sums the shards' counts with atomic loads, taking no lock.
func (s *Store) Renewals() Renewals {
	var r Renewals
	for i := range s.shards {
		for m := range r {
			r[m] += s.shards[i].renewed[m].Load()
		}
	}
	return r
}

// Totals are seeders and leechers by family.
type Totals struct {
	Torrents            int
	Seeders4, Leechers4 int
	Seeders6, Leechers6 int
	Completed           int
}

// Totals sums the shards' running totals with atomic loads, taking no
// lock: its cost depends on the number of shards, not of torrents. Each
// shard's figures are exact; the sum may mix shards read a moment apart.
func (s *Store) Totals() Totals {
	var sum [numTotals]int64
	for i := range s.shards {
		for k := range sum {
			sum[k] += s.shards[i].totals[k].Load()
		}
	}
	return Totals{
		Torrents:  int(sum[totTorrents]),
		Seeders4:  int(sum[totSeeders4]),
		Leechers4: int(sum[totLeechers4]),
		Seeders6:  int(sum[totSeeders6]),
		Leechers6: int(sum[totLeechers6]),
		Completed: int(sum[totCompleted]),
	}
}

// TorrentCounts is one torrent's hash and counts, as Range reports them.
type TorrentCounts struct {
	InfoHash InfoHash
	Counts
}

// Range calls fn for every torrent in info hash order, shard by shard. Each
// shard is copied under its lock and fn runs with no lock held, so a slow
// consumer (a full scrape to a slow client) never stalls announces. fn
// returning false stops.
func (s *Store) Range(fn func(TorrentCounts) bool) {
	var buf []TorrentCounts
	for i := range s.shards {
		sh := &s.shards[i]
		buf = buf[:0]
		sh.mu.Lock()
		for k := range sh.tab {
			if sl := &sh.tab[k]; sl.ref != 0 {
				buf = append(buf, TorrentCounts{InfoHash: sl.hash, Counts: sh.famCounts(sl).counts(sl.completed)})
			}
		}
		sh.mu.Unlock()
		slices.SortFunc(buf, func(a, b TorrentCounts) int { return bytes.Compare(a.InfoHash[:], b.InfoHash[:]) })
		for _, tc := range buf {
			if !fn(tc) {
				return
			}
		}
	}
}

// Clean removes expired peers and torrents, one shard lock at a time, and
// gives back table and arena space they held.
func (s *Store) Clean() {
	stamp := uint8(s.clock.Load() / s.tickSecs)
	s.filterPeers(func(r []byte) bool { return stamp-r[len(r)-1] < s.ttlTicks })
}

// filterPeers calls keep for every record, one shard lock at a time; keep
// may change the record's flags (not its seeder flag), and the records it
// returns false for are removed. Then it removes the torrents left with
// neither peers nor a recent completed count, gives back table and arena
// space, and returns how many peers it removed.
func (s *Store) filterPeers(keep func(r []byte) bool) int {
	now := s.clock.Load()
	keepTorrent := uint32(s.cfg.TorrentTimeout / time.Second)
	total := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for k := 0; k < len(sh.tab); {
			sl := &sh.tab[k]
			if sl.ref == 0 {
				k++
				continue
			}
			before := sh.famCounts(sl)
			var removed int
			if sl.kind() == kindBig {
				t := sh.big[sl.index()]
				removed = filterList(&t.v4, recLen4, keep) + filterList(&t.v6, recLen6, keep)
				if removed > 0 {
					sh.maybeFlat(sl)
				}
			} else {
				removed = sh.filterFlat(sl, keep)
			}
			s.peers.Add(-int64(removed))
			total += removed
			after := sh.famCounts(sl)
			sh.account(before, after)
			if after != (famCounts{}) || sl.completed != 0 && now-sl.last < keepTorrent {
				k++
				continue
			}
			sh.dropFlat(sl)
			sh.dropBig(sl)
			sh.totals[totTorrents].Add(-1)
			sh.totals[totCompleted].Add(-int64(sl.completed))
			s.torrents.Add(-1)
			// Later slots of the chain move back into k: look at k again.
			// A slot from the table's start may wrap to its end and be
			// cleaned twice, which changes nothing.
			s.deleteSlot(sh, k)
		}
		switch {
		case sh.count == 0 && len(sh.tab) > 0:
			s.resize(sh, 0)
		case len(sh.tab) > minTableLen && sh.count*maxLoadDen < len(sh.tab):
			s.resize(sh, max(minTableLen, sh.count*maxLoadDen*3/(maxLoadNum*2)))
		}
		sh.compactArena()
		sh.mu.Unlock()
	}
	return total
}

// filterList removes the records of a big torrent's list l that keep
// refuses, and returns how many.
func filterList(l *peerList, rl int, keep func(r []byte) bool) int {
	if l.total == 0 {
		return 0
	}
	var removed, seeders uint32
	l.eachVec(func(v *[]byte) {
		in := *v
		out := in[:0]
		for off := 0; off < len(in); off += rl {
			r := in[off : off+rl]
			if !keep(r) {
				removed++
				continue
			}
			if r[rl-2]&flagSeeder != 0 {
				seeders++
			}
			out = append(out, r...)
		}
		*v = shrink(out)
	})
	if removed == 0 {
		return 0
	}
	l.total -= removed
	l.seeders = seeders
	if l.big != nil && l.total < smallThreshold {
		l.merge(rl)
	}
	return int(removed)
}
