package swarm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"
	"unsafe"
)

func newStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func hashN(n int) InfoHash {
	var h InfoHash
	binary.BigEndian.PutUint64(h[:], uint64(n)*0x9E3779B97F4A7C15)
	binary.BigEndian.PutUint32(h[16:], uint32(n))
	return h
}

func addr4(n int, port uint16) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)}), port)
}

func addr6(n int, port uint16) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 13: byte(n >> 16), 14: byte(n >> 8), 15: byte(n)}), port)
}

// announce is a test helper returning the peers as AddrPorts.
func announce(t testing.TB, s *Store, a Announce, want Family) ([]netip.AddrPort, Counts) {
	t.Helper()
	p, c, err := s.Announce(&a, want, Peers{})
	if err != nil {
		t.Fatalf("announce %v: %v", a.Addr, err)
	}
	return unpack(p), c
}

func unpack(p Peers) []netip.AddrPort {
	var out []netip.AddrPort
	for i := 0; i+PeerLen4 <= len(p.V4); i += PeerLen4 {
		out = append(out, netip.AddrPortFrom(netip.AddrFrom4([4]byte(p.V4[i:i+4])), binary.BigEndian.Uint16(p.V4[i+4:])))
	}
	for i := 0; i+PeerLen6 <= len(p.V6); i += PeerLen6 {
		out = append(out, netip.AddrPortFrom(netip.AddrFrom16([16]byte(p.V6[i:i+16])), binary.BigEndian.Uint16(p.V6[i+16:])))
	}
	return out
}

func TestPeersSeeEachOtherButNotThemselves(t *testing.T) {
	s := newStore(t, Config{})
	h := hashN(1)
	a, b := addr4(1, 6881), addr4(2, 6881)
	peers, c := announce(t, s, Announce{InfoHash: h, Addr: a, Left: 10, NumWant: 50}, FamilyBoth)
	if len(peers) != 0 || c != (Counts{Leechers: 1}) {
		t.Fatalf("first peer got %v %+v, want no peers and 1 leecher", peers, c)
	}
	peers, c = announce(t, s, Announce{InfoHash: h, Addr: b, Left: 0, NumWant: 50}, FamilyBoth)
	if len(peers) != 1 || peers[0] != a || c != (Counts{Seeders: 1, Leechers: 1}) {
		t.Fatalf("second peer got %v %+v, want [%v] and 1 seeder 1 leecher", peers, c, a)
	}
	peers, _ = announce(t, s, Announce{InfoHash: h, Addr: a, Left: 10, NumWant: 50}, FamilyBoth)
	if len(peers) != 1 || peers[0] != b {
		t.Fatalf("re-announce got %v, want only [%v]", peers, b)
	}
	// Same IP, other port: a different peer.
	peers, c = announce(t, s, Announce{InfoHash: h, Addr: addr4(1, 6882), Left: 10, NumWant: 50}, FamilyBoth)
	if len(peers) != 2 || c.Leechers != 2 || c.Seeders != 1 {
		t.Fatalf("same IP other port got %v %+v", peers, c)
	}
}

func TestMappedIPv4IsIPv4(t *testing.T) {
	s := newStore(t, Config{})
	h := hashN(1)
	mapped := netip.AddrPortFrom(netip.MustParseAddr("::ffff:10.0.0.1"), 1000)
	announce(t, s, Announce{InfoHash: h, Addr: mapped, Left: 1, NumWant: 50}, FamilyBoth)
	p, _, _ := s.Announce(&Announce{InfoHash: h, Addr: addr4(9, 1), Left: 1, NumWant: 50}, FamilyBoth, Peers{})
	if len(p.V4) != PeerLen4 || len(p.V6) != 0 {
		t.Fatalf("mapped peer stored as v6: %x / %x", p.V4, p.V6)
	}
}

func TestFamiliesKeptApart(t *testing.T) {
	s := newStore(t, Config{})
	h := hashN(1)
	for i := range 5 {
		announce(t, s, Announce{InfoHash: h, Addr: addr4(i, 1), Left: 1, NumWant: 50}, FamilyBoth)
		announce(t, s, Announce{InfoHash: h, Addr: addr6(i, 1), Left: 0, NumWant: 50}, FamilyBoth)
	}
	p, c, _ := s.Announce(&Announce{InfoHash: h, Addr: addr6(100, 1), Left: 1, NumWant: 50}, FamilyV6, Peers{})
	if len(p.V4) != 0 || len(p.V6) != 5*PeerLen6 {
		t.Fatalf("v6-only announce got %d v4 bytes, %d v6 bytes", len(p.V4), len(p.V6))
	}
	if c != (Counts{Seeders: 5, Leechers: 6}) {
		t.Fatalf("counts %+v, want totals over both families", c)
	}
	p, _, _ = s.Announce(&Announce{InfoHash: h, Addr: addr4(100, 1), Left: 1, NumWant: 50}, FamilyBoth, Peers{})
	if len(p.V4) != 5*PeerLen4 || len(p.V6) != 6*PeerLen6 { // addr6(100) joined above
		t.Fatalf("both-family announce got %d v4 bytes, %d v6 bytes", len(p.V4), len(p.V6))
	}
	tot := s.Totals()
	if tot.Seeders6 != 5 || tot.Leechers6 != 1 || tot.Leechers4 != 6 || tot.Seeders4 != 0 {
		t.Fatalf("totals %+v", tot)
	}
}

