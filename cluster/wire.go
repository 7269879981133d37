package cluster

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"herald/swarm"
)

// Every message herald puts on NATS starts with the same header (integers
// big-endian):
//
//	version u8 | kind u8 | node id u64 | seq u32
//
// The node id is random per process, so a restarted instance is a new node.
// seq numbers a node's announce batches (heartbeats included) from 1, and a
// catch-up stream's chunks from 1; a receiver that sees a number skipped knows
// it missed a message.
//
// Version 2 took swarm's TorrentState encoding and flag bits for catch-up
// and the seeder flag bit for announce records; a node drops (and counts as
// malformed) the messages of another version, so all nodes of a cluster
// run the same version.
const (
	Version   = 2
	HeaderLen = 1 + 1 + 8 + 4
)

// Kind says what follows the header.
type Kind uint8

const (
	// KindAnnounces is a batch of announce records on <prefix>.announces;
	// a batch with no records is a heartbeat.
	KindAnnounces Kind = 1
	// KindSyncRequest asks for a catch-up stream: scope u8 (SyncAll or
	// SyncOwn).
	KindSyncRequest Kind = 2
	// KindSyncChunk carries torrent records of a catch-up stream.
	KindSyncChunk Kind = 3
	// KindSyncEnd closes a catch-up stream: torrents uvarint | peers
	// uvarint | the sender's node name.
	KindSyncEnd Kind = 4
)

// Scopes of a KindSyncRequest.
const (
	// SyncAll asks for every peer the node knows.
	SyncAll = 0
	// SyncOwn asks only for the peers that announced to the node itself,
	// not those it learned from the cluster.
	SyncOwn = 1
)

// Header is the start of every message.
type Header struct {
	Kind Kind
	Node uint64
	Seq  uint32
}

// AppendHeader appends h's wire form to dst.
func AppendHeader(dst []byte, h Header) []byte {
	dst = append(dst, Version, byte(h.Kind))
	dst = binary.BigEndian.AppendUint64(dst, h.Node)
	return binary.BigEndian.AppendUint32(dst, h.Seq)
}

// ParseHeader reads a message's header and returns the body after it.
func ParseHeader(msg []byte) (Header, []byte, error) {
	if len(msg) < HeaderLen {
		return Header{}, nil, ErrShort
	}
	if msg[0] != Version {
		return Header{}, nil, ErrVersion
	}
	h := Header{
		Kind: Kind(msg[1]),
		Node: binary.BigEndian.Uint64(msg[2:]),
		Seq:  binary.BigEndian.Uint32(msg[10:]),
	}
	if (h.Kind < KindAnnounces || h.Kind > KindSyncEnd) && (h.Kind < KindWebPeers || h.Kind > KindWebAnswer) {
		return Header{}, nil, ErrMalformed
	}
	return h, msg[HeaderLen:], nil
}

// An announce record is one accepted announce:
//
//	flags u8 | info hash [20] | address [4 or 16] | port u16
//
// flags: bit 0 seeder (swarm.PeerSeeder), bits 4-5 the event (BEP 15
// numbering: none, completed, started, stopped), bit 7 IPv6 address; the
// other bits are zero. A record is 27 bytes for an IPv4 peer, 39 for IPv6.
const (
	recordFlagSeeder = byte(swarm.PeerSeeder)
	recordEventShift = 4
	recordFlagIPv6   = 1 << 7
	recordFlagsKnown = recordFlagSeeder | 0x3<<recordEventShift | recordFlagIPv6

	RecordLen4 = 1 + 20 + swarm.PeerLen4
	RecordLen6 = 1 + 20 + swarm.PeerLen6
)

// Record is one announce as the cluster carries it: what another instance
// needs to store the peer, and nothing else.
type Record struct {
	InfoHash swarm.InfoHash
	Addr     netip.AddrPort
	Event    swarm.Event
	Seeder   bool
}

