package udptracker

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"herald/counters"
	"herald/internal/servetest"
	"herald/swarm"
	"herald/tracker"
)

// startServer boots a Server on addr with a fresh store and stops it when
// the test ends, failing the test if Serve does not return cleanly.
func startServer(t testing.TB, addr string, cfg Config) *Server {
	t.Helper()
	if cfg.Tracker == nil {
		cfg.Tracker = testTracker(t, tracker.Config{})
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := Listen(addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	servetest.Serve(t, s.Serve, 5*time.Second)
	// Listen has bound the sockets: datagrams sent now wait in the kernel
	// until Serve reads them, so there is nothing to wait for.
	return s
}

// udpCounts reads the counters of s's UDP requests.
func udpCounts(s *Server) (requests [counters.NumActions][counters.NumOutcomes]uint64, refusals [counters.MaxReasons]uint64, faults [counters.NumFaults]uint64) {
	c := s.cfg.Counters.Read()
	return c.Requests[counters.UDP], c.Refusals[counters.UDP], c.Faults[counters.UDP]
}

// udpClient is one BitTorrent client: its own UDP socket, talking to one
// tracker address.
type udpClient struct {
	t      *testing.T
	conn   *net.UDPConn
	server netip.AddrPort
	tid    uint32
	buf    [4096]byte
}

func newClient(t *testing.T, server netip.AddrPort) *udpClient {
	t.Helper()
	network := "udp4"
	if server.Addr().Is6() {
		network = "udp6"
	}
	conn, err := net.ListenUDP(network, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &udpClient{t: t, conn: conn, server: server}
}

// exchange sends req and returns the reply, checking that it came from the
// very address the request was sent to.
func (c *udpClient) exchange(req []byte) []byte {
	c.t.Helper()
	if _, err := c.conn.WriteToUDPAddrPort(req, c.server); err != nil {
		c.t.Fatal(err)
	}
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := c.conn.ReadFromUDPAddrPort(c.buf[:])
	if err != nil {
		c.t.Fatalf("no reply: %v", err)
	}
	if from := netip.AddrPortFrom(from.Addr().Unmap(), from.Port()); from != c.server {
		c.t.Fatalf("reply from %v, request went to %v", from, c.server)
	}
	return c.buf[:n]
}

func (c *udpClient) connect() uint64 {
	c.t.Helper()
	c.tid++
	r, err := ParseConnectResponse(c.exchange(AppendConnectRequest(nil, ConnectRequest{TransactionID: c.tid})))
	if err != nil || r.TransactionID != c.tid {
		c.t.Fatalf("connect: %+v, %v", r, err)
	}
	return r.ConnectionID
}

func (c *udpClient) announce(r *AnnounceRequest) AnnounceResponse {
	c.t.Helper()
	c.tid++
	r.TransactionID = c.tid
	var resp AnnounceResponse
	reply := c.exchange(AppendAnnounceRequest(nil, r))
	if err := ParseAnnounceResponse(reply, &resp); err != nil || resp.TransactionID != c.tid {
		e, _ := ParseErrorResponse(reply)
		c.t.Fatalf("announce: %v %q", err, e.Message)
	}
	resp.Peers = append([]byte(nil), resp.Peers...)
	return resp
}

func (c *udpClient) scrape(id uint64, hashes ...swarm.InfoHash) []swarm.Counts {
	c.t.Helper()
	c.tid++
	var resp ScrapeResponse
	if err := ParseScrapeResponse(c.exchange(AppendScrapeRequest(nil, &ScrapeRequest{ConnectionID: id, TransactionID: c.tid, InfoHashes: hashes})), &resp); err != nil {
		c.t.Fatalf("scrape: %v", err)
	}
	return resp.Torrents
}

// errorReply sends req and returns the error packet's message.
func (c *udpClient) errorReply(req []byte) string {
	c.t.Helper()
	reply := c.exchange(req)
	e, err := ParseErrorResponse(reply)
	if err != nil {
		c.t.Fatalf("want an error packet, got %d bytes: %v", len(reply), err)
	}
	return e.Message
}

func peerList(t *testing.T, packed []byte, size int) []netip.AddrPort {
	t.Helper()
	if len(packed)%size != 0 {
		t.Fatalf("%d bytes of peers is not a whole number of %d-byte peers", len(packed), size)
	}
	var out []netip.AddrPort
	for ; len(packed) > 0; packed = packed[size:] {
		ip, _ := netip.AddrFromSlice(packed[:size-2])
		out = append(out, netip.AddrPortFrom(ip, uint16(packed[size-2])<<8|uint16(packed[size-1])))
	}
	return out
}

// TestSwarmOverSocket runs one swarm's life over real sockets, on IPv4 and
// IPv6 loopback: two peers find each other, scrape counts them, and a
// stopped peer leaves.
func TestSwarmOverSocket(t *testing.T) {
	for _, tc := range []struct {
		addr     string
		peerSize int
	}{{"127.0.0.1:0", swarm.PeerLen4}, {"[::1]:0", swarm.PeerLen6}} {
		t.Run(tc.addr, func(t *testing.T) {
			s := startServer(t, tc.addr, Config{})
			seeder, leecher := newClient(t, s.Addr()), newClient(t, s.Addr())
			id1, id2 := seeder.connect(), leecher.connect()
			hash := swarm.InfoHash{0x5e, 0xed}

			r := seeder.announce(&AnnounceRequest{ConnectionID: id1, InfoHash: hash, Left: 0, Event: swarm.EventStarted, NumWant: -1, Port: 7001})
			if len(r.Peers) != 0 || r.Seeders != 1 || r.Leechers != 0 {
				t.Fatalf("first announce: %d seeders %d leechers %d peer bytes", r.Seeders, r.Leechers, len(r.Peers))
			}
			if r.Interval < 1620 || r.Interval > 1980 {
				t.Errorf("interval %d, want 1800±180", r.Interval)
			}
			r = leecher.announce(&AnnounceRequest{ConnectionID: id2, InfoHash: hash, Left: 500, Event: swarm.EventStarted, NumWant: -1, Port: 7002})
			want := netip.AddrPortFrom(s.Addr().Addr(), 7001) // the clients share the server's loopback address
			if got := peerList(t, r.Peers, tc.peerSize); len(got) != 1 || got[0] != want {
				t.Fatalf("leecher got peers %v, want [%v]", got, want)
			}
			if r.Seeders != 1 || r.Leechers != 1 {
				t.Errorf("counts %d seeders %d leechers, want 1 and 1", r.Seeders, r.Leechers)
			}
			r = seeder.announce(&AnnounceRequest{ConnectionID: id1, InfoHash: hash, NumWant: 0, Port: 7001})
			if got := peerList(t, r.Peers, tc.peerSize); len(got) != 1 || got[0] != netip.AddrPortFrom(s.Addr().Addr(), 7002) {
				t.Fatalf("seeder got peers %v", got)
			}

			counts := leecher.scrape(id2, hash, swarm.InfoHash{0xde, 0xad})
			if want := []swarm.Counts{{Seeders: 1, Leechers: 1}, {}}; len(counts) != 2 || counts[0] != want[0] || counts[1] != want[1] {
				t.Fatalf("scrape %+v, want %+v", counts, want)
			}

			r = leecher.announce(&AnnounceRequest{ConnectionID: id2, InfoHash: hash, Left: 500, Event: swarm.EventStopped, Port: 7002})
			if len(r.Peers) != 0 {
				t.Errorf("stopped announce returned %d bytes of peers", len(r.Peers))
			}
			if counts := seeder.scrape(id1, hash); counts[0] != (swarm.Counts{Seeders: 1}) {
				t.Fatalf("after stop, scrape %+v, want 1 seeder", counts[0])
			}
			if r := seeder.announce(&AnnounceRequest{ConnectionID: id1, InfoHash: hash, NumWant: -1, Port: 7001}); len(r.Peers) != 0 {
				t.Fatalf("stopped peer still listed: %v", peerList(t, r.Peers, tc.peerSize))
			}

			c := s.cfg.Counters.Read()
			if req := c.Requests[counters.UDP]; req[counters.Connect][counters.OK] != 2 || req[counters.Announce][counters.OK] != 5 ||
				req[counters.Scrape][counters.OK] != 2 || c.NotOK(counters.UDP) != 0 {
				t.Errorf("requests %v, want 2 connects, 5 announces, 2 scrapes, all ok", req)
			}
		})
	}
}

// TestDualStackSocket: one [::] socket serves both families; each client
// gets only peers of its own family, in its own size, and unmapped IPv4.
func TestDualStackSocket(t *testing.T) {
	s := startServer(t, "[::]:0", Config{})
	port := s.Addr().Port()
	v4 := newClient(t, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port))
	v4b := newClient(t, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port))
	v6 := newClient(t, netip.AddrPortFrom(netip.IPv6Loopback(), port))
	hash := swarm.InfoHash{0xd5}
	v4.announce(&AnnounceRequest{ConnectionID: v4.connect(), InfoHash: hash, Left: 1, NumWant: -1, Port: 4001})
	v6.announce(&AnnounceRequest{ConnectionID: v6.connect(), InfoHash: hash, Left: 1, NumWant: -1, Port: 6001})
	r := v4b.announce(&AnnounceRequest{ConnectionID: v4b.connect(), InfoHash: hash, Left: 1, NumWant: -1, Port: 4002})
	if got := peerList(t, r.Peers, swarm.PeerLen4); len(got) != 1 || got[0] != netip.MustParseAddrPort("127.0.0.1:4001") {
		t.Fatalf("IPv4 client got %v, want [127.0.0.1:4001]", got)
	}
	if r.Leechers != 3 {
		t.Errorf("leechers %d, want 3 (counts cover both families)", r.Leechers)
	}
	r = v6.announce(&AnnounceRequest{ConnectionID: v6.connect(), InfoHash: hash, Left: 1, NumWant: -1, Port: 6001})
	if len(r.Peers) != 0 {
		t.Fatalf("IPv6 client got IPv4 peers: %x", r.Peers)
	}
}

// TestReplyLeavesFromRequestedAddress: on a wildcard socket a reply must
// come from the address the request was sent to, or the client drops it.
// 127.0.0.2 and 127.0.0.3 are local but never the kernel's first choice of
// source for a reply to 127.0.0.1.
func TestReplyLeavesFromRequestedAddress(t *testing.T) {
	for _, bind := range []string{"[::]:0", "0.0.0.0:0"} {
		t.Run(bind, func(t *testing.T) {
			s := startServer(t, bind, Config{})
			targets := []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}
			if bind == "[::]:0" {
				targets = append(targets, "::1")
			}
			for _, ip := range targets {
				c := newClient(t, netip.AddrPortFrom(netip.MustParseAddr(ip), s.Addr().Port()))
				c.connect() // exchange checks the reply's source
			}
		})
	}
}

