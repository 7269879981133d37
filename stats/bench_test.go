package stats

import (
	"encoding/binary"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"herald/counters"
	"herald/swarm"
)

// benchStore holds torrents torrents of 10 peers each.
func benchStore(b *testing.B, torrents int) *swarm.Store {
	b.Helper()
	store, err := swarm.New(swarm.Config{})
	if err != nil {
		b.Fatal(err)
	}
	for i := range torrents {
		var h swarm.InfoHash
		binary.BigEndian.PutUint64(h[:], uint64(i)*0x9E3779B97F4A7C15)
		for p := range 10 {
			a := &swarm.Announce{InfoHash: h, Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), byte(p)}), 6881), Left: uint64(p % 2), NumWant: 0}
			if _, _, err := store.Announce(a, swarm.FamilyV4, swarm.Peers{}); err != nil {
				b.Fatal(err)
			}
		}
	}
	return store
}

// BenchmarkAnnounce is one re-announce into a 100-peer swarm (50 peers
// returned), bare and with what metrics add on the hot path: the counter
// the frontends bump, and timing the request into the latency histogram.
func BenchmarkAnnounce(b *testing.B) {
	store, err := swarm.New(swarm.Config{})
	if err != nil {
		b.Fatal(err)
	}
	var h swarm.InfoHash
	h[0] = 1
	anns := make([]swarm.Announce, 100)
	for i := range anns {
		anns[i] = swarm.Announce{InfoHash: h, Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), 6881), Left: uint64(i % 2), NumWant: 50}
		if _, _, err := store.Announce(&anns[i], swarm.FamilyV4, swarm.Peers{}); err != nil {
			b.Fatal(err)
		}
	}
	var dst swarm.Peers
	set := counters.New()
	b.Run("bare", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			dst, _, _ = store.Announce(&anns[i%len(anns)], swarm.FamilyV4, swarm.Peers{V4: dst.V4[:0]})
		}
	})
	b.Run("counter", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			dst, _, _ = store.Announce(&anns[i%len(anns)], swarm.FamilyV4, swarm.Peers{V4: dst.V4[:0]})
			set.Request(counters.UDP, counters.Announce, counters.OK)
		}
	})
	b.Run("counter+histogram", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			start := time.Now()
			dst, _, _ = store.Announce(&anns[i%len(anns)], swarm.FamilyV4, swarm.Peers{V4: dst.V4[:0]})
			set.Request(counters.UDP, counters.Announce, counters.OK)
			d := time.Since(start)
			set.ObserveRequest(counters.UDP, d, d)
		}
	})
}

// BenchmarkClock is the cost of timing one request: two clock reads.
func BenchmarkClock(b *testing.B) {
	b.ReportAllocs()
	var total time.Duration
	for b.Loop() {
		start := time.Now()
		total += time.Since(start)
	}
	if total < 0 {
		b.Fatal("clock went backwards")
	}
}

// BenchmarkRead is what reading costs, off the hot path: the dashboard
// sampler's tick (every second), a full /metrics scrape, /stats modes over
// 100k torrents (1M peers), and the dashboard's data over a full ring.
func BenchmarkRead(b *testing.B) {
	store := benchStore(b, 100_000)
	reg := prometheus.NewRegistry()
	m, err := New(Config{Sources: Sources{Store: store}, Nets: testNets, Registry: reg})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("sample", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m.history.add(m.Snapshot(), m.usage.read(), time.Time{})
		}
	})
	h := m.Handler(remoteAddr)
	for _, target := range []string{"/stats?mode=torr", "/stats?mode=peer", "/stats?mode=top100", "/stats?mode=renew", "/metrics", "/dashboard/data"} {
		b.Run(strings.TrimPrefix(target, "/"), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodGet, target, nil)
				req.RemoteAddr = "127.0.0.1:1"
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatal(rec.Code)
				}
			}
		})
	}
}
