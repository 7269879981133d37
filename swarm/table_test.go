package swarm

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

// checkShards verifies every shard's layout: each torrent is found where
// lookup looks, the count is right, flat torrents' kinds match their sizes,
// records are sorted per family with matching seeder counts, blocks do not
// overlap and the arena's live bytes are theirs, and the running totals
// equal a walk of every torrent.
func checkShards(t *testing.T, s *Store) {
	t.Helper()
	var walk [numTotals]int64
	for si := range s.shards {
		sh := &s.shards[si]
		sh.mu.Lock()
		count, live := 0, 0
		var blocks []int // offsets and ends
		for i := range sh.tab {
			sl := &sh.tab[i]
			if sl.ref == 0 {
				continue
			}
			count++
			if j, ok := s.lookup(sh, &sl.hash); !ok || j != i {
				t.Fatalf("shard %d slot %d: lookup finds %d, %v", si, i, j, ok)
			}
			c := sh.famCounts(sl)
			walk[totTorrents]++
			walk[totSeeders4] += int64(c.s4)
			walk[totLeechers4] += int64(c.l4)
			walk[totSeeders6] += int64(c.s6)
			walk[totLeechers6] += int64(c.l6)
			walk[totCompleted] += int64(sl.completed)
			switch sl.kind() {
			case kindInline:
				if sl.n6 != 0 || sl.used() > inlineLen {
					t.Fatalf("inline torrent with %d+%d records", sl.n4, sl.n6)
				}
			case kindBlock:
				if sl.n6 == 0 && sl.used() <= inlineLen || sl.used() > maxFlat {
					t.Fatalf("block torrent with %d+%d records", sl.n4, sl.n6)
				}
				off, size := sl.index()*blockAlign, classSize(sl.used())
				live += size
				blocks = append(blocks, off, off+size)
				if off+size > sh.arena.top {
					t.Fatalf("block %d+%d past the arena's top %d", off, size, sh.arena.top)
				}
			case kindBig:
				if sh.big[sl.index()] == nil {
					t.Fatal("big torrent without its lists")
				}
				continue
			}
			buf := sh.flat(sl, sl.used())
			for f, rl := range [2]int{recLen4, recLen6} {
				lo, hi := sl.family(rl)
				seeders := 0
				for off := lo; off < hi; off += rl {
					if buf[off+rl-2]&flagSeeder != 0 {
						seeders++
					}
					if off > lo && bytes.Compare(buf[off-rl:off-2], buf[off:off+rl-2]) >= 0 {
						t.Fatalf("family %d records out of order", f)
					}
				}
				if want := [2]uint16{sl.s4, sl.s6}[f]; seeders != int(want) {
					t.Fatalf("family %d: %d seeder flags, count %d", f, seeders, want)
				}
			}
		}
		if count != sh.count {
			t.Fatalf("shard %d: %d torrents in the table, count %d", si, count, sh.count)
		}
		if live != sh.arena.live {
			t.Fatalf("shard %d: blocks hold %d bytes, arena counts %d live", si, live, sh.arena.live)
		}
		for a := 0; a < len(blocks); a += 2 {
			for b := a + 2; b < len(blocks); b += 2 {
				if blocks[a] < blocks[b+1] && blocks[b] < blocks[a+1] {
					t.Fatalf("blocks [%d,%d) and [%d,%d) overlap", blocks[a], blocks[a+1], blocks[b], blocks[b+1])
				}
			}
		}
		sh.mu.Unlock()
	}
	tot := s.Totals()
	got := [numTotals]int64{int64(tot.Torrents), int64(tot.Seeders4), int64(tot.Leechers4), int64(tot.Seeders6), int64(tot.Leechers6), int64(tot.Completed)}
	if got != walk {
		t.Fatalf("Totals %v, walk of every torrent %v", got, walk)
	}
}

