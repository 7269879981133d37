package cluster

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"herald/access"
	"herald/bans"
	"herald/swarm"
)

// Changes an operator makes through the admin API (access list, keys,
// bans), and the bans clients earn (bans.Config.OnEarn, sent through
// ShareBan), reach the other nodes on <prefix>.admin, one JSON Change
// per message, sealed like every other message. They travel on a connection
// of their own, so that a change is never queued behind announce batches.
// Each node applies a change to its own files (its list, its keys) as if
// its own API had been called. A node that was away when a change was
// made takes another node's whole admin state when it connects again
// (adminstate.go).
//
// A change carries the time it was sent, and one more than a minute off
// the receiver's clock is dropped: with a shared key, a recorded change
// cannot be replayed later to undo a newer one.

// ChangeKind is what a Change does.
type ChangeKind string

// The change kinds.
const (
	ListAdd    ChangeKind = "list_add"    // put InfoHashes on the access list
	ListRemove ChangeKind = "list_remove" // take InfoHashes off it
	KeyAdd     ChangeKind = "key_add"     // admit Key
	KeyRemove  ChangeKind = "key_remove"  // refuse Key
	Ban        ChangeKind = "ban"         // ban Prefix until Expires; with a Reason, a ban a client earned
	Unban      ChangeKind = "unban"       // lift the ban of Prefix
)

// MaxChangeHashes bounds the info hashes of one list change, so that a
// change fits the smallest NATS max_payload in use (64 KiB) with room.
const MaxChangeHashes = 1000

// Change is one admin change as it travels between nodes.
type Change struct {
	Kind       ChangeKind       `json:"kind"`
	InfoHashes []swarm.InfoHash `json:"-"`
	Key        string           `json:"key,omitempty"`
	Prefix     netip.Prefix     `json:"prefix,omitzero"`
	Expires    time.Time        `json:"expires,omitzero"`
	// Reason is set on a Ban a client earned on the sending node
	// (bans.ReasonRateLimited, bans.ReasonBadConnectionID), empty on one
	// the operator set. The receiver adopts an earned ban under its own
	// rules (bans.Table.Adopt): exempt addresses, its own ban duration.
	Reason string `json:"reason,omitempty"`
	// Sent is when the change was published (set by PublishChange).
	Sent time.Time `json:"sent,omitzero"`
}

// maxChangeAge is how far a change's Sent may be from the receiver's
// clock: clock skew between nodes, and NATS delays, stay well within it.
const maxChangeAge = time.Minute

// MarshalJSON writes the info hashes as hex.
func (c Change) MarshalJSON() ([]byte, error) {
	type plain Change // without the methods
	w := struct {
		plain
		InfoHashes []string `json:"info_hashes,omitempty"`
	}{plain: plain(c), InfoHashes: hexHashes(c.InfoHashes)}
	return json.Marshal(w)
}

// hexHashes writes info hashes as hex, for JSON.
func hexHashes(hs []swarm.InfoHash) []string {
	var out []string
	for _, h := range hs {
		out = append(out, hex.EncodeToString(h[:]))
	}
	return out
}

// parseHashes reads info hashes written by hexHashes: 40 hex digits each.
func parseHashes(ss []string) ([]swarm.InfoHash, error) {
	var hs []swarm.InfoHash
	for _, s := range ss {
		var h swarm.InfoHash
		if len(s) != 40 {
			return nil, fmt.Errorf("info hash %q is not 40 hex digits", s)
		}
		if _, err := hex.Decode(h[:], []byte(s)); err != nil {
			return nil, fmt.Errorf("info hash %q is not 40 hex digits", s)
		}
		hs = append(hs, h)
	}
	return hs, nil
}

// ParseChange reads and checks a change from another node: nothing on the
// bus is trusted, so a message that is not exactly a valid change of a
// known kind is an error.
func ParseChange(msg []byte) (Change, error) {
	type plain Change
	var w struct {
		plain
		InfoHashes []string `json:"info_hashes"`
	}
	if err := decodeStrict(msg, &w); err != nil {
		return Change{}, fmt.Errorf("change: %w", err)
	}
	c := Change(w.plain)
	if len(w.InfoHashes) > MaxChangeHashes {
		return Change{}, fmt.Errorf("change: %d info hashes, at most %d", len(w.InfoHashes), MaxChangeHashes)
	}
	var err error
	if c.InfoHashes, err = parseHashes(w.InfoHashes); err != nil {
		return Change{}, fmt.Errorf("change: %w", err)
	}
	return c, c.Validate()
}

// Validate checks that c carries what its kind needs and nothing else.
func (c Change) Validate() error {
	hashes, key, prefix, expires := len(c.InfoHashes) > 0, c.Key != "", c.Prefix.IsValid(), !c.Expires.IsZero()
	var ok bool
	switch c.Kind {
	case ListAdd, ListRemove:
		ok = hashes && !key && !prefix && !expires && len(c.InfoHashes) <= MaxChangeHashes
	case KeyAdd, KeyRemove:
		ok = !hashes && key && !prefix && !expires
		if _, err := access.ParseKey(c.Key); ok && err != nil {
			return fmt.Errorf("change: key %q: %w", c.Key, err)
		}
	case Ban:
		ok = !hashes && !key && prefix && expires
		if err := bans.CheckEarned(bans.Ban{Prefix: c.Prefix, Reason: c.Reason}); ok && c.Reason != "" && err != nil {
			return fmt.Errorf("change %s: %w", c.Kind, err)
		}
	case Unban:
		ok = !hashes && !key && prefix && !expires
	default:
		return fmt.Errorf("change: unknown kind %q", c.Kind)
	}
	if !ok || c.Reason != "" && c.Kind != Ban {
		return fmt.Errorf("change %s: wrong fields for the kind", c.Kind)
	}
	if prefix && c.Prefix != c.Prefix.Masked() {
		return fmt.Errorf("change %s: prefix %s has host bits set", c.Kind, c.Prefix)
	}
	return nil
}

