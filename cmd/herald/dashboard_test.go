package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"herald/udptracker"
)

// dashboardData is the part of /dashboard/data this test reads; a null
// (nothing to show in that sample) decodes as nil.
type dashboardData struct {
	Time           []float64             `json:"time"`
	LatencyP50     map[string][]*float64 `json:"latency_p50_ms"`
	LatencyP99     map[string][]*float64 `json:"latency_p99_ms"`
	ErrorsByReason map[string][]float64  `json:"errors_by_reason"`
	Limits         map[string]struct {
		Limit   int64      `json:"limit"`
		Percent []*float64 `json:"percent"`
	} `json:"limits"`
	Seeders     []int                 `json:"seeders"`
	Leechers    []int                 `json:"leechers"`
	Memory      map[string][]*float64 `json:"memory_bytes"`
	CPUPercent  []*float64            `json:"cpu_percent"`
	Snapshot    bool                  `json:"snapshot"`
	SnapshotAge []*float64            `json:"snapshot_age_seconds"`
}

func readDashboard(t *testing.T, base string) dashboardData {
	t.Helper()
	resp, err := http.Get(base + "/dashboard/data")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d dashboardData
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatalf("/dashboard/data: %v", err)
	}
	return d
}

// positive reports whether a column holds a value above zero.
func positive(col []*float64) bool {
	return slices.ContainsFunc(col, func(v *float64) bool { return v != nil && *v > 0 })
}

// Issue 17: the dashboard's panels show what real requests did, at the
// next sample: HTTP and UDP response times, the refusals by reason,
// seeders and leechers (no longer 30 s behind), the use of the limits
// herald chose, memory, CPU, and a snapshot age that drops back at each
// save.
func TestDashboardShowsRealRequests(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs herald for several seconds")
	}
	dir := t.TempDir()
	h := startHerald(t, freePort(t), "-snapshot", filepath.Join(dir, "herald.snapshot"), "-snapshot-interval", "2s")

	// A seeder and a leecher over HTTP.
	announceReply(t, h.URL, hashOf(1), 7001)
	if _, fr := announceReply(t, h.URL, hashOf(1), 7002); fr != "" {
		t.Fatalf("announce refused: %s", fr)
	}
	seedURL := announceURL(h.URL, hashOf(1), 7001, 0, 50)
	if resp, err := http.Get(seedURL); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	announced := time.Now()
	// A UDP announce answered, and one with a made-up connection id,
	// refused as bad_connection_id.
	conn, err := net.Dial("udp", h.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	id, err := udpConnect(conn)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	for i, cid := range []uint64{id, id ^ 0x5555} {
		req := &udptracker.AnnounceRequest{ConnectionID: cid, TransactionID: uint32(10 + i), InfoHash: hashOf(2), Left: 1, NumWant: -1, Port: 7003}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write(udptracker.AppendAnnounceRequest(nil, req)); err != nil {
			t.Fatal(err)
		}
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("UDP announce %d: %v", i, err)
		}
		_, perr := udptracker.ParseErrorResponse(buf[:n])
		if refused := perr == nil; refused != (i == 1) {
			t.Fatalf("UDP announce %d: reply %x", i, buf[:n])
		}
	}

	var d dashboardData
	var fresh time.Duration
	deadline := time.Now().Add(20 * time.Second)
	for {
		d = readDashboard(t, h.URL)
		last := len(d.Time) - 1
		if fresh == 0 && last >= 0 && d.Seeders[last] == 1 && d.Leechers[last] == 2 {
			fresh = time.Since(announced)
		}
		if fresh > 0 && dropsBack(d.SnapshotAge) && positive(d.LatencyP50["udp"]) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20 s: seeders %v leechers %v (want 1 and 2), snapshot ages %v",
				d.Seeders, d.Leechers, floats(d.SnapshotAge))
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The sampler runs every second; before, seeders came from a walk of
	// the store every 30 s.
	t.Logf("seeders and leechers shown %v after the announces", fresh)
	if fresh > 5*time.Second {
		t.Errorf("seeders and leechers showed %v after the announces, want within a few samples", fresh)
	}
	for _, p := range []string{"http", "udp"} {
		if !positive(d.LatencyP50[p]) || !positive(d.LatencyP99[p]) {
			t.Errorf("%s response time: p50 %v p99 %v, want a value from the announces", p, floats(d.LatencyP50[p]), floats(d.LatencyP99[p]))
		}
	}
	if ws := d.LatencyP50["ws"]; positive(ws) {
		t.Errorf("ws response time %v without a WebSocket request", floats(ws))
	}
	if col := d.ErrorsByReason["bad_connection_id"]; !slices.ContainsFunc(col, func(v float64) bool { return v > 0 }) {
		t.Errorf("errors by reason: %v, want bad_connection_id above 0", d.ErrorsByReason)
	}
	if _, ok := d.ErrorsByReason["not_allowed"]; ok {
		t.Errorf("errors by reason lists not_allowed, which nothing was refused for: %v", d.ErrorsByReason)
	}
	// herald chose limits from the machine's memory: 2 torrents of them
	// (the UDP announce added the second) is a tiny share above zero.
	if l, ok := d.Limits["torrents"]; !ok || l.Limit <= 0 || !positive(l.Percent) {
		t.Errorf("torrent limit use: %+v", d.Limits)
	}
	if !positive(d.Memory["rss"]) || !positive(d.Memory["go_heap"]) || !positive(d.CPUPercent) {
		t.Errorf("memory %v, cpu %v", d.Memory, floats(d.CPUPercent))
	}
	if !d.Snapshot {
		t.Errorf("snapshot off, with -snapshot given")
	}
}

// dropsBack reports whether snapshot ages, once shown, fell back: a save.
func dropsBack(ages []*float64) bool {
	for i := 1; i < len(ages); i++ {
		if ages[i-1] != nil && ages[i] != nil && *ages[i] < *ages[i-1] {
			return true
		}
	}
	return false
}

func floats(col []*float64) string {
	out := make([]string, len(col))
	for i, v := range col {
		out[i] = "null"
		if v != nil {
			out[i] = fmt.Sprintf("%.3g", *v)
		}
	}
	return fmt.Sprint(out)
}
