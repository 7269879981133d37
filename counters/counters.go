// Package counters is herald's one set of request counters: every frontend
// (UDP, HTTP, WebSocket) counts into a Set the same way, and the monitor
// reads it with loops over the enums below. It imports nothing of herald's.
//
// Writes go to a shard per processor (the P the goroutine runs on), each
// on cache lines of its own, so cores answering requests at once do not
// bounce lines between them; Read sums the shards. A write is an atomic
// add and allocates nothing.
package counters

import (
	"math/bits"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	_ "unsafe" // for go:linkname
)

// Protocol is the frontend a request came in on.
type Protocol uint8

// The protocols.
const (
	UDP Protocol = iota
	HTTP
	WS // WebSocket (WebTorrent)
	NumProtocols
)

var protocolLabels = [NumProtocols]string{UDP: "udp", HTTP: "http", WS: "ws"}

// Label is the protocol's metric label.
func (p Protocol) Label() string { return protocolLabels[p] }

// Action is what a request asked for.
type Action uint8

// The actions.
const (
	Connect    Action = iota // UDP connect
	Announce                 // announce (a WebSocket one with offers or none)
	Scrape                   // scrape of listed torrents
	FullScrape               // HTTP scrape without info_hash
	Answer                   // WebSocket announce carrying an answer to relay
	Redirect                 // HTTP GET / sent to the configured page
	Invalid                  // a request whose action could not be read
	NumActions
)

var actionLabels = [NumActions]string{
	Connect: "connect", Announce: "announce", Scrape: "scrape", FullScrape: "full_scrape",
	Answer: "answer", Redirect: "redirect", Invalid: "invalid",
}

// Label is the action's metric label.
func (a Action) Label() string { return actionLabels[a] }

// Actions lists the actions each protocol has, so that readers report a
// zero for each of them rather than nothing, and nothing for the others
// until counted (see Has).
var Actions = [NumProtocols][]Action{
	UDP:  {Connect, Announce, Scrape, Invalid},
	HTTP: {Announce, Scrape, FullScrape, Redirect, Invalid},
	WS:   {Announce, Answer, Scrape, Invalid},
}

// Outcome is how a request ended.
type Outcome uint8

// The outcomes.
const (
	OK          Outcome = iota // served
	Failure                    // refused with a reason the client sees
	RateLimited                // refused by the per-client rate limit (answered or not)
	Error                      // internal error or cut off
	Dropped                    // not answered at all
	NumOutcomes
)

var outcomeLabels = [NumOutcomes]string{
	OK: "ok", Failure: "failure", RateLimited: "rate_limited", Error: "error", Dropped: "dropped",
}

// Label is the outcome's metric label.
func (o Outcome) Label() string { return outcomeLabels[o] }

// MaxReasons bounds the refusal reasons a Set counts. Refusals are
// indexed by the tracker core's reason enum (tracker.Reason), which this
// package does not import; its count must stay within this bound (the
// stats package checks it at compile time).
const MaxReasons = 16

// Fault is a cause of trouble that is no refusal of the tracker core: an
// HTTP request for nothing the tracker serves, a full scrape turned away
// or cut off, an unanswered datagram, a socket failure, a connection the
// tracker closed.
type Fault uint8

// The faults.
const (
	BadRequest       Fault = iota // HTTP 400: a query that does not decode
	NotFound                      // HTTP 404
	MethodNotAllowed              // HTTP 405
	FullScrapeBusy                // full scrape refused: too many running
	FullScrapeCut                 // full scrape cut off (client gone, shutdown, timeout)
	Runt                          // UDP datagram not answered: runt, not BEP 15, unknown action
	SendFailed                    // a reply the kernel refused to send
	ReadFailed                    // a failed socket read
	ClosedByTracker               // WebSocket connection closed for a protocol, size or rate violation
	NumFaults
)

var faultLabels = [NumFaults]string{
	BadRequest: "bad_request", NotFound: "not_found", MethodNotAllowed: "method_not_allowed",
	FullScrapeBusy: "full_scrape_busy", FullScrapeCut: "full_scrape_cut", Runt: "dropped",
	SendFailed: "send_failed", ReadFailed: "read_failed", ClosedByTracker: "closed_by_tracker",
}