func TestStoppedRemovesPeer(t *testing.T) {
	s := newStore(t, Config{})
	h := hashN(1)
	announce(t, s, Announce{InfoHash: h, Addr: addr4(1, 1), Left: 1, NumWant: 50}, FamilyBoth)
	announce(t, s, Announce{InfoHash: h, Addr: addr4(2, 1), Left: 0, NumWant: 50}, FamilyBoth)
	peers, c := announce(t, s, Announce{InfoHash: h, Addr: addr4(2, 1), Event: EventStopped, NumWant: 50}, FamilyBoth)
	if len(peers) != 0 || c != (Counts{Leechers: 1}) {
		t.Fatalf("stopped got %v %+v, want no peers, 1 leecher left", peers, c)
	}
	peers, _ = announce(t, s, Announce{InfoHash: h, Addr: addr4(3, 1), Left: 1, NumWant: 50}, FamilyBoth)
	if len(peers) != 1 || peers[0] != addr4(1, 1) {
		t.Fatalf("after stop got %v, want only the remaining leecher", peers)
	}
	if s.Peers() != 2 {
		t.Fatalf("Peers() = %d, want 2", s.Peers())
	}
	// A stop for an unknown torrent creates nothing.
	announce(t, s, Announce{InfoHash: hashN(2), Addr: addr4(3, 1), Event: EventStopped}, FamilyBoth)
	if _, ok := s.Scrape(hashN(2)); ok || s.Torrents() != 1 {
		t.Fatalf("stopped announce created a torrent")
	}
}

func TestCompletedTurnsLeecherIntoSeederOnce(t *testing.T) {
	s := newStore(t, Config{})
	h := hashN(1)
	announce(t, s, Announce{InfoHash: h, Addr: addr4(1, 1), Left: 100, Event: EventStarted}, FamilyBoth)
	_, c := announce(t, s, Announce{InfoHash: h, Addr: addr4(1, 1), Left: 0, Event: EventCompleted}, FamilyBoth)
	if c != (Counts{Seeders: 1, Completed: 1}) {
		t.Fatalf("after completed: %+v", c)
	}
	// A completed event from a peer that still needs data is not a download.
	_, c = announce(t, s, Announce{InfoHash: h, Addr: addr4(2, 1), Left: 5, Event: EventCompleted}, FamilyBoth)
	if c != (Counts{Seeders: 1, Leechers: 1, Completed: 1}) {
		t.Fatalf("completed with left > 0 counted: %+v", c)
	}
	// A client that repeats completed is counted once.
	_, c = announce(t, s, Announce{InfoHash: h, Addr: addr4(1, 1), Left: 0, Event: EventCompleted}, FamilyBoth)
	if c.Completed != 1 {
		t.Fatalf("completed counted twice: %+v", c)
	}
	sc, ok := s.Scrape(h)
	if !ok || sc != c {
		t.Fatalf("scrape %+v %v, want %+v", sc, ok, c)
	}
}

func TestExpiry(t *testing.T) {
	s := newStore(t, Config{PeerTimeout: 10 * time.Minute, TorrentTimeout: time.Hour})
	t0 := time.Now()
	s.SetNow(t0)
	done, empty := hashN(1), hashN(2)
	announce(t, s, Announce{InfoHash: done, Addr: addr4(1, 1), Event: EventCompleted}, FamilyBoth)
	announce(t, s, Announce{InfoHash: empty, Addr: addr4(1, 1), Left: 1}, FamilyBoth)
	announce(t, s, Announce{InfoHash: empty, Addr: addr6(1, 1), Left: 1}, FamilyBoth)

	s.SetNow(t0.Add(5 * time.Minute))
	announce(t, s, Announce{InfoHash: empty, Addr: addr4(2, 1), Left: 1}, FamilyBoth) // fresh peer
	s.SetNow(t0.Add(11 * time.Minute))
	s.Clean()
	if c, ok := s.Scrape(empty); !ok || c.Leechers != 1 {
		t.Fatalf("after first timeout: %+v %v, want the fresh leecher only", c, ok)
	}
	if c, ok := s.Scrape(done); !ok || c != (Counts{Completed: 1}) {
		t.Fatalf("completed torrent: %+v %v, want kept with its downloaded count", c, ok)
	}
	s.SetNow(t0.Add(16 * time.Minute))
	s.Clean()
	if _, ok := s.Scrape(empty); ok {
		t.Fatal("empty torrent that never completed was kept")
	}
	s.SetNow(t0.Add(62 * time.Minute))
	s.Clean()
	if _, ok := s.Scrape(done); ok || s.Torrents() != 0 || s.Peers() != 0 {
		t.Fatalf("after torrent timeout: %d torrents %d peers remain", s.Torrents(), s.Peers())
	}
}