func TestBadConnectionIDOverSocket(t *testing.T) {
	s := startServer(t, "127.0.0.1:0", Config{})
	c := newClient(t, s.Addr())
	other := newClient(t, s.Addr())
	forged := other.connect() ^ 1<<20 // a valid id with one bit changed
	req := AppendAnnounceRequest(nil, &AnnounceRequest{ConnectionID: forged, TransactionID: 77, InfoHash: testHash, NumWant: -1, Port: 1})
	if msg := c.errorReply(req); msg != tracker.BadConnectionID.Text() {
		t.Fatalf("error %q", msg)
	}
	if req, refusals, _ := udpCounts(s); refusals[tracker.BadConnectionID] != 1 ||
		req[counters.Announce][counters.Failure] != 1 || req[counters.Announce][counters.OK] != 0 {
		t.Fatalf("requests %v, refusals %v: want one failed announce, a connection id mismatch", req, refusals)
	}
}

func TestRefusedTorrentOverSocket(t *testing.T) {
	allowed := swarm.InfoHash{1}
	s := startServer(t, "[::1]:0", Config{Tracker: testTracker(t, tracker.Config{Allowed: func(h swarm.InfoHash) bool { return h == allowed }})})
	c := newClient(t, s.Addr())
	id := c.connect()
	c.announce(&AnnounceRequest{ConnectionID: id, InfoHash: allowed, NumWant: -1, Port: 1})
	req := AppendAnnounceRequest(nil, &AnnounceRequest{ConnectionID: id, TransactionID: 9, InfoHash: swarm.InfoHash{2}, NumWant: -1, Port: 1})
	if msg := c.errorReply(req); msg != tracker.NotAllowed.Text() {
		t.Fatalf("error %q, want %q", msg, tracker.NotAllowed.Text())
	}
	if req, refusals, _ := udpCounts(s); refusals[tracker.NotAllowed] != 1 ||
		req[counters.Announce][counters.Failure] != 1 || req[counters.Announce][counters.OK] != 1 {
		t.Fatalf("requests %v, refusals %v: want one refused announce and one served", req, refusals)
	}
}

