package accounting

import (
	"math/rand/v2"
	"testing"
	"unsafe"

	"herald/swarm"
)

// The table against a map, through inserts, removals and removeIf, in a
// table small enough that probes wrap around its end and removals shift
// slots across it.
func TestPeerTableMatchesMap(t *testing.T) {
	type id struct {
		acct uint32
		h    swarm.InfoHash
		p    swarm.PeerID
	}
	r := rand.New(rand.NewPCG(3, 4))
	var tab peerTable
	model := map[id]uint32{}
	check := func(step int) {
		t.Helper()
		if tab.n != len(model) {
			t.Fatalf("step %d: table holds %d, model %d", step, tab.n, len(model))
		}
		for k, seen := range model {
			i, ok := tab.lookup(k.acct, &k.h, &k.p)
			if !ok || tab.slots[i].seen != seen {
				t.Fatalf("step %d: %v lost (found %v)", step, k, ok)
			}
		}
	}
	for step := range 20000 {
		k := id{acct: uint32(r.IntN(3) + 1), h: swarm.InfoHash{byte(r.IntN(8))}, p: swarm.PeerID{byte(r.IntN(8))}}
		switch i, ok := tab.lookup(k.acct, &k.h, &k.p); {
		case ok && r.IntN(2) == 0:
			tab.remove(i)
			delete(model, k)
		case ok:
			tab.slots[i].seen = uint32(step)
			model[k] = uint32(step)
		case r.IntN(50) == 0:
			limit := step - 100
			tab.removeIf(func(p *peerSlot) bool { return int(p.seen) <= limit })
			for k, seen := range model {
				if int(seen) <= limit {
					delete(model, k)
				}
			}
		default:
			tab.insert(peerSlot{acct: k.acct, hash: k.h, id: k.p, seen: uint32(step)})
			model[k] = uint32(step)
		}
		if step%97 == 0 {
			check(step)
		}
	}
	check(-1)
}

func TestPeerSlotIsOneCacheLine(t *testing.T) {
	if n := unsafe.Sizeof(peerSlot{}); n != 64 {
		t.Fatalf("a peer slot is %d bytes", n)
	}
}

func TestKeyTableFindsEveryKey(t *testing.T) {
	var tab keyTable
	keys := randomKeys(5000, 7)
	for i := range keys {
		if tab.find(&keys[i]) != nil {
			t.Fatalf("key %d found before it was added", i)
		}
		tab.add(&keys[i], uint32(i)).total.Announces = uint64(i)
	}
	for i := range keys {
		if s := tab.find(&keys[i]); s == nil || s.idx != uint32(i)+1 || s.total.Announces != uint64(i) {
			t.Fatalf("key %d: slot %+v", i, s)
		}
	}
	if n := unsafe.Sizeof(keySlot{}); n != 64 || tab.n != len(keys) {
		t.Fatalf("a key slot is %d bytes; %d keys held", n, tab.n)
	}
}