// Many clean cycles over hours must never resurrect or wrongly expire a peer
// that keeps announcing (the one-byte age stamp wraps).
func TestAgeStampWrap(t *testing.T) {
	s := newStore(t, Config{PeerTimeout: 2 * time.Minute, CleanInterval: 30 * time.Second})
	t0 := time.Now()
	h := hashN(1)
	for step := range 2000 { // 2000 × 30 s ≈ 16 h, many wraps
		now := t0.Add(time.Duration(step) * 30 * time.Second)
		s.SetNow(now)
		if step%2 == 0 {
			announce(t, s, Announce{InfoHash: h, Addr: addr4(1, 1), Left: 1}, FamilyBoth)
		}
		if step == 1000 {
			announce(t, s, Announce{InfoHash: h, Addr: addr4(2, 1), Left: 1}, FamilyBoth)
		}
		s.Clean()
		c, _ := s.Scrape(h)
		wantLeechers := uint32(1)
		if step >= 1000 && step < 1004 {
			wantLeechers = 2
		}
		if c.Leechers != wantLeechers {
			t.Fatalf("step %d: %d leechers, want %d", step, c.Leechers, wantLeechers)
		}
	}
}

func TestNumWantAndDistinctPicks(t *testing.T) {
	for _, n := range []int{3, 60, 1500, 20000} { // small, medium, bucketed
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			s := newStore(t, Config{})
			h := hashN(1)
			for i := range n {
				announce(t, s, Announce{InfoHash: h, Addr: addr4(i, 1), Left: uint64(i % 2)}, FamilyBoth)
			}
			self := addr4(n/2, 1)
			seen := map[netip.AddrPort]int{}
			for range 50 {
				peers, c := announce(t, s, Announce{InfoHash: h, Addr: self, Left: 1, NumWant: 50}, FamilyBoth)
				if int(c.Seeders+c.Leechers) != n {
					t.Fatalf("counts %+v, want %d peers", c, n)
				}
				if want := min(50, n-1); len(peers) != want {
					t.Fatalf("got %d peers, want %d", len(peers), want)
				}
				dup := map[netip.AddrPort]bool{}
				for _, p := range peers {
					if p == self {
						t.Fatal("requester returned to itself")
					}
					if dup[p] {
						t.Fatalf("peer %v returned twice", p)
					}
					dup[p] = true
					seen[p]++
				}
			}
			// Over 50 announces, picks spread over the swarm like uniform
			// sampling would (expected distinct: m(1-e^(-picks/m))).
			m := float64(n - 1)
			if want := int(0.9 * m * (1 - math.Exp(-float64(50*min(50, n-1))/m))); len(seen) < want {
				t.Fatalf("only %d distinct peers seen over 50 announces, want at least %d", len(seen), want)
			}
			// MaxNumWant caps.
			peers, _ := announce(t, s, Announce{InfoHash: h, Addr: self, Left: 1, NumWant: 100000}, FamilyBoth)
			if len(peers) != min(n-1, DefaultMaxNumWant) {
				t.Fatalf("numwant cap: got %d peers", len(peers))
			}
		})
	}
}

