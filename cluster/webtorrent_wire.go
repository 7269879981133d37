package cluster

import (
	"encoding/binary"

	"herald/swarm"
)

// Kinds of the WebTorrent messages (webtorrent.go). They are numbered apart
// from the announce kinds, which may grow.
const (
	// KindWebPeers is a batch of WebTorrent peer records on
	// <prefix>.ws.peers, numbered per node in a sequence of its own; a
	// batch with no records is a heartbeat.
	KindWebPeers Kind = 16
	// KindWebPeersRequest asks for the receiver's own WebTorrent peers: on
	// <prefix>.ws.peers from a node that (re)connected, to everyone; on
	// <prefix>.ws.node.<id> from a node that missed a batch of id's. Its
	// body is empty.
	KindWebPeersRequest Kind = 17
	// KindWebPeersState is one chunk of a node's own WebTorrent peers, to
	// the asker's <prefix>.ws.node.<id>; Seq numbers the chunks from 1.
	// Body: as of u32 (the last KindWebPeers batch the list includes) |
	// last u8 (1 on the final chunk) | peer records, without removals.
	KindWebPeersState Kind = 18
	// KindWebOffer carries one WebRTC offer to the node that holds the
	// peer it is for, on that node's <prefix>.ws.node.<id>; KindWebAnswer
	// carries the answer back to the offerer's node. Body: a relay.
	KindWebOffer  Kind = 19
	KindWebAnswer Kind = 20
)

// A WebTorrent peer record says that a node's WebSocket connection holds
// (or no longer holds) a peer id in a swarm:
//
//	flags u8 | info hash [20] | peer id [20]
//
// flags: bit 0 seeder, bit 1 left (the peer is gone: stopped, or its
// connection closed; no other bit set), bit 2 completed (a leecher turned
// seeder with event completed: the swarm's download count moves).
const (
	webFlagSeeder    = 1 << 0
	webFlagLeft      = 1 << 1
	webFlagCompleted = 1 << 2
	webFlagsKnown    = webFlagSeeder | webFlagLeft | webFlagCompleted

	WebPeerLen = 1 + 20 + 20
)

// WebPeer is a WebTorrent peer record.
type WebPeer struct {
	InfoHash  swarm.InfoHash
	PeerID    swarm.PeerID
	Seeder    bool
	Left      bool
	Completed bool
}

// AppendWebPeer appends p's record to dst.
func AppendWebPeer(dst []byte, p *WebPeer) []byte {
	var f byte
	switch {
	case p.Left:
		f = webFlagLeft
	case p.Seeder:
		f = webFlagSeeder
		if p.Completed {
			f |= webFlagCompleted
		}
	}
	dst = append(dst, f)
	dst = append(dst, p.InfoHash[:]...)
	return append(dst, p.PeerID[:]...)
}

// ParseWebPeer reads one record from b and returns the rest of b. A
// removal with other flags, or a completion by a leecher, is malformed.
func ParseWebPeer(b []byte) (WebPeer, []byte, error) {
	if len(b) < WebPeerLen {
		return WebPeer{}, nil, ErrShort
	}
	f := b[0]
	if f&^webFlagsKnown != 0 || f&webFlagLeft != 0 && f != webFlagLeft || f&webFlagCompleted != 0 && f&webFlagSeeder == 0 {
		return WebPeer{}, nil, ErrMalformed
	}
	p := WebPeer{Seeder: f&webFlagSeeder != 0, Left: f&webFlagLeft != 0, Completed: f&webFlagCompleted != 0}
	copy(p.InfoHash[:], b[1:21])
	copy(p.PeerID[:], b[21:41])
	return p, b[WebPeerLen:], nil
}

// WebPeersState is the head of a KindWebPeersState body; the records
// follow it.
type WebPeersState struct {
	AsOf uint32
	Last bool
}

const webStateHeadLen = 4 + 1

// AppendWebPeersState appends s's wire form to dst.
func AppendWebPeersState(dst []byte, s WebPeersState) []byte {
	dst = binary.BigEndian.AppendUint32(dst, s.AsOf)
	if s.Last {
		return append(dst, 1)
	}
	return append(dst, 0)
}

// ParseWebPeersState reads the head of a KindWebPeersState body and returns
// the records after it.
func ParseWebPeersState(b []byte) (WebPeersState, []byte, error) {
	if len(b) < webStateHeadLen {
		return WebPeersState{}, nil, ErrShort
	}
	if b[4] > 1 {
		return WebPeersState{}, nil, ErrMalformed
	}
	return WebPeersState{AsOf: binary.BigEndian.Uint32(b), Last: b[4] == 1}, b[webStateHeadLen:], nil
}

// A relay is the body of KindWebOffer and KindWebAnswer: one offer or
// answer of a peer, for one peer of a swarm held by the receiving node:
//
//	info hash [20] | from peer id [20] | to peer id [20] | offer id [20] | SDP
//
// The SDP is the client's "offer" or "answer" JSON object, relayed byte for
// byte; it runs to the end of the message, and is at most MaxRelaySDP.
const (
	relayHeadLen = 4 * 20
	// MaxRelaySDP bounds a relayed offer or answer: the WebSocket
	// tracker's message size limit (wstracker.DefaultMaxMessageBytes).
	MaxRelaySDP = 64 << 10
)

// WebRelay is an offer or answer on its way to the node of the peer To.
type WebRelay struct {
	InfoHash swarm.InfoHash
	From, To swarm.PeerID
	OfferID  [20]byte
	SDP      []byte
}

// AppendWebRelay appends r's wire form to dst.
func AppendWebRelay(dst []byte, r *WebRelay) []byte {
	dst = append(dst, r.InfoHash[:]...)
	dst = append(dst, r.From[:]...)
	dst = append(dst, r.To[:]...)
	dst = append(dst, r.OfferID[:]...)
	return append(dst, r.SDP...)
}

// ParseWebRelay reads a relay body; r.SDP is a span of b.
func ParseWebRelay(b []byte) (WebRelay, error) {
	if len(b) <= relayHeadLen {
		return WebRelay{}, ErrShort
	}
	if len(b)-relayHeadLen > MaxRelaySDP {
		return WebRelay{}, ErrMalformed
	}
	var r WebRelay
	copy(r.InfoHash[:], b[0:20])
	copy(r.From[:], b[20:40])
	copy(r.To[:], b[40:60])
	copy(r.OfferID[:], b[60:80])
	r.SDP = b[relayHeadLen:]
	return r, nil
}
