package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestWebSocketInStats drives the npm bittorrent-tracker client in
// WebSocket mode against herald (the WebSocket tracker on its HTTP port,
// a whitelist of one torrent): two announces served, one refused, one
// scrape, over the client's one connection. /metrics, /stats?mode=everything
// and the dashboard's data must each show those requests, the error and
// the open connection under protocol ws.
func TestWebSocketInStats(t *testing.T) {
	requireClient(t, "npm bittorrent-tracker (e2e/testdata/node)", npmClientInstalled())
	allowed, refused := randomInfoHash(t), randomInfoHash(t)
	list := filepath.Join(t.TempDir(), "whitelist")
	if err := os.WriteFile(list, []byte(allowed+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := startHerald(t, "127.0.0.1", "-whitelist", list)
	url := "ws://" + h.Addr + "/announce"
	c := startTrackerClient(t)
	announce := func(peer, infoHash string, left int) trackerReply {
		t.Helper()
		return c.do(t, trackerCommand{Op: "announce", Peer: peer, URL: url, InfoHash: infoHash, Port: 6881, Event: "started", Left: left})
	}
	if r := announce("leecher", allowed, 1000); !r.OK || r.Incomplete != 1 {
		t.Fatalf("leecher's announce: %+v, want ok with 1 leecher", r)
	}
	if r := announce("seeder", allowed, 0); !r.OK || r.Complete != 1 || r.Incomplete != 1 {
		t.Fatalf("seeder's announce: %+v, want ok with 1 seeder and 1 leecher", r)
	}
	if r := announce("outsider", refused, 1000); r.OK || !strings.Contains(r.Error, "not authorized") {
		t.Fatalf("announce of a torrent off the whitelist: %+v, want the not-authorized failure", r)
	}
	if r := c.do(t, trackerCommand{Op: "scrape", URL: url, InfoHash: allowed}); !r.OK || r.Complete != 1 || r.Incomplete != 1 {
		t.Fatalf("scrape: %+v, want 1 seeder and 1 leecher", r)
	}

	base := "http://" + h.Addr
	metrics := get(t, base+"/metrics")
	for _, want := range []string{
		`herald_requests_total{action="announce",outcome="ok",protocol="ws"} 2`,
		`herald_requests_total{action="announce",outcome="failure",protocol="ws"} 1`,
		`herald_requests_total{action="scrape",outcome="ok",protocol="ws"} 1`,
		`herald_errors_total{protocol="ws",reason="not_allowed"} 1`,
		`herald_ws_connections 1`,
		`herald_ws_connections_accepted_total 1`,
		`herald_ws_torrents 1`,
		`herald_ws_peers 2`,
		`herald_request_duration_seconds_count{protocol="ws"} 4`,
	} {
		if !strings.Contains(metrics, "\n"+want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	everything := get(t, base+"/stats?mode=everything")
	_, ws, _ := strings.Cut(everything, `<protocol name="ws">`)
	ws, _, _ = strings.Cut(ws, "</protocol>")
	for _, want := range []string{
		`<requests action="announce" outcome="ok">2</requests>`,
		`<requests action="announce" outcome="failure">1</requests>`,
		`<requests action="scrape" outcome="ok">1</requests>`,
		`<errors reason="not_allowed">1</errors>`,
		`<connections>1</connections>`,
		`<connections_accepted>1</connections_accepted>`,
	} {
		if !strings.Contains(ws, want) {
			t.Errorf("mode=everything's ws element lacks %s:\n%s", want, everything)
		}
	}

	// The dashboard samples every second; its rates need a sample on each
	// side of the requests.
	// The response times and the refusal by reason come from the same
	// requests.
	var d struct {
		Requests    map[string][]float64  `json:"requests_per_second"`
		Errors      map[string][]float64  `json:"errors_per_second"`
		Connections map[string][]int64    `json:"connections"`
		Reasons     map[string][]float64  `json:"errors_by_reason"`
		LatencyP99  map[string][]*float64 `json:"latency_p99_ms"`
	}
	peak := func(col []float64) float64 { return slices.Max(append([]float64{0}, col...)) }
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := json.Unmarshal([]byte(get(t, base+"/dashboard/data")), &d); err != nil {
			t.Fatal(err)
		}
		conns := d.Connections["ws"]
		timed := slices.ContainsFunc(d.LatencyP99["ws"], func(v *float64) bool { return v != nil && *v > 0 })
		if peak(d.Requests["ws"]) > 0 && peak(d.Errors["ws"]) > 0 && peak(d.Reasons["not_allowed"]) > 0 && timed &&
			len(conns) > 0 && conns[len(conns)-1] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dashboard data after 10 s: ws requests/s %v, errors/s %v, errors by reason %v, p99 timed %v, connections %v; "+
				"want requests, a not_allowed error, a response time and 1 connection",
				d.Requests["ws"], d.Errors["ws"], d.Reasons, timed, conns)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// get fetches url from herald's HTTP port and returns the body of its 200.
func get(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v\n%s", url, res.Status, err, body)
	}
	return string(body)
}
