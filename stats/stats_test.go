package stats

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"herald/counters"
	"herald/swarm"
	"herald/tracker"
)

// add counts n requests of protocol p for action a with outcome o into
// set, and n faults why unless why is noFault.
func add(set *counters.Set, p counters.Protocol, a counters.Action, o counters.Outcome, why counters.Fault, n int) {
	for range n {
		set.Request(p, a, o)
		if why != noFault {
			set.Fault(p, why)
		}
	}
}

const noFault = counters.NumFaults

// refuse counts n requests of protocol p for action a that the tracker
// refused for r, as the frontends count them.
func refuse(set *counters.Set, p counters.Protocol, a counters.Action, r tracker.Reason, n int) {
	for range n {
		tracker.Count(set, p, a, r)
	}
}

// observe records n responses of protocol p that each took d, and no
// service time, through the UDP reader's batch call.
func observe(set *counters.Set, p counters.Protocol, d time.Duration, n int) {
	var t counters.Tally
	for range n {
		t.Add(d)
	}
	set.ObserveBatch(p, &t, 0, 0)
}

// observeService records n service times d of protocol p, and no
// response time, as observe.
func observeService(set *counters.Set, p counters.Protocol, d time.Duration, n int) {
	set.ObserveBatch(p, new(counters.Tally), d, n)
}

func hashOf(b byte) swarm.InfoHash {
	var h swarm.InfoHash
	for i := range h {
		h[i] = b
	}
	return h
}

var (
	hashA = hashOf(0x11)
	hashB = hashOf(0x22)
	hashC = hashOf(0xCC)
)

func v4(n byte) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, n}), 6881)
}
func v6(n byte) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: n}), 6881)
}

// fixtureStore holds three torrents:
//
//	A: 3 IPv4 leechers, 2 IPv4 seeders (one completed), 1 IPv6 seeder
//	B: 1 IPv4 leecher, 2 IPv6 leechers
//	C: 1 IPv6 seeder (completed)
//
// so 10 peers, 4 seeds, 3 torrents, 2 completed.
func fixtureStore(t testing.TB) *swarm.Store {
	t.Helper()
	return fixtureStoreWith(t, swarm.Config{})
}

// fixtureStoreWith is fixtureStore with the store's settings (its bounds) given.
func fixtureStoreWith(t testing.TB, cfg swarm.Config) *swarm.Store {
	t.Helper()
	store, err := swarm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	announce := func(h swarm.InfoHash, addr netip.AddrPort, left uint64, ev swarm.Event) {
		t.Helper()
		if _, _, err := store.Announce(&swarm.Announce{InfoHash: h, Addr: addr, Left: left, Event: ev, NumWant: 50}, swarm.FamilyBoth, swarm.Peers{}); err != nil {
			t.Fatalf("announce %v: %v", addr, err)
		}
	}
	for i := byte(1); i <= 3; i++ {
		announce(hashA, v4(i), 100, swarm.EventStarted)
	}
	announce(hashA, v4(4), 0, swarm.EventStarted)
	announce(hashA, v4(5), 100, swarm.EventStarted)
	announce(hashA, v4(5), 0, swarm.EventCompleted)
	announce(hashA, v6(1), 0, swarm.EventStarted)
	announce(hashB, v4(6), 5, swarm.EventStarted)
	announce(hashB, v6(2), 5, swarm.EventStarted)
	announce(hashB, v6(3), 5, swarm.EventStarted)
	announce(hashC, v6(4), 0, swarm.EventCompleted)
	return store
}

