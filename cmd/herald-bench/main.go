// Command herald-bench is a load generator for BitTorrent trackers: BEP 15
// UDP and BEP 3 HTTP announces and scrapes, and a fill that loads a fixed
// set of peers to measure the tracker's memory per peer. Every reply is
// validated; only valid ones count as throughput. With -pid it reads the
// tracker's CPU time and resident set from /proc, giving CPU per response.
//
// Usage:
//
//	herald-bench udp  -target 127.0.0.1:6969 [-rate N] [-metrics URL] [flags]
//	herald-bench http -target 127.0.0.1:6969 [-keepalive] [flags]
//	herald-bench fill -target 127.0.0.1:6969 -peers 1000000 -torrents 100000 [-steady 60s] [flags]
//	herald-bench hashes -torrents N          (the info hashes, one hex line each)
//	herald-bench keys -keys N                (access keys, one a line: herald's access.keys)
//	herald-bench wait -target 127.0.0.1:6969 -torrents N  (until torrent N-1 is served)
//	herald-bench summarize [-vs A,B] [-floor F] results.jsonl  (medians and ratios of -json lines)
//
// See docs/benchmarks.md for the workload and the comparison with opentracker.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "herald-bench:", err)
		os.Exit(1)
	}
}

const usage = "usage: herald-bench udp|http|fill|hashes|keys|wait|summarize [flags]; herald-bench MODE -h for flags"

func run(args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	mode, args := args[0], args[1:]
	switch mode {
	case "udp", "http", "fill":
		return runLoad(mode, args, out)
	case "hashes", "keys":
		fs := flag.NewFlagSet(mode, flag.ContinueOnError)
		n := fs.Int("torrents", 10000, "hashes: number of info hashes")
		write := writeHashes
		if mode == "keys" {
			n = fs.Int("keys", 10000, "keys: number of access keys")
			write = writeKeys
		}
		seed := fs.Uint64("seed", 1, "workload seed")
		if err := fs.Parse(args); err != nil {
			return err
		}
		w := bufio.NewWriterSize(out, 1<<16)
		if err := write(w, *seed, *n); err != nil {
			return err
		}
		return w.Flush()
	case "summarize":
		return runSummarize(args, out)
	case "wait":
		return runWait(args, out)
	}
	return fmt.Errorf("unknown mode %q; %s", mode, usage)
}

// options are the flags of the load modes.
type options struct {
	target      string
	src         string
	duration    time.Duration
	report      time.Duration
	warmup      time.Duration
	timeout     time.Duration
	torrents    int
	peers       int
	seed        uint64
	mix         string
	events      string
	seeders     float64
	numWant     int
	maxScrape   int
	pid         int
	rate        float64
	jsonOut     bool
	sockets     int
	window      int
	concurrency int
	keepAlive   bool
	tls         bool
	tracker     string
	workload    string
	metricsURL  string
	histogram   string
	steady      time.Duration
	keys        int
}

