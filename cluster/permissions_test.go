package cluster_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"herald/cluster"
	"herald/swarm"
)

// startExampleNATS runs a NATS server with docs/nats-server.conf.example
// and returns its URL.
func startExampleNATS(t *testing.T) (string, *server.Server) {
	opts, err := server.ProcessConfigFile("../docs/nats-server.conf.example")
	if err != nil {
		t.Fatal(err)
	}
	opts.Host, opts.Port, opts.NoLog, opts.NoSigs = "127.0.0.1", -1, true, true
	ns := &natsCluster{t: t, opts: []*server.Options{opts}, servers: make([]*server.Server, 1)}
	ns.start(0)
	t.Cleanup(func() { ns.stop(0) })
	return ns.servers[0].ClientURL(), ns.servers[0]
}

// docs/nats-server.conf.example, as shipped: herald nodes with its node
// permissions sync (batches and a catch-up through the inboxes, WebTorrent
// peers, admin changes and the admin state), and a client with the
// watcher's can neither ask for the peers nor answer, nor send admin
// changes, nor ask for or answer with the admin state.
func TestNATSPermissionsExample(t *testing.T) {
	url, exampleServer := startExampleNATS(t)

	as := func(user, password string) func(*cluster.Config) {
		return func(c *cluster.Config) { c.User, c.Password = user, password }
	}
	a := startWebInstance(t, "tracker-1", []string{url}, as("tracker-1", "change-me-1"))
	h := hashOf("permissions")
	want := map[string]bool{}
	for i := range 20 {
		a.announce(h, peerAddr(i+1), swarm.EventStarted, i%2 == 0)
		want[key(h, peerAddr(i+1))] = i%2 == 0
	}
	waitFor(t, 5*time.Second, "tracker-1 caught up", func() error {
		if !a.node.Stats().CaughtUp {
			return fmt.Errorf("%+v", a.node.Stats())
		}
		return nil
	})
	b := startWebInstance(t, "tracker-2", []string{url}, as("tracker-2", "change-me-2"))
	waitFor(t, 5*time.Second, "tracker-2 takes tracker-1's peers by catch-up", sameAs(want, b.instance))
	b.announce(h, peerAddr(100), swarm.EventStarted, false)
	want[key(h, peerAddr(100))] = false
	waitFor(t, 5*time.Second, "tracker-2's announce reaches tracker-1", sameAs(want, a.instance))
	if st := b.node.Stats(); st.CatchUps == 0 || st.CatchUpPeers < 20 {
		t.Errorf("tracker-2 %+v: want a catch-up with tracker-1's 20 peers", st)
	}
	dialBrowser(t, a.url, "browser-on-1--------").announce(wsHash, 0, "")
	dialBrowser(t, b.url, "browser-on-2--------").announce(wsHash, 1, "")
	counts(t, wsHash, [3]int{1, 1, 0}, a, b)
	// Admin changes pass between the nodes, and tracker-2 takes
	// tracker-1's admin state on connecting.
	runAdmin(t, a.instance, &changeLog{state: cluster.State{ListMode: "whitelist", List: []swarm.InfoHash{h}, ListChanged: time.Now()}})
	waitFor(t, 5*time.Second, "tracker-1 answering admin state requests", func() error {
		if st := a.node.Stats(); st.AdminCatchUpFailures > 0 {
			return fmt.Errorf("%+v", st)
		}
		if !exampleServer.GlobalAccount().SubscriptionInterest("herald.admin.state") {
			return fmt.Errorf("no interest yet")
		}
		return nil
	})
	changesB := runChanges(t, b.instance)
	waitFor(t, 5*time.Second, "tracker-2 takes tracker-1's admin state", func() error {
		if got := changesB.applied(); len(got) != 1 || len(got[0].List) != 1 {
			return fmt.Errorf("states applied: %+v", got)
		}
		return nil
	})
	waitFor(t, 5*time.Second, "an admin change from tracker-1 on tracker-2", func() error {
		if err := a.node.PublishChange(cluster.Change{Kind: cluster.ListAdd, InfoHashes: []swarm.InfoHash{h}}); err != nil {
			return err
		}
		if len(changesB.changes()) == 0 {
			return fmt.Errorf("none applied")
		}
		return nil
	})

	var mu sync.Mutex
	var violations []string
	watcher, err := nats.Connect(url, nats.UserInfo("watcher", "change-me-3"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			mu.Lock()
			violations = append(violations, err.Error())
			mu.Unlock()
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close()
	// It may read announces.
	batches, err := watcher.SubscribeSync("herald.announces")
	if err != nil {
		t.Fatal(err)
	}
	watcher.Flush()
	if _, err := batches.NextMsg(5 * time.Second); err != nil {
		t.Errorf("the watcher reads no batch (heartbeats come every 10 flush intervals): %v", err)
	}
	// It may not ask for the peers, nor take a catch-up's place.
	inbox := nats.NewInbox()
	replies, _ := watcher.SubscribeSync(inbox)
	req := append(cluster.AppendHeader(nil, cluster.Header{Kind: cluster.KindSyncRequest, Node: 5}), cluster.SyncAll)
	watcher.PublishRequest("herald.sync", inbox, req)
	watcher.PublishRequest("herald.sync.1", inbox, req)
	watcher.QueueSubscribe("herald.sync", "sync", func(*nats.Msg) {})
	watcher.Subscribe("herald.inbox.>", func(*nats.Msg) {})
	watcher.Publish("herald.admin", []byte(`{"kind":"unban","prefix":"0.0.0.0/0"}`))
	watcher.PublishRequest("herald.admin.state", inbox, []byte(`{"node":"watcher"}`))
	watcher.QueueSubscribe("herald.admin.state", "admin-state", func(*nats.Msg) {})
	watcher.Flush()
	if m, err := replies.NextMsg(time.Second); err == nil {
		t.Errorf("the watcher's catch-up request was answered: %d bytes", len(m.Data))
	}
	mu.Lock()
	defer mu.Unlock()
	all := strings.Join(violations, "\n")
	for _, want := range []string{`Publish to "herald.sync"`, `Publish to "herald.sync.1"`, `Subscription to "herald.sync"`, `Subscription to "herald.inbox.>"`, `Publish to "herald.admin"`,
		`Publish to "herald.admin.state"`, `Subscription to "herald.admin.state"`} {
		if !strings.Contains(all, want) {
			t.Errorf("no permissions violation for %s; the server reported:\n%s", want, all)
		}
	}
}
