package stats

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"herald/counters"
)

func TestDashboardDataRatesAndBoundedHistory(t *testing.T) {
	m, err := New(Config{Sources: Sources{Store: fixtureStore(t)}, Nets: testNets, History: 5, Version: "v-test"})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	// Eight samples a second apart: 10 HTTP, 20 UDP and 3 WebSocket
	// requests a second, 1 HTTP and 2 WebSocket errors a second; only the
	// last five are kept.
	for i := range 8 {
		s := Snapshot{
			Time:     t0.Add(time.Duration(i) * time.Second),
			Torrents: 100 + i,
			Peers:    1000 + i,
		}
		c := &s.Counters
		c.Requests[counters.HTTP][counters.Announce][counters.OK] = uint64(9 * i)
		c.Requests[counters.HTTP][counters.Invalid][counters.Failure] = uint64(i)
		c.Requests[counters.UDP][counters.Announce][counters.OK] = uint64(20 * i)
		c.Requests[counters.WS][counters.Announce][counters.OK] = uint64(i)
		c.Requests[counters.WS][counters.Announce][counters.Failure] = uint64(2 * i)
		c.Gauges[counters.WS][counters.Connections] = int64(i)
		c.Gauges[counters.HTTP][counters.Connections] = 50
		m.history.add(s)
	}
	rec := get(t, m, "127.0.0.1:1", "/dashboard/data")
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("%d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	var d dashboardData
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
	}
	if _, ok := conns["udp"]; ok {
		t.Errorf("connections of udp, which has none: %v", conns["udp"])
	}
	if d.Torrents[3] != 107 || d.Peers[3] != 1007 || d.Version != "v-test" || d.Top == nil {
		t.Errorf("torrents %v peers %v version %q top %v", d.Torrents, d.Peers, d.Version, d.Top)
	}
	// mode=busy reads the same ring: over the last samples.
	if body := get(t, m, "127.0.0.1:1", "/stats?mode=busy").Body.String(); !strings.HasPrefix(body, "10\n20\n") {
		t.Errorf("busy: %q", body)
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
