package tracker

import (
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/netip"
	"sync/atomic"
	"time"

	"herald/access"
	"herald/accounting"
	"herald/bans"
	"herald/swarm"
)

// Defaults for Config.
const (
	DefaultInterval   = 30 * time.Minute
	DefaultNumWant    = 50
	DefaultMaxNumWant = swarm.DefaultMaxNumWant
	// DefaultConnectRate is the ConnectRate herald applies unless told
	// otherwise (tracker.udp_connect_rate); Config's zero is no bound.
	DefaultConnectRate = 100000
	// The default jitter is a tenth of the interval: opentracker's 1800±180 s.
	defaultJitterFraction = 10
)

// LeftUnknown is the "left" of an announce that did not say how much it
// still needs: the peer counts as a leecher, since only left=0 claims the
// whole torrent. Every frontend reads a missing or unreadable left so.
const LeftUnknown = math.MaxUint64

// Config holds the rules every frontend applies. Zero fields take the
// defaults named beside them.
type Config struct {
	// Store holds the swarms Announce and ScrapeCounts read and write; nil
	// for a frontend that keeps its own (WebSocket), which calls Admit
	// and Allowed and stores the peer itself.
	Store *swarm.Store
	// Allowed decides whether the tracker serves a torrent (the access
	// list); nil allows all. It is called from every frontend goroutine
	// at once, on every announce and for every scraped hash.
	Allowed func(swarm.InfoHash) bool
	// Keys, if set, are the members' keys (access.keys): every announce
	// and scrape must carry a listed one, AnnounceRequest.AccessKey or
	// the key argument of AdmitScrape. nil serves everyone.
	Keys *access.Keys
	// Ledger, if set, counts every announce accepted with a key, per key
	// (set it only with Keys).
	Ledger *accounting.Ledger
	// Admit, if set, is asked for every announce and scrape with the
	// client's address and the time; false means the client is over its
	// rate limit. Safe for concurrent use and cheap. Over UDP it is asked
	// only once the connection id has proven the address.
	Admit func(netip.Addr, time.Time) bool
	// Bans, if set, refuses every announce and scrape of a banned client
	// first, and earns a ban for a client that keeps going over Admit or
	// (StrikeBadConnectionID) sending wrong UDP connection ids. A type,
	// not a func like the others: its check, one atomic load while nobody
	// is banned, inlines.
	Bans *bans.Table
	// AdmitFullScrape, if set, is asked for every full scrape (every
	// torrent's counts, the costliest reply) after Admit; false means the
	// client has had its share of them.
	AdmitFullScrape func(netip.Addr, time.Time) bool
	// ConnectRate bounds the UDP connects answered per second, for all
	// clients together (see ConnectWindow); 0 for no bound.
	ConnectRate int
	// Interval is the re-announce interval sent to clients. Default 30m.
	Interval time.Duration
	// IntervalJitter spreads re-announces: each reply's interval is drawn
	// uniformly from Interval±IntervalJitter, so clients started together
	// drift apart. Default Interval/10; negative for none.
	IntervalJitter time.Duration
	// MinInterval is the "min interval" sent to clients. Default half of
	// each reply's interval, as opentracker.
	MinInterval time.Duration
	// DefaultNumWant is how many peers an announce that does not say gets.
	// Default 50.
	DefaultNumWant int
	// MaxNumWant caps the peers one announce gets. Default 200.
	MaxNumWant int
	// AllowIPField honours the addresses a client states itself (BEP 3
	// ip=, BEP 15's IP field, BEP 7 ipv4=/ipv6=). Off by default: a client
	// could register anybody's address.
	AllowIPField bool
	// Logger gets internal errors, never a line per request. Default
	// slog.Default().
	Logger *slog.Logger
}

// Tracker applies Config to requests from any frontend. It is safe for
// concurrent use; frontends that serve different intervals (WebSocket)
// get a Tracker of their own over the same Allowed and Admit.
type Tracker struct {
	cfg                           Config
	interval, jitter, minInterval uint32 // seconds
	internalErrors                atomic.Uint64
}