// fixtureCounters are the requests of two HTTP frontends (49136 in all,
// 41000 announces served), a UDP one (58885 datagrams) and a WebSocket one
// (1004 messages), as they would count them.
func fixtureCounters() *counters.Set {
	set := counters.New()
	const http, udp, ws = counters.HTTP, counters.UDP, counters.WS
	for _, r := range []struct {
		p   counters.Protocol
		a   counters.Action
		o   counters.Outcome
		why counters.Fault
		n   int
	}{
		{http, counters.Announce, counters.OK, noFault, 41000},
		{http, counters.Announce, counters.Failure, counters.BadRequest, 40},
		{http, counters.Scrape, counters.OK, noFault, 7450},
		{http, counters.FullScrape, counters.OK, noFault, 3},
		{http, counters.FullScrape, counters.Failure, counters.FullScrapeBusy, 1},
		{http, counters.FullScrape, counters.Error, counters.FullScrapeCut, 2},
		{http, counters.Redirect, counters.OK, noFault, 20},
		{http, counters.Invalid, counters.Failure, counters.NotFound, 60},
		{http, counters.Invalid, counters.Failure, counters.MethodNotAllowed, 10},
		{udp, counters.Connect, counters.OK, noFault, 30000},
		{udp, counters.Announce, counters.OK, noFault, 25000},
		{udp, counters.Scrape, counters.OK, noFault, 3725},
		{udp, counters.Invalid, counters.Dropped, counters.Runt, 100},
		{ws, counters.Announce, counters.OK, noFault, 1000},
	} {
		add(set, r.p, r.a, r.o, r.why, r.n)
	}
	for _, r := range []struct {
		p      counters.Protocol
		a      counters.Action
		reason tracker.Reason
		n      int
	}{
		{http, counters.Announce, tracker.NotAllowed, 498},
		{http, counters.Announce, tracker.Internal, 2},
		{http, counters.Scrape, tracker.Malformed, 50},
		{udp, counters.Announce, tracker.BadConnectionID, 30},
		{udp, counters.Announce, tracker.NotAllowed, 20},
		{udp, counters.Scrape, tracker.Malformed, 10},
		{ws, counters.Announce, tracker.NotAllowed, 3},
		{ws, counters.Invalid, tracker.RateLimited, 1},
	} {
		refuse(set, r.p, r.a, r.reason, r.n)
	}
	set.Fault(udp, counters.SendFailed)
	set.Fault(udp, counters.ReadFailed)
	set.Fault(udp, counters.ReadFailed)
	for range 40 {
		set.Event(ws, counters.Accepted)
	}
	set.Watch(ws, counters.Connections, func() int64 { return 38 })
	set.Watch(ws, counters.ConnectionLimit, func() int64 { return 1000 })
	return set
}

// testUptime is 1 h 2 min 5 s.
const testUptime = 3725 * time.Second

var testNets = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// newFixtureMonitor returns a monitor over the fixture store and
// fixtureCounters, with its clock fixed testUptime after its start.
func newFixtureMonitor(t testing.TB, store Store) *Monitor {
	t.Helper()
	m, err := New(Config{
		Sources: Sources{Store: store, Counters: fixtureCounters()},
		Nets:    testNets,
		Version: "herald 0.1-test",
	})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	m.now = func() time.Time { return now }
	m.start = now.Add(-testUptime)
	m.trackerID = 42
	return m
}

func remoteAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr()
}

// get sends one request through the monitor's handler from client.
func get(t *testing.T, m *Monitor, client, target string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.RemoteAddr = client
	rec := httptest.NewRecorder()
	m.Handler(remoteAddr).ServeHTTP(rec, req)
	return rec
}

const top10Want = "Top 10 torrents by peers:\n" +
	"\t6\t1111111111111111111111111111111111111111\n" +
	"\t3\t2222222222222222222222222222222222222222\n" +
	"\t1\tCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC\n" +
	"Top 10 torrents by seeds:\n" +
	"\t3\t1111111111111111111111111111111111111111\n" +
	"\t1\tCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC\n" +
	"Top 10 torrents by leechers:\n" +
	"\t3\t1111111111111111111111111111111111111111\n" +
	"\t3\t2222222222222222222222222222222222222222\n"

