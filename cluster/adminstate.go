package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"herald/access"
	"herald/bans"
	"herald/swarm"
)

// A node that connects, or reconnects, to NATS takes the admin-managed
// state of another node: live changes (admin.go) reach only the nodes
// listening when they are made. The asker publishes a request to
// <prefix>.admin.state, where every node that has caught up itself
// listens in one queue group: one answers, never the asker, never a node
// still catching up. The answer is a stream to the asker's inbox, sealed
// like every message and numbered from 1: a head with the sizes and the
// times the list and keys last changed, then the info hashes, the keys
// and the bans, at most MaxStateEntries a message; every ackEvery-th
// message waits for the asker's acknowledgement, as a peer catch-up does
// (sync.go). Each entry is checked as a live change's, and the asker
// applies the state once it has it all (Admin.ApplyState), so a stream cut
// short changes nothing; it asks again later.
//
// What wins is for ApplyState to decide; herald's admin.Server takes the
// answerer's access list or keys whole when their file changed later than
// its own (the last writer wins), and the union of the bans.

// MaxStateEntries bounds the entries (info hashes, keys or bans) of one
// message of a state stream: 500 bans of at most about 110 bytes of JSON
// fit the smallest NATS max_payload in use (64 KiB) with room.
const MaxStateEntries = 500

// Bounds of a whole state, so that a stream cannot grow without end: 16M
// info hashes (320 MB held while the stream lasts), 4M keys, 1M bans.
const (
	maxStateList = 1 << 24
	maxStateKeys = 1 << 22
	maxStateBans = 1 << 20
)

// queueAdminState is the queue group of the <prefix>.admin.state
// responders.
const queueAdminState = "admin-state"

// State is a node's admin-managed state: what it hands a node that
// catches up.
type State struct {
	// ListMode is the access list's mode (access.Mode's text), "" when
	// the node has none; List is the list, ListChanged when its file was
	// last modified.
	ListMode    string
	List        []swarm.InfoHash
	ListChanged time.Time
	// HasKeys is set when the node requires keys (access.keys); Keys are
	// its keys, KeysChanged when their file was last modified.
	HasKeys     bool
	Keys        []access.Key
	KeysChanged time.Time
	// Bans are the bans in force, set through the API (bans.ReasonManual)
	// or earned.
	Bans []bans.Ban
}

// Admin is the admin side of a node, which RunChanges works for.
type Admin interface {
	// Apply makes a live change another node published.
	Apply(Change) error
	// State is what this node holds, for a node that catches up.
	State() State
	// ApplyState takes what another node held, when this one has
	// connected or reconnected.
	ApplyState(State) error
}

// stateHead is the first message of a state stream.
type stateHead struct {
	ListMode    string    `json:"list_mode,omitempty"`
	ListChanged time.Time `json:"list_changed,omitzero"`
	ListLen     int       `json:"list_len,omitempty"`
	HasKeys     bool      `json:"has_keys,omitempty"`
	KeysChanged time.Time `json:"keys_changed,omitzero"`
	KeysLen     int       `json:"keys_len,omitempty"`
	BansLen     int       `json:"bans_len,omitempty"`
}

// stateBan is a ban in a state stream: Reason is empty for a ban set
// through the API, as in a Change.
type stateBan struct {
	Prefix  netip.Prefix `json:"prefix"`
	Expires time.Time    `json:"expires"`
	Reason  string       `json:"reason,omitempty"`
}

// statePart is one message of a state stream: the head (Seq 1), or up to
// MaxStateEntries entries of one kind.
type statePart struct {
	Seq        uint32       `json:"seq"`
	Head       *stateHead   `json:"head,omitempty"`
	InfoHashes []string     `json:"info_hashes,omitempty"`
	Keys       []access.Key `json:"keys,omitempty"`
	Bans       []stateBan   `json:"bans,omitempty"`
	hashes     []swarm.InfoHash
}

