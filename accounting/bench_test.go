package accounting

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"herald/access"
	"herald/swarm"
)

// randomKeys returns n distinct keys drawn like a site's (random
// [A-Za-z0-9]), the same ones for the same seed.
func randomKeys(n int, seed uint64) []access.Key {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	r := rand.New(rand.NewPCG(seed, 15))
	seen := make(map[access.Key]bool, n)
	keys := make([]access.Key, 0, n)
	for len(keys) < n {
		var k access.Key
		for i := range k {
			k[i] = alphabet[r.IntN(len(alphabet))]
		}
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	return keys
}

// member is one of BenchmarkRecordManyKeys' members: a key with one
// peer in a torrent of its own.
type member struct {
	key  access.Key
	hash swarm.InfoHash
	id   swarm.PeerID
}

func members(n int) []member {
	ms := make([]member, n)
	for i, k := range randomKeys(n, 1) {
		ms[i] = member{key: k}
		copy(ms[i].hash[:], fmt.Sprintf("torrent%013d", i))
		copy(ms[i].id[:], fmt.Sprintf("-qB5000-%012d", i))
	}
	return ms
}

// BenchmarkRecordManyKeys is the keyed load bench/compare runs: many
// members, each with its own key, torrent and peer, re-announcing in a
// shuffled order, so that each Record finds its entries out of the CPU
// caches as it does in a tracker serving other work between two
// announces of one peer (BenchmarkRecord re-announces a few peers and
// stays in cache). The members are visited in a pre-shuffled array, read
// in order: only the ledger's own memory is cold.
func BenchmarkRecordManyKeys(b *testing.B) {
	for _, n := range []int{20_000, 200_000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			l := New(time.Hour, 0)
			now := time.Unix(1_800_000_000, 0)
			ms := members(n)
			for i := range ms {
				l.Record(&ms[i].key, &swarm.Announce{InfoHash: ms[i].hash, PeerID: ms[i].id, Event: swarm.EventStarted}, now)
			}
			rand.New(rand.NewPCG(2, 15)).Shuffle(len(ms), func(i, j int) { ms[i], ms[j] = ms[j], ms[i] })
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				m := &ms[i%n]
				a := swarm.Announce{InfoHash: m.hash, PeerID: m.id, Uploaded: uint64(i), Downloaded: uint64(i) / 2}
				l.Record(&m.key, &a, now)
				i++
			}
		})
	}
}

// BenchmarkLedgerMemory reports the live heap per remembered peer.
func BenchmarkLedgerMemory(b *testing.B) {
	for _, shape := range []struct{ keys, torrents int }{{1_000_000, 1}, {100_000, 10}} {
		b.Run(fmt.Sprintf("%dkeys×%dtorrents", shape.keys, shape.torrents), func(b *testing.B) {
			ms := members(shape.keys)
			now := time.Unix(1_800_000_000, 0)
			for b.Loop() {
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				l := New(time.Hour, 0)
				for i := range ms {
					for t := range shape.torrents {
						a := swarm.Announce{InfoHash: ms[(i+t)%len(ms)].hash, PeerID: ms[i].id, Event: swarm.EventStarted}
						l.Record(&ms[i].key, &a, now)
					}
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/float64(l.Peers()), "heap-B/peer")
				runtime.KeepAlive(l)
			}
		})
	}
}
