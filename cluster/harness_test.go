package cluster_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"herald/cluster"
	"herald/swarm"
)

// natsCluster is a NATS cluster of real servers in this process, on random
// ports. Server 0 is the seed the others route to; a server restarted keeps
// its ports. Servers do not advertise each other to clients, so a client
// reaches only the URLs it was given: a stopped server is a partition.
type natsCluster struct {
	t       testing.TB
	opts    []*server.Options
	servers []*server.Server
}

func startNATS(t testing.TB, n int) *natsCluster {
	c := &natsCluster{t: t, opts: make([]*server.Options, n), servers: make([]*server.Server, n)}
	for i := range n {
		o := &server.Options{
			ServerName: fmt.Sprintf("nats-%d", i),
			Host:       "127.0.0.1",
			Port:       -1,
			NoLog:      true,
			NoSigs:     true,
			Cluster: server.ClusterOpts{
				Name:        "herald-test",
				Host:        "127.0.0.1",
				Port:        -1,
				NoAdvertise: true,
			},
		}
		if i > 0 {
			o.Routes = server.RoutesFromStr(fmt.Sprintf("nats://127.0.0.1:%d", c.opts[0].Cluster.Port))
		}
		c.opts[i] = o
		c.start(i)
		// Fix the ports the server picked, for restarts. The server
		// reads its own copy of the options.
		o.Port = c.servers[i].Addr().(*net.TCPAddr).Port
		o.Cluster.Port = c.servers[i].ClusterAddr().Port
	}
	c.waitRoutes()
	t.Cleanup(func() {
		for i := range c.servers {
			c.stop(i)
		}
	})
	return c
}

func (c *natsCluster) start(i int) {
	c.t.Helper()
	s, err := server.NewServer(c.opts[i].Clone())
	if err != nil {
		c.t.Fatalf("nats server %d: %v", i, err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		c.t.Fatalf("nats server %d not ready", i)
	}
	c.servers[i] = s
}

func (c *natsCluster) stop(i int) {
	if s := c.servers[i]; s != nil {
		s.Shutdown()
		s.WaitForShutdown()
		c.servers[i] = nil
	}
}

// waitRoutes waits until every running server routes to every other.
func (c *natsCluster) waitRoutes() {
	c.t.Helper()
	up := 0
	for _, s := range c.servers {
		if s != nil {
			up++
		}
	}
	waitFor(c.t, 10*time.Second, "NATS routes", func() error {
		for i, s := range c.servers {
			if s != nil && s.NumRemotes() < up-1 {
				return fmt.Errorf("server %d routes to %d servers, want %d", i, s.NumRemotes(), up-1)
			}
		}
		return nil
	})
}

// startNATSAt starts a single NATS server on port.
func startNATSAt(t testing.TB, port int) *natsCluster {
	c := &natsCluster{t: t,
		opts:    []*server.Options{{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true}},
		servers: make([]*server.Server, 1)}
	c.start(0)
	t.Cleanup(func() { c.stop(0) })
	return c
}

// freePort returns a TCP port nothing listens on at the moment.
func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (c *natsCluster) url(i int) string { return fmt.Sprintf("nats://127.0.0.1:%d", c.opts[i].Port) }

// serverOf returns the index of the server that holds the connection named
// name, or -1.
func (c *natsCluster) serverOf(name string) int {
	for i, s := range c.servers {
		if s == nil {
			continue
		}
		cz, err := s.Connz(nil)
		if err != nil {
			continue
		}
		for _, conn := range cz.Conns {
			if conn.Name == "herald "+name {
				return i
			}
		}
	}
	return -1
}

// instance is one herald: its own store and cluster node, announced to
// directly as a frontend would.
type instance struct {
	t     testing.TB
	name  string
	store *swarm.Store
	node  *cluster.Node
	stop  func()
}

// testFlush is the flush interval of the tests: short, so that the tests
// are quick, long enough to batch.
const testFlush = 50 * time.Millisecond

func startInstance(t testing.TB, name string, urls []string, tweaks ...func(*cluster.Config)) *instance {
	t.Helper()
	return runInstance(t, name, newNode(t, name, urls, tweaks...))
}

// newNode returns a node with the tests' settings, not yet running.
func newNode(t testing.TB, name string, urls []string, tweaks ...func(*cluster.Config)) *cluster.Node {
	t.Helper()
	cfg := cluster.Config{
		URLs:          urls,
		NodeName:      name,
		FlushInterval: testFlush,
		ReconnectWait: 50 * time.Millisecond,
		SyncTimeout:   2 * time.Second,
	}
	for _, tweak := range tweaks {
		tweak(&cfg)
	}
	node, err := cluster.New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return node
}

// runInstance gives node a store and runs both until the test ends.
func runInstance(t testing.TB, name string, node *cluster.Node) *instance {
	t.Helper()
	store, err := swarm.New(swarm.Config{Shards: 16, Sink: node})
	if err != nil {
		t.Fatal(err)
	}
	store.SetNow(time.Now())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go store.Run(ctx)
	go func() { done <- node.Run(ctx, store) }()
	in := &instance{t: t, name: name, store: store, node: node}
	var stopped bool
	in.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: Run: %v", name, err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("%s: Run did not return after cancel", name)
		}
	}
	t.Cleanup(in.stop)
	return in
}

