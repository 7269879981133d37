package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"herald/access"
	"herald/accounting"
	"herald/admin"
	"herald/bans"
	"herald/certs"
	"herald/cluster"
	"herald/config"
	"herald/counters"
	"herald/httptracker"
	"herald/privdrop"
	"herald/snapshot"
	"herald/stats"
	"herald/swarm"
	"herald/tracker"
	"herald/udptracker"
	"herald/wstracker"
)

// The lifecycle: herald starts in three steps, each a function below.
// start builds every component from its configuration (wiring.go), restores
// the state and binds every address, all with the privileges herald was
// started with; dropPrivileges gives them up and opens the access list;
// serve runs everything until a signal, then stops it and saves the state.

func run(s *config.Settings, log *slog.Logger) error {
	d, err := start(s, log)
	if err != nil {
		return err
	}
	if err := d.dropPrivileges(); err != nil {
		return err
	}
	d.logSummary()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return d.serve(ctx, stop)
}

// server is what each frontend offers once bound.
type server interface {
	Serve(ctx context.Context) error
}

// daemon is herald's components, built and bound.
type daemon struct {
	s   *config.Settings
	log *slog.Logger

	node  *cluster.Node // nil when serving alone
	store *swarm.Store
	plan  *privdrop.Plan // nil when privileges stay
	// counts is the one set of counters: every frontend counts into it,
	// the monitor reads it.
	counts   *counters.Set
	registry *prometheus.Registry
	mon      *stats.Monitor
	ws       *wstracker.Handler
	certs    *certs.Provider // nil without listen.tls
	// servers are the frontends, each bound to one address.
	servers []server

	// snapshot is the snapshot file as named after the drop, snapshotNow
	// as named before it; both "" when off. saves writes it, once the drop
	// has shown that it can.
	snapshot, snapshotNow string
	saves                 *saver
	// connIDSecret is what UDP connection ids are derived from, kept in
	// the snapshot so that ids survive a restart.
	connIDSecret []byte
	// listPath and listMode name the access list file, read after the drop
	// into list; allowed is its check, nil until then and without a list
	// (isAllowed is what the components ask).
	listPath string
	listMode access.Mode
	list     *access.List
	allowed  func(swarm.InfoHash) bool

	// bans is the ban table, restored from banFile (as named after the
	// drop, "" for none) once privileges are dropped.
	bans    *bans.Table
	banFile string
	// admin applies admin changes: from its API on adminListener (nil
	// when off, with adminToken), from the FIFOs and from the cluster.
	admin               *admin.Server
	adminListener       net.Listener
	adminToken          string
	fifoAdd, fifoDelete *os.File
	// keys are the members' keys (access.keys), read after the drop, and
	// ledger their per-key accounting; both nil when keys are off.
	keys   *access.Keys
	ledger *accounting.Ledger
}

// lastSave is when the last successful snapshot save started, for the
// dashboard; the saver exists from the privilege drop on, before the
// monitor samples.
func (d *daemon) lastSave() time.Time {
	if d.saves == nil {
		return time.Time{}
	}
	return d.saves.lastSave()
}

// isAllowed is the access check every component is given: the list's once
// it is open, every torrent until then and without a list.
func (d *daemon) isAllowed(h swarm.InfoHash) bool { return d.allowed == nil || d.allowed(h) }

// start builds the components, restores the state and binds every
// address, before privileges are dropped: a port in use fails the start,
// and ports below 1024 work.
func start(s *config.Settings, log *slog.Logger) (d *daemon, err error) {
	d = &daemon{s: s, log: log}
	if s.Keys != "" {
		d.ledger = accounting.New(s.PeerTimeout, config.LedgerMaxPeers(s.MaxPeers))
	}
	// The cluster node exists before the store, whose sink it is. It reads
	// its credential files now, before privileges are dropped.
	if len(s.Cluster.URLs) > 0 {
		if d.node, err = cluster.New(clusterConfig(s, d.isAllowed, d.ledger), log); err != nil {
			return nil, err
		}
	}
	storeCfg := storeConfig(s)
	if d.node != nil { // a nil *Node in the interface would not be nil
		storeCfg.Sink = d.node
	}
	if d.store, err = swarm.New(storeCfg); err != nil {
		return nil, err
	}

	// Files are resolved now, as they will be named after a chroot.
	if d.plan, err = privdrop.Prepare(s.RootDir, s.User); err != nil {
		return nil, err
	}
	if d.plan != nil && os.Geteuid() != 0 {
		log.Warn("not running as root: no chroot, no user change", "rootdir", s.RootDir, "user", s.User)
		d.plan = nil
	}
	if s.Snapshot != "" {
		if d.snapshotNow, d.snapshot, err = d.plan.Paths(s.Snapshot); err != nil {
			return nil, err
		}
	}
	if d.listPath, d.listMode = accessList(s); d.listPath != "" {
		if _, d.listPath, err = d.plan.Paths(d.listPath); err != nil {
			return nil, err
		}
	}
	if s.BanFile != "" {
		if _, d.banFile, err = d.plan.Paths(s.BanFile); err != nil {
			return nil, err
		}
	}
	// The token and the FIFOs may be the superuser's only.
	if s.AdminListen != "" {
		if d.adminToken, err = admin.LoadToken(s.AdminTokenFile); err != nil {
			return nil, err
		}
	}
	for _, fifo := range []struct {
		path string
		f    **os.File
	}{{s.FIFOAdd, &d.fifoAdd}, {s.FIFODelete, &d.fifoDelete}} {
		if fifo.path != "" {
			if *fifo.f, err = admin.OpenFIFO(fifo.path); err != nil {
				return nil, err
			}
		}
	}
	if s.Keys != "" {
		_, keysPath, err := d.plan.Paths(s.Keys)
		if err != nil {
			return nil, err
		}
		d.keys = access.NewKeys(keysPath, log)
	}

	// The state is read before the drop: the file may be writable only from
	// inside the chroot, but the previous state must not depend on that.
	d.store.SetNow(time.Now())
	if d.connIDSecret, err = restoreState(d.snapshotNow, s.Statedump, d.store, d.ledger, log); err != nil {
		return nil, err
	}
	if err := d.bind(); err != nil {
		return nil, err
	}
	return d, nil
}

