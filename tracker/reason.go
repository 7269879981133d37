package tracker

import (
	"errors"

	"herald/swarm"
)

// Reason is why the tracker refused a request, whatever protocol carried
// it. Counters index refusals by it and Label names it in metrics, so its
// values and labels stay stable.
type Reason uint8

const (
	// Malformed: the request cannot be parsed. Its text is the frontend's
	// description of what is wrong in that protocol's wire format.
	Malformed Reason = iota
	// NotAllowed: the access list refuses the torrent.
	NotAllowed
	// RateLimited: the client is over its request rate.
	RateLimited
	// TorrentLimit and PeerLimit: the store is full.
	TorrentLimit
	PeerLimit
	// BadAddress: the peer's address cannot be handed out (unspecified,
	// port 0, ...).
	BadAddress
	// BadConnectionID: a UDP request's connection id is wrong or expired.
	BadConnectionID
	// SwarmsPerConn: a WebSocket connection is in too many swarms.
	SwarmsPerConn
	// PeerIDInUse: a WebSocket peer_id belongs to another connection.
	PeerIDInUse
	// UnknownOffer: a WebSocket answer to an offer not relayed to its
	// sender; OffererGone: to a peer that has left.
	UnknownOffer
	OffererGone
	// UnknownClient: a trusted reverse proxy sent the request without
	// naming the client (no untrusted hop in its header).
	UnknownClient
	// Banned: the client's address is banned, by the operator or for
	// abuse (see package bans).
	Banned
	// Internal: anything the tracker did not expect; logged, never
	// described to the client.
	Internal
	// UnknownKey: keys are on (access.keys) and the request's URL path
	// carries no listed key.
	UnknownKey

	// NumReasons is the number of reasons, for arrays indexed by Reason.
	NumReasons = iota
)

// reasons holds each reason's metric label and client text. The texts are
// the only words about a refusal a client ever reads, the same over HTTP,
// UDP and WebSocket. Where opentracker (or, for WebSocket-only reasons, the
// npm bittorrent-tracker server) has a text for the same refusal it is
// used unchanged: clients and monitoring scripts match on them. All are
// ASCII, which BEP 15 error packets rely on (see udptracker/doc.go).
var reasons = [NumReasons]struct{ label, text string }{
	Malformed:       {"malformed", "Malformed request."},
	NotAllowed:      {"not_allowed", "Requested download is not authorized for use with this tracker."},
	RateLimited:     {"rate_limited", "Too many requests from your address; slow down."},
	TorrentLimit:    {"torrent_limit", "The tracker is full and accepts no new torrents."},
	PeerLimit:       {"peer_limit", "The tracker is full and accepts no new peers."},
	BadAddress:      {"bad_address", "Your address cannot be handed out to other peers."},
	BadConnectionID: {"bad_connection_id", "connection id mismatch or expired"},
	SwarmsPerConn:   {"swarms_per_conn", "This connection is in too many swarms."},
	PeerIDInUse:     {"peer_id_in_use", "peer_id is in use by another connection"},
	UnknownOffer:    {"unknown_offer", "answer to an unknown offer: no such offer_id was relayed to you from to_peer_id"},
	OffererGone:     {"offerer_gone", "answer to a peer that has left the swarm"},
	UnknownClient:   {"unknown_client", "The proxy in front of this tracker did not say who you are."},
	Banned:          {"banned", "Your address is banned from this tracker for a while."},
	Internal:        {"internal", "Internal tracker error."},
	UnknownKey:      {"unknown_key", "unknown key"},
}

// Label is the reason's name in metric labels: lower case, fixed.
func (r Reason) Label() string { return reasons[r].label }

// Text is what a client reads for the reason.
func (r Reason) Text() string { return reasons[r].text }

// ClientError is a refusal as a client sees it: the only kind of error
// whose text leaves the tracker. Every other error is internal: logged,
// and answered with Internal's text. Frontends encode it their own way (a
// bencoded failure reason, a BEP 15 error packet, a JSON failure).
type ClientError struct {
	Reason Reason
	Text   string
}

func (e *ClientError) Error() string { return e.Text }

// refusals are the ClientErrors with the table's text, one per reason,
// shared so that refusing allocates nothing.
var refusals = func() (e [NumReasons]ClientError) {
	for r := range e {
		e[r] = ClientError{Reason: Reason(r), Text: reasons[r].text}
	}
	return e
}()

// Err returns the reason's ClientError, with the table's text. It is
// shared: callers must not modify it.
func (r Reason) Err() *ClientError { return &refusals[r] }

// NewMalformed returns a Malformed ClientError with text, a fixed
// description of what a frontend could not parse. Frontends make one per
// text, once, as package variables.
func NewMalformed(text string) *ClientError {
	return &ClientError{Reason: Malformed, Text: text}
}

// AsClientError returns the ClientError err is or maps to: itself, the
// refusal of a store error the store documents, or Internal; internal is
// true for the last, which the caller logs.
func AsClientError(err error) (ce *ClientError, internal bool) {
	if ce, ok := err.(*ClientError); ok {
		return ce, false
	}
	switch {
	case errors.Is(err, swarm.ErrTorrentLimit):
		return TorrentLimit.Err(), false
	case errors.Is(err, swarm.ErrPeerLimit):
		return PeerLimit.Err(), false
	case errors.Is(err, swarm.ErrInvalidAddr):
		return BadAddress.Err(), false
	}
	return Internal.Err(), true
}
