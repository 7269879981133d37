//go:build !nofastpath

package httptracker

import (
	"net/netip"
	"testing"
	"time"

	"herald/swarm"
	"herald/tracker"
)

// BenchmarkFastPath is the user-space work of one request an event loop
// answers, short of its system calls: the head parsed, the request routed
// and answered through the tracker, the reply built.
func BenchmarkFastPath(b *testing.B) {
	// A swarm of four, as most are: the reply's peers are a small part
	// of the work here.
	store := newTestStore(b, swarm.Config{})
	for i := range 4 {
		a := swarm.Announce{InfoHash: hash20, Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), 6881), Left: uint64(i % 2)}
		if _, _, err := store.Announce(&a, swarm.FamilyBoth, swarm.Peers{}); err != nil {
			b.Fatal(err)
		}
	}
	h := newTestHandler(b, Config{Tracker: testTracker(b, tracker.Config{Store: store})})
	answer := h.fastAnswerer()
	remote := netip.MustParseAddr("192.0.2.1")
	date := []byte("Mon, 07 Dec 2026 19:00:00 GMT")
	for _, c := range fastPathHeads {
		b.Run(c.name, func(b *testing.B) {
			in := []byte(c.head)
			var head requestHead
			out := make([]byte, 0, 4096)
			b.ReportAllocs()
			for b.Loop() {
				n, res := parseRequestHead(in, &head)
				if res != headFast || n != len(in) {
					b.Fatalf("%s: parse %v %d", c.name, res, n)
				}
				var ok bool
				if out, ok = answer(out[:0], &head, remote, date, time.Now()); !ok || len(out) < 100 {
					b.Fatalf("%s: reply %q", c.name, out)
				}
			}
		})
	}
}
