package wstracker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"herald/counters"
	"herald/internal/servetest"
	"herald/swarm"
	"herald/tracker"
)

// listen builds a handler from cfg and binds addr for it.
func listen(addr string, cfg Config) (*Server, error) {
	h, err := NewHandler(cfg)
	if err != nil {
		return nil, err
	}
	return h.Listen(addr)
}

// testTracker returns the rules of cfg, with WebSocket's interval unless
// cfg sets one.
func testTracker(t testing.TB, cfg tracker.Config) *tracker.Tracker {
	t.Helper()
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	tr, err := tracker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// startServer boots a tracker on 127.0.0.1:0 and stops it, checking that
// Serve returns and leaves no goroutine behind, when the test ends.
func startServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	before := runtime.NumGoroutine()
	if cfg.Tracker == nil {
		cfg.Tracker = testTracker(t, tracker.Config{})
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := listen("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last first: this one runs once Serve has returned.
	t.Cleanup(func() {
		servetest.WaitFor(t, 5*time.Second, func() error {
			if n := runtime.NumGoroutine(); n > before {
				return fmt.Errorf("%d goroutines, %d before the server started", n, before)
			}
			return nil
		})
	})
	servetest.Serve(t, s.Serve, 5*time.Second)
	return s
}

// waitGauge waits until h's gauge g reads n.
func waitGauge(t testing.TB, h *Handler, g counters.Gauge, n int64) {
	t.Helper()
	servetest.WaitFor(t, 5*time.Second, func() error {
		if got := gauge(h, g); got != n {
			return fmt.Errorf("%s %d, want %d", g.Label(), got, n)
		}
		return nil
	})
}

// client is a test WebSocket client speaking the tracker protocol.
type client struct {
	t  testing.TB
	nc net.Conn
}

func dial(t testing.TB, s *Server) *client {
	t.Helper()
	nc, _, _, err := ws.Dial(context.Background(), "ws://"+s.Addr().String()+"/announce")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &client{t: t, nc: nc}
}

func (c *client) send(msg string) {
	c.t.Helper()
	if err := wsutil.WriteClientText(c.nc, []byte(msg)); err != nil {
		c.t.Fatal(err)
	}
}

// recv reads the next message as a JSON object.
func (c *client) recv() map[string]any {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	data, err := wsutil.ReadServerText(c.nc)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		c.t.Fatalf("reply %q: %v", data, err)
	}
	return m
}

// silent checks that nothing arrives within a short while.
func (c *client) silent() {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(150 * time.Millisecond))
	data, err := wsutil.ReadServerText(c.nc)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		c.t.Fatalf("expected no message, got %q, %v", data, err)
	}
	// A timed-out read may have consumed part of a frame; nothing arrived,
	// so the stream is intact.
}

// closed reads frames until the server's close frame and returns its
// status.
func (c *client) closed() ws.StatusCode {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		f, err := ws.ReadFrame(c.nc)
		if err != nil {
			c.t.Fatalf("expected a close frame, got %v", err)
		}
		if f.Header.OpCode == ws.OpClose {
			code, _ := ws.ParseCloseFrameData(f.Payload)
			return code
		}
	}
}

// bin is a JavaScript binary string of 20 bytes, JSON-quoted.
func bin(b [20]byte) string { return string(appendBinary(nil, b[:])) }

func id(s string) (b [20]byte) {
	copy(b[:], s)
	return b
}

var (
	hashA = id("\x00\x01\x7f\x80\xff\"\\ torrent A ------")
	peerA = id("-WW0100-peer-A\xe9\x01\x02\x03\x04\x05")
	peerB = id("-WW0100-peer-B\xe9\x01\x02\x03\x04\x05")
	peerC = id("-WW0100-peer-C\xe9\x01\x02\x03\x04\x05")
	offer = id("offer-one\x00\xff--------")
)

func announce(h, p [20]byte, extra string) string {
	return fmt.Sprintf(`{"action":"announce","info_hash":%s,"peer_id":%s,"uploaded":0,"downloaded":0%s}`, bin(h), bin(p), extra)
}