const everythingWant = `<?xml version="1.0" encoding="UTF-8"?>
<stats>
  <tracker_id>42</tracker_id>
  <version>
herald 0.1-test
  </version>
  <uptime>3725</uptime>
  <torrents>
    <count_mutex>3</count_mutex>
    <count_iterator>3</count_iterator>
  </torrents>
  <peers>
    <count>10</count>
  </peers>
  <seeds>
    <count>4</count>
  </seeds>
  <completed>
    <count>2</count>
  </completed>
  <connections>
    <tcp>
      <accept>49137</accept>
      <announce>41000</announce>
      <scrape>7450</scrape>
    </tcp>
    <udp>
      <overall>58885</overall>
      <connect>30000</connect>
      <announce>25000</announce>
      <scrape>3725</scrape>
      <missmatch>30</missmatch>
    </udp>
    <livesync>
      <count>0</count>
    </livesync>
  </connections>
  <debug>
    <renew>
      <count interval="00">1</count>
      <count interval="01">0</count>
      <count interval="02">0</count>
      <count interval="03">0</count>
      <count interval="04">0</count>
      <count interval="05">0</count>
      <count interval="06">0</count>
      <count interval="07">0</count>
      <count interval="08">0</count>
      <count interval="09">0</count>
      <count interval="10">0</count>
      <count interval="11">0</count>
      <count interval="12">0</count>
      <count interval="13">0</count>
      <count interval="14">0</count>
      <count interval="15">0</count>
      <count interval="16">0</count>
      <count interval="17">0</count>
      <count interval="18">0</count>
      <count interval="19">0</count>
      <count interval="20">0</count>
      <count interval="21">0</count>
      <count interval="22">0</count>
      <count interval="23">0</count>
      <count interval="24">0</count>
      <count interval="25">0</count>
      <count interval="26">0</count>
      <count interval="27">0</count>
      <count interval="28">0</count>
      <count interval="29">0</count>
      <count interval="30">0</count>
      <count interval="31">0</count>
      <count interval="32">0</count>
      <count interval="33">0</count>
      <count interval="34">0</count>
      <count interval="35">0</count>
      <count interval="36">0</count>
      <count interval="37">0</count>
      <count interval="38">0</count>
      <count interval="39">0</count>
      <count interval="40">0</count>
      <count interval="41">0</count>
      <count interval="42">0</count>
      <count interval="43">0</count>
      <count interval="44">0</count>
    </renew>
    <http_error>
      <count code="302 Redirect">20</count>
      <count code="400 Parse Error">40</count>
      <count code="400 Invalid Parameter">0</count>
      <count code="400 Invalid Parameter (compact=0)">0</count>
      <count code="400 Not Modest">0</count>
      <count code="402 Payment Required">0</count>
      <count code="403 Access Denied">0</count>
      <count code="404 Not found">60</count>
      <count code="500 Internal Server Error">2</count>
    </http_error>
  </debug>
  <herald>
    <protocol name="udp">
      <requests action="connect" outcome="ok">30000</requests>
      <requests action="announce" outcome="ok">25000</requests>
      <requests action="announce" outcome="failure">50</requests>
      <requests action="scrape" outcome="ok">3725</requests>
      <requests action="scrape" outcome="failure">10</requests>
      <requests action="invalid" outcome="dropped">100</requests>
      <errors reason="malformed">10</errors>
      <errors reason="not_allowed">20</errors>
      <errors reason="bad_connection_id">30</errors>
      <errors reason="dropped">100</errors>
      <errors reason="send_failed">1</errors>
      <errors reason="read_failed">2</errors>
    </protocol>
    <protocol name="http">
      <requests action="announce" outcome="ok">41000</requests>
      <requests action="announce" outcome="failure">538</requests>
      <requests action="announce" outcome="error">2</requests>
      <requests action="scrape" outcome="ok">7450</requests>
      <requests action="scrape" outcome="failure">50</requests>
      <requests action="full_scrape" outcome="ok">3</requests>
      <requests action="full_scrape" outcome="failure">1</requests>
      <requests action="full_scrape" outcome="error">2</requests>
      <requests action="redirect" outcome="ok">20</requests>
      <requests action="invalid" outcome="failure">70</requests>
      <errors reason="malformed">50</errors>
      <errors reason="not_allowed">498</errors>
      <errors reason="internal">2</errors>
      <errors reason="bad_request">40</errors>
      <errors reason="not_found">60</errors>
      <errors reason="method_not_allowed">10</errors>
      <errors reason="full_scrape_busy">1</errors>
      <errors reason="full_scrape_cut">2</errors>
      <connections_accepted>0</connections_accepted>
      <connections_refused>0</connections_refused>
      <connections>0</connections>
    </protocol>
    <protocol name="ws">
      <requests action="announce" outcome="ok">1000</requests>
      <requests action="announce" outcome="failure">3</requests>
      <requests action="invalid" outcome="rate_limited">1</requests>
      <errors reason="not_allowed">3</errors>
      <errors reason="rate_limited">1</errors>
      <connections_accepted>40</connections_accepted>
      <connections_refused>0</connections_refused>
      <offers_relayed>0</offers_relayed>
      <answers_relayed>0</answers_relayed>
      <slow_readers_closed>0</slow_readers_closed>
      <connections>38</connections>
      <connections_limit>1000</connections_limit>
      <torrents>0</torrents>
      <peers>0</peers>
    </protocol>
  </herald>
</stats>`