// TestPicksUniform checks that sampling gives every other peer the same
// chance: over many announces each peer's count of picks is tested against
// the uniform expectation (chi-square, at a bound a correct sampler passes
// with probability above 1-1e-6). Swarms plain and bucketed, with windows
// of unequal sizes (75 others for 50 wanted), the requester first, in the
// middle, last, and not in the list at all (an address of the other
// family wanting these peers); IPv4 and IPv6.
func TestPicksUniform(t *testing.T) {
	for _, tc := range []struct {
		n, self, announces int
		v6                 bool
	}{
		{76, 0, 2000, false}, {76, 40, 2000, false}, {76, 75, 2000, false}, {76, -1, 2000, false},
		{301, 150, 2000, false}, {301, 300, 2000, false}, {301, 100, 2000, true},
		{2001, 1000, 4000, false}, {2001, 0, 4000, false}, {2001, 2000, 4000, false}, {2001, -1, 4000, false},
		{2001, 700, 4000, true}, {2001, -1, 4000, true},
	} {
		t.Run(fmt.Sprintf("%d/%d/v6=%v", tc.n, tc.self, tc.v6), func(t *testing.T) {
			s := newStore(t, Config{})
			h := hashN(1)
			addr, other, fam := addr4, addr6, FamilyV4
			if tc.v6 {
				addr, other, fam = addr6, addr4, FamilyV6
			}
			for i := range tc.n {
				announce(t, s, Announce{InfoHash: h, Addr: addr(i, uint16(i%3+1)), Left: 1}, FamilyBoth)
			}
			self, others := other(1, 1), tc.n
			if tc.self >= 0 {
				self, others = addr(tc.self, uint16(tc.self%3+1)), tc.n-1
			}
			count := map[netip.AddrPort]int{}
			for range tc.announces {
				peers, _ := announce(t, s, Announce{InfoHash: h, Addr: self, Left: 1, NumWant: 50}, fam)
				if len(peers) != 50 {
					t.Fatalf("%d peers, want 50", len(peers))
				}
				for _, p := range peers {
					count[p]++
				}
			}
			if count[self] != 0 || len(count) != others {
				t.Fatalf("requester picked %d times; %d distinct peers picked, want %d", count[self], len(count), others)
			}
			expect := float64(tc.announces*50) / float64(others)
			chi := 0.0
			for _, c := range count {
				chi += (float64(c) - expect) * (float64(c) - expect) / expect
			}
			df := float64(others - 1)
			if bound := df + 7*math.Sqrt(2*df); chi > bound {
				t.Errorf("chi-square %.0f over %d peers (bound %.0f): picks are not uniform", chi, others, bound)
			}
		})
	}
}

func TestBigListSplitsAndMerges(t *testing.T) {
	s := newStore(t, Config{})
	h := hashN(1)
	const n = 3000
	for i := range n {
		announce(t, s, Announce{InfoHash: h, Addr: addr6(i, uint16(i+1)), Left: 0}, FamilyBoth)
	}
	// Re-announcing every peer finds it (no duplicates after the split).
	for i := range n {
		announce(t, s, Announce{InfoHash: h, Addr: addr6(i, uint16(i+1)), Left: 1}, FamilyBoth)
	}
	if c, _ := s.Scrape(h); c != (Counts{Leechers: n}) || s.Peers() != n {
		t.Fatalf("after re-announce %+v, %d peers", c, s.Peers())
	}
	for i := range n - 10 {
		announce(t, s, Announce{InfoHash: h, Addr: addr6(i, uint16(i+1)), Event: EventStopped}, FamilyBoth)
	}
	peers, c := announce(t, s, Announce{InfoHash: h, Addr: addr6(n-1, uint16(n)), Left: 1, NumWant: 50}, FamilyBoth)
	if c.Leechers != 10 || len(peers) != 9 {
		t.Fatalf("after stops: %+v, %d peers", c, len(peers))
	}
	for _, p := range peers {
		if i := int(p.Port()) - 1; i < n-10 || p != addr6(i, uint16(i+1)) {
			t.Fatalf("stopped or unknown peer returned: %v", p)
		}
	}
}

func TestMixedFamiliesSplitNumWant(t *testing.T) {
	s := newStore(t, Config{})
	h := hashN(1)
	for i := range 100 {
		announce(t, s, Announce{InfoHash: h, Addr: addr4(i, 1), Left: 1}, FamilyBoth)
	}
	for i := range 10 {
		announce(t, s, Announce{InfoHash: h, Addr: addr6(i, 1), Left: 1}, FamilyBoth)
	}
	p, _, _ := s.Announce(&Announce{InfoHash: h, Addr: addr4(500, 1), Left: 1, NumWant: 40}, FamilyBoth, Peers{})
	n4, n6 := len(p.V4)/PeerLen4, len(p.V6)/PeerLen6
	if n4+n6 != 40 || n6 != 10 {
		t.Fatalf("got %d v4 + %d v6 peers, want 30 + 10 (a quarter of numwant each first)", n4, n6)
	}
}

func TestLimits(t *testing.T) {
	s := newStore(t, Config{MaxTorrents: 2, MaxPeers: 3})
	announce(t, s, Announce{InfoHash: hashN(1), Addr: addr4(1, 1)}, FamilyBoth)
	announce(t, s, Announce{InfoHash: hashN(2), Addr: addr4(1, 1)}, FamilyBoth)
	if _, _, err := s.Announce(&Announce{InfoHash: hashN(3), Addr: addr4(1, 1)}, FamilyBoth, Peers{}); err != ErrTorrentLimit {
		t.Fatalf("third torrent: err %v, want ErrTorrentLimit", err)
	}
	announce(t, s, Announce{InfoHash: hashN(1), Addr: addr4(2, 1)}, FamilyBoth)
	if _, _, err := s.Announce(&Announce{InfoHash: hashN(1), Addr: addr4(3, 1)}, FamilyBoth, Peers{}); err != ErrPeerLimit {
		t.Fatalf("fourth peer: err %v, want ErrPeerLimit", err)
	}
	// Existing peers keep announcing at the limit.
	announce(t, s, Announce{InfoHash: hashN(1), Addr: addr4(2, 1)}, FamilyBoth)
	if _, _, err := s.Announce(&Announce{InfoHash: hashN(1), Addr: netip.AddrPort{}}, FamilyBoth, Peers{}); err != ErrInvalidAddr {
		t.Fatalf("invalid address: err %v", err)
	}
}