// Label is the fault's metric label.
func (f Fault) Label() string { return faultLabels[f] }

// Faults lists the faults each protocol can count, as Actions does.
var Faults = [NumProtocols][]Fault{
	UDP:  {Runt, SendFailed, ReadFailed},
	HTTP: {BadRequest, NotFound, MethodNotAllowed, FullScrapeBusy, FullScrapeCut},
	WS:   {ClosedByTracker},
}

// Event is something a frontend does besides answering a request.
type Event uint8

// The events.
const (
	Accepted         Event = iota // connection accepted
	Turned                        // connection closed on arrival: its limit reached, or shutting down
	OfferRelayed                  // WebSocket offer sent on to a peer
	AnswerRelayed                 // WebSocket answer sent on to its offerer
	SlowReaderClosed              // WebSocket connection closed: relays to it overflowed its queue
	NumEvents
)

var eventLabels = [NumEvents]string{
	Accepted: "connections_accepted", Turned: "connections_refused",
	OfferRelayed: "offers_relayed", AnswerRelayed: "answers_relayed",
	SlowReaderClosed: "slow_readers_closed",
}

// Label names the event's counter after its protocol's: "herald_" +
// protocol label + "_" + Label() + "_total".
func (e Event) Label() string { return eventLabels[e] }

// Events lists the events each protocol counts, as Actions does.
var Events = [NumProtocols][]Event{
	HTTP: {Accepted, Turned},
	WS:   {Accepted, Turned, OfferRelayed, AnswerRelayed, SlowReaderClosed},
}

// Gauge is a value a frontend keeps and the Set reads through Watch.
type Gauge uint8

// The gauges.
const (
	Connections     Gauge = iota // open now
	ConnectionLimit              // most connections allowed; 0 when unbounded
	Swarms                       // torrents the frontend holds itself (WebTorrent)
	SwarmLimit                   // most Swarms allowed; 0 when unbounded
	Peers                        // peers the frontend holds itself (WebTorrent)
	PeerLimit                    // most Peers allowed; 0 when unbounded
	NumGauges
)

var gaugeLabels = [NumGauges]string{
	Connections: "connections", ConnectionLimit: "connections_limit",
	Swarms: "torrents", SwarmLimit: "torrents_limit", Peers: "peers", PeerLimit: "peers_limit",
}

// Label names the gauge after its protocol's: "herald_" + protocol label
// + "_" + Label().
func (g Gauge) Label() string { return gaugeLabels[g] }

// IsLimit reports whether g is a configured bound, which readers leave
// out while it is 0 (off).
func (g Gauge) IsLimit() bool { return g == ConnectionLimit || g == SwarmLimit || g == PeerLimit }

// Gauges lists the gauges each protocol has, as Actions does.
var Gauges = [NumProtocols][]Gauge{
	HTTP: {Connections, ConnectionLimit},
	WS:   {Connections, ConnectionLimit, Swarms, SwarmLimit, Peers, PeerLimit},
}

// LatencyBuckets are the upper bounds of the response-time and
// service-time histograms.
// Announces answered from RAM take tens of microseconds, so the bounds are
// closest between 25 and 250 µs, where a p99 under 100 µs has to be read
// without interpolating across a wide bucket; the top buckets catch full
// scrapes and stalls.
var LatencyBuckets = [...]time.Duration{
	10 * time.Microsecond, 25 * time.Microsecond, 50 * time.Microsecond,
	75 * time.Microsecond, 100 * time.Microsecond, 150 * time.Microsecond,
	250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 5 * time.Second,
}

// histogram counts durations per bucket (not cumulative; the last is
// +Inf) and their sum in nanoseconds.
type histogram struct {
	counts [len(LatencyBuckets) + 1]atomic.Uint64
	sum    atomic.Int64
}

// add records n durations d.
func (h *histogram) add(d time.Duration, n int) {
	h.counts[bucketOf(d)].Add(uint64(n))
	h.sum.Add(int64(d) * int64(n))
}

