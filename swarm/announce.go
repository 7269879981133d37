// Package swarm is herald's in-RAM store: torrents keyed by info hash in an
// open-addressed table per shard, their IPv4 and IPv6 peers in compact
// sorted records (inside the torrent's slot, in an arena block, or for big
// swarms in bucketed vectors; table.go), expiry, and random peer selection.
// It knows nothing of sockets or wire formats; every frontend builds an
// Announce and calls Store.Announce, which updates the swarm and picks peers
// in one call under one shard lock.
package swarm

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// InfoHash is the 20-byte SHA-1 of a torrent's info dictionary (BEP 3).
type InfoHash [20]byte

// PeerID is the 20-byte id a client sends. The store does not keep it: a
// peer's identity is its address and port, so no client can impersonate
// another by sending its peer id.
type PeerID [20]byte

// Event is the announce event (BEP 3); its values match BEP 15's numbering.
type Event uint8

const (
	EventNone      Event = 0
	EventCompleted Event = 1
	EventStarted   Event = 2
	EventStopped   Event = 3
)

// String returns the BEP 3 name of the event ("" for none).
func (e Event) String() string {
	switch e {
	case EventCompleted:
		return "completed"
	case EventStarted:
		return "started"
	case EventStopped:
		return "stopped"
	}
	return ""
}

// Family selects which address families of peers an announce wants back.
type Family uint8

const (
	FamilyV4 Family = 1 << iota
	FamilyV6
	FamilyBoth = FamilyV4 | FamilyV6
)

// FamilyOf returns the family of addr (IPv4-mapped IPv6 counts as IPv4).
func FamilyOf(addr netip.Addr) Family {
	if addr.Unmap().Is4() {
		return FamilyV4
	}
	return FamilyV6
}

// Announce is one announce, protocol-neutral: the HTTP, UDP and WebSocket
// frontends build it, and every sink (cluster, snapshot, stats) sees it the
// same way.
type Announce struct {
	InfoHash InfoHash
	PeerID   PeerID
	// Addr is the peer's address and port as the tracker will hand it out.
	Addr netip.AddrPort
	// Left is the number of bytes the peer still needs; 0 means seeder.
	Left       uint64
	Uploaded   uint64
	Downloaded uint64
	Event      Event
	// NumWant is how many peers to return, already defaulted and capped by
	// the frontend; the store still caps it at Config.MaxNumWant.
	NumWant int
	Key     uint32
	// FromCluster marks an announce learned from another instance: it is
	// stored with the synced flag and never re-published.
	FromCluster bool
	// Origin is the instance a FromCluster announce came from, as a number
	// from 1 to MaxOrigin the cluster gives it (0: not known); the store
	// keeps it with the peer for DropUnmarked.
	Origin uint8
}

// MaxOrigin is the largest Announce.Origin: the store keeps it in four
// bits of each peer record.
const MaxOrigin = 15

// Seeder reports whether the announcing peer has the whole torrent.
func (a *Announce) Seeder() bool { return a.Left == 0 }

// Counts are a torrent's totals over both address families.
type Counts struct {
	Seeders   uint32
	Leechers  uint32
	Completed uint32 // "downloaded": completed events seen
}

// Peers holds packed peer addresses, the store's own representation: an IPv4
// peer is 4 address bytes then the port big-endian (6 bytes), an IPv6 peer 16
// then 2 (18 bytes). It is also BEP 23/BEP 7's compact form.
type Peers struct {
	V4 []byte
	V6 []byte
}

const (
	// PeerLen4 and PeerLen6 are the sizes of one packed peer in Peers.
	PeerLen4 = 6
	PeerLen6 = 18
)

// Errors a frontend turns into a client-visible failure.
var (
	ErrTorrentLimit = errors.New("swarm: tracker is full, no new torrents accepted")
	ErrPeerLimit    = errors.New("swarm: tracker is full, no new peers accepted")
	ErrInvalidAddr  = errors.New("swarm: invalid peer address")
)

// ValidPeer reports whether addr may be stored and handed out as a peer: a
// port other than 0, and an address a client can connect to, so not the
// unspecified address, a multicast group or the IPv4 broadcast address.
// It is the one rule for every input: Store.Announce refuses an announce
// from any frontend with ErrInvalidAddr by it, Store.Restore drops such
// peers from snapshots and catch-ups, and the cluster applies it to every
// record before it reaches the store.
func ValidPeer(addr netip.AddrPort) bool {
	ip := addr.Addr()
	if !ip.IsValid() || addr.Port() == 0 {
		return false
	}
	// Integer tests on the 16-byte form (IPv4 as ::ffff:a.b.c.d): netip's
	// predicates each unmap and branch again, about 90 instructions of
	// every announce (callgrind).
	b := ip.As16()
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	if hi == 0 && lo>>32 == 0xffff {
		v4 := uint32(lo)
		return v4 != 0 && v4>>28 != 0xe && v4 != 0xffffffff // unspecified, 224.0.0.0/4, broadcast
	}
	return hi|lo != 0 && b[0] != 0xff // unspecified, ff00::/8
}