// TestModes checks every mode's bytes against the fixture. HTTP requests
// are the fixed 49136 plus the stats request itself; UDP datagrams 58885;
// conn adds the 1004 WebSocket messages.
func TestModes(t *testing.T) {
	store := fixtureStore(t)
	for _, tc := range []struct{ query, want string }{
		{"", "10\n4\nopentracker serving 3 torrents\nopentracker"},
		{"?mode=peer", "10\n4\nopentracker serving 3 torrents\nopentracker"},
		{"?mode=torr", "3\n0\nopentracker serving 3 torrents\nopentracker"},
		{"?mode=conn", "109026\n97000\n3725 seconds (1 hours)\nopentracker connections, 29 conns/s :: 26 success/s."},
		{"?mode=udp4", "58885\n55000\n3725 seconds (1 hours)\nopentracker udp4 stats, 15 conns/s :: 14 success/s."},
		{"?mode=tcp4", "49137\n41000\n3725 seconds (1 hours)\nopentracker tcp4 stats, 13 conns/s :: 11 success/s."},
		{"?mode=scrp", "7450\n3725\n3725 seconds (1 hours)\nopentracker scrape stats, 3 scrape/s (tcp and udp)"},
		{"?mode=fscr", "3000\n0\n3725 seconds (1 hours)\nopentracker full scrape stats, 0 conns/s :: 0 bytes/s."},
		{"?mode=completed", "2\n0\n3725 seconds (1 hours)\nopentracker, 2 completed/h."},
		{"?mode=top10", top10Want},
		{"?mode=top100", strings.ReplaceAll(top10Want, "Top 10", "Top 100")},
		{"?mode=everything", everythingWant},
		{"?mode=version", "herald 0.1-test\n"},
		// The fixture's peer 10.0.0.5 announced twice at once.
		{"?mode=renew", "00 1\n01 0\n02 0\n03 0\n04 0\n05 0\n06 0\n07 0\n08 0\n" +
			"09 0\n10 0\n11 0\n12 0\n13 0\n14 0\n15 0\n16 0\n17 0\n" +
			"18 0\n19 0\n20 0\n21 0\n22 0\n23 0\n24 0\n25 0\n26 0\n" +
			"27 0\n28 0\n29 0\n30 0\n31 0\n32 0\n33 0\n34 0\n35 0\n" +
			"36 0\n37 0\n38 0\n39 0\n40 0\n41 0\n42 0\n43 0\n44 0\n"},
		{"?mode=busy", "13\n15\n3725 seconds (1 hours)\nherald busy, 13 http req/s :: 15 udp req/s."},
		{"?format=txt&mode=conn&foo", "109026\n97000\n3725 seconds (1 hours)\nopentracker connections, 29 conns/s :: 26 success/s."},
		{"?mode=%70eer", "10\n4\nopentracker serving 3 torrents\nopentracker"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			m := newFixtureMonitor(t, store)
			rec := get(t, m, "127.0.0.1:40000", "/stats"+tc.query)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d, body %q", rec.Code, rec.Body)
			}
			if got := rec.Body.String(); got != tc.want {
				t.Errorf("body:\n%q\nwant:\n%q", got, tc.want)
			}
		})
	}
}