// TestLimitsExactUnderConcurrency races announces of new torrents and new
// peers on every shard: the store must end exactly at its bounds, never
// above (a check-then-add let each racing shard pass at the bound minus
// one).
func TestLimitsExactUnderConcurrency(t *testing.T) {
	const maxTorrents, maxPeers, workers, each = 500, 800, 8, 4000
	s := newStore(t, Config{MaxTorrents: maxTorrents, MaxPeers: maxPeers})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				n := w*each + i
				// Half new torrents, half new peers on a few shared torrents.
				h := hashN(n)
				if n%2 == 1 {
					h = hashN(n % 7)
				}
				s.Announce(&Announce{InfoHash: h, Addr: addr4(n, 1)}, 0, Peers{})
			}
		})
	}
	wg.Wait()
	if s.Torrents() > maxTorrents || s.Peers() > maxPeers {
		t.Fatalf("%d torrents, %d peers: above the bounds %d, %d", s.Torrents(), s.Peers(), maxTorrents, maxPeers)
	}
	if s.Peers() != maxPeers {
		t.Errorf("%d peers, want the bound %d reached", s.Peers(), maxPeers)
	}
}

// TestRefusalsCounted fills the store to its bounds with hashes spread over
// many shards and checks that every refused announce and restore is counted
// under its reason, that accepted ones are not, and that refusing allocates
// nothing (a flood of new hashes at the bound costs no garbage).
func TestRefusalsCounted(t *testing.T) {
	s := newStore(t, Config{Shards: 64, MaxTorrents: 100, MaxPeers: 150})
	for i := range 100 {
		announce(t, s, Announce{InfoHash: hashN(i), Addr: addr4(i, 1)}, FamilyBoth)
	}
	for i := range 50 { // second peers in the first 50 torrents reach MaxPeers
		announce(t, s, Announce{InfoHash: hashN(i), Addr: addr6(i, 1)}, FamilyBoth)
	}
	if r := s.Refusals(); r != (Refusals{}) {
		t.Fatalf("refusals %+v before any bound was hit", r)
	}
	for i := range 300 {
		if _, _, err := s.Announce(&Announce{InfoHash: hashN(1000 + i), Addr: addr4(i, 2)}, FamilyBoth, Peers{}); err != ErrTorrentLimit {
			t.Fatalf("new torrent %d past the bound: err %v", i, err)
		}
	}
	for i := range 70 {
		if _, _, err := s.Announce(&Announce{InfoHash: hashN(i), Addr: addr4(i, 3)}, FamilyBoth, Peers{}); err != ErrPeerLimit {
			t.Fatalf("new peer %d past the bound: err %v", i, err)
		}
	}
	// Known peers, stopped events and stopped unknown torrents are no refusals.
	announce(t, s, Announce{InfoHash: hashN(7), Addr: addr4(7, 1)}, FamilyBoth)
	announce(t, s, Announce{InfoHash: hashN(5000), Addr: addr4(1, 9), Event: EventStopped}, FamilyBoth)
	if _, err := s.Restore(&TorrentState{InfoHash: hashN(6000), Peers: []PeerState{{Addr: addr4(1, 1)}}}); err != ErrTorrentLimit {
		t.Fatalf("restore of a new torrent past the bound: err %v", err)
	}
	if _, err := s.Restore(&TorrentState{InfoHash: hashN(8), Peers: []PeerState{{Addr: addr4(9, 9)}}}); err != ErrPeerLimit {
		t.Fatalf("restore of a new peer past the bound: err %v", err)
	}
	if r, want := s.Refusals(), (Refusals{TorrentLimit: 301, PeerLimit: 71}); r != want {
		t.Fatalf("refusals %+v, want %+v", r, want)
	}
	if s.Torrents() != 100 || s.Peers() != 150 {
		t.Fatalf("%d torrents, %d peers: refusals changed the store", s.Torrents(), s.Peers())
	}
	a := Announce{InfoHash: hashN(9999), Addr: addr4(1, 1)}
	if n := testing.AllocsPerRun(100, func() { s.Announce(&a, FamilyBoth, Peers{}) }); n != 0 {
		t.Errorf("a refused announce allocates %v times", n)
	}
}

