package wstracker

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"herald/swarm"
	"herald/tracker"
)

// swarms holds the WebSocket peers of every torrent. A peer is a (peer_id,
// connection) pair: the tracker never hands out addresses, it writes
// offers and answers to the peer's socket (doc.go says why this is not
// swarm.Store).
//
// Lock order: shard.mu, then conn.mu. A connection's swarm list is changed
// only under both, so a closing connection (which marks itself closed under
// conn.mu, then visits its swarms) can never miss a swarm joined
// concurrently.
type swarms struct {
	shards   [shardCount]shard
	torrents atomic.Int64
	peers    atomic.Int64 // local members
	remote   atomic.Int64 // members held by other instances (relay.go)
	// cluster hears of every change to the local members, under the shard
	// lock, so that a peer's changes go out in order; nil when alone.
	cluster Cluster
}

const shardCount = 64

type shard struct {
	mu       sync.Mutex
	torrents map[swarm.InfoHash]*torrent // guarded by mu
}

// torrent is one swarm. members holds the peers in no order, for O(1)
// random picks and removal; byID indexes them by peer_id.
type torrent struct {
	byID      map[swarm.PeerID]*member
	members   []*member
	seeders   uint32
	completed uint32
}

type member struct {
	id   swarm.PeerID
	conn *conn // nil for a peer of another instance
	// node is the cluster node whose connection holds the peer; 0 for a
	// local one.
	node   uint64
	seeder bool
	index  int // position in torrent.members
}

// target is a peer picked to receive an offer, copied out of the shard so
// the write happens without the lock: a local connection, or the node
// that holds the peer.
type target struct {
	id   swarm.PeerID
	conn *conn
	node uint64
}

func newSwarms(c Cluster) *swarms {
	s := &swarms{cluster: c}
	for i := range s.shards {
		s.shards[i].torrents = make(map[swarm.InfoHash]*torrent)
	}
	return s
}

func (s *swarms) shardOf(h *swarm.InfoHash) *shard {
	return &s.shards[h[0]%shardCount]
}

func (t *torrent) counts() swarm.Counts {
	return swarm.Counts{Seeders: t.seeders, Leechers: uint32(len(t.members)) - t.seeders, Completed: t.completed}
}

// limits bounds what announces may create.
type limits struct {
	maxTorrents, maxPeers, maxSwarmsPerConn int
}

// announce adds or refreshes r's peer on connection c and picks up to
// cap(dst)-len(dst) other peers of the swarm into dst, returning the
// swarm's counts after the announce. A stopped event removes the peer.
func (s *swarms) announce(c *conn, r *swarm.Announce, lim limits, dst []target) ([]target, swarm.Counts, *tracker.ClientError) {
	sh := s.shardOf(&r.InfoHash)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	t := sh.torrents[r.InfoHash]
	if r.Event == swarm.EventStopped {
		if t == nil {
			return dst, swarm.Counts{}, nil
		}
		if m := t.byID[r.PeerID]; m != nil && m.conn == c {
			c.leave(r.InfoHash, r.PeerID)
			s.remove(sh, &r.InfoHash, t, m)
		}
		return dst, t.counts(), nil
	}
	if t == nil {
		if lim.maxTorrents > 0 && s.torrents.Load() >= int64(lim.maxTorrents) {
			return dst, swarm.Counts{}, tracker.TorrentLimit.Err()
		}
		t = &torrent{byID: make(map[swarm.PeerID]*member, 1)}
	}
	m := t.byID[r.PeerID]
	changed := m == nil || m.conn == nil
	switch {
	case m != nil && m.conn == nil:
		// Announced on another instance too, which it may just have
		// left: this connection takes the peer over, its own instance
		// relays to it from now on.
		if !c.join(r.InfoHash, r.PeerID, lim.maxSwarmsPerConn) {
			return dst, t.counts(), tracker.SwarmsPerConn.Err()
		}
		m.conn, m.node = c, 0
		s.remote.Add(-1)
		s.peers.Add(1)
	case m != nil && m.conn != c && !m.conn.isClosed():
		return dst, t.counts(), tracker.PeerIDInUse.Err()
	case m != nil && m.conn != c:
		// The previous connection of this peer_id is closing; its cleanup
		// skips members it no longer owns.
		m.conn = c
		if !c.join(r.InfoHash, r.PeerID, lim.maxSwarmsPerConn) {
			s.remove(sh, &r.InfoHash, t, m)
			return dst, t.counts(), tracker.SwarmsPerConn.Err()
		}
	case m == nil:
		if lim.maxPeers > 0 && s.peers.Load() >= int64(lim.maxPeers) {
			return dst, t.counts(), tracker.PeerLimit.Err()
		}
		if !c.join(r.InfoHash, r.PeerID, lim.maxSwarmsPerConn) {
			return dst, t.counts(), tracker.SwarmsPerConn.Err()
		}
		if len(t.members) == 0 {
			sh.torrents[r.InfoHash] = t
			s.torrents.Add(1)
		}
		m = &member{id: r.PeerID, conn: c, index: len(t.members)}
		t.byID[r.PeerID] = m
		t.members = append(t.members, m)
		s.peers.Add(1)
	}
	seeder := r.Seeder()
	completed := r.Event == swarm.EventCompleted && !m.seeder && seeder
	if completed {
		t.completed++
	}
	// As bittorrent-tracker: a seeder stays one even when a later message
	// (an answer, say) carries no "left".
	if seeder && !m.seeder {
		m.seeder = true
		t.seeders++
		changed = true
	}
	if changed && s.cluster != nil {
		s.cluster.PeerJoined(r.InfoHash, r.PeerID, m.seeder, completed)
	}
	return t.pick(dst, m), t.counts(), nil
}

