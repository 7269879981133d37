package swarm

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

func TestDumpRestoreRoundTrip(t *testing.T) {
	src := newStore(t, Config{Shards: 8})
	t0 := time.Now()
	src.SetNow(t0)
	for i := range 3000 {
		a := Announce{InfoHash: hashN(i % 7), Addr: addr4(i, uint16(i+1)), Left: uint64(i % 2)}
		if i%3 == 0 {
			a.Addr = addr6(i, uint16(i+1))
		}
		if i%5 == 0 {
			a.Event, a.Left = EventCompleted, 0
		}
		announce(t, src, a, FamilyBoth)
	}
	src.SetNow(t0.Add(10 * time.Minute))
	dst := newStore(t, Config{Shards: 64})
	dst.SetNow(t0.Add(time.Hour))
	var peers int
	err := src.Dump(func(ts *TorrentState) error {
		for _, p := range ts.Peers {
			if p.Age < 10*time.Minute-time.Minute || p.Age > 10*time.Minute+time.Minute {
				t.Fatalf("peer %v age %v, want about 10m", p.Addr, p.Age)
			}
		}
		n, err := dst.Restore(ts)
		peers += n
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if peers != 3000 || dst.Peers() != 3000 || dst.Torrents() != 7 {
		t.Fatalf("restored %d peers (%d), %d torrents", peers, dst.Peers(), dst.Torrents())
	}
	if src.Totals() != dst.Totals() {
		t.Fatalf("totals differ: %+v vs %+v", src.Totals(), dst.Totals())
	}
	for i := range 7 {
		a, _ := src.Scrape(hashN(i))
		b, _ := dst.Scrape(hashN(i))
		if a != b {
			t.Fatalf("torrent %d: %+v vs %+v", i, a, b)
		}
	}
	// Restored peers keep their age: 36 more minutes and they expire.
	dst.SetNow(t0.Add(time.Hour + 36*time.Minute))
	dst.Clean()
	if dst.Peers() != 0 {
		t.Fatalf("%d restored peers outlived their timeout", dst.Peers())
	}
}

func TestRestoreDropsExpiredPeers(t *testing.T) {
	s := newStore(t, Config{})
	ts := TorrentState{InfoHash: hashN(1), Peers: []PeerState{
		{Addr: addr4(1, 1), Age: time.Minute},
		{Addr: addr4(2, 1), Age: 50 * time.Minute},
	}}
	if n, _ := s.Restore(&ts); n != 1 {
		t.Fatalf("restored %d peers, want 1 (the other expired)", n)
	}
	empty := TorrentState{InfoHash: hashN(2), Peers: []PeerState{{Addr: addr4(2, 1), Age: time.Hour}}}
	s.Restore(&empty)
	if _, ok := s.Scrape(hashN(2)); ok {
		t.Fatal("a torrent with only expired peers and no completed count was created")
	}
	counts := TorrentState{InfoHash: hashN(3), Completed: 42}
	s.Restore(&counts)
	if c, ok := s.Scrape(hashN(3)); !ok || c.Completed != 42 {
		t.Fatalf("completed-only torrent: %+v %v", c, ok)
	}
}

// ValidPeer is the one rule for announces and restores alike: a peer no
// client can connect to is neither stored by an announce nor by a restore.
func TestUnreachablePeersRefused(t *testing.T) {
	bad := []netip.AddrPort{
		netip.MustParseAddrPort("10.0.0.1:0"),
		netip.MustParseAddrPort("0.0.0.0:6881"),
		netip.MustParseAddrPort("224.0.0.1:6881"),
		netip.MustParseAddrPort("255.255.255.255:6881"),
		netip.MustParseAddrPort("[::ffff:255.255.255.255]:6881"),
		netip.MustParseAddrPort("[::]:6881"),
		netip.MustParseAddrPort("[ff05::2]:6881"),
		netip.MustParseAddrPort("[2001:db8::1]:0"),
		{},
	}
	s := newStore(t, Config{})
	for _, addr := range bad {
		if ValidPeer(addr) {
			t.Errorf("ValidPeer(%v) = true", addr)
		}
		if _, _, err := s.Announce(&Announce{InfoHash: hashN(1), Addr: addr}, FamilyBoth, Peers{}); err != ErrInvalidAddr {
			t.Errorf("announce from %v: err %v, want ErrInvalidAddr", addr, err)
		}
	}
	ts := TorrentState{InfoHash: hashN(2), Completed: 1}
	for _, addr := range bad {
		ts.Peers = append(ts.Peers, PeerState{Addr: addr})
	}
	if n, err := s.Restore(&ts); n != 0 || err != nil {
		t.Errorf("restore added %d unreachable peers (err %v)", n, err)
	}
	if s.Peers() != 0 {
		t.Errorf("%d unreachable peers stored", s.Peers())
	}
	if got, want := s.Refusals().InvalidAddr, uint64(2*len(bad)); got != want {
		t.Errorf("counted %d invalid addresses, want %d", got, want)
	}
	for _, addr := range []string{"10.0.0.1:1", "[2001:db8::1]:65535", "127.0.0.1:6881", "192.168.1.255:6881"} {
		if !ValidPeer(netip.MustParseAddrPort(addr)) {
			t.Errorf("ValidPeer(%s) = false", addr)
		}
	}
}

// BenchmarkDumpLockHold reports the longest gap between two torrents handed
// out by Dump over 1,000,000 peers in 100,000 torrents. Shard copies happen
// in those gaps, so it bounds how long a snapshot holds any shard lock, and
// so how long it can delay an announce.
func BenchmarkDumpLockHold(b *testing.B) {
	s := newStore(b, Config{})
	for i := range 1_000_000 {
		a := Announce{InfoHash: hashN(i % 100_000), Addr: addr4(i, uint16(i)), Left: uint64(i % 2)}
		if _, _, err := s.Announce(&a, FamilyBoth, Peers{}); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		gaps := make([]time.Duration, 0, 100_000)
		last := time.Now()
		s.Dump(func(*TorrentState) error {
			now := time.Now()
			gaps = append(gaps, now.Sub(last))
			last = now
			return nil
		})
		slices.Sort(gaps)
		b.ReportMetric(float64(gaps[len(gaps)-1].Microseconds()), "max-gap-µs")
		b.ReportMetric(float64(gaps[len(gaps)*999/1000].Microseconds()), "p99.9-gap-µs")
	}
}
