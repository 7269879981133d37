// Command herald is a BitTorrent tracker: HTTP and UDP announce and scrape,
// IPv4 and IPv6 in one process, everything in RAM.
//
// With no arguments it serves a public tracker on port 6969, TCP and UDP,
// dual stack.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"herald/httptracker"
	"herald/snapshot"
	"herald/swarm"
	"herald/udptracker"
)

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

type options struct {
	listen, listenTCP, listenUDP listFlag

	interval    time.Duration
	peerTimeout time.Duration
	numWant     int
	maxNumWant  int
	maxTorrents int
	maxPeers    int
	logLevel    slog.Level
	logJSON     bool

	snapshotPath     string
	snapshotInterval time.Duration
	statedump        string
}

func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("herald", flag.ContinueOnError)
	fs.Var(&o.listen, "listen", "address to serve HTTP and UDP on, repeatable (default \"[::]:6969\", dual stack)")
	fs.Var(&o.listenTCP, "listen-tcp", "address to serve HTTP only on, repeatable")
	fs.Var(&o.listenUDP, "listen-udp", "address to serve UDP only on, repeatable")
	fs.DurationVar(&o.interval, "interval", 30*time.Minute, "announce interval told to clients (±10% jitter; min interval is half)")
	fs.DurationVar(&o.peerTimeout, "peer-timeout", swarm.DefaultPeerTimeout, "how long a peer stays without re-announcing")
	fs.IntVar(&o.numWant, "numwant", 50, "peers returned when the client does not say")
	fs.IntVar(&o.maxNumWant, "max-numwant", swarm.DefaultMaxNumWant, "most peers returned to one announce")
	fs.IntVar(&o.maxTorrents, "max-torrents", 0, "most torrents held; new ones beyond are refused (0: no limit)")
	fs.IntVar(&o.maxPeers, "max-peers", 0, "most peers held; new ones beyond are refused (0: no limit)")
	fs.StringVar(&o.snapshotPath, "snapshot", "herald.snapshot", "state file: loaded at start, written periodically and at exit (\"off\" disables)")
	fs.DurationVar(&o.snapshotInterval, "snapshot-interval", 5*time.Minute, "how often the state file is written")
	fs.StringVar(&o.statedump, "l", "", "import an opentracker statedump (completed counts) at start")
	fs.TextVar(&o.logLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn, error")
	fs.BoolVar(&o.logJSON, "log-json", false, "log as JSON instead of text")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.snapshotPath == "off" {
		o.snapshotPath = ""
	}
	if o.snapshotInterval <= 0 {
		return nil, fmt.Errorf("-snapshot-interval %v: must be positive", o.snapshotInterval)
	}
	if len(o.listen)+len(o.listenTCP)+len(o.listenUDP) == 0 {
		o.listen = listFlag{"[::]:6969"}
	}
	return o, nil
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "herald:", err)
		os.Exit(2)
	}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: o.logLevel})
	if o.logJSON {
		h = slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: o.logLevel})
	}
	log := slog.New(h)
	if err := run(o, log); err != nil {
		log.Error("herald stopped", "err", err)
		os.Exit(1)
	}
}

// server is what each frontend offers once bound.
type server interface {
	Serve(ctx context.Context) error
}

