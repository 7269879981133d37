package udptracker

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"herald/accounting"

	"herald/counters"
	"herald/internal/servetest"
	"herald/ratelimit"
	"herald/swarm"
	"herald/tracker"
)

var (
	testHash   = swarm.InfoHash{0xaa, 0xbb, 0xcc}
	testClient = netip.MustParseAddrPort("192.0.2.10:40000")
	testNow    = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC).Unix()
)

// testTracker returns a tracker with the rules of cfg, over a fresh store
// unless cfg names one.
func testTracker(t testing.TB, cfg tracker.Config) *tracker.Tracker {
	t.Helper()
	if cfg.Store == nil {
		store, err := swarm.New(swarm.Config{})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Store = store
	}
	tr, err := tracker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func newTestHandler(t testing.TB, cfg Config) *handler {
	t.Helper()
	if cfg.Tracker == nil {
		cfg.Tracker = testTracker(t, tracker.Config{})
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	return newHandler(&cfg, newConnIDs(cfg.ConnIDSecret, cfg.KeyRotation))
}

func announcePacket(id uint64, mutate func(*AnnounceRequest)) []byte {
	r := &AnnounceRequest{ConnectionID: id, TransactionID: 0x01020304, InfoHash: testHash, Left: 100, NumWant: -1, Port: 6881}
	if mutate != nil {
		mutate(r)
	}
	return AppendAnnounceRequest(nil, r)
}

// outcome is what a client sees: no reply, an error packet, or a reply of
// some action.
func outcome(t testing.TB, reply []byte) string {
	t.Helper()
	if len(reply) == 0 {
		return "drop"
	}
	if e, err := ParseErrorResponse(reply); err == nil {
		return "error: " + e.Message
	}
	return fmt.Sprintf("action %d", binary.BigEndian.Uint32(reply))
}

// TestMalformedPackets is the policy table of doc.go: every malformed
// request and the answer it gets.
func TestMalformedPackets(t *testing.T) {
	h := newTestHandler(t, Config{})
	id := h.ids.issue(testClient, testNow)
	valid := announcePacket(id, nil)
	connect := AppendConnectRequest(nil, ConnectRequest{TransactionID: 5})
	scrape := func(n int) []byte {
		return AppendScrapeRequest(nil, &ScrapeRequest{ConnectionID: id, TransactionID: 6, InfoHashes: make([]swarm.InfoHash, n)})
	}
	withAction := func(p []byte, a Action) []byte {
		p = bytes.Clone(p)
		binary.BigEndian.PutUint32(p[8:], uint32(a))
		return p
	}
	ownError := AppendErrorResponse(nil, ErrorResponse{TransactionID: 1, Message: tracker.BadConnectionID.Text()})
	tests := []struct {
		name string
		pkt  []byte
		want string
	}{
		{"empty datagram", nil, "drop"},
		{"runt of 15 bytes", connect[:15], "drop"},
		{"connect with wrong protocol id", append([]byte{0, 0, 0x04, 0x17, 0x27, 0x10, 0x19, 0x81}, connect[8:]...), "drop"},
		{"connect", connect, "action 0"},
		{"connect with trailing bytes", append(bytes.Clone(connect), 1, 2, 3), "action 0"},
		{"unknown action 4", withAction(valid, 4), "drop"},
		{"unknown action 0xffffffff", withAction(valid, 0xffffffff), "drop"},
		{"error packet sent to us (action 3)", withAction(valid, ActionError), "drop"},
		{"our own error packet bounced back", ownError, "drop"},
		{"announce with wrong connection id", announcePacket(id^0x10, nil), "error: " + tracker.BadConnectionID.Text()},
		{"announce with the protocol id as connection id", announcePacket(ProtocolID, nil), "error: " + tracker.BadConnectionID.Text()},
		{"16-byte announce with wrong connection id", announcePacket(1, nil)[:16], "error: connecti"},
		{"announce of 97 bytes", valid[:97], "error: " + errShortAnnounce.Text},
		{"announce of 16 bytes", valid[:16], "error: " + errShortAnnounce.Text},
		{"announce of 98 bytes", valid[:98], "action 1"},
		{"announce with URLData option", announcePacket(id, func(r *AnnounceRequest) { r.URLData = []byte("/announce?k=v") }), "action 1"},
		{"announce with option running past the end", append(bytes.Clone(valid), optionURLData, 50, '/'), "action 1"},
		{"announce with option type but no length", append(bytes.Clone(valid), 0x7f), "action 1"},
		{"announce with garbage options", append(bytes.Clone(valid), bytes.Repeat([]byte{0xff}, 900)...), "action 1"},
		{"announce with numwant 2^31-1", announcePacket(id, func(r *AnnounceRequest) { r.NumWant = 1<<31 - 1 }), "action 1"},
		{"announce with numwant -2^31", announcePacket(id, func(r *AnnounceRequest) { r.NumWant = -1 << 31 }), "action 1"},
		{"announce with event 99", announcePacket(id, func(r *AnnounceRequest) { r.Event = 99 }), "action 1"},
		{"announce with port 0", announcePacket(id, func(r *AnnounceRequest) { r.Port = 0 }), "error: " + tracker.BadAddress.Text()},
		{"scrape of no hashes", scrape(0), "action 2"},
		{"scrape of 74 hashes", scrape(MaxScrapeHashes), "action 2"},
		{"scrape of 75 hashes", scrape(MaxScrapeHashes + 1), "error: " + errTooManyHashes.Text},
		{"scrape of 1000 hashes", scrape(1000), "error: " + errTooManyHashes.Text},
		{"scrape with a partial hash", scrape(2)[:16+39], "error: " + errScrapeLength.Text},
		{"scrape with wrong connection id", withID(scrape(3), 7), "error: " + tracker.BadConnectionID.Text()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reply := h.serve(nil, tc.pkt, testClient, testNow)
			if got := outcome(t, reply); got != tc.want {
				t.Fatalf("answer %q, want %q", got, tc.want)
			}
			if len(reply) > 0 && binary.BigEndian.Uint32(reply[4:]) != binary.BigEndian.Uint32(tc.pkt[12:]) {
				t.Errorf("transaction id %#x, want the request's %#x", reply[4:8], tc.pkt[12:16])
			}
			if strings.HasPrefix(tc.want, "error: conn") && len(reply) > len(tc.pkt) {
				t.Errorf("unauthenticated error reply of %d bytes to a request of %d", len(reply), len(tc.pkt))
			}
		})
	}
}

func withID(p []byte, id uint64) []byte {
	binary.BigEndian.PutUint64(p, id)
	return p
}

// Two trackers given each other's address as a client must not keep
// answering each other: our replies, fed back to a tracker, die out. With
// the default interval no reply draws an answer at all; with an interval
// of 1 or 2 s an announce reply reads as a request and draws one
// (unauthenticated, so short) error packet, which draws nothing.
func TestRepliesDrawNoReply(t *testing.T) {
	for _, cfg := range []tracker.Config{{}, {Interval: 2 * time.Second, IntervalJitter: -1}} {
		a, b := newTestHandler(t, Config{Tracker: testTracker(t, cfg)}), newTestHandler(t, Config{Tracker: testTracker(t, cfg)})
		id := a.ids.issue(testClient, testNow)
		for _, req := range [][]byte{
			AppendConnectRequest(nil, ConnectRequest{TransactionID: 2}),
			announcePacket(id, nil),
			announcePacket(id^1, nil),
			announcePacket(id, nil)[:60],
			AppendScrapeRequest(nil, &ScrapeRequest{ConnectionID: id, InfoHashes: make([]swarm.InfoHash, 3)}),
			AppendScrapeRequest(nil, &ScrapeRequest{ConnectionID: id, InfoHashes: make([]swarm.InfoHash, 80)}),
		} {
			msg := a.serve(nil, req, testClient, testNow)
			bounces := 0
			for len(msg) > 0 && bounces < 5 {
				a, b = b, a
				if msg = a.serve(nil, msg, testClient, testNow); len(msg) > 0 {
					bounces++
				}
			}
			limit := 0
			if cfg.Interval == 2*time.Second && binary.BigEndian.Uint32(req[8:]) == uint32(ActionAnnounce) {
				limit = 1
			}
			if bounces > limit {
				t.Errorf("interval %v: the reply to %q kept %d answers going", cfg.Interval, outcome(t, a.serve(nil, req, testClient, testNow)), bounces)
			}
		}
	}
}

func TestAnnounceURLDataIsExposed(t *testing.T) {
	h := newTestHandler(t, Config{})
	id := h.ids.issue(testClient, testNow)
	pkt := announcePacket(id, func(r *AnnounceRequest) { r.URLData = []byte("/announce?passkey=s3cr3t&x=1") })
	if got := outcome(t, h.serve(nil, pkt, testClient, testNow)); got != "action 1" {
		t.Fatalf("announce answered %q", got)
	}
	if p, q := string(h.announce.Path()), string(h.announce.Query()); p != "/announce" || q != "passkey=s3cr3t&x=1" {
		t.Fatalf("path %q query %q", p, q)
	}
}

func TestParseOptions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		options []byte
		want    string
		err     error
	}{
		{"none", nil, "", nil},
		{"one URLData", []byte{2, 4, '/', 'a', 'n', 'n'}, "/ann", nil},
		{"concatenated", []byte{2, 2, '/', 'a', 1, 1, 2, 3, 'n', 'n', 'o', 0}, "/anno", nil},
		{"stops at EndOfOptions", []byte{2, 1, '/', 0, 2, 1, 'x'}, "/", nil},
		{"skips unknown options", []byte{0x80, 2, 'z', 'z', 2, 1, '/'}, "/", nil},
		{"empty URLData", []byte{2, 0, 2, 1, '/'}, "/", nil},
		{"length past the end", []byte{2, 1, '/', 2, 9, 'a'}, "/", ErrOptions},
		{"type without length", []byte{2, 1, '/', 2}, "/", ErrOptions},
	} {
		got, err := ParseOptions(tc.options, nil)
		if string(got) != tc.want || err != tc.err {
			t.Errorf("%s: %q, %v; want %q, %v", tc.name, got, err, tc.want, tc.err)
		}
	}
	long := bytes.Repeat([]byte("p"), 700)
	if got, err := ParseOptions(AppendOptions(nil, long), nil); !bytes.Equal(got, long) || err != nil {
		t.Fatalf("700 bytes of URLData came back as %d bytes, %v", len(got), err)
	}
}

