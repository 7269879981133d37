package cluster_test

import (
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"herald/cluster"
	"herald/swarm"
)

// threeByThree starts a three-server NATS cluster and three instances, one
// on each server.
func threeByThree(t *testing.T, tweaks ...func(*cluster.Config)) (*natsCluster, []*instance) {
	nc := startNATS(t, 3)
	ins := make([]*instance, 3)
	for i := range ins {
		ins[i] = startInstance(t, fmt.Sprintf("node-%d", i), []string{nc.url(i)}, tweaks...)
	}
	for i, in := range ins {
		// Caught up, and heard the others' heartbeats: announces flow
		// between every pair of servers.
		waitFor(t, 10*time.Second, in.name+" connected, caught up and hearing the others", func() error {
			if st := in.node.Stats(); !st.Connected || !st.CaughtUp || st.Members != 2 {
				return fmt.Errorf("through %s: %+v", nc.url(i), st)
			}
			return nil
		})
	}
	return nc, ins
}

func TestAnnounceReachesEveryInstance(t *testing.T) {
	_, ins := threeByThree(t)
	h := hashOf("propagate")
	seeder := netip.MustParseAddrPort("127.0.0.2:6881")
	leecher6 := netip.MustParseAddrPort("[2001:db8::7]:51413")

	ins[0].announce(h, seeder, swarm.EventStarted, true)
	ins[0].announce(h, leecher6, swarm.EventStarted, false)
	want := map[string]bool{key(h, seeder): true, key(h, leecher6): false}
	took := waitFor(t, 2*time.Second, "started announces on node-0 reach node-1 and node-2", sameAs(want, ins[1], ins[2]))
	t.Logf("a peer announced to node-0 was stored by the others after %v (flush interval %v)", took, testFlush)
	// Sent at the next flush, not found later: a batch missed and
	// recovered through a heartbeat's gap would take 10 intervals or more.
	// Half of that leaves a loaded test machine its scheduling slack (one
	// run on two busy cores took 3.3 intervals).
	if took > 5*testFlush {
		t.Errorf("took %v, want within five flush intervals (%v), well before the first heartbeat (every %v)", took, 5*testFlush, 10*testFlush)
	}

	// What a frontend on node-2 hands out: the seeder announced on node-0.
	a := swarm.Announce{InfoHash: h, Addr: netip.MustParseAddrPort("127.0.0.9:6881"), Left: 1, NumWant: 50}
	peers, counts, err := ins[2].store.Announce(&a, swarm.FamilyV4, swarm.Peers{})
	if err != nil {
		t.Fatal(err)
	}
	if string(peers.V4) != "\x7f\x00\x00\x02\x1a\xe1" || counts.Seeders != 1 || counts.Leechers != 2 {
		t.Fatalf("node-2 answers peers %x, counts %+v; want the seeder 127.0.0.2:6881 from node-0, 1 seeder, 2 leechers", peers.V4, counts)
	}
	ins[2].announce(h, a.Addr, swarm.EventStopped, false)

	// The leecher completes through node-1 and stops through node-2: a
	// client may reach any instance behind the tracker's name.
	ins[1].announce(h, leecher6, swarm.EventCompleted, true)
	want[key(h, leecher6)] = true
	waitFor(t, 2*time.Second, "completed on node-1", sameAs(want, ins...))
	for _, in := range ins {
		if c, _ := in.store.Scrape(h); c.Completed != 1 {
			t.Errorf("%s: completed %d, want 1", in.name, c.Completed)
		}
	}
	ins[2].announce(h, leecher6, swarm.EventStopped, true)
	delete(want, key(h, leecher6))
	waitFor(t, 2*time.Second, "stopped on node-2 removes the peer everywhere", sameAs(want, ins...))
}

func TestRestartedInstanceCatchesUp(t *testing.T) {
	// Small messages: the 3000 peers take over a hundred chunks, so the
	// stream waits for the asker's acknowledgements several times.
	small := func(c *cluster.Config) { c.BatchBytes = 1 << 10 }
	nc, ins := threeByThree(t, small)
	want := make(map[string]bool)
	for i := range 3000 {
		h := hashOf(fmt.Sprintf("torrent-%d", i%100))
		ins[i%2].announce(h, peerAddr(i), swarm.EventStarted, i%3 == 0)
		want[key(h, peerAddr(i))] = i%3 == 0
	}
	waitFor(t, 5*time.Second, "3000 peers on every instance", sameAs(want, ins...))

	// node-2 dies with its state; a new process starts empty.
	servedBefore := ins[0].node.Stats().Served + ins[1].node.Stats().Served
	ins[2].stop()
	restarted := startInstance(t, "node-2-restarted", []string{nc.url(2)}, small)
	took := waitFor(t, 5*time.Second, "the restarted instance catches up", sameAs(want, restarted))
	st := restarted.node.Stats()
	t.Logf("restarted instance serves all 3000 peers after %v; catch-up streams %d, peers %d", took, st.CatchUps, st.CatchUpPeers)
	// The full catch-up may be followed by one own-peers catch-up from each
	// sender the node hears for the first time (sync.go); each request is
	// answered by exactly one node, never by several members of the queue
	// group, so the streams served match the streams received.
	waitFor(t, 2*time.Second, "every catch-up stream answered once", func() error {
		st := restarted.node.Stats()
		served := ins[0].node.Stats().Served + ins[1].node.Stats().Served - servedBefore
		if st.CatchUps < 1 || st.CatchUps > 3 || served != st.CatchUps {
			return fmt.Errorf("catch-ups received %d (want 1 to 3), streams served %d (want as many)", st.CatchUps, served)
		}
		return nil
	})
	// And it takes part as before.
	h := hashOf("after-restart")
	restarted.announce(h, peerAddr(1<<20), swarm.EventStarted, true)
	want[key(h, peerAddr(1<<20))] = true
	waitFor(t, 2*time.Second, "an announce on the restarted instance", sameAs(want, ins[0], ins[1], restarted))
}