func TestRangeVisitsEveryTorrent(t *testing.T) {
	s := newStore(t, Config{Shards: 16})
	for i := range 1000 {
		announce(t, s, Announce{InfoHash: hashN(i), Addr: addr4(i, 1)}, FamilyBoth)
	}
	seen := map[InfoHash]bool{}
	var last InfoHash
	s.Range(func(tc TorrentCounts) bool {
		if tc.Seeders != 1 {
			t.Fatalf("torrent %x: %+v", tc.InfoHash, tc.Counts)
		}
		if len(seen) > 0 && bytes.Compare(last[:], tc.InfoHash[:]) >= 0 {
			t.Fatalf("Range out of info hash order: %x after %x", tc.InfoHash, last)
		}
		last = tc.InfoHash
		seen[tc.InfoHash] = true
		return true
	})
	if len(seen) != 1000 {
		t.Fatalf("Range saw %d torrents, want 1000", len(seen))
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{{Shards: 3}, {PeerTimeout: time.Millisecond}, {CleanInterval: time.Hour, PeerTimeout: time.Minute}, {MaxPeers: -1}} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted an invalid config", cfg)
		}
	}
}

func BenchmarkAnnounce(b *testing.B) { benchmarkAnnounce(b, false) }

// BenchmarkAnnounceShuffled visits the torrents in a random order, as
// clients do. BenchmarkAnnounce visits them in the order they were filled,
// which the Go heap's layout (torrents allocated one after another) turned
// into sequential memory access; the per-shard tables and arenas do not
// (docs/benchmarks.md, "Store speed").
func BenchmarkAnnounceShuffled(b *testing.B) { benchmarkAnnounce(b, true) }

func benchmarkAnnounce(b *testing.B, shuffled bool) {
	s := newStore(b, Config{})
	const torrents, peersPer = 10000, 20
	for i := range torrents {
		for j := range peersPer {
			announce(b, s, Announce{InfoHash: hashN(i), Addr: addr4(i*peersPer+j, 1), Left: uint64(j % 2)}, FamilyBoth)
		}
	}
	order := make([]int, torrents)
	for i := range order {
		order[i] = i
	}
	if shuffled {
		rand.New(rand.NewPCG(1, 2)).Shuffle(torrents, func(i, j int) { order[i], order[j] = order[j], order[i] })
	}
	dst := Peers{V4: make([]byte, 0, 200*PeerLen4), V6: make([]byte, 0, 200*PeerLen6)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		tor := order[i%torrents]
		a := Announce{InfoHash: hashN(tor), Addr: addr4(tor*peersPer+i%peersPer, 1), Left: 1, NumWant: 50}
		if _, _, err := s.Announce(&a, FamilyBoth, dst); err != nil {
			b.Fatal(err)
		}
	}
}

// fillStore announces peers IPv4 peers, peer i to torrent i mod torrents,
// every other one a seeder.
func fillStore(tb testing.TB, s *Store, torrents, peers int) {
	for i := range peers {
		announce(tb, s, Announce{InfoHash: hashN(i % torrents), Addr: addr4(i, 1), Left: uint64(i % 2)}, FamilyBoth)
	}
}

func BenchmarkScrape(b *testing.B) {
	s := newStore(b, Config{})
	const torrents = 100_000
	fillStore(b, s, torrents, torrents*2)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, ok := s.Scrape(hashN(i % (2 * torrents))); ok != (i%(2*torrents) < torrents) {
			b.Fatal("scrape found a torrent never announced or missed one")
		}
	}
}

func BenchmarkAnnounceParallel(b *testing.B) {
	s := newStore(b, Config{})
	const torrents = 10000
	fillStore(b, s, torrents, torrents*10)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		dst := Peers{V4: make([]byte, 0, 200*PeerLen4), V6: make([]byte, 0, 200*PeerLen6)}
		i := 0
		for pb.Next() {
			i++
			a := Announce{InfoHash: hashN(i % torrents), Addr: addr4(i%(torrents*10), 1), Left: 1, NumWant: 50}
			if _, _, err := s.Announce(&a, FamilyBoth, dst); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkMemoryPerPeer fills peers over torrents in the two shapes of
// docs/benchmarks.md and reports bytes per peer: live Go heap, the regions
// mapped outside it (tables and arenas), and their sum (opentracker: 8 bytes
// per IPv4 record plus per-torrent overhead).
func BenchmarkMemoryPerPeer(b *testing.B) {
	for _, shape := range []struct{ torrents, peers int }{{100_000, 1_000_000}, {1_000_000, 2_000_000}} {
		for _, fam := range []string{"v4", "v6"} {
			b.Run(fmt.Sprintf("%dx%d/%s", shape.torrents, shape.peers/shape.torrents, fam), func(b *testing.B) {
				for b.Loop() {
					runtime.GC()
					var before, after runtime.MemStats
					runtime.ReadMemStats(&before)
					s := newStore(b, Config{})
					for i := range shape.peers {
						addr := addr4(i, uint16(i%65535+1))
						if fam == "v6" {
							addr = addr6(i, uint16(i%65535+1))
						}
						a := Announce{InfoHash: hashN(i % shape.torrents), Addr: addr, Left: uint64(i % 3)}
						if _, _, err := s.Announce(&a, FamilyBoth, Peers{}); err != nil {
							b.Fatal(err)
						}
					}
					runtime.GC()
					runtime.ReadMemStats(&after)
					heap := float64(after.HeapInuse-before.HeapInuse) / float64(shape.peers)
					mapped := float64(s.mappedBytes()) / float64(shape.peers)
					b.ReportMetric(heap, "heap-B/peer")
					b.ReportMetric(mapped, "mapped-B/peer")
					b.ReportMetric(heap+mapped, "B/peer")
					runtime.KeepAlive(s)
				}
			})
		}
	}
}

// mappedBytes is the size of the shards' regions outside the Go heap.
func (s *Store) mappedBytes() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for _, r := range []region{sh.tabMem, sh.arena.mem} {
			if r.mapped {
				n += len(r.b)
			}
		}
		sh.mu.Unlock()
	}
	return n
}

