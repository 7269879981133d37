package httptracker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"herald/accounting"
	"herald/internal/servetest"
	"herald/swarm"
	"herald/tracker"
)

// benchStore holds one torrent with 100 IPv4 and 20 IPv6 peers, so every
// announce gets a full 50-peer reply.
func benchStore(b *testing.B) *swarm.Store {
	store := newTestStore(b, swarm.Config{})
	for i := range 120 {
		addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 6881)
		if i >= 100 {
			addr = netip.AddrPortFrom(netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", i)), 6881)
		}
		if _, _, err := store.Announce(&swarm.Announce{InfoHash: hash20, Addr: addr, Left: uint64(i % 3)}, swarm.FamilyBoth, swarm.Peers{}); err != nil {
			b.Fatal(err)
		}
	}
	return store
}

const benchQuery = "info_hash=" + q20 +
	"&peer_id=-TR2940-abcdefghijkl&port=51413&uploaded=0&downloaded=0&left=100&numwant=50&key=0A1B2C3D&compact=1"

// discardWriter is a ResponseWriter that keeps nothing, to measure the
// handler's own allocations.
type discardWriter struct {
	hdr    http.Header
	status int
	n      int
}

func (w *discardWriter) Header() http.Header         { return w.hdr }
func (w *discardWriter) WriteHeader(status int)      { w.status = status }
func (w *discardWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

func BenchmarkAnnounceHandler(b *testing.B) {
	h := newTestHandler(b, Config{Tracker: testTracker(b, tracker.Config{Store: benchStore(b)})})
	r := httptest.NewRequest("GET", "/announce?"+benchQuery, nil)
	w := &discardWriter{hdr: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		w.n = 0
		h.ServeHTTP(w, r)
	}
	if w.n < 300 {
		b.Fatalf("reply of %d bytes", w.n)
	}
}

// BenchmarkAnnounceHandlerKeys is BenchmarkAnnounceHandler through
// /KEY/announce, served by a tracker without keys ("off": the key is
// taken off the path and ignored) and by one that checks it against
// 100,000 listed keys and counts the announce in the per-key accounting
// ("on"), over the same store.
func BenchmarkAnnounceHandlerKeys(b *testing.B) {
	store := benchStore(b)
	off := newTestHandler(b, Config{Tracker: testTracker(b, tracker.Config{Store: store})})
	on := newTestHandler(b, Config{Tracker: testTracker(b, tracker.Config{Store: store, Keys: servetest.Keys(b, 100000), Ledger: accounting.New(time.Hour, 0)})})
	r := httptest.NewRequest("GET", "/"+servetest.Key(54321)+"/announce?"+benchQuery, nil)
	for _, c := range []struct {
		name string
		h    *Handler
	}{{"off", off}, {"on", on}} {
		w := &discardWriter{hdr: http.Header{}}
		c.h.ServeHTTP(w, r)
		if w.n < 300 {
			b.Fatalf("keys %s: reply of %d bytes", c.name, w.n)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.h.ServeHTTP(w, r)
			}
		})
	}
}

func BenchmarkAnnounceRecorder(b *testing.B) {
	h := newTestHandler(b, Config{Tracker: testTracker(b, tracker.Config{Store: benchStore(b)})})
	r := httptest.NewRequest("GET", "/announce?"+benchQuery, nil)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
}