// changes is the node's connection for admin changes, set while
// RunChanges runs, and the changes queued for it.
type changes struct {
	nc                atomic.Pointer[nats.Conn]
	applied, rejected atomic.Uint64
	// queue holds the changes queueChange was given until RunChanges
	// sends them; unsent counts those dropped (queue full, or not
	// connected when their turn came).
	queue  chan Change
	unsent atomic.Uint64
	// catchUps counts admin states taken from another node (adminstate.go),
	// catchUpFails the attempts that failed, served those sent to others.
	catchUps, catchUpFails, served atomic.Uint64
}

// changeQueue bounds the changes waiting in queueChange: earned bans come
// in bursts when a flood from many addresses starts.
const changeQueue = 1024

func (n *Node) subjAdmin() string { return n.cfg.Prefix + ".admin" }

// PublishChange sends c to the other nodes. It fails while RunChanges is
// not connected; the change stays made on this node.
func (n *Node) PublishChange(c Change) error {
	if err := c.Validate(); err != nil {
		return err
	}
	nc := n.admin.nc.Load()
	if nc == nil || !nc.IsConnected() {
		return errors.New("cluster: not connected to NATS; the change is made on this node only")
	}
	c.Sent = time.Now().UTC()
	msg, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	if err := nc.Publish(n.subjAdmin(), n.seal(n.subjAdmin(), msg)); err != nil {
		return fmt.Errorf("cluster: publish change: %w", err)
	}
	return nc.Flush()
}

// ShareBan sends a ban a client earned on this node to the other nodes,
// which adopt it (bans.Table.Adopt); pass it as bans.Config.OnEarn.
func (n *Node) ShareBan(b bans.Ban) {
	n.queueChange(Change{Kind: Ban, Prefix: b.Prefix, Expires: b.Expires.UTC(), Reason: b.Reason})
}

// queueChange sends c to the other nodes soon, without waiting: RunChanges
// publishes it. It is for changes made on a request's goroutine (a ban a
// client earned), which must not wait for NATS. A change that does not
// validate, or finds the queue full, is dropped and counted.
func (n *Node) queueChange(c Change) {
	if c.Validate() != nil {
		n.admin.unsent.Add(1)
		return
	}
	select {
	case n.admin.queue <- c:
	default:
		n.admin.unsent.Add(1)
	}
}

// RunChanges connects to NATS and applies each valid change from another
// node through a until ctx is done; a change that is unsealed or invalid
// is counted, logged at most once a minute, and dropped. Each time the
// connection comes up it takes another node's admin state through a
// (adminstate.go), and once it has, it answers others' requests for a's.
// It sends the changes given to ShareBan. Like Run, it keeps trying while
// NATS is down.
func (n *Node) RunChanges(ctx context.Context, a Admin) error {
	closed := make(chan struct{})
	kick := make(chan struct{}, 1)
	up := func(*nats.Conn) {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	opts := append(n.cfg.natsOptions(n.secrets), nats.Name("herald "+n.cfg.NodeName+" admin"),
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }),
		nats.ConnectHandler(up), nats.ReconnectHandler(up))
	nc, err := nats.Connect(strings.Join(n.cfg.URLs, ","), opts...)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		wg.Wait()
		n.admin.nc.Store(nil)
		nc.Close()
		<-closed
	}()
	apply := a.Apply
	var lastLog atomic.Int64
	reject := func(err error) {
		n.admin.rejected.Add(1)
		if now := time.Now().UnixNano(); now-lastLog.Load() > int64(time.Minute) {
			lastLog.Store(now)
			n.log.Warn("cluster: admin change dropped", "err", err)
		}
	}
	if _, err := nc.Subscribe(n.subjAdmin(), func(m *nats.Msg) {
		body, ok := n.open(m.Subject, m.Data)
		if !ok {
			reject(errors.New("missing or wrong shared-key tag"))
			return
		}
		c, err := ParseChange(body)
		if age := time.Since(c.Sent); err == nil && (age > maxChangeAge || age < -maxChangeAge) {
			err = fmt.Errorf("change sent at %s, more than %v off this node's clock", c.Sent.Format(time.RFC3339), maxChangeAge)
		}
		if err == nil {
			err = apply(c)
		}
		if err != nil {
			reject(err)
			return
		}
		n.admin.applied.Add(1)
	}); err != nil {
		return fmt.Errorf("cluster: subscribe %s: %w", n.subjAdmin(), err)
	}
	n.admin.nc.Store(nc)
	wg.Go(func() { n.adminStateLoop(ctx, nc, a, kick) })
	var lastUnsent time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case c := <-n.admin.queue:
			if err := n.PublishChange(c); err != nil {
				n.admin.unsent.Add(1)
				if time.Since(lastUnsent) > time.Minute {
					lastUnsent = time.Now()
					n.log.Warn("cluster: change not sent", "kind", c.Kind, "err", err)
				}
			}
		}
	}
}

// ChangeCounts returns how many changes from other nodes were applied and
// how many were dropped.
func (n *Node) ChangeCounts() (applied, rejected uint64) {
	return n.admin.applied.Load(), n.admin.rejected.Load()
}
