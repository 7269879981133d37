package swarm

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

// TestAgainstModel drives the store with random announces and stops over a
// few torrents and both families, and checks every reply against a plain map
// model: counts, and that returned peers exist, are distinct and are never
// the requester. Swarm sizes cross the bucketing thresholds both ways.
func TestAgainstModel(t *testing.T) {
	s := newStore(t, Config{Shards: 4})
	type key struct {
		h InfoHash
		a netip.AddrPort
	}
	model := map[key]bool{} // peer -> seeder
	counts := map[InfoHash]*Counts{}
	for i := range 3 {
		counts[hashN(i)] = new(Counts)
	}
	big := false
	r := rand.New(rand.NewPCG(1, 2))
	for step := range 200_000 {
		h := hashN(r.IntN(3))
		n := r.IntN(1500)
		a := addr4(n, uint16(n%7+1))
		if r.IntN(2) == 0 {
			a = addr6(n, uint16(n%7+1))
		}
		k := key{h, a}
		ann := Announce{InfoHash: h, Addr: a, NumWant: r.IntN(80), Left: uint64(r.IntN(2))}
		// Phases: grow past the bucketing threshold, then shrink below it.
		if step%50_000 > 30_000 || r.IntN(10) == 0 {
			ann.Event = EventStopped
		}
		p, c, err := s.Announce(&ann, FamilyBoth, Peers{})
		if err != nil {
			t.Fatal(err)
		}
		want := counts[h]
		if seeder, ok := model[k]; ok {
			if seeder {
				want.Seeders--
			} else {
				want.Leechers--
			}
		}
		if ann.Event == EventStopped {
			delete(model, k)
		} else {
			model[k] = ann.Left == 0
			if ann.Left == 0 {
				want.Seeders++
			} else {
				want.Leechers++
			}
		}
		big = big || want.Seeders+want.Leechers > 2*bigThreshold
		if c.Seeders != want.Seeders || c.Leechers != want.Leechers {
			t.Fatalf("step %d: counts %+v, model %+v", step, c, *want)
		}
		if ann.Event == EventStopped {
			if len(p.V4)+len(p.V6) != 0 {
				t.Fatalf("step %d: stopped announce returned peers", step)
			}
			continue
		}
		got := unpack(p)
		if total := int(want.Seeders + want.Leechers); len(got) != min(ann.NumWant, total-1) {
			t.Fatalf("step %d: %d peers for numwant %d of %d others", step, len(got), ann.NumWant, total-1)
		}
		dup := map[netip.AddrPort]bool{}
		for _, g := range got {
			if _, ok := model[key{h, g}]; !ok || g == a || dup[g] {
				t.Fatalf("step %d: returned %v (in model %v, self %v, duplicate %v)", step, g, ok, g == a, dup[g])
			}
			dup[g] = true
		}
	}
	if !big {
		t.Fatal("no swarm grew past the bucketing threshold; the test covers less than it claims")
	}
}
