package stats

import (
	"context"
	"fmt"
	"herald/version"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"herald/httptracker"
	"herald/ratelimit"
	"herald/swarm"
	"herald/udptracker"
)

// Store is what the monitor reads from the swarm store; *swarm.Store has it.
// Torrents, Peers, Refusals and Config are cheap; Totals and Range walk
// every shard, one lock at a time, so they run only on demand and on the
// sampler's slow ticks.
type Store interface {
	Torrents() int
	Peers() int
	Refusals() swarm.Refusals
	Config() swarm.Config // its MaxTorrents and MaxPeers are reported
	Totals() swarm.Totals
	Range(fn func(swarm.TorrentCounts) bool)
}

// HTTPCounters is an HTTP frontend's counters; *httptracker.Server and
// *httptracker.Handler have it.
type HTTPCounters interface {
	Stats() httptracker.Stats
}

// UDPCounters is a UDP frontend's counters; *udptracker.Server has it.
type UDPCounters interface {
	Stats() udptracker.Stats
}

// Sources are the numbers the monitor reports. Every source is read with
// atomic loads or short shard locks; nothing here is called per request.
type Sources struct {
	Store Store // required
	// HTTP and UDP list every listening frontend; their counters are summed.
	HTTP []HTTPCounters
	UDP  []UDPCounters
	// HTTPLatency and UDPLatency are the response-time histograms the
	// frontends observe into (one per frontend or per socket, so writers
	// on different cores do not share cache lines); they are merged.
	HTTPLatency []*Histogram
	UDPLatency  []*Histogram
}

// Config holds the monitor's settings. Zero fields take the defaults beside
// them.
type Config struct {
	Sources Sources
	// Nets are the client networks allowed to read /stats, /metrics and
	// /dashboard (opentracker's access.stats and -A). Everyone else gets
	// 403; empty means nobody, as Debian's opentracker build.
	Nets []netip.Prefix
	// StatsPath is the stats page's path without slashes (opentracker's
	// access.stats_path). Default "stats".
	StatsPath string
	// Version is reported by mode=version and mode=everything.
	Version string
	// RateLimit is the per-client limit the frontends' Admit applies,
	// reported in metrics; a zero Rate means there is none.
	RateLimit ratelimit.Config
	// Registry receives the monitor's collector and the Go runtime and
	// process collectors; /metrics serves it. Default a new registry.
	Registry *prometheus.Registry
	// SampleEvery is the dashboard's resolution. Default 1s.
	SampleEvery time.Duration
	// History is how many samples the dashboard keeps (bounded memory:
	// about 100 bytes a sample). Default 900, 15 minutes at 1s.
	History int
	// SlowEvery is how often the sampler walks the store for seeders,
	// leechers and the busiest torrents. Default 30s: a walk costs about
	// 1 µs per torrent (BenchmarkRead), one shard lock at a time.
	SlowEvery time.Duration
	// TopTorrents is how many busiest torrents the dashboard lists.
	// Default 10.
	TopTorrents int
	// Logger receives errors of the metrics endpoint. Default
	// slog.Default().
	Logger *slog.Logger
}

// Defaults for Config.
const (
	DefaultStatsPath   = "stats"
	DefaultSampleEvery = time.Second
	DefaultHistory     = 900
	DefaultSlowEvery   = 30 * time.Second
	DefaultTopTorrents = 10
)