// Issue 16: a scrape of a torrent the access list refuses reads as an
// unknown one, all zeros, as over HTTP and WebSocket, even when the store
// still holds peers announced before the list changed.
func TestRefusedTorrentScrapesAsZerosIssue16(t *testing.T) {
	kept, dropped := swarm.InfoHash{1}, swarm.InfoHash{2}
	var listed atomic.Bool // whether dropped is still on the list
	listed.Store(true)
	s := startServer(t, "127.0.0.1:0", Config{Tracker: testTracker(t, tracker.Config{
		Allowed: func(h swarm.InfoHash) bool { return h == kept || h == dropped && listed.Load() },
	})})
	c := newClient(t, s.Addr())
	id := c.connect()
	for _, h := range []swarm.InfoHash{kept, dropped} {
		c.announce(&AnnounceRequest{ConnectionID: id, InfoHash: h, Left: 0, NumWant: -1, Port: 1})
	}
	if got := c.scrape(id, kept, dropped); got[0].Seeders != 1 || got[1].Seeders != 1 {
		t.Fatalf("both listed: scrape %+v, want a seeder each", got)
	}
	listed.Store(false)
	if got := c.scrape(id, kept, dropped); got[0].Seeders != 1 || got[1] != (swarm.Counts{}) {
		t.Fatalf("second one refused: scrape %+v, want a seeder, then zeros", got)
	}
}

