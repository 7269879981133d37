package httptracker

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"herald/bencode"
	"herald/counters"
	"herald/internal/servetest"
	"herald/swarm"
	"herald/tracker"
)

// startServer binds addr and serves until the test ends; the cleanup checks
// that Serve returns nil promptly.
func startServer(t *testing.T, addr string, cfg Config) *Server {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	srv, err := Listen(addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	servetest.Serve(t, srv.Serve, 10*time.Second)
	return srv
}

// peerClient is one BitTorrent client: an HTTP client whose connections
// leave from a given local address, announcing a given port.
type peerClient struct {
	t      *testing.T
	http   *http.Client
	tr     *http.Transport
	server netip.AddrPort
	port   int
}

func newPeer(t *testing.T, server netip.AddrPort, localIP string, port int) *peerClient {
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(localIP)}}
	tr := &http.Transport{DialContext: dialer.DialContext, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &peerClient{t: t, http: &http.Client{Transport: tr}, tr: tr, server: server, port: port}
}

func (p *peerClient) get(pathQuery string, header ...string) (*http.Response, []byte) {
	p.t.Helper()
	req, err := http.NewRequest("GET", "http://"+p.server.String()+pathQuery, nil)
	if err != nil {
		p.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := p.http.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatal(err)
	}
	return resp, body
}

// announce sends an announce for h with extra parameters and returns the
// strictly decoded reply.
func (p *peerClient) announce(h swarm.InfoHash, extra string) map[string]any {
	p.t.Helper()
	resp, body := p.get(fmt.Sprintf("/announce?info_hash=%s&peer_id=-HE0001-%012d&port=%d%s", escapeAll(h[:]), p.port, p.port, extra))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/plain" {
		p.t.Fatalf("announce: %s %q", resp.Status, body)
	}
	return decodeDict(p.t, body)
}

func decodeDict(t *testing.T, body []byte) map[string]any {
	t.Helper()
	v, err := bencode.Decode(body)
	if err != nil {
		t.Fatalf("reply %q: %v", body, err)
	}
	d, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("reply %q is not a dictionary", body)
	}
	if r, ok := d["failure reason"]; ok {
		t.Fatalf("failure reason %q", r)
	}
	return d
}

// peersOf lists the compact peers of a reply as addresses, sorted.
func peersOf(t *testing.T, reply map[string]any) []string {
	t.Helper()
	v4, ok := reply["peers"].(string)
	if !ok {
		t.Fatalf("reply without a peers string: %q", reply)
	}
	var out []string
	for b := []byte(v4); len(b) >= 6; b = b[6:] {
		out = append(out, netip.AddrPortFrom(netip.AddrFrom4([4]byte(b)), binary.BigEndian.Uint16(b[4:])).String())
	}
	if v6, ok := reply["peers6"].(string); ok {
		if len(v6) == 0 {
			t.Errorf("reply has an empty peers6")
		}
		for b := []byte(v6); len(b) >= 18; b = b[18:] {
			out = append(out, netip.AddrPortFrom(netip.AddrFrom16([16]byte(b)), binary.BigEndian.Uint16(b[16:])).String())
		}
	}
	slices.Sort(out)
	return out
}

func counts(reply map[string]any) [3]int64 {
	return [3]int64{reply["complete"].(int64), reply["incomplete"].(int64), reply["downloaded"].(int64)}
}

