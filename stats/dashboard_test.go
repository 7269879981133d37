package stats

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"herald/httptracker"
	"herald/udptracker"
)

func TestDashboardDataRatesAndBoundedHistory(t *testing.T) {
	m, err := New(Config{Sources: Sources{Store: fixtureStore(t)}, Nets: testNets, History: 5, Version: "v-test"})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	// Eight samples a second apart: 10 HTTP and 20 UDP requests a second,
	// 1 HTTP error a second; only the last five are kept.
	for i := range 8 {
		m.history.add(Snapshot{
			Time:     t0.Add(time.Duration(i) * time.Second),
			Torrents: 100 + i,
			Peers:    1000 + i,
			HTTP:     httptracker.Stats{Announces: uint64(9 * i), NotFound: uint64(i)},
			UDP:      udptracker.Stats{Announces: uint64(20 * i)},
		})
	}
	rec := get(t, m, "127.0.0.1:1", "/dashboard/data")
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("%d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	var d dashboardData
	if err := json.Unmarshal(rec.Body.Bytes(), &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Time) != 4 || len(d.HTTPRate) != 4 || len(d.Peers) != 4 {
		t.Fatalf("%d samples, want 4 (five kept, rates need two): %s", len(d.Time), rec.Body)
	}
	if d.Time[0] != float64(t0.Unix()+4) || d.Time[3] != float64(t0.Unix()+7) {
		t.Errorf("times %v", d.Time)
	}
	for i := range d.Time {
		if d.HTTPRate[i] != 10 || d.UDPRate[i] != 20 || d.HTTPErrorRate[i] != 1 || d.UDPErrorRate[i] != 0 {
			t.Errorf("sample %d: http %v udp %v errors %v/%v", i, d.HTTPRate[i], d.UDPRate[i], d.HTTPErrorRate[i], d.UDPErrorRate[i])
		}
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
	load := &fakeHTTP{}
	m, err := New(Config{
		Sources:     Sources{Store: fixtureStore(t), HTTP: []HTTPCounters{load}},
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
		load.announces.Add(7)
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