// New checks cfg, fills in its defaults and returns a Tracker.
func New(cfg Config) (*Tracker, error) {
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.IntervalJitter == 0 {
		cfg.IntervalJitter = cfg.Interval / defaultJitterFraction
	}
	cfg.IntervalJitter = max(cfg.IntervalJitter, 0)
	if cfg.DefaultNumWant == 0 {
		cfg.DefaultNumWant = DefaultNumWant
	}
	if cfg.MaxNumWant == 0 {
		cfg.MaxNumWant = DefaultMaxNumWant
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	switch {
	case cfg.Interval < time.Second || cfg.Interval > math.MaxInt32*time.Second:
		return nil, fmt.Errorf("tracker: interval %v: must be between 1s and 2^31s", cfg.Interval)
	case cfg.IntervalJitter >= cfg.Interval:
		return nil, fmt.Errorf("tracker: interval jitter %v: must be less than the interval %v", cfg.IntervalJitter, cfg.Interval)
	case cfg.MinInterval < 0 || cfg.MinInterval > cfg.Interval:
		return nil, fmt.Errorf("tracker: min interval %v: must be between 0 and the interval %v", cfg.MinInterval, cfg.Interval)
	case cfg.ConnectRate < 0:
		return nil, fmt.Errorf("tracker: connect rate %d: must not be negative", cfg.ConnectRate)
	case cfg.DefaultNumWant < 0 || cfg.MaxNumWant < 0 || cfg.DefaultNumWant > cfg.MaxNumWant:
		return nil, fmt.Errorf("tracker: numwant default %d, max %d: need 0 <= default <= max", cfg.DefaultNumWant, cfg.MaxNumWant)
	}
	return &Tracker{
		cfg:         cfg,
		interval:    uint32(cfg.Interval / time.Second),
		jitter:      uint32(cfg.IntervalJitter / time.Second),
		minInterval: uint32(cfg.MinInterval / time.Second),
	}, nil
}

// AnnounceRequest is an announce as a frontend parsed it.
type AnnounceRequest struct {
	// Announce.Addr is the address the request came from, with the port
	// the client announced; the rate limit is charged to its address.
	// Announce.NumWant is what the client asked for, negative when it did
	// not say; Announce.Left is LeftUnknown when it did not say.
	swarm.Announce
	// StatedIP is the address the client states it is listed under (BEP 3
	// ip=, BEP 15's IP field); zero when it states none. Honoured only
	// with Config.AllowIPField.
	StatedIP netip.Addr
	// Also are the client's addresses in the other family (BEP 7
	// ipv4=/ipv6=), registered as second peers with Config.AllowIPField;
	// a zero port takes the announced one.
	Also [2]netip.AddrPort
	// Family is which families of peers the reply carries.
	Family swarm.Family
	// MaxPeers is the frontend's own cap on the peers of one reply (a UDP
	// reply must fit a datagram); 0 for none beyond Config.MaxNumWant.
	MaxPeers int
	// AccessKey is the key in the announce URL's path (access.KeyFromPath);
	// zero when it has none.
	AccessKey access.Key
}

// AnnounceReply is what an announce gets back.
type AnnounceReply struct {
	Peers                 swarm.Peers
	Counts                swarm.Counts
	Interval, MinInterval uint32 // seconds
}

// Prepare applies the rules that come before a store, cheapest first:
// the bans, the key and the access list (lock-free lookups), the rate
// limit, then numwant and the listed address, which it writes into
// r.Announce. A frontend that keeps its own swarms (WebSocket) calls it and
// stores r.Announce itself.
func (t *Tracker) Prepare(r *AnnounceRequest, now time.Time) *ClientError {
	if t.banned(r.Addr.Addr(), now) {
		return Banned.Err()
	}
	if !t.keyListed(&r.AccessKey) {
		return UnknownKey.Err()
	}
	if !t.Allowed(r.InfoHash) {
		return NotAllowed.Err()
	}
	if !t.admit(r.Addr.Addr(), now) {
		return RateLimited.Err()
	}
	n := r.NumWant
	if n < 0 {
		n = t.cfg.DefaultNumWant
	}
	n = min(n, t.cfg.MaxNumWant)
	if r.MaxPeers > 0 {
		n = min(n, r.MaxPeers)
	}
	r.NumWant = n
	if t.cfg.AllowIPField && r.StatedIP.IsValid() {
		r.Addr = netip.AddrPortFrom(r.StatedIP, r.Addr.Port())
	}
	return nil
}

// Announce runs r through Prepare and the store, and fills reply: peers
// appended to dst, the swarm's counts, and this reply's intervals.
func (t *Tracker) Announce(r *AnnounceRequest, now time.Time, dst swarm.Peers, reply *AnnounceReply) *ClientError {
	if ce := t.Prepare(r, now); ce != nil {
		return ce
	}
	peers, counts, err := t.cfg.Store.Announce(&r.Announce, r.Family, dst)
	if err != nil {
		return t.refusal(err)
	}
	if t.cfg.AllowIPField {
		t.announceAlso(r)
	}
	t.Record(r, now)
	reply.Peers, reply.Counts = peers, counts
	reply.Interval, reply.MinInterval = t.Intervals()
	return nil
}

// Record counts an announce the tracker accepted in the per-key
// accounting; Announce calls it, a frontend that keeps its own swarms
// (WebSocket) calls it once it stored the peer.
func (t *Tracker) Record(r *AnnounceRequest, now time.Time) {
	if t.cfg.Ledger != nil {
		t.cfg.Ledger.Record(&r.AccessKey, &r.Announce, now)
	}
}

// announceAlso registers r's peer under its addresses in the other family
// (BEP 7), so peers of that family can reach it.
func (t *Tracker) announceAlso(r *AnnounceRequest) {
	for _, other := range r.Also {
		if !other.IsValid() || swarm.FamilyOf(other.Addr()) == swarm.FamilyOf(r.Addr.Addr()) {
			continue
		}
		extra := r.Announce
		extra.Addr, extra.NumWant = other, 0
		if other.Port() == 0 {
			extra.Addr = netip.AddrPortFrom(other.Addr(), r.Addr.Port())
		}
		t.cfg.Store.Announce(&extra, 0, swarm.Peers{})
	}
}

// refusal is the ClientError of a store error, logging the errors the
// store does not document at 1, 2, 4, 8, ... occurrences: visible, never
// a flood.
func (t *Tracker) refusal(err error) *ClientError {
	ce, internal := AsClientError(err)
	if internal {
		if n := t.internalErrors.Add(1); n&(n-1) == 0 {
			t.cfg.Logger.Error("tracker: store failed", "err", err, "count", n)
		}
	}
	return ce
}

// Intervals returns one reply's interval, jittered, and min interval, in
// seconds.
func (t *Tracker) Intervals() (interval, minInterval uint32) {
	interval = t.interval
	if t.jitter > 0 {
		interval = interval - t.jitter + rand.Uint32N(2*t.jitter+1)
	}
	if t.minInterval > 0 {
		return interval, min(t.minInterval, interval)
	}
	return interval, interval / 2
}

// Interval is the configured re-announce interval, before jitter.
func (t *Tracker) Interval() time.Duration { return t.cfg.Interval }

// Allowed reports whether the access list lets the tracker serve h.
func (t *Tracker) Allowed(h swarm.InfoHash) bool {
	return t.cfg.Allowed == nil || t.cfg.Allowed(h)
}

// banned reports whether client is banned at now.
func (t *Tracker) banned(client netip.Addr, now time.Time) bool {
	return t.cfg.Bans != nil && t.cfg.Bans.Banned(client, now)
}

// admit charges a request from client to the rate limit at now and
// reports whether it is under it; a refusal is a strike towards a ban.
func (t *Tracker) admit(client netip.Addr, now time.Time) bool {
	if t.cfg.Admit == nil || t.cfg.Admit(client, now) {
		return true
	}
	if t.cfg.Bans != nil {
		t.cfg.Bans.Strike(client, now, bans.ReasonRateLimited)
	}
	return false
}

// StrikeBadConnectionID records a UDP request from client with a wrong or
// expired connection id, a strike towards a ban.
func (t *Tracker) StrikeBadConnectionID(client netip.Addr, now time.Time) {
	if t.cfg.Bans != nil {
		t.cfg.Bans.Strike(client, now, bans.ReasonBadConnectionID)
	}
}

// keyListed reports whether key is a listed key, or keys are off.
func (t *Tracker) keyListed(key *access.Key) bool {
	return t.cfg.Keys == nil || t.cfg.Keys.Listed(key)
}

// AdmitScrape checks a scrape's client against the bans and its key (zero
// for none) against the keys, and charges it to its rate limit: nil,
// Banned, UnknownKey, or RateLimited over it.
func (t *Tracker) AdmitScrape(client netip.Addr, key *access.Key, now time.Time) *ClientError {
	if t.banned(client, now) {
		return Banned.Err()
	}
	if !t.keyListed(key) {
		return UnknownKey.Err()
	}
	if !t.admit(client, now) {
		return RateLimited.Err()
	}
	return nil
}

// AdmitFullScrape is AdmitScrape for a full scrape, which also takes the
// client's share of full scrapes.
func (t *Tracker) AdmitFullScrape(client netip.Addr, key *access.Key, now time.Time) *ClientError {
	if ce := t.AdmitScrape(client, key, now); ce != nil {
		return ce
	}
	if t.cfg.AdmitFullScrape != nil && !t.cfg.AdmitFullScrape(client, now) {
		return RateLimited.Err()
	}
	return nil
}

// ScrapeCounts returns the counts of h, and whether the tracker knows it:
// a torrent the access list refuses reads as unknown, all zeros, whatever
// the store holds.
func (t *Tracker) ScrapeCounts(h swarm.InfoHash) (swarm.Counts, bool) {
	if !t.Allowed(h) {
		return swarm.Counts{}, false
	}
	return t.cfg.Store.Scrape(h)
}

// Range calls fn for each torrent the access list allows, until fn
// returns false: a full scrape, which shows what a scrape of each hash
// would.
func (t *Tracker) Range(fn func(swarm.TorrentCounts) bool) {
	t.cfg.Store.Range(func(tc swarm.TorrentCounts) bool {
		return !t.Allowed(tc.InfoHash) || fn(tc)
	})
}

// ParseEvent reads an announce's event name. The names are BEP 3's, BEP
// 21's "paused" (a partial seed pausing: a plain announce to the tracker),
// and WebTorrent's "update"; "" and "empty" mean none. ok is false for
// any other name, which a frontend refuses or reads as none.
func ParseEvent(name []byte) (e swarm.Event, ok bool) {
	switch string(name) {
	case "started":
		return swarm.EventStarted, true
	case "completed":
		return swarm.EventCompleted, true
	case "stopped":
		return swarm.EventStopped, true
	case "", "empty", "paused", "update":
		return swarm.EventNone, true
	}
	return swarm.EventNone, false
}