// TestSwarmEndToEnd runs one swarm over two real listeners sharing a store,
// 127.0.0.1:0 and [::1]:0, with peers on 127.0.0.1, 127.0.0.2 and ::1.
func TestSwarmEndToEnd(t *testing.T) {
	store := newTestStore(t, swarm.Config{})
	cfg := Config{Tracker: testTracker(t, tracker.Config{Store: store, Interval: 1800 * time.Second})}
	srv4 := startServer(t, "127.0.0.1:0", cfg)
	srv6 := startServer(t, "[::1]:0", cfg)
	h := swarm.InfoHash{1, 2, 3}

	a := newPeer(t, srv4.Addr(), "127.0.0.1", 1001)
	b := newPeer(t, srv4.Addr(), "127.0.0.2", 1002)
	c := newPeer(t, srv6.Addr(), "::1", 1003)

	r := a.announce(h, "&left=100&event=started")
	if got := peersOf(t, r); len(got) != 0 || counts(r) != [3]int64{0, 1, 0} {
		t.Fatalf("first peer: peers %v counts %v; want none, 0 1 0", got, counts(r))
	}
	if iv, miv := r["interval"].(int64), r["min interval"].(int64); iv < 1620 || iv > 1980 || miv != iv/2 {
		t.Errorf("interval %d, min interval %d; want 1800±180 and half", iv, miv)
	}
	r = b.announce(h, "&left=100&event=started")
	if got := peersOf(t, r); !slices.Equal(got, []string{"127.0.0.1:1001"}) || counts(r) != [3]int64{0, 2, 0} {
		t.Fatalf("second peer sees %v, counts %v", got, counts(r))
	}
	r = c.announce(h, "&left=100&event=started")
	if got := peersOf(t, r); !slices.Equal(got, []string{"127.0.0.1:1001", "127.0.0.2:1002"}) {
		t.Fatalf("IPv6 peer sees %v, want both IPv4 peers in peers", got)
	}
	if _, ok := r["peers6"]; ok {
		t.Errorf("IPv6 peer got a peers6 key with no other IPv6 peer: %q", r["peers6"])
	}
	r = a.announce(h, "&left=100")
	if got := peersOf(t, r); !slices.Equal(got, []string{"127.0.0.2:1002", "[::1]:1003"}) || counts(r) != [3]int64{0, 3, 0} {
		t.Fatalf("first peer re-announcing sees %v counts %v; want the other two, never itself", got, counts(r))
	}
	if len(r["peers6"].(string)) != 18 {
		t.Errorf("peers6 %q, want one 18-byte peer", r["peers6"])
	}

	// completed: a leecher becomes a seeder and downloaded goes up, once.
	r = a.announce(h, "&left=0&event=completed")
	if counts(r) != [3]int64{1, 2, 1} {
		t.Errorf("after completed: counts %v, want 1 seeder, 2 leechers, 1 downloaded", counts(r))
	}
	r = a.announce(h, "&left=0&event=completed")
	if counts(r) != [3]int64{1, 2, 1} {
		t.Errorf("after a repeated completed: counts %v, want unchanged", counts(r))
	}

	// stopped: the peer goes, and its reply has counts and an empty peers.
	r = b.announce(h, "&left=100&event=stopped")
	if v, ok := r["peers"].(string); !ok || v != "" || counts(r) != [3]int64{1, 1, 1} {
		t.Errorf("stopped reply: peers %q, counts %v; want an empty peers and 1 1 1", r["peers"], counts(r))
	}
	if _, ok := r["peers6"]; ok {
		t.Errorf("stopped reply has peers6")
	}
	r = c.announce(h, "&left=100")
	if got := peersOf(t, r); !slices.Equal(got, []string{"127.0.0.1:1001"}) {
		t.Errorf("after b stopped, c sees %v", got)
	}

	// compact=0: BEP 3's dictionary model, IPv4 and IPv6 peers in one list.
	r = b.announce(h, "&left=100&compact=0")
	var dicts []string
	for _, p := range r["peers"].([]any) {
		d := p.(map[string]any)
		if len(d) != 2 {
			t.Errorf("peer dictionary %v, want only ip and port", d)
		}
		dicts = append(dicts, fmt.Sprintf("%s %d", d["ip"], d["port"]))
	}
	slices.Sort(dicts)
	if !slices.Equal(dicts, []string{"127.0.0.1 1001", "::1 1003"}) {
		t.Errorf("dictionary model peers %v", dicts)
	}

	// numwant=0: no peers, but still a peers key.
	r = a.announce(h, "&left=0&numwant=0")
	if v, ok := r["peers"].(string); !ok || v != "" {
		t.Errorf("numwant=0: peers %q", r["peers"])
	}

	// Scrape: counts for the known hash; the unknown one is left out.
	unknown := swarm.InfoHash{9}
	_, body := a.get("/scrape?info_hash=" + escapeAll(unknown[:]) + "&info_hash=" + escapeAll(h[:]))
	files := decodeDict(t, body)["files"].(map[string]any)
	want := map[string]any{"complete": int64(1), "downloaded": int64(1), "incomplete": int64(2)}
	if len(files) != 1 || fmt.Sprint(files[string(h[:])]) != fmt.Sprint(want) {
		t.Errorf("scrape files %v, want only %x: %v", files, h, want)
	}
	// Two IPv6 peers of another torrent see each other in peers6, beside an
	// empty peers.
	h6 := swarm.InfoHash{6}
	d := newPeer(t, srv6.Addr(), "::1", 1004)
	c.announce(h6, "&left=1")
	r = d.announce(h6, "&left=1")
	if got := peersOf(t, r); !slices.Equal(got, []string{"[::1]:1003"}) || r["peers"] != "" {
		t.Errorf("second IPv6 peer sees %v (peers %q), want [::1]:1003 in peers6 only", got, r["peers"])
	}
	r = c.announce(h6, "&left=1")
	if got := peersOf(t, r); !slices.Equal(got, []string{"[::1]:1004"}) {
		t.Errorf("first IPv6 peer sees %v, want [::1]:1004", got)
	}

	if c := httpCounts(srv4.handler); c.Requests[counters.HTTP][counters.Announce][counters.OK] != 8 ||
		c.Requests[counters.HTTP][counters.Scrape][counters.OK] != 1 || c.NotOK(counters.HTTP) != 0 {
		t.Errorf("IPv4 server requests %v", c.Requests[counters.HTTP])
	}
}

