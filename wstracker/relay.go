package wstracker

import (
	"herald/counters"
	"herald/swarm"
)

// Cluster carries the handler's swarms to the other instances of a
// cluster (cluster.Node implements it; cmd/herald wires the two). The
// handler tells it of every change to its own peers, and hands it the
// offers and answers for peers that other instances hold. In the other
// direction the cluster calls RemoteJoined, RemoteLeft, DeliverOffer and
// DeliverAnswer.
//
// A peer held elsewhere is a member of the swarm like a local one: it is
// counted in announce replies and scrapes, and offers pick it as often.
// Its offer goes to its instance in one message, which remembers it on the
// receiving connection as a local relay does; the answer comes back the
// same way. One peer id is one member per swarm: a local connection that
// announces a peer id another instance holds takes it over (a browser that
// moved), and a remote claim to a peer id held here is refused.
type Cluster interface {
	// PeerJoined and PeerLeft are called under the swarm's lock, so a
	// peer's changes reach the cluster in order; they must not block.
	PeerJoined(h swarm.InfoHash, id swarm.PeerID, seeder, completed bool)
	PeerLeft(h swarm.InfoHash, id swarm.PeerID)
	// SendOffer and SendAnswer send an offer or answer of local peer from
	// to peer to, held by node; false means it could not go.
	SendOffer(node uint64, h swarm.InfoHash, from, to swarm.PeerID, offerID [20]byte, sdp []byte) bool
	SendAnswer(node uint64, h swarm.InfoHash, from, to swarm.PeerID, offerID [20]byte, sdp []byte) bool
}

// RemoteJoined adds peer id of swarm h, held by cluster node node, or
// updates its seeder state; completed counts a download. It reports false
// when the tracker's limits refuse it (MaxTorrents; MaxPeers bounds the
// remote peers apart from the local ones) or when a local connection
// holds that peer id.
func (h *Handler) RemoteJoined(node uint64, ih swarm.InfoHash, id swarm.PeerID, seeder, completed bool) bool {
	s := h.swarms
	sh := s.shardOf(&ih)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	t := sh.torrents[ih]
	if t == nil {
		if h.cfg.MaxTorrents > 0 && s.torrents.Load() >= int64(h.cfg.MaxTorrents) {
			return false
		}
		t = &torrent{byID: make(map[swarm.PeerID]*member, 1)}
	}
	m := t.byID[id]
	switch {
	case m == nil:
		if h.cfg.MaxPeers > 0 && s.remote.Load() >= int64(h.cfg.MaxPeers) {
			return false
		}
		if len(t.members) == 0 {
			sh.torrents[ih] = t
			s.torrents.Add(1)
		}
		m = &member{id: id, node: node, index: len(t.members)}
		t.byID[id] = m
		t.members = append(t.members, m)
		s.remote.Add(1)
	case m.conn != nil:
		return false
	default:
		// Held by another node until now: the peer moved, and its old
		// node's removal, when it comes, no longer matches.
		m.node = node
	}
	if completed && !m.seeder {
		t.completed++
	}
	if seeder && !m.seeder {
		m.seeder = true
		t.seeders++
	}
	return true
}

// RemoteLeft removes peer id of swarm h if cluster node node holds it.
func (h *Handler) RemoteLeft(node uint64, ih swarm.InfoHash, id swarm.PeerID) {
	s := h.swarms
	sh := s.shardOf(&ih)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if t := sh.torrents[ih]; t != nil {
		if m := t.byID[id]; m != nil && m.conn == nil && m.node == node {
			s.remove(sh, &ih, t, m)
		}
	}
}

// DeliverOffer writes an offer of peer from, held by cluster node node, to
// local peer to of swarm ih, and remembers it so that to's answer goes
// back to node. sdp must be one JSON object: it is written into the
// message as it is.
func (h *Handler) DeliverOffer(node uint64, ih swarm.InfoHash, from, to swarm.PeerID, offerID [20]byte, sdp []byte) bool {
	c := h.swarms.lookup(&ih, &to)
	if c == nil || c.isClosed() || !isJSONObject(sdp) {
		return false
	}
	c.expectAnswer(pendingOffer{infoHash: ih, id: offerID, from: from, to: to, node: node})
	buf := getBuffer()
	defer putBuffer(buf)
	*buf = AppendOffer((*buf)[:0], &ih, &from, &Offer{ID: offerID, SDP: sdp})
	if !c.relay(*buf) {
		return false
	}
	h.counts.Event(counters.WS, counters.OfferRelayed)
	return true
}

// DeliverAnswer writes an answer of peer from, held by cluster node node,
// to local peer to of swarm ih, whose offer offerID it answers. Node has
// checked that its peer was given that offer.
func (h *Handler) DeliverAnswer(node uint64, ih swarm.InfoHash, from, to swarm.PeerID, offerID [20]byte, sdp []byte) bool {
	c := h.swarms.lookup(&ih, &to)
	if c == nil || c.isClosed() || !isJSONObject(sdp) {
		return false
	}
	buf := getBuffer()
	defer putBuffer(buf)
	id := OfferID(offerID)
	*buf = AppendAnswer((*buf)[:0], &ih, &from, &id, sdp)
	if !c.relay(*buf) {
		return false
	}
	h.counts.Event(counters.WS, counters.AnswerRelayed)
	return true
}

// isJSONObject reports whether b is exactly one JSON object.
func isJSONObject(b []byte) bool {
	s := scanner{data: b}
	if s.peek() != '{' {
		return false
	}
	_, ok := s.value(1)
	return ok && s.atEnd()
}
