package wstracker

// failure is a client-visible error: the text goes out verbatim as the
// "failure reason" of a reply, so it must hold nothing but fixed wording.
// Where the npm bittorrent-tracker server has a text for the same fault,
// it is used unchanged: clients and their tests match on it.
type failure string

func (f failure) Error() string { return string(f) }

// Failure reasons for requests that cannot be parsed. The connection stays
// open, as in bittorrent-tracker: one bad message costs one reply.
const (
	failJSON         failure = "invalid JSON"
	failAction       failure = "invalid action in WS request"
	failInfoHash     failure = "invalid info_hash"
	failPeerID       failure = "invalid peer_id"
	failToPeerID     failure = "invalid `to_peer_id` (required with `answer`)"
	failOfferID      failure = "invalid offer_id"
	failOffer        failure = "invalid offer: must be an object with an offer_id"
	failAnswer       failure = "invalid answer: must be an object"
	failEvent        failure = "invalid event"
	failScrapeHashes failure = "too many info_hash values in one scrape"
)

// Failure reasons for requests that parse but are refused.
const (
	failNotAllowed   failure = "Requested download is not authorized for use with this tracker."
	failTorrentLimit failure = "The tracker is full and accepts no new torrents."
	failPeerLimit    failure = "The tracker is full and accepts no new peers."
	failConnSwarms   failure = "This connection is in too many swarms."
	failPeerIDInUse  failure = "peer_id is in use by another connection"
	failUnknownOffer failure = "answer to an unknown offer: no such offer_id was relayed to you from to_peer_id"
	failOffererGone  failure = "answer to a peer that has left the swarm"
	failShuttingDown failure = "tracker is shutting down"
)
