package wstracker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"herald/counters"
	"herald/internal/servetest"
)

// Issue 14 item 7: on listen.ws, a connection that made one plain HTTP
// request and then says nothing is closed after ReadHeaderTimeout, and
// open connections are capped by MaxConnections before any upgrade.
func TestOwnListenerTimesOutAndCapsConnections(t *testing.T) {
	s := startServer(t, Config{ReadHeaderTimeout: 200 * time.Millisecond, MaxConnections: 2})
	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	fmt.Fprintf(nc, "GET /announce HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("plain GET: %s", resp.Status)
	}
	nc.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("idle connection after a plain request: %v, want closed by the server", err)
	}

	// Two silent connections fill the cap; a third is closed at once.
	for range 2 {
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	servetest.WaitFor(t, 5*time.Second, func() error {
		if n := s.open.Load(); n != 2 {
			return fmt.Errorf("%d connections accepted, want 2", n)
		}
		return nil
	})
	third, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	third.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := third.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("connection beyond the cap: %v, want closed at once", err)
	}
	if n := event(s.handler, counters.Turned); n != 1 {
		t.Errorf("%d connections refused, want 1", n)
	}
}

// Issue 14 item 2: an upgraded connection that never sends a message is
// closed after FirstMessageTimeout (by default ReadHeaderTimeout), not
// after the idle timeout of minutes, and one client (an IPv4 address or
// IPv6 /64) may hold only MaxConnectionsPerClient (default 64) of them.
func TestSilentUpgradeAndConnectionsPerClient(t *testing.T) {
	s := startServer(t, Config{ReadHeaderTimeout: 300 * time.Millisecond})
	silent := dial(t, s)
	silent.nc.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := ws.ReadFrame(silent.nc); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("an upgraded connection that sent nothing: %v, want closed by the tracker", err)
	}

	s = startServer(t, Config{})
	const perClient = 64
	for range perClient {
		dial(t, s)
	}
	_, _, _, err := ws.Dial(context.Background(), "ws://"+s.Addr().String()+"/announce")
	var status ws.StatusError
	if !errors.As(err, &status) || int(status) != http.StatusServiceUnavailable {
		t.Fatalf("upgrade %d of one client: %v, want 503", perClient+1, err)
	}
	other := ws.Dialer{NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
		return d.DialContext(ctx, network, addr)
	}}
	nc, _, _, err := other.Dial(context.Background(), "ws://"+s.Addr().String()+"/announce")
	if err != nil {
		t.Fatalf("another client's upgrade: %v", err)
	}
	nc.Close()
	if n := event(s.handler, counters.Turned); n != 1 {
		t.Errorf("%d connections refused, want 1", n)
	}
}

// Issue 14 item 10: a peer that never reads does not stall the peers that
// relay offers to it (each relay waited up to WriteTimeout once its socket
// buffers were full): relays queue per receiver, and a receiver whose
// queue overflows is closed and counted.
func TestPeerThatNeverReadsDoesNotStallRelays(t *testing.T) {
	s := startServer(t, Config{WriteTimeout: 10 * time.Second, MessageBurst: 1000, MessageRate: 1000})
	sink := dial(t, s) // announces once, then never reads again
	sink.send(announce(hashA, peerB, `,"numwant":0`))
	sink.recv()

	relayer := dial(t, s)
	sdp := strings.Repeat("a", 30<<10)
	const announces = 300 // 9 MB of offers for the sink, beyond any socket buffer
	go func() {
		for i := range announces {
			o := id(fmt.Sprintf("offer-%d", i))
			wsutil.WriteClientText(relayer.nc, []byte(announce(hashA, peerA,
				`,"numwant":1,"offers":[{"offer":{"type":"offer","sdp":"`+sdp+`"},"offer_id":`+bin(o)+`}]`)))
		}
	}()
	// Every reply comes well within WriteTimeout.
	relayer.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i := range announces {
		if _, err := wsutil.ReadServerText(relayer.nc); err != nil {
			t.Fatalf("reply %d of %d to the relaying peer: %v", i+1, announces, err)
		}
	}
	servetest.WaitFor(t, 5*time.Second, func() error {
		if n := s.handler.counts.Read().Events[counters.WS][counters.SlowReaderClosed]; n != 1 {
			return fmt.Errorf("%d slow readers closed, want the sink", n)
		}
		return nil
	})
}

// Issue 14 item 6: one connection may join DefaultMaxSwarmsPerConn (100)
// swarms, about 53 KB at 533 B a join; the next announce is refused.
func TestSwarmsPerConnectionDefault(t *testing.T) {
	s := startServer(t, Config{MessageBurst: 1000})
	c := dial(t, s)
	for i := range 101 {
		c.send(announce(id(fmt.Sprintf("torrent-%d", i)), peerA, ""))
		r := c.recv()
		if fr, refused := r["failure reason"]; refused != (i == 100) {
			t.Fatalf("announce to swarm %d of one connection: failure %v", i+1, fr)
		}
	}
}
