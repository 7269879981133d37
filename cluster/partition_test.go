package cluster_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"herald/cluster"
	"herald/internal/servetest"
	"herald/swarm"
)

// natsProcs is a cluster of Debian's nats-server processes on loopback,
// each listing routes to all the others. Cutting server i off rewrites
// every configuration without the routes between i and the rest and
// reloads them (SIGHUP): the servers close those routes and keep serving
// their own clients, a partition of the NATS cluster itself. Healing
// reloads server i with its routes back.
type natsProcs struct {
	t                      testing.TB
	dir                    string
	client, route, monitor []int
	procs                  []*exec.Cmd
	ids                    []string // server ids, for routez
	probes                 []probe
}

// probe is a client of one server, subscribed from the start as herald's
// nodes are: a message to it from every other server shows that the routes
// carry the subscriptions made before they formed.
type probe struct {
	nc   *nats.Conn
	subj string
	got  chan string
}

func startNATSProcs(t *testing.T, n int) *natsProcs {
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		if os.Getenv("E2E_REQUIRE_CLIENTS") != "" {
			t.Fatal("nats-server not installed (Debian package nats-server)")
		}
		t.Skip("nats-server not installed (Debian package nats-server)")
	}
	c := &natsProcs{t: t, dir: t.TempDir()}
	for range n {
		c.client = append(c.client, freePort(t))
		c.route = append(c.route, freePort(t))
		c.monitor = append(c.monitor, freePort(t))
	}
	c.configure(-1)
	for i := range n {
		cmd := exec.Command(bin, "-c", c.conf(i))
		cmd.Stdout, cmd.Stderr = t.Output(), t.Output()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		c.procs = append(c.procs, cmd)
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
	}
	c.waitRoutes(-1)
	for i := range n {
		nc := rawClient(t, c.url(i))
		p := probe{nc: nc, subj: fmt.Sprintf("probe.%d", i), got: make(chan string, 64)}
		if _, err := nc.Subscribe(p.subj, func(m *nats.Msg) { p.got <- string(m.Data) }); err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		c.probes = append(c.probes, p)
	}
	servetest.WaitFor(t, 10*time.Second, func() error {
		if deaf := c.deafRoutes(); deaf != nil {
			return fmt.Errorf("routes %v carry no message", deaf)
		}
		return nil
	})
	return c
}

// deafRoutes sends a message from every server to every other server's
// probe and returns the pairs "from->to" that one did not arrive on
// within two seconds. nats-server 2.9 can lose the subscriptions a route
// should carry when the route forms while one of its servers reloads its
// configuration: the route is up, routez lists it, and nothing crosses it.
func (c *natsProcs) deafRoutes() []string {
	c.t.Helper()
	nonce := strconv.FormatInt(time.Now().UnixNano(), 36)
	for i, from := range c.probes {
		for j, to := range c.probes {
			if i != j {
				if err := from.nc.Publish(to.subj, fmt.Appendf(nil, "%s %d", nonce, i)); err != nil {
					c.t.Fatal(err)
				}
			}
		}
		if err := from.nc.Flush(); err != nil {
			c.t.Fatal(err)
		}
	}
	var deaf []string
	deadline := time.Now().Add(2 * time.Second)
	for j, to := range c.probes {
		want := map[string]bool{}
		for i := range c.probes {
			if i != j {
				want[fmt.Sprintf("%s %d", nonce, i)] = true
			}
		}
	wait:
		for len(want) > 0 {
			select {
			case m := <-to.got:
				delete(want, m)
			case <-time.After(time.Until(deadline)):
				break wait
			}
		}
		for m := range want {
			deaf = append(deaf, fmt.Sprintf("nats-%s->nats-%d", strings.TrimPrefix(m, nonce+" "), j))
		}
	}
	slices.Sort(deaf)
	return deaf
}

func (c *natsProcs) conf(i int) string { return filepath.Join(c.dir, fmt.Sprintf("nats-%d.conf", i)) }

func (c *natsProcs) url(i int) string { return fmt.Sprintf("nats://127.0.0.1:%d", c.client[i]) }

