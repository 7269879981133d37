package swarm

import (
	"encoding/binary"
	"net/netip"
	"time"
)

// TorrentState is one torrent as Dump hands it out and Restore takes it
// back: what a snapshot or another instance needs to rebuild the swarm.
type TorrentState struct {
	InfoHash  InfoHash
	Completed uint32
	// Idle is how long ago the torrent was last announced.
	Idle  time.Duration
	Peers []PeerState
}

// PeerState is one peer of a TorrentState.
type PeerState struct {
	Addr      netip.AddrPort
	Seeder    bool
	Completed bool // sent a completed event
	Synced    bool // learned from another instance
	// Origin is as Announce.Origin. It is this process's number, never
	// encoded (AppendTorrentState): snapshots and catch-ups leave it out.
	Origin uint8
	// Age is how long ago the peer last announced.
	Age time.Duration
}

// Dump calls fn for every torrent, shard by shard: a shard's torrents are
// copied under its lock, and fn runs with no lock held, so announces wait at
// most for one shard's copy. The TorrentState passed to fn is reused; fn
// must not keep it. fn returning an error stops the dump with that error.
func (s *Store) Dump(fn func(*TorrentState) error) error {
	var (
		raw   []byte // copied records of one shard
		metas []dumpMeta
		ts    TorrentState
	)
	for i := range s.shards {
		sh := &s.shards[i]
		raw, metas = raw[:0], metas[:0]
		now := s.clock.Load()
		stamp := uint8(now / s.tickSecs)
		sh.mu.Lock()
		for k := range sh.tab {
			sl := &sh.tab[k]
			if sl.ref == 0 {
				continue
			}
			m := dumpMeta{hash: sl.hash, completed: sl.completed, idle: now - sl.last, start: len(raw)}
			if sl.kind() == kindBig {
				t := sh.big[sl.index()]
				t.v4.eachVec(func(v *[]byte) { raw = append(raw, *v...) })
				t.v6.eachVec(func(v *[]byte) { raw = append(raw, *v...) })
				m.n4, m.n6 = int(t.v4.total), int(t.v6.total)
			} else {
				raw = append(raw, sh.flat(sl, sl.used())[:sl.used()]...)
				m.n4, m.n6 = int(sl.n4), int(sl.n6)
			}
			metas = append(metas, m)
		}
		sh.mu.Unlock()
		for _, m := range metas {
			ts.InfoHash, ts.Completed = m.hash, m.completed
			ts.Idle = time.Duration(m.idle) * time.Second
			ts.Peers = ts.Peers[:0]
			off := m.start
			for k := range m.n4 + m.n6 {
				rl := recLen4
				if k >= m.n4 {
					rl = recLen6
				}
				ts.Peers = append(ts.Peers, s.peerState(raw[off:off+rl], stamp))
				off += rl
			}
			if err := fn(&ts); err != nil {
				return err
			}
		}
	}
	return nil
}

type dumpMeta struct {
	hash      InfoHash
	completed uint32
	idle      uint32
	start     int
	n4, n6    int
}

func (s *Store) peerState(r []byte, stamp uint8) PeerState {
	rl := len(r)
	var addr netip.Addr
	if rl == recLen4 {
		addr = netip.AddrFrom4([4]byte(r[:4]))
	} else {
		addr = netip.AddrFrom16([16]byte(r[:16]))
	}
	p := PeerState{
		Addr: netip.AddrPortFrom(addr, binary.BigEndian.Uint16(r[rl-4:])),
		Age:  time.Duration(uint8(stamp-r[rl-1])) * time.Duration(s.tickSecs) * time.Second,
	}
	p.SetFlags(PeerFlags(r[rl-2]))
	p.Origin = r[rl-2] >> originShift
	return p
}

