//go:build !nofastpath

package httptracker

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"herald/counters"
	"herald/internal/sched"
	"herald/internal/servetest"
	"herald/swarm"
	"herald/tracker"
)

// TestFastPathAnswersAsNetHTTP sends each request twice: as clients send
// it, which the event loop answers, and with the path's first letter
// percent-encoded, which the loop hands to net/http (same route, same
// handler code). Status, the headers clients read and the body must agree,
// and both must be counted.
func TestFastPathAnswersAsNetHTTP(t *testing.T) {
	store := newTestStore(t, swarm.Config{})
	srv := startServer(t, "127.0.0.1:0", Config{Tracker: testTracker(t, tracker.Config{Store: store, IntervalJitter: -1, Allowed: func(h swarm.InfoHash) bool { return !refused(h) }})})
	// A swarm of one other peer, so announce replies are deterministic.
	newPeer(t, srv.Addr(), "127.0.0.1", 7000).announce(hash20, "&left=0")
	deniedHash := "%de" + strings.Repeat("a", 19)
	for _, tc := range []struct{ name, target, header string }{
		{"compact announce", "/announce?info_hash=" + q20 + "&port=6881&compact=1", ""},
		{"dictionary announce", "/announce?info_hash=" + q20 + "&port=6882&compact=0&peer_id=-XX0001-abcdefghijkl", ""},
		{"refused torrent", "/announce?info_hash=" + deniedHash + "&port=6881", ""},
		{"missing port", "/announce?info_hash=" + q20, ""},
		{"bad escape", "/announce?info_hash=%zz&port=1", ""},
		{"scrape", "/scrape?info_hash=" + q20 + "&info_hash=" + deniedHash, ""},
		{"HTTP/1.0 keep-alive", "/announce?info_hash=" + q20 + "&port=6883", "Connection: keep-alive\r\n"},
		{"close", "/announce?info_hash=" + q20 + "&port=6884", "Connection: close\r\n"},
	} {
		version := "HTTP/1.1"
		if strings.HasPrefix(tc.name, "HTTP/1.0") {
			version = "HTTP/1.0"
		}
		request := func(target string) string {
			return "GET " + target + " " + version + "\r\nHost: tracker\r\n" + tc.header + "\r\n"
		}
		handedTarget := "/%" + strings.ToUpper(hexByte(tc.target[1])) + tc.target[2:]
		before := httpCounts(srv.handler)
		fast, fastBody := exchange(t, srv, request(tc.target))
		handed, handedBody := exchange(t, srv, request(handedTarget))
		after := httpCounts(srv.handler)
		if fast.Status != handed.Status || fast.Proto != handed.Proto || !bytes.Equal(fastBody, handedBody) {
			t.Errorf("%s: fast path %s %s %q, net/http %s %s %q", tc.name, fast.Proto, fast.Status, fastBody, handed.Proto, handed.Status, handedBody)
		}
		for _, h := range []string{"Content-Type", "Content-Length", "X-Content-Type-Options", "Connection"} {
			if fast.Header.Get(h) != handed.Header.Get(h) {
				t.Errorf("%s: %s: fast path %q, net/http %q", tc.name, h, fast.Header.Get(h), handed.Header.Get(h))
			}
		}
		if fast.Close != handed.Close || fast.Header.Get("Date") == "" {
			t.Errorf("%s: Close %v (net/http %v), Date %q", tc.name, fast.Close, handed.Close, fast.Header.Get("Date"))
		}
		if counted := after.Total(counters.HTTP) - before.Total(counters.HTTP); counted != 2 {
			t.Errorf("%s: %d requests counted, want 2", tc.name, counted)
		}
	}
}

func hexByte(b byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[b>>4], digits[b&15]})
}

// TestPipelinedKeepAlive sends three requests in one write on one
// connection, then a fourth asking to close: four replies in order, then
// the end of the stream.
func TestPipelinedKeepAlive(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0", Config{Tracker: testTracker(t, tracker.Config{Store: newTestStore(t, swarm.Config{})})})
	conn, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	req := func(port, extra string) string {
		return "GET /announce?info_hash=" + q20 + "&port=" + port + " HTTP/1.1\r\nHost: x\r\n" + extra + "\r\n"
	}
	io.WriteString(conn, req("1", "")+req("2", "")+"GET /scrape?info_hash="+q20+" HTTP/1.1\r\nHost: x\r\n\r\n")
	r := bufio.NewReader(conn)
	for i, want := range []string{"incomplete", "incomplete", "files"} {
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || resp.Close || !bytes.Contains(body, []byte(want)) {
			t.Fatalf("reply %d: %s close=%v %q, want a kept connection and %q", i, resp.Status, resp.Close, body, want)
		}
	}
	io.WriteString(conn, req("4", "Connection: close\r\n"))
	resp, err := http.ReadResponse(r, nil)
	if err != nil || !resp.Close {
		t.Fatalf("last reply: %v, %v; want Connection: close", resp, err)
	}
	io.ReadAll(resp.Body)
	if n, err := r.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("after the last reply: %d bytes, %v; want EOF", n, err)
	}
}