func kindOf(s *Store, h InfoHash) uint32 {
	sh := s.shardOf(&h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	i, ok := s.lookup(sh, &h)
	if !ok {
		return kindEmpty
	}
	return sh.tab[i].kind()
}

// TestTorrentKinds walks one torrent through every storage kind and back:
// two IPv4 peers inline, a third or any IPv6 peer in an arena block, past
// maxFlat bytes a big torrent, and back down as peers stop.
func TestTorrentKinds(t *testing.T) {
	s := newStore(t, Config{Shards: 1})
	h := hashN(1)
	step := func(what string, want uint32, c Counts) {
		t.Helper()
		if k := kindOf(s, h); k != want {
			t.Fatalf("%s: kind %d, want %d", what, k, want)
		}
		if got, _ := s.Scrape(h); got != c {
			t.Fatalf("%s: counts %+v, want %+v", what, got, c)
		}
		checkShards(t, s)
	}
	announce(t, s, Announce{InfoHash: h, Addr: addr4(2, 1)}, FamilyBoth)
	announce(t, s, Announce{InfoHash: h, Addr: addr4(1, 1), Left: 1}, FamilyBoth)
	step("two IPv4 peers", kindInline, Counts{Seeders: 1, Leechers: 1})
	announce(t, s, Announce{InfoHash: h, Addr: addr4(3, 1)}, FamilyBoth)
	step("three IPv4 peers", kindBlock, Counts{Seeders: 2, Leechers: 1})
	announce(t, s, Announce{InfoHash: h, Addr: addr4(3, 1), Event: EventStopped}, FamilyBoth)
	step("back to two", kindInline, Counts{Seeders: 1, Leechers: 1})
	announce(t, s, Announce{InfoHash: h, Addr: addr6(1, 1), Left: 1}, FamilyBoth)
	step("an IPv6 peer", kindBlock, Counts{Seeders: 1, Leechers: 2})
	peers, _ := announce(t, s, Announce{InfoHash: h, Addr: addr4(1, 1), Left: 1, NumWant: 10}, FamilyBoth)
	if len(peers) != 2 {
		t.Fatalf("block torrent returned %v, want the other two peers", peers)
	}
	announce(t, s, Announce{InfoHash: h, Addr: addr6(1, 1), Event: EventStopped}, FamilyBoth)
	step("IPv6 peer gone", kindInline, Counts{Seeders: 1, Leechers: 1})

	const n = maxFlat/recLen4 + 1 // one record past maxFlat
	for i := range n {
		announce(t, s, Announce{InfoHash: h, Addr: addr4(10+i, 2), Left: uint64(i % 2)}, FamilyBoth)
	}
	step("past maxFlat", kindBig, Counts{Seeders: 1 + (n+1)/2, Leechers: 1 + n/2})
	for i := range n - 10 {
		announce(t, s, Announce{InfoHash: h, Addr: addr4(10+i, 2), Event: EventStopped}, FamilyBoth)
	}
	step("below maxFlat/4", kindBlock, Counts{Seeders: 1 + 5, Leechers: 1 + 5})
	peers, _ = announce(t, s, Announce{InfoHash: h, Addr: addr4(1, 1), Left: 1, NumWant: 100}, FamilyBoth)
	if len(peers) != 11 {
		t.Fatalf("after moving back: %d peers, want 11", len(peers))
	}
}

// TestTableGrowDeleteShrink fills one shard's table through many resizes,
// expires a random half (deletions move probe chains back, wrapping round
// the table's end), checks every survivor is still found, then expires the
// rest and checks the table and arena are given back.
func TestTableGrowDeleteShrink(t *testing.T) {
	s := newStore(t, Config{Shards: 1, PeerTimeout: time.Minute, CleanInterval: time.Second})
	now := time.Now()
	s.SetNow(now)
	const torrents = 5000
	r := rand.New(rand.NewPCG(3, 4))
	keep := map[int]bool{}
	for i := range torrents {
		keep[i] = r.IntN(2) == 0
		for j := range 1 + i%4 {
			announce(t, s, Announce{InfoHash: hashN(i), Addr: addr4(j, uint16(i+1))}, FamilyBoth)
		}
	}
	checkShards(t, s)
	grown := len(s.shards[0].tab)
	s.SetNow(now.Add(50 * time.Second))
	for i := range torrents {
		if keep[i] {
			announce(t, s, Announce{InfoHash: hashN(i), Addr: addr4(0, uint16(i+1))}, FamilyBoth)
		}
	}
	s.SetNow(now.Add(90 * time.Second))
	s.Clean()
	checkShards(t, s)
	for i := range torrents {
		c, ok := s.Scrape(hashN(i))
		if ok != keep[i] || ok && c.Seeders != 1 {
			t.Fatalf("torrent %d after expiry: %+v, %v; kept %v", i, c, ok, keep[i])
		}
	}
	s.SetNow(now.Add(200 * time.Second))
	s.Clean()
	checkShards(t, s)
	if sh := &s.shards[0]; sh.tab != nil || sh.arena.mem.b != nil || s.Torrents() != 0 || s.Peers() != 0 {
		t.Fatalf("empty store keeps a table of %d (grown to %d), an arena of %d, %d torrents, %d peers",
			len(sh.tab), grown, len(sh.arena.mem.b), s.Torrents(), s.Peers())
	}
	// And it works again from empty.
	announce(t, s, Announce{InfoHash: hashN(1), Addr: addr4(1, 1)}, FamilyBoth)
	checkShards(t, s)
}

// TestTableShrinksKeepingSurvivors expires most torrents of a large table
// and checks it shrinks and still finds the rest.
func TestTableShrinksKeepingSurvivors(t *testing.T) {
	s := newStore(t, Config{Shards: 1, PeerTimeout: time.Minute})
	now := time.Now()
	s.SetNow(now)
	for i := range 4000 {
		announce(t, s, Announce{InfoHash: hashN(i), Addr: addr6(i, 1)}, FamilyBoth)
	}
	grown := len(s.shards[0].tab)
	s.SetNow(now.Add(50 * time.Second))
	for i := 0; i < 4000; i += 100 {
		announce(t, s, Announce{InfoHash: hashN(i), Addr: addr6(i, 1)}, FamilyBoth)
	}
	s.SetNow(now.Add(90 * time.Second))
	s.Clean()
	checkShards(t, s)
	if n := len(s.shards[0].tab); n*4 > grown {
		t.Fatalf("table of %d slots for 40 torrents (grown to %d)", n, grown)
	}
	if a := &s.shards[0].arena; a.top > 2*a.live+4096 {
		t.Fatalf("arena not compacted: top %d, live %d", a.top, a.live)
	}
	for i := 0; i < 4000; i += 100 {
		if _, ok := s.Scrape(hashN(i)); !ok {
			t.Fatalf("torrent %d lost in the shrink", i)
		}
	}
}

// TestLayoutAgainstModel is TestAgainstModel's random walk over many small
// torrents with clock steps and cleans, checking the layout as it goes.
func TestLayoutAgainstModel(t *testing.T) {
	s := newStore(t, Config{Shards: 2, PeerTimeout: time.Minute})
	now := time.Now()
	s.SetNow(now)
	r := rand.New(rand.NewPCG(5, 6))
	for step := range 60_000 {
		h := hashN(r.IntN(300))
		n := r.IntN(12)
		a := addr4(n, 1)
		if r.IntN(3) == 0 {
			a = addr6(n, 1)
		}
		ann := Announce{InfoHash: h, Addr: a, Left: uint64(r.IntN(2)), NumWant: 5}
		switch r.IntN(10) {
		case 0, 1, 2:
			ann.Event = EventStopped
		case 3:
			ann.Event, ann.Left = EventCompleted, 0
		}
		if _, _, err := s.Announce(&ann, FamilyBoth, Peers{}); err != nil {
			t.Fatal(err)
		}
		if step%1000 == 999 {
			now = now.Add(time.Duration(r.IntN(40)) * time.Second)
			s.SetNow(now)
			s.Clean()
			checkShards(t, s)
		}
	}
}

func TestRestoreIntoEveryKind(t *testing.T) {
	src := newStore(t, Config{})
	for i := range 300 {
		for j := range i % 7 {
			a := addr4(j, uint16(i+1))
			if j%3 == 2 {
				a = addr6(j, uint16(i+1))
			}
			announce(t, src, Announce{InfoHash: hashN(i), Addr: a, Left: uint64(j % 2)}, FamilyBoth)
		}
	}
	announce(t, src, Announce{InfoHash: hashN(0), Addr: netip.MustParseAddrPort("1.2.3.4:5"), Event: EventCompleted}, FamilyBoth)
	dst := newStore(t, Config{})
	if err := src.Dump(func(ts *TorrentState) error {
		_, err := dst.Restore(ts)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	checkShards(t, dst)
	if src.Totals() != dst.Totals() {
		t.Fatalf("restored totals %+v, dumped %+v", dst.Totals(), src.Totals())
	}
}