// A NATS server dies while every instance announces: the instance on it
// reconnects to another server, and no announce is lost.
func TestNATSServerKilledMidRun(t *testing.T) {
	nc := startNATS(t, 3)
	all := []string{nc.url(0), nc.url(1), nc.url(2)}
	ins := make([]*instance, 3)
	for i := range ins {
		ins[i] = startInstance(t, fmt.Sprintf("node-%d", i), all)
	}
	waitFor(t, 5*time.Second, "connected", func() error {
		for _, in := range ins {
			if !in.node.Stats().Connected {
				return fmt.Errorf("%s not connected", in.name)
			}
		}
		return nil
	})

	var mu sync.Mutex
	want := make(map[string]bool)
	var wg sync.WaitGroup
	stopAnnouncing := make(chan struct{})
	for n, in := range ins {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stopAnnouncing:
					return
				default:
				}
				h := hashOf(fmt.Sprintf("t-%d", i%50))
				addr := peerAddr(n<<16 | i)
				in.announce(h, addr, swarm.EventStarted, false)
				mu.Lock()
				want[key(h, addr)] = false
				mu.Unlock()
				time.Sleep(200 * time.Microsecond)
			}
		})
	}
	time.Sleep(300 * time.Millisecond) // announces flow before the kill
	victim := nc.serverOf(ins[1].name)
	if victim < 0 {
		t.Fatal("node-1's connection is on no server")
	}
	nc.stop(victim)
	waitFor(t, 5*time.Second, "node-1 reconnects to another server", func() error {
		if s := nc.serverOf(ins[1].name); s < 0 {
			return fmt.Errorf("node-1 not connected")
		}
		return nil
	})
	time.Sleep(300 * time.Millisecond) // and announces flow after it
	close(stopAnnouncing)
	wg.Wait()
	took := waitFor(t, 10*time.Second, "every announce on every instance", sameAs(want, ins...))
	t.Logf("killed NATS server %d under node-1; %d peers announced, all on every instance %v after the last announce", victim, len(want), took)
	for _, in := range ins {
		st := in.node.Stats()
		t.Logf("%s: %+v", in.name, st)
		if st.Dropped != 0 {
			t.Errorf("%s dropped %d announces", in.name, st.Dropped)
		}
	}
}

// node-2's only NATS server goes away: node-2 keeps serving from its own
// state and buffers; both sides take announces and stops; when the server
// returns, the instances converge on exactly the live peers: node-2 drops
// the peer node-0 stopped meanwhile, the others the one node-2 stopped.
func TestPartitionHeals(t *testing.T) {
	nc, ins := threeByThree(t)
	h := hashOf("partition")
	seeder, stoppedOn0, stoppedOn2 := peerAddr(1), peerAddr(2), peerAddr(3)
	ins[0].announce(h, seeder, swarm.EventStarted, true)
	ins[0].announce(h, stoppedOn0, swarm.EventStarted, false)
	ins[2].announce(h, stoppedOn2, swarm.EventStarted, false)
	before := map[string]bool{key(h, seeder): true, key(h, stoppedOn0): false, key(h, stoppedOn2): false}
	waitFor(t, 2*time.Second, "before the partition", sameAs(before, ins...))

	caughtUpBefore := ins[2].node.Stats().CatchUps
	nc.stop(2)
	waitFor(t, 5*time.Second, "node-2 sees NATS gone", func() error {
		if ins[2].node.Stats().Connected {
			return fmt.Errorf("still connected")
		}
		return nil
	})
	ins[0].announce(h, stoppedOn0, swarm.EventStopped, false)
	ins[2].announce(h, stoppedOn2, swarm.EventStopped, false)
	want := map[string]bool{key(h, seeder): true}
	side := map[string]bool{key(h, seeder): true, key(h, stoppedOn2): false} // what node-0 and node-1 know
	for i := range 200 {
		k := key(h, peerAddr(100+i))
		if i%2 == 0 {
			ins[0].announce(h, peerAddr(100+i), swarm.EventStarted, false)
			side[k] = false
		} else {
			ins[2].announce(h, peerAddr(100+i), swarm.EventStarted, false)
		}
		want[k] = false
	}
	// Cut off, node-2 still answers from its own state: its own 100, the
	// seeder, and the peer stopped on node-0 that it cannot know of.
	a := swarm.Announce{InfoHash: h, Addr: peerAddr(99), Left: 1, NumWant: 200}
	peers, _, err := ins[2].store.Announce(&a, swarm.FamilyV4, swarm.Peers{})
	if err != nil || len(peers.V4) != 102*swarm.PeerLen4 {
		t.Fatalf("partitioned node-2 answers %d peers (err %v), want its own 100, the seeder and the peer stopped on node-0", len(peers.V4)/swarm.PeerLen4, err)
	}
	want[key(h, peerAddr(99))] = false
	waitFor(t, 2*time.Second, "the majority side converges", sameAs(side, ins[0], ins[1]))

	nc.start(2)
	nc.waitRoutes()
	took := waitFor(t, 10*time.Second, "the instances converge after the partition heals", sameAs(want, ins...))
	t.Logf("partition healed: all %d peers on every instance %v after the server restarted", len(want), took)
	st := ins[2].node.Stats()
	if st.CatchUps < caughtUpBefore+1 || st.Dropped != 0 || st.StaleRemoved != 1 {
		t.Errorf("node-2 stats %+v: want a second catch-up after reconnecting, no drops, one stale peer removed", st)
	}
}