func TestDecoyPeers(t *testing.T) {
	s := newStore(t, Config{DecoyPeers: 3})
	h := hashN(1)
	real := map[netip.AddrPort]bool{}
	for i := range 100 {
		real[addr4(i, 1)] = true
		announce(t, s, Announce{InfoHash: h, Addr: addr4(i, 1), Left: 1}, FamilyBoth)
	}
	for _, family := range []Family{FamilyV4, FamilyV6} {
		self := addr4(7, 1)
		if family == FamilyV6 {
			self = addr6(7, 1)
			announce(t, s, Announce{InfoHash: h, Addr: addr6(8, 1), Left: 1}, FamilyBoth)
			real[addr6(8, 1)] = true
		}
		peers, c := announce(t, s, Announce{InfoHash: h, Addr: self, Left: 1, NumWant: 20}, family)
		decoys := 0
		for _, p := range peers {
			if !real[p] {
				decoys++
				a := p.Addr()
				if !a.IsGlobalUnicast() || a.IsPrivate() || p.Port() < 1024 || FamilyOf(a) != family {
					t.Errorf("implausible decoy %v", p)
				}
			}
		}
		if decoys != 3 {
			t.Errorf("%v: %d decoys among %d peers, want 3", family, decoys, len(peers))
		}
		if family == FamilyV4 && (len(peers) != 20 || c.Leechers != 100) {
			t.Errorf("decoys must take the place of real peers within numwant and not change counts: %d peers, %+v", len(peers), c)
		}
	}
	// An IPv4 address announced over IPv6 (UDP ip field) wants IPv6 peers
	// back, so that is where its decoys go.
	p, _, _ := s.Announce(&Announce{InfoHash: h, Addr: addr4(300, 1), Left: 1, NumWant: 20}, FamilyV6, Peers{})
	if len(p.V4) != 0 || len(p.V6) < 3*PeerLen6 {
		t.Errorf("decoys for a v4 address wanting v6 peers: %d v4 bytes, %d v6 bytes", len(p.V4), len(p.V6))
	}
}

type recordingSink struct{ got []Announce }

func (r *recordingSink) Announced(a Announce) { r.got = append(r.got, a) }

func TestSinkSeesAcceptedAnnounces(t *testing.T) {
	sink := &recordingSink{}
	s := newStore(t, Config{Sink: sink, MaxTorrents: 1})
	announce(t, s, Announce{InfoHash: hashN(1), Addr: addr4(1, 1), Event: EventStarted}, FamilyBoth)
	announce(t, s, Announce{InfoHash: hashN(1), Addr: addr4(1, 1), Event: EventStopped}, FamilyBoth)
	s.Announce(&Announce{InfoHash: hashN(2), Addr: addr4(1, 1)}, FamilyBoth, Peers{}) // refused: torrent limit
	if len(sink.got) != 2 || sink.got[0].Event != EventStarted || sink.got[1].Event != EventStopped {
		t.Fatalf("sink saw %+v, want the started and stopped announces only", sink.got)
	}
}

// BenchmarkAnnounceSampled announces into swarms larger than numwant, so
// every announce samples 50 of 199 other peers at random.
func BenchmarkAnnounceSampled(b *testing.B) { benchmarkSampled(b, 1000, 200) }

// BenchmarkAnnounceBigSwarm announces into 10 swarms of 5,000 peers,
// bucketed lists: every announce samples 50 peers across 64 buckets.
func BenchmarkAnnounceBigSwarm(b *testing.B) { benchmarkSampled(b, 10, 5000) }

