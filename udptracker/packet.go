package udptracker

import "encoding/binary"

// ProtocolID is the magic connection_id of a connect request (BEP 15); it
// tells a BitTorrent UDP tracker request from stray traffic.
const ProtocolID uint64 = 0x41727101980

// Action is the second field of every request and the first of every
// response (BEP 15).
type Action uint32

const (
	ActionConnect  Action = 0
	ActionAnnounce Action = 1
	ActionScrape   Action = 2
	ActionError    Action = 3
)

// Every request begins with the same 16 bytes:
//
//	Offset  Size            Name
//	0       64-bit integer  connection_id
//	8       32-bit integer  action
//	12      32-bit integer  transaction_id
//	16
//
// Every response begins with action then transaction_id (8 bytes).
const (
	requestHeaderLen  = 16
	responseHeaderLen = 8
)

// Header is the part common to every request.
type Header struct {
	ConnectionID  uint64
	Action        Action
	TransactionID uint32
}

// ParseHeader reads the 16-byte request header of b. Anything shorter is a
// runt that carries no transaction id to answer with.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < requestHeaderLen {
		return Header{}, ErrShort
	}
	return Header{
		ConnectionID:  binary.BigEndian.Uint64(b),
		Action:        Action(binary.BigEndian.Uint32(b[8:])),
		TransactionID: binary.BigEndian.Uint32(b[12:]),
	}, nil
}

func appendRequestHeader(dst []byte, h Header) []byte {
	dst = binary.BigEndian.AppendUint64(dst, h.ConnectionID)
	dst = binary.BigEndian.AppendUint32(dst, uint32(h.Action))
	return binary.BigEndian.AppendUint32(dst, h.TransactionID)
}

func appendResponseHeader(dst []byte, a Action, transactionID uint32) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(a))
	return binary.BigEndian.AppendUint32(dst, transactionID)
}

// parseResponseHeader checks that b is a response of action a (or an error
// packet, reported as ErrErrorResponse) and returns its transaction id.
func parseResponseHeader(b []byte, a Action) (uint32, error) {
	if len(b) < responseHeaderLen {
		return 0, ErrShort
	}
	got := Action(binary.BigEndian.Uint32(b))
	switch {
	case got == a:
		return binary.BigEndian.Uint32(b[4:]), nil
	case got == ActionError:
		return binary.BigEndian.Uint32(b[4:]), ErrErrorResponse
	}
	return 0, ErrAction
}
