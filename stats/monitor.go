package stats

import (
	"context"
	"fmt"
	"herald/version"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"herald/counters"
	"herald/ratelimit"
	"herald/swarm"
)

// Store is what the monitor reads from the swarm store; *swarm.Store has it.
// Torrents, Peers, Refusals, Renewals, Totals and Config are cheap (atomic loads);
// Range walks every shard, one lock at a time, so it runs only on demand
// and on the sampler's slow ticks.
type Store interface {
	Torrents() int
	Peers() int
	Refusals() swarm.Refusals
	Renewals() swarm.Renewals // for mode=renew
	Config() swarm.Config     // its MaxTorrents and MaxPeers are reported
	Totals() swarm.Totals
	Range(fn func(swarm.TorrentCounts) bool)
	Dump(fn func(*swarm.TorrentState) error) error // every peer, for mode=s24s
}

// Sources are the numbers the monitor reports. Every source is read with
// atomic loads or short shard locks; nothing here is called per request.
type Sources struct {
	Store Store // required
	// Counters is the set every frontend counts into; default an empty one.
	Counters *counters.Set
	// LastSave tells when the last successful snapshot save started (zero
	// before the first), for the dashboard's snapshot age; nil when
	// snapshots are off.
	LastSave func() time.Time
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
	// about 530 bytes a sample). Default 900, 15 minutes at 1s.
	History int
	// SlowEvery is how often the sampler walks the store for the busiest
	// torrents. Default 30s: a walk costs about 1 µs per torrent
	// (BenchmarkRead), one shard lock at a time.
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
	if c.Sources.Counters == nil {
		c.Sources.Counters = counters.New()
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
	counts    *counters.Set
	start     time.Time
	now       func() time.Time // time.Now; tests fix it
	trackerID uint32           // random per process, as opentracker's tracker_id

	statsRequests atomic.Uint64 // stats, metrics and dashboard requests served
	statsDenied   atomic.Uint64 // of those, refused with 403

	history *history
	usage   *usageReader // for Run only
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
		counts:    cfg.Sources.Counters,
		start:     time.Now(),
		now:       time.Now,
		trackerID: rand.Uint32(),
		history:   newHistory(cfg.History),
	}
	m.metrics = promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{
		ErrorLog:      slogPrinter{m},
		ErrorHandling: promhttp.ContinueOnError,
	})
	// The process metrics read /proc through a descriptor opened now, so
	// that they survive a chroot; client_golang's collector, off Linux.
	var process prometheus.Collector = collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})
	var proc *os.Root
	if pc, err := newProcessCollector(); err == nil {
		process, proc = pc, pc.proc
	}
	m.usage = newUsageReader(proc)
	for _, c := range []prometheus.Collector{
		metricsCollector{m},
		buildInfoGauge(version.Read()),
		collectors.NewGoCollector(),
		process,
	} {
		if err := cfg.Registry.Register(c); err != nil {
			return nil, fmt.Errorf("stats: register metrics: %w", err)
		}
	}
	return m, nil
}

// Snapshot is the tracker's state at one moment: every counter the
// frontends keep plus the store's totals. /stats, /metrics and the
// dashboard all read it.
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
	// of the torrents in the store.
	Totals swarm.Totals
	// Counters are every frontend's requests, faults, events, gauges and
	// response times.
	Counters counters.Counts
	// StatsRequests counts requests to the monitor's own pages, which
	// opentracker counts as TCP connections; StatsDenied those refused.
	StatsRequests uint64
	StatsDenied   uint64
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
	s := Snapshot{
		Time:          now,
		Uptime:        now.Sub(m.start),
		Torrents:      m.store.Torrents(),
		Peers:         m.store.Peers(),
		Refusals:      m.store.Refusals(),
		StatsRequests: m.statsRequests.Load(),
		StatsDenied:   denied,
		Counters:      m.counts.Read(),
	}
	return s
}

// Run samples the sources for the dashboard every SampleEvery until ctx is
// done. Counters, totals and the process's usage are read on every tick;
// the busiest torrents every SlowEvery, since they walk the store.
func (m *Monitor) Run(ctx context.Context) {
	tick := time.NewTicker(m.cfg.SampleEvery)
	defer tick.Stop()
	var lastSlow time.Time
	for {
		s := m.Snapshot()
		if s.Time.Sub(lastSlow) >= m.cfg.SlowEvery {
			lastSlow = s.Time
			m.history.setTop(m.Top(m.cfg.TopTorrents))
		}
		var lastSave time.Time
		if m.cfg.Sources.LastSave != nil {
			lastSave = m.cfg.Sources.LastSave()
		}
		m.history.add(s, m.usage.read(), lastSave)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Requests is every request of protocol p answered or dropped. For HTTP
// it includes the monitor's own pages: opentracker's TCP "connections"
// (it closes each connection after one reply). For UDP it is every
// datagram received: opentracker's UDP "connections".
func (s *Snapshot) Requests(p counters.Protocol) uint64 {
	n := s.Counters.Total(p)
	if p == counters.HTTP {
		n += s.StatsRequests
	}
	return n
}

// Errors is the requests of protocol p not served as asked: refused, rate
// limited, malformed, cut off or dropped; for HTTP also the monitor's
// pages refused with 403.
func (s *Snapshot) Errors(p counters.Protocol) uint64 {
	n := s.Counters.NotOK(p)
	if p == counters.HTTP {
		n += s.StatsDenied
	}
	return n
}

// served is the requests of protocol p for action a served as asked.
func (s *Snapshot) served(p counters.Protocol, a counters.Action) uint64 {
	return s.Counters.Requests[p][a][counters.OK]
}