func benchmarkSampled(b *testing.B, torrents, peersPer int) {
	s := newStore(b, Config{})
	fillStore(b, s, torrents, torrents*peersPer)
	dst := Peers{V4: make([]byte, 0, 200*PeerLen4), V6: make([]byte, 0, 200*PeerLen6)}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		a := Announce{InfoHash: hashN(i % torrents), Addr: addr4(i%(torrents*peersPer), 1), Left: 1, NumWant: 50}
		if _, _, err := s.Announce(&a, FamilyBoth, dst); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRenewals: a re-announce counts at the minutes since the peer's
// previous announce, as opentracker's mode=renew; a first announce, a
// stop and a refused announce do not count.
func TestRenewals(t *testing.T) {
	s := newStore(t, Config{})
	t0 := s.epoch
	s.SetNow(t0)
	a := Announce{InfoHash: hashN(1), Addr: addr4(1, 6881), Left: 1}
	announce(t, s, a, FamilyBoth)
	announce(t, s, a, FamilyBoth) // at once: minute 0
	s.SetNow(t0.Add(10*time.Minute + 30*time.Second))
	announce(t, s, a, FamilyBoth) // minute 10
	s.SetNow(t0.Add(60 * time.Minute))
	announce(t, s, a, FamilyBoth)                                                  // 49.5 minutes later: the last minute
	announce(t, s, Announce{InfoHash: hashN(2), Addr: addr4(2, 6881)}, FamilyBoth) // new
	stop := a
	stop.Event = EventStopped
	announce(t, s, stop, FamilyBoth)
	want := Renewals{0: 1, 10: 1, RenewMinutes - 1: 1}
	if got := s.Renewals(); got != want {
		t.Errorf("renewals %v, want %v", got, want)
	}
}

// BenchmarkAnnounceWorkload announces in the shape of herald-bench's
// workload (docs/benchmarks.md, issue 18): 20,000 IPv4 peers over 10,000
// torrents by aquatic's 2024 popularity (weight torrents/peers +
// exp(6.5-500i/torrents): most torrents hold no peer or one or two, the
// first 54 hold 50 to 714 and two thirds of the peers), three in four
// seeders, and every announce a re-announce of a random peer at numwant
// 50. About two thirds of announces sample peers from a big flat swarm;
// the rest get all of a small swarm's others.
func BenchmarkAnnounceWorkload(b *testing.B) {
	s := newStore(b, Config{})
	peers := workloadPeers(10_000, 20_000)
	for i, p := range peers {
		announce(b, s, Announce{InfoHash: hashN(p), Addr: addr4(i, 1), Left: uint64(min(i%4, 1))}, FamilyBoth)
	}
	r := rand.New(rand.NewPCG(3, 4))
	order := make([]int32, 1<<16)
	for i := range order {
		order[i] = int32(r.IntN(len(peers)))
	}
	dst := Peers{V4: make([]byte, 0, 200*PeerLen4), V6: make([]byte, 0, 200*PeerLen6)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		k := int(order[i&(len(order)-1)])
		a := Announce{InfoHash: hashN(peers[k]), Addr: addr4(k, 1), Left: uint64(min(k%4, 1)), NumWant: 50}
		if _, _, err := s.Announce(&a, FamilyV4, dst); err != nil {
			b.Fatal(err)
		}
	}
}

// workloadPeers returns the torrent of each of n peers over torrents,
// drawn by herald-bench's popularity weights (cmd/herald-bench/workload.go).
func workloadPeers(torrents, n int) []int {
	cum := make([]float64, torrents)
	sum := 0.0
	for i := range cum {
		sum += float64(torrents)/float64(n) + math.Exp(6.5-500*float64(i)/float64(torrents))
		cum[i] = sum
	}
	r := rand.New(rand.NewPCG(1, 2))
	out := make([]int, n)
	for i := range out {
		x := r.Float64() * sum
		lo, hi := 0, torrents-1
		for lo < hi {
			m := (lo + hi) / 2
			if cum[m] < x {
				lo = m + 1
			} else {
				hi = m
			}
		}
		out[i] = lo
	}
	return out
}

// TestSearch4 checks the branch-free IPv4 search against a linear scan:
// every size up to 40 records, keys present, between, before and after.
func TestSearch4(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for n := range 41 {
		keys := map[uint64]bool{}
		for len(keys) < n {
			keys[r.Uint64N(1<<20)*2+1] = true // odd keys, so even ones fall between
		}
		var v []byte
		for k := range keys {
			var key [PeerLen4]byte
			binary.BigEndian.PutUint32(key[:], uint32(k>>16))
			binary.BigEndian.PutUint16(key[4:], uint16(k))
			i, _ := search(v, key[:], recLen4)
			copy(insertAt(&v, i, recLen4), key[:])
		}
		for k := uint64(0); k < 1<<21+2; k += 1 + r.Uint64N(1<<14) {
			want := 0
			for want < n && rec48(unsafe.Pointer(&v[0]), want) < k {
				want++
			}
			found := want < n && rec48(unsafe.Pointer(&v[0]), want) == k
			if i, ok := search4(v, k); i != want || ok != found {
				t.Fatalf("%d records, key %d: search4 %d %v, want %d %v", n, k, i, ok, want, found)
			}
		}
	}
}