func run(o *options, log *slog.Logger) error {
	store, err := swarm.New(swarm.Config{
		PeerTimeout: o.peerTimeout,
		MaxNumWant:  o.maxNumWant,
		MaxTorrents: o.maxTorrents,
		MaxPeers:    o.maxPeers,
	})
	if err != nil {
		return err
	}
	httpCfg := httptracker.Config{
		Store:          store,
		Interval:       o.interval,
		DefaultNumWant: o.numWant,
		MaxNumWant:     o.maxNumWant,
		Logger:         log,
	}
	udpCfg := udptracker.Config{
		Store:          store,
		Interval:       o.interval,
		DefaultNumWant: o.numWant,
		Logger:         log,
	}

	// Bind everything first, so that a port in use fails the start.
	var servers []server
	bindHTTP := func(addr string) error {
		s, err := httptracker.Listen(addr, httpCfg)
		if err != nil {
			return err
		}
		servers = append(servers, s)
		return nil
	}
	bindUDP := func(addr string) error {
		s, err := udptracker.Listen(addr, udpCfg)
		if err != nil {
			return err
		}
		servers = append(servers, s)
		return nil
	}
	for _, addr := range o.listen {
		if err := bindHTTP(addr); err != nil {
			return err
		}
		if err := bindUDP(addr); err != nil {
			return err
		}
	}
	for _, addr := range o.listenTCP {
		if err := bindHTTP(addr); err != nil {
			return err
		}
	}
	for _, addr := range o.listenUDP {
		if err := bindUDP(addr); err != nil {
			return err
		}
	}

	store.SetNow(time.Now())
	if err := restoreState(o, store, log); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var wg sync.WaitGroup
	wg.Go(func() { store.Run(ctx) })
	if o.snapshotPath != "" {
		wg.Go(func() { saveEvery(ctx, o.snapshotPath, o.snapshotInterval, store, log) })
	}
	errs := make(chan error, len(servers))
	for _, s := range servers {
		wg.Go(func() {
			if err := s.Serve(ctx); err != nil {
				errs <- err
				stop()
			}
		})
	}
	<-ctx.Done()
	log.Info("shutting down")
	wg.Wait()
	close(errs)
	if o.snapshotPath != "" {
		saveState(o.snapshotPath, store, log)
	}
	return errors.Join(collect(errs)...)
}

// restoreState loads the snapshot and the opentracker statedump, if any. A
// damaged or future-version snapshot is moved aside, never deleted, and
// herald starts empty; a snapshot it cannot read at all stops the start, so
// that the next save does not overwrite state it never saw.
func restoreState(o *options, store *swarm.Store, log *slog.Logger) error {
	if o.snapshotPath != "" {
		// A save killed mid-write leaves its temporary file behind.
		stale, _ := filepath.Glob(o.snapshotPath + ".tmp-*")
		for _, f := range stale {
			if err := os.Remove(f); err == nil {
				log.Warn("removed an unfinished snapshot left by an earlier crash", "path", f)
			}
		}
		t0 := time.Now()
		info, err := snapshot.Load(o.snapshotPath, store, t0)
		switch {
		case errors.Is(err, snapshot.ErrCorrupt) || errors.Is(err, snapshot.ErrVersion):
			aside := fmt.Sprintf("%s.bad-%s", o.snapshotPath, t0.UTC().Format("20060102T150405Z"))
			if rerr := os.Rename(o.snapshotPath, aside); rerr != nil {
				return fmt.Errorf("%w; moving it aside failed: %w", err, rerr)
			}
			log.Error("snapshot unusable, moved aside; starting empty", "err", err, "moved_to", aside)
		case err != nil:
			return err
		case info.Bytes > 0:
			log.Info("snapshot restored", "path", o.snapshotPath, "torrents", store.Torrents(), "peers", store.Peers(),
				"saved_peers", info.Peers, "age", t0.Sub(info.Created).Round(time.Second), "took", time.Since(t0).Round(time.Millisecond))
		}
	}
	if o.statedump != "" {
		f, err := os.Open(o.statedump)
		if err != nil {
			return fmt.Errorf("statedump: %w", err)
		}
		defer f.Close()
		n, err := snapshot.ImportStatedump(f, store)
		if err != nil {
			return fmt.Errorf("%s: %w", o.statedump, err)
		}
		log.Info("opentracker statedump imported", "path", o.statedump, "torrents", n)
	}
	return nil
}

func saveEvery(ctx context.Context, path string, every time.Duration, store *swarm.Store, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			saveState(path, store, log)
		}
	}
}

func saveState(path string, store *swarm.Store, log *slog.Logger) {
	t0 := time.Now()
	info, err := snapshot.Save(path, store, t0)
	if err != nil {
		log.Error("snapshot not written", "err", err)
		return
	}
	log.Debug("snapshot written", "path", path, "torrents", info.Torrents, "peers", info.Peers, "bytes", info.Bytes, "took", time.Since(t0))
}

func collect(ch <-chan error) []error {
	var out []error
	for err := range ch {
		out = append(out, err)
	}
	return out
}