func parseOptions(mode string, args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet(mode, flag.ContinueOnError)
	fs.StringVar(&o.target, "target", "127.0.0.1:6969", "tracker `host:port` (IPv4 or [IPv6])")
	fs.StringVar(&o.src, "src", "", "source addresses, comma-separated; `ADDR+N` is N consecutive addresses (default 127.0.0.1+16 for an IPv4 loopback target, ::1 for IPv6 loopback, else any)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measurement time")
	fs.DurationVar(&o.report, "report", 0, "udp, http: every this often, print a progress line of running totals (0: none)")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "load before measuring, not counted")
	fs.DurationVar(&o.timeout, "timeout", time.Second, "a request unanswered this long is an error")
	fs.IntVar(&o.torrents, "torrents", 0, "torrents (default 10000; fill: 100000)")
	fs.IntVar(&o.peers, "peers", 0, "peers (default 2 per torrent as aquatic 2024; fill: 1000000)")
	fs.Uint64Var(&o.seed, "seed", 1, "workload seed: the same seed gives the same info hashes and peers")
	fs.StringVar(&o.mix, "mix", "100:1", "announce:scrape weights")
	fs.StringVar(&o.events, "events", "5:90:3:2", "started:none:completed:stopped weights of announce events")
	fs.Float64Var(&o.seeders, "seeders", 0.75, "fraction of peers that are seeders")
	fs.IntVar(&o.numWant, "numwant", 30, "peers asked for per announce")
	fs.IntVar(&o.keys, "keys", 0, "peer i announces with access key i mod N of `N` (herald-bench keys -keys N prints them): /KEY/announce over HTTP, BEP 41 URL data over UDP (0: none)")
	fs.IntVar(&o.maxScrape, "scrape-max", 10, "a scrape asks for 1..N info hashes")
	fs.IntVar(&o.pid, "pid", 0, "tracker `PID`: report its CPU time and RSS from /proc")
	fs.Float64Var(&o.rate, "rate", 0, "open loop: total requests per second, Poisson arrivals as from many independent clients (0: closed loop, as fast as replies come)")
	fs.BoolVar(&o.jsonOut, "json", false, "also print one JSON line")
	fs.IntVar(&o.sockets, "sockets", 4, "udp: sockets, one sender and one receiver goroutine each")
	fs.IntVar(&o.window, "window", 0, "requests in flight per socket (default 32, fill 16; open loop 4096)")
	fs.IntVar(&o.concurrency, "concurrency", 32, "http: connections (one request in flight each)")
	fs.BoolVar(&o.keepAlive, "keepalive", false, "http: reuse connections")
	fs.BoolVar(&o.tls, "tls", false, "http: HTTPS (the tracker's certificate is not verified)")
	fs.StringVar(&o.tracker, "tracker", "", "label: tracker name, copied to the JSON line")
	fs.StringVar(&o.workload, "workload", "", "label: workload name, copied to the JSON line (default the mode)")
	fs.StringVar(&o.metricsURL, "metrics", "", "udp, http: the tracker's Prometheus `URL`; report its own response-time quantiles over the window")
	fs.StringVar(&o.histogram, "metrics-histogram", "", "with -metrics: the histogram `NAME` (in seconds; default: found by protocol label and name)")
	fs.DurationVar(&o.steady, "steady", 0, "fill: then re-announce every peer, pass after pass, for this long (at least one whole pass) and measure again: the steady state")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%s: unexpected argument %q", mode, fs.Arg(0))
	}
	if o.torrents == 0 {
		o.torrents = 10000
		if mode == "fill" {
			o.torrents = 100000
		}
	}
	if o.peers == 0 {
		o.peers = 2 * o.torrents
		if mode == "fill" {
			o.peers = 1000000
		}
	}
	if o.window == 0 {
		o.window = 32
		switch {
		case mode == "fill":
			o.window = 16
		case o.rate > 0:
			o.window = 4096
		}
	}
	if o.workload == "" {
		o.workload = mode
	}
	if o.histogram != "" && !strings.HasSuffix(o.histogram, "_seconds") {
		return nil, fmt.Errorf("%s: -metrics-histogram %q: want a histogram in seconds (name ending _seconds)", mode, o.histogram)
	}
	return o, nil
}

// parseSources parses -src: comma-separated addresses, each optionally
// followed by +N for N consecutive addresses.
func parseSources(s string, target netip.Addr) ([]netip.Addr, error) {
	if s == "" {
		switch {
		case target.Is4() && target.IsLoopback():
			s = "127.0.0.1+16"
		case target.IsLoopback():
			s = "::1"
		default:
			return nil, nil
		}
	}
	var out []netip.Addr
	for part := range strings.SplitSeq(s, ",") {
		base, count, hasCount := strings.Cut(part, "+")
		a, err := netip.ParseAddr(strings.TrimSpace(base))
		if err != nil {
			return nil, fmt.Errorf("-src %q: %w", part, err)
		}
		n := 1
		if hasCount {
			if n, err = strconv.Atoi(count); err != nil || n < 1 || n > 1<<16 {
				return nil, fmt.Errorf("-src %q: count %q: want 1..65536", part, count)
			}
		}
		for range n {
			if a.Is4() != target.Is4() {
				return nil, fmt.Errorf("-src %v: not the family of target %v", a, target)
			}
			out = append(out, a)
			a = a.Next()
		}
	}
	return out, nil
}

// runner is a load mode's engine.
type runner interface {
	start(ctx context.Context)
	stop() counters
	tally() tally // running totals, safe while the load runs
}

