package counters

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Writers on every processor at once lose no count, and Read puts each
// where it was written.
func TestConcurrentWritesAddUp(t *testing.T) {
	s := New()
	const goroutines, each = 8, 10000
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range each {
				s.Request(UDP, Announce, OK)
				s.Request(WS, Scrape, RateLimited)
				s.Fault(HTTP, NotFound)
				s.Refused(WS, 3)
				s.Event(WS, OfferRelayed)
				s.observe(UDP, 30*time.Microsecond, 2)
			}
		})
	}
	wg.Wait()
	c := s.Read()
	const n = goroutines * each
	for _, got := range []struct {
		name      string
		got, want uint64
	}{
		{"udp announce ok", c.Requests[UDP][Announce][OK], n},
		{"ws scrape rate_limited", c.Requests[WS][Scrape][RateLimited], n},
		{"udp total", c.Total(UDP), n},
		{"ws not ok", c.NotOK(WS), n},
		{"udp not ok", c.NotOK(UDP), 0},
		{"http not_found", c.Faults[HTTP][NotFound], n},
		{"ws refused for reason 3", c.Refusals[WS][3], n},
		{"ws offers relayed", c.Events[WS][OfferRelayed], n},
		{"udp latency count", c.Latency[UDP].Count, 2 * n},
		{"udp latency <= 25µs", c.Latency[UDP].Buckets[slices.Index(LatencyBuckets[:], 25*time.Microsecond)], 0},
		{"udp latency <= 50µs", c.Latency[UDP].Buckets[slices.Index(LatencyBuckets[:], 50*time.Microsecond)], 2 * n},
		{"http latency count", c.Latency[HTTP].Count, 0},
	} {
		if got.got != got.want {
			t.Errorf("%s = %d, want %d", got.name, got.got, got.want)
		}
	}
	if got, want := c.Latency[UDP].Sum, 2*n*30*time.Microsecond; got != want {
		t.Errorf("udp latency sum = %v, want %v", got, want)
	}
}

// Durations count in the first bucket whose bound they do not exceed; a
// batch counts once per request; shards merge into cumulative buckets.
func TestLatencyBuckets(t *testing.T) {
	s := New()
	var wg sync.WaitGroup
	for range 2 { // two goroutines, likely on two shards
		wg.Go(func() {
			s.observe(HTTP, 0, 1)
			s.observe(HTTP, 25*time.Microsecond, 1) // on a bound: that bucket (le)
			s.observe(HTTP, 26*time.Microsecond, 1)
			s.observe(HTTP, time.Hour, 1)
			s.observe(HTTP, time.Millisecond, 3) // a batch of three datagrams
		})
	}
	wg.Wait()
	l := s.Read().Latency[HTTP]
	le := func(d time.Duration) uint64 { return l.Buckets[slices.Index(LatencyBuckets[:], d)] }
	if l.Count != 14 || le(25*time.Microsecond) != 4 || le(50*time.Microsecond) != 6 || le(500*time.Microsecond) != 6 ||
		le(time.Millisecond) != 12 || l.Buckets[len(l.Buckets)-1] != 12 {
		t.Errorf("count %d, buckets %v", l.Count, l.Buckets)
	}
	if want := 2 * (time.Hour + 51*time.Microsecond + 3*time.Millisecond); l.Sum != want {
		t.Errorf("sum %v, want %v", l.Sum, want)
	}
}

// A Tally adds to the histogram what recording each time alone would
// have, and is empty after.
func TestTallyAddsWhatEachWould(t *testing.T) {
	ds := []time.Duration{0, 25 * time.Microsecond, 26 * time.Microsecond, 99 * time.Microsecond, time.Millisecond, time.Hour}
	direct, tallied := New(), New()
	var tally Tally
	for _, d := range ds {
		direct.observe(UDP, d, 1)
		tally.Add(d)
	}
	tallied.ObserveBatch(UDP, &tally, 0, 0)
	tallied.ObserveBatch(UDP, &tally, 0, 0) // empty now: adds nothing
	if got, want := tallied.Read().Latency[UDP], direct.Read().Latency[UDP]; got != want {
		t.Errorf("tallied %+v, want %+v", got, want)
	}
	if allocs := testing.AllocsPerRun(100, func() {
		tally.Add(30 * time.Microsecond)
		tallied.ObserveBatch(UDP, &tally, 0, 0)
	}); allocs != 0 {
		t.Errorf("%v allocs per Add and ObserveBatch, want 0", allocs)
	}
}

// ObserveBatch records what recording each response time and the batch's
// service times apart would have.
func TestObserveBatch(t *testing.T) {
	apart, batched := New(), New()
	var b Tally
	for _, d := range []time.Duration{3 * time.Microsecond, 40 * time.Microsecond, 2 * time.Second} {
		apart.observe(UDP, d, 1)
		b.Add(d)
	}
	apart.observeService(UDP, 20*time.Microsecond, 3)
	batched.ObserveBatch(UDP, &b, 20*time.Microsecond, 3)
	got, want := batched.Read(), apart.Read()
	if got.Latency[UDP] != want.Latency[UDP] || got.Service[UDP] != want.Service[UDP] {
		t.Errorf("batched %+v / %+v, want %+v / %+v", got.Latency[UDP], got.Service[UDP], want.Latency[UDP], want.Service[UDP])
	}
	if b.used != 0 || b.sum != 0 {
		t.Errorf("tally not emptied: %+v", b)
	}
}

