package stats

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"herald/counters"
	"herald/swarm"
	"herald/tracker"
)

func TestDashboardDataRatesAndBoundedHistory(t *testing.T) {
	store := fixtureStoreWith(t, swarm.Config{MaxTorrents: 400, MaxPeers: 5000})
	m, err := New(Config{Sources: Sources{Store: store, LastSave: func() time.Time { return time.Time{} }},
		Nets: testNets, History: 5, Version: "v-test"})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	saved := t0.Add(3 * time.Second)
	// Eight samples a second apart: 10 HTTP, 20 UDP and 3 WebSocket
	// requests a second, 1 HTTP and 2 WebSocket errors a second (the
	// WebSocket ones refused as not_allowed); every UDP request takes
	// 30-40 µs, every HTTP one 1-2 ms; a CPU second every two; a snapshot
	// saved at the fourth second. Only the last five are kept.
	set := counters.New()
	for i := range 8 {
		s := Snapshot{
			Time:     t0.Add(time.Duration(i) * time.Second),
			Torrents: 100 + i,
			Peers:    1000 + i,
			Totals:   swarm.Totals{Seeders4: 10 * i, Leechers6: i},
		}
		if i > 0 {
			observe(set, counters.UDP, 35*time.Microsecond, 20)
			observe(set, counters.HTTP, 1500*time.Microsecond, 10)
			observeService(set, counters.UDP, 60*time.Microsecond, 20)
		}
		s.Counters = set.Read()
		c := &s.Counters
		c.Requests[counters.HTTP][counters.Announce][counters.OK] = uint64(9 * i)
		c.Requests[counters.HTTP][counters.Invalid][counters.Failure] = uint64(i)
		c.Requests[counters.UDP][counters.Announce][counters.OK] = uint64(20 * i)
		c.Requests[counters.WS][counters.Announce][counters.OK] = uint64(i)
		c.Requests[counters.WS][counters.Announce][counters.Failure] = uint64(2 * i)
		c.Refusals[counters.WS][tracker.NotAllowed] = uint64(2 * i)
		c.Gauges[counters.WS][counters.Connections] = int64(i)
		c.Gauges[counters.WS][counters.ConnectionLimit] = 100
		c.Gauges[counters.HTTP][counters.Connections] = 50
		use := usage{cpu: time.Duration(i) * time.Second / 2, rss: 64 << 20, goHeap: 8 << 20, goResident: 24 << 20}
		var last time.Time
		if !s.Time.Before(saved) {
			last = saved
		}
		m.history.add(s, use, last)
	}
	rec := get(t, m, "127.0.0.1:1", "/dashboard/data")
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("%d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	var d struct {
		dashboardData
		// Columns that may hold null, read back as pointers.
		LatencyP50  map[string][]*float64 `json:"latency_p50_ms"`
		LatencyP99  map[string][]*float64 `json:"latency_p99_ms"`
		ServiceP99  map[string][]*float64 `json:"service_p99_ms"`
		SnapshotAge []*float64            `json:"snapshot_age_seconds"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Time) != 4 || len(d.RequestRate["http"]) != 4 || len(d.Peers) != 4 {
		t.Fatalf("%d samples, want 4 (five kept, rates need two): %s", len(d.Time), rec.Body)
	}
	if d.Time[0] != float64(t0.Unix()+4) || d.Time[3] != float64(t0.Unix()+7) {
		t.Errorf("times %v", d.Time)
	}
	req, errs, conns := d.RequestRate, d.ErrorRate, d.Connections
	for i := range d.Time {
		if req["http"][i] != 10 || req["udp"][i] != 20 || req["ws"][i] != 3 || errs["http"][i] != 1 || errs["udp"][i] != 0 || errs["ws"][i] != 2 {
			t.Errorf("sample %d: requests http %v udp %v ws %v, errors %v/%v/%v",
				i, req["http"][i], req["udp"][i], req["ws"][i], errs["http"][i], errs["udp"][i], errs["ws"][i])
		}
		if conns["ws"][i] != int64(i+4) || conns["http"][i] != 50 {
			t.Errorf("sample %d: connections http %v ws %v, want 50 and %d", i, conns["http"][i], conns["ws"][i], i+4)
		}
		// Within the buckets that hold them: 25-50 µs and 1-2.5 ms.
		udp50, udp99, http50, ws50 := d.LatencyP50["udp"][i], d.LatencyP99["udp"][i], d.LatencyP50["http"][i], d.LatencyP50["ws"][i]
		if udp50 == nil || *udp50 < 0.025 || *udp50 > 0.05 || udp99 == nil || *udp99 < *udp50 || *udp99 > 0.05 ||
			http50 == nil || *http50 < 1 || *http50 > 2.5 || ws50 != nil {
			t.Errorf("sample %d: p50 udp %v http %v ws %v, p99 udp %v (ms)", i, deref(udp50), deref(http50), deref(ws50), deref(udp99))
		}
		// 50-75 µs; none for HTTP.
		if s, h := d.ServiceP99["udp"][i], d.ServiceP99["http"][i]; s == nil || *s < 0.05 || *s > 0.075 || h != nil {
			t.Errorf("sample %d: service p99 udp %v http %v (ms)", i, deref(s), deref(h))
		}
		if r := d.ErrorsByReason["not_allowed"]; len(r) != 4 || r[i] != 2 {
			t.Errorf("sample %d: errors by reason %v, want not_allowed 2/s", i, d.ErrorsByReason)
		}
		if d.Seeders[i] != 10*(i+4) || d.Leechers[i] != i+4 {
			t.Errorf("sample %d: seeders %d leechers %d, want %d and %d", i, d.Seeders[i], d.Leechers[i], 10*(i+4), i+4)
		}
		if d.CPUPercent[i] != 50 || d.Memory["rss"][i] != 64<<20 || d.Memory["go_heap"][i] != 8<<20 || d.Memory["outside_go"][i] != 40<<20 {
			t.Errorf("sample %d: cpu %v%%, memory rss %v heap %v outside %v", i, d.CPUPercent[i], d.Memory["rss"][i], d.Memory["go_heap"][i], d.Memory["outside_go"][i])
		}
		// Saved at 3 s: the kept samples are 4 to 7 s.
		if age := d.SnapshotAge[i]; age == nil || *age != float64(i+1) {
			t.Errorf("sample %d: snapshot age %v, want %d", i, deref(age), i+1)
		}
	}
	if len(d.ErrorsByReason) != 1 {
		t.Errorf("errors by reason %v: want only not_allowed, the one counted", d.ErrorsByReason)
	}
	// The store's bounds and the WebSocket connection limit are on; the
	// HTTP connections have no limit, so no use of it.
	lim := d.Limits
	if len(lim) != 3 || lim["torrents"].Limit != 400 || lim["peers"].Limit != 5000 || lim["ws connections"].Limit != 100 {
		t.Fatalf("limits %+v", lim)
	}
	if p := lim["torrents"].Percent; p[3] != 107.0/4 || lim["peers"].Percent[3] != 100*1007.0/5000 || lim["ws connections"].Percent[3] != 7 {
		t.Errorf("use of limits: torrents %v peers %v ws connections %v", p, lim["peers"].Percent, lim["ws connections"].Percent)
	}
	if d.Torrents[3] != 107 || d.Peers[3] != 1007 || d.Version != "v-test" || d.Top == nil || !d.Snapshot {
		t.Errorf("torrents %v peers %v version %q top %v snapshot %v", d.Torrents, d.Peers, d.Version, d.Top, d.Snapshot)
	}
	// mode=busy reads the same ring: over the last samples.
	if body := get(t, m, "127.0.0.1:1", "/stats?mode=busy").Body.String(); !strings.HasPrefix(body, "10\n20\n") {
		t.Errorf("busy: %q", body)
	}
}

func deref(v *float64) any {
	if v == nil {
		return nil
	}
	return *v
}

// TestQuantile checks the estimate against histograms whose answer is
// known: it falls in the right bucket, interpolated within it, and reads
// only the observations between the two reads.
func TestQuantile(t *testing.T) {
	set := counters.New()
	before := set.Read().Latency[counters.UDP]
	if got := quantile(&before, &counters.Latency{}, 0.5); !math.IsNaN(got) {
		t.Errorf("no observations: %v, want NaN", got)
	}
	observe(set, counters.UDP, 10*time.Second, 1000) // before the window
	before = set.Read().Latency[counters.UDP]
	// 100 in (25 µs, 50 µs], 100 in (1 ms, 2.5 ms].
	observe(set, counters.UDP, 40*time.Microsecond, 100)
	observe(set, counters.UDP, 2*time.Millisecond, 100)
	after := set.Read().Latency[counters.UDP]
	for _, tc := range []struct {
		q, want float64
	}{
		{0.25, 37.5e-6}, // halfway through the first bucket's 100
		{0.5, 50e-6},    // its top
		{0.99, 1e-3 + 1.5e-3*98.0/100},
	} {
		if got := quantile(&after, &before, tc.q); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("q %v: %v, want %v", tc.q, got, tc.want)
		}
	}
	// Beyond the last bound: that bound.
	observe(set, counters.UDP, time.Minute, 10)
	last := set.Read().Latency[counters.UDP]
	if got, want := quantile(&last, &after, 0.5), counters.LatencyBuckets[len(counters.LatencyBuckets)-1].Seconds(); got != want {
		t.Errorf("beyond the last bucket: %v, want %v", got, want)
	}
}

func TestDashboardPageAndAssets(t *testing.T) {
	m := newFixtureMonitor(t, fixtureStore(t))
	for path, want := range map[string]string{
		"/dashboard":                   "text/html; charset=utf-8",
		"/dashboard/dashboard.js":      "text/javascript; charset=utf-8",
		"/dashboard/uPlot.iife.min.js": "text/javascript; charset=utf-8",
		"/dashboard/uPlot.min.css":     "text/css; charset=utf-8",
	} {
		rec := get(t, m, "127.0.0.1:1", path)
		if rec.Code != 200 || rec.Header().Get("Content-Type") != want || rec.Body.Len() < 100 {
			t.Errorf("%s: %d %q, %d bytes", path, rec.Code, rec.Header().Get("Content-Type"), rec.Body.Len())
		}
	}
	// The page loads its scripts relative to itself, never from elsewhere.
	page := get(t, m, "127.0.0.1:1", "/dashboard").Body.String()
	if strings.Contains(page, "//") && strings.Contains(page, "http") {
		t.Errorf("dashboard page references another origin")
	}
}

// TestRunSamplesUntilCancelled: Run fills the ring at its interval and
// returns promptly when its context ends.
func TestRunSamplesUntilCancelled(t *testing.T) {
	set := counters.New()
	m, err := New(Config{
		Sources:     Sources{Store: fixtureStore(t), Counters: set},
		Nets:        testNets,
		SampleEvery: 5 * time.Millisecond,
		SlowEvery:   20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	var d dashboardData
	for {
		add(set, counters.HTTP, counters.Announce, counters.OK, noFault, 7)
		if err := json.Unmarshal(get(t, m, "127.0.0.1:1", "/dashboard/data").Body.Bytes(), &d); err != nil {
			t.Fatal(err)
		}
		if len(d.Time) >= 5 && len(d.Top) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %d samples, %d top rows", len(d.Time), len(d.Top))
		}
		time.Sleep(2 * time.Millisecond)
	}
	if d.Top[0].InfoHash != strings.Repeat("11", 20) || d.Peers[len(d.Peers)-1] != 10 || d.Seeders[len(d.Seeders)-1] != 4 {
		t.Errorf("top %+v, peers %v, seeders %v", d.Top, d.Peers, d.Seeders)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}
