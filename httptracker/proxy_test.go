package httptracker

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"herald/counters"
	"herald/ratelimit"
	"herald/swarm"
	"herald/tracker"
)

// Issue 5: the client address behind trusted proxies is the rightmost
// X-Forwarded-For hop that is not a trusted proxy; headers from anyone else
// are ignored, so a client cannot choose the address it is handed out as.
// Issue 14 item 5: only the configured header counts (X-Real-IP is not a
// fallback), and a chain with no untrusted hop, or a garbled one, leaves
// the client unknown rather than the proxy's own address.
func TestClientAddrBehindProxies(t *testing.T) {
	h := newTestHandler(t, Config{TrustedProxies: []netip.Prefix{
		netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.9.0.0/16"), netip.MustParsePrefix("fd00::/8"),
	}})
	cases := []struct {
		name, remote string
		headers      map[string][]string
		want         string
	}{
		{"no proxy", "192.0.2.1:5000", nil, "192.0.2.1"},
		{"spoofed header from an untrusted client", "192.0.2.1:5000", map[string][]string{"X-Forwarded-For": {"203.0.113.66"}, "X-Real-Ip": {"203.0.113.67"}}, "192.0.2.1"},
		{"one trusted proxy", "127.0.0.1:5000", map[string][]string{"X-Forwarded-For": {"203.0.113.9"}}, "203.0.113.9"},
		{"client-supplied entry left of the real one", "127.0.0.1:5000", map[string][]string{"X-Forwarded-For": {"6.6.6.6, 203.0.113.9"}}, "203.0.113.9"},
		{"chain of trusted proxies", "127.0.0.1:5000", map[string][]string{"X-Forwarded-For": {"203.0.113.9, 10.9.1.1", "10.9.2.2"}}, "203.0.113.9"},
		{"untrusted hop stops the walk", "127.0.0.1:5000", map[string][]string{"X-Forwarded-For": {"203.0.113.9, 10.8.1.1"}}, "10.8.1.1"},
		{"IPv6 and ports", "[fd00::1]:443", map[string][]string{"X-Forwarded-For": {"[2001:db8::7]:51413"}}, "2001:db8::7"},
		{"mapped IPv4", "[::ffff:127.0.0.1]:80", map[string][]string{"X-Forwarded-For": {"::ffff:198.51.100.4"}}, "198.51.100.4"},
		{"garbled hop", "127.0.0.1:5000", map[string][]string{"X-Forwarded-For": {"203.0.113.9, not-an-ip"}}, ""},
		{"X-Real-IP without X-Forwarded-For", "127.0.0.1:5000", map[string][]string{"X-Real-Ip": {"198.51.100.8"}}, ""},
		{"X-Real-IP beside X-Forwarded-For", "127.0.0.1:5000", map[string][]string{"X-Real-Ip": {"198.51.100.8"}, "X-Forwarded-For": {"203.0.113.9"}}, "203.0.113.9"},
		{"all hops trusted", "127.0.0.1:5000", map[string][]string{"X-Forwarded-For": {"10.9.0.5"}}, ""},
		{"no header from a proxy", "127.0.0.1:5000", nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/announce", nil)
			r.RemoteAddr = c.remote
			for k, v := range c.headers {
				r.Header[k] = v
			}
			got, ok := h.ClientAddr(r)
			if c.want == "" {
				if ok || got.IsValid() {
					t.Fatalf("ClientAddr = %v %v, want the client unknown", got, ok)
				}
				return
			}
			if !ok || got != netip.MustParseAddr(c.want) {
				t.Fatalf("ClientAddr = %v %v, want %s", got, ok, c.want)
			}
		})
	}
}

// Issue 16: a WebSocket upgrade through a trusted proxy reaches the
// WebSocket tracker as sent by the client the proxy forwarded it for, so
// that its rate limit and per-client cap do not lump every client behind
// the proxy together; from anyone else the headers change nothing.
func TestWebSocketSeesForwardedClient(t *testing.T) {
	var seen string
	h := newTestHandler(t, Config{
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		WebSocket:      http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { seen = r.RemoteAddr }),
		IsWebSocket:    func(*http.Request) bool { return true },
	})
	for _, tc := range []struct{ remote, want string }{
		{"127.0.0.1:5000", "203.0.113.9:5000"},
		{"192.0.2.1:5000", "192.0.2.1:5000"},
	} {
		r := httptest.NewRequest("GET", "/announce", nil)
		r.RemoteAddr = tc.remote
		r.Header.Set("X-Forwarded-For", "203.0.113.9")
		h.ServeHTTP(httptest.NewRecorder(), r)
		if seen != tc.want {
			t.Errorf("upgrade from %s: the WebSocket tracker saw %s, want %s", tc.remote, seen, tc.want)
		}
	}
}

