package httptracker

import (
	"errors"

	"herald/swarm"
)

// failure is a tracker-level error: the request was well-formed HTTP but the
// tracker will not serve it. It is answered with HTTP 200 and a bencoded
// "failure reason" (BEP 3) carrying exactly this text, so it must never
// hold anything but fixed, client-facing wording.
type failure string

func (f failure) Error() string { return string(f) }

// malformed is a request the tracker cannot parse: answered with HTTP 400
// and this text as a plain-text body, as opentracker does.
type malformed string

func (m malformed) Error() string { return string(m) }

// Client-visible failure reasons. The first two are opentracker's exact
// strings; clients and monitoring scripts match on them.
const (
	failNotAuthorized   failure = "Requested download is not authorized for use with this tracker."
	failMissingInfoHash failure = "Your client forgot to send your torrent's info_hash. Please upgrade your client."
	failInfoHashLength  failure = "info_hash is not 20 bytes long."
	failTwoInfoHashes   failure = "An announce takes exactly one info_hash."
	failPeerIDLength    failure = "peer_id is not 20 bytes long."
	failMissingPort     failure = "Your client forgot to send the port it listens on."
	failBadPort         failure = "port is not a number from 1 to 65535."
	failBadNumWant      failure = "numwant is not a number."
	failTorrentLimit    failure = "The tracker is full and accepts no new torrents."
	failPeerLimit       failure = "The tracker is full and accepts no new peers."
	failBadAddr         failure = "Your address cannot be handed out to other peers."
	failInternal        failure = "Internal tracker error."
	failRateLimited     failure = "Too many requests from your address; slow down."
)

// Malformed requests (HTTP 400). Like opentracker, raw bytes of 0x80 or
// above and bad %xx escapes in a parameter the tracker reads are errors.
const (
	malformedEscape   malformed = "malformed %-escape in query"
	malformedHighByte malformed = "unescaped byte 0x80 or above in query"
)

// storeFailure maps a swarm error to the failure a client sees; ok is false
// for errors the store does not document, which are internal.
func storeFailure(err error) (failure, bool) {
	switch {
	case errors.Is(err, swarm.ErrTorrentLimit):
		return failTorrentLimit, true
	case errors.Is(err, swarm.ErrPeerLimit):
		return failPeerLimit, true
	case errors.Is(err, swarm.ErrInvalidAddr):
		return failBadAddr, true
	}
	return failInternal, false
}
