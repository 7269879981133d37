package wstracker

import "herald/tracker"

// Failure reasons for messages that cannot be parsed: Malformed refusals,
// whose texts say what is wrong in this protocol's messages. Every other
// refusal is a tracker.Reason with the tracker's text, the same over HTTP
// and UDP. Where the npm bittorrent-tracker server has a text for the same
// fault, it is used unchanged: clients and their tests match on it. The
// connection stays open, as in bittorrent-tracker: one bad message costs
// one reply.
var (
	failJSON         = tracker.NewMalformed("invalid JSON")
	failAction       = tracker.NewMalformed("invalid action in WS request")
	failInfoHash     = tracker.NewMalformed("invalid info_hash")
	failPeerID       = tracker.NewMalformed("invalid peer_id")
	failToPeerID     = tracker.NewMalformed("invalid `to_peer_id` (required with `answer`)")
	failOfferID      = tracker.NewMalformed("invalid offer_id")
	failOffer        = tracker.NewMalformed("invalid offer: must be an object with an offer_id")
	failAnswer       = tracker.NewMalformed("invalid answer: must be an object")
	failEvent        = tracker.NewMalformed("invalid event")
	failScrapeHashes = tracker.NewMalformed("too many info_hash values in one scrape")
)