func BenchmarkScrapeHandler(b *testing.B) {
	h := newTestHandler(b, Config{Tracker: testTracker(b, tracker.Config{Store: benchStore(b)})})
	r := httptest.NewRequest("GET", "/scrape?info_hash="+q20+"&info_hash="+q20[:57]+"%00", nil)
	w := &discardWriter{hdr: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

// BenchmarkAnnounceKeepAlive is an announce over a real loopback
// connection with keep-alive; allocations include the client's.
func BenchmarkAnnounceKeepAlive(b *testing.B) {
	srv, err := Listen("127.0.0.1:0", Config{Tracker: testTracker(b, tracker.Config{Store: benchStore(b)}), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	defer func() { cancel(); <-done }()

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	url := "http://" + srv.Addr().String() + "/announce?" + benchQuery
	b.ReportAllocs()
	for b.Loop() {
		resp, err := client.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// BenchmarkAnnounceKeepAliveParallel runs GOMAXPROCS keep-alive clients.
func BenchmarkAnnounceKeepAliveParallel(b *testing.B) {
	srv, err := Listen("127.0.0.1:0", Config{Tracker: testTracker(b, tracker.Config{Store: benchStore(b)}), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	defer func() { cancel(); <-done }()

	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	url := "http://" + srv.Addr().String() + "/announce?" + benchQuery
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}

// BenchmarkAnnounceKeepAliveRaw sends the same announces over one
// keep-alive connection from a client that allocates nothing, so the
// allocations reported are net/http's and the handler's, per request.
func BenchmarkAnnounceKeepAliveRaw(b *testing.B) {
	srv, err := Listen("127.0.0.1:0", Config{Tracker: testTracker(b, tracker.Config{Store: benchStore(b)}), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	defer func() { cancel(); <-done }()

	conn, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	request := []byte("GET /announce?" + benchQuery + " HTTP/1.1\r\nHost: tracker\r\nUser-Agent: bench\r\n\r\n")
	br := bufio.NewReaderSize(conn, 16<<10)
	body := make([]byte, 16<<10)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := conn.Write(request); err != nil {
			b.Fatal(err)
		}
		length := -1
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				b.Fatal(err)
			}
			if len(line) <= 2 {
				break
			}
			if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
				length = 0
				for _, c := range bytes.TrimSpace(v) {
					length = length*10 + int(c-'0')
				}
			}
		}
		if length < 300 {
			b.Fatalf("reply without a full Content-Length: %d", length)
		}
		if _, err := io.ReadFull(br, body[:length]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseAnnounce(b *testing.B) {
	var req announceRequest
	b.ReportAllocs()
	for b.Loop() {
		if err := parseAnnounce(benchQuery, &req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFullScrape measures a full scrape of 100,000 torrents, plain and
// gzip-compressed, into a writer that discards it.
func BenchmarkFullScrape(b *testing.B) {
	store := newTestStore(b, swarm.Config{})
	for i := range 100000 {
		var h swarm.InfoHash
		binary.BigEndian.PutUint32(h[:], uint32(i)*2654435761)
		store.Announce(&swarm.Announce{InfoHash: h, Addr: netip.MustParseAddrPort("10.0.0.1:1")}, swarm.FamilyBoth, swarm.Peers{})
	}
	h := newTestHandler(b, Config{Tracker: testTracker(b, tracker.Config{Store: store})})
	for _, enc := range []string{"identity", "gzip"} {
		b.Run(enc, func(b *testing.B) {
			r := httptest.NewRequest("GET", "/scrape", nil)
			r.Header.Set("Accept-Encoding", enc)
			w := &discardWriter{hdr: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				w.n = 0
				h.ServeHTTP(w, r)
			}
			b.ReportMetric(float64(w.n), "bytes/scrape")
		})
	}
}

// fastPathHeads are request heads as clients send them, one connection
// each: libtorrent's and Transmission's announces (query parameters in
// their order, the headers they add) and a one-hash scrape.
var fastPathHeads = []struct{ name, head string }{
	{"announce-libtorrent", "GET /announce?info_hash=" + q20 + "&peer_id=-lt2080-abcdefghijkl&port=6881&uploaded=0&downloaded=0&left=100" +
		"&corrupt=0&key=0A1B2C3D&event=started&numwant=200&compact=1&no_peer_id=1&supportcrypto=1&redundant=0 HTTP/1.1\r\n" +
		"Host: tracker.example:6969\r\nUser-Agent: libtorrent/2.0.8.0\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n"},
	{"announce-transmission", "GET /announce?info_hash=" + q20 + "&peer_id=-TR4050-abcdefghijkl&port=51413&uploaded=0&downloaded=0&left=100" +
		"&numwant=80&key=0A1B2C3D&compact=1&supportcrypto=1&event=started HTTP/1.1\r\n" +
		"Host: tracker.example:6969\r\nUser-Agent: Transmission/4.0.5\r\nAccept: */*\r\nAccept-Encoding: deflate, gzip, br, zstd\r\n\r\n"},
	{"scrape", "GET /scrape?info_hash=" + q20 + " HTTP/1.1\r\nHost: tracker.example:6969\r\nUser-Agent: Transmission/4.0.5\r\n" +
		"Accept: */*\r\nAccept-Encoding: deflate, gzip, br, zstd\r\n\r\n"},
}