// TestFullScrape fetches a full scrape of enough torrents to need several
// chunks, plain and gzip-compressed.
func TestFullScrape(t *testing.T) {
	store := newTestStore(t, swarm.Config{})
	const torrents = 3000
	for i := range torrents {
		var h swarm.InfoHash
		binary.BigEndian.PutUint32(h[16:], uint32(i)*2654435761)
		h[0] = byte(i % 200) // never 0xde, which the access list refuses
		a := &swarm.Announce{InfoHash: h, Addr: netip.MustParseAddrPort("10.0.0.1:1"), Left: uint64(i % 2), Event: swarm.EventCompleted}
		if _, _, err := store.Announce(a, swarm.FamilyBoth, swarm.Peers{}); err != nil {
			t.Fatal(err)
		}
	}
	// A refused torrent is left out of the full scrape.
	store.Announce(&swarm.Announce{InfoHash: swarm.InfoHash{0xde}, Addr: netip.MustParseAddrPort("10.0.0.1:1")}, swarm.FamilyBoth, swarm.Peers{})
	srv := startServer(t, "127.0.0.1:0", Config{Tracker: testTracker(t, tracker.Config{Store: store, Allowed: func(h swarm.InfoHash) bool { return !refused(h) }})})
	p := newPeer(t, srv.Addr(), "127.0.0.1", 1)

	check := func(name string, body []byte) {
		t.Helper()
		files := decodeDict(t, body)["files"].(map[string]any) // strict: keys sorted
		if len(files) != torrents {
			t.Fatalf("%s: %d torrents, want %d", name, len(files), torrents)
		}
		seeders := 0
		for _, v := range files {
			c := v.(map[string]any)
			seeders += int(c["complete"].(int64))
			if c["complete"].(int64)+c["incomplete"].(int64) != 1 {
				t.Fatalf("%s: entry %v", name, c)
			}
		}
		if seeders != torrents/2 {
			t.Errorf("%s: %d seeders, want %d", name, seeders, torrents/2)
		}
	}

	resp, plain := p.get("/scrape")
	if resp.Header.Get("Content-Encoding") != "" || !slices.Equal(resp.TransferEncoding, []string{"chunked"}) ||
		resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("plain full scrape: encoding %q, transfer %q, type %q", resp.Header.Get("Content-Encoding"), resp.TransferEncoding, resp.Header.Get("Content-Type"))
	}
	check("plain", plain)
	if len(plain) < 2*fullScrapeChunk {
		t.Errorf("plain full scrape %d bytes: too small to test chunking", len(plain))
	}

	for _, ae := range []string{"gzip", "br;q=1, gzip;q=0.5", "*"} {
		resp, compressed := p.get("/scrape", "Accept-Encoding", ae)
		if resp.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("Accept-Encoding %q: Content-Encoding %q", ae, resp.Header.Get("Content-Encoding"))
		}
		zr, err := gzip.NewReader(bytes.NewReader(compressed))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(body, plain) {
			t.Errorf("Accept-Encoding %q: gunzipped full scrape differs from the plain one", ae)
		}
	}
	for _, ae := range []string{"gzip;q=0", "identity", "br"} {
		resp, body := p.get("/scrape", "Accept-Encoding", ae)
		if resp.Header.Get("Content-Encoding") != "" || !bytes.Equal(body, plain) {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q, %d bytes", ae, resp.Header.Get("Content-Encoding"), len(body))
		}
	}
	if fs := httpCounts(srv.handler).Requests[counters.HTTP][counters.FullScrape]; fs[counters.OK] != 7 || fs[counters.Error] != 0 {
		t.Errorf("full scrapes %v, want 7 ok", fs)
	}
}

