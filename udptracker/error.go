package udptracker

// Error response (BEP 15):
//
//	Offset  Size            Name            Value
//	0       32-bit integer  action          3 // error
//	4       32-bit integer  transaction_id
//	8       string          message
//
// The message runs to the end of the packet (no terminator; opentracker
// sends a trailing NUL, which clients print or strip).

// ErrorResponse tells the client why its request failed.
type ErrorResponse struct {
	TransactionID uint32
	Message       string
}

// ParseErrorResponse reads an error packet.
func ParseErrorResponse(b []byte) (ErrorResponse, error) {
	tid, err := parseResponseHeader(b, ActionError)
	if err != nil {
		return ErrorResponse{}, err
	}
	return ErrorResponse{TransactionID: tid, Message: string(b[responseHeaderLen:])}, nil
}

// AppendErrorResponse appends r in wire form to dst.
func AppendErrorResponse(dst []byte, r ErrorResponse) []byte {
	dst = appendResponseHeader(dst, ActionError, r.TransactionID)
	return append(dst, r.Message...)
}
