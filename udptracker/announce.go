package udptracker

import (
	"bytes"
	"encoding/binary"
	"net/netip"

	"herald/swarm"
)

// Announce request (BEP 15; the same for IPv4 and IPv6 clients):
//
//	Offset  Size            Name            Value
//	0       64-bit integer  connection_id
//	8       32-bit integer  action          1 // announce
//	12      32-bit integer  transaction_id
//	16      20-byte string  info_hash
//	36      20-byte string  peer_id
//	56      64-bit integer  downloaded
//	64      64-bit integer  left
//	72      64-bit integer  uploaded
//	80      32-bit integer  event           0 // 0: none; 1: completed; 2: started; 3: stopped
//	84      32-bit integer  IP address      0 // default
//	88      32-bit integer  key
//	92      32-bit integer  num_want        -1 // default
//	96      16-bit integer  port
//	98      BEP 41 options (see options.go)
//
// Announce response:
//
//	Offset      Size            Name            Value
//	0           32-bit integer  action          1 // announce
//	4           32-bit integer  transaction_id
//	8           32-bit integer  interval
//	12          32-bit integer  leechers
//	16          32-bit integer  seeders
//	20 + 6 * n  32-bit integer  IP address      (IPv4 client: 4 bytes; IPv6 client: 16 bytes)
//	24 + 6 * n  16-bit integer  TCP port
//	20 + 6 * N                                  (18 * n and 18 * N for IPv6)
const (
	announceRequestLen        = 98
	announceResponseHeaderLen = 20
)

// AnnounceRequest is a parsed announce. The server reuses one per socket,
// so URLData keeps its capacity from packet to packet.
type AnnounceRequest struct {
	ConnectionID  uint64
	TransactionID uint32
	InfoHash      swarm.InfoHash
	PeerID        swarm.PeerID
	Downloaded    uint64
	Left          uint64
	Uploaded      uint64
	// Event is EventNone for values BEP 15 does not define.
	Event swarm.Event
	// IP is the IPv4 address the client asks to be listed under; the zero
	// Addr when the field is 0 (the default).
	IP      netip.Addr
	Key     uint32
	NumWant int32 // -1 asks for the tracker's default
	Port    uint16
	// URLData is the path and query of the announce URL, concatenated from
	// the BEP 41 URLData options ("/announce?passkey=…"); empty without.
	URLData []byte
}

// ParseAnnounceRequest reads an announce into r. Malformed BEP 41 options
// do not fail it: r.URLData then holds the options before the bad one.
func ParseAnnounceRequest(b []byte, r *AnnounceRequest) error {
	h, err := ParseHeader(b)
	if err != nil {
		return err
	}
	if h.Action != ActionAnnounce {
		return ErrAction
	}
	if len(b) < announceRequestLen {
		return ErrShort
	}
	r.ConnectionID = h.ConnectionID
	r.TransactionID = h.TransactionID
	r.InfoHash = swarm.InfoHash(b[16:36])
	r.PeerID = swarm.PeerID(b[36:56])
	r.Downloaded = binary.BigEndian.Uint64(b[56:])
	r.Left = binary.BigEndian.Uint64(b[64:])
	r.Uploaded = binary.BigEndian.Uint64(b[72:])
	r.Event = swarm.EventNone
	if e := binary.BigEndian.Uint32(b[80:]); e <= uint32(swarm.EventStopped) {
		r.Event = swarm.Event(e)
	}
	r.IP = netip.Addr{}
	if ip := [4]byte(b[84:88]); ip != [4]byte{} {
		r.IP = netip.AddrFrom4(ip)
	}
	r.Key = binary.BigEndian.Uint32(b[88:])
	r.NumWant = int32(binary.BigEndian.Uint32(b[92:]))
	r.Port = binary.BigEndian.Uint16(b[96:])
	r.URLData, _ = ParseOptions(b[announceRequestLen:], r.URLData[:0])
	return nil
}

// AppendAnnounceRequest appends r in wire form to dst, with r.URLData as
// BEP 41 options. An IP that is not IPv4 is sent as 0.
func AppendAnnounceRequest(dst []byte, r *AnnounceRequest) []byte {
	dst = appendRequestHeader(dst, Header{ConnectionID: r.ConnectionID, Action: ActionAnnounce, TransactionID: r.TransactionID})
	dst = append(dst, r.InfoHash[:]...)
	dst = append(dst, r.PeerID[:]...)
	dst = binary.BigEndian.AppendUint64(dst, r.Downloaded)
	dst = binary.BigEndian.AppendUint64(dst, r.Left)
	dst = binary.BigEndian.AppendUint64(dst, r.Uploaded)
	dst = binary.BigEndian.AppendUint32(dst, uint32(r.Event))
	var ip [4]byte
	if r.IP.Is4() {
		ip = r.IP.As4()
	}
	dst = append(dst, ip[:]...)
	dst = binary.BigEndian.AppendUint32(dst, r.Key)
	dst = binary.BigEndian.AppendUint32(dst, uint32(r.NumWant))
	dst = binary.BigEndian.AppendUint16(dst, r.Port)
	return AppendOptions(dst, r.URLData)
}

// Path returns the path part of URLData (up to the first '?').
func (r *AnnounceRequest) Path() []byte {
	if i := bytes.IndexByte(r.URLData, '?'); i >= 0 {
		return r.URLData[:i]
	}
	return r.URLData
}

// Query returns the query part of URLData (after the first '?'), or nil.
func (r *AnnounceRequest) Query() []byte {
	if i := bytes.IndexByte(r.URLData, '?'); i >= 0 {
		return r.URLData[i+1:]
	}
	return nil
}

// AnnounceResponse answers an announce.
type AnnounceResponse struct {
	TransactionID uint32
	Interval      uint32 // seconds
	Leechers      uint32
	Seeders       uint32
	// Peers are packed 6-byte (IPv4) or 18-byte (IPv6) peers, the family
	// of the address the request came from.
	Peers []byte
}

// ParseAnnounceResponse reads an announce response into r; r.Peers aliases b.
func ParseAnnounceResponse(b []byte, r *AnnounceResponse) error {
	tid, err := parseResponseHeader(b, ActionAnnounce)
	if err != nil {
		return err
	}
	if len(b) < announceResponseHeaderLen {
		return ErrResponseLength
	}
	r.TransactionID = tid
	r.Interval = binary.BigEndian.Uint32(b[8:])
	r.Leechers = binary.BigEndian.Uint32(b[12:])
	r.Seeders = binary.BigEndian.Uint32(b[16:])
	r.Peers = b[announceResponseHeaderLen:]
	return nil
}

// AppendAnnounceResponse appends r in wire form to dst.
func AppendAnnounceResponse(dst []byte, r *AnnounceResponse) []byte {
	dst = appendResponseHeader(dst, ActionAnnounce, r.TransactionID)
	dst = binary.BigEndian.AppendUint32(dst, r.Interval)
	dst = binary.BigEndian.AppendUint32(dst, r.Leechers)
	dst = binary.BigEndian.AppendUint32(dst, r.Seeders)
	return append(dst, r.Peers...)
}
