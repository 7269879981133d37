package main

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// errKind is why a request did not count as a valid response.
type errKind uint8

const (
	errNone errKind = iota
	errTimeout
	errShort        // UDP reply under 8 bytes
	errUnmatched    // UDP reply for no outstanding request (late, or foreign tid)
	errAction       // UDP action differs from the request's
	errTrackerError // UDP action 3
	errSize         // UDP length inconsistent with the action, family or hash count
	errInterval     // announce interval 0 / missing
	errPeerCount    // more peers than numwant or than the swarm holds
	errSend
	errRecv
	errBacklog // open loop: no free request slot when one was due
	errConnect // HTTP dial
	errReset   // HTTP connection reset by the tracker
	errHTTPIO  // HTTP write or read, other than a timeout or reset
	errStatus  // HTTP status not 200
	errHTTPFormat
	errBencode
	errFailure // HTTP "failure reason"
	errMissingKey
	numErrKinds
)

var errKindNames = [numErrKinds]string{
	errNone:         "none",
	errTimeout:      "timeout",
	errShort:        "short",
	errUnmatched:    "unmatched",
	errAction:       "action",
	errTrackerError: "tracker-error",
	errSize:         "size",
	errInterval:     "interval",
	errPeerCount:    "peer-count",
	errSend:         "send",
	errRecv:         "recv",
	errBacklog:      "backlog",
	errConnect:      "connect",
	errReset:        "reset",
	errHTTPIO:       "http-io",
	errStatus:       "status",
	errHTTPFormat:   "http-format",
	errBencode:      "bencode",
	errFailure:      "failure-reason",
	errMissingKey:   "missing-key",
}

func (k errKind) String() string { return errKindNames[k] }

// Kinds of request, for counting valid responses per kind.
const (
	kindConnect = iota
	kindAnnounce
	kindScrape
	numKinds
)

var kindNames = [numKinds]string{"connect", "announce", "scrape"}

// histogram is a log-linear latency histogram in nanoseconds: exact below
// 128 ns, then 64 sub-buckets per power of two (under 1.6% error).
type histogram struct {
	counts [(64 - histSubBits + 1) << histSubBits]uint64
}

const histSubBits = 7

func histBucket(v uint64) int {
	if v < 1<<histSubBits {
		return int(v)
	}
	shift := bits.Len64(v) - histSubBits - 1
	return shift<<histSubBits + int(v>>shift)
}

// histValue is the midpoint of bucket i.
func histValue(i int) uint64 {
	if i < 1<<histSubBits {
		return uint64(i)
	}
	shift := i>>histSubBits - 1
	mant := uint64(i - shift<<histSubBits)
	if shift == 0 {
		return mant
	}
	lo := mant << shift
	return lo + (uint64(1)<<shift)/2
}

func (h *histogram) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[histBucket(uint64(d))]++
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
}

// quantile returns the latency below which fraction q of samples fall.
func (h *histogram) quantile(q float64) time.Duration {
	var total uint64
	for _, c := range h.counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := uint64(q*float64(total-1)) + 1
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(histValue(i))
		}
	}
	return 0
}

// counters are what one goroutine tallies; they are merged once at the end.
// The udp and http runners bump valid and errors atomically, so that -report
// can read running totals while they run.
type counters struct {
	valid   [numKinds]uint64
	errors  [numErrKinds]uint64
	latency histogram
}

func (c *counters) merge(o *counters) {
	for i := range c.valid {
		c.valid[i] += o.valid[i]
	}
	for i := range c.errors {
		c.errors[i] += o.errors[i]
	}
	c.latency.merge(&o.latency)
}

func (c *counters) totalValid() uint64 {
	var n uint64
	for _, v := range c.valid {
		n += v
	}
	return n
}

// tally is a running total of valid responses and errors, read while the
// load runs.
type tally struct {
	valid  uint64
	errors [numErrKinds]uint64
}

func (t *tally) add(c *counters) {
	for i := range c.valid {
		t.valid += atomic.LoadUint64(&c.valid[i])
	}
	for i := range c.errors {
		t.errors[i] += atomic.LoadUint64(&c.errors[i])
	}
}
