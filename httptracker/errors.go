package httptracker

import "herald/tracker"

// malformed is a request the tracker cannot parse: answered with HTTP 400
// and this text as a plain-text body, as opentracker does.
type malformed string

func (m malformed) Error() string { return string(m) }

// Malformed requests (HTTP 400). Like opentracker, raw bytes of 0x80 or
// above and bad %xx escapes in a parameter the tracker reads are errors.
const (
	malformedEscape   malformed = "malformed %-escape in query"
	malformedHighByte malformed = "unescaped byte 0x80 or above in query"
)

// Queries that decode but lack what the tracker needs: answered with HTTP
// 200 and a bencoded failure reason (BEP 3), like every refusal; the texts
// of the others are the tracker's (tracker/reason.go). The first is
// opentracker's exact string; clients and monitoring scripts match on it.
var (
	failMissingInfoHash = tracker.NewMalformed("Your client forgot to send your torrent's info_hash. Please upgrade your client.")
	failInfoHashLength  = tracker.NewMalformed("info_hash is not 20 bytes long.")
	failTwoInfoHashes   = tracker.NewMalformed("An announce takes exactly one info_hash.")
	failPeerIDLength    = tracker.NewMalformed("peer_id is not 20 bytes long.")
	failMissingPort     = tracker.NewMalformed("Your client forgot to send the port it listens on.")
	failBadPort         = tracker.NewMalformed("port is not a number from 1 to 65535.")
	failBadNumWant      = tracker.NewMalformed("numwant is not a number.")
)