// TestQueuedConnections opens many connections and sends each its request
// before reading any reply: whether a wakeup of the loop accepts one of
// them or drains the queue, every one must be answered.
func TestQueuedConnections(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0", Config{Tracker: testTracker(t, tracker.Config{Store: newTestStore(t, swarm.Config{})})})
	conns := make([]net.Conn, 64)
	for i := range conns {
		c, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET /announce?info_hash="+q20+"&port="+strconv.Itoa(i+1)+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		conns[i] = c
	}
	for i, c := range conns {
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !bytes.Contains(body, []byte("interval")) {
			t.Errorf("connection %d: %s %q", i, resp.Status, body)
		}
	}
}

// TestSplitRequests sends heads in pieces: the loop must wait for the rest,
// and hand net/http everything it has read when the request is not its own.
func TestSplitRequests(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0", Config{Tracker: testTracker(t, tracker.Config{Store: newTestStore(t, swarm.Config{})})})
	head := "GET /announce?info_hash=" + q20 + "&port=6881 HTTP/1.1\r\nHost: x\r\n\r\n"
	handed := "GET /%61nnounce?info_hash=" + q20 + "&port=6881 HTTP/1.1\r\nHost: x\r\n\r\n"
	for _, chunks := range [][]string{
		{head[:3], head[3:]},
		{head[:20], head[20 : len(head)-1], head[len(head)-1:]},
		{handed[:6], handed[6:]},
		{"GET /stats", "?mode=x HTTP/1.1\r\nHost: x\r\n\r\n"}, // not a tracker path: net/http's 404
	} {
		resp, body := exchange(t, srv, chunks...)
		want := 200
		if strings.HasPrefix(chunks[0], "GET /stats") {
			want = 404
		}
		if resp.StatusCode != want {
			t.Errorf("%q: %s %q, want %d", chunks, resp.Status, body, want)
		}
	}
}

// TestMaxConnections fills the limit with idle connections: the next one
// is closed at once and counted, and a slot freed by a client is usable.
func TestMaxConnections(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0", Config{Tracker: testTracker(t, tracker.Config{Store: newTestStore(t, swarm.Config{})}), MaxConnections: 2})
	var idle []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	waitOpen(t, srv, 2)
	extra, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	extra.SetDeadline(time.Now().Add(10 * time.Second))
	if n, err := extra.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection beyond the limit: read %d, %v; want it closed", n, err)
	}
	extra.Close()
	if c := httpCounts(srv.handler); c.Events[counters.HTTP][counters.Turned] != 1 || c.Gauges[counters.HTTP][counters.Connections] != 2 {
		t.Errorf("refused %d open %d, want 1 and 2", c.Events[counters.HTTP][counters.Turned], c.Gauges[counters.HTTP][counters.Connections])
	}
	idle[0].Close()
	waitOpen(t, srv, 1) // a freed slot
	resp, body := exchange(t, srv, "GET /announce?info_hash="+q20+"&port=1 HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte("interval")) {
		t.Errorf("announce in the freed slot: %s %q", resp.Status, body)
	}
}

// TestDeadlines checks that the loop closes a connection stuck in its head
// after ReadHeaderTimeout and an idle keep-alive one after IdleTimeout,
// and that a slow head that completes in time is answered.
func TestDeadlines(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0", Config{Tracker: testTracker(t, tracker.Config{Store: newTestStore(t, swarm.Config{})}), ReadHeaderTimeout: 300 * time.Millisecond, IdleTimeout: 300 * time.Millisecond})
	partial, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer partial.Close()
	io.WriteString(partial, "GET /announce?info_hash=")
	idle, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	io.WriteString(idle, "GET /announce?info_hash="+q20+"&port=1 HTTP/1.1\r\nHost: x\r\n\r\n")
	r := bufio.NewReader(idle)
	resp, err := http.ReadResponse(r, nil)
	if err != nil || resp.Close {
		t.Fatalf("keep-alive reply: %v %v", resp, err)
	}
	io.ReadAll(resp.Body)
	for name, c := range map[string]io.Reader{"partial head": partial, "idle keep-alive": r} {
		start := time.Now()
		partial.SetReadDeadline(time.Now().Add(10 * time.Second))
		idle.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("%s: read %d, %v; want the server to close it", name, n, err)
		}
		t.Logf("%s closed after %v", name, time.Since(start))
	}
	// The client sees the close before the server's count drops.
	waitOpen(t, srv, 0)
}