// The address announces register is the proxied one, end to end.
func TestAnnounceThroughProxy(t *testing.T) {
	store := newTestStore(t, swarm.Config{})
	h := newTestHandler(t, Config{Tracker: testTracker(t, tracker.Config{Store: store}), TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	r := httptest.NewRequest("GET", "/announce?"+announceBase+"&left=1", nil)
	r.RemoteAddr = "127.0.0.1:4000"
	r.Header.Set("X-Forwarded-For", "1.1.1.1, 198.51.100.20")
	h.ServeHTTP(httptest.NewRecorder(), r)
	peers, _, _ := store.Announce(&swarm.Announce{InfoHash: hash20, Addr: netip.MustParseAddrPort("192.0.2.99:1"), NumWant: 10}, swarm.FamilyBoth, swarm.Peers{})
	if want := []byte{198, 51, 100, 20, 0x1a, 0xe1}; string(peers.V4) != string(want) {
		t.Fatalf("peer registered as % x, want % x (198.51.100.20:6881)", peers.V4, want)
	}
}

// BEP 7 and BEP 3 client-stated addresses count only when the operator
// allows them.
func TestClientStatedAddresses(t *testing.T) {
	for _, allow := range []bool{false, true} {
		store := newTestStore(t, swarm.Config{})
		h := newTestHandler(t, Config{Tracker: testTracker(t, tracker.Config{Store: store, AllowIPField: allow})})
		r := httptest.NewRequest("GET", "/announce?"+announceBase+"&left=1&ipv6=2001:db8::5", nil)
		r.RemoteAddr = "192.0.2.1:4000"
		h.ServeHTTP(httptest.NewRecorder(), r)
		peers, c, _ := store.Announce(&swarm.Announce{InfoHash: hash20, Addr: netip.MustParseAddrPort("[2001:db8::99]:1"), NumWant: 10}, swarm.FamilyBoth, swarm.Peers{})
		got6 := len(peers.V6) / swarm.PeerLen6
		if allow && (got6 != 1 || c.Leechers != 2) {
			t.Errorf("allowed: %d IPv6 peers and %d leechers, want the ipv6= address registered too", got6, c.Leechers)
		}
		if !allow && (got6 != 0 || c.Leechers != 1) {
			t.Errorf("not allowed: ipv6= was honoured (%d IPv6 peers)", got6)
		}
	}
}

func TestAdmitRefusesWithFailure(t *testing.T) {
	h := newTestHandler(t, Config{Tracker: testTracker(t, tracker.Config{Admit: func(a netip.Addr, _ time.Time) bool { return a != netip.MustParseAddr("192.0.2.66") }})})
	for _, target := range []string{"/announce?" + announceBase, "/scrape?info_hash=" + q20} {
		resp := serve(h, "GET", target, "", "192.0.2.66:1000")
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != "d14:failure reason47:Too many requests from your address; slow down.e" {
			t.Errorf("%s over the limit: %d %q", target, resp.StatusCode, body)
		}
		if resp := serve(h, "GET", target, "", "192.0.2.67:1000"); resp.StatusCode != 200 {
			t.Errorf("%s from another client: %d", target, resp.StatusCode)
		}
	}
	c := httpCounts(h)
	if got := c.Requests[counters.HTTP][counters.Announce][counters.RateLimited] + c.Requests[counters.HTTP][counters.Scrape][counters.RateLimited]; got != 2 {
		t.Errorf("rate limited = %d, want 2", got)
	}
}

// Issue 14 item 3: a full scrape goes through the rate limit, and one
// client gets one per its share (here one per half hour): a second is
// refused with the rate-limit failure, another client's is served.
func TestFullScrapeAdmittedIssue14(t *testing.T) {
	perClient, err := ratelimit.New(ratelimit.Config{Rate: 1.0 / 1800, Burst: 1})
	if err != nil {
		t.Fatal(err)
	}
	h := newTestHandler(t, Config{Tracker: testTracker(t, tracker.Config{
		Admit:           func(a netip.Addr, _ time.Time) bool { return a != netip.MustParseAddr("192.0.2.66") },
		AdmitFullScrape: perClient.Allow,
	})})
	const refused = "d14:failure reason47:Too many requests from your address; slow down.e"
	for _, tc := range []struct {
		client string
		want   string
	}{
		{"192.0.2.66:1000", refused}, // over the general rate limit
		{"192.0.2.67:1000", "d5:filesdee"},
		{"192.0.2.67:1001", refused}, // its second within the half hour
		{"192.0.2.68:1000", "d5:filesdee"},
	} {
		resp := serve(h, "GET", "/scrape", "", tc.client)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != tc.want {
			t.Errorf("full scrape from %s: %d %q, want %q", tc.client, resp.StatusCode, body, tc.want)
		}
	}
	if fs := httpCounts(h).Requests[counters.HTTP][counters.FullScrape]; fs[counters.RateLimited] != 2 || fs[counters.OK] != 2 {
		t.Errorf("full scrapes rate limited %d, served %d; want 2, 2", fs[counters.RateLimited], fs[counters.OK])
	}
}

func TestStatsPathsRouted(t *testing.T) {
	var got []string
	h := newTestHandler(t, Config{
		StatsPaths: []string{"admin", "dashboard/"},
		Stats: func(w http.ResponseWriter, r *http.Request, client netip.Addr) {
			got = append(got, r.URL.Path+" "+client.String())
		},
	})
	serve(h, "GET", "/admin?mode=peer", "", "192.0.2.5:1")
	serve(h, "HEAD", "/dashboard/app.js", "", "192.0.2.5:1")
	if resp := serve(h, "GET", "/announce?"+announceBase, "", "192.0.2.5:1"); resp.StatusCode != 200 {
		t.Fatalf("announce: %d", resp.StatusCode)
	}
	want := []string{"/admin 192.0.2.5", "/dashboard/app.js 192.0.2.5"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("stats saw %q, want %q (a stats path starting with a beats the announce prefix)", got, want)
	}
}

func TestLatencyTimesAnnouncesAndScrapes(t *testing.T) {
	h := newTestHandler(t, Config{})
	serve(h, "GET", "/announce?"+announceBase, "", "192.0.2.5:1")
	serve(h, "GET", "/scrape?info_hash="+q20, "", "192.0.2.5:1")
	serve(h, "GET", "/nothing", "", "192.0.2.5:1")
	if l := httpCounts(h).Latency[counters.HTTP]; l.Count != 2 || l.Sum <= 0 {
		t.Fatalf("observed %d requests taking %v, want 2 taking more than 0", l.Count, l.Sum)
	}
}

func TestWebSocketUpgradesRouted(t *testing.T) {
	var upgrades int
	h := newTestHandler(t, Config{
		WebSocket:   http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { upgrades++ }),
		IsWebSocket: func(r *http.Request) bool { return r.Header.Get("Upgrade") == "websocket" },
	})
	r := httptest.NewRequest("GET", "/announce", nil)
	r.Header.Set("Upgrade", "websocket")
	h.ServeHTTP(httptest.NewRecorder(), r)
	if resp := serve(h, "GET", "/announce?"+announceBase, "", "192.0.2.5:1"); resp.StatusCode != 200 || upgrades != 1 {
		t.Fatalf("upgrades %d, plain announce %d; want the upgrade alone to reach the WebSocket handler", upgrades, resp.StatusCode)
	}
}

// Issue 14 item 5: with ProxyHeader X-Real-IP that header alone names the
// client; and a client the proxy did not name gets its announce refused,
// no stats and no rate-limit exemption, on both paths (event loop and
// net/http).
func TestProxyHeaderAndUnknownClient(t *testing.T) {
	h := newTestHandler(t, Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, ProxyHeader: "X-Real-IP"})
	r := httptest.NewRequest("GET", "/announce", nil)
	r.RemoteAddr = "127.0.0.1:5000"
	r.Header.Set("X-Forwarded-For", "203.0.113.9")
	r.Header.Set("X-Real-IP", "198.51.100.8")
	if got, ok := h.ClientAddr(r); !ok || got != netip.MustParseAddr("198.51.100.8") {
		t.Fatalf("ClientAddr with ProxyHeader X-Real-IP = %v %v, want 198.51.100.8", got, ok)
	}

	var statsFor []netip.Addr
	store := newTestStore(t, swarm.Config{})
	srv := startServer(t, "127.0.0.1:0", Config{
		Tracker:        testTracker(t, tracker.Config{Store: store}),
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Stats: func(w http.ResponseWriter, _ *http.Request, a netip.Addr) {
			statsFor = append(statsFor, a)
		},
		StatsPaths: []string{"stats"},
	})
	// An Expect header sends the request to net/http.
	for _, extra := range []string{"", "Expect: 100-continue\r\n"} {
		resp, body := exchange(t, srv, "GET /announce?"+announceBase+"&left=1 HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 127.0.0.5\r\n"+extra+"\r\n")
		if resp.StatusCode != 200 || !strings.Contains(string(body), "failure reason") {
			t.Errorf("announce from a client the proxy did not name: %s %q, want a failure", resp.Status, body)
		}
	}
	if n := store.Peers(); n != 0 {
		t.Errorf("%d peers stored for an unknown client", n)
	}
	exchange(t, srv, "GET /stats HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 127.0.0.5\r\n\r\n")
	if len(statsFor) != 1 || statsFor[0].IsValid() {
		t.Errorf("stats asked for %v, want an unknown (invalid) address", statsFor)
	}
}