// testLogger sends a node's logs to the test's output, shown with -v or on
// failure.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func hashOf(s string) swarm.InfoHash {
	var h swarm.InfoHash
	copy(h[:], s)
	return h
}

// peerAddr returns the i-th test peer, 127.0.0.0 and up, port 6881.
func peerAddr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, byte(i >> 16), byte(i >> 8), byte(i)}), 6881)
}

func (in *instance) announce(h swarm.InfoHash, addr netip.AddrPort, ev swarm.Event, seeder bool) {
	in.t.Helper()
	a := swarm.Announce{InfoHash: h, Addr: addr, Event: ev, NumWant: 50}
	if !seeder {
		a.Left = 1
	}
	if _, _, err := in.store.Announce(&a, swarm.FamilyBoth, swarm.Peers{}); err != nil {
		in.t.Fatalf("%s: announce: %v", in.name, err)
	}
}

// peers returns the store's peers of every torrent, as "hash/addr" keys
// with the seeder flag.
func (in *instance) peers() map[string]bool {
	got := make(map[string]bool)
	in.store.Dump(func(ts *swarm.TorrentState) error {
		for _, p := range ts.Peers {
			got[fmt.Sprintf("%x/%v", ts.InfoHash[:4], p.Addr)] = p.Seeder
		}
		return nil
	})
	return got
}

func key(h swarm.InfoHash, addr netip.AddrPort) string { return fmt.Sprintf("%x/%v", h[:4], addr) }

// waitFor polls cond until it returns nil or the deadline passes.
func waitFor(t testing.TB, within time.Duration, what string, cond func() error) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(within)
	for {
		err := cond()
		if err == nil {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, within, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sameAs checks that every instance holds exactly want.
func sameAs(want map[string]bool, ins ...*instance) func() error {
	return func() error {
		var errs []string
		for _, in := range ins {
			got := in.peers()
			missing, extra := 0, 0
			example := ""
			for k, seeder := range want {
				if s, ok := got[k]; !ok || s != seeder {
					missing++
					example = fmt.Sprintf(" (%s: have %v, want seeder=%v)", k, ok, seeder)
				}
			}
			for k := range got {
				if _, ok := want[k]; !ok {
					extra++
				}
			}
			if missing+extra > 0 {
				errs = append(errs, fmt.Sprintf("%s: %d of %d peers missing or wrong%s, %d extra", in.name, missing, len(want), example, extra))
			}
		}
		if errs != nil {
			return fmt.Errorf("%s", strings.Join(errs, "; "))
		}
		return nil
	}
}