// Stopping every node leaves no goroutine behind.
func TestNoGoroutineLeft(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Run("cluster", func(t *testing.T) {
		_, ins := threeByThree(t)
		ins[0].announce(hashOf("x"), peerAddr(1), swarm.EventStarted, true)
		waitFor(t, 2*time.Second, "propagation", sameAs(map[string]bool{key(hashOf("x"), peerAddr(1)): true}, ins...))
	})
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines left running, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

// With NATS unreachable the tracker serves from its own state, keeps a
// bounded buffer (oldest dropped, counted), and joins once NATS is there.
func TestServesWithoutNATS(t *testing.T) {
	port := freePort(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	alone := startInstance(t, "alone", []string{url}, func(c *cluster.Config) {
		c.BatchBytes, c.BufferBytes = 1<<10, 4<<10 // four batches of 37 IPv4 announces
	})
	h := hashOf("no-nats")
	want := make(map[string]bool)
	for i := range 1000 {
		alone.announce(h, peerAddr(i), swarm.EventStarted, false)
		want[key(h, peerAddr(i))] = false
	}
	a := swarm.Announce{InfoHash: h, Addr: peerAddr(5000), Left: 1, NumWant: 50}
	peers, counts, err := alone.store.Announce(&a, swarm.FamilyV4, swarm.Peers{})
	if err != nil || len(peers.V4) != 50*swarm.PeerLen4 || counts.Leechers != 1001 {
		t.Fatalf("without NATS: %d peers, counts %+v, %v; want 50 of 1001", len(peers.V4)/swarm.PeerLen4, counts, err)
	}
	want[key(h, peerAddr(5000))] = false
	st := alone.node.Stats()
	if st.Connected || st.Queued > 4 || st.Dropped < 1001-5*37 {
		t.Fatalf("without NATS: %+v; want not connected, at most 4 batches queued, the rest dropped", st)
	}

	startNATSAt(t, port)
	waitFor(t, 5*time.Second, "connects when NATS appears", func() error {
		if st := alone.node.Stats(); !st.Connected || st.Queued > 0 {
			return fmt.Errorf("%+v", st)
		}
		return nil
	})
	// A second instance gets everything, the dropped announces included,
	// from the catch-up.
	other := startInstance(t, "other", []string{url})
	waitFor(t, 5*time.Second, "a new instance has every peer", sameAs(want, other))
}

// Batches node-2 dropped from its full buffer while cut off leave a gap in
// its numbering; the others notice it and fetch node-2's own peers.
func TestDroppedBatchesRecoveredThroughGap(t *testing.T) {
	nc, ins := threeByThree(t, func(c *cluster.Config) {
		c.BatchBytes, c.BufferBytes = 1<<10, 2<<10 // two batches of 37 IPv4 announces
	})
	nc.stop(2)
	waitFor(t, 5*time.Second, "node-2 sees NATS gone", func() error {
		if ins[2].node.Stats().Connected {
			return fmt.Errorf("still connected")
		}
		return nil
	})
	h := hashOf("gap")
	want := make(map[string]bool)
	for i := range 500 {
		ins[2].announce(h, peerAddr(i), swarm.EventStarted, i%2 == 0)
		want[key(h, peerAddr(i))] = i%2 == 0
	}
	if st := ins[2].node.Stats(); st.Dropped < 500-3*37 {
		t.Fatalf("node-2 %+v: want most announces dropped from its two-batch buffer", st)
	}
	nc.start(2)
	nc.waitRoutes()
	took := waitFor(t, 10*time.Second, "node-2's peers, dropped ones included, on every instance", sameAs(want, ins...))
	st0 := ins[0].node.Stats()
	t.Logf("node-2 dropped %d of 500 announces; all 500 on every instance %v after its server returned; node-0 gaps %d", ins[2].node.Stats().Dropped, took, st0.Gaps)
	if st0.Gaps == 0 {
		t.Errorf("node-0 saw no gap: %+v", st0)
	}
}