// cacheLine is larger than any cache line herald runs on, with adjacent
// line prefetch in mind.
const cacheLine = 128

// shard is one processor's counters.
type shard struct {
	_        [cacheLine]byte
	requests [NumProtocols][NumActions][NumOutcomes]atomic.Uint64
	refusals [NumProtocols][MaxReasons]atomic.Uint64
	faults   [NumProtocols][NumFaults]atomic.Uint64
	events   [NumProtocols][NumEvents]atomic.Uint64
	latency  [NumProtocols]histogram // response times
	service  [NumProtocols]histogram // service times
	_        [cacheLine]byte
}

// Set is one tracker's counters. Share one Set between every frontend and
// the monitor; its methods are safe for concurrent use.
type Set struct {
	shards []shard
	mask   int // len(shards)-1, a power of two minus one

	mu      sync.Mutex
	watched []watched // guarded by mu
}

type watched struct {
	p    Protocol
	g    Gauge
	read func() int64
}

// New returns an empty Set with a shard for each processor the machine
// has (processors beyond that share shards, which stays correct).
func New() *Set {
	n := 1
	for n < max(runtime.NumCPU(), runtime.GOMAXPROCS(0)) {
		n *= 2
	}
	return &Set{shards: make([]shard, n), mask: n - 1}
}

//go:linkname procPin runtime.procPin
func procPin() int

//go:linkname procUnpin runtime.procUnpin
func procUnpin()

// shard returns the current processor's shard. The goroutine may move to
// another processor right after; the add is atomic, so that only costs a
// shared line now and then.
func (s *Set) shard() *shard {
	id := procPin()
	procUnpin()
	return &s.shards[id&s.mask]
}

// Request counts one request.
func (s *Set) Request(p Protocol, a Action, o Outcome) {
	s.shard().requests[p][a][o].Add(1)
}

// Refused counts one refusal for reason (a tracker.Reason) of a request
// of protocol p; the request itself is counted with Request.
func (s *Set) Refused(p Protocol, reason uint8) { s.shard().refusals[p][reason].Add(1) }

// Fault counts one fault.
func (s *Set) Fault(p Protocol, f Fault) { s.shard().faults[p][f].Add(1) }

// Event counts one event.
func (s *Set) Event(p Protocol, e Event) { s.shard().events[p][e].Add(1) }

// A request's response time runs from its arrival (as early as herald
// can tell: the kernel's receive time for UDP) to the start of the write
// of its reply: what a client sees of herald. Its service time runs from
// when herald has read the request to the same end: how long herald works
// on it, without the wait in the socket before the read. Where a frontend
// cannot tell the two apart (net/http, WebSocket), both are the same
// value; see the frontends' ObserveRequest calls.

// ObserveRequest records one request's response time and service time.
func (s *Set) ObserveRequest(p Protocol, response, service time.Duration) {
	sh := s.shard()
	sh.latency[p].add(response, 1)
	sh.service[p].add(service, 1)
}

func bucketOf(d time.Duration) int {
	i := 0
	for i < len(LatencyBuckets) && d > LatencyBuckets[i] {
		i++
	}
	return i
}

// Tally gathers response times on one goroutine, without atomics, for
// ObserveBatch to add to a Set at once: a UDP reader times each datagram
// of a batch and adds the batch's times in one go.
type Tally struct {
	counts [len(LatencyBuckets) + 1]uint32
	sum    time.Duration
	used   uint64 // bit i: counts[i] is not zero
}

// Add records one response time.
func (t *Tally) Add(d time.Duration) {
	i := bucketOf(d)
	t.counts[i]++
	t.used |= 1 << i
	t.sum += d
}

// ObserveBatch records a batch of n requests of protocol p: their
// response times, gathered in t (which it empties), and the service time
// d of each of them, with one shard lookup.
func (s *Set) ObserveBatch(p Protocol, t *Tally, d time.Duration, n int) {
	sh := s.shard()
	sh.service[p].add(d, n)
	if t.used != 0 {
		t.addTo(&sh.latency[p])
	}
}

