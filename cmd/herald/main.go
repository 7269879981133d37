// Command herald is a BitTorrent tracker: HTTP and UDP announce and scrape,
// IPv4 and IPv6 in one process, everything in RAM.
//
// With no arguments it serves a public tracker on port 6969, TCP and UDP,
// dual stack. It reads opentracker's flags and config file (-f); herald -h
// lists every setting.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"herald/version"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"herald/access"
	"herald/cluster"
	"herald/config"
	"herald/counters"
	"herald/httptracker"
	"herald/privdrop"
	"herald/ratelimit"
	"herald/snapshot"
	"herald/stats"
	"herald/swarm"
	"herald/tracker"
	"herald/udptracker"
	"herald/wstracker"
)

func main() {
	s, err := config.ParseArgs(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "herald:", err)
		os.Exit(2)
	}
	if s.ShowVersion {
		fmt.Println(version.Read())
		return
	}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: s.LogLevel})
	if s.LogJSON {
		h = slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: s.LogLevel})
	}
	log := slog.New(h)
	for _, w := range s.Warnings {
		log.Warn(w)
	}
	if err := run(s, log); err != nil {
		log.Error("herald stopped", "err", err)
		os.Exit(1)
	}
}

// server is what each frontend offers once bound.
type server interface {
	Serve(ctx context.Context) error
}