// parseStatePart reads and checks one message of a state stream from
// another node: exactly one of the head and the three kinds of entries,
// each entry checked as a live change's.
func parseStatePart(msg []byte) (statePart, error) {
	var p statePart
	if err := decodeStrict(msg, &p); err != nil {
		return statePart{}, fmt.Errorf("admin state: %w", err)
	}
	parts := 0
	for _, has := range []bool{p.Head != nil, len(p.InfoHashes) > 0, len(p.Keys) > 0, len(p.Bans) > 0} {
		if has {
			parts++
		}
	}
	if parts != 1 || p.Seq == 0 || (p.Seq == 1) != (p.Head != nil) {
		return statePart{}, fmt.Errorf("admin state: message %d holds %d parts", p.Seq, parts)
	}
	if n := len(p.InfoHashes) + len(p.Keys) + len(p.Bans); n > MaxStateEntries {
		return statePart{}, fmt.Errorf("admin state: %d entries, at most %d", n, MaxStateEntries)
	}
	if h := p.Head; h != nil {
		if h.ListMode != "" && h.ListMode != access.Whitelist.String() && h.ListMode != access.Blacklist.String() ||
			h.ListLen < 0 || h.ListLen > maxStateList || h.ListMode == "" && (h.ListLen > 0 || !h.ListChanged.IsZero()) ||
			h.KeysLen < 0 || h.KeysLen > maxStateKeys || !h.HasKeys && (h.KeysLen > 0 || !h.KeysChanged.IsZero()) ||
			h.BansLen < 0 || h.BansLen > maxStateBans {
			return statePart{}, fmt.Errorf("admin state: head %+v out of bounds", *h)
		}
	}
	var err error
	if p.hashes, err = parseHashes(p.InfoHashes); err != nil {
		return statePart{}, fmt.Errorf("admin state: %w", err)
	}
	for _, b := range p.Bans {
		if err := (Change{Kind: Ban, Prefix: b.Prefix, Expires: b.Expires, Reason: b.Reason}).Validate(); err != nil {
			return statePart{}, fmt.Errorf("admin state: %w", err)
		}
	}
	return p, nil
}

// decodeStrict reads msg as exactly one JSON value of v's type, with no
// unknown fields.
func decodeStrict(msg []byte, v any) error {
	d := json.NewDecoder(strings.NewReader(string(msg)))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("data after the JSON object")
	}
	return nil
}

// stateRequest is the body of a request for the admin state.
type stateRequest struct {
	Node string `json:"node"`
}

func (n *Node) subjAdminState() string { return n.cfg.Prefix + ".admin.state" }

// adminStateLoop takes another node's admin state each time kick says the
// connection came up, retrying a failed catch-up with a growing wait, and
// answers other nodes' requests once the first catch-up is over.
func (n *Node) adminStateLoop(ctx context.Context, nc *nats.Conn, a Admin, kick <-chan struct{}) {
	ready := false
	backoff := n.cfg.ReconnectWait
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
			backoff = n.cfg.ReconnectWait
		case <-retry.C:
		}
		if !nc.IsConnected() {
			continue // the reconnect kicks again
		}
		err := n.catchUpAdmin(ctx, nc, a)
		switch {
		case err == nil || errors.Is(err, errNoResponders):
			if errors.Is(err, errNoResponders) {
				n.log.Info("cluster: no other node answered the admin state request; keeping this node's lists, keys and bans")
			}
			if !ready {
				if _, serr := nc.QueueSubscribe(n.subjAdminState(), queueAdminState, func(m *nats.Msg) { n.onStateRequest(nc, a, m) }); serr != nil {
					n.log.Error("cluster: cannot answer admin state requests", "err", serr)
				} else {
					ready = true
				}
			}
		case ctx.Err() != nil:
			return
		default:
			n.admin.catchUpFails.Add(1)
			n.log.Warn("cluster: admin state catch-up failed; retrying", "err", err, "in", backoff)
			retry.Reset(backoff)
			backoff = min(2*backoff, time.Minute)
		}
	}
}

// catchUpAdmin asks for another node's admin state and applies it once it
// has all of it.
func (n *Node) catchUpAdmin(ctx context.Context, nc *nats.Conn, a Admin) error {
	start := time.Now()
	subject := n.subjAdminState()
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return fmt.Errorf("admin state: %w", err)
	}
	defer sub.Unsubscribe()
	req, _ := json.Marshal(stateRequest{Node: n.cfg.NodeName})
	if err := nc.PublishRequest(subject, inbox, n.seal(subject, req)); err != nil {
		return fmt.Errorf("admin state: %w", err)
	}
	var (
		st   State
		head *stateHead
		next uint32 = 1
	)
	for head == nil || len(st.List) < head.ListLen || len(st.Keys) < head.KeysLen || len(st.Bans) < head.BansLen {
		msg, err := n.nextInStream(ctx, sub)
		if errors.Is(err, errNoResponders) {
			return err
		}
		if err != nil {
			return fmt.Errorf("admin state after %d messages: %w", next-1, err)
		}
		body, ok := n.open(msg.Subject, msg.Data)
		if !ok {
			n.unauthenticated.Add(1)
			continue // forged: wait for the real stream
		}
		p, err := parseStatePart(body)
		if err == nil && p.Seq != next {
			err = fmt.Errorf("admin state: message %d lost", next)
		}
		if err == nil && head != nil {
			err = addStatePart(&st, head, p)
		}
		if err != nil {
			n.malformed.Add(1)
			return err
		}
		if head == nil {
			head = p.Head
			st.ListMode, st.ListChanged, st.HasKeys, st.KeysChanged = head.ListMode, head.ListChanged, head.HasKeys, head.KeysChanged
		}
		next++
		if msg.Reply != "" {
			msg.Respond(nil)
		}
	}
	if err := a.ApplyState(st); err != nil {
		return fmt.Errorf("admin state: %w", err)
	}
	n.admin.catchUps.Add(1)
	n.log.Info("cluster: took another node's admin state", "list", len(st.List), "keys", len(st.Keys), "bans", len(st.Bans),
		"took", time.Since(start).Round(time.Millisecond))
	return nil
}

