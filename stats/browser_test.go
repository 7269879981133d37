package stats

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"herald/counters"
	"herald/swarm"
	"herald/tracker"
)

// Debian's chromium, driven by playwright-core from testdata/browser (see
// the Makefile); the test never downloads a browser.
const chromiumPath = "/usr/bin/chromium"

// browserResult is what testdata/browser/dashboard.mjs prints.
type browserResult struct {
	Charts map[string]struct {
		Points int       `json:"points"`
		Series []string  `json:"series"`
		Max    []float64 `json:"max"`
		Canvas []int     `json:"canvas"`
	} `json:"charts"`
	TopRows      int      `json:"topRows"`
	FirstTopHash string   `json:"firstTopHash"`
	Status       string   `json:"status"`
	Errors       []string `json:"errors"`
}

// TestDashboardInBrowser serves the dashboard from a real HTTP server on
// 127.0.0.1 while synthetic load announces into a store and bumps frontend
// counters, opens it in headless chromium and checks that every chart drew
// samples with the load's values and the busiest torrent is listed. The
// screenshot stays in a temp dir whose path is logged.
func TestDashboardInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no browser")
	}
	var missing []string
	if _, err := os.Stat(chromiumPath); err != nil {
		missing = append(missing, "chromium ("+chromiumPath+", apt-get install chromium)")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing = append(missing, "node (apt-get install nodejs npm)")
	}
	if _, err := os.Stat("testdata/browser/node_modules/playwright-core/package.json"); err != nil {
		missing = append(missing, "playwright-core (cd stats/testdata/browser && npm ci --ignore-scripts)")
	}
	if len(missing) > 0 {
		msg := "dashboard browser test needs " + strings.Join(missing, ", ")
		if os.Getenv("STATS_REQUIRE_BROWSER") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}

	store, err := swarm.New(swarm.Config{MaxTorrents: 40, MaxPeers: 1000})
	if err != nil {
		t.Fatal(err)
	}
	set := counters.New()
	var wsConns atomic.Int64
	set.Watch(counters.WS, counters.Connections, wsConns.Load)
	set.Watch(counters.WS, counters.ConnectionLimit, func() int64 { return 50 })
	// A snapshot "saved" every second.
	start := time.Now()
	lastSave := func() time.Time { return start.Add(time.Since(start).Truncate(time.Second)) }
	m, err := New(Config{
		Sources:     Sources{Store: store, Counters: set, LastSave: lastSave},
		Nets:        testNets,
		Version:     "herald browser-test",
		SampleEvery: 200 * time.Millisecond,
		SlowEvery:   200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: m.Handler(remoteAddr), ReadHeaderTimeout: 5 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	served, sampled, loaded := make(chan error, 1), make(chan struct{}), make(chan struct{})
	go func() { served <- srv.Serve(ln) }()
	go func() { m.Run(ctx); close(sampled) }()
	go func() { syntheticLoad(ctx, store, set, &wsConns); close(loaded) }()
	defer func() {
		cancel()
		srv.Close()
		<-sampled
		<-loaded
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	}()

	dir, err := os.MkdirTemp("", "herald-dashboard-")
	if err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "dashboard.png")
	runCtx, stop := context.WithTimeout(ctx, 90*time.Second)
	defer stop()
	const minPoints = 8
	cmd := exec.CommandContext(runCtx, node, "testdata/browser/dashboard.mjs",
		"http://"+ln.Addr().String()+DashboardPath, shot, "8")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node dashboard.mjs: %v\n%s", err, stderr.String())
	}
	t.Logf("dashboard screenshot: %s", shot)
	var res browserResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("browser output %q: %v", out, err)
	}
	for _, e := range res.Errors {
		t.Errorf("page: %s", e)
	}
	for _, name := range []string{"requests", "errors", "latency", "service", "reasons", "connections", "limits", "peers", "torrents", "memory", "cpu", "snapshot"} {
		c, ok := res.Charts[name]
		switch {
		case !ok:
			t.Errorf("chart %s missing", name)
		case c.Points < minPoints:
			t.Errorf("chart %s drew %d points, want at least %d", name, c.Points, minPoints)
		case len(c.Canvas) != 2 || c.Canvas[0] == 0 || c.Canvas[1] == 0:
			t.Errorf("chart %s canvas %v", name, c.Canvas)
		}
		t.Logf("chart %s: %d points, series %v, max %v", name, c.Points, c.Series, c.Max)
	}
	// The load runs at roughly 500 HTTP, 1000 UDP and 200 WebSocket
	// requests a second, with errors, into 20 torrents, the first the
	// busiest, over 1 WebSocket connection growing to 20.
	req, errs := res.Charts["requests"].Max, res.Charts["errors"].Max
	if len(req) != 3 || req[0] < 100 || req[1] < 200 || req[2] < 40 || len(errs) != 3 || errs[0] <= 0 || errs[1] <= 0 || errs[2] <= 0 {
		t.Errorf("rates: requests max %v, errors max %v (http, udp, ws)", req, errs)
	}
	if c := res.Charts["connections"].Max; len(c) != 2 || c[1] < 10 {
		t.Errorf("connections max %v (http, ws), want ws at 10 or more", c)
	}
	if p := res.Charts["peers"].Max; len(p) != 3 || p[0] < 20 || p[1] <= 0 || p[2] <= 0 {
		t.Errorf("peers max %v", p)
	}
	if tr := res.Charts["torrents"].Max; len(tr) != 1 || tr[0] != 20 {
		t.Errorf("torrents max %v, want 20", tr)
	}
	// Response times: UDP 30 µs, HTTP 300 µs, WebSocket 3 ms (p50, p99).
	if l := res.Charts["latency"].Max; len(l) != 6 || l[0] < 0.25 || l[0] > 0.5 || l[2] < 0.025 || l[2] > 0.05 || l[4] < 2.5 || l[4] > 5 {
		t.Errorf("latency max %v (ms: http, udp, ws; p50 then p99 each)", l)
	}
	// Service times p99: HTTP 100 µs, UDP 20 µs, WebSocket 3 ms.
	if s := res.Charts["service"].Max; len(s) != 3 || s[0] < 0.075 || s[0] > 0.1 || s[1] < 0.01 || s[1] > 0.025 || s[2] < 2.5 || s[2] > 5 {
		t.Errorf("service max %v (ms: http, udp, ws)", s)
	}
	// Errors by reason: the three the load counts, sorted.
	if r := res.Charts["reasons"]; strings.Join(r.Series, " ") != "dropped not_allowed not_found" || min(r.Max[0], r.Max[1], r.Max[2]) <= 0 {
		t.Errorf("errors by reason: series %v max %v", r.Series, r.Max)
	}
	// Limits: 20 of 40 torrents, at most 210 of 1000 peers, 20 of 50
	// WebSocket connections.
	if l := res.Charts["limits"]; strings.Join(l.Series, ", ") != "peers of 1k, torrents of 40, ws connections of 50" || l.Max[1] != 50 || l.Max[2] != 40 {
		t.Errorf("limits: series %v max %v", l.Series, l.Max)
	}
	if mem := res.Charts["memory"].Max; len(mem) != 3 || mem[0] <= 1 || mem[1] <= 0 {
		t.Errorf("memory max %v MiB (rss, go heap, outside go)", mem)
	}
	if cpu := res.Charts["cpu"].Max; len(cpu) != 1 || cpu[0] <= 0 {
		t.Errorf("cpu max %v", cpu)
	}
	if age := res.Charts["snapshot"].Max; len(age) != 1 || age[0] <= 0 || age[0] > 1.5 {
		t.Errorf("snapshot age max %v, want under the second between saves", age)
	}
	if want := loadHash(0); res.TopRows < 10 || res.FirstTopHash != hexLower(want[:]) {
		t.Errorf("top table: %d rows, first %q, want %x", res.TopRows, res.FirstTopHash, want)
	}
}