// An event loop with no connection waiting has no timer running: an idle
// herald sleeps in epoll_wait instead of waking every sweep interval. A
// connection that waits starts the timer (its deadline is swept), and the
// first sweep after the last one is gone stops it.
func TestSweepTimerOnlyWhileWaiting(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0", Config{Tracker: testTracker(t, tracker.Config{Store: newTestStore(t, swarm.Config{})}), ReadHeaderTimeout: 300 * time.Millisecond})
	running := func() (n int) {
		for _, l := range srv.fast.loops {
			l.mu.Lock()
			var spec unix.ItimerSpec
			if err := unix.TimerfdGettime(l.timer, &spec); err != nil {
				t.Fatal(err)
			}
			l.mu.Unlock()
			if spec.Interval != (unix.Timespec{}) {
				n++
			}
		}
		return n
	}
	wantRunning := func(want int) {
		t.Helper()
		servetest.WaitFor(t, 10*time.Second, func() error {
			if n := running(); n != want {
				return fmt.Errorf("%d loops with the sweep timer running, want %d", n, want)
			}
			return nil
		})
	}
	exchange(t, srv, "GET /announce?info_hash="+q20+"&port=1 HTTP/1.0\r\n\r\n") // answered at once: nothing waits
	if n := running(); n != 0 {
		t.Fatalf("%d loops with the sweep timer running after a request answered at once, want 0", n)
	}
	partial, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer partial.Close()
	io.WriteString(partial, "GET /announce?info_hash=")
	wantRunning(1)
	partial.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := partial.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("partial head: read %d, %v; want the sweep to close it", n, err)
	}
	wantRunning(0)
}

// TestIdleLoopWaitsInNetpoller: a loop with no traffic waits in the
// netpoller, holding no P, and answers from there; a loop whose requests
// come quickly blocks in epoll_wait, and one long gap after them does not
// send it back.
func TestIdleLoopWaitsInNetpoller(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0", Config{Tracker: testTracker(t, tracker.Config{Store: newTestStore(t, swarm.Config{})})})
	loops := len(srv.fast.loops)
	awaitLoops(t, loops, true)
	if resp, body := exchange(t, srv, "GET /announce?info_hash="+q20+"&port=1 HTTP/1.0\r\n\r\n"); resp.StatusCode != 200 || !bytes.Contains(body, []byte("interval")) {
		t.Fatalf("from the idle wait: %s %q", resp.Status, body)
	}
	awaitLoops(t, loops, true)

	conn, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	keepAlive := func(port int) {
		t.Helper()
		io.WriteString(conn, "GET /announce?info_hash="+q20+"&port="+strconv.Itoa(port)+" HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("request %d: %v", port, err)
		}
		io.ReadAll(resp.Body)
	}
	// Back-to-back requests on one connection: that loop's waits are one
	// round trip each, its mean falls under sched.IdleAfter.
	for i := range 64 {
		keepAlive(i + 1)
	}
	awaitLoops(t, 1, false)
	time.Sleep(2 * sched.IdleAfter)
	keepAlive(100)
	awaitLoops(t, 1, false)
}

// awaitLoops waits until at least n event loops wait in the netpoller
// (idle) or in epoll_wait.
func awaitLoops(t *testing.T, n int, idle bool) {
	t.Helper()
	want := "[syscall"
	if idle {
		want = "[IO wait"
	}
	servetest.WaitFor(t, 5*time.Second, func() error {
		if seen := servetest.Goroutines(func(g string) bool {
			return strings.Contains(g, "(*eventLoop).run") && strings.Contains(g, want) && strings.Contains(g, "(*IdleWait).Wait") == idle
		}); seen < n {
			return fmt.Errorf("%d event loops %s (idle wait %v), want %d", seen, want, idle, n)
		}
		return nil
	})
}