func TestNumWant(t *testing.T) {
	store, _ := swarm.New(swarm.Config{MaxNumWant: 1000})
	for i := range 300 {
		others := []netip.AddrPort{
			netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 1000),
			netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(i >> 8), 15: byte(i)}), 1000),
		}
		for _, a := range others {
			if _, _, err := store.Announce(&swarm.Announce{InfoHash: testHash, Addr: a, Left: 1}, swarm.FamilyBoth, swarm.Peers{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	h := newTestHandler(t, Config{Tracker: testTracker(t, tracker.Config{Store: store})})
	v6Client := netip.MustParseAddrPort("[2001:db8:1::1]:5000")
	for _, tc := range []struct {
		numWant int32
		client  netip.AddrPort
		want    int
	}{
		{-1, testClient, tracker.DefaultNumWant},
		{0, testClient, tracker.DefaultNumWant},
		{-7, testClient, tracker.DefaultNumWant},
		{10, testClient, 10},
		{250, testClient, DefaultMaxPeers4},
		{1<<31 - 1, testClient, DefaultMaxPeers4},
		{-1, v6Client, tracker.DefaultNumWant},
		{100, v6Client, DefaultMaxPeers6},
	} {
		id := h.ids.issue(tc.client, testNow)
		reply := h.serve(nil, announcePacket(id, func(r *AnnounceRequest) { r.NumWant = tc.numWant }), tc.client, testNow)
		var resp AnnounceResponse
		if err := ParseAnnounceResponse(reply, &resp); err != nil {
			t.Fatalf("numwant %d: %v (%s)", tc.numWant, err, outcome(t, reply))
		}
		size := swarm.PeerLen4
		if tc.client.Addr().Is6() {
			size = swarm.PeerLen6
		}
		if len(resp.Peers)%size != 0 || len(resp.Peers)/size != tc.want {
			t.Errorf("numwant %d from %v: %d bytes of peers, want %d peers of %d bytes", tc.numWant, tc.client, len(resp.Peers), tc.want, size)
		}
	}
}

func TestAnnounceIPField(t *testing.T) {
	claimed := netip.MustParseAddr("198.51.100.9")
	for _, allow := range []bool{false, true} {
		h := newTestHandler(t, Config{Tracker: testTracker(t, tracker.Config{AllowIPField: allow})})
		id := h.ids.issue(testClient, testNow)
		h.serve(nil, announcePacket(id, func(r *AnnounceRequest) { r.IP = claimed }), testClient, testNow)
		other := netip.MustParseAddrPort("192.0.2.99:1")
		reply := h.serve(nil, announcePacket(h.ids.issue(other, testNow), nil), other, testNow)
		var resp AnnounceResponse
		if err := ParseAnnounceResponse(reply, &resp); err != nil || len(resp.Peers) != swarm.PeerLen4 {
			t.Fatalf("allow=%v: %v, %d bytes of peers", allow, err, len(resp.Peers))
		}
		got := netip.AddrFrom4([4]byte(resp.Peers))
		want := testClient.Addr()
		if allow {
			want = claimed
		}
		if got != want {
			t.Errorf("AllowIPField=%v: peer listed as %v, want %v", allow, got, want)
		}
	}
}

func TestIntervalJitter(t *testing.T) {
	h := newTestHandler(t, Config{})
	id := h.ids.issue(testClient, testNow)
	seen := map[uint32]bool{}
	for range 200 {
		var resp AnnounceResponse
		if err := ParseAnnounceResponse(h.serve(nil, announcePacket(id, nil), testClient, testNow), &resp); err != nil {
			t.Fatal(err)
		}
		if resp.Interval < 1620 || resp.Interval > 1980 {
			t.Fatalf("interval %d outside 1800±180", resp.Interval)
		}
		seen[resp.Interval] = true
	}
	if len(seen) < 50 {
		t.Errorf("only %d distinct intervals in 200 replies: jitter is not random", len(seen))
	}
	fixed := newTestHandler(t, Config{Tracker: testTracker(t, tracker.Config{Interval: 15 * time.Minute, IntervalJitter: -1})})
	var resp AnnounceResponse
	ParseAnnounceResponse(fixed.serve(nil, announcePacket(fixed.ids.issue(testClient, testNow), nil), testClient, testNow), &resp)
	if resp.Interval != 900 {
		t.Errorf("interval %d without jitter, want 900", resp.Interval)
	}
}

func TestStoreErrorBecomesErrorPacket(t *testing.T) {
	store, _ := swarm.New(swarm.Config{MaxTorrents: 1})
	h := newTestHandler(t, Config{Tracker: testTracker(t, tracker.Config{Store: store})})
	id := h.ids.issue(testClient, testNow)
	if got := outcome(t, h.serve(nil, announcePacket(id, nil), testClient, testNow)); got != "action 1" {
		t.Fatalf("first torrent: %s", got)
	}
	got := outcome(t, h.serve(nil, announcePacket(id, func(r *AnnounceRequest) { r.InfoHash[0]++ }), testClient, testNow))
	if want := "error: " + tracker.TorrentLimit.Text(); got != want {
		t.Fatalf("second torrent: %q, want %q", got, want)
	}
	if got := h.counts.Read().Refusals[counters.UDP][tracker.TorrentLimit]; got != 1 {
		t.Errorf("torrent limit refusals counted %d, want 1", got)
	}
}

func TestConfigRejectsNonsense(t *testing.T) {
	tr := testTracker(t, tracker.Config{})
	for _, cfg := range []Config{
		{},
		{Tracker: tr, MaxPeers4: 20000},
		{Tracker: tr, KeyRotation: time.Minute},
		{Tracker: tr, MaxPeers6: -1},
	} {
		if _, err := cfg.withDefaults(); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}

// The request path allocates nothing: parse, connection id check, store
// and reply, for every kind of request.
func TestServeAllocatesNothing(t *testing.T) {
	h, pkts := benchSetup(t)
	dst := make([]byte, 0, maxReplyLen(h.cfg))
	for name, p := range pkts {
		if n := testing.AllocsPerRun(1000, func() { h.serve(dst, p.pkt, p.from, testNow) }); n != 0 {
			t.Errorf("%s: %v allocations per request", name, n)
		}
	}
}

type benchPacket struct {
	pkt  []byte
	from netip.AddrPort
}

// benchStore is a store with one torrent of 100 IPv4 and 100 IPv6 peers,
// half of them seeders.
func benchStore(t testing.TB) *swarm.Store {
	store, err := swarm.New(swarm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		for _, a := range []netip.AddrPort{
			netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), 6881),
			netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)}), 6881),
		} {
			if _, _, err := store.Announce(&swarm.Announce{InfoHash: testHash, Addr: a, Left: uint64(i % 2)}, swarm.FamilyBoth, swarm.Peers{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return store
}

// benchSetup returns a handler over benchStore and one request of each
// kind.
func benchSetup(t testing.TB) (*handler, map[string]benchPacket) {
	h := newTestHandler(t, Config{Tracker: testTracker(t, tracker.Config{Store: benchStore(t)})})
	v6 := netip.MustParseAddrPort("[2001:db8::10]:40000")
	id4, id6 := h.ids.issue(testClient, testNow), h.ids.issue(v6, testNow)
	scrape := &ScrapeRequest{ConnectionID: id4, TransactionID: 3, InfoHashes: []swarm.InfoHash{testHash, {1}, {2}}}
	return h, map[string]benchPacket{
		"connect":           {AppendConnectRequest(nil, ConnectRequest{TransactionID: 1}), testClient},
		"announce IPv4":     {announcePacket(id4, nil), testClient},
		"announce IPv6":     {announcePacket(id6, nil), v6},
		"announce BEP 41":   {announcePacket(id4, func(r *AnnounceRequest) { r.URLData = []byte("/announce?passkey=abc") }), testClient},
		"scrape":            {AppendScrapeRequest(nil, scrape), testClient},
		"bad connection id": {announcePacket(id4^1<<40, nil), testClient},
	}
}

func BenchmarkServe(b *testing.B) {
	h, pkts := benchSetup(b)
	dst := make([]byte, 0, maxReplyLen(h.cfg))
	for _, name := range []string{"connect", "announce IPv4", "announce IPv6", "announce BEP 41", "scrape", "bad connection id"} {
		p := pkts[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			defer reportCPU(b)()
			for b.Loop() {
				if len(h.serve(dst, p.pkt, p.from, testNow)) == 0 {
					b.Fatal("no reply")
				}
			}
		})
	}
}

// Issue 10: over its rate limit a client's announces and scrapes get an
// error packet. Issue 14 item 4: its connects are answered all the same,
// since a connect's source is unproven and must not charge the limit.
func TestAdmitOverLimit(t *testing.T) {
	limited := true
	h := newTestHandler(t, Config{Tracker: testTracker(t, tracker.Config{Admit: func(netip.Addr, time.Time) bool { return !limited }})})
	id := h.ids.issue(testClient, testNow)
	if got := outcome(t, h.serve(nil, AppendConnectRequest(nil, ConnectRequest{TransactionID: 1}), testClient, testNow)); got != "action 0" {
		t.Fatalf("connect over the client's limit: %s, want a connect reply", got)
	}
	out := h.serve(nil, announcePacket(id, nil), testClient, testNow)
	if e, err := ParseErrorResponse(out); err != nil || e.Message != tracker.RateLimited.Text() {
		t.Fatalf("announce over the limit: %x (%v), want the rate-limit error", out, err)
	}
	limited = false
	if out := h.serve(nil, announcePacket(id, nil), testClient, testNow); len(out) < announceResponseHeaderLen || binary.BigEndian.Uint32(out) != uint32(ActionAnnounce) {
		t.Fatalf("announce under the limit: %x", out)
	}
	if got := h.counts.Read().Requests[counters.UDP][counters.Announce][counters.RateLimited]; got != 1 {
		t.Fatalf("rate limited count %d, want 1", got)
	}
}

// Issue 14 item 4: connects spoofed from a victim's address, far beyond
// its rate limit, leave the victim's own announces served: only requests
// whose connection id proves the address charge the per-client limit.
func TestSpoofedConnectsLockNobodyOutIssue14(t *testing.T) {
	limiter, err := ratelimit.New(ratelimit.Config{Rate: 1, Burst: 5})
	if err != nil {
		t.Fatal(err)
	}
	h := newTestHandler(t, Config{Tracker: testTracker(t, tracker.Config{Admit: limiter.Allow})})
	id := h.ids.issue(testClient, testNow)
	for range 50 {
		h.serve(nil, AppendConnectRequest(nil, ConnectRequest{TransactionID: 1}), testClient, testNow)
	}
	if got := outcome(t, h.serve(nil, announcePacket(id, nil), testClient, testNow)); got != "action 1" {
		t.Fatalf("the victim's announce after 50 spoofed connects: %s, want an announce reply", got)
	}
}

// Issue 14 item 4: connects are bounded for all clients together, each
// socket taking its share of tracker.Config.ConnectRate per second.
func TestConnectBoundIssue14(t *testing.T) {
	h := newTestHandler(t, Config{Sockets: 2, Tracker: testTracker(t, tracker.Config{ConnectRate: 6})})
	connect := AppendConnectRequest(nil, ConnectRequest{TransactionID: 1})
	for i, want := range []string{"action 0", "action 0", "action 0", "drop"} {
		from := netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), 1000)
		if got := outcome(t, h.serve(nil, connect, from, testNow)); got != want {
			t.Fatalf("connect %d of one second on one of two sockets: %s, want %s", i+1, got, want)
		}
	}
	if got := outcome(t, h.serve(nil, connect, testClient, testNow+1)); got != "action 0" {
		t.Fatalf("connect in the next second: %s", got)
	}
	if n := h.counts.Read().Requests[counters.UDP][counters.Connect][counters.RateLimited]; n != 1 {
		t.Fatalf("rate limited count %d, want 1", n)
	}
}

