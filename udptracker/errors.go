package udptracker

import "errors"

// Errors the parsers return. None is sent to a client as is: the server
// decides per case between a BEP 15 error packet and silence (see doc.go).
var (
	ErrShort          = errors.New("udptracker: packet too short")
	ErrProtocolID     = errors.New("udptracker: connect without the BEP 15 protocol id")
	ErrAction         = errors.New("udptracker: unexpected action")
	ErrScrapeLength   = errors.New("udptracker: scrape length is not 16 + 20*n")
	ErrTooManyHashes  = errors.New("udptracker: too many info hashes in one scrape")
	ErrOptions        = errors.New("udptracker: malformed BEP 41 option")
	ErrErrorResponse  = errors.New("udptracker: tracker answered with an error packet")
	ErrResponseLength = errors.New("udptracker: response length does not fit its action")
)