// bind builds the stats monitor and the frontends and binds every address.
func (d *daemon) bind() (err error) {
	s := d.s
	d.counts = counters.New()
	f := frontends{log: d.log, unlimited: unlimited(s), connIDSecret: d.connIDSecret, counts: d.counts}
	admit, err := newAdmit(rateLimitConfig(s))
	if err != nil {
		return err
	}
	admitFullScrape, err := newAdmit(fullScrapeLimit(s))
	if err != nil {
		return err
	}
	if d.bans, err = bans.New(banConfig(s, d.node)); err != nil {
		return err
	}
	rules := trackerConfig(s, d.store, d.isAllowed, d.keys, d.ledger, admit, admitFullScrape, d.log)
	rules.Bans = d.bans
	if f.core, err = tracker.New(rules); err != nil {
		return err
	}
	// WebSocket gets the same rules with its own, shorter interval.
	rules.Interval = s.WSInterval
	if f.wsCore, err = tracker.New(rules); err != nil {
		return err
	}
	d.registry = prometheus.NewRegistry()
	d.registry.MustRegister(d.bans)
	if d.node != nil {
		d.registry.MustRegister(d.node.Collector())
	}
	statsCfg := statsConfig(s, d.store, d.counts, d.registry, d.log)
	if d.snapshot != "" {
		statsCfg.Sources.LastSave = d.lastSave
	}
	if d.mon, err = stats.New(statsCfg); err != nil {
		return err
	}
	f.mon = d.mon
	httpCfg := httpConfig(s, f)
	wsCfg := wsConfig(s, f)
	// With a cluster, WebTorrent swarms span it (cluster/webtorrent.go).
	webCluster := d.node != nil && (s.WSOnHTTP || len(s.WSListens) > 0)
	if webCluster {
		wsCfg.Cluster = d.node
	}
	if d.ws, err = wstracker.NewHandler(wsCfg); err != nil {
		return err
	}
	if webCluster {
		d.node.ServeWebTorrent(d.ws)
	}
	if s.WSOnHTTP {
		httpCfg.WebSocket, httpCfg.IsWebSocket = d.ws, wstracker.IsUpgrade
	}
	for _, addr := range s.WSListens {
		srv, err := d.ws.Listen(addr)
		if err != nil {
			return err
		}
		d.servers = append(d.servers, srv)
	}
	if len(s.TLSListens) > 0 {
		certCfg := s.TLS
		certCfg.Logger = d.log
		if d.certs, err = certs.New(certCfg); err != nil {
			return err
		}
		httpCfg.ACMEChallenge = d.certs.ACMEChallenge()
		tlsCfg := d.certs.TLSConfig()
		for _, addr := range s.TLSListens {
			srv, err := httptracker.ListenTLS(addr, httpCfg, tlsCfg)
			if err != nil {
				return err
			}
			d.servers = append(d.servers, srv)
		}
	}
	if s.AdminListen != "" {
		if d.adminListener, err = net.Listen("tcp", s.AdminListen); err != nil {
			return fmt.Errorf("listen.admin: %w", err)
		}
	}
	udpCfg := udpConfig(s, f)
	blocked := 0
	for _, l := range s.Listens {
		if l.TCP {
			srv, err := httptracker.Listen(l.Addr, httpCfg)
			if err != nil {
				return err
			}
			d.servers = append(d.servers, srv)
			blocked += srv.BlockedLoops()
		}
		if l.UDP {
			srv, err := udptracker.Listen(l.Addr, udpCfg)
			if err != nil {
				return err
			}
			d.servers = append(d.servers, srv)
			blocked += srv.BlockedReaders()
		}
	}
	// One P more than the UDP readers and HTTP event loops that wait
	// holding theirs, so that one stays idle and the runtime leaves their
	// system calls alone (udptracker.Server.BlockedReaders,
	// httptracker.Server.BlockedLoops).
	if blocked >= runtime.GOMAXPROCS(0) {
		runtime.GOMAXPROCS(blocked + 1)
	}
	return nil
}