func runLoad(mode string, args []string, out io.Writer) error {
	o, err := parseOptions(mode, args)
	if err != nil {
		return err
	}
	target, err := netip.ParseAddrPort(o.target)
	if err != nil {
		return fmt.Errorf("-target %q: want host:port with a literal address: %w", o.target, err)
	}
	target = netip.AddrPortFrom(target.Addr().Unmap(), target.Port())
	sources, err := parseSources(o.src, target.Addr())
	if err != nil {
		return err
	}
	res := &result{
		Mode:     mode,
		Tracker:  o.tracker,
		Workload: o.workload,
		Target:   target.String(),
		Family:   4,
		Torrents: o.torrents,
		Peers:    o.peers,
		Rate:     o.rate,
		Date:     time.Now().UTC().Format(time.RFC3339),
	}
	if !target.Addr().Is4() {
		res.Family = 6
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	if mode == "fill" {
		return runFill(ctx, o, target, sources, res, out)
	}

	wl, err := newWorkload(workloadConfig{
		seed: o.seed, torrents: o.torrents, peers: o.peers, mix: o.mix, events: o.events,
		seeders: o.seeders, numWant: o.numWant, maxScrape: o.maxScrape, keys: o.keys,
	})
	if err != nil {
		return err
	}
	clk, win := newClock(), newWindow()
	var r runner
	switch mode {
	case "udp":
		res.Sockets, res.Window = o.sockets, o.window
		r, err = newUDPRunner(udpConfig{
			target: target, sources: sources, sockets: o.sockets, window: o.window,
			rate: o.rate, timeout: o.timeout, wl: wl,
		}, clk, win)
		if err != nil {
			return err
		}
	case "http":
		res.Concurrency, res.KeepAlive, res.TLS = o.concurrency, o.keepAlive, o.tls
		r = newHTTPRunner(httpConfig{
			target: target, sources: sources, concurrency: o.concurrency, keepAlive: o.keepAlive, tls: o.tls,
			rate: o.rate, timeout: o.timeout, wl: wl,
		}, clk, win)
	}
	loadCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.start(loadCtx)
	sleepCtx(ctx, o.warmup)
	var before, after procSample
	var metrics *metricsReader
	var histBefore, stBefore *promHistogram
	if o.metricsURL != "" {
		metrics = newMetricsReader(o.metricsURL, mode, o.histogram)
		histBefore, stBefore, err = metrics.read(ctx)
	}
	if err == nil && o.pid > 0 {
		before, err = sampleProc(o.pid)
	}
	if err != nil {
		cancel()
		r.stop()
		return err
	}
	t0 := clk.now()
	win.start.Store(t0)
	if o.report > 0 {
		reportUntil(ctx, r, o.duration, o.report, out)
	} else {
		sleepCtx(ctx, o.duration)
	}
	t1 := clk.now()
	win.end.Store(t1)
	if o.pid > 0 {
		after, err = sampleProc(o.pid)
	}
	if err == nil && metrics != nil {
		var histAfter, stAfter *promHistogram
		if histAfter, stAfter, err = metrics.read(ctx); err == nil {
			res.ServiceUS, err = service(histBefore, histAfter)
		}
		if err == nil && stBefore != nil && stAfter != nil {
			res.ServiceTimeUS, err = service(stBefore, stAfter)
		}
	}
	cancel()
	c := r.stop()
	if err != nil {
		return err
	}
	res.fromCounters(&c, time.Duration(t1-t0))
	if o.pid > 0 {
		res.setProc(before, after, clockTicks())
	}
	return res.write(out, o.jsonOut)
}

func runFill(ctx context.Context, o *options, target netip.AddrPort, sources []netip.Addr, res *result, out io.Writer) error {
	cfg := fillConfig{
		target: target, sources: sources, peers: o.peers, torrents: o.torrents,
		window: o.window, timeout: o.timeout, seed: o.seed,
	}
	var before procSample
	var err error
	if o.pid > 0 {
		if before, err = sampleProc(o.pid); err != nil {
			return err
		}
	}
	fr, c, err := fill(ctx, cfg)
	if err != nil {
		return err
	}
	// settle gives a tracker that batches work (or a Go GC cycle) a moment,
	// so the resident set reflects the stored peers, then reads it.
	settle := func() (procSample, error) {
		sleepCtx(ctx, time.Second)
		after, err := sampleProc(o.pid)
		if err == nil {
			res.setProc(before, after, clockTicks())
		}
		return after, err
	}
	perPeer := func(after procSample) float64 { return float64(after.rssBytes-before.rssBytes) / float64(fr.Peers) }
	res.fromCounters(&c, time.Duration(fr.Seconds*float64(time.Second)))
	if o.pid > 0 {
		after, err := settle()
		if err != nil {
			return err
		}
		fr.RSSBefore, fr.RSSAfter, fr.RSSPerPeer = before.rssBytes, after.rssBytes, perPeer(after)
	}
	res.Fill = &fr
	if o.steady > 0 {
		st, sc, err := reannounce(ctx, cfg, o.steady)
		c.merge(&sc)
		res.fromCounters(&c, time.Duration((fr.Seconds+st.Seconds)*float64(time.Second)))
		if err != nil {
			return err
		}
		if o.pid > 0 {
			after, err := settle()
			if err != nil {
				return err
			}
			st.RSSAfter, st.RSSPerPeer = after.rssBytes, perPeer(after)
		}
		fr.Steady = &st
	}
	return res.write(out, o.jsonOut)
}

// reportUntil waits for d, writing r's running totals every interval in
// one line: "progress t=30s valid=N errors=M", then each error kind that
// occurred as kind=count. A soak test reads them while the load runs.
func reportUntil(ctx context.Context, r runner, d, every time.Duration, out io.Writer) {
	start := time.Now()
	for k := time.Duration(1); ; k++ {
		if k*every >= d {
			sleepCtx(ctx, d-time.Since(start))
			return
		}
		sleepCtx(ctx, k*every-time.Since(start))
		if ctx.Err() != nil {
			return
		}
		t := r.tally()
		var b strings.Builder
		var errs uint64
		for k, n := range t.errors {
			if n > 0 {
				errs += n
				fmt.Fprintf(&b, " %v=%d", errKind(k), n)
			}
		}
		fmt.Fprintf(out, "progress t=%.0fs valid=%d errors=%d%s\n", time.Since(start).Seconds(), t.valid, errs, b.String())
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// result is one run's report; its JSON form is the machine-readable line.
type result struct {
	Mode        string            `json:"mode"`
	Tracker     string            `json:"tracker,omitempty"`
	Workload    string            `json:"workload"`
	Date        string            `json:"date"`
	Target      string            `json:"target"`
	Family      int               `json:"family"`
	Torrents    int               `json:"torrents"`
	Peers       int               `json:"peers"`
	Sockets     int               `json:"sockets,omitempty"`
	Window      int               `json:"window,omitempty"`
	Concurrency int               `json:"concurrency,omitempty"`
	KeepAlive   bool              `json:"keepalive,omitempty"`
	TLS         bool              `json:"tls,omitempty"`
	Rate        float64           `json:"rate,omitempty"`
	Seconds     float64           `json:"seconds"`
	Valid       uint64            `json:"valid"`
	ValidPerSec float64           `json:"valid_per_s"`
	ValidByKind map[string]uint64 `json:"valid_by_kind"`
	Errors      map[string]uint64 `json:"errors"`
	LatencyUS   latencyUS         `json:"latency_us"`
	ServiceUS   *serviceUS        `json:"service_us,omitempty"` // the tracker's own response time (-metrics)
	// ServiceTimeUS is herald's own service time (serviceTimeMetric), the
	// wait in the socket left out; absent for other trackers.
	ServiceTimeUS *serviceUS `json:"service_time_us,omitempty"`
	CPUSeconds    *float64   `json:"cpu_s,omitempty"`
	CPUPerValid   *float64   `json:"cpu_us_per_valid,omitempty"`
	// CPUSysPerValid is the kernel's part of CPUPerValid (stime): system
	// calls, the network stack, wake-ups.
	CPUSysPerValid *float64 `json:"cpu_sys_us_per_valid,omitempty"`
	// RunsPerValid is how many times the tracker's threads were put on a
	// CPU per valid response (see procSample.runs).
	RunsPerValid *float64    `json:"runs_per_valid,omitempty"`
	RSSBefore    int64       `json:"rss_before_bytes,omitempty"`
	RSSAfter     int64       `json:"rss_after_bytes,omitempty"`
	Fill         *fillResult `json:"fill,omitempty"`
}

type latencyUS struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
}

func (r *result) fromCounters(c *counters, elapsed time.Duration) {
	r.Seconds = elapsed.Seconds()
	r.Valid = c.totalValid()
	if r.Seconds > 0 {
		r.ValidPerSec = float64(r.Valid) / r.Seconds
	}
	r.ValidByKind = map[string]uint64{}
	for i, v := range c.valid {
		if v > 0 {
			r.ValidByKind[kindNames[i]] = v
		}
	}
	r.Errors = map[string]uint64{}
	for i, v := range c.errors {
		if v > 0 {
			r.Errors[errKind(i).String()] = v
		}
	}
	us := func(q float64) float64 { return float64(c.latency.quantile(q)) / 1e3 }
	r.LatencyUS = latencyUS{P50: us(0.5), P90: us(0.9), P99: us(0.99), P999: us(0.999)}
}

// setProc sets the tracker's CPU over the window: its threads' run time
// where both samples have it, else its ticks. The kernel's part is the
// stime share of the ticks (as the kernel itself splits run time between
// utime and stime), applied to that total.
func (r *result) setProc(before, after procSample, ticksPerSec float64) {
	ticks := after.cpuTicks - before.cpuTicks
	cpu := float64(ticks) / ticksPerSec
	if before.cpuNanos > 0 && after.cpuNanos >= before.cpuNanos {
		cpu = float64(after.cpuNanos-before.cpuNanos) / 1e9
	}
	r.CPUSeconds = &cpu
	if r.Valid > 0 {
		per := cpu * 1e6 / float64(r.Valid)
		r.CPUPerValid = &per
		sys := 0.0
		if ticks > 0 {
			sys = per * float64(after.sysTicks-before.sysTicks) / float64(ticks)
		}
		r.CPUSysPerValid = &sys
		if before.runs > 0 && after.runs >= before.runs {
			runs := float64(after.runs-before.runs) / float64(r.Valid)
			r.RunsPerValid = &runs
		}
	}
	r.RSSBefore, r.RSSAfter = before.rssBytes, after.rssBytes
}

func (r *result) write(out io.Writer, jsonLine bool) error {
	w := bufio.NewWriter(out)
	label := r.Workload
	if r.Tracker != "" {
		label = r.Tracker + " " + label
	}
	fmt.Fprintf(w, "%s: %s IPv%d, %d torrents, %d peers", label, r.Target, r.Family, r.Torrents, r.Peers)
	switch {
	case r.Sockets > 0:
		fmt.Fprintf(w, ", %d sockets x %d window", r.Sockets, r.Window)
	case r.Concurrency > 0:
		fmt.Fprintf(w, ", %d connections, keep-alive %v", r.Concurrency, r.KeepAlive)
	}
	if r.Rate > 0 {
		fmt.Fprintf(w, ", open loop at %.0f/s", r.Rate)
	}
	fmt.Fprintf(w, "\n  valid responses: %d in %.2fs = %.0f/s %v\n", r.Valid, r.Seconds, r.ValidPerSec, r.ValidByKind)
	fmt.Fprintf(w, "  errors: %v\n", r.Errors)
	fmt.Fprintf(w, "  latency µs: p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f\n", r.LatencyUS.P50, r.LatencyUS.P90, r.LatencyUS.P99, r.LatencyUS.P999)
	if s := r.ServiceUS; s != nil {
		fmt.Fprintf(w, "  tracker's own response time µs (%s, %.0f requests): p50 %.1f  p99 %.1f\n", s.Metric, s.Count, s.P50, s.P99)
	}
	if s := r.ServiceTimeUS; s != nil {
		fmt.Fprintf(w, "  tracker's own service time µs (%s, %.0f requests): p50 %.1f  p99 %.1f\n", s.Metric, s.Count, s.P50, s.P99)
	}
	if r.CPUSeconds != nil {
		fmt.Fprintf(w, "  tracker CPU: %.2fs", *r.CPUSeconds)
		if r.CPUPerValid != nil {
			fmt.Fprintf(w, " = %.2f µs per valid response (%.2f in the kernel)", *r.CPUPerValid, *r.CPUSysPerValid)
		}
		if r.RunsPerValid != nil {
			fmt.Fprintf(w, ", on a CPU %.3f times per valid response", *r.RunsPerValid)
		}
		fmt.Fprintf(w, "; RSS %.1f MiB -> %.1f MiB\n", float64(r.RSSBefore)/(1<<20), float64(r.RSSAfter)/(1<<20))
	}
	if f := r.Fill; f != nil {
		fmt.Fprintf(w, "  fill: %d peers over %d torrents in %.1fs (%d re-sent); tracker holds %d", f.Peers, f.Torrents, f.Seconds, f.Retries, f.Held)
		if f.RSSAfter > 0 {
			fmt.Fprintf(w, "; RSS +%.1f MiB = %.1f bytes/peer", float64(f.RSSAfter-f.RSSBefore)/(1<<20), f.RSSPerPeer)
		}
		fmt.Fprintln(w)
		if s := f.Steady; s != nil {
			fmt.Fprintf(w, "  steady: re-announced for %.1fs, %d whole passes (the first %.1fs), %d re-sent; tracker holds %d", s.Seconds, s.Passes, s.PassSeconds, s.Retries, s.Held)
			if s.RSSAfter > 0 {
				fmt.Fprintf(w, "; RSS +%.1f MiB = %.1f bytes/peer", float64(s.RSSAfter-f.RSSBefore)/(1<<20), s.RSSPerPeer)
			}
			fmt.Fprintln(w)
		}
	}
	if jsonLine {
		b, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encode result: %w", err)
		}
		w.Write(b)
		w.WriteByte('\n')
	}
	return w.Flush()
}
