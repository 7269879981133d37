package stats

import (
	"sync/atomic"
	"time"
)

// LatencyBuckets are the upper bounds of the response-time histograms.
// Announces answered from RAM take tens of microseconds; the top buckets
// catch full scrapes and stalls.
var LatencyBuckets = [...]time.Duration{
	25 * time.Microsecond, 50 * time.Microsecond, 100 * time.Microsecond,
	250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 5 * time.Second,
}

// Histogram counts durations into LatencyBuckets with atomic adds: Observe
// takes no lock and allocates nothing. Give each frontend (or each UDP
// socket) its own, so cores do not share its cache lines; the monitor
// merges them when it reads.
type Histogram struct {
	counts [len(LatencyBuckets) + 1]atomic.Uint64 // per bucket, not cumulative; the last is +Inf
	sum    atomic.Int64                           // nanoseconds
}

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram { return new(Histogram) }

// Observe records one response time.
func (h *Histogram) Observe(d time.Duration) { h.ObserveN(d, 1) }

// ObserveN records n responses that each took d: a UDP socket that answers
// a recvmmsg batch at once times the batch, not each datagram.
func (h *Histogram) ObserveN(d time.Duration, n int) {
	i := 0
	for i < len(LatencyBuckets) && d > LatencyBuckets[i] {
		i++
	}
	h.counts[i].Add(uint64(n))
	h.sum.Add(int64(d) * int64(n))
}

// HistogramSnapshot is a histogram read at one moment.
type HistogramSnapshot struct {
	// Buckets are cumulative counts per LatencyBuckets bound, as Prometheus
	// wants them; Count includes the +Inf bucket.
	Buckets [len(LatencyBuckets)]uint64
	Count   uint64
	Sum     time.Duration
}

// mergeHistograms reads and sums hs. Buckets are read one by one while
// writers go on, so Count may run ahead of Sum by a few observations.
func mergeHistograms(hs []*Histogram) HistogramSnapshot {
	var s HistogramSnapshot
	for _, h := range hs {
		var cum uint64
		for i := range LatencyBuckets {
			cum += h.counts[i].Load()
			s.Buckets[i] += cum
		}
		s.Count += cum + h.counts[len(LatencyBuckets)].Load()
		s.Sum += time.Duration(h.sum.Load())
	}
	return s
}