// dropPrivileges chroots and changes user as configured, then checks that
// the snapshot can be written and reads the access list and the keys, as
// the user and from where herald will save and reload them.
func (d *daemon) dropPrivileges() (err error) {
	if d.plan != nil {
		if err := d.plan.Drop(); err != nil {
			return err
		}
		d.log.Info("privileges dropped", "rootdir", d.plan.RootDir, "user", d.plan.User, "uid", os.Getuid())
	}
	if d.snapshot != "" {
		// A state that can never be saved must not be found late.
		if err := checkWritable(d.snapshot, d.snapshotNow, d.plan); err != nil {
			return err
		}
		d.saves = &saver{path: d.snapshot, store: d.store, ledger: d.ledger, secret: d.connIDSecret, log: d.log}
		d.registry.MustRegister(d.saves)
	}
	if d.listPath != "" {
		if d.list, err = access.Open(d.listPath, d.listMode, d.log); err != nil {
			return err
		}
		d.allowed = d.list.Allowed
	}
	if d.keys != nil {
		// Until now the set was empty: nothing was served yet.
		if err := d.keys.Reload(); err != nil {
			return err
		}
	}
	if d.banFile != "" {
		if err := d.bans.Restore(d.banFile, time.Now()); err != nil {
			return err
		}
	}
	d.admin, err = admin.New(adminConfig(d))
	return err
}

// serve runs every component until ctx is done or a frontend fails (which
// calls stop), then waits for all of them and saves the state.
func (d *daemon) serve(ctx context.Context, stop context.CancelFunc) error {
	var wg sync.WaitGroup
	wg.Go(func() { d.store.Run(ctx) })
	wg.Go(func() { d.mon.Run(ctx) })
	if d.node != nil {
		wg.Go(func() {
			if err := d.node.Run(ctx, d.store); err != nil {
				d.log.Error("cluster sync not running; serving alone", "err", err)
			}
		})
	}
	if d.saves != nil {
		wg.Go(func() { d.saves.every(ctx, d.s.SnapshotInterval) })
	}
	wg.Go(func() { d.bans.Run(ctx) })
	d.serveAdmin(ctx, &wg, stop)
	var onHangup []func()
	if d.list != nil {
		wg.Go(func() { d.list.Watch(ctx, d.s.AccessReload) })
		onHangup = append(onHangup, func() {
			if err := d.list.Reload(); err != nil {
				d.log.Error("access list not reloaded; keeping the last good list", "err", err)
			}
		})
	}
	if d.keys != nil {
		wg.Go(func() { d.ledger.Run(ctx) })
		wg.Go(func() { d.keys.Watch(ctx, d.s.AccessReload) })
		onHangup = append(onHangup, func() {
			if err := d.keys.Reload(); err != nil {
				d.log.Error("keys file not reloaded; keeping the last good keys", "err", err)
			}
		})
	}
	if d.certs != nil {
		wg.Go(func() { d.certs.Run(ctx) })
		onHangup = append(onHangup, func() {
			if _, err := d.certs.Reload(); err != nil {
				d.log.Error("certificate not reloaded; serving the previous one", "err", err)
			}
		})
	}
	// SIGHUP is taken before any server runs: its default action ends the
	// process, so one sent as soon as herald answers must find it handled.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	wg.Go(func() { reloadOnHangup(ctx, hup, onHangup) })
	errs := make(chan error, len(d.servers))
	for _, srv := range d.servers {
		wg.Go(func() {
			if err := srv.Serve(ctx); err != nil {
				errs <- err
				stop()
			}
		})
	}
	<-ctx.Done()
	d.log.Info("shutting down")
	d.ws.Close() // net/http's shutdown leaves hijacked connections alone
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	if d.saves != nil {
		if err := d.saves.save(); err != nil {
			all = append(all, fmt.Errorf("final %w", err))
		}
	}
	return errors.Join(all...)
}

// reloadOnHangup runs every reload on each SIGHUP from hup: the access
// list, as opentracker does, the keys file and the TLS certificate files;
// with none of them, a SIGHUP does nothing.
func reloadOnHangup(ctx context.Context, hup <-chan os.Signal, reloads []func()) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			for _, reload := range reloads {
				reload()
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
func restoreState(snapPath, statedump string, store *swarm.Store, ledger *accounting.Ledger, log *slog.Logger) ([]byte, error) {
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
		info, err := snapshot.Load(snapPath, store, ledger, t0)
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
			log.Info("snapshot restored", "path", snapPath, "torrents", store.Torrents(), "peers", store.Peers(), "keys", info.Keys,
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
