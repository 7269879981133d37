package cluster_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"herald/cluster"
	"herald/swarm"
)

// BenchmarkAnnounce is the cost the cluster adds to the announce path: the
// store alone, then with a running node (connected to a real NATS server)
// as its sink, with refreshes re-sent after 1ns (every flush tick: the
// outbox clock moves once per tick) or after the default 15 minutes. The
// workload: 65536 IPv4 peers over 1024 torrents, each announce asking for 50
// peers. The in-process NATS server shares the two cores with the loop.
func BenchmarkAnnounce(b *testing.B) {
	const peers, torrents = 1 << 16, 1 << 10
	hashes := make([]swarm.InfoHash, torrents)
	for i := range hashes {
		hashes[i] = hashOf(fmt.Sprintf("bench-%d", i))
	}
	for _, mode := range []struct {
		name      string
		cluster   bool
		republish time.Duration
	}{
		{"store-only", false, 0},
		{"cluster-sink/republish-after-1ns", true, time.Nanosecond},
		{"cluster-sink/republish-after-15m", true, 0},
	} {
		b.Run(mode.name, func(b *testing.B) {
			cfg := swarm.Config{Shards: 1024}
			var in *instance
			if mode.cluster {
				nc := startNATS(b, 1)
				in = startInstance(b, "bench", []string{nc.url(0)}, func(c *cluster.Config) {
					c.RepublishAfter = mode.republish
					c.FlushInterval = 100 * time.Millisecond
				})
				waitFor(b, 5*time.Second, "connected", func() error {
					if !in.node.Stats().CaughtUp {
						return fmt.Errorf("not ready")
					}
					return nil
				})
				cfg.Sink = in.node
			}
			store, err := swarm.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			dst := swarm.Peers{V4: make([]byte, 0, 50*swarm.PeerLen4)}
			a := swarm.Announce{NumWant: 50, Left: 1}
			for i := range peers { // every peer exists: the steady state
				a.InfoHash, a.Addr = hashes[i%torrents], peerAddr(i)
				store.Announce(&a, swarm.FamilyV4, dst)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				a.InfoHash, a.Addr = hashes[i%torrents], peerAddr(i%peers)
				if _, _, err := store.Announce(&a, swarm.FamilyV4, dst); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if in != nil {
				st := in.node.Stats()
				b.ReportMetric(float64(st.Dropped)/float64(b.N), "dropped/op")
				b.ReportMetric(float64(st.Suppressed)/float64(b.N), "suppressed/op")
			}
		})
	}
}

// BenchmarkClusterThroughput measures how many announces a three-node
// cluster absorbs: b.N new peers announced over the three instances (one
// goroutine each, as three frontends), timed until every instance has
// stored every peer. NATS servers, nodes and announcers all share this
// machine's cores.
func BenchmarkClusterThroughput(b *testing.B) {
	nc := startNATS(b, 3)
	ins := make([]*instance, 3)
	for i := range ins {
		ins[i] = startInstance(b, fmt.Sprintf("node-%d", i), []string{nc.url(i)}, func(c *cluster.Config) {
			c.FlushInterval = 100 * time.Millisecond
			c.BufferBytes = 64 << 20
		})
	}
	for _, in := range ins {
		waitFor(b, 5*time.Second, "ready", func() error {
			if !in.node.Stats().CaughtUp {
				return fmt.Errorf("not ready")
			}
			return nil
		})
	}
	hashes := make([]swarm.InfoHash, 4096)
	for i := range hashes {
		hashes[i] = hashOf(fmt.Sprintf("tp-%d", i))
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for k, in := range ins {
		wg.Go(func() {
			a := swarm.Announce{NumWant: 50, Left: 1, Event: swarm.EventStarted}
			dst := swarm.Peers{V4: make([]byte, 0, 50*swarm.PeerLen4)}
			for i := k; i < b.N; i += len(ins) {
				a.InfoHash, a.Addr = hashes[i%len(hashes)], peerAddr(i)
				in.store.Announce(&a, swarm.FamilyV4, dst)
			}
		})
	}
	wg.Wait()
	announced := time.Since(start)
	waitFor(b, 5*time.Minute, "every instance has every peer", func() error {
		for _, in := range ins {
			if in.store.Peers() < b.N {
				return fmt.Errorf("%s has %d of %d peers", in.name, in.store.Peers(), b.N)
			}
		}
		return nil
	})
	took := time.Since(start)
	b.StopTimer()
	var pub, bytes, dropped uint64
	for _, in := range ins {
		st := in.node.Stats()
		pub += st.Published
		bytes += st.PublishedBytes
		dropped += st.Dropped
	}
	b.ReportMetric(float64(b.N)/took.Seconds(), "announces/s")
	b.ReportMetric(float64(b.N)/announced.Seconds(), "local-announces/s")
	if pub > 0 {
		b.ReportMetric(float64(bytes)/float64(pub), "bytes/announce")
	}
	b.ReportMetric(float64(dropped), "dropped")
}

// BenchmarkCatchUp times a new instance taking the state of a member that
// holds 1,000,000 IPv4 peers over 10,000 torrents, from start to serving
// every peer.
func BenchmarkCatchUp(b *testing.B) {
	const peers, torrents = 1_000_000, 10_000
	nc := startNATS(b, 1)
	member := startInstance(b, "member", []string{nc.url(0)})
	a := swarm.Announce{NumWant: 0, Left: 1}
	for i := range peers {
		a.InfoHash, a.Addr = hashOf(fmt.Sprintf("cu-%d", i%torrents)), peerAddr(i)
		member.store.Announce(&a, swarm.FamilyV4, swarm.Peers{})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		in := startInstance(b, fmt.Sprintf("new-%d", i), []string{nc.url(0)})
		waitFor(b, time.Minute, "caught up", func() error {
			if n := in.store.Peers(); n < peers {
				return fmt.Errorf("%d of %d peers", n, peers)
			}
			return nil
		})
		b.ReportMetric(time.Since(start).Seconds(), "s/catch-up")
		in.stop()
	}
}
