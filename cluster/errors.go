package cluster

import "errors"

// Errors of the Parse functions. A malformed message from NATS is counted
// and dropped, never logged one by one.
var (
	ErrShort     = errors.New("cluster: message too short")
	ErrVersion   = errors.New("cluster: unknown message version")
	ErrMalformed = errors.New("cluster: malformed message")
)