// TestKeepAlive checks that a client's second request reuses its
// connection (opentracker closes after every reply).
func TestKeepAlive(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0", Config{Tracker: testTracker(t, tracker.Config{Store: newTestStore(t, swarm.Config{})})})
	p := newPeer(t, srv.Addr(), "127.0.0.1", 6881)
	var reused []bool
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { reused = append(reused, info.Reused) }}
	for range 3 {
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET",
			"http://"+srv.Addr().String()+"/announce?info_hash="+q20+"&port=6881", nil)
		resp, err := p.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.Close || resp.ContentLength <= 0 {
			t.Errorf("reply: Close %v, ContentLength %d", resp.Close, resp.ContentLength)
		}
	}
	if !slices.Equal(reused, []bool{false, true, true}) {
		t.Errorf("connection reused per request: %v, want [false true true]", reused)
	}
}

// TestRawRequests sends bytes net/http's client would not, over a real
// connection, and checks the status line: the requests net/http itself
// refuses before the handler runs, and a few the handler refuses.
func TestRawRequests(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0", Config{Tracker: testTracker(t, tracker.Config{Store: newTestStore(t, swarm.Config{})}), MaxHeaderBytes: 4096})
	ok := "info_hash=" + q20 + "&port=6881"
	for _, tc := range []struct {
		name, request, status string
	}{
		{"plain announce", "GET /announce?" + ok + " HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200 OK"},
		{"HTTP/1.0", "GET /announce?" + ok + " HTTP/1.0\r\n\r\n", "HTTP/1.0 200 OK"},
		{"stray space before the query", "GET /announce ?" + ok + " HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400 Bad Request"},
		{"raw high byte", "GET /announce?info_hash=\xff" + q20[3:] + "&port=1 HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400 Bad Request"},
		{"bad escape in path", "GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400 Bad Request"},
		{"URL beyond MaxHeaderBytes", "GET /announce?" + ok + "&x=" + strings.Repeat("a", 9000) + " HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 431 Request Header Fields Too Large"},
		{"headers beyond MaxHeaderBytes", "GET /announce?" + ok + " HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("a", 9000) + "\r\n\r\n", "HTTP/1.1 431 Request Header Fields Too Large"},
		{"unknown method", "BREW /announce?" + ok + " HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 405 Method Not Allowed"},
		{"garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", "HTTP/1.1 400 Bad Request"},
	} {
		conn, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(conn, tc.request); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(conn).ReadString('\n')
		conn.Close()
		if strings.TrimSpace(line) != tc.status {
			t.Errorf("%s: status line %q (%v), want %q", tc.name, line, err, tc.status)
		}
	}
	// The server kept serving through all of that.
	p := newPeer(t, srv.Addr(), "127.0.0.1", 6881)
	p.announce(hash20, "")
}

// TestServeShutdown checks that Serve returns once its context is done,
// with a keep-alive connection still open, and leaves no goroutine behind.
func TestServeShutdown(t *testing.T) {
	before := runtime.NumGoroutine()
	srv, err := Listen("127.0.0.1:0", Config{Tracker: testTracker(t, tracker.Config{Store: newTestStore(t, swarm.Config{})})})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	p := newPeer(t, srv.Addr(), "127.0.0.1", 6881)
	p.announce(hash20, "")
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	p.tr.CloseIdleConnections()
	if _, err := net.Dial("tcp", srv.Addr().String()); err == nil {
		t.Error("listener still accepting after Serve returned")
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

// TestSemicolonInInfoHash checks that a raw ';' is an info_hash byte, not a
// parameter separator (net/http's AllowQuerySemicolons would make it one).
func TestSemicolonInInfoHash(t *testing.T) {
	store := newTestStore(t, swarm.Config{})
	srv := startServer(t, "127.0.0.1:0", Config{Tracker: testTracker(t, tracker.Config{Store: store})})

	p := newPeer(t, srv.Addr(), "127.0.0.1", 6881)
	for range 3 {
		resp, body := p.get("/announce?info_hash=;" + q20[3:] + "&port=6881")
		if resp.StatusCode != 200 {
			t.Fatalf("%s %q", resp.Status, body)
		}
		decodeDict(t, body)
	}
	semi := hash20
	semi[0] = ';'
	if c, ok := store.Scrape(semi); !ok || c.Leechers != 1 {
		t.Errorf("torrent %x: %+v, %v; want one leecher", semi, c, ok)
	}
}

// TestShutdownDuringFullScrape checks that a full scrape to a client that
// stops reading neither blocks Serve beyond ShutdownTimeout nor announces
// meanwhile, and is counted as cut off.
func TestShutdownDuringFullScrape(t *testing.T) {
	store := newTestStore(t, swarm.Config{})
	for i := range 200000 {
		var h swarm.InfoHash
		binary.BigEndian.PutUint32(h[1:], uint32(i))
		store.Announce(&swarm.Announce{InfoHash: h, Addr: netip.MustParseAddrPort("10.0.0.1:1")}, swarm.FamilyBoth, swarm.Peers{})
	}
	srv, err := Listen("127.0.0.1:0", Config{Tracker: testTracker(t, tracker.Config{Store: store}), ShutdownTimeout: 500 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()

	conn, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(4096)
	io.WriteString(conn, "GET /scrape HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(conn)
	if line, err := br.ReadString('\n'); err != nil || line != "HTTP/1.1 200 OK\r\n" {
		t.Fatalf("full scrape status %q, %v", line, err)
	}
	// Some of the body has come: the full scrape is writing, and is soon
	// stuck on the unread connection. Announces go on.
	if _, err := br.Peek(4096); err != nil {
		t.Fatal(err)
	}
	p := newPeer(t, srv.Addr(), "127.0.0.1", 6881)
	p.announce(hash20, "")

	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Serve took %v to return, ShutdownTimeout is 500ms", d)
	}
	fullScrapes := func() [counters.NumOutcomes]uint64 {
		return httpCounts(srv.handler).Requests[counters.HTTP][counters.FullScrape]
	}
	servetest.WaitFor(t, 5*time.Second, func() error {
		if fs := fullScrapes(); fs[counters.Error] != 1 {
			return fmt.Errorf("full scrapes %v: want one counted as cut off", fs)
		}
		return nil
	})
	if fs := fullScrapes(); fs[counters.OK] != 0 {
		t.Errorf("full scrapes %v: want the one cut off only", fs)
	}
}

// Issue 14 item 3: a full scrape to a client that stops reading is cut off
// once one write has waited fullScrapeStall, and its slot is free again at
// once, instead of being held for the whole WriteTimeout (15 minutes).
func TestFullScrapeToStalledReaderCutOffIssue14(t *testing.T) {
	defer func(d time.Duration) { fullScrapeStall = d }(fullScrapeStall)
	fullScrapeStall = 300 * time.Millisecond
	store := newTestStore(t, swarm.Config{})
	// About 6.8 MB of reply: more than the kernel buffers between the two
	// sockets hold for a client that reads nothing.
	for i := range 100000 {
		var h swarm.InfoHash
		binary.BigEndian.PutUint32(h[:], uint32(i))
		if _, _, err := store.Announce(&swarm.Announce{InfoHash: h, Addr: netip.MustParseAddrPort("10.0.0.1:1"), Left: 1}, 0, swarm.Peers{}); err != nil {
			t.Fatal(err)
		}
	}
	srv := startServer(t, "127.0.0.1:0", Config{Tracker: testTracker(t, tracker.Config{Store: store}), MaxFullScrapes: 1})
	stalled, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	if _, err := stalled.Write([]byte("GET /scrape HTTP/1.1\r\nHost: tracker\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	servetest.WaitFor(t, 10*time.Second, func() error {
		if n := httpCounts(srv.handler).Faults[counters.HTTP][counters.FullScrapeCut]; n != 1 {
			return fmt.Errorf("%d full scrapes cut off, want the stalled one", n)
		}
		return nil
	})
	resp, err := http.Get("http://" + srv.Addr().String() + "/scrape")
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err != nil || n < 6e6 {
		t.Fatalf("the next full scrape: %d, %d bytes, %v", resp.StatusCode, n, err)
	}
}

// waitOpen waits until srv counts n open connections.
func waitOpen(t *testing.T, srv *Server, n int64) {
	t.Helper()
	servetest.WaitFor(t, 10*time.Second, func() error {
		if open := httpCounts(srv.handler).Gauges[counters.HTTP][counters.Connections]; open != n {
			return fmt.Errorf("%d open connections, want %d", open, n)
		}
		return nil
	})
}

// exchange sends request on a new connection and reads one response.
func exchange(t *testing.T, srv *Server, chunks ...string) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	for i, c := range chunks {
		if i > 0 {
			time.Sleep(50 * time.Millisecond) // lands in a later read
		}
		if _, err := io.WriteString(conn, c); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%q: %v", chunks, err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}