// addStatePart adds the entries of p to st: the info hashes first, then
// the keys, then the bans, each no more than head announced.
func addStatePart(st *State, head *stateHead, p statePart) error {
	switch {
	case len(p.hashes) > 0 && len(st.List)+len(p.hashes) <= head.ListLen:
		st.List = append(st.List, p.hashes...)
	case len(p.Keys) > 0 && len(st.List) == head.ListLen && len(st.Keys)+len(p.Keys) <= head.KeysLen:
		st.Keys = append(st.Keys, p.Keys...)
	case len(p.Bans) > 0 && len(st.List) == head.ListLen && len(st.Keys) == head.KeysLen && len(st.Bans)+len(p.Bans) <= head.BansLen:
		for _, b := range p.Bans {
			if b.Reason == "" {
				b.Reason = bans.ReasonManual
			}
			st.Bans = append(st.Bans, bans.Ban(b))
		}
	default:
		return fmt.Errorf("admin state: message %d out of order or beyond the sizes of the head", p.Seq)
	}
	return nil
}

// onStateRequest streams a's state to the asker's inbox. It runs on the
// subscription's goroutine: one stream at a time.
func (n *Node) onStateRequest(nc *nats.Conn, a Admin, msg *nats.Msg) {
	body, ok := n.open(msg.Subject, msg.Data)
	if !ok {
		n.unauthenticated.Add(1)
		return
	}
	var req stateRequest
	if err := decodeStrict(body, &req); err != nil || msg.Reply == "" {
		n.malformed.Add(1)
		return
	}
	if err := n.serveAdminState(nc, msg.Reply, a.State()); err != nil {
		n.log.Warn("cluster: admin state stream to another node cut short", "to_node", req.Node, "err", err)
		return
	}
	n.admin.served.Add(1)
}

// serveAdminState streams st to reply.
func (n *Node) serveAdminState(nc *nats.Conn, reply string, st State) error {
	s := numbered{nc: nc, reply: reply, timeout: n.cfg.SyncTimeout, seal: n.seal}
	send := func(p statePart) error {
		p.Seq = s.seq + 1
		msg, err := json.Marshal(p)
		if err != nil {
			return err
		}
		return s.send(msg)
	}
	head := &stateHead{ListMode: st.ListMode, ListChanged: st.ListChanged.UTC(), ListLen: len(st.List),
		HasKeys: st.HasKeys, KeysChanged: st.KeysChanged.UTC(), KeysLen: len(st.Keys), BansLen: len(st.Bans)}
	if err := send(statePart{Head: head}); err != nil {
		return err
	}
	for hs := st.List; len(hs) > 0; {
		chunk := hs[:min(len(hs), MaxStateEntries)]
		hs = hs[len(chunk):]
		if err := send(statePart{InfoHashes: hexHashes(chunk)}); err != nil {
			return err
		}
	}
	for keys := st.Keys; len(keys) > 0; {
		chunk := keys[:min(len(keys), MaxStateEntries)]
		keys = keys[len(chunk):]
		if err := send(statePart{Keys: chunk}); err != nil {
			return err
		}
	}
	for bs := st.Bans; len(bs) > 0; {
		chunk := bs[:min(len(bs), MaxStateEntries)]
		bs = bs[len(chunk):]
		part := make([]stateBan, len(chunk))
		for i, b := range chunk {
			part[i] = stateBan{Prefix: b.Prefix, Expires: b.Expires.UTC(), Reason: b.Reason}
			if b.Reason == bans.ReasonManual {
				part[i].Reason = ""
			}
		}
		if err := send(statePart{Bans: part}); err != nil {
			return err
		}
	}
	return nil
}

// numbered sends a numbered stream to reply, each message sealed: every
// ackEvery-th is a request that waits for the asker's acknowledgement, so
// at most ackEvery messages are in flight (see sync.go).
type numbered struct {
	nc      *nats.Conn
	reply   string
	timeout time.Duration
	seal    func(subject string, msg []byte) []byte
	seq     uint32 // of the last message sent
}

func (s *numbered) send(msg []byte) error {
	s.seq++
	msg = s.seal(s.reply, msg)
	if s.seq%ackEvery == 0 {
		_, err := s.nc.Request(s.reply, msg, s.timeout)
		return err
	}
	return s.nc.Publish(s.reply, msg)
}
