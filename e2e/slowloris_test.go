package e2e

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"herald/bencode"
)

// The flood TestSlowloris keeps open against herald's HTTP port, 3000
// connections in all.
const (
	idleConns    = 1200 // connect and send nothing
	trickleConns = 1200 // part of a request, then one more byte every trickleEvery
	endlessConns = 50   // one header line that never ends, sent as fast as herald reads
	unreadConns  = 540  // one whole announce; the reply is never read
	stuffedConns = 10   // stuffedRequests pipelined announces on a tiny receive buffer, never read
)

const (
	trickleEvery = 2 * time.Second
	// stuffedRequests replies of 200 peers each overflow the largest send
	// buffer Linux gives herald by default (tcp_wmem, 4 MiB).
	stuffedRequests = 4096
	// headerTimeout is herald's header-read timeout in this test (the
	// operator's -http-header-timeout); closeBound is how long herald may
	// keep a connection whose request headers never complete: the timeout
	// plus slack for a loaded 2-core machine.
	headerTimeout = 3 * time.Second
	closeBound    = 15 * time.Second
	// fdSlack is how many file descriptors above its idle count herald may
	// hold once the flood is gone (a client's keep-alive connection).
	fdSlack = 16
)

// TestSlowloris holds thousands of half-open connections to herald's HTTP
// port, redialling each one herald closes, while a libtorrent leecher
// downloads from a libtorrent seeder through herald's HTTP tracker and a
// plain HTTP client keeps announcing on new connections. Herald must serve
// them all, close every connection whose headers never complete within
// closeBound, and give back the connections' file descriptors.
func TestSlowloris(t *testing.T) {
	requireClient(t, "python3-libtorrent", libtorrentInstalled())
	h := startHerald(t, "127.0.0.1", "-http-header-timeout", headerTimeout.String())
	pid := h.Cmd.Process.Pid
	baseline := countFDs(t, pid)

	f := startSlowloris(t, h.Addr)
	held := waitFDs(t, pid, "accepting the flood", func(n int) bool {
		return n >= baseline+(idleConns+trickleConns+unreadConns+stuffedConns)*9/10
	})

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var infoHash [20]byte
	rand.Read(infoHash[:])
	seeder := peerOf(6881)
	if _, err := announceHTTP(client, h.Addr, infoHash, seeder); err != nil {
		t.Fatalf("announce under the flood: %v", err)
	}
	stop := make(chan struct{})
	stopAnnouncing := sync.OnceFunc(func() { close(stop) })
	t.Cleanup(stopAnnouncing)
	announced := make(chan announceTally, 1)
	go func() { announced <- announceUntil(client, h.Addr, infoHash, seeder, stop) }()

	testLibtorrentTransfer(t, "http://"+h.Addr+"/announce", "127.0.0.1", h.Addr)
	// Announcing goes on until herald has timed out the first connection of
	// every redialled slot: thousands of connections close at once.
	f.firstEnded.Wait()
	redialled := countFDs(t, pid)

	stopAnnouncing()
	tally := <-announced
	if tally.failed > 0 || tally.ok == 0 {
		t.Errorf("plain HTTP announces under the flood: %d answered, %d failed; first failure: %v",
			tally.ok, tally.failed, tally.firstErr)
	}

	// Herald must now close the rest of the cut-off shapes by itself.
	f.stopRedialing()
	f.cutters.Wait()
	f.check(t)
	// A connection herald closed must give back its descriptor; the
	// unread and stuffed connections are still open.
	afterCutOff := waitFDs(t, pid, "closing the half-open connections", func(n int) bool {
		return n <= baseline+unreadConns+stuffedConns+fdSlack
	})
	f.closeAll()
	afterAll := waitFDs(t, pid, "the flood ending", func(n int) bool { return n <= baseline+fdSlack })
	t.Logf("herald's fds: %d idle, %d under the flood, %d once the flood was redialled, %d once herald closed the half-open ones, %d after the flood",
		baseline, held, redialled, afterCutOff, afterAll)
	t.Logf("%d plain HTTP announces answered under the flood", tally.ok)
}