// A duration past the last bound lands in +Inf: counted, in no bucket.
func TestLatencyOverflow(t *testing.T) {
	s := New()
	s.observe(HTTP, time.Minute, 1)
	l := s.Read().Latency[HTTP]
	if l.Count != 1 || l.Buckets[len(LatencyBuckets)-1] != 0 || l.Sum != time.Minute {
		t.Errorf("one minute: count %d, last bucket %d, sum %v; want 1, 0, 1m", l.Count, l.Buckets[len(LatencyBuckets)-1], l.Sum)
	}
}

// Gauges are the sum of what every watcher reports, read at Read.
func TestWatchSums(t *testing.T) {
	s := New()
	var open atomic.Int64
	s.Watch(HTTP, Connections, open.Load)
	s.Watch(HTTP, Connections, func() int64 { return 2 })
	s.Watch(WS, ConnectionLimit, func() int64 { return 7 })
	open.Store(3)
	c := s.Read()
	if c.Gauges[HTTP][Connections] != 5 || c.Gauges[WS][ConnectionLimit] != 7 || c.Gauges[UDP][Connections] != 0 {
		t.Errorf("gauges %v, want http connections 5, ws limit 7", c.Gauges)
	}
}

// Every value of every enum has a label, and the per-protocol lists name
// each protocol's values once.
func TestLabels(t *testing.T) {
	checkLabels(t, "protocol", NumProtocols, Protocol.Label)
	checkLabels(t, "action", NumActions, Action.Label)
	checkLabels(t, "outcome", NumOutcomes, Outcome.Label)
	checkLabels(t, "fault", NumFaults, Fault.Label)
	checkLabels(t, "event", NumEvents, Event.Label)
	checkLabels(t, "gauge", NumGauges, Gauge.Label)
}

func checkLabels[E ~uint8](t *testing.T, kind string, n E, label func(E) string) {
	t.Helper()
	seen := map[string]bool{}
	for e := range n {
		if l := label(e); l == "" || seen[l] {
			t.Errorf("%s %d: label %q empty or repeated", kind, e, l)
		} else {
			seen[l] = true
		}
	}
}

func TestHotPathAllocatesNothing(t *testing.T) {
	s := New()
	if n := testing.AllocsPerRun(100, func() {
		s.Request(UDP, Announce, OK)
		s.Fault(UDP, Runt)
		s.Event(WS, Accepted)
		s.ObserveRequest(UDP, time.Millisecond, 40*time.Microsecond)
		var tally Tally
		tally.Add(time.Millisecond)
		s.ObserveBatch(UDP, &tally, 40*time.Microsecond, 8)
	}); n != 0 {
		t.Errorf("%v allocs per run, want 0", n)
	}
}

// BenchmarkObserveRequest times a request from every processor at once.
func BenchmarkObserveRequest(b *testing.B) {
	s := New()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.ObserveRequest(UDP, 40*time.Microsecond, 40*time.Microsecond)
		}
	})
}

// BenchmarkRequest counts from every processor at once.
func BenchmarkRequest(b *testing.B) {
	s := New()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.Request(UDP, Announce, OK)
		}
	})
}

// Service times have their own histogram: a batch's service time counts
// there once per request and leaves the response times alone;
// ObserveRequest records one request in both.
func TestServiceTimes(t *testing.T) {
	s := New()
	s.observe(UDP, 3*time.Millisecond, 4)         // response: the wait in the socket too
	s.observeService(UDP, 60*time.Microsecond, 4) // service: a batch of four
	s.ObserveRequest(WS, 2*time.Millisecond, 90*time.Microsecond)
	c := s.Read()
	le := func(l *Latency, d time.Duration) uint64 { return l.Buckets[slices.Index(LatencyBuckets[:], d)] }
	for _, got := range []struct {
		name      string
		got, want uint64
	}{
		{"udp response count", c.Latency[UDP].Count, 4},
		{"udp response <= 2.5ms", le(&c.Latency[UDP], 2500*time.Microsecond), 0},
		{"udp response <= 5ms", le(&c.Latency[UDP], 5*time.Millisecond), 4},
		{"udp service count", c.Service[UDP].Count, 4},
		{"udp service <= 50µs", le(&c.Service[UDP], 50*time.Microsecond), 0},
		{"udp service <= 75µs", le(&c.Service[UDP], 75*time.Microsecond), 4},
		{"ws response <= 1ms", le(&c.Latency[WS], time.Millisecond), 0},
		{"ws response count", c.Latency[WS].Count, 1},
		{"ws service <= 75µs", le(&c.Service[WS], 75*time.Microsecond), 0},
		{"ws service <= 100µs", le(&c.Service[WS], 100*time.Microsecond), 1},
		{"http service count", c.Service[HTTP].Count, 0},
	} {
		if got.got != got.want {
			t.Errorf("%s = %d, want %d", got.name, got.got, got.want)
		}
	}
	if c.Service[UDP].Sum != 240*time.Microsecond || c.Service[WS].Sum != 90*time.Microsecond || c.Latency[UDP].Sum != 12*time.Millisecond {
		t.Errorf("sums: udp service %v, ws service %v, udp response %v", c.Service[UDP].Sum, c.Service[WS].Sum, c.Latency[UDP].Sum)
	}
}

// observe records n responses of protocol p that each took d, straight
// into this processor's histogram: the reference the frontends' calls
// (ObserveRequest, ObserveBatch) are checked against.
func (s *Set) observe(p Protocol, d time.Duration, n int) { s.shard().latency[p].add(d, n) }

// observeService records n service times d of protocol p, as observe.
func (s *Set) observeService(p Protocol, d time.Duration, n int) { s.shard().service[p].add(d, n) }