// syntheticLoad announces peers into 20 torrents (torrent k gets peers in
// proportion to 20-k, so torrent 0 is the busiest) and counts frontend
// requests and WebSocket connections, until ctx ends or a minute passes.
func syntheticLoad(ctx context.Context, store *swarm.Store, set *counters.Set, wsConns *atomic.Int64) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	end := time.After(time.Minute)
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-end:
			return
		case <-tick.C:
		}
		add(set, counters.HTTP, counters.Announce, counters.OK, noFault, 5)
		add(set, counters.UDP, counters.Announce, counters.OK, noFault, 10)
		add(set, counters.WS, counters.Announce, counters.OK, noFault, 2)
		observe(set, counters.HTTP, 300*time.Microsecond, 5)
		observe(set, counters.UDP, 30*time.Microsecond, 10)
		observe(set, counters.WS, 3*time.Millisecond, 2)
		observeService(set, counters.HTTP, 100*time.Microsecond, 5)
		observeService(set, counters.UDP, 20*time.Microsecond, 10)
		observeService(set, counters.WS, 3*time.Millisecond, 2)
		if n%3 == 0 {
			add(set, counters.HTTP, counters.Invalid, counters.Failure, counters.NotFound, 1)
			add(set, counters.UDP, counters.Invalid, counters.Dropped, counters.Runt, 2)
			refuse(set, counters.WS, counters.Announce, tracker.NotAllowed, 1)
		}
		k := n % 20
		// Connections climb to 20 and stay: a count that cycled with the
		// 200 ms announce pattern was sampled at one phase only, and the
		// chart's maximum then depended on that phase.
		wsConns.Store(int64(min(20, 1+n/10)))
		for p := 0; p < 20-k; p++ {
			addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(k), byte(p), 1}), 6881)
			if p%4 == 0 {
				addr = netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(k), 15: byte(p)}), 6881)
			}
			ann := &swarm.Announce{InfoHash: loadHash(k), Addr: addr, Left: uint64(p % 3), NumWant: 5}
			store.Announce(ann, swarm.FamilyBoth, swarm.Peers{})
		}
	}
}

func loadHash(k int) swarm.InfoHash {
	var ih swarm.InfoHash
	binary.BigEndian.PutUint32(ih[:], uint32(k)+1)
	return ih
}

func hexLower(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}