func run(s *config.Settings, log *slog.Logger) (err error) {
	// The cluster node exists before the store, whose sink it is. It reads
	// its credential files now, before privileges are dropped.
	var node *cluster.Node
	// allowed is the access list's check once the list is open; until
	// then (and without a list) every torrent is allowed.
	var allowed func(swarm.InfoHash) bool
	isAllowed := func(h swarm.InfoHash) bool { return allowed == nil || allowed(h) }
	if len(s.Cluster.URLs) > 0 {
		clusterCfg := s.Cluster
		clusterCfg.Allowed = isAllowed
		if node, err = cluster.New(clusterCfg, log); err != nil {
			return err
		}
	}
	storeCfg := swarm.Config{
		PeerTimeout: s.PeerTimeout,
		MaxNumWant:  s.MaxNumWant,
		MaxTorrents: s.MaxTorrents,
		MaxPeers:    s.MaxPeers,
		DecoyPeers:  s.DecoyPeers,
	}
	if node != nil { // a nil *Node in the interface would not be nil
		storeCfg.Sink = node
	}
	store, err := swarm.New(storeCfg)
	if err != nil {
		return err
	}

	// Files are resolved now, as they will be named after a chroot.
	plan, err := privdrop.Prepare(s.RootDir, s.User)
	if err != nil {
		return err
	}
	if plan != nil && os.Geteuid() != 0 {
		log.Warn("not running as root: no chroot, no user change", "rootdir", s.RootDir, "user", s.User)
		plan = nil
	}
	listPath, listMode := s.Whitelist, access.Whitelist
	if s.Blacklist != "" {
		listPath, listMode = s.Blacklist, access.Blacklist
	}
	var snapNow string
	if s.Snapshot != "" {
		if snapNow, s.Snapshot, err = plan.Paths(s.Snapshot); err != nil {
			return err
		}
	}
	if listPath != "" {
		if _, listPath, err = plan.Paths(listPath); err != nil {
			return err
		}
	}

	// The state is read before the drop: the file may be writable only from
	// inside the chroot, but the previous state must not depend on that.
	store.SetNow(time.Now())
	connIDSecret, err := restoreState(snapNow, s.Statedump, store, log)
	if err != nil {
		return err
	}

	// Bind everything before dropping privileges, so that a port in use
	// fails the start and ports below 1024 work.
	rateLimit := ratelimit.Config{Rate: s.RateLimit, Burst: s.RateBurst}
	admit, err := newAdmit(rateLimit)
	if err != nil {
		return err
	}
	// A full scrape, every torrent's counts, is the costliest reply: one
	// per client per announce interval, as a client needs no more.
	admitFullScrape, err := newAdmit(ratelimit.Config{Rate: 1 / s.Interval.Seconds(), Burst: 1})
	if err != nil {
		return err
	}
	// Stats, /metrics and the dashboard go to the networks the operator
	// named (access.stats, -A), or to this machine only.
	statsNets := s.StatsNets
	if len(statsNets) == 0 {
		statsNets = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	}
	registry := prometheus.NewRegistry()
	if node != nil {
		registry.MustRegister(node.Collector())
	}
	// One set of counters: every frontend counts into it, the monitor reads it.
	counts := counters.New()
	mon, err := stats.New(stats.Config{
		Sources:   stats.Sources{Store: store, Counters: counts},
		Nets:      statsNets,
		StatsPath: s.StatsPath,
		Version:   version.Read().String(),
		RateLimit: rateLimit,
		Registry:  registry,
		Logger:    log,
	})
	if err != nil {
		return err
	}
	// The per-client connection caps spare the operator's own tools and
	// the reverse proxies, which carry many clients.
	unlimited := func(a netip.Addr) bool {
		return a.IsLoopback() || slices.ContainsFunc(s.ProxyNets, func(p netip.Prefix) bool { return p.Contains(a) })
	}
	var servers []server
	coreCfg := tracker.Config{
		Store:           store,
		Allowed:         isAllowed,
		Admit:           admit,
		AdmitFullScrape: admitFullScrape,
		Interval:        s.Interval,
		DefaultNumWant:  s.NumWant,
		MaxNumWant:      s.MaxNumWant,
		AllowIPField:    s.AllowIPField,
		ConnectRate:     s.UDPConnectRate,
		Logger:          log,
	}
	core, err := tracker.New(coreCfg)
	if err != nil {
		return err
	}
	httpCfg := httptracker.Config{
		Tracker:        core,
		RedirectURL:    s.RedirectURL,
		TrustedProxies: s.ProxyNets,
		ProxyHeader:    s.ProxyHeader,
		Stats:          mon.Serve,
		StatsPaths:     statsPaths(s.StatsPath),
		Counters:       counts,
		Logger:         log,

		MaxConnections:          s.HTTPMaxConns,
		MaxConnectionsPerClient: s.HTTPMaxConnsPerClient,
		Unlimited:               unlimited,
		ReadHeaderTimeout:       s.HTTPHeaderTimeout,
		ReadTimeout:             s.HTTPReadTimeout,
		IdleTimeout:             s.HTTPIdleTimeout,
		WriteTimeout:            s.HTTPWriteTimeout,
		MaxHeaderBytes:          s.HTTPMaxHeaderBytes,
		MaxScrapeHashes:         s.HTTPMaxScrapeHashes,
		// The config's 0 (off) is httptracker's negative; its 0 is the default.
		MaxFullScrapes: cmp.Or(s.HTTPMaxFullScrapes, -1),
	}
	// WebSocket gets the same rules with its own, shorter interval.
	wsRules := coreCfg
	wsRules.Interval = s.WSInterval
	wsCore, err := tracker.New(wsRules)
	if err != nil {
		return err
	}
	ws, err := wstracker.NewHandler(wstracker.Config{
		Tracker:                 wsCore,
		MaxOffers:               s.WSMaxOffers,
		MaxConnections:          s.WSMaxConns,
		MaxConnectionsPerClient: s.WSMaxConnsPerClient,
		Unlimited:               unlimited,
		FirstMessageTimeout:     s.WSFirstMessageTimeout,
		MessageRate:             s.WSMessageRate,
		MessageBurst:            s.WSMessageBurst,
		MaxTorrents:             s.MaxTorrents,
		MaxPeers:                s.MaxPeers,
		Counters:                counts,
		Logger:                  log,
	})
	if err != nil {
		return err
	}
	if s.WSOnHTTP {
		httpCfg.WebSocket, httpCfg.IsWebSocket = ws, wstracker.IsUpgrade
	}
	for _, addr := range s.WSListens {
		srv, err := ws.Listen(addr)
		if err != nil {
			return err
		}
		servers = append(servers, srv)
	}
	udpCfg := udptracker.Config{
		Tracker:      core,
		MaxPeers4:    s.MaxPeersUDP4,
		MaxPeers6:    s.MaxPeersUDP6,
		Sockets:      s.UDPSockets,
		ConnIDSecret: connIDSecret,
		Counters:     counts,
		Logger:       log,
	}
	for _, l := range s.Listens {
		if l.TCP {
			srv, err := httptracker.Listen(l.Addr, httpCfg)
			if err != nil {
				return err
			}
			servers = append(servers, srv)
		}
		if l.UDP {
			srv, err := udptracker.Listen(l.Addr, udpCfg)
			if err != nil {
				return err
			}
			servers = append(servers, srv)
		}
	}

	if plan != nil {
		if err := plan.Drop(); err != nil {
			return err
		}
		log.Info("privileges dropped", "rootdir", plan.RootDir, "user", plan.User, "uid", os.Getuid())
	}
	var saves *saver
	if s.Snapshot != "" {
		// Checked as the user herald runs as from now on, where it will
		// write: a state that can never be saved must not be found late.
		if err := checkWritable(s.Snapshot, snapNow, plan); err != nil {
			return err
		}
		saves = &saver{path: s.Snapshot, store: store, secret: connIDSecret, log: log}
		registry.MustRegister(saves)
	}
	// The list is read after the drop, from where it will be reloaded.
	var list *access.List
	if listPath != "" {
		if list, err = access.Open(listPath, listMode, log); err != nil {
			return err
		}
		allowed = list.Allowed
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var wg sync.WaitGroup
	wg.Go(func() { store.Run(ctx) })
	wg.Go(func() { mon.Run(ctx) })
	if node != nil {
		wg.Go(func() {
			if err := node.Run(ctx, store); err != nil {
				log.Error("cluster sync not running; serving alone", "err", err)
			}
		})
	}
	if saves != nil {
		wg.Go(func() { saves.every(ctx, s.SnapshotInterval) })
	}
	if list != nil {
		wg.Go(func() { list.Watch(ctx, s.AccessReload) })
		wg.Go(func() { reloadOnHangup(ctx, list, log) })
	}
	errs := make(chan error, len(servers))
	for _, srv := range servers {
		wg.Go(func() {
			if err := srv.Serve(ctx); err != nil {
				errs <- err
				stop()
			}
		})
	}
	<-ctx.Done()
	log.Info("shutting down")
	ws.Close() // net/http's shutdown leaves hijacked connections alone
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	if saves != nil {
		if err := saves.save(); err != nil {
			all = append(all, fmt.Errorf("final %w", err))
		}
	}
	return errors.Join(all...)
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

// reloadOnHangup reloads the access list on SIGHUP, as opentracker does.
func reloadOnHangup(ctx context.Context, list *access.List, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if err := list.Reload(); err != nil {
				log.Error("access list not reloaded; keeping the last good list", "err", err)
			}
		}
	}
}

