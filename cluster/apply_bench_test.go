package cluster

import (
	"context"
	"crypto/sha1"
	"encoding/binary"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/nats-io/nats.go"

	"herald/swarm"
)

// BenchmarkApply is what an instance spends on another instance's
// announces: full batches (64 KiB, 2426 IPv4 records each) of refreshes of
// peers the store already holds, 3 in 4 seeders, over 100,000 torrents,
// parsed, checked and stored as onAnnounces does for each message from NATS.
// Every instance pays it for every announce made anywhere in the cluster
// (docs/scaling.md); ns/record is that cost.
func BenchmarkApply(b *testing.B) {
	const torrents, batches = 100_000, 64
	n, err := New(Config{URLs: []string{"nats://127.0.0.1:1"}}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	store, err := swarm.New(swarm.Config{})
	if err != nil {
		b.Fatal(err)
	}
	n.ctx, n.store = context.Background(), store
	n.origins.timeout = store.Config().PeerTimeout
	msgs := make([]*nats.Msg, batches)
	records := 0
	for k := range msgs {
		batch := AppendHeader(make([]byte, 0, DefaultBatchBytes), Header{Kind: KindAnnounces, Node: 7})
		for len(batch)+RecordLen4 <= DefaultBatchBytes {
			i := records
			records++
			var seed [8]byte
			binary.LittleEndian.PutUint64(seed[:], uint64(i%torrents))
			a := swarm.Announce{InfoHash: sha1.Sum(seed[:]),
				Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 6881)}
			if i%4 == 3 {
				a.Left = 1
			}
			batch = AppendRecord(batch, &a)
		}
		msgs[k] = &nats.Msg{Subject: n.subjAnnounces, Data: batch}
	}
	seq := uint32(0)
	apply := func(m *nats.Msg) {
		seq++
		binary.BigEndian.PutUint32(m.Data[10:], seq)
		n.onAnnounces(m)
	}
	for _, m := range msgs { // every peer stored: the steady state
		apply(m)
	}
	applied := n.applied.Load()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		apply(msgs[i%batches])
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n.applied.Load()-applied), "ns/record")
}
