package main

import (
	"cmp"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"herald/access"
	"herald/accounting"
	"herald/bans"
	"herald/cluster"
	"herald/config"
	"herald/counters"
	"herald/httptracker"
	"herald/ratelimit"
	"herald/stats"
	"herald/swarm"
	"herald/tracker"
	"herald/udptracker"
	"herald/version"
	"herald/wstracker"
)

// The wiring: each function below turns the settings into one component's
// configuration, and nothing else. What starts, binds and stops the
// components is in lifecycle.go.

// defaultSettings are the settings herald runs with when told nothing:
// config's own defaults, and each component's from its package, so that
// every default has one source.
func defaultSettings() config.Settings {
	s := config.Defaults()
	s.PeerTimeout = swarm.DefaultPeerTimeout
	s.Interval = tracker.DefaultInterval
	s.DefaultNumWant = tracker.DefaultNumWant
	s.MaxNumWant = tracker.DefaultMaxNumWant
	s.UDPConnectRate = tracker.DefaultConnectRate
	s.RateLimit, s.RateBurst = ratelimit.DefaultRate, ratelimit.DefaultBurst
	s.BanAfter, s.BanDuration = bans.DefaultAfter, bans.DefaultDuration
	s.StatsPath = stats.DefaultStatsPath
	s.UDPMaxPeers4, s.UDPMaxPeers6 = udptracker.DefaultMaxPeers4, udptracker.DefaultMaxPeers6

	s.ProxyHeader = httptracker.DefaultProxyHeader
	s.HTTPMaxConnections = httptracker.DefaultMaxConnections
	s.HTTPMaxConnectionsPerClient = httptracker.DefaultMaxConnectionsPerClient
	s.HTTPReadHeaderTimeout = httptracker.DefaultReadHeaderTimeout
	s.HTTPReadTimeout = httptracker.DefaultReadTimeout
	s.HTTPIdleTimeout = httptracker.DefaultIdleTimeout
	s.HTTPWriteTimeout = httptracker.DefaultWriteTimeout
	s.HTTPMaxHeaderBytes = httptracker.DefaultMaxHeaderBytes
	s.HTTPMaxScrapeHashes = httptracker.DefaultMaxScrapeHashes
	s.HTTPMaxFullScrapes = httptracker.DefaultMaxFullScrapes

	s.WSInterval = wstracker.DefaultInterval
	s.WSMaxOffers = wstracker.DefaultMaxOffers
	s.WSMaxConnectionsPerClient = wstracker.DefaultMaxConnectionsPerClient
	s.WSFirstMessageTimeout = wstracker.DefaultReadHeaderTimeout
	s.WSMessageRate = wstracker.DefaultMessageRate
	s.WSMessageBurst = wstracker.DefaultMessageBurst
	return s
}

func storeConfig(s *config.Settings) swarm.Config {
	return swarm.Config{
		PeerTimeout: s.PeerTimeout,
		MaxNumWant:  s.MaxNumWant,
		MaxTorrents: s.MaxTorrents,
		MaxPeers:    s.MaxPeers,
		DecoyPeers:  s.DecoyPeers,
	}
}

// clusterConfig is the cluster's settings with the access check, which
// records from other nodes pass as announces do, and the per-key
// accounting it publishes (nil without keys).
func clusterConfig(s *config.Settings, allowed func(swarm.InfoHash) bool, ledger *accounting.Ledger) cluster.Config {
	cfg := s.Cluster
	cfg.Allowed = allowed
	cfg.Accounting = ledger
	return cfg
}

func rateLimitConfig(s *config.Settings) ratelimit.Config {
	return ratelimit.Config{Rate: s.RateLimit, Burst: s.RateBurst}
}

// accessList is the list file the settings name and how it is read; path
// is empty when every torrent is served.
func accessList(s *config.Settings) (path string, mode access.Mode) {
	if s.Blacklist != "" {
		return s.Blacklist, access.Blacklist
	}
	return s.Whitelist, access.Whitelist
}

func statsConfig(s *config.Settings, store *swarm.Store, counts *counters.Set, registry *prometheus.Registry, log *slog.Logger) stats.Config {
	// Stats, /metrics and the dashboard go to the networks the operator
	// named (access.stats, -A), or to this machine only.
	nets := s.StatsNets
	if len(nets) == 0 {
		nets = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	}
	return stats.Config{
		Sources:   stats.Sources{Store: store, Counters: counts},
		Nets:      nets,
		StatsPath: s.StatsPath,
		Version:   version.Read().String(),
		RateLimit: rateLimitConfig(s),
		Registry:  registry,
		Logger:    log,
	}
}

// fullScrapeLimit is the per-client limit on full scrapes: a full scrape,
// every torrent's counts, is the costliest reply, and a client needs no
// more than one per announce interval.
func fullScrapeLimit(s *config.Settings) ratelimit.Config {
	return ratelimit.Config{Rate: 1 / s.Interval.Seconds(), Burst: 1}
}