// configure writes every server's configuration, without the routes
// between server cut and the others (cut -1: a full mesh).
func (c *natsProcs) configure(cut int) {
	for i := range c.client {
		var routes []string
		for j := range c.client {
			if j != i && i != cut && j != cut {
				routes = append(routes, fmt.Sprintf("%q", fmt.Sprintf("nats-route://127.0.0.1:%d", c.route[j])))
			}
		}
		conf := fmt.Sprintf("server_name: nats-%d\nlisten: 127.0.0.1:%d\nhttp: 127.0.0.1:%d\n"+
			"cluster { name: herald-test, listen: 127.0.0.1:%d, no_advertise: true, routes: [%s] }\n",
			i, c.client[i], c.monitor[i], c.route[i], strings.Join(routes, ", "))
		if err := os.WriteFile(c.conf(i), []byte(conf), 0o600); err != nil {
			c.t.Fatal(err)
		}
	}
}

// reload has servers, one after the other, read their configurations
// again, and waits until the routes are those of cut. A route that connects
// to a server in the middle of its reload loses its subscriptions
// (nats-server 2.9 logs "Unknown account" and forwards nothing on it), so
// each reload ends before the next begins.
func (c *natsProcs) reload(cut int, servers ...int) {
	c.t.Helper()
	c.configure(cut)
	for _, i := range servers {
		var before, after struct {
			Loaded string `json:"config_load_time"`
		}
		if err := c.monitorGet(i, "varz", &before); err != nil {
			c.t.Fatal(err)
		}
		if err := c.procs[i].Process.Signal(syscall.SIGHUP); err != nil {
			c.t.Fatal(err)
		}
		servetest.WaitFor(c.t, 10*time.Second, func() error {
			if err := c.monitorGet(i, "varz", &after); err != nil {
				return err
			}
			if after.Loaded == before.Loaded {
				return fmt.Errorf("nats-%d has not reloaded", i)
			}
			return nil
		})
	}
	c.waitRoutes(cut)
}

// waitRoutes waits until each server routes to exactly the others it
// should with server cut cut off (-1: none), once each: both ends of a
// route dial, and a server closes one of two routes to the same server a
// moment after the second is up.
func (c *natsProcs) waitRoutes(cut int) {
	c.t.Helper()
	if c.ids == nil {
		for i := range c.client {
			var varz struct {
				ID string `json:"server_id"`
			}
			servetest.WaitFor(c.t, 10*time.Second, func() error { return c.monitorGet(i, "varz", &varz) })
			c.ids = append(c.ids, varz.ID)
		}
	}
	servetest.WaitFor(c.t, 15*time.Second, func() error {
		for i := range c.client {
			var routez struct {
				Routes []struct {
					RemoteID string `json:"remote_id"`
				} `json:"routes"`
			}
			if err := c.monitorGet(i, "routez", &routez); err != nil {
				return err
			}
			var got, want []string
			for _, r := range routez.Routes {
				got = append(got, r.RemoteID)
			}
			for j, id := range c.ids {
				if j != i && i != cut && j != cut {
					want = append(want, id)
				}
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				return fmt.Errorf("nats-%d routes to %v, want %v", i, got, want)
			}
		}
		return nil
	})
}

// monitorGet reads server i's monitoring endpoint path as JSON into v.
func (c *natsProcs) monitorGet(i int, path string, v any) error {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/%s", c.monitor[i], path))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("nats-%d %s: %w", i, path, err)
	}
	return nil
}

// churn announces and stops peers on one instance until stopped: each
// instance has its own peers (the instance's number in the address), so
// the peers every instance should end with are known exactly.
type churn struct {
	mu    sync.Mutex
	want  map[string]bool
	live  [3][]string // per instance: keys of its live peers
	peers map[string]churnPeer
	count [3]atomic.Int64
}

// churnPeer is one peer of a churn: its torrent and its number on its
// instance.
type churnPeer struct {
	h swarm.InfoHash
	i int
}

func (c *churn) step(in *instance, node int, rng *rand.Rand, next *int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	live := c.live[node]
	if len(live) > 20 && rng.IntN(3) == 0 {
		k := rng.IntN(len(live))
		p := c.peers[live[k]]
		in.announce(p.h, peerAddr(node<<16|p.i), swarm.EventStopped, false)
		delete(c.want, live[k])
		c.live[node] = append(live[:k], live[k+1:]...)
	} else {
		*next++
		h := hashOf(fmt.Sprintf("churn-%d", rng.IntN(20)))
		seeder := rng.IntN(4) == 0
		addr := peerAddr(node<<16 | *next)
		in.announce(h, addr, swarm.EventStarted, seeder)
		k := key(h, addr)
		c.want[k] = seeder
		c.live[node] = append(c.live[node], k)
		c.peers[k] = churnPeer{h, *next}
	}
	c.count[node].Add(1)
}