func TestTopKeepsTheBusiestInOrder(t *testing.T) {
	store, err := swarm.New(swarm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	// Torrent i has i leechers, so the top 10 by peers are 30 down to 21.
	for i := 1; i <= 30; i++ {
		for p := 1; p <= i; p++ {
			a := &swarm.Announce{InfoHash: hashOf(byte(i)), Addr: v4(byte(p)), Left: 1, NumWant: 1}
			if _, _, err := store.Announce(a, swarm.FamilyV4, swarm.Peers{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	m := newFixtureMonitor(t, store)
	top := m.Top(10)
	if len(top.ByPeers) != 10 || len(top.BySeeders) != 0 || len(top.ByLeechers) != 10 {
		t.Fatalf("lengths %d %d %d, want 10 0 10", len(top.ByPeers), len(top.BySeeders), len(top.ByLeechers))
	}
	for i, tc := range top.ByPeers {
		if want := hashOf(byte(30 - i)); tc.InfoHash != want || int(tc.Leechers) != 30-i {
			t.Errorf("rank %d: %x with %d leechers, want %x with %d", i, tc.InfoHash[:2], tc.Leechers, want[:2], 30-i)
		}
	}
}

func TestStatsRefusals(t *testing.T) {
	store := fixtureStore(t)
	for _, tc := range []struct {
		name, client, target string
		status               int
		bodyHas              string
	}{
		{"info_hash guard", "127.0.0.1:1", "/stats?info_hash=%11%11%11%11%11%11%11%11%11%11%11%11%11%11%11%11%11%11%11%11&port=1", 400, "not an announce URL"},
		{"info_hash after mode", "127.0.0.1:1", "/stats?mode=peer&info_hash=x", 400, "not an announce URL"},
		{"unknown mode lists modes", "127.0.0.1:1", "/stats?mode=woodpeckers", 400, "peer conn scrp udp4 tcp4 torr fscr completed top10 top100 everything version busy herr tpbs statedump s24s renew"},
		{"outside the stats nets", "192.0.2.7:1", "/stats", 403, "access denied"},
		{"metrics outside the stats nets", "192.0.2.7:1", "/metrics", 403, "access denied"},
		{"dashboard outside the stats nets", "[2001:db8::1]:1", "/dashboard", 403, "access denied"},
		{"IPv6 loopback allowed", "[::1]:1", "/stats?mode=torr", 200, "opentracker serving 3 torrents"},
		{"IPv4-mapped client allowed", "[::ffff:127.0.0.1]:1", "/stats?mode=torr", 200, "opentracker serving 3 torrents"},
		{"unknown path", "127.0.0.1:1", "/statsx", 404, "not found"},
		{"unknown asset", "127.0.0.1:1", "/dashboard/../../etc/passwd", 404, "not found"},
		{"dashboard with a slash", "127.0.0.1:1", "/dashboard/", 301, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newFixtureMonitor(t, store)
			rec := get(t, m, tc.client, tc.target)
			if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.bodyHas) {
				t.Errorf("%s from %s: %d %q, want %d containing %q", tc.target, tc.client, rec.Code, rec.Body, tc.status, tc.bodyHas)
			}
		})
	}
}

// TestRateLimitedDatagramsCount: opentracker counts every datagram it
// receives as a UDP connection; rate-limited ones are received too, and are
// errors (dropped connects, error packets for the rest).
func TestRateLimitedDatagramsCount(t *testing.T) {
	set := counters.New()
	add(set, counters.UDP, counters.Connect, counters.OK, noFault, 10)
	add(set, counters.UDP, counters.Announce, counters.OK, noFault, 4)
	refuse(set, counters.UDP, counters.Connect, tracker.RateLimited, 2)
	refuse(set, counters.UDP, counters.Announce, tracker.RateLimited, 4)
	m, err := New(Config{
		Sources: Sources{Store: fixtureStore(t), Counters: set},
		Nets:    testNets,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := get(t, m, "127.0.0.1:1", "/stats?mode=udp4").Body.String(); !strings.HasPrefix(got, "20\n14\n") {
		t.Errorf("udp4: %q, want 20 datagrams, 14 successes", got)
	}
	if s := m.Snapshot(); s.Errors(counters.UDP) != 6 {
		t.Errorf("UDP errors %d, want the 6 rate-limited datagrams", s.Errors(counters.UDP))
	}
}

// TestDeniedCountsInEverything: a refused client shows in opentracker's
// "403 Access Denied" counter and in the TCP accepts.
func TestDeniedCountsInEverything(t *testing.T) {
	m := newFixtureMonitor(t, fixtureStore(t))
	get(t, m, "192.0.2.7:1", "/stats")
	body := get(t, m, "127.0.0.1:1", "/stats?mode=everything").Body.String()
	for _, want := range []string{`<count code="403 Access Denied">1</count>`, "<accept>49138</accept>"} {
		if !strings.Contains(body, want) {
			t.Errorf("everything lacks %s:\n%s", want, body)
		}
	}
}

func TestStatsPathIsConfigurable(t *testing.T) {
	m, err := New(Config{Sources: Sources{Store: fixtureStore(t)}, Nets: testNets, StatsPath: "s3cr3t"})
	if err != nil {
		t.Fatal(err)
	}
	h := m.Handler(remoteAddr)
	for target, want := range map[string]int{"/s3cr3t?mode=torr": 200, "/stats?mode=torr": 404, "//s3cr3t": 200} {
		req := httptest.NewRequest(http.MethodGet, target, nil)
		req.RemoteAddr = "127.0.0.1:9"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("%s: %d, want %d", target, rec.Code, want)
		}
	}
}

// TestServedOverHTTP boots a real server on 127.0.0.1:0 and reads /stats
// with net/http's client, as MRTG's fetcher would.
func TestServedOverHTTP(t *testing.T) {
	m := newFixtureMonitor(t, fixtureStore(t))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: m.Handler(remoteAddr), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != http.ErrServerClosed {
			t.Errorf("serve: %v", err)
		}
	})
	res, err := http.Get("http://" + ln.Addr().String() + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/plain; charset=utf-8" || !bytes.Equal(body, []byte("10\n4\nopentracker serving 3 torrents\nopentracker")) {
		t.Errorf("%d %q %q", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	if res.ContentLength != int64(len(body)) {
		t.Errorf("Content-Length %d, body %d bytes", res.ContentLength, len(body))
	}
}

func TestParseQuery(t *testing.T) {
	for _, tc := range []struct {
		query string
		mode  Mode
		err   error
	}{
		{"", ModePeer, nil},
		{"mode=top100", ModeTop100, nil},
		{"mode=conn&mode=udp4", ModeUDP4, nil},
		{"mode=nope&mode=tcp4", ModeTCP4, nil},
		{"mode=tcp4&mode=nope", 0, ErrUnknownMode},
		{"mode=", 0, ErrUnknownMode},
		{"mode", 0, ErrUnknownMode},
		{"MODE=conn", ModePeer, nil},
		{"info_hash=", 0, ErrInfoHash},
		{"info%5Fhash=abc", 0, ErrInfoHash},
		{"%zz=1&mode=fscr", ModeFullScrape, nil},
		{"mode=%zz", 0, ErrUnknownMode},
		{"&&mode=busy&", ModeBusy, nil},
	} {
		mode, err := ParseQuery(tc.query)
		if mode != tc.mode || (tc.err == nil) != (err == nil) || (tc.err != nil && !errors.Is(err, tc.err)) {
			t.Errorf("ParseQuery(%q) = %v, %v; want %v, %v", tc.query, mode, err, tc.mode, tc.err)
		}
	}
}