// pick appends up to cap(dst)-len(dst) members other than self, a run
// from a random start: cheap, and every peer is as likely to be offered.
func (t *torrent) pick(dst []target, self *member) []target {
	n := len(t.members)
	want := cap(dst) - len(dst)
	if want == 0 || n < 2 {
		return dst
	}
	start := rand.IntN(n)
	for i := 0; i < n && want > 0; i++ {
		m := t.members[(start+i)%n]
		if m == self {
			continue
		}
		dst = append(dst, target{id: m.id, conn: m.conn, node: m.node})
		want--
	}
	return dst
}

// remove drops m from t, and t from the shard once it is empty; the
// cluster hears of a local member's leaving.
func (s *swarms) remove(sh *shard, h *swarm.InfoHash, t *torrent, m *member) {
	last := len(t.members) - 1
	t.members[m.index] = t.members[last]
	t.members[m.index].index = m.index
	t.members[last] = nil
	t.members = t.members[:last]
	delete(t.byID, m.id)
	if m.seeder {
		t.seeders--
	}
	switch {
	case m.conn == nil:
		s.remote.Add(-1)
	case s.cluster != nil:
		s.cluster.PeerLeft(*h, m.id)
		fallthrough
	default:
		s.peers.Add(-1)
	}
	if len(t.members) == 0 {
		delete(sh.torrents, *h)
		s.torrents.Add(-1)
	}
}

// leaveAll removes every peer connection c holds; c is already closed,
// so it joins nothing more.
func (s *swarms) leaveAll(c *conn) {
	for _, j := range c.joinedSwarms() {
		sh := s.shardOf(&j.infoHash)
		sh.mu.Lock()
		if t := sh.torrents[j.infoHash]; t != nil {
			if m := t.byID[j.peerID]; m != nil && m.conn == c {
				s.remove(sh, &j.infoHash, t, m)
			}
		}
		sh.mu.Unlock()
	}
}

// lookup returns the connection of peer id in swarm h, if it is there and
// local.
func (s *swarms) lookup(h *swarm.InfoHash, id *swarm.PeerID) *conn {
	sh := s.shardOf(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if t := sh.torrents[*h]; t != nil {
		if m := t.byID[*id]; m != nil {
			return m.conn
		}
	}
	return nil
}

// scrape returns the counts of swarm h; an unknown swarm has zero counts.
func (s *swarms) scrape(h *swarm.InfoHash) swarm.Counts {
	sh := s.shardOf(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if t := sh.torrents[*h]; t != nil {
		return t.counts()
	}
	return swarm.Counts{}
}