// slowloris is the set of abusive connections TestSlowloris holds.
type slowloris struct {
	addr  string
	stop  chan struct{} // closed: connections herald closes are not redialled
	once  sync.Once
	mu    sync.Mutex
	ended bool // closeAll ran: no more dialling
	conns map[net.Conn]struct{}
	// Per shape herald must cut off: how long each connection lived until
	// herald closed it, and how many were still open after closeBound.
	lifetimes map[string][]time.Duration
	overdue   map[string]int
	errs      []error
	cutters   sync.WaitGroup // one per connection slot of a cut-off shape
	// firstEnded is done once the first connection of every redialled
	// slot has ended.
	firstEnded sync.WaitGroup
	writers    sync.WaitGroup // goroutines writing to connections
}

var errSlowlorisEnded = errors.New("the flood has ended")

// startSlowloris opens every connection of the flood, and ends it when the test
// ends.
func startSlowloris(t *testing.T, addr string) *slowloris {
	t.Helper()
	f := &slowloris{addr: addr, stop: make(chan struct{}), conns: map[net.Conn]struct{}{},
		lifetimes: map[string][]time.Duration{}, overdue: map[string]int{}}
	t.Cleanup(f.closeAll)
	dial := func(rcvbuf int) net.Conn {
		c, err := f.dial(rcvbuf)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	var floodHash [20]byte
	rand.Read(floodHash[:])
	// A request line cut short, and a whole one followed by headers that
	// never end; both trickle on.
	partialLine := "GET /announce?info_hash="
	partialHeaders := "GET " + announcePath(floodHash, peerOf(1)) + " HTTP/1.1\r\nHost: herald\r\n"
	for range idleConns {
		f.cutOff("idle", dial(0), nil, true)
	}
	for range trickleConns / 2 {
		f.cutOff("trickled request line", dial(0), trickle(partialLine, "%41"), true)
		f.cutOff("trickled headers", dial(0), trickle(partialHeaders, "X-Slow: 1\r\n"), true)
	}
	for range endlessConns {
		f.cutOff("endless header", dial(0), endless(partialHeaders+"X-Flood: "), false)
	}
	for i := range unreadConns {
		req := "GET " + announcePath(floodHash, peerOf(10000+i)) + " HTTP/1.1\r\nHost: herald\r\n\r\n"
		if _, err := io.WriteString(dial(0), req); err != nil {
			t.Fatalf("sending an announce: %v", err)
		}
	}
	for i := range stuffedConns {
		// A leecher, so that it gets the unread connections' seeders.
		p := peerOf(20000 + i)
		p.left = 1
		req := "GET " + announcePath(floodHash, p) + "&numwant=200 HTTP/1.1\r\nHost: herald\r\n\r\n"
		// With replies never read and a receive buffer of a few KiB,
		// herald's writes to this connection block.
		c := dial(2048)
		f.writers.Add(1)
		go func() {
			defer f.writers.Done()
			// Ends when herald stops reading and the connection is closed
			// at the end, or when herald drops it, which is allowed.
			c.Write([]byte(strings.Repeat(req, stuffedRequests)))
		}()
	}
	return f
}

// dial connects to herald, with a receive buffer of rcvbuf bytes unless it
// is 0, and keeps the connection for closeAll.
func (f *slowloris) dial(rcvbuf int) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second, KeepAlive: -1}
	if rcvbuf > 0 {
		// Set before connecting, so the window offered to herald is small.
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var err error
			ctlErr := rc.Control(func(fd uintptr) {
				err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			})
			return errors.Join(ctlErr, err)
		}
	}
	c, err := d.Dial("tcp", f.addr)
	if err != nil {
		return nil, fmt.Errorf("dialing herald for the flood: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ended {
		c.Close()
		return nil, errSlowlorisEnded
	}
	f.conns[c] = struct{}{}
	return c, nil
}