// TestDroppedPacketsOverSocket: runts and unknown actions get no reply, so
// the first reply the client sees is the one to its following connect.
func TestDroppedPacketsOverSocket(t *testing.T) {
	s := startServer(t, "127.0.0.1:0", Config{})
	c := newClient(t, s.Addr())
	unknown := AppendConnectRequest(nil, ConnectRequest{TransactionID: 1})
	unknown[11] = 9
	for _, p := range [][]byte{{}, {1, 2, 3}, make([]byte, 15), unknown} {
		if _, err := c.conn.WriteToUDPAddrPort(p, s.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	c.tid = 1000
	c.connect() // fails on a reply with another transaction id
	if req, _, faults := udpCounts(s); req[counters.Invalid][counters.Dropped] != 4 || faults[counters.Runt] != 4 {
		t.Fatalf("dropped %d (fault %d), want 4", req[counters.Invalid][counters.Dropped], faults[counters.Runt])
	}
}

// TestServeStopsCleanly: Serve returns when its context ends, leaves no
// goroutine behind and closes the sockets; a second Serve is refused.
func TestServeStopsCleanly(t *testing.T) {
	before := runtime.NumGoroutine()
	s, err := Listen("127.0.0.1:0", Config{Tracker: testTracker(t, tracker.Config{}), Sockets: 3, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	c := newClient(t, s.Addr())
	c.connect()
	if err := s.Serve(ctx); err == nil {
		t.Error("second Serve accepted")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	c.conn.Close()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after Serve returned, %d before", n, before)
	}
	if _, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(s.Addr())); err != nil {
		t.Fatalf("port still bound after Serve returned: %v", err)
	}
}

// TestSocketsShareThePort: Sockets SO_REUSEPORT sockets on one port, and
// clients on every one of them are served.
func TestSocketsShareThePort(t *testing.T) {
	s := startServer(t, "127.0.0.1:0", Config{Sockets: 4})
	if len(s.conns) != 4 {
		t.Fatalf("%d sockets, want 4", len(s.conns))
	}
	for _, c := range s.conns {
		if c.LocalAddr() != s.Addr() {
			t.Fatalf("socket on %v, server on %v", c.LocalAddr(), s.Addr())
		}
	}
	// The kernel hashes each client port to one socket: a socket nobody
	// read would leave its clients' connects unanswered (each of the four
	// gets none of 32 clients with odds of 1 in 10000).
	for range 32 {
		newClient(t, s.Addr()).connect()
	}
}

// TestListenHostName: sockets after the first bind the address the host
// name resolved to, so all of them share one address and port.
func TestListenHostName(t *testing.T) {
	s := startServer(t, "localhost:0", Config{Sockets: 3})
	for _, c := range s.conns {
		if c.LocalAddr() != s.Addr() || !s.Addr().Addr().IsLoopback() {
			t.Fatalf("socket on %v, server on %v", c.LocalAddr(), s.Addr())
		}
	}
	newClient(t, s.Addr()).connect()
}

func TestListenErrors(t *testing.T) {
	if _, err := Listen("127.0.0.1", Config{Tracker: testTracker(t, tracker.Config{})}); err == nil {
		t.Error("address without a port accepted")
	}
	if _, err := Listen("127.0.0.1:0", Config{}); err == nil {
		t.Error("config without a tracker accepted")
	}
}

// TestOversizeDatagrams: a datagram longer than the 2048-byte read buffer
// is cut there and handled as such (doc.go): an announce whose BEP 41
// options run past it is still answered, a scrape that long has too many
// hashes.
func TestOversizeDatagrams(t *testing.T) {
	s := startServer(t, "127.0.0.1:0", Config{})
	c := newClient(t, s.Addr())
	id := c.connect()
	long := &AnnounceRequest{ConnectionID: id, InfoHash: testHash, Left: 1, NumWant: -1, Port: 1, URLData: bytes.Repeat([]byte("/a"), 2000)}
	if r := c.announce(long); r.Leechers != 1 {
		t.Fatalf("announce of %d bytes: %d leechers, want 1", len(AppendAnnounceRequest(nil, long)), r.Leechers)
	}
	scrape := AppendScrapeRequest(nil, &ScrapeRequest{ConnectionID: id, TransactionID: 3, InfoHashes: make([]swarm.InfoHash, 200)})
	if msg := c.errorReply(scrape); msg != errTooManyHashes.Text {
		t.Fatalf("scrape of %d bytes: error %q", len(scrape), msg)
	}
}

// TestLatencySeesEveryRequest: each request of a batch is timed once.
func TestLatencySeesEveryRequest(t *testing.T) {
	s := startServer(t, "127.0.0.1:0", Config{Sockets: 1})
	c := newClient(t, s.Addr())
	id := c.connect()
	c.scrape(id, swarm.InfoHash{1})
	// The reply leaves before the batch is observed.
	var l counters.Latency
	servetest.WaitFor(t, 5*time.Second, func() error {
		if l = s.cfg.Counters.Read().Latency[counters.UDP]; l.Count != 2 {
			return fmt.Errorf("%d requests timed, want 2 (connect and scrape)", l.Count)
		}
		return nil
	})
	if l.Sum <= 0 {
		t.Errorf("latency sum %v, want above 0", l.Sum)
	}
}