// Issue 14 item 11: an announce for port 0, or claiming (by the IP field) a
// multicast, broadcast or unspecified address, is refused with an error
// packet and never handed to another peer, as over HTTP.
func TestAnnounceOfUnreachablePeerRefused(t *testing.T) {
	store, err := swarm.New(swarm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	h := newTestHandler(t, Config{Tracker: testTracker(t, tracker.Config{Store: store, AllowIPField: true})})
	for _, tc := range []struct {
		name string
		from netip.AddrPort
		mut  func(*AnnounceRequest)
	}{
		{"port 0", testClient, func(r *AnnounceRequest) { r.Port = 0 }},
		{"multicast", testClient, func(r *AnnounceRequest) { r.IP = netip.MustParseAddr("239.1.2.3") }},
		{"broadcast", testClient, func(r *AnnounceRequest) { r.IP = netip.MustParseAddr("255.255.255.255") }},
		{"IPv6 multicast", netip.MustParseAddrPort("[ff02::1]:6881"), nil},
		{"IPv6 unspecified", netip.MustParseAddrPort("[::]:6881"), nil},
	} {
		got := outcome(t, h.serve(nil, announcePacket(h.ids.issue(tc.from, testNow), tc.mut), tc.from, testNow))
		if want := "error: " + tracker.BadAddress.Text(); got != want {
			t.Errorf("%s: %q, want %q", tc.name, got, want)
		}
	}
	other := netip.MustParseAddrPort("192.0.2.99:1")
	var resp AnnounceResponse
	if err := ParseAnnounceResponse(h.serve(nil, announcePacket(h.ids.issue(other, testNow), nil), other, testNow), &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Leechers != 1 || len(resp.Peers) != 0 {
		t.Errorf("another peer sees %d leechers and %d peer bytes, want only itself", resp.Leechers, len(resp.Peers))
	}
	if n := store.Refusals().InvalidAddr; n != 5 {
		t.Errorf("store counted %d invalid addresses, want 5", n)
	}
}

// BenchmarkServeKeys is "announce BEP 41" with a key in the URL data
// (/KEY/announce), served by a tracker without keys ("off": the key is
// ignored) and by one that checks it against 100,000 listed keys and
// counts the announce in the per-key accounting ("on"), over the same
// store. Neither allocates.
func BenchmarkServeKeys(b *testing.B) {
	store := benchStore(b)
	off := newTestHandler(b, Config{Tracker: testTracker(b, tracker.Config{Store: store})})
	on := newTestHandler(b, Config{Tracker: testTracker(b, tracker.Config{Store: store, Keys: servetest.Keys(b, 100000), Ledger: accounting.New(time.Hour, 0)})})
	urlData := []byte("/" + servetest.Key(54321) + "/announce")
	for _, c := range []struct {
		name string
		h    *handler
	}{{"off", off}, {"on", on}} {
		pkt := announcePacket(c.h.ids.issue(testClient, testNow), func(r *AnnounceRequest) { r.URLData = urlData })
		dst := make([]byte, 0, maxReplyLen(c.h.cfg))
		if got := outcome(b, c.h.serve(dst, pkt, testClient, testNow)); got != "action 1" {
			b.Fatalf("keys %s: %s, want an announce reply", c.name, got)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			defer reportCPU(b)()
			for b.Loop() {
				c.h.serve(dst, pkt, testClient, testNow)
			}
		})
	}
}
