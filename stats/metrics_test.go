package stats

import (
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"herald/counters"
	"herald/httptracker"
	"herald/internal/servetest"
	"herald/ratelimit"
	"herald/swarm"
	"herald/tracker"
)

// TestMetricsParseAndLint scrapes /metrics as Prometheus would, parses it
// with Prometheus' text parser, lints every family with promlint and
// checks the values against the fixture.
func TestMetricsParseAndLint(t *testing.T) {
	set := fixtureCounters()
	for _, d := range []time.Duration{20 * time.Microsecond, 30 * time.Microsecond, 3 * time.Millisecond} {
		observe(set, counters.HTTP, d, 1)
	}
	observe(set, counters.UDP, 10*time.Second, 1)
	observeService(set, counters.UDP, 60*time.Microsecond, 4)
	set.ObserveRequest(counters.WS, 2*time.Millisecond, 2*time.Millisecond)
	refuse(set, counters.HTTP, counters.Announce, tracker.RateLimited, 7)
	refuse(set, counters.UDP, counters.Connect, tracker.RateLimited, 9)
	// Connection counts of a second HTTP listener, summed with the real
	// server's below.
	set.Watch(counters.HTTP, counters.Connections, func() int64 { return 5 })
	set.Watch(counters.HTTP, counters.ConnectionLimit, func() int64 { return 2 })
	for range 3 {
		set.Event(counters.HTTP, counters.Turned)
	}
	// The fixture fills the store to its bounds; two new torrents and one
	// new peer are then refused.
	store := fixtureStoreWith(t, swarm.Config{MaxTorrents: 3, MaxPeers: 10})
	for _, a := range []swarm.Announce{
		{InfoHash: hashOf(0x33), Addr: v4(7)},
		{InfoHash: hashOf(0x44), Addr: v4(7)},
		{InfoHash: hashA, Addr: v4(8)},
	} {
		if _, _, err := store.Announce(&a, swarm.FamilyBoth, swarm.Peers{}); err == nil {
			t.Fatalf("announce %v to %x accepted past the store's bounds", a.Addr, a.InfoHash)
		}
	}
	fullHTTPServer(t, store, set)
	reg := prometheus.NewPedanticRegistry() // also checks Collect against Describe
	m, err := New(Config{
		Sources:   Sources{Store: store, Counters: set},
		Nets:      testNets,
		RateLimit: ratelimit.Config{Rate: 2.5, Burst: 40},
		Registry:  reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	get(t, m, "192.0.2.1:1", "/stats") // one denied request

	req, _ := http.NewRequest(http.MethodGet, "/metrics", nil)
	req.RemoteAddr = "127.0.0.1:9"
	req.Header.Set("Accept", "text/plain")
	rec := httptest.NewRecorder()
	m.Handler(remoteAddr).ServeHTTP(rec, req)
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(rec.Body.String()))
	if err != nil {
		t.Fatalf("Prometheus text parser: %v\n%s", err, rec.Body)
	}

	var list []*dto.MetricFamily
	for _, mf := range families {
		list = append(list, mf)
	}
	problems, err := promlint.NewWithMetricFamilies(list).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}

	value := func(name string, labels map[string]string) float64 {
		t.Helper()
		mf := families[name]
		if mf == nil {
			t.Fatalf("no family %s", name)
		}
	metrics:
		for _, m := range mf.Metric {
			for _, lp := range m.Label {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
		t.Fatalf("no %s%v", name, labels)
		return 0
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"herald_requests_total", map[string]string{"protocol": "http", "action": "announce", "outcome": "ok"}, 41000},
		{"herald_requests_total", map[string]string{"protocol": "http", "action": "invalid", "outcome": "failure"}, 70},
		{"herald_requests_total", map[string]string{"protocol": "http", "action": "announce", "outcome": "rate_limited"}, 7},
		{"herald_requests_total", map[string]string{"protocol": "udp", "action": "connect", "outcome": "rate_limited"}, 9},
		{"herald_requests_total", map[string]string{"protocol": "ws", "action": "announce", "outcome": "ok"}, 1000},
		{"herald_requests_total", map[string]string{"protocol": "ws", "action": "answer", "outcome": "ok"}, 0},
		{"herald_errors_total", map[string]string{"protocol": "ws", "reason": "not_allowed"}, 3},
		{"herald_requests_total", map[string]string{"protocol": "udp", "action": "connect", "outcome": "ok"}, 30000},
		{"herald_requests_total", map[string]string{"protocol": "udp", "action": "invalid", "outcome": "dropped"}, 100},
		{"herald_errors_total", map[string]string{"protocol": "udp", "reason": "bad_connection_id"}, 30},
		{"herald_errors_total", map[string]string{"protocol": "http", "reason": "internal"}, 2},
		{"herald_errors_total", map[string]string{"protocol": "http", "reason": "rate_limited"}, 7},
		{"herald_errors_total", map[string]string{"protocol": "udp", "reason": "rate_limited"}, 9},
		{"herald_store_refusals_total", map[string]string{"reason": "torrent_limit"}, 2},
		{"herald_store_refusals_total", map[string]string{"reason": "peer_limit"}, 1},
		{"herald_torrents_limit", nil, 3},
		{"herald_peers_limit", nil, 10},
		{"herald_client_rate_limit_per_second", nil, 2.5},
		{"herald_client_rate_limit_burst", nil, 40},
		{"herald_http_connections", nil, 5 + 1},
		{"herald_http_connections_refused_total", nil, 3 + 1},
		{"herald_http_connections_limit", nil, 3}, // the real server's 1 and the other's 2, summed
		{"herald_http_connections_accepted_total", nil, 1},
		{"herald_ws_connections", nil, 38},
		{"herald_ws_connections_limit", nil, 1000},
		{"herald_ws_connections_accepted_total", nil, 40},
		{"herald_ws_offers_relayed_total", nil, 0},
		{"herald_torrents", nil, 3},
		{"herald_peers", map[string]string{"family": "ipv4", "role": "seeder"}, 2},
		{"herald_peers", map[string]string{"family": "ipv4", "role": "leecher"}, 4},
		{"herald_peers", map[string]string{"family": "ipv6", "role": "seeder"}, 2},
		{"herald_peers", map[string]string{"family": "ipv6", "role": "leecher"}, 2},
		{"herald_torrent_downloads", nil, 2},
		{"herald_stats_requests_total", map[string]string{"outcome": "denied"}, 1},
		{"herald_stats_requests_total", map[string]string{"outcome": "ok"}, 1},
		{"herald_request_duration_seconds", map[string]string{"protocol": "http"}, 3},
		{"herald_request_duration_seconds", map[string]string{"protocol": "udp"}, 1},
		{"herald_request_duration_seconds", map[string]string{"protocol": "ws"}, 1},
		{"herald_request_service_seconds", map[string]string{"protocol": "http"}, 0},
		{"herald_request_service_seconds", map[string]string{"protocol": "udp"}, 4},
		{"herald_request_service_seconds", map[string]string{"protocol": "ws"}, 1},
	} {
		if got := value(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}

	// The histogram's buckets are cumulative and in seconds.
	checkHistogram(t, families, "herald_request_duration_seconds", "http", 0.00305,
		map[float64]uint64{25e-6: 1, 50e-6: 2, 0.0025: 2, 0.005: 3, 5: 3})
	// The service-time histogram: its own family, its own HELP.
	if f := families["herald_request_service_seconds"]; f == nil || !strings.HasPrefix(f.GetHelp(), "Service time of a request") ||
		!strings.Contains(f.GetHelp(), "the end of the recvmmsg") {
		t.Errorf("herald_request_service_seconds: %v", f)
	}
	checkHistogram(t, families, "herald_request_service_seconds", "udp", 0.00024, map[float64]uint64{50e-6: 0, 75e-6: 4})
	for _, name := range []string{"go_goroutines", "process_start_time_seconds"} {
		if families[name] == nil {
			t.Errorf("%s missing: the Go runtime and process collectors are not registered", name)
		}
	}
}

// checkHistogram checks one protocol's series of a histogram family: its
// sum in seconds (to 1%) and the cumulative counts of the buckets in want,
// by upper bound.
func checkHistogram(t *testing.T, families map[string]*dto.MetricFamily, family, protocol string, sum float64, want map[float64]uint64) {
	t.Helper()
	f := families[family]
	if f == nil {
		t.Fatalf("%s missing", family)
	}
	for _, m := range f.Metric {
		if m.Label[0].GetValue() != protocol {
			continue
		}
		h := m.Histogram
		if got := h.GetSampleSum(); got < sum*0.99 || got > sum*1.01 {
			t.Errorf("%s{protocol=%q} sum %v s, want %v", family, protocol, got, sum)
		}
		for _, b := range h.Bucket {
			if w, ok := want[b.GetUpperBound()]; ok && b.GetCumulativeCount() != w {
				t.Errorf("%s{protocol=%q} bucket le=%v: %d, want %d", family, protocol, b.GetUpperBound(), b.GetCumulativeCount(), w)
			}
		}
		return
	}
	t.Errorf("%s has no series for protocol %q", family, protocol)
}

// fullHTTPServer serves a real HTTP tracker with room for one connection
// and dials it twice: one connection stays open (it sends nothing, and its
// header timeout is an hour), the other is closed on arrival.
func fullHTTPServer(t *testing.T, store *swarm.Store, set *counters.Set) {
	t.Helper()
	before := set.Read()
	core, err := tracker.New(tracker.Config{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := httptracker.Listen("127.0.0.1:0", httptracker.Config{Tracker: core, MaxConnections: 1, Counters: set,
		ReadHeaderTimeout: time.Hour, ReadTimeout: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	servetest.Serve(t, srv.Serve, 10*time.Second)
	for range 2 {
		c, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	// The server accepts on its own loops: wait until it has seen both.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		c := set.Read()
		open := c.Gauges[counters.HTTP][counters.Connections] - before.Gauges[counters.HTTP][counters.Connections]
		refused := c.Events[counters.HTTP][counters.Turned] - before.Events[counters.HTTP][counters.Turned]
		if open == 1 && refused == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30s: %d connections open, %d refused; want 1 and 1", open, refused)
		}
	}
}

// TestNoGlobalRegistration: metrics go only to the registry passed in.
func TestNoGlobalRegistration(t *testing.T) {
	newFixtureMonitor(t, fixtureStore(t))
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "herald_") {
			t.Errorf("%s registered globally", mf.GetName())
		}
	}
}

// TestLimitsAbsentWhenOff: an unbounded store and a rate limit that is off
// (cmd/herald passes the default burst even then) export no limit series,
// so a ratio against a limit is absent rather than +Inf; the refusal
// counters are there from the start, at 0.
func TestLimitsAbsentWhenOff(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := New(Config{Sources: Sources{Store: fixtureStore(t)}, RateLimit: ratelimit.Config{Burst: 500}, Registry: reg}); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	refusals := 0
	for _, mf := range mfs {
		switch name := mf.GetName(); {
		case strings.HasSuffix(name, "_limit") || strings.HasPrefix(name, "herald_client_rate_limit"):
			t.Errorf("%s exported with no such limit configured", name)
		case name == "herald_store_refusals_total":
			for _, m := range mf.Metric {
				refusals++
				if v := m.Counter.GetValue(); v != 0 {
					t.Errorf("%s%v = %v with no bound", name, m.Label, v)
				}
			}
		}
	}
	if refusals != 3 {
		t.Errorf("%d herald_store_refusals_total series, want torrent_limit, peer_limit and invalid_address", refusals)
	}
}

// TestErrorReasonsDistinct: herald_errors_total's reason label holds the
// tracker's refusal reasons and the frontends' faults side by side, so no
// label may be both (it would make two series with one label set).
func TestErrorReasonsDistinct(t *testing.T) {
	reasons := map[string]bool{}
	for r := range tracker.NumReasons {
		reasons[tracker.Reason(r).Label()] = true
	}
	for f := range counters.NumFaults {
		if reasons[f.Label()] {
			t.Errorf("fault %q is also a tracker reason", f.Label())
		}
	}
}