func (c Config) withDefaults() (Config, error) {
	if c.Sources.Store == nil {
		return c, fmt.Errorf("stats: Config.Sources.Store is nil")
	}
	if c.StatsPath == "" {
		c.StatsPath = DefaultStatsPath
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
	if c.SampleEvery == 0 {
		c.SampleEvery = DefaultSampleEvery
	}
	if c.History == 0 {
		c.History = DefaultHistory
	}
	if c.SlowEvery == 0 {
		c.SlowEvery = DefaultSlowEvery
	}
	if c.TopTorrents == 0 {
		c.TopTorrents = DefaultTopTorrents
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	switch {
	case c.SampleEvery < time.Millisecond || c.SlowEvery < c.SampleEvery:
		return c, fmt.Errorf("stats: sample every %v, slow every %v: need 1ms <= sample <= slow", c.SampleEvery, c.SlowEvery)
	case c.History < 2:
		return c, fmt.Errorf("stats: history %d: must be at least 2 samples", c.History)
	case c.TopTorrents < 1 || c.TopTorrents > maxTop:
		return c, fmt.Errorf("stats: top torrents %d: must be 1 to %d", c.TopTorrents, maxTop)
	}
	return c, nil
}

// Monitor reports the tracker's state as opentracker's /stats, Prometheus
// metrics and a live dashboard, all read from one Snapshot.
type Monitor struct {
	cfg       Config
	store     Store
	src       atomic.Pointer[Sources] // replaced whole by AddHTTP and AddUDP
	addMu     sync.Mutex              // serialises AddHTTP and AddUDP
	start     time.Time
	now       func() time.Time // time.Now; tests fix it
	trackerID uint32           // random per process, as opentracker's tracker_id

	statsRequests atomic.Uint64 // stats, metrics and dashboard requests served
	statsDenied   atomic.Uint64 // of those, refused with 403

	history *history
	metrics http.Handler // promhttp over cfg.Registry
}

// New returns a monitor and registers its collectors in cfg.Registry.
func New(cfg Config) (*Monitor, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	m := &Monitor{
		cfg:       cfg,
		store:     cfg.Sources.Store,
		start:     time.Now(),
		now:       time.Now,
		trackerID: rand.Uint32(),
		history:   newHistory(cfg.History),
	}
	src := cfg.Sources
	m.src.Store(&src)
	m.metrics = promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{
		ErrorLog:      slogPrinter{m},
		ErrorHandling: promhttp.ContinueOnError,
	})
	for _, c := range []prometheus.Collector{
		metricsCollector{m},
		buildInfoGauge(version.Read()),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := cfg.Registry.Register(c); err != nil {
			return nil, fmt.Errorf("stats: register metrics: %w", err)
		}
	}
	return m, nil
}

// Snapshot is the tracker's state at one moment: every counter the
// frontends keep, summed over listeners, plus the store's totals. /stats,
// /metrics and the dashboard all read it.
type Snapshot struct {
	Time   time.Time
	Uptime time.Duration
	// Torrents and Peers are the store's exact running totals.
	Torrents int
	Peers    int
	// Refusals are the announces and restores the store refused at its
	// bounds.
	Refusals swarm.Refusals
	// Totals are seeders and leechers by family and the completed counts
	// of the torrents in the store (a walk over every shard).
	Totals swarm.Totals
	HTTP   httptracker.Stats
	UDP    udptracker.Stats
	// StatsRequests counts requests to the monitor's own pages, which
	// opentracker counts as TCP connections; StatsDenied those refused.
	StatsRequests uint64
	StatsDenied   uint64
	HTTPLatency   HistogramSnapshot
	UDPLatency    HistogramSnapshot
}

// Snapshot reads every source now, Totals included.
func (m *Monitor) Snapshot() Snapshot {
	s := m.counters(m.now())
	s.Totals = m.store.Totals()
	return s
}

// counters is a Snapshot without Totals: only atomic loads.
func (m *Monitor) counters(now time.Time) Snapshot {
	// Denied first: a request denied between the two loads then shows in
	// both, never in StatsDenied alone.
	denied := m.statsDenied.Load()
	src := m.src.Load()
	s := Snapshot{
		Time:          now,
		Uptime:        now.Sub(m.start),
		Torrents:      m.store.Torrents(),
		Peers:         m.store.Peers(),
		Refusals:      m.store.Refusals(),
		StatsRequests: m.statsRequests.Load(),
		StatsDenied:   denied,
		HTTPLatency:   mergeHistograms(src.HTTPLatency),
		UDPLatency:    mergeHistograms(src.UDPLatency),
	}
	for _, h := range src.HTTP {
		s.HTTP = addHTTP(s.HTTP, h.Stats())
	}
	for _, u := range src.UDP {
		s.UDP = addUDP(s.UDP, u.Stats())
	}
	return s
}

// AddHTTP adds an HTTP frontend made after the monitor (it needs the
// monitor's handler when it is made) and, if it times requests, its
// histogram (nil if not).
func (m *Monitor) AddHTTP(c HTTPCounters, latency *Histogram) {
	m.add(func(s *Sources) {
		s.HTTP = append(s.HTTP, c)
		if latency != nil {
			s.HTTPLatency = append(s.HTTPLatency, latency)
		}
	})
}

// AddUDP adds a UDP frontend made after the monitor and its histograms
// (one per socket, or none).
func (m *Monitor) AddUDP(c UDPCounters, latency ...*Histogram) {
	m.add(func(s *Sources) {
		s.UDP = append(s.UDP, c)
		s.UDPLatency = append(s.UDPLatency, latency...)
	})
}

// add publishes a changed copy of the sources, so readers never lock.
func (m *Monitor) add(change func(*Sources)) {
	m.addMu.Lock()
	defer m.addMu.Unlock()
	src := *m.src.Load()
	src.HTTP = slices.Clone(src.HTTP)
	src.UDP = slices.Clone(src.UDP)
	src.HTTPLatency = slices.Clone(src.HTTPLatency)
	src.UDPLatency = slices.Clone(src.UDPLatency)
	change(&src)
	m.src.Store(&src)
}

// Run samples the sources for the dashboard every SampleEvery until ctx is
// done. Counters are read on every tick; seeders, leechers and the busiest
// torrents every SlowEvery, since they walk the store.
func (m *Monitor) Run(ctx context.Context) {
	tick := time.NewTicker(m.cfg.SampleEvery)
	defer tick.Stop()
	var lastSlow time.Time
	var totals swarm.Totals
	for {
		now := m.now()
		s := m.counters(now)
		if now.Sub(lastSlow) >= m.cfg.SlowEvery {
			lastSlow = now
			totals = m.store.Totals()
			m.history.setTop(m.Top(m.cfg.TopTorrents))
		}
		s.Totals = totals
		m.history.add(s)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// HTTPRequests is every HTTP request answered: opentracker's TCP
// "connections" (it closes each connection after one reply).
func (s *Snapshot) HTTPRequests() uint64 {
	h := &s.HTTP
	return h.Announces + h.AnnounceFailures + h.Scrapes + h.ScrapeFailures +
		h.FullScrapes + h.FullScrapesBusy + h.FullScrapeErrors +
		h.BadRequests + h.NotFound + h.Redirects + h.BadMethods + s.StatsRequests
}

// UDPRequests is every datagram received: opentracker's UDP
// "connections". Rate-limited datagrams are received too, though the
// frontend counts them apart from Errors and Dropped.
func (s *Snapshot) UDPRequests() uint64 {
	u := &s.UDP
	return u.Connects + u.Announces + u.Scrapes + u.Errors + u.Dropped + u.RateLimited
}

// HTTPErrors are HTTP requests not served as asked: 4xx, failure reasons,
// refused and cut-off full scrapes.
func (s *Snapshot) HTTPErrors() uint64 {
	h := &s.HTTP
	return h.AnnounceFailures + h.ScrapeFailures + h.FullScrapesBusy + h.FullScrapeErrors +
		h.BadRequests + h.NotFound + h.BadMethods + s.StatsDenied
}

// UDPErrors are datagrams answered with an error packet or not at all,
// rate-limited ones included.
func (s *Snapshot) UDPErrors() uint64 {
	return s.UDP.Errors + s.UDP.Dropped + s.UDP.RateLimited
}

func addHTTP(a, b httptracker.Stats) httptracker.Stats {
	a.Announces += b.Announces
	a.AnnounceFailures += b.AnnounceFailures
	a.Scrapes += b.Scrapes
	a.ScrapeFailures += b.ScrapeFailures
	a.FullScrapes += b.FullScrapes
	a.FullScrapesBusy += b.FullScrapesBusy
	a.FullScrapeErrors += b.FullScrapeErrors
	a.BadRequests += b.BadRequests
	a.NotFound += b.NotFound
	a.Redirects += b.Redirects
	a.BadMethods += b.BadMethods
	a.InternalErrors += b.InternalErrors
	a.RateLimited += b.RateLimited
	a.OpenConnections += b.OpenConnections
	a.RefusedConnections += b.RefusedConnections
	a.MaxConnections += b.MaxConnections
	return a
}

func addUDP(a, b udptracker.Stats) udptracker.Stats {
	a.Connects += b.Connects
	a.Announces += b.Announces
	a.Scrapes += b.Scrapes
	a.Errors += b.Errors
	a.BadConnectionID += b.BadConnectionID
	a.Refused += b.Refused
	a.Malformed += b.Malformed
	a.StoreErrors += b.StoreErrors
	a.Dropped += b.Dropped
	a.RateLimited += b.RateLimited
	a.SendFailures += b.SendFailures
	a.ReadFailures += b.ReadFailures
	return a
}