// Restore merges ts into the store, as of now. Peers older than the peer
// timeout are dropped (they expired while the state was on disk), and so
// are peers absent here that were stopped since KeepStops; a peer already
// present keeps the fresher of the two ages, and with it its flags and
// origin (an origin it lacks it takes from ts). Every peer of ts the store
// keeps is marked (ClearMarks). A torrent with neither peers nor a
// completed count is not created. Limits apply as for announces; Restore
// reports how many peers it added.
func (s *Store) Restore(ts *TorrentState) (int, error) {
	timeout := s.cfg.PeerTimeout
	live := 0
	for i := range ts.Peers {
		if ts.Peers[i].Age < timeout && ValidPeer(ts.Peers[i].Addr) {
			live++
		}
	}
	if live == 0 && ts.Completed == 0 {
		return 0, nil
	}
	now := s.clock.Load()
	stamp := uint8(now / s.tickSecs)
	tick := time.Duration(s.tickSecs) * time.Second

	sh := s.shardOf(&ts.InfoHash)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	var kbuf [PeerLen6]byte
	var sl *slot
	if i, ok := s.lookup(sh, &ts.InfoHash); ok {
		sl = &sh.tab[i]
	} else {
		if sh.stopped != nil && ts.Completed == 0 {
			// Every peer would be new: the torrent is created only if
			// one of them was not stopped meanwhile.
			for _, p := range ts.Peers {
				if p.Age < timeout && ValidPeer(p.Addr) {
					if key, _ := packKey(&kbuf, p.Addr); sh.wasStopped(&ts.InfoHash, key) {
						live--
					}
				}
			}
			if live == 0 {
				return 0, nil
			}
		}
		if !reserve(&s.torrents, s.cfg.MaxTorrents) {
			sh.torrentLimit.Add(1)
			return 0, ErrTorrentLimit
		}
		sl = s.insertSlot(sh, &ts.InfoHash)
		sh.totals[totTorrents].Add(1)
		idle := uint32(min(ts.Idle, s.cfg.TorrentTimeout) / time.Second)
		sl.last = now - min(idle, now)
	}
	if ts.Completed > sl.completed {
		sh.totals[totCompleted].Add(int64(ts.Completed - sl.completed))
		sl.completed = ts.Completed
	}
	before := sh.famCounts(sl)
	defer func() { sh.account(before, sh.famCounts(sl)) }()
	added := 0
	for _, p := range ts.Peers {
		if p.Age >= timeout {
			continue
		}
		if !ValidPeer(p.Addr) {
			s.invalidAddrs.Add(1)
			continue
		}
		key, rl := packKey(&kbuf, p.Addr)
		age := uint8(min(p.Age/tick, time.Duration(s.ttlTicks)))
		rec, _ := sh.findRec(sl, key, rl)
		if rec != nil {
			if uint8(stamp-rec[rl-1]) <= age {
				// Ours is fresher. A peer learned from a node not known
				// then (a full catch-up) takes the origin of the node
				// that now says it is its own.
				if rec[rl-2]&flagSynced != 0 && rec[rl-2]>>originShift == 0 {
					rec[rl-2] |= p.Origin << originShift
				}
				rec[rl-2] |= flagMark
				continue
			}
			if rec[rl-2]&flagSeeder != 0 {
				sh.addSeeder(sl, rl, -1)
			}
		} else {
			if sh.wasStopped(&ts.InfoHash, key) {
				continue
			}
			if !reserve(&s.peers, s.cfg.MaxPeers) {
				sh.peerLimit.Add(1)
				return added, ErrPeerLimit
			}
			rec, _ = sh.addRec(sl, key, rl)
			added++
		}
		if p.Seeder {
			sh.addSeeder(sl, rl, 1)
		}
		rec[rl-2], rec[rl-1] = byte(p.Flags())|flagMark|p.Origin<<originShift, stamp-age
	}
	return added, nil
}

// KeepStops has the store remember, until ForgetStops, every peer a
// stopped announce removes (or finds absent), and Restore not add those
// back: another instance's state can be dumped before one of its peers
// stops and reach this store after the stop did, as a catch-up stream
// overtaken by an announce batch. A peer announced again after its stop is
// present, and Restore merges it as any other. One such round runs at a
// time.
func (s *Store) KeepStops() {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		sh.stopped = make(map[stoppedPeer]struct{})
		sh.mu.Unlock()
	}
}

// ForgetStops ends what KeepStops began.
func (s *Store) ForgetStops() {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		sh.stopped = nil
		sh.mu.Unlock()
	}
}

// stoppedPeer is a peer of one torrent in KeepStops's set: its packed
// address (IPv4 in the first PeerLen4 bytes) and that address's length.
type stoppedPeer struct {
	hash InfoHash
	addr [PeerLen6]byte
	n    uint8
}

func stoppedPeerOf(h *InfoHash, key []byte) stoppedPeer {
	p := stoppedPeer{hash: *h, n: uint8(len(key))}
	copy(p.addr[:], key)
	return p
}

// wasStopped reports whether the peer of packed address key was stopped in
// torrent h since KeepStops; sh.mu is held.
func (sh *shard) wasStopped(h *InfoHash, key []byte) bool {
	if sh.stopped == nil {
		return false
	}
	_, ok := sh.stopped[stoppedPeerOf(h, key)]
	return ok
}

// ClearMarks clears every peer's mark. From then on Announce and Restore
// mark each peer they store, so that after a Restore of everything one
// instance holds, DropUnmarked can remove what that instance no longer
// has. One such round runs at a time.
func (s *Store) ClearMarks() {
	s.filterPeers(func(r []byte) bool {
		r[len(r)-2] &^= flagMark
		return true
	})
}

// DropUnmarked removes the peers that came from origin (Announce.Origin,
// PeerState.Origin) and were neither announced nor restored since
// ClearMarks, and returns how many.
func (s *Store) DropUnmarked(origin uint8) int {
	return s.filterPeers(func(r []byte) bool {
		f := r[len(r)-2]
		return f&flagMark != 0 || f>>originShift != origin
	})
}
