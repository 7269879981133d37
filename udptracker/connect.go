package udptracker

import "encoding/binary"

// Connect request (BEP 15):
//
//	Offset  Size            Name            Value
//	0       64-bit integer  protocol_id     0x41727101980 // magic constant
//	8       32-bit integer  action          0 // connect
//	12      32-bit integer  transaction_id
//	16
//
// Connect response:
//
//	Offset  Size            Name            Value
//	0       32-bit integer  action          0 // connect
//	4       32-bit integer  transaction_id
//	8       64-bit integer  connection_id
//	16
const connectLen = 16

// ConnectRequest asks for a connection id.
type ConnectRequest struct {
	TransactionID uint32
}

// ParseConnectRequest reads a connect request. Bytes after the 16th are
// ignored, as no extension defines any.
func ParseConnectRequest(b []byte) (ConnectRequest, error) {
	h, err := ParseHeader(b)
	switch {
	case err != nil:
		return ConnectRequest{}, err
	case h.ConnectionID != ProtocolID:
		return ConnectRequest{}, ErrProtocolID
	case h.Action != ActionConnect:
		return ConnectRequest{}, ErrAction
	}
	return ConnectRequest{TransactionID: h.TransactionID}, nil
}

// AppendConnectRequest appends r in wire form to dst.
func AppendConnectRequest(dst []byte, r ConnectRequest) []byte {
	return appendRequestHeader(dst, Header{ConnectionID: ProtocolID, Action: ActionConnect, TransactionID: r.TransactionID})
}

// ConnectResponse hands out a connection id.
type ConnectResponse struct {
	TransactionID uint32
	ConnectionID  uint64
}

// ParseConnectResponse reads a connect response.
func ParseConnectResponse(b []byte) (ConnectResponse, error) {
	tid, err := parseResponseHeader(b, ActionConnect)
	if err != nil {
		return ConnectResponse{}, err
	}
	if len(b) < connectLen {
		return ConnectResponse{}, ErrResponseLength
	}
	return ConnectResponse{TransactionID: tid, ConnectionID: binary.BigEndian.Uint64(b[8:])}, nil
}

// AppendConnectResponse appends r in wire form to dst.
func AppendConnectResponse(dst []byte, r ConnectResponse) []byte {
	dst = appendResponseHeader(dst, ActionConnect, r.TransactionID)
	return binary.BigEndian.AppendUint64(dst, r.ConnectionID)
}