// cutOff runs one connection slot of a shape herald must close by itself:
// send (if not nil) writes to the connection until done is closed or a
// write fails, while the slot waits for herald to close it. Then, if
// redial, the slot dials again, until stopRedialing.
func (f *slowloris) cutOff(shape string, c net.Conn, send func(c net.Conn, done <-chan struct{}), redial bool) {
	f.cutters.Add(1)
	if redial {
		f.firstEnded.Add(1)
	}
	go func() {
		defer f.cutters.Done()
		for first := true; ; first = false {
			opened := time.Now()
			c.SetReadDeadline(opened.Add(closeBound))
			done := make(chan struct{})
			if send != nil {
				f.writers.Add(1)
				go func() {
					defer f.writers.Done()
					send(c, done)
				}()
			}
			err := drain(c)
			lived := time.Since(opened)
			close(done)
			f.forget(c)
			closedByHerald := errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
			f.mu.Lock()
			switch {
			case closedByHerald:
				f.lifetimes[shape] = append(f.lifetimes[shape], lived)
			case errors.Is(err, os.ErrDeadlineExceeded):
				f.overdue[shape]++
			case !errors.Is(err, net.ErrClosed): // net.ErrClosed: closeAll
				f.errs = append(f.errs, fmt.Errorf("%s connection: %w", shape, err))
			}
			f.mu.Unlock()
			if first && redial {
				f.firstEnded.Done()
			}
			select {
			case <-f.stop:
				return
			default:
			}
			if !closedByHerald || !redial {
				return
			}
			if c, err = f.dial(0); err != nil {
				if !errors.Is(err, errSlowlorisEnded) {
					f.mu.Lock()
					f.errs = append(f.errs, fmt.Errorf("redialling a %s connection: %w", shape, err))
					f.mu.Unlock()
				}
				return
			}
		}
	}()
}

// drain reads whatever herald sends until the read fails, and returns that
// error.
func drain(c net.Conn) error {
	buf := make([]byte, 512)
	for {
		if _, err := c.Read(buf); err != nil {
			return err
		}
	}
}

// trickle sends prefix, then one byte of drip (cycled) every trickleEvery.
func trickle(prefix, drip string) func(net.Conn, <-chan struct{}) {
	return func(c net.Conn, done <-chan struct{}) {
		if _, err := io.WriteString(c, prefix); err != nil {
			return
		}
		tick := time.NewTicker(trickleEvery)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			if _, err := c.Write([]byte{drip[i%len(drip)]}); err != nil {
				return
			}
		}
	}
}