func offers(ids ...[20]byte) string {
	var b strings.Builder
	b.WriteString(`,"numwant":`)
	fmt.Fprint(&b, len(ids))
	b.WriteString(`,"offers":[`)
	for i, o := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"offer":{"type":"offer","sdp":"v=0 sdp of %d"},"offer_id":%s}`, i, bin(o))
	}
	b.WriteString("]")
	return b.String()
}

func want(t testing.TB, m map[string]any, key string, v any) {
	t.Helper()
	got, ok := m[key]
	if !ok {
		t.Fatalf("reply %v has no %q", m, key)
	}
	if fmt.Sprint(got) != fmt.Sprint(v) {
		t.Fatalf("reply %q = %v, want %v (reply %v)", key, got, v, m)
	}
}

// binString is how a JSON decoder sees a binary string.
func binString(b [20]byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

func TestOfferAndAnswerRelay(t *testing.T) {
	s := startServer(t, Config{})
	a, b := dial(t, s), dial(t, s)

	a.send(announce(hashA, peerA, `,"left":100,"event":"started"`+offers(offer)))
	r := a.recv()
	want(t, r, "action", "announce")
	want(t, r, "info_hash", binString(hashA))
	want(t, r, "complete", 0)
	want(t, r, "incomplete", 1)
	// Issue 16: the interval is jittered as over HTTP and UDP, a tenth
	// either way.
	if i, ok := r["interval"].(float64); !ok || i < 108 || i > 132 {
		t.Fatalf("interval %v, want 120±12", r["interval"])
	}

	b.send(announce(hashA, peerB, `,"left":0,"event":"started"`+offers(offer)))
	r = b.recv()
	want(t, r, "complete", 1)
	want(t, r, "incomplete", 1)

	// A gets B's offer, with B's peer id and the offer id.
	r = a.recv()
	want(t, r, "peer_id", binString(peerB))
	want(t, r, "offer_id", binString(offer))
	want(t, r, "info_hash", binString(hashA))
	want(t, r, "offer", map[string]any{"type": "offer", "sdp": "v=0 sdp of 0"})
	b.silent() // the sender is never offered its own offer

	a.send(announce(hashA, peerA, fmt.Sprintf(`,"to_peer_id":%s,"offer_id":%s,"answer":{"type":"answer","sdp":"v=0 answer"}`, bin(peerB), bin(offer))))
	r = b.recv()
	want(t, r, "answer", map[string]any{"type": "answer", "sdp": "v=0 answer"})
	want(t, r, "peer_id", binString(peerA))
	want(t, r, "offer_id", binString(offer))
	a.silent() // no reply to an answer

	// The same offer cannot be answered twice.
	a.send(announce(hashA, peerA, fmt.Sprintf(`,"to_peer_id":%s,"offer_id":%s,"answer":{"type":"answer","sdp":"again"}`, bin(peerB), bin(offer))))
	want(t, a.recv(), "failure reason", tracker.UnknownOffer.Text())
	b.silent()

	c := s.handler.counts.Read()
	if ev, g := c.Events[counters.WS], c.Gauges[counters.WS]; ev[counters.OfferRelayed] != 1 || ev[counters.AnswerRelayed] != 1 ||
		g[counters.Peers] != 2 || g[counters.Swarms] != 1 {
		t.Fatalf("events %v, gauges %v: want 1 offer and 1 answer relayed, 2 peers in 1 swarm", ev, g)
	}
	if req := c.Requests[counters.WS][counters.Answer]; req[counters.OK] != 1 || req[counters.Failure] != 1 {
		t.Fatalf("answers %v, want 1 relayed and 1 refused", req)
	}
}

func TestAnswerOnlyToTheOfferer(t *testing.T) {
	s := startServer(t, Config{})
	a, b, c := dial(t, s), dial(t, s), dial(t, s)
	a.send(announce(hashA, peerA, `,"left":1`))
	a.recv()
	c.send(announce(hashA, peerC, `,"left":1`))
	c.recv()
	// C answers an offer nobody relayed to it, aimed at A.
	c.send(announce(hashA, peerC, fmt.Sprintf(`,"to_peer_id":%s,"offer_id":%s,"answer":{"type":"answer","sdp":"x"}`, bin(peerA), bin(offer))))
	want(t, c.recv(), "failure reason", tracker.UnknownOffer.Text())
	a.silent()

	// B offers to A only (C is picked too only if B sends two offers).
	b.send(announce(hashA, peerB, `,"left":1`+offers(offer)))
	b.recv()
	var got *client
	for _, x := range []*client{a, c} {
		x.nc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if data, err := wsutil.ReadServerText(x.nc); err == nil && bytes.Contains(data, []byte(`"offer"`)) {
			got = x
		}
	}
	if got == nil {
		t.Fatal("nobody received B's offer")
	}
	other, otherID, gotID := c, peerC, peerA
	if got == c {
		other, otherID, gotID = a, peerA, peerC
	}
	// The peer that did not get the offer cannot answer it; the one that
	// did cannot answer it under another peer's id.
	other.send(announce(hashA, otherID, fmt.Sprintf(`,"to_peer_id":%s,"offer_id":%s,"answer":{"type":"answer","sdp":"x"}`, bin(peerB), bin(offer))))
	want(t, other.recv(), "failure reason", tracker.UnknownOffer.Text())
	got.send(announce(hashA, otherID, fmt.Sprintf(`,"to_peer_id":%s,"offer_id":%s,"answer":{"type":"answer","sdp":"x"}`, bin(peerB), bin(offer))))
	want(t, got.recv(), "failure reason", tracker.UnknownOffer.Text())
	b.silent()
	got.send(announce(hashA, gotID, fmt.Sprintf(`,"to_peer_id":%s,"offer_id":%s,"answer":{"type":"answer","sdp":"x"}`, bin(peerB), bin(offer))))
	want(t, b.recv(), "peer_id", binString(gotID))
}

func TestOffersBoundedAndNeverToSender(t *testing.T) {
	s := startServer(t, Config{MaxOffers: 3})
	var peers []*client
	for i := range 6 {
		c := dial(t, s)
		c.send(announce(hashA, id(fmt.Sprintf("-WW0100-receiver-%03d", i)), `,"left":1`))
		c.recv()
		peers = append(peers, c)
	}
	sender := dial(t, s)
	ids := make([][20]byte, 20)
	for i := range ids {
		ids[i] = id(fmt.Sprintf("offer-%014d", i))
	}
	sender.send(announce(hashA, peerA, `,"left":1`+offers(ids...)))
	sender.recv()
	sender.silent()
	received := 0
	for _, c := range peers {
		c.nc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := wsutil.ReadServerText(c.nc); err == nil {
			received++
		}
	}
	if received != 3 {
		t.Fatalf("%d peers got an offer, want MaxOffers = 3", received)
	}

	// numwant below the number of offers bounds them further; an offer to
	// an empty swarm goes nowhere and costs nothing.
	lone := dial(t, s)
	lone.send(announce(id("an empty swarm ------"), peerA, `,"left":1`+offers(ids[:5]...)))
	want(t, lone.recv(), "incomplete", 1)
	lone.silent()
}

func TestClosedSocketRemovesItsPeers(t *testing.T) {
	s := startServer(t, Config{})
	a, b := dial(t, s), dial(t, s)
	hashB := id("torrent B -----------")
	a.send(announce(hashA, peerA, `,"left":0`))
	a.recv()
	a.send(announce(hashB, peerA, `,"left":5`))
	a.recv()
	b.send(announce(hashA, peerB, `,"left":5`))
	want(t, b.recv(), "complete", 1)

	a.nc.Close()
	waitGauge(t, s.handler, counters.Peers, 1) // A's peers went
	b.send(fmt.Sprintf(`{"action":"scrape","info_hash":[%s,%s]}`, bin(hashA), bin(hashB)))
	r := b.recv()
	want(t, r, "action", "scrape")
	files := r["files"].(map[string]any)
	want(t, files[binString(hashA)].(map[string]any), "complete", 0)
	want(t, files[binString(hashA)].(map[string]any), "incomplete", 1)
	want(t, files[binString(hashB)].(map[string]any), "incomplete", 0)
	if n := gauge(s.handler, counters.Swarms); n != 1 {
		t.Fatalf("torrents %d after the only peer of B left, want 1", n)
	}
}

func TestEvents(t *testing.T) {
	s := startServer(t, Config{})
	a, b := dial(t, s), dial(t, s)
	a.send(announce(hashA, peerA, `,"left":10,"event":"started"`))
	want(t, a.recv(), "incomplete", 1)
	a.send(announce(hashA, peerA, `,"left":0,"event":"completed"`))
	r := a.recv()
	want(t, r, "complete", 1)
	want(t, r, "incomplete", 0)
	b.send(fmt.Sprintf(`{"action":"scrape","info_hash":%s}`, bin(hashA)))
	f := b.recv()["files"].(map[string]any)[binString(hashA)].(map[string]any)
	want(t, f, "downloaded", 1)

	a.send(announce(hashA, peerA, `,"left":0,"event":"stopped"`))
	r = a.recv()
	want(t, r, "complete", 0)
	want(t, r, "incomplete", 0)
	if p, n := gauge(s.handler, counters.Peers), gauge(s.handler, counters.Swarms); p != 0 || n != 0 {
		t.Fatalf("after stopped: %d peers in %d swarms", p, n)
	}
}

func TestPeerIDOfAnotherConnection(t *testing.T) {
	s := startServer(t, Config{})
	a, b := dial(t, s), dial(t, s)
	a.send(announce(hashA, peerA, `,"left":1`))
	a.recv()
	b.send(announce(hashA, peerA, `,"left":1`))
	want(t, b.recv(), "failure reason", tracker.PeerIDInUse.Text())
	// Once the first connection is gone, the id is free again (a browser
	// reconnecting).
	a.nc.Close()
	waitGauge(t, s.handler, counters.Peers, 0) // A left
	b.send(announce(hashA, peerA, `,"left":1`))
	want(t, b.recv(), "incomplete", 1)
}

func TestAccessListAndLimits(t *testing.T) {
	allowed := hashA
	s := startServer(t, Config{
		Tracker:          testTracker(t, tracker.Config{Allowed: func(h swarm.InfoHash) bool { return h == allowed }}),
		MaxPeers:         2,
		MaxSwarmsPerConn: 1,
	})
	a := dial(t, s)
	other := id("not on the list -----")
	a.send(announce(other, peerA, `,"left":1`))
	r := a.recv()
	want(t, r, "failure reason", tracker.NotAllowed.Text())
	want(t, r, "info_hash", binString(other))
	a.send(fmt.Sprintf(`{"action":"scrape","info_hash":%s}`, bin(other)))
	want(t, a.recv()["files"].(map[string]any)[binString(other)].(map[string]any), "complete", 0)

	a.send(announce(hashA, peerA, `,"left":1`))
	want(t, a.recv(), "incomplete", 1)
	allowed = other // the list changed: a's next swarm is one too many
	a.send(announce(other, peerA, `,"left":1`))
	want(t, a.recv(), "failure reason", tracker.SwarmsPerConn.Text())

	b, c := dial(t, s), dial(t, s)
	allowed = hashA
	b.send(announce(hashA, peerB, `,"left":1`))
	want(t, b.recv(), "incomplete", 2)
	c.send(announce(hashA, peerC, `,"left":1`))
	want(t, c.recv(), "failure reason", tracker.PeerLimit.Text())
}

func TestMalformedMessages(t *testing.T) {
	s := startServer(t, Config{})
	c := dial(t, s)
	for _, tc := range []struct{ msg, reason string }{
		{`{"action":"announce"`, "invalid JSON"},
		{`[]`, "invalid JSON"},
		{`{"action":"connect"}`, "invalid action in WS request"},
		{`{"action":"announce","info_hash":"short","peer_id":"x"}`, "invalid info_hash"},
		{fmt.Sprintf(`{"action":"announce","info_hash":%s,"peer_id":"x"}`, bin(hashA)), "invalid peer_id"},
		{announce(hashA, peerA, `,"answer":{"type":"answer"}`), "invalid `to_peer_id` (required with `answer`)"},
		{announce(hashA, peerA, `,"offers":[{"offer":"not an object","offer_id":`+bin(offer)+`}]`), failOffer.Text},
		{announce(hashA, peerA, `,"event":"pause"`), "invalid event"},
	} {
		c.send(tc.msg)
		want(t, c.recv(), "failure reason", tc.reason)
	}
	// Issue 16: BEP 21's "paused" is a plain announce, as over HTTP.
	c.send(announce(hashA, peerA, `,"left":1,"event":"paused"`))
	want(t, c.recv(), "incomplete", 1)
	// The connection survives bad messages.
	c.send(announce(hashA, peerA, `,"left":1`))
	want(t, c.recv(), "incomplete", 1)
}

// writeFrame writes one masked client frame.
func writeFrame(t testing.TB, c *client, f ws.Frame) {
	t.Helper()
	if err := ws.WriteFrame(c.nc, ws.MaskFrameInPlace(f)); err != nil {
		t.Fatal(err)
	}
}

func TestConnectionClosedOnProtocolViolations(t *testing.T) {
	s := startServer(t, Config{MaxMessageBytes: 1024, MessageRate: 1, MessageBurst: 5})
	for _, tc := range []struct {
		name string
		send func(*client)
		want ws.StatusCode
	}{
		{"oversized message", func(c *client) {
			c.send(announce(hashA, peerA, `,"x":"`+strings.Repeat("a", 2000)+`"`))
		}, ws.StatusMessageTooBig},
		{"oversized in fragments", func(c *client) {
			part := []byte(strings.Repeat("a", 600))
			writeFrame(t, c, ws.NewFrame(ws.OpText, false, part))
			writeFrame(t, c, ws.NewFrame(ws.OpContinuation, true, part))
		}, ws.StatusMessageTooBig},
		{"binary message", func(c *client) {
			writeFrame(t, c, ws.NewBinaryFrame([]byte(`{}`)))
		}, ws.StatusUnsupportedData},
		{"invalid UTF-8", func(c *client) {
			writeFrame(t, c, ws.NewTextFrame([]byte("{\"action\":\"\xff\"}")))
		}, ws.StatusInvalidFramePayloadData},
		{"unmasked frame", func(c *client) {
			ws.WriteFrame(c.nc, ws.NewTextFrame([]byte(`{}`)))
		}, ws.StatusProtocolError},
		{"continuation without start", func(c *client) {
			writeFrame(t, c, ws.NewFrame(ws.OpContinuation, true, []byte(`{}`)))
		}, ws.StatusProtocolError},
		{"flood", func(c *client) {
			for range 20 {
				c.send(`{"action":"scrape","info_hash":"x"}`)
			}
		}, ws.StatusPolicyViolation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, s)
			c.t = t
			tc.send(c)
			if got := c.closed(); got != tc.want {
				t.Fatalf("closed with %d, want %d", got, tc.want)
			}
		})
	}
}

func TestFragmentedMessageAndPing(t *testing.T) {
	s := startServer(t, Config{})
	c := dial(t, s)
	writeFrame(t, c, ws.NewPingFrame([]byte("hi")))
	msg := []byte(announce(hashA, peerA, `,"left":1`))
	writeFrame(t, c, ws.NewFrame(ws.OpText, false, msg[:10]))
	writeFrame(t, c, ws.NewPingFrame([]byte("mid-message")))
	writeFrame(t, c, ws.NewFrame(ws.OpContinuation, true, msg[10:]))
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	var pongs int
	for {
		f, err := ws.ReadFrame(c.nc)
		if err != nil {
			t.Fatal(err)
		}
		if f.Header.OpCode == ws.OpPong {
			pongs++
			continue
		}
		if f.Header.OpCode != ws.OpText || !bytes.Contains(f.Payload, []byte(`"incomplete":1`)) {
			t.Fatalf("got %v %q", f.Header.OpCode, f.Payload)
		}
		break
	}
	if pongs != 2 {
		t.Fatalf("%d pongs, want 2", pongs)
	}
}

func TestIdleConnectionDropped(t *testing.T) {
	s := startServer(t, Config{Tracker: testTracker(t, tracker.Config{Interval: time.Second}), IdleTimeout: 1200 * time.Millisecond})
	c := dial(t, s)
	c.send(announce(hashA, peerA, `,"left":1`))
	c.recv()
	start := time.Now()
	waitGauge(t, s.handler, counters.Connections, 0) // the idle peer went
	if d := time.Since(start); d < time.Second {
		t.Fatalf("dropped after %v, before the idle timeout", d)
	}
	if gauge(s.handler, counters.Peers) != 0 {
		t.Fatal("peers of the dropped connection remain")
	}
}

func TestShutdownClosesConnections(t *testing.T) {
	s, err := listen("127.0.0.1:0", Config{Tracker: testTracker(t, tracker.Config{}), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	c := dial(t, s)
	c.send(announce(hashA, peerA, `,"left":1`))
	c.recv()
	cancel()
	if got := c.closed(); got != ws.StatusGoingAway {
		t.Fatalf("closed with %d, want 1001", got)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestShutdownWithSilentClients checks that clients which never answer
// the close frame hold up shutdown for closeLinger only, not for the idle
// timeout.
func TestShutdownWithSilentClients(t *testing.T) {
	s, err := listen("127.0.0.1:0", Config{Tracker: testTracker(t, tracker.Config{}), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	for range 3 {
		c := dial(t, s)
		c.send(announce(hashA, id(fmt.Sprintf("-WW0100-silent-%05d", rand.IntN(1e5))), `,"left":1`))
		c.recv()
	}
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(closeLinger + 3*time.Second):
		t.Fatal("Serve did not return; silent clients hold up shutdown")
	}
	t.Logf("shutdown took %v", time.Since(start))
}

func TestPlainHTTPRequest(t *testing.T) {
	s := startServer(t, Config{})
	for path, want := range map[string]string{"/announce": "426", "/other": "404"} {
		nc, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(nc, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path)
		var buf [64]byte
		n, _ := nc.Read(buf[:])
		nc.Close()
		if !bytes.HasPrefix(buf[:n], []byte("HTTP/1.1 "+want)) {
			t.Errorf("GET %s: %q, want %s", path, buf[:n], want)
		}
	}
}

// TestHandlerOnTwoAddressesSharesSwarms checks that a peer on a dedicated
// address and a peer on another server of the same handler meet.
func TestHandlerOnTwoAddressesSharesSwarms(t *testing.T) {
	h, err := NewHandler(Config{Tracker: testTracker(t, tracker.Config{}), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var servers []*Server
	done := make(chan error, 2)
	for range 2 {
		s, err := h.Listen("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		servers = append(servers, s)
		go func() { done <- s.Serve(ctx) }()
	}
	defer func() {
		cancel()
		for range servers {
			if err := <-done; err != nil {
				t.Error(err)
			}
		}
	}()
	a, b := dial(t, servers[0]), dial(t, servers[1])
	a.send(announce(hashA, peerA, `,"left":1`))
	a.recv()
	b.send(announce(hashA, peerB, `,"left":1`+offers(offer)))
	want(t, b.recv(), "incomplete", 2)
	want(t, a.recv(), "peer_id", binString(peerB))
}

// gauge reads gauge g of h's WebSocket counters.
func gauge(h *Handler, g counters.Gauge) int64 { return h.counts.Read().Gauges[counters.WS][g] }

// event reads how often event e happened on h.
func event(h *Handler, e counters.Event) uint64 { return h.counts.Read().Events[counters.WS][e] }
