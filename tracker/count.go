package tracker

import "herald/counters"

// Count counts a request of action a over protocol p that the tracker
// refused for r: its outcome (rate_limited for RateLimited, error for
// Internal, failure for the rest) and its reason. Every frontend counts
// its refusals through it, so a reason is counted the same way whatever
// protocol carried it.
func Count(set *counters.Set, p counters.Protocol, a counters.Action, r Reason) {
	o := counters.Failure
	switch r {
	case RateLimited:
		o = counters.RateLimited
	case Internal:
		o = counters.Error
	}
	set.Request(p, a, o)
	set.Refused(p, uint8(r))
}
