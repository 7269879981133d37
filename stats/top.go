package stats

import (
	"bytes"

	"herald/swarm"
)

// maxTop is the longest list mode=top100 asks for.
const maxTop = 100

// Top holds the busiest torrents three ways, busiest first. Torrents with
// a count of zero are left out of that list, as opentracker does.
type Top struct {
	ByPeers    []swarm.TorrentCounts // seeders + leechers
	BySeeders  []swarm.TorrentCounts
	ByLeechers []swarm.TorrentCounts
}

// Top returns the n busiest torrents (n at most 100). It walks the store
// with Range, which copies one shard at a time, so announces never wait on
// it for long.
func (m *Monitor) Top(n int) Top {
	n = min(max(n, 0), maxTop)
	peers := topList{n: n, count: func(c swarm.Counts) uint64 { return uint64(c.Seeders) + uint64(c.Leechers) }}
	seeders := topList{n: n, count: func(c swarm.Counts) uint64 { return uint64(c.Seeders) }}
	leechers := topList{n: n, count: func(c swarm.Counts) uint64 { return uint64(c.Leechers) }}
	if n > 0 {
		m.store.Range(func(tc swarm.TorrentCounts) bool {
			peers.offer(tc)
			seeders.offer(tc)
			leechers.offer(tc)
			return true
		})
	}
	return Top{ByPeers: peers.list, BySeeders: seeders.list, ByLeechers: leechers.list}
}

// topList keeps the n largest by count, ties broken by info_hash so the
// output does not depend on the store's iteration order.
type topList struct {
	n     int
	count func(swarm.Counts) uint64
	list  []swarm.TorrentCounts
}

func (t *topList) offer(tc swarm.TorrentCounts) {
	c := t.count(tc.Counts)
	if c == 0 {
		return
	}
	if len(t.list) == t.n && !t.before(c, &tc.InfoHash, &t.list[t.n-1]) {
		return
	}
	i := t.position(c, &tc.InfoHash)
	if len(t.list) < t.n {
		t.list = append(t.list, swarm.TorrentCounts{})
	}
	copy(t.list[i+1:], t.list[i:len(t.list)-1])
	t.list[i] = tc
}

// position is where an entry of count c and hash h goes in the list.
func (t *topList) position(c uint64, h *swarm.InfoHash) int {
	lo, hi := 0, len(t.list)
	for lo < hi {
		mid := (lo + hi) / 2
		if t.before(c, h, &t.list[mid]) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// before reports whether an entry of count c and hash h ranks before e.
func (t *topList) before(c uint64, h *swarm.InfoHash, e *swarm.TorrentCounts) bool {
	ec := t.count(e.Counts)
	if c != ec {
		return c > ec
	}
	return bytes.Compare(h[:], e.InfoHash[:]) < 0
}