// AppendRecord appends a's record to dst. IPv4-mapped addresses are sent as
// IPv4, as the store keeps them.
func AppendRecord(dst []byte, a *swarm.Announce) []byte {
	f := (byte(a.Event) & 0x3) << recordEventShift
	if a.Seeder() {
		f |= recordFlagSeeder
	}
	ip := a.Addr.Addr().Unmap()
	if ip.Is4() {
		b := ip.As4()
		dst = append(dst, f)
		dst = append(dst, a.InfoHash[:]...)
		dst = append(dst, b[:]...)
	} else {
		b := ip.As16()
		dst = append(dst, f|recordFlagIPv6)
		dst = append(dst, a.InfoHash[:]...)
		dst = append(dst, b[:]...)
	}
	return binary.BigEndian.AppendUint16(dst, a.Addr.Port())
}

// ParseRecord reads one record from b and returns the rest of b.
func ParseRecord(b []byte) (Record, []byte, error) {
	if len(b) < RecordLen4 {
		return Record{}, nil, ErrShort
	}
	f := b[0]
	if f&^recordFlagsKnown != 0 {
		return Record{}, nil, ErrMalformed
	}
	r := Record{Event: swarm.Event(f >> recordEventShift & 0x3), Seeder: f&recordFlagSeeder != 0}
	copy(r.InfoHash[:], b[1:21])
	n := RecordLen4
	var ip netip.Addr
	if f&recordFlagIPv6 != 0 {
		if len(b) < RecordLen6 {
			return Record{}, nil, ErrShort
		}
		n = RecordLen6
		ip = netip.AddrFrom16([16]byte(b[21:37]))
		if ip.Is4In6() {
			return Record{}, nil, ErrMalformed // sent as IPv4, never mapped
		}
	} else {
		ip = netip.AddrFrom4([4]byte(b[21:25]))
	}
	r.Addr = netip.AddrPortFrom(ip, binary.BigEndian.Uint16(b[n-2:]))
	return r, b[n:], nil
}

// Announce returns the announce the receiving store applies for r: marked
// as learned from the cluster, asking for no peers.
func (r *Record) Announce() swarm.Announce {
	a := swarm.Announce{InfoHash: r.InfoHash, Addr: r.Addr, Event: r.Event, FromCluster: true}
	if !r.Seeder {
		a.Left = 1
	}
	return a
}

// A catch-up chunk's body is a run of torrents, each a swarm.TorrentState
// in swarm's encoding (swarm.AppendTorrentState), the one snapshots use
// too. A big torrent may be split over several chunks, each with part of
// its peers: the receiver merges, so a torrent seen twice is no harm.
const (
	// maxTorrentHeader and maxPeer bound the encoded sizes, so a chunk
	// writer knows what fits before it appends.
	maxTorrentHeader = swarm.TorrentStateMaxLen
	maxPeer          = swarm.PeerStateMaxLen
)

// ParseTorrent reads one torrent of a chunk from b into ts, reusing
// ts.Peers, and returns the rest of b. Every peer is marked Synced: it came
// from another instance.
func ParseTorrent(b []byte, ts *swarm.TorrentState) ([]byte, error) {
	b, err := swarm.ParseTorrentState(b, ts)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	for i := range ts.Peers {
		ts.Peers[i].Synced = true
	}
	return b, nil
}

// SyncEnd is the body of a KindSyncEnd message.
type SyncEnd struct {
	Torrents, Peers uint64
	Name            string
}

// AppendSyncEnd appends e's wire form to dst.
func AppendSyncEnd(dst []byte, e SyncEnd) []byte {
	dst = binary.AppendUvarint(dst, e.Torrents)
	dst = binary.AppendUvarint(dst, e.Peers)
	return append(dst, e.Name...)
}

// ParseSyncEnd reads a KindSyncEnd body.
func ParseSyncEnd(b []byte) (SyncEnd, error) {
	var e SyncEnd
	var err error
	if e.Torrents, b, err = uvarint(b, 1<<63); err != nil {
		return SyncEnd{}, err
	}
	if e.Peers, b, err = uvarint(b, 1<<63); err != nil {
		return SyncEnd{}, err
	}
	e.Name = string(b)
	return e, nil
}

func uvarint(b []byte, limit uint64) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	switch {
	case n == 0:
		return 0, nil, ErrShort
	case n < 0 || v > limit:
		return 0, nil, ErrMalformed
	}
	return v, b[n:], nil
}
