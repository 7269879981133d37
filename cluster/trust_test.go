package cluster_test

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"herald/cluster"
	"herald/swarm"
)

// rawClient is a NATS client that is no herald: it speaks the wire format
// by hand, as an intruder or a broken node would.
func rawClient(t *testing.T, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// unreachable are peers the tracker refuses on announce: a port 0, the
// unspecified address, a multicast group, the broadcast address.
var unreachable = []netip.AddrPort{
	netip.MustParseAddrPort("127.0.0.5:0"),
	netip.MustParseAddrPort("0.0.0.0:6881"),
	netip.MustParseAddrPort("[ff02::1]:6881"),
	netip.MustParseAddrPort("255.255.255.255:6881"),
}

var refusedHash = hashOf("not-on-the-list")

func refuseListed(c *cluster.Config) {
	c.Allowed = func(h swarm.InfoHash) bool { return h != refusedHash }
}

// Issue 14 item 8: announces from NATS pass the access list and the
// address checks, as announces to the tracker itself do.
func TestClusterAnnouncesValidatedOnApply(t *testing.T) {
	ns := startNATS(t, 1)
	in := startInstance(t, "checked", []string{ns.url(0)}, refuseListed)
	waitFor(t, 5*time.Second, "node caught up", func() error {
		if !in.node.Stats().CaughtUp {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	h, good := hashOf("allowed"), netip.MustParseAddrPort("127.0.0.9:6881")
	batch := cluster.AppendHeader(nil, cluster.Header{Kind: cluster.KindAnnounces, Node: 77, Seq: 1})
	for _, addr := range unreachable {
		batch = cluster.AppendRecord(batch, &swarm.Announce{InfoHash: h, Addr: addr, Event: swarm.EventStarted})
	}
	batch = cluster.AppendRecord(batch, &swarm.Announce{InfoHash: refusedHash, Addr: good, Event: swarm.EventStarted})
	batch = cluster.AppendRecord(batch, &swarm.Announce{InfoHash: h, Addr: good, Event: swarm.EventStarted})
	raw := rawClient(t, ns.url(0))
	if err := raw.Publish("herald.announces", batch); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the valid record applied", sameAs(map[string]bool{key(h, good): true}, in))
	if st := in.node.Stats(); st.NotAllowed != 1 || st.InvalidAddr != uint64(len(unreachable)) || st.Applied != 1 {
		t.Errorf("stats %+v: want 1 applied, 1 not allowed, %d invalid addresses", st, len(unreachable))
	}
}

// serveForgedCatchUp answers the next catch-up request on herald.sync with
// one chunk holding states and an end, as a member of the queue group.
func serveForgedCatchUp(t *testing.T, raw *nats.Conn, states ...swarm.TorrentState) {
	t.Helper()
	_, err := raw.QueueSubscribe("herald.sync", "sync", func(m *nats.Msg) {
		chunk := cluster.AppendHeader(nil, cluster.Header{Kind: cluster.KindSyncChunk, Node: 99, Seq: 1})
		for i := range states {
			chunk = swarm.AppendTorrentState(chunk, &states[i])
		}
		raw.Publish(m.Reply, chunk)
		raw.Publish(m.Reply, cluster.AppendSyncEnd(cluster.AppendHeader(nil, cluster.Header{Kind: cluster.KindSyncEnd, Node: 99, Seq: 2}),
			cluster.SyncEnd{Torrents: uint64(len(states)), Name: "forger"}))
	})
	if err != nil {
		t.Fatal(err)
	}
	raw.Flush()
}

func TestCatchUpValidatedOnApply(t *testing.T) {
	ns := startNATS(t, 1)
	h, good := hashOf("allowed"), netip.MustParseAddrPort("127.0.0.9:6881")
	ts := swarm.TorrentState{InfoHash: h, Peers: []swarm.PeerState{{Addr: good, Seeder: true}}}
	for _, addr := range unreachable {
		ts.Peers = append(ts.Peers, swarm.PeerState{Addr: addr})
	}
	serveForgedCatchUp(t, rawClient(t, ns.url(0)), ts,
		swarm.TorrentState{InfoHash: refusedHash, Peers: []swarm.PeerState{{Addr: good}}})
	in := startInstance(t, "checked", []string{ns.url(0)}, refuseListed)
	waitFor(t, 5*time.Second, "the catch-up", func() error {
		if in.node.Stats().CatchUps != 1 {
			return fmt.Errorf("%+v", in.node.Stats())
		}
		return nil
	})
	if err := sameAs(map[string]bool{key(h, good): true}, in)(); err != nil {
		t.Error(err)
	}
	if st := in.node.Stats(); st.NotAllowed != 1 || st.InvalidAddr != uint64(len(unreachable)) {
		t.Errorf("stats %+v: want 1 not allowed, %d invalid addresses", st, len(unreachable))
	}
}

func writeKey(t *testing.T, key string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cluster.key")
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// With a shared key, nodes sync as before; a batch, a catch-up request or
// a catch-up stream without the key's tag is dropped and counted.
func TestSharedKeyDropsForgeries(t *testing.T) {
	keyFile := writeKey(t, strings.Repeat("k", 64))
	keyed := func(c *cluster.Config) { c.SharedKeyFile = keyFile }
	ns := startNATS(t, 1)
	a := startInstance(t, "a", []string{ns.url(0)}, keyed)
	b := startInstance(t, "b", []string{ns.url(0)}, keyed)
	h := hashOf("keyed")
	want := map[string]bool{}
	for i := range 3 {
		a.announce(h, peerAddr(i+1), swarm.EventStarted, true)
		want[key(h, peerAddr(i+1))] = true
	}
	waitFor(t, 5*time.Second, "a's peers on b, through tagged batches", sameAs(want, b))
	waitFor(t, 5*time.Second, "both nodes answering catch-ups", func() error {
		if !a.node.Stats().CaughtUp || !b.node.Stats().CaughtUp {
			return fmt.Errorf("a %+v, b %+v", a.node.Stats(), b.node.Stats())
		}
		return nil
	})

	raw := rawClient(t, ns.url(0))
	forged := cluster.AppendRecord(cluster.AppendHeader(nil, cluster.Header{Kind: cluster.KindAnnounces, Node: 5, Seq: 1}),
		&swarm.Announce{InfoHash: h, Addr: netip.MustParseAddrPort("127.0.0.66:6881"), Event: swarm.EventStarted})
	raw.Publish("herald.announces", forged)
	raw.Publish("herald.announces", append(forged, make([]byte, 32)...)) // a tag, but not the key's
	// A catch-up request without the tag gets no answer.
	inbox := raw.NewRespInbox()
	sub, err := raw.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	raw.PublishRequest("herald.sync", inbox, append(cluster.AppendHeader(nil, cluster.Header{Kind: cluster.KindSyncRequest, Node: 5}), cluster.SyncAll))
	if m, err := sub.NextMsg(time.Second); err == nil {
		t.Errorf("an untagged catch-up request was answered: %d bytes", len(m.Data))
	}
	waitFor(t, 5*time.Second, "the forgeries counted", func() error {
		if n := a.node.Stats().Unauthenticated + b.node.Stats().Unauthenticated; n != 5 {
			return fmt.Errorf("%d unauthenticated messages counted, want 2 batches on each node and 1 request", n)
		}
		return nil
	})
	if err := sameAs(want, a, b)(); err != nil {
		t.Errorf("a forged batch was applied: %v", err)
	}

	// A node asking for a catch-up gets a forged stream from an intruder in
	// the queue group: it drops the stream and takes nothing from it.
	lone := startNATS(t, 1)
	serveForgedCatchUp(t, rawClient(t, lone.url(0)),
		swarm.TorrentState{InfoHash: h, Peers: []swarm.PeerState{{Addr: netip.MustParseAddrPort("127.0.0.66:6881")}}})
	c := startInstance(t, "c", []string{lone.url(0)}, keyed)
	waitFor(t, 5*time.Second, "the forged stream dropped", func() error {
		// Each attempt gets the forged chunk and end; c retries after a
		// failure, so the counts go on growing.
		if st := c.node.Stats(); st.Unauthenticated < 2 || st.CatchUpFailures == 0 {
			return fmt.Errorf("%+v: want 2 unauthenticated messages per failed catch-up", st)
		}
		return nil
	})
	if c.store.Peers() != 0 {
		t.Errorf("%d peers taken from a forged catch-up", c.store.Peers())
	}
}

func TestSharedKeyTooShort(t *testing.T) {
	_, err := cluster.New(cluster.Config{URLs: []string{"nats://127.0.0.1:4222"}, SharedKeyFile: writeKey(t, "short")}, testLogger(t))
	if err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Fatalf("error %v, want one asking for 32 bytes", err)
	}
}

// A node asked for its own peers is the authority on them: its answer
// removes the peers it announced that it no longer holds. So the answer
// must come from that node: a stream in another node's name is refused and
// removes nothing.
func TestOwnCatchUpOnlyFromThatNode(t *testing.T) {
	ns := startNATS(t, 1)
	// A second's pause before asking again leaves time to look.
	in := startInstance(t, "asker", []string{ns.url(0)}, func(c *cluster.Config) { c.ReconnectWait = time.Second })
	waitFor(t, 5*time.Second, "node caught up", func() error {
		if !in.node.Stats().CaughtUp {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	const sender = 0x4d
	raw := rawClient(t, ns.url(0))
	var answers atomic.Int32
	_, err := raw.Subscribe(fmt.Sprintf("herald.sync.%x", sender), func(m *nats.Msg) {
		// The first answer claims to be node 99, the next ones are node
		// 0x4d's: it holds nothing any more.
		from := uint64(sender)
		if answers.Add(1) == 1 {
			from = 99
		}
		raw.Publish(m.Reply, cluster.AppendSyncEnd(cluster.AppendHeader(nil, cluster.Header{Kind: cluster.KindSyncEnd, Node: from, Seq: 1}),
			cluster.SyncEnd{Name: "sender"}))
	})
	if err != nil {
		t.Fatal(err)
	}
	h, addr := hashOf("owned"), netip.MustParseAddrPort("127.0.0.9:6881")
	// Batch 5 of a node heard for the first time: the asker applies it and
	// asks the sender for its own peers.
	batch := cluster.AppendRecord(cluster.AppendHeader(nil, cluster.Header{Kind: cluster.KindAnnounces, Node: sender, Seq: 5}),
		&swarm.Announce{InfoHash: h, Addr: addr, Event: swarm.EventStarted})
	if err := raw.Publish("herald.announces", batch); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the answer in another node's name refused", func() error {
		if st := in.node.Stats(); st.CatchUpFailures != 1 || st.Malformed != 1 {
			return fmt.Errorf("%+v", st)
		}
		return nil
	})
	if err := sameAs(map[string]bool{key(h, addr): true}, in)(); err != nil {
		t.Errorf("after the refused answer: %v", err)
	}
	// The node still publishes, so it is asked again, and its own empty
	// answer removes its peer.
	raw.Publish("herald.announces", cluster.AppendHeader(nil, cluster.Header{Kind: cluster.KindAnnounces, Node: sender, Seq: 6}))
	waitFor(t, 5*time.Second, "the sender's own answer removes its stopped peer", sameAs(map[string]bool{}, in))
	if st := in.node.Stats(); st.StaleRemoved != 1 {
		t.Errorf("stats %+v: want 1 stale peer removed", st)
	}
}
