package httptracker

import "sync/atomic"

// Stats counts requests by action and outcome since the handler was made.
type Stats struct {
	Announces        uint64 // announces answered with peers
	AnnounceFailures uint64 // announces answered with a failure reason
	Scrapes          uint64 // scrapes answered with counts
	ScrapeFailures   uint64 // scrapes answered with a failure reason
	FullScrapes      uint64 // full scrapes sent completely
	FullScrapesBusy  uint64 // full scrapes refused with 503 (MaxFullScrapes reached)
	FullScrapeErrors uint64 // full scrapes cut off (client gone, shutdown, timeout)
	BadRequests      uint64 // 400: malformed query
	NotFound         uint64 // 404: unknown path, or / without RedirectURL
	Redirects        uint64 // 302 for /
	BadMethods       uint64 // 405: anything but GET
	InternalErrors   uint64 // store errors the tracker did not expect
	RateLimited      uint64 // announces and scrapes over the rate limit

	// Connections (Server only; zero from a bare Handler).
	OpenConnections    uint64 // open now, waiting or being answered
	RefusedConnections uint64 // closed at once: Config.MaxConnections or MaxConnectionsPerClient reached
	MaxConnections     uint64 // Config.MaxConnections
}

type counters struct {
	announces, announceFailures  atomic.Uint64
	scrapes, scrapeFailures      atomic.Uint64
	fullScrapes, fullScrapesBusy atomic.Uint64
	fullScrapeErrors             atomic.Uint64
	badRequests, notFound        atomic.Uint64
	redirects, badMethods        atomic.Uint64
	internalErrors, rateLimited  atomic.Uint64
}

// Stats returns a snapshot of the counters; each is read atomically, the set
// is not one instant.
func (h *Handler) Stats() Stats {
	c := &h.counters
	return Stats{
		Announces:        c.announces.Load(),
		AnnounceFailures: c.announceFailures.Load(),
		Scrapes:          c.scrapes.Load(),
		ScrapeFailures:   c.scrapeFailures.Load(),
		FullScrapes:      c.fullScrapes.Load(),
		FullScrapesBusy:  c.fullScrapesBusy.Load(),
		FullScrapeErrors: c.fullScrapeErrors.Load(),
		BadRequests:      c.badRequests.Load(),
		NotFound:         c.notFound.Load(),
		Redirects:        c.redirects.Load(),
		BadMethods:       c.badMethods.Load(),
		InternalErrors:   c.internalErrors.Load(),
		RateLimited:      c.rateLimited.Load(),
	}
}
