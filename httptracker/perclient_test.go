package httptracker

import (
	"bytes"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"herald/counters"
	"herald/swarm"
	"herald/tracker"
)

// Issue 14 item 2: one client (an IPv4 address or IPv6 /64) cannot take
// every connection slot: by default it may hold DefaultMaxConnectionsPerClient
// open connections, while another client still gets in.
func TestConnectionsPerClient(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0", Config{Tracker: testTracker(t, tracker.Config{Store: newTestStore(t, swarm.Config{})})})
	const perClient = 256
	for range perClient {
		c, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	waitOpen(t, srv, perClient) // the client's connections
	extra, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	extra.SetDeadline(time.Now().Add(10 * time.Second))
	if n, err := extra.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection %d of one client: read %d, %v; want it closed at once", perClient+1, n, err)
	}
	if n := httpCounts(srv.handler).Events[counters.HTTP][counters.Turned]; n != 1 {
		t.Errorf("%d connections refused, want 1", n)
	}
	other := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	c, err := other.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("GET /announce?info_hash=" + q20 + "&port=1 HTTP/1.1\r\nHost: x\r\n\r\n"))
	reply := make([]byte, 4096)
	n, _ := c.Read(reply)
	if !bytes.Contains(reply[:n], []byte("interval")) {
		t.Fatalf("another client's announce: %q", reply[:n])
	}
}
