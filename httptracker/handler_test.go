package httptracker

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"herald/counters"
	"herald/swarm"
	"herald/tracker"
)

// refused is the test handlers' access list: it refuses torrents whose
// hash starts with 0xde.
func refused(h swarm.InfoHash) bool { return h[0] == 0xde }

func newTestStore(t testing.TB, cfg swarm.Config) *swarm.Store {
	t.Helper()
	store, err := swarm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return store
}

// testTracker returns a tracker with the rules of cfg, over a fresh store
// unless cfg names one, and refusing the hashes refused names unless cfg
// has an access list.
func testTracker(t testing.TB, cfg tracker.Config) *tracker.Tracker {
	t.Helper()
	if cfg.Store == nil {
		cfg.Store = newTestStore(t, swarm.Config{})
	}
	if cfg.Allowed == nil {
		cfg.Allowed = func(h swarm.InfoHash) bool { return !refused(h) }
	}
	tr, err := tracker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func newTestHandler(t testing.TB, cfg Config) *Handler {
	t.Helper()
	if cfg.Tracker == nil {
		cfg.Tracker = testTracker(t, tracker.Config{})
	}
	h, err := NewHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// httpCounts reads the counters h counts into.
func httpCounts(h *Handler) counters.Counts { return h.counts.Read() }

// serve runs one request through h; rawQuery, when set, replaces the
// query as it arrives on the wire (httptest.NewRequest would reject some).
func serve(h http.Handler, method, target, rawQuery, remote string) *http.Response {
	r := httptest.NewRequest(method, target, nil)
	if rawQuery != "" {
		r.URL.RawQuery = rawQuery
	}
	if remote != "" {
		r.RemoteAddr = remote
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

// TestBadRequests is the table of every way a request can be refused, with
// the exact status and body each gets. Requests net/http itself refuses
// (over-long, stray space) are in TestRawRequests.
func TestBadRequests(t *testing.T) {
	store := newTestStore(t, swarm.Config{MaxTorrents: 1})
	if _, _, err := store.Announce(&swarm.Announce{InfoHash: hash20, Addr: netip.MustParseAddrPort("10.0.0.1:1"), Left: 1}, swarm.FamilyBoth, swarm.Peers{}); err != nil {
		t.Fatal(err)
	}
	h := newTestHandler(t, Config{Tracker: testTracker(t, tracker.Config{Store: store})})
	redirecting := newTestHandler(t, Config{Tracker: testTracker(t, tracker.Config{Store: store}), RedirectURL: "https://example.org/tracker"})
	busy := newTestHandler(t, Config{Tracker: testTracker(t, tracker.Config{Store: store}), MaxFullScrapes: 1})
	busy.fullScrapeSlots <- struct{}{} // one full scrape "running"

	ok := "info_hash=" + q20 + "&port=6881"
	other := "info_hash=" + q20[:len(q20)-3] + "%68&port=6881" // a second torrent: over MaxTorrents
	fail := func(reason string) string {
		return "d14:failure reason" + strconv.Itoa(len(reason)) + ":" + reason + "e"
	}
	for _, tc := range []struct {
		name     string
		handler  http.Handler
		method   string
		target   string
		rawQuery string
		remote   string
		status   int
		body     string
		header   string // "Name: value" that must be present
	}{
		{"no info_hash", h, "GET", "/announce", "", "", 200,
			fail("Your client forgot to send your torrent's info_hash. Please upgrade your client."), ""},
		{"short info_hash", h, "GET", "/announce?info_hash=abc&port=1", "", "", 200, fail("info_hash is not 20 bytes long."), ""},
		{"long info_hash", h, "GET", "/announce", "info_hash=" + q20 + "%00&port=1", "", 200, fail("info_hash is not 20 bytes long."), ""},
		{"two info_hash", h, "GET", "/announce", ok + "&info_hash=" + q20, "", 200, fail("An announce takes exactly one info_hash."), ""},
		{"short peer_id", h, "GET", "/announce", ok + "&peer_id=abc", "", 200, fail("peer_id is not 20 bytes long."), ""},
		{"no port", h, "GET", "/announce", "info_hash=" + q20, "", 200, fail("Your client forgot to send the port it listens on."), ""},
		{"port 0", h, "GET", "/announce", ok + "&port=0", "", 200, fail("port is not a number from 1 to 65535."), ""},
		{"port 65536", h, "GET", "/announce", "info_hash=" + q20 + "&port=65536", "", 200, fail("port is not a number from 1 to 65535."), ""},
		{"numwant not a number", h, "GET", "/announce", ok + "&numwant=all", "", 200, fail("numwant is not a number."), ""},
		{"refused torrent", h, "GET", "/announce", "info_hash=%de%ad" + q20[6:] + "&port=1", "", 200,
			fail("Requested download is not authorized for use with this tracker."), ""},
		{"torrent limit", h, "GET", "/announce", other, "", 200, fail("The tracker is full and accepts no new torrents."), ""},
		{"unspecified address", h, "GET", "/announce", ok, "0.0.0.0:5555", 200, fail("Your address cannot be handed out to other peers."), ""},
		{"scrape short info_hash", h, "GET", "/scrape?info_hash=abc", "", "", 200, fail("info_hash is not 20 bytes long."), ""},
		{"bad escape", h, "GET", "/announce", "info_hash=%zz" + q20[3:] + "&port=1", "", 400, "malformed %-escape in query\n", ""},
		{"truncated escape", h, "GET", "/announce", ok + "&peer_id=%4", "", 400, "malformed %-escape in query\n", ""},
		{"raw high byte", h, "GET", "/announce", "info_hash=\xde\xad" + q20[6:] + "&port=1", "", 400, "unescaped byte 0x80 or above in query\n", ""},
		{"scrape bad escape", h, "GET", "/scrape", "info_hash=%%", "", 400, "malformed %-escape in query\n", ""},
		{"unknown path", h, "GET", "/stats", "", "", 404, "not found\n", ""},
		{"unknown path with announce inside", h, "GET", "/xyz/announce", ok, "", 404, "not found\n", ""},
		{"root without redirect", h, "GET", "/", "", "", 404, "not found\n", ""},
		{"root redirect", redirecting, "GET", "/", "", "", 302, "", "Location: https://example.org/tracker"},
		{"slashes redirect", redirecting, "GET", "///", "", "", 302, "", "Location: https://example.org/tracker"},
		{"POST", h, "POST", "/announce", ok, "", 405, "only GET is served\n", "Allow: GET"},
		{"HEAD", h, "HEAD", "/announce", ok, "", 405, "only GET is served\n", "Allow: GET"},
		{"full scrape busy", busy, "GET", "/scrape", "", "", 503, "too many full scrapes running, retry later\n", "Retry-After: 30"},
	} {
		resp := serve(tc.handler, tc.method, tc.target, tc.rawQuery, tc.remote)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != tc.status || string(body) != tc.body {
			t.Errorf("%s: got %d %q, want %d %q", tc.name, resp.StatusCode, body, tc.status, tc.body)
		}
		if tc.header != "" {
			name, value, _ := strings.Cut(tc.header, ": ")
			if got := resp.Header.Get(name); got != value {
				t.Errorf("%s: header %s = %q, want %q", tc.name, name, got, value)
			}
		}
	}
	c := httpCounts(h)
	req, faults := c.Requests[counters.HTTP], c.Faults[counters.HTTP]
	if req[counters.Announce][counters.Failure] != 15 || req[counters.Scrape][counters.Failure] != 2 || req[counters.Invalid][counters.Failure] != 5 ||
		faults[counters.BadRequest] != 4 || faults[counters.NotFound] != 3 || faults[counters.MethodNotAllowed] != 2 || c.Refusals[counters.HTTP][tracker.Internal] != 0 {
		t.Errorf("after the table: requests %v, faults %v", req, faults)
	}
	b, r := httpCounts(busy), httpCounts(redirecting)
	if b.Requests[counters.HTTP][counters.FullScrape][counters.Failure] != 1 || b.Faults[counters.HTTP][counters.FullScrapeBusy] != 1 ||
		r.Requests[counters.HTTP][counters.Redirect][counters.OK] != 2 {
		t.Errorf("busy %v, redirecting %v", b.Requests[counters.HTTP], r.Requests[counters.HTTP])
	}
	// The table's refusals changed nothing: the one torrent still has its one peer.
	if c, _ := store.Scrape(hash20); c.Leechers != 1 || store.Torrents() != 1 {
		t.Errorf("store after the table: %+v, %d torrents", c, store.Torrents())
	}
}

// TestRouting checks opentracker's prefix routing on paths that succeed.
func TestRouting(t *testing.T) {
	h := newTestHandler(t, Config{})
	ok := "info_hash=" + q20 + "&port=6881"
	for _, tc := range []struct {
		target string
		prefix string // of the body
	}{
		{"/announce?" + ok, "d8:complete"},
		{"/announce.php?" + ok, "d8:complete"},
		{"//announce?" + ok, "d8:complete"},
		{"/abc123/announce?" + ok, "d8:complete"},
		{"/a?" + ok, "d8:complete"},
		{"/%61nnounce?" + ok, "d8:complete"},
		{"/scrape?info_hash=" + q20, "d5:filesd20:"},
		{"/scrape.php?info_hash=" + q20, "d5:filesd20:"},
		{"/sc?info_hash=" + q20, "d5:filesd20:"},
		{"/scrape?", "d5:filesdee"},
		{"/scrape?foo=bar", "d5:filesdee"},
		{"/scrape", "d5:filesd20:"}, // full scrape
	} {
		resp := serve(h, "GET", tc.target, "", "")
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || len(body) < len(tc.prefix) || string(body[:len(tc.prefix)]) != tc.prefix {
			t.Errorf("GET %s: %d %q, want 200 %q...", tc.target, resp.StatusCode, body, tc.prefix)
		}
	}
	off := newTestHandler(t, Config{MaxFullScrapes: -1})
	resp := serve(off, "GET", "/scrape", "", "")
	if body, _ := io.ReadAll(resp.Body); string(body) != "d5:filesdee" {
		t.Errorf("full scrape turned off: %q, want an empty scrape", body)
	}
}

// announceVia runs one announce through h from remote and decodes the reply.
func announceVia(t *testing.T, h http.Handler, query, remote string) map[string]any {
	t.Helper()
	resp := serve(h, "GET", "/announce", query, remote)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("announce %q: %d %q", query, resp.StatusCode, body)
	}
	return decodeDict(t, body)
}

func TestNumWant(t *testing.T) {
	store := newTestStore(t, swarm.Config{})
	for i := range 300 {
		addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 6881)
		store.Announce(&swarm.Announce{InfoHash: hash20, Addr: addr, Left: 1}, swarm.FamilyBoth, swarm.Peers{})
	}
	h := newTestHandler(t, Config{Tracker: testTracker(t, tracker.Config{Store: store})})
	small := newTestHandler(t, Config{Tracker: testTracker(t, tracker.Config{Store: store, DefaultNumWant: 5, MaxNumWant: 10})})
	for _, tc := range []struct {
		handler http.Handler
		numwant string
		peers   int
	}{
		{h, "", 50},
		{h, "&numwant=-1", 50},
		{h, "&numwant=0", 0},
		{h, "&numwant=7", 7},
		{h, "&numwant=200", 200},
		{h, "&numwant=1000", 200},
		{h, "&numwant=99999999999999999999999", 200},
		{small, "", 5},
		{small, "&numwant=-3", 5},
		{small, "&numwant=11", 10},
	} {
		r := announceVia(t, tc.handler, "info_hash="+q20+"&port=6881"+tc.numwant, "192.0.2.1:1234")
		if got := len(r["peers"].(string)) / 6; got != tc.peers {
			t.Errorf("numwant %q: %d peers, want %d", tc.numwant, got, tc.peers)
		}
	}
}

func TestIntervals(t *testing.T) {
	query := "info_hash=" + q20 + "&port=6881"
	seen := map[int64]bool{}
	h := newTestHandler(t, Config{})
	for range 500 {
		r := announceVia(t, h, query, "")
		iv, miv := r["interval"].(int64), r["min interval"].(int64)
		if iv < 1620 || iv > 1980 || miv != iv/2 {
			t.Fatalf("default: interval %d, min interval %d; want 1800±180 and half", iv, miv)
		}
		seen[iv] = true
	}
	if len(seen) < 100 {
		t.Errorf("500 replies had only %d distinct intervals: no jitter?", len(seen))
	}
	fixed := newTestHandler(t, Config{Tracker: testTracker(t, tracker.Config{Interval: 600 * time.Second, IntervalJitter: -1, MinInterval: 60 * time.Second})})
	r := announceVia(t, fixed, query, "")
	if r["interval"].(int64) != 600 || r["min interval"].(int64) != 60 {
		t.Errorf("configured: interval %d, min interval %d; want 600, 60", r["interval"], r["min interval"])
	}
}

func TestScrapeHashes(t *testing.T) {
	store := newTestStore(t, swarm.Config{})
	var known [3]swarm.InfoHash
	for i := range known {
		known[i] = swarm.InfoHash{byte(3 - i)} // 03.., 02.., 01..
		for j := range i + 1 {
			store.Announce(&swarm.Announce{InfoHash: known[i], Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(j + 1)}), 1)}, swarm.FamilyBoth, swarm.Peers{})
		}
	}
	refusedKnown := swarm.InfoHash{0xde}
	store.Announce(&swarm.Announce{InfoHash: refusedKnown, Addr: netip.MustParseAddrPort("10.0.0.1:1")}, swarm.FamilyBoth, swarm.Peers{})
	q := func(hs ...swarm.InfoHash) string {
		var parts []string
		for _, h := range hs {
			parts = append(parts, "info_hash="+escapeAll(h[:]))
		}
		return strings.Join(parts, "&")
	}
	entry := func(h swarm.InfoHash, seeders int) string {
		return "20:" + string(h[:]) + "d8:completei" + strconv.Itoa(seeders) + "e10:downloadedi0e10:incompletei0ee"
	}
	h := newTestHandler(t, Config{Tracker: testTracker(t, tracker.Config{Store: store})})
	two := newTestHandler(t, Config{Tracker: testTracker(t, tracker.Config{Store: store}), MaxScrapeHashes: 2})
	for _, tc := range []struct {
		name    string
		handler http.Handler
		query   string
		want    string
	}{
		{"sorted, unknown left out", h, q(known[0], swarm.InfoHash{9}, known[2], known[1]),
			"d5:filesd" + entry(known[2], 3) + entry(known[1], 2) + entry(known[0], 1) + "ee"},
		{"duplicates once", h, q(known[1], known[1], known[1]), "d5:filesd" + entry(known[1], 2) + "ee"},
		{"beyond MaxScrapeHashes dropped", two, q(known[0], known[1], known[2]),
			"d5:filesd" + entry(known[1], 2) + entry(known[0], 1) + "ee"},
		{"refused left out", h, q(refusedKnown, known[0]), "d5:filesd" + entry(known[0], 1) + "ee"},
		{"no hashes", h, "", "d5:filesdee"},
	} {
		resp := serve(tc.handler, "GET", "/scrape?"+tc.query, "", "")
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != tc.want {
			t.Errorf("%s: %d %q\n want %q", tc.name, resp.StatusCode, body, tc.want)
		}
	}
}
