package cluster_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"herald/wstracker"
)

// BenchmarkWebTorrentOfferLatency measures how long an offer takes from
// the offering browser's write to the receiving browser's read, and the
// round trip of an offer and its answer, with the receiver on the same
// instance (local) and on another instance of the cluster, through one
// NATS server in this process (cluster). It reports the medians and 99th
// percentiles, and the NATS messages published per offer (with its answer,
// in the round trip) as the NATS server counts them: heartbeats included,
// so slightly over 1 or 2.
//
//	flock /tmp/bench.lock go test -run '^$' -bench WebTorrentOfferLatency -benchtime 2000x -count 5 ./cluster
func BenchmarkWebTorrentOfferLatency(b *testing.B) {
	ns := startNATS(b, 1)
	urls := []string{ns.url(0)}
	unlimited := wstracker.Config{MessageRate: 1e9, MessageBurst: 1 << 30}
	a := startWebInstanceWith(b, "a", urls, unlimited)
	other := startWebInstanceWith(b, "b", urls, unlimited)
	const localHash, clusterHash = "bench-local---------", "bench-cluster-------"
	offerer := dialBrowser(b, a.url, "offerer-------------")
	local := dialBrowser(b, a.url, "local---------------")
	remote := dialBrowser(b, other.url, "remote--------------")
	local.announce(localHash, 0, "")
	remote.announce(clusterHash, 0, "")
	offerer.announce(localHash, 1, "")
	offerer.announce(clusterHash, 1, "")
	waitFor(b, 10*time.Second, "the remote peer known on a", func() error {
		if n := a.node.WebTorrentStats().RemotePeers; n != 1 {
			return fmt.Errorf("%d remote peers", n)
		}
		return nil
	})

	for _, mode := range []struct {
		name     string
		hash     string
		receiver *browser
	}{{"local", localHash, local}, {"cluster", clusterHash, remote}} {
		for _, roundTrip := range []bool{false, true} {
			name := mode.name + "/offer"
			if roundTrip {
				name = mode.name + "/offer+answer"
			}
			b.Run(name, func(b *testing.B) {
				lat := make([]time.Duration, 0, b.N)
				before := ns.natsInMsgs(0)
				b.ResetTimer()
				for range b.N {
					start := time.Now()
					offerer.send(`{"action":"announce","info_hash":%q,"peer_id":%q,"left":1,"numwant":1,`+
						`"offers":[{"offer_id":"offer-id------------","offer":{"type":"offer","sdp":"v=0"}}]}`, mode.hash, offerer.id)
					if o := mode.receiver.recv(); o["offer"] == nil {
						b.Fatalf("receiver got %v", o)
					}
					if roundTrip {
						mode.receiver.answer(mode.hash, offerer.id, "offer-id------------")
					}
					offerer.recv() // the announce reply, sent before the offer
					if roundTrip {
						if m := offerer.recv(); m["answer"] == nil {
							b.Fatalf("offerer got %v", m)
						}
					}
					lat = append(lat, time.Since(start))
				}
				b.StopTimer()
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
				b.ReportMetric(float64(ns.natsInMsgs(0)-before)/float64(b.N), "nats-msgs/op")
			})
		}
	}
}

// natsInMsgs is how many messages the NATS server received.
func (c *natsCluster) natsInMsgs(i int) int64 {
	c.t.Helper()
	v, err := c.servers[i].Varz(nil)
	if err != nil {
		c.t.Fatal(err)
	}
	return v.InMsgs
}
