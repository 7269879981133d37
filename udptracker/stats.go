package udptracker

import (
	"sync/atomic"

	"herald/tracker"
)

// Stats are the server's counts since Listen, one per outcome. Each socket
// counts into its own cache line; Stats sums them.
type Stats struct {
	Connects  uint64 // connect requests answered
	Announces uint64 // announces answered (action 1)
	Scrapes   uint64 // scrapes answered
	// Errors is the number of BEP 15 error packets sent, the sum of the
	// four causes below.
	Errors          uint64
	BadConnectionID uint64 // wrong or expired connection id
	Refused         uint64 // torrent refused by the access list
	Malformed       uint64 // announce or scrape too short, ragged or too long
	StoreErrors     uint64 // the store refused the announce (tracker full, bad address)
	// Dropped counts packets not answered at all: runts, connects without
	// the protocol id, unknown actions (see doc.go).
	Dropped uint64
	// RateLimited counts requests over a rate limit: connects over the
	// connect bound, announces and scrapes over the client's limit; connects
	// dropped, announces and scrapes answered with an error packet.
	RateLimited  uint64
	SendFailures uint64 // replies the kernel refused to send
	ReadFailures uint64 // failed reads other than the socket closing
}

type counters struct {
	connects, announces, scrapes                   atomic.Uint64
	badConnectionID, refused, malformed, storeErrs atomic.Uint64
	dropped, sendFailures, readFailures            atomic.Uint64
	rateLimited                                    atomic.Uint64
	_                                              [64]byte // keep sockets' counters off each other's cache lines
}

func (c *counters) addTo(s *Stats) {
	s.Connects += c.connects.Load()
	s.Announces += c.announces.Load()
	s.Scrapes += c.scrapes.Load()
	s.BadConnectionID += c.badConnectionID.Load()
	s.Refused += c.refused.Load()
	s.Malformed += c.malformed.Load()
	s.StoreErrors += c.storeErrs.Load()
	s.Errors = s.BadConnectionID + s.Refused + s.Malformed + s.StoreErrors
	s.Dropped += c.dropped.Load()
	s.RateLimited += c.rateLimited.Load()
	s.SendFailures += c.sendFailures.Load()
	s.ReadFailures += c.readFailures.Load()
}

// refusal counts a refusal answered with an error packet.
func (c *counters) refusal(r tracker.Reason) {
	switch r {
	case tracker.Malformed:
		c.malformed.Add(1)
	case tracker.NotAllowed:
		c.refused.Add(1)
	case tracker.RateLimited:
		c.rateLimited.Add(1)
	default:
		c.storeErrs.Add(1)
	}
}
