package swarm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// PeerFlags are a peer's flag bits. The store keeps them in each record,
// and snapshots and cluster messages carry them as they are: one set of
// bits everywhere.
type PeerFlags uint8

const (
	PeerSeeder     PeerFlags = 1 << 0
	PeerCompleted  PeerFlags = 1 << 1 // sent a completed event
	PeerSynced     PeerFlags = 1 << 2 // learned from another instance
	peerFlagsKnown           = PeerSeeder | PeerCompleted | PeerSynced
)

// Flags returns p's flag bits.
func (p *PeerState) Flags() PeerFlags {
	var f PeerFlags
	if p.Seeder {
		f |= PeerSeeder
	}
	if p.Completed {
		f |= PeerCompleted
	}
	if p.Synced {
		f |= PeerSynced
	}
	return f
}

// SetFlags sets p's Seeder, Completed and Synced from f.
func (p *PeerState) SetFlags(f PeerFlags) {
	p.Seeder, p.Completed, p.Synced = f&PeerSeeder != 0, f&PeerCompleted != 0, f&PeerSynced != 0
}

// A TorrentState's encoded form, the one snapshots and cluster catch-ups
// both use (integers are uvarints unless marked):
//
//	torrent  info hash [20] | completed | idle seconds |
//	         IPv4 peers | IPv6 peers | peers…
//	peer     address [4 or 16] | port u16 big-endian | flags u8 (PeerFlags) |
//	         age seconds
//
// IPv4 peers come first, as counted; an IPv4-mapped address is an IPv4
// peer. Times are whole seconds.
const (
	// TorrentStateMaxLen and PeerStateMaxLen bound the encoded sizes of a
	// torrent without its peers and of one peer, so a writer that splits
	// torrents over messages knows what fits before it appends.
	TorrentStateMaxLen = 20 + 4*binary.MaxVarintLen64
	PeerStateMaxLen    = PeerLen6 + 1 + binary.MaxVarintLen64

	// minPeerLen is the smallest encoded peer; it bounds the peer counts
	// a parser believes by the bytes that are left.
	minPeerLen = PeerLen4 + 1 + 1
	// maxStateSeconds bounds idle times and ages (136 years).
	maxStateSeconds = 1<<32 - 1
)

// ErrBadState wraps every error of ParseTorrentState.
var ErrBadState = errors.New("swarm: malformed torrent state")

// AppendTorrentState appends ts's encoded form to dst.
func AppendTorrentState(dst []byte, ts *TorrentState) []byte {
	dst = append(dst, ts.InfoHash[:]...)
	dst = binary.AppendUvarint(dst, uint64(ts.Completed))
	dst = binary.AppendUvarint(dst, uint64(ts.Idle/time.Second))
	n4 := 0
	for i := range ts.Peers {
		if ts.Peers[i].Addr.Addr().Unmap().Is4() {
			n4++
		}
	}
	dst = binary.AppendUvarint(dst, uint64(n4))
	dst = binary.AppendUvarint(dst, uint64(len(ts.Peers)-n4))
	for _, v4 := range [2]bool{true, false} {
		for i := range ts.Peers {
			p := &ts.Peers[i]
			ip := p.Addr.Addr().Unmap()
			if ip.Is4() != v4 {
				continue
			}
			if v4 {
				b := ip.As4()
				dst = append(dst, b[:]...)
			} else {
				b := ip.As16()
				dst = append(dst, b[:]...)
			}
			dst = binary.BigEndian.AppendUint16(dst, p.Addr.Port())
			dst = append(dst, byte(p.Flags()))
			dst = binary.AppendUvarint(dst, uint64(p.Age/time.Second))
		}
	}
	return dst
}

// ParseTorrentState reads one encoded torrent from b into ts, reusing
// ts.Peers, and returns the rest of b. It checks the form only: whether a
// peer may be stored is Restore's question (ValidPeer).
func ParseTorrentState(b []byte, ts *TorrentState) ([]byte, error) {
	d := stateDecoder{b: b}
	ts.InfoHash = InfoHash(d.bytes(20))
	ts.Completed = uint32(d.uvarint(1<<32-1, "completed count"))
	ts.Idle = time.Duration(d.uvarint(maxStateSeconds, "idle time")) * time.Second
	n4 := d.uvarint(uint64(len(d.b)/minPeerLen), "IPv4 peer count")
	n6 := d.uvarint(uint64(len(d.b)/minPeerLen), "IPv6 peer count")
	ts.Peers = ts.Peers[:0]
	for i := uint64(0); i < n4+n6 && d.err == nil; i++ {
		var ip netip.Addr
		if i < n4 {
			ip = netip.AddrFrom4([4]byte(d.bytes(4)))
		} else if ip = netip.AddrFrom16([16]byte(d.bytes(16))); ip.Is4In6() {
			d.fail("IPv4-mapped address among the IPv6 peers")
		}
		p := PeerState{Addr: netip.AddrPortFrom(ip, binary.BigEndian.Uint16(d.bytes(2)))}
		f := PeerFlags(d.bytes(1)[0])
		if f&^peerFlagsKnown != 0 {
			d.fail("unknown peer flags")
		}
		p.SetFlags(f)
		p.Age = time.Duration(d.uvarint(maxStateSeconds, "peer age")) * time.Second
		ts.Peers = append(ts.Peers, p)
	}
	if d.err != nil {
		return nil, d.err
	}
	return d.b, nil
}

// stateDecoder reads fields until the first error, which it keeps; after
// it every read returns zeros.
type stateDecoder struct {
	b   []byte
	err error
}

func (d *stateDecoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrBadState, what)
	}
	d.b = nil
}

func (d *stateDecoder) bytes(n int) []byte {
	if len(d.b) < n {
		d.fail("truncated")
		return make([]byte, n)
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}

func (d *stateDecoder) uvarint(limit uint64, what string) uint64 {
	v, n := binary.Uvarint(d.b)
	switch {
	case n == 0:
		d.fail("truncated " + what)
		return 0
	case n < 0 || v > limit:
		d.fail("bad " + what)
		return 0
	}
	d.b = d.b[n:]
	return v
}