// addTo adds t's counts and sum to h and empties t.
func (t *Tally) addTo(h *histogram) {
	for u := t.used; u != 0; u &= u - 1 {
		i := bits.TrailingZeros64(u)
		h.counts[i].Add(uint64(t.counts[i]))
		t.counts[i] = 0
	}
	h.sum.Add(int64(t.sum))
	t.sum, t.used = 0, 0
}

// Watch adds read to gauge g of protocol p: Read reports the sum of every
// function watched for it. read is called at every Read, so it must be
// cheap and safe to call from any goroutine.
func (s *Set) Watch(p Protocol, g Gauge, read func() int64) {
	s.mu.Lock()
	s.watched = append(s.watched, watched{p, g, read})
	s.mu.Unlock()
}

// Latency is a response-time or service-time histogram read at one moment.
type Latency struct {
	// Buckets are cumulative counts per LatencyBuckets bound, as Prometheus
	// wants them; Count includes the +Inf bucket.
	Buckets [len(LatencyBuckets)]uint64
	Count   uint64
	Sum     time.Duration
}

// Counts are a Set's counters summed over its shards.
type Counts struct {
	Requests [NumProtocols][NumActions][NumOutcomes]uint64
	Refusals [NumProtocols][MaxReasons]uint64 // by tracker.Reason
	Faults   [NumProtocols][NumFaults]uint64
	Events   [NumProtocols][NumEvents]uint64
	Gauges   [NumProtocols][NumGauges]int64
	Latency  [NumProtocols]Latency // response times
	Service  [NumProtocols]Latency // service times
}

// Read sums the shards. Each counter is read atomically while writers go
// on, so the set is not one instant: a histogram's Count may run ahead of
// its Sum by a few observations.
func (s *Set) Read() Counts {
	var c Counts
	for i := range s.shards {
		sh := &s.shards[i]
		for p := range NumProtocols {
			for a := range NumActions {
				for o := range NumOutcomes {
					c.Requests[p][a][o] += sh.requests[p][a][o].Load()
				}
			}
			for r := range MaxReasons {
				c.Refusals[p][r] += sh.refusals[p][r].Load()
			}
			for f := range NumFaults {
				c.Faults[p][f] += sh.faults[p][f].Load()
			}
			for e := range NumEvents {
				c.Events[p][e] += sh.events[p][e].Load()
			}
			c.Latency[p].add(&sh.latency[p])
			c.Service[p].add(&sh.service[p])
		}
	}
	s.mu.Lock()
	for _, w := range s.watched {
		c.Gauges[w.p][w.g] += w.read()
	}
	s.mu.Unlock()
	return c
}

// add adds h's counts to l.
func (l *Latency) add(h *histogram) {
	var cum uint64
	for b := range LatencyBuckets {
		cum += h.counts[b].Load()
		l.Buckets[b] += cum
	}
	l.Count += cum + h.counts[len(LatencyBuckets)].Load()
	l.Sum += time.Duration(h.sum.Load())
}

// HasAction reports whether readers report action a of protocol p: it is
// in Actions[p], or was counted.
func (c *Counts) HasAction(p Protocol, a Action) bool {
	if slices.Contains(Actions[p], a) {
		return true
	}
	for _, n := range c.Requests[p][a] {
		if n > 0 {
			return true
		}
	}
	return false
}

// HasFault is HasAction for faults and Faults.
func (c *Counts) HasFault(p Protocol, f Fault) bool {
	return slices.Contains(Faults[p], f) || c.Faults[p][f] > 0
}

// Total is every request of protocol p, whatever its action and outcome.
func (c *Counts) Total(p Protocol) uint64 {
	var n uint64
	for a := range NumActions {
		for o := range NumOutcomes {
			n += c.Requests[p][a][o]
		}
	}
	return n
}

// NotOK is the requests of protocol p not served as asked: every outcome
// but OK.
func (c *Counts) NotOK(p Protocol) uint64 {
	var n uint64
	for a := range NumActions {
		for o := range NumOutcomes {
			if o != OK {
				n += c.Requests[p][a][o]
			}
		}
	}
	return n
}
