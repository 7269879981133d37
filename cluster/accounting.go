package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"herald/accounting"
)

// With keys on (access.keys), each node publishes its per-key accounting
// on <prefix>.accounting every AccountingInterval, for a site's own
// database: every key whose accounting changed since the node last
// published it, in JSON messages of at most BatchBytes:
//
//	{"node":"tracker-1","node_id":"8f3a…","seq":17,"time":"2026-12-07T13:00:10Z",
//	 "keys":[{"key":"KEY","announces":12,"uploaded":1048576,"downloaded":0,
//	          "active_torrents":2,"delta":{"announces":1,"uploaded":65536,"downloaded":0}}]}
//
// announces, uploaded, downloaded and active_torrents are the key's
// totals on this node since accounting began (kept in the snapshot);
// delta is what they grew by since the node's previous message about the
// key: a consumer adds the deltas of every node, or keeps each node's
// totals, which also make up for a lost message. seq counts a node's
// messages from 1 at its start, so a gap shows a lost one. Each node counts
// the announces it served; nothing is exchanged between nodes. While NATS
// is unreachable nothing is marked sent, and the next message carries the
// sum. With cluster.shared_key the last 32 bytes of a message are its tag
// (auth.go), as on every subject.

func (n *Node) subjAccounting() string { return n.cfg.Prefix + ".accounting" }

// accountingLoop publishes the accounting every AccountingInterval, and a
// last time when ctx is done.
func (n *Node) accountingLoop(ctx context.Context) {
	t := time.NewTicker(n.cfg.AccountingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			n.publishAccounting(time.Now())
			if n.nc.IsConnected() {
				n.nc.FlushTimeout(time.Second)
			}
			return
		case now := <-t.C:
			n.publishAccounting(now)
		}
	}
}

// accountingHead is a message's fields before its keys.
type accountingHead struct {
	Node   string    `json:"node"`
	NodeID string    `json:"node_id"`
	Seq    uint64    `json:"seq"`
	Time   time.Time `json:"time"`
}

// publishAccounting sends the keys whose accounting changed, in key
// order, and marks each message's keys sent once NATS took it.
func (n *Node) publishAccounting(now time.Time) {
	if !n.nc.IsConnected() {
		return
	}
	changes := n.cfg.Accounting.Pending()
	slices.SortFunc(changes, func(a, b accounting.Change) int { return bytes.Compare(a.Key[:], b.Key[:]) })
	limit := n.cfg.BatchBytes
	if n.key != nil {
		limit -= tagLen
	}
	for len(changes) > 0 {
		seq := n.accountingSeq.Add(1)
		head, _ := json.Marshal(accountingHead{n.cfg.NodeName, strconv.FormatUint(n.id, 16), seq, now.UTC()})
		msg := append(head[:len(head)-1], `,"keys":[`...)
		sent := 0
		for _, c := range changes {
			entry, _ := json.Marshal(c)
			if sent > 0 && len(msg)+len(entry)+3 > limit {
				break
			}
			if sent > 0 {
				msg = append(msg, ',')
			}
			msg = append(msg, entry...)
			sent++
		}
		msg = append(msg, "]}"...)
		if err := n.nc.Publish(n.subjAccounting(), n.seal(n.subjAccounting(), msg)); err != nil {
			n.onAsyncError(n.nc, nil, err)
			return
		}
		n.cfg.Accounting.Commit(changes[:sent])
		changes = changes[sent:]
	}
}
