package cluster_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"herald/access"
	"herald/accounting"
	"herald/cluster"
	"herald/swarm"
)

type accountingMsg struct {
	Node   string `json:"node"`
	NodeID string `json:"node_id"`
	Seq    uint64 `json:"seq"`
	Time   time.Time
	Keys   []struct {
		Key            string            `json:"key"`
		Announces      uint64            `json:"announces"`
		Uploaded       uint64            `json:"uploaded"`
		Downloaded     uint64            `json:"downloaded"`
		ActiveTorrents int               `json:"active_torrents"`
		Delta          accounting.Totals `json:"delta"`
	} `json:"keys"`
}

// subscribeAccounting is a site's database reading <prefix>.accounting.
func subscribeAccounting(t *testing.T, url string, opts ...nats.Option) *nats.Subscription {
	t.Helper()
	site, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(site.Close)
	sub, err := site.SubscribeSync("herald.accounting")
	if err != nil {
		t.Fatal(err)
	}
	site.Flush()
	return sub
}

func memberKey(i int) access.Key {
	k, err := access.ParseKey(fmt.Sprintf("ClusterMember%019d", i))
	if err != nil {
		panic(err)
	}
	return k
}

// Issue 15 item 2: a node publishes the per-key accounting on
// <prefix>.accounting in batches; what NATS could not take is sent with
// the next batch, so a consumer adding the deltas loses nothing.
func TestAccountingPublished(t *testing.T) {
	nc := startNATS(t, 1)
	ledger := accounting.New(time.Hour, 0)
	in := startInstance(t, "acct", []string{nc.url(0)}, func(c *cluster.Config) {
		c.Accounting, c.AccountingInterval, c.BatchBytes = ledger, 100*time.Millisecond, 1024
	})
	sub := subscribeAccounting(t, nc.url(0))

	// What a site's database does: add up every delta per key.
	uploaded, announces := map[string]uint64{}, map[string]uint64{}
	var lastSeq uint64
	receive := func(want int, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for got := 0; got < want; {
			m, err := sub.NextMsg(time.Until(deadline))
			if err != nil {
				t.Fatalf("after %d of %d keys: %v", got, want, err)
			}
			if len(m.Data) > 1024 {
				t.Errorf("message of %d bytes, batch bound 1024", len(m.Data))
			}
			var msg accountingMsg
			if err := json.Unmarshal(m.Data, &msg); err != nil {
				t.Fatalf("message %q: %v", m.Data, err)
			}
			if msg.Node != "acct" || msg.Seq != lastSeq+1 || msg.NodeID == "" || msg.Time.IsZero() {
				t.Fatalf("message head %+v after seq %d", msg, lastSeq)
			}
			lastSeq = msg.Seq
			for _, k := range msg.Keys {
				uploaded[k.Key] += k.Delta.Uploaded
				announces[k.Key] += k.Delta.Announces
				if uploaded[k.Key] != k.Uploaded || announces[k.Key] != k.Announces {
					t.Fatalf("key %s: deltas add up to %d bytes in %d announces, totals say %d in %d", k.Key, uploaded[k.Key], announces[k.Key], k.Uploaded, k.Announces)
				}
				got++
			}
		}
	}
	now := time.Now()
	for i := range 40 { // about 250 bytes a key: several messages
		k := memberKey(i)
		ledger.Record(&k, &swarm.Announce{InfoHash: swarm.InfoHash{1}, PeerID: swarm.PeerID{byte(i)}, Event: swarm.EventStarted}, now)
		ledger.Record(&k, &swarm.Announce{InfoHash: swarm.InfoHash{1}, PeerID: swarm.PeerID{byte(i)}, Uploaded: uint64(i) * 1000}, now)
	}
	receive(40, 5*time.Second)
	if lastSeq < 4 {
		t.Errorf("40 keys in %d messages of at most 1 KiB", lastSeq)
	}
	if uploaded[memberKey(7).String()] != 7000 {
		t.Fatalf("key 7 uploaded %d, want 7000", uploaded[memberKey(7).String()])
	}

	// NATS down: nothing is lost, the next message has the sum.
	nc.stop(0)
	waitFor(t, 5*time.Second, "the node to notice", func() error {
		if in.node.Stats().Connected {
			return fmt.Errorf("still connected")
		}
		return nil
	})
	k := memberKey(7)
	for i := 1; i <= 3; i++ {
		ledger.Record(&k, &swarm.Announce{InfoHash: swarm.InfoHash{1}, PeerID: swarm.PeerID{7}, Uploaded: 7000 + uint64(i)*100}, now)
		time.Sleep(120 * time.Millisecond)
	}
	if pending := ledger.Pending(); len(pending) != 1 || pending[0].Delta.Uploaded != 300 {
		t.Fatalf("pending while NATS is down: %+v", pending)
	}
	// Back: the totals of the next messages about key 7 hold what was
	// announced meanwhile. (The first message after the reconnect may
	// leave before the subscriber is back; its successor's totals make up
	// for it, as they would for a site.)
	nc.start(0)
	sub = subscribeAccounting(t, nc.url(0))
	waitFor(t, 10*time.Second, "the node to reconnect", func() error {
		if !in.node.Stats().Connected {
			return fmt.Errorf("not connected")
		}
		return nil
	})
	ledger.Record(&k, &swarm.Announce{InfoHash: swarm.InfoHash{1}, PeerID: swarm.PeerID{7}, Uploaded: 7400}, now)
	for deadline := time.Now().Add(10 * time.Second); ; {
		m, err := sub.NextMsg(time.Until(deadline))
		if err != nil {
			t.Fatalf("no message with key 7's totals after NATS came back: %v", err)
		}
		var msg accountingMsg
		if err := json.Unmarshal(m.Data, &msg); err != nil {
			t.Fatal(err)
		}
		if len(msg.Keys) == 1 && msg.Keys[0].Key == k.String() && msg.Keys[0].Uploaded == 7400 && msg.Keys[0].Announces == 6 {
			break
		}
	}
}

// docs/nats-server.conf.example lets a node publish the accounting and the
// site's database user read it.
func TestAccountingPermissionsExample(t *testing.T) {
	url, _ := startExampleNATS(t)
	sub := subscribeAccounting(t, url, nats.UserInfo("site", "change-me-4"))
	ledger := accounting.New(time.Hour, 0)
	startInstance(t, "tracker-1", []string{url}, func(c *cluster.Config) {
		c.User, c.Password, c.Accounting, c.AccountingInterval = "tracker-1", "change-me-1", ledger, 100*time.Millisecond
	})
	k := memberKey(1)
	ledger.Record(&k, &swarm.Announce{InfoHash: swarm.InfoHash{1}, Event: swarm.EventStarted}, time.Now())
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("the site reads no accounting: %v", err)
	}
	var msg accountingMsg
	if err := json.Unmarshal(m.Data, &msg); err != nil || len(msg.Keys) != 1 || msg.Keys[0].Key != k.String() {
		t.Fatalf("message %s: %v", m.Data, err)
	}
}