// endless sends prefix, then header bytes as fast as herald takes them,
// until a write fails.
func endless(prefix string) func(net.Conn, <-chan struct{}) {
	return func(c net.Conn, _ <-chan struct{}) {
		if _, err := io.WriteString(c, prefix); err != nil {
			return
		}
		chunk := bytes.Repeat([]byte("a"), 4096)
		for {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}
}

func (f *slowloris) forget(c net.Conn) {
	c.Close()
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
}

func (f *slowloris) stopRedialing() { f.once.Do(func() { close(f.stop) }) }

// closeAll closes every connection of the flood and waits for its
// goroutines.
func (f *slowloris) closeAll() {
	f.stopRedialing()
	f.mu.Lock()
	f.ended = true
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.cutters.Wait()
	f.writers.Wait()
}

// check fails the test unless herald closed every connection of the cut-off
// shapes, and logs how long they lived. Call it once the cutters are done.
func (f *slowloris) check(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, err := range f.errs {
		t.Error(err)
	}
	for shape, n := range f.overdue {
		t.Errorf("%d %s connections were still open %v after they were opened; herald must close a request whose headers never complete",
			n, shape, closeBound)
	}
	for shape, want := range map[string]int{
		"idle": idleConns, "trickled request line": trickleConns / 2, "trickled headers": trickleConns / 2,
		"endless header": endlessConns,
	} {
		lived := f.lifetimes[shape]
		if len(lived) < want {
			t.Errorf("herald closed %d %s connections, want at least the %d first opened", len(lived), shape, want)
			continue
		}
		slices.Sort(lived)
		t.Logf("%s: herald closed %d connections after %v (shortest), %v (median), %v (longest)",
			shape, len(lived), lived[0].Round(time.Millisecond), lived[len(lived)/2].Round(time.Millisecond),
			lived[len(lived)-1].Round(time.Millisecond))
	}
}

// announceTally counts the plain HTTP announces made during the flood.
type announceTally struct {
	ok, failed int
	firstErr   error
}

// announceUntil announces a leecher for infoHash every 200 ms, each time on
// a new connection, until stop is closed. Every reply must list seeder.
func announceUntil(client *http.Client, addr string, infoHash [20]byte, seeder testPeer, stop <-chan struct{}) announceTally {
	leecher := peerOf(6882)
	leecher.left = 1
	var tally announceTally
	for {
		peers, err := announceHTTP(client, addr, infoHash, leecher)
		if err == nil && !hasCompactPeer(peers, seeder.port) {
			err = fmt.Errorf("the reply's peers %x lack the seeder 127.0.0.1:%d", peers, seeder.port)
		}
		if err != nil {
			tally.failed++
			if tally.firstErr == nil {
				tally.firstErr = err
			}
		} else {
			tally.ok++
		}
		select {
		case <-stop:
			return tally
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// testPeer is a peer the test announces by hand.
type testPeer struct {
	id   string
	port int
	left int // 0: a seeder
}

func peerOf(port int) testPeer {
	return testPeer{id: fmt.Sprintf("-SL0001-%012d", port), port: port}
}

func announcePath(infoHash [20]byte, p testPeer) string {
	var q strings.Builder
	for _, b := range infoHash {
		fmt.Fprintf(&q, "%%%02X", b)
	}
	return "/announce?info_hash=" + q.String() + "&peer_id=" + p.id + "&port=" + strconv.Itoa(p.port) +
		"&uploaded=0&downloaded=0&left=" + strconv.Itoa(p.left) + "&compact=1"
}

// announceHTTP announces p and returns the reply's compact IPv4 peers. Any
// reply but a bencoded dictionary with an interval and no failure is an
// error.
func announceHTTP(client *http.Client, addr string, infoHash [20]byte, p testPeer) ([]byte, error) {
	resp, err := client.Get("http://" + addr + announcePath(infoHash, p))
	if err != nil {
		return nil, fmt.Errorf("announcing: %w", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("announce: status %s, %v, body %q", resp.Status, err, body)
	}
	v, err := bencode.Decode(body)
	if err != nil {
		return nil, fmt.Errorf("announce reply: %w in %q", err, body)
	}
	d, _ := v.(map[string]any)
	if reason, failed := d["failure reason"]; failed {
		return nil, fmt.Errorf("announce failed: %q", reason)
	}
	if interval, _ := d["interval"].(int64); interval <= 0 {
		return nil, fmt.Errorf("announce reply has no positive interval: %q", body)
	}
	peers, ok := d["peers"].(string)
	if !ok || len(peers)%6 != 0 {
		return nil, fmt.Errorf("announce reply has no compact peers: %q", body)
	}
	return []byte(peers), nil
}

// hasCompactPeer reports whether peers lists 127.0.0.1:port.
func hasCompactPeer(peers []byte, port int) bool {
	want := []byte{127, 0, 0, 1, byte(port >> 8), byte(port)}
	for p := range slices.Chunk(peers, 6) {
		if bytes.Equal(p, want) {
			return true
		}
	}
	return false
}

// countFDs counts the open file descriptors of process pid.
func countFDs(t *testing.T, pid int) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		t.Fatalf("counting herald's file descriptors: %v", err)
	}
	return len(entries)
}

// waitFDs polls herald's descriptor count for up to 10 s until ok accepts
// it, and returns it.
func waitFDs(t *testing.T, pid int, what string, ok func(int) bool) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := countFDs(t, pid)
		if ok(n) {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("herald holds %d file descriptors 10 s after %s", n, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