// Issue 13 item 2: the NATS cluster splits, nats-2 and node-2 on one side,
// the rest on the other; announces and stops go on on both sides; the
// routes come back. Each node then asks the others for their own peers and
// removes what they stopped while it could not hear them: every instance
// ends with exactly the live peers. Before the fix the stops missed across
// the partition stayed until the peers expired.
func TestExactAfterPartition(t *testing.T) {
	ns := startNATSProcs(t, 3)
	ins := make([]*instance, 3)
	for i := range ins {
		ins[i] = startInstance(t, fmt.Sprintf("node-%d", i), []string{ns.url(i)})
	}
	servetest.WaitFor(t, 10*time.Second, func() error {
		for _, in := range ins {
			if st := in.node.Stats(); !st.CaughtUp || st.Members != 2 {
				return fmt.Errorf("%s: %+v", in.name, st)
			}
		}
		return nil
	})

	c := &churn{want: map[string]bool{}, peers: map[string]churnPeer{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for n, in := range ins {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(n), 13))
			next := 0
			for {
				select {
				case <-stop:
					return
				case <-time.After(time.Millisecond):
				}
				c.step(in, n, rng, &next)
			}
		})
	}
	// until waits for every instance to have made k more announces.
	until := func(k int64) {
		t.Helper()
		var from [3]int64
		for i := range from {
			from[i] = c.count[i].Load()
		}
		servetest.WaitFor(t, 20*time.Second, func() error {
			for i := range from {
				if d := c.count[i].Load() - from[i]; d < k {
					return fmt.Errorf("node-%d made %d announces, want %d", i, d, k)
				}
			}
			return nil
		})
	}
	until(200)

	// Both ends of each route to nats-2 must forget it, or one redials.
	ns.reload(2, 0, 1, 2)
	// Long enough that the others forget node-2 (30 flush intervals) and
	// plenty of stops on both sides go unheard across the split.
	until(1000)
	// The split is real: node-2 lacks peers node-0 took meanwhile.
	c.mu.Lock()
	missing := 0
	on2 := ins[2].peers()
	for k := range ins[0].peers() {
		if _, ok := on2[k]; !ok {
			missing++
		}
	}
	c.mu.Unlock()
	if missing == 0 {
		t.Fatal("node-2 has every peer of node-0 while its NATS server is cut off: no partition")
	}

	// nats-2 dials the others again; they accept without a reload. It
	// dials during its own reload, so a route may form without the
	// subscriptions (see deafRoutes): that is nats-server's fault, not
	// herald's, and the split is made and healed again.
	for heals := 1; ; heals++ {
		ns.reload(-1, 2)
		deaf := ns.deafRoutes()
		if deaf == nil {
			break
		}
		if heals == 3 {
			t.Fatalf("healed %d times, and each time routes carried nothing: %v", heals, deaf)
		}
		t.Logf("healed, but routes %v carry nothing; splitting again", deaf)
		ns.reload(2, 0, 1, 2)
	}
	until(200)
	close(stop)
	wg.Wait()
	servetest.WaitFor(t, 20*time.Second, sameAs(c.want, ins...))
	var stale uint64
	for _, in := range ins {
		st := in.node.Stats()
		stale += st.StaleRemoved
		t.Logf("%s: %+v", in.name, st)
	}
	t.Logf("%d live peers the same on every instance; %d peers unseen while cut off before partition healed on node-2; %d stale peers removed by catch-ups",
		len(c.want), missing, stale)
	if stale == 0 {
		t.Error("no stale peer removed: the partition missed no stop")
	}
}