// restoreState loads the snapshot and the opentracker statedump, if any, and
// returns the UDP connection-id secret to use: the snapshot's, so that ids
// issued before the restart stay valid, or a new one. A damaged or
// future-version snapshot is moved aside, never deleted, and herald starts
// empty; a snapshot it cannot read at all stops the start, so that the next
// save does not overwrite state it never saw.
func restoreState(snapPath, statedump string, store *swarm.Store, log *slog.Logger) ([]byte, error) {
	secret := udptracker.NewConnIDSecret()
	if snapPath != "" {
		// A save killed mid-write leaves its temporary file behind.
		stale, _ := filepath.Glob(snapPath + ".tmp-*")
		for _, f := range stale {
			if err := os.Remove(f); err == nil {
				log.Warn("removed an unfinished snapshot left by an earlier crash", "path", f)
			}
		}
		t0 := time.Now()
		info, err := snapshot.Load(snapPath, store, t0)
		switch {
		case errors.Is(err, snapshot.ErrCorrupt) || errors.Is(err, snapshot.ErrVersion):
			aside := fmt.Sprintf("%s.bad-%s", snapPath, t0.UTC().Format("20060102T150405Z"))
			if rerr := os.Rename(snapPath, aside); rerr != nil {
				return nil, fmt.Errorf("%w; moving it aside failed: %w", err, rerr)
			}
			log.Error("snapshot unusable, moved aside; starting empty", "err", err, "moved_to", aside)
		case err != nil:
			return nil, err
		case info.Bytes > 0:
			if len(info.ConnIDSecret) > 0 {
				secret = info.ConnIDSecret
			}
			log.Info("snapshot restored", "path", snapPath, "torrents", store.Torrents(), "peers", store.Peers(),
				"saved_peers", info.Peers, "age", t0.Sub(info.Created).Round(time.Second), "took", time.Since(t0).Round(time.Millisecond))
		}
	}
	if statedump != "" {
		f, err := os.Open(statedump)
		if err != nil {
			return nil, fmt.Errorf("statedump: %w", err)
		}
		defer f.Close()
		n, err := snapshot.ImportStatedump(f, store)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", statedump, err)
		}
		log.Info("opentracker statedump imported", "path", statedump, "torrents", n)
	}
	return secret, nil
}