func trackerConfig(s *config.Settings, store *swarm.Store, allowed func(swarm.InfoHash) bool, keys *access.Keys,
	ledger *accounting.Ledger, admit, admitFullScrape func(netip.Addr, time.Time) bool, log *slog.Logger) tracker.Config {
	return tracker.Config{
		Store:           store,
		Allowed:         allowed,
		Keys:            keys,
		Ledger:          ledger,
		Admit:           admit,
		AdmitFullScrape: admitFullScrape,
		Interval:        s.Interval,
		DefaultNumWant:  s.DefaultNumWant,
		MaxNumWant:      s.MaxNumWant,
		AllowIPField:    s.AllowIPField,
		ConnectRate:     s.UDPConnectRate,
		Logger:          log,
	}
}

// unlimited is who the per-client connection caps spare: the operator's
// own tools and the reverse proxies, which carry many clients.
func unlimited(s *config.Settings) func(netip.Addr) bool {
	return func(a netip.Addr) bool {
		return a.IsLoopback() || slices.ContainsFunc(s.ProxyNets, func(p netip.Prefix) bool { return p.Contains(a) })
	}
}

// frontends is what the frontends share: the tracker core (WebSocket's has
// its own interval), who the per-client caps spare, the UDP connection-id
// secret, the stats pages and the logger.
type frontends struct {
	core, wsCore *tracker.Tracker
	unlimited    func(netip.Addr) bool
	connIDSecret []byte
	counts       *counters.Set
	mon          *stats.Monitor
	log          *slog.Logger
}

func httpConfig(s *config.Settings, f frontends) httptracker.Config {
	return httptracker.Config{
		Tracker:        f.core,
		RedirectURL:    s.RedirectURL,
		TrustedProxies: s.ProxyNets,
		ProxyHeader:    s.ProxyHeader,
		Stats:          f.mon.Serve,
		StatsPaths:     statsPaths(s.StatsPath),
		Counters:       f.counts,
		Logger:         f.log,

		MaxConnections:          s.HTTPMaxConnections,
		MaxConnectionsPerClient: s.HTTPMaxConnectionsPerClient,
		Unlimited:               f.unlimited,
		ReadHeaderTimeout:       s.HTTPReadHeaderTimeout,
		ReadTimeout:             s.HTTPReadTimeout,
		IdleTimeout:             s.HTTPIdleTimeout,
		WriteTimeout:            s.HTTPWriteTimeout,
		MaxHeaderBytes:          s.HTTPMaxHeaderBytes,
		MaxScrapeHashes:         s.HTTPMaxScrapeHashes,
		// The config's 0 (off) is httptracker's negative; its 0 is the default.
		MaxFullScrapes: cmp.Or(s.HTTPMaxFullScrapes, -1),
	}
}

func udpConfig(s *config.Settings, f frontends) udptracker.Config {
	return udptracker.Config{
		Tracker:      f.core,
		MaxPeers4:    s.UDPMaxPeers4,
		MaxPeers6:    s.UDPMaxPeers6,
		Sockets:      s.UDPSockets,
		ConnIDSecret: f.connIDSecret,
		Counters:     f.counts,
		Logger:       f.log,
	}
}

func wsConfig(s *config.Settings, f frontends) wstracker.Config {
	return wstracker.Config{
		Tracker:                 f.wsCore,
		MaxOffers:               s.WSMaxOffers,
		MaxConnections:          s.WSMaxConnections,
		MaxConnectionsPerClient: s.WSMaxConnectionsPerClient,
		Unlimited:               f.unlimited,
		FirstMessageTimeout:     s.WSFirstMessageTimeout,
		MessageRate:             s.WSMessageRate,
		MessageBurst:            s.WSMessageBurst,
		// Their own budget (websocket.max_peers), not the store's again.
		MaxTorrents: s.WSMaxPeers,
		MaxPeers:    s.WSMaxPeers,
		Counters:    f.counts,
		Logger:      f.log,
	}
}

// statsPaths are the HTTP paths the stats monitor answers.
func statsPaths(statsPath string) []string {
	dashboard := strings.TrimPrefix(stats.DashboardPath, "/")
	return []string{statsPath, strings.TrimPrefix(stats.MetricsPath, "/"), dashboard, dashboard + "/"}
}

// newAdmit returns the per-client rate limit check, nil when it is off.
// Loopback clients are the operator's own tools and are never limited.
func newAdmit(cfg ratelimit.Config) (func(netip.Addr, time.Time) bool, error) {
	if cfg.Rate == 0 {
		return nil, nil
	}
	l, err := ratelimit.New(cfg)
	if err != nil {
		return nil, err
	}
	return func(a netip.Addr, now time.Time) bool { return a.IsLoopback() || l.Allow(a, now) }, nil
}