// A node's dump can be older than its next batch: it stops a peer after
// dumping its store, and the batch with the stop overtakes the stream on
// the asker (another subscription, applied by another goroutine). The
// stream must not bring the stopped peer back, whether it answers a direct
// catch-up (after a partition, a gap, or a node heard for the first time)
// or a full one (a node connecting). Here a raw client plays the answering
// node and sends the stop before the dump that still holds its peer.
func TestCatchUpDoesNotRestorePeerStoppedMeanwhile(t *testing.T) {
	h, addr := hashOf("stopped meanwhile"), peerAddr(9)
	const sender = 0x4e
	batch := func(seq uint32, ev swarm.Event) []byte {
		return cluster.AppendRecord(cluster.AppendHeader(nil, cluster.Header{Kind: cluster.KindAnnounces, Node: sender, Seq: seq}),
			&swarm.Announce{InfoHash: h, Addr: addr, Event: ev})
	}
	// answer streams a dump made before the stop: one chunk with the peer,
	// and the end.
	answer := func(t *testing.T, raw *nats.Conn, reply string) {
		t.Helper()
		ts := swarm.TorrentState{InfoHash: h, Peers: []swarm.PeerState{{Addr: addr}}}
		chunk := swarm.AppendTorrentState(cluster.AppendHeader(nil, cluster.Header{Kind: cluster.KindSyncChunk, Node: sender, Seq: 1}), &ts)
		end := cluster.AppendSyncEnd(cluster.AppendHeader(nil, cluster.Header{Kind: cluster.KindSyncEnd, Node: sender, Seq: 2}),
			cluster.SyncEnd{Torrents: 1, Peers: 1, Name: "sender"})
		if err := errors.Join(raw.Publish(reply, chunk), raw.Publish(reply, end)); err != nil {
			t.Fatal(err)
		}
	}
	// requests hands the test the reply subjects of the catch-up requests
	// raw receives on subject (in queue group queue, unless empty).
	requests := func(t *testing.T, raw *nats.Conn, subject, queue string) <-chan string {
		t.Helper()
		replies := make(chan string, 4)
		if _, err := raw.QueueSubscribe(subject, queue, func(m *nats.Msg) { replies <- m.Reply }); err != nil {
			t.Fatal(err)
		}
		if err := raw.Flush(); err != nil {
			t.Fatal(err)
		}
		return replies
	}
	next := func(t *testing.T, replies <-chan string) string {
		t.Helper()
		select {
		case r := <-replies:
			return r
		case <-time.After(5 * time.Second):
			t.Fatal("no catch-up request")
			return ""
		}
	}
	publish := func(t *testing.T, raw *nats.Conn, msg []byte) {
		t.Helper()
		if err := raw.Publish("herald.announces", msg); err != nil {
			t.Fatal(err)
		}
	}
	caughtUp := func(in *instance, want uint64) func() error {
		return func() error {
			if st := in.node.Stats(); st.CatchUps != want {
				return fmt.Errorf("%+v", st)
			}
			return nil
		}
	}

	t.Run("direct", func(t *testing.T) {
		ns := startNATS(t, 1)
		in := startInstance(t, "asker", []string{ns.url(0)})
		waitFor(t, 5*time.Second, "node caught up", func() error {
			if !in.node.Stats().CaughtUp {
				return fmt.Errorf("not yet")
			}
			return nil
		})
		raw := rawClient(t, ns.url(0))
		replies := requests(t, raw, fmt.Sprintf("herald.sync.%x", sender), "")
		// Batch 5 of a node heard for the first time: the asker stores
		// the peer and asks the sender for its own peers.
		publish(t, raw, batch(5, swarm.EventStarted))
		reply := next(t, replies)
		// The sender dumped its store on the request; then its client
		// stopped, and the batch went out before the dump.
		publish(t, raw, batch(6, swarm.EventStopped))
		waitFor(t, 5*time.Second, "the stop applied", func() error {
			if st := in.node.Stats(); st.Applied != 2 {
				return fmt.Errorf("%+v", st)
			}
			return nil
		})
		answer(t, raw, reply)
		waitFor(t, 5*time.Second, "the catch-up", caughtUp(in, 1))
		if err := sameAs(map[string]bool{}, in)(); err != nil {
			t.Errorf("after the stop and the older dump: %v", err)
		}
	})

	t.Run("full", func(t *testing.T) {
		ns := startNATS(t, 1)
		raw := rawClient(t, ns.url(0))
		replies := requests(t, raw, "herald.sync", "sync")
		in := startInstance(t, "asker", []string{ns.url(0)})
		reply := next(t, replies)
		// The member's client stopped the peer after the member dumped
		// its store.
		publish(t, raw, batch(1, swarm.EventStopped))
		waitFor(t, 5*time.Second, "the stop applied", func() error {
			if st := in.node.Stats(); st.Applied != 1 {
				return fmt.Errorf("%+v", st)
			}
			return nil
		})
		answer(t, raw, reply)
		waitFor(t, 5*time.Second, "the catch-up", caughtUp(in, 1))
		if err := sameAs(map[string]bool{}, in)(); err != nil {
			t.Errorf("after the stop and the older dump: %v", err)
		}
	})
}
