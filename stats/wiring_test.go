package stats

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"herald/counters"
	"herald/httptracker"
	"herald/swarm"
	"herald/tracker"
	"herald/udptracker"
)

// The store is a source as it is.
var _ Store = (*swarm.Store)(nil)

// TestWithRealFrontends wires the monitor as cmd/herald does, over real
// HTTP and UDP trackers on 127.0.0.1, and checks that an HTTP announce, a
// UDP connect and one rate-limited request of each protocol show in /stats
// and /metrics.
func TestWithRealFrontends(t *testing.T) {
	store, err := swarm.New(swarm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	var limited atomic.Bool // once set, the rate limit refuses everyone
	admit := func(netip.Addr, time.Time) bool { return !limited.Load() }
	set := counters.New()
	m, err := New(Config{
		Sources: Sources{Store: store, Counters: set},
		Nets:    testNets,
		Version: "herald wiring-test", Registry: prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	core, err := tracker.New(tracker.Config{Store: store, Admit: admit, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	httpSrv, err := httptracker.Listen("127.0.0.1:0", httptracker.Config{Tracker: core, Counters: set, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	udpSrv, err := udptracker.Listen("127.0.0.1:0", udptracker.Config{Tracker: core, Counters: set, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 2)
	go func() { errs <- httpSrv.Serve(ctx) }()
	go func() { errs <- udpSrv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		for range 2 {
			if err := <-errs; err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("serve: %v", err)
			}
		}
	})

	announceURL := "http://" + httpSrv.Addr().String() + "/announce?info_hash=" + strings.Repeat("%11", 20) + "&peer_id=" + strings.Repeat("A", 20) + "&port=6881&left=0&compact=1"
	httpAnnounce := func() string {
		res, err := http.Get(announceURL)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	httpAnnounce()

	conn, err := net.Dial("udp", udpSrv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	connect := binary.BigEndian.AppendUint64(nil, 0x41727101980)
	connect = binary.BigEndian.AppendUint32(connect, 0) // action connect
	connect = binary.BigEndian.AppendUint32(connect, 7) // transaction id
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(connect); err != nil {
		t.Fatal(err)
	}
	reply := make([]byte, 64)
	if n, err := conn.Read(reply); err != nil || n != 16 {
		t.Fatalf("connect reply: %d bytes, %v", n, err)
	}

	limited.Store(true)
	if got := httpAnnounce(); !strings.Contains(got, "failure reason") {
		t.Errorf("rate-limited HTTP announce answered %q, want a failure", got)
	}
	// A UDP announce with the connection id just issued: its refusal comes
	// back as an error packet (action 3), so it is counted once read.
	announce := binary.BigEndian.AppendUint64(nil, binary.BigEndian.Uint64(reply[8:16]))
	announce = binary.BigEndian.AppendUint32(announce, 1) // action announce
	announce = binary.BigEndian.AppendUint32(announce, 8) // transaction id
	announce = append(announce, make([]byte, 98-len(announce))...)
	if _, err := conn.Write(announce); err != nil {
		t.Fatal(err)
	}
	if n, err := conn.Read(reply); err != nil || n < 8 || binary.BigEndian.Uint32(reply) != 3 {
		t.Fatalf("rate-limited UDP announce: %d bytes %x, %v; want an error packet", n, reply[:n], err)
	}

	stats := httptest.NewServer(m.Handler(remoteAddr))
	defer stats.Close()
	read := func(path string) string {
		res, err := http.Get(stats.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	if got := read("/stats"); got != "1\n1\nopentracker serving 1 torrents\nopentracker" {
		t.Errorf("peer mode: %q", got)
	}
	// Two HTTP announces (one refused) and two stats requests; one UDP
	// connect and one refused announce.
	if got := read("/stats?mode=conn"); !strings.HasPrefix(got, "6\n2\n") {
		t.Errorf("conn mode: %q", got)
	}
	metrics := read("/metrics")
	for _, want := range []string{
		`herald_requests_total{action="announce",outcome="ok",protocol="http"} 1`,
		`herald_requests_total{action="connect",outcome="ok",protocol="udp"} 1`,
		`herald_peers{family="ipv4",role="seeder"} 1`,
		`herald_requests_total{action="announce",outcome="rate_limited",protocol="http"} 1`,
		`herald_requests_total{action="announce",outcome="rate_limited",protocol="udp"} 1`,
		`herald_errors_total{protocol="http",reason="rate_limited"} 1`,
		`herald_errors_total{protocol="udp",reason="rate_limited"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
