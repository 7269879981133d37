package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"herald/swarm"
)

// Catch-up is request/reply on core NATS. The asking node subscribes to an
// inbox and publishes a KindSyncRequest to <prefix>.sync, where every node
// that has caught up itself listens in one queue group: exactly one answers,
// never the asker (no echo), and never a node that is still empty after a
// restart. That answer holds all the member knows, but it can lack a batch
// a third node published before the NATS servers learned of the asker's
// subscription. So a node also asks each sender it hears for the first
// time, and each sender whose batches went missing, for its own peers only
// (SyncOwn), directly on <prefix>.sync.<node id in hex>. Those are exact:
// the request reaches the sender after its server knows of the asker's
// subscription, so every batch the sender publishes afterwards arrives, and
// everything before is in its store.
//
// The answer is a stream to the inbox: KindSyncChunk messages numbered from
// 1, each at most a batch in size, written from store.Dump, then a
// KindSyncEnd. Every ackEvery-th chunk is sent as a request that the asker
// answers once it has applied everything before: at most ackEvery chunks are
// in flight, so a big dump never overruns the asker or the servers' pending
// limits. A missing number or a silence of SyncTimeout ends the catch-up as
// failed; what arrived stays merged, and the node asks again later.
//
// A direct catch-up also removes what the sender no longer holds. Each
// node is the authority on the peers that announced to it, and the store
// keeps with every peer learned from the cluster the sender's number in
// this node's origin table. Before asking, the node clears the store's
// marks; the store marks every peer it then stores, from the stream or
// from announces. At the end of a full stream the peers from that sender
// left unmarked are those it dropped while this node was not listening
// (stops it missed across a partition), and they go. A peer announced
// meanwhile is marked, so a batch that overtakes the stream removes
// nothing.
//
// A batch can overtake the stream the other way too: the sender copies a
// shard of its store, its client stops a peer of that shard, and the batch
// with the stop goes out before the chunk with the peer, or is applied here
// first (by the announce subscription's goroutine, the chunk by the sync
// loop's). So during every catch-up the store remembers the peers stopped
// since it began (swarm.Store.KeepStops) and does not restore them, or
// they would stay, marked, until they expired.
const ackEvery = 16

// queueSync is the queue group of the <prefix>.sync responders.
const queueSync = "sync"

var errNoResponders = errors.New("no other node answered")

// syncLoop runs the catch-ups asked for by connection events and gaps, one
// at a time.
func (n *Node) syncLoop(ctx context.Context) {
	var (
		ready    bool      // answering <prefix>.sync
		allDue   time.Time // a catch-up from any member is wanted from then
		fromDue  = make(map[uint64]time.Time)
		lastFrom = make(map[uint64]time.Time)
		backoff  = n.cfg.ReconnectWait
		wake     = time.NewTimer(time.Hour)
	)
	defer wake.Stop()
	// A node asked directly is asked again no sooner than this: a sender
	// that keeps losing batches costs one dump per period, not one per gap.
	directGap := 30 * n.cfg.FlushInterval
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.syncKick:
		case <-wake.C:
		}
		now := time.Now()
		n.syncMu.Lock()
		if n.wantAll {
			n.wantAll = false
			allDue, backoff = now, n.cfg.ReconnectWait
		}
		for id := range n.wantFrom {
			if _, ok := fromDue[id]; !ok {
				fromDue[id] = lastFrom[id].Add(directGap)
			}
			delete(n.wantFrom, id)
		}
		n.syncMu.Unlock()

		// While NATS is away nothing is attempted; reconnecting asks for
		// a full catch-up again.
		if n.nc.IsConnected() && !allDue.IsZero() && !now.Before(allDue) {
			err := n.catchUp(ctx, n.subjSync, SyncAll, 0)
			switch {
			case err == nil || errors.Is(err, errNoResponders):
				allDue = time.Time{}
				if !ready {
					if _, serr := n.nc.QueueSubscribe(n.subjSync, queueSync, n.onSyncRequest); serr != nil {
						n.log.Error("cluster: cannot answer catch-up requests", "err", serr)
					} else {
						ready = true
						n.caughtUp.Store(true)
					}
				}
				if err != nil {
					n.log.Info("cluster: no other node answered the catch-up; starting from local state")
				}
			case ctx.Err() != nil:
				return
			default:
				n.catchUpFails.Add(1)
				n.log.Warn("cluster: catch-up failed; retrying", "err", err, "in", backoff)
				allDue = time.Now().Add(backoff)
				backoff = min(2*backoff, time.Minute)
			}
		}
		for id, due := range fromDue {
			if !n.nc.IsConnected() || time.Now().Before(due) {
				continue
			}
			delete(fromDue, id)
			lastFrom[id] = time.Now()
			err := n.catchUp(ctx, n.subjSync+"."+strconv.FormatUint(id, 16), SyncOwn, id)
			switch {
			case ctx.Err() != nil:
				return
			case err == nil:
				continue
			case !errors.Is(err, errNoResponders):
				n.catchUpFails.Add(1)
				n.log.Warn("cluster: catch-up after lost batches failed", "from_node", strconv.FormatUint(id, 16), "err", err)
			}
			// A node that still publishes but did not answer (a route
			// just back may not carry requests to it yet) is asked again
			// soon: until it answers, what it stopped meanwhile stays.
			if _, heard := n.origins.lookup(id); time.Since(heard) < 3*n.heartbeatEvery() {
				fromDue[id] = time.Now().Add(n.cfg.ReconnectWait)
			}
		}
		for id, at := range lastFrom {
			if time.Since(at) > directGap {
				delete(lastFrom, id)
			}
		}

		// Wake for the next retry; while NATS is away the reconnect
		// handler wakes the loop instead.
		next := allDue
		for _, due := range fromDue {
			if next.IsZero() || due.Before(next) {
				next = due
			}
		}
		if !next.IsZero() && n.nc.IsConnected() {
			wake.Reset(max(time.Until(next), time.Millisecond))
		}
	}
}

// catchUp asks subject for a state stream of the given scope and merges it
// into the store. A SyncOwn stream comes from node from, and also removes
// the peers from that node the stream lacks.
func (n *Node) catchUp(ctx context.Context, subject string, scope byte, from uint64) error {
	start := time.Now()
	var origin uint8
	if scope == SyncOwn {
		if origin, _ = n.origins.lookup(from); origin != 0 {
			n.store.ClearMarks()
		}
	}
	// The stream is dumped after the request arrives, and a stop the
	// answerer's client makes after that can reach this store first, by
	// batch: the stream must not bring that peer back.
	n.store.KeepStops()
	defer n.store.ForgetStops()
	inbox := n.nc.NewInbox()
	sub, err := n.nc.SubscribeSync(inbox)
	if err != nil {
		return fmt.Errorf("catch-up from %s: %w", subject, err)
	}
	defer sub.Unsubscribe()
	req := n.seal(subject, append(AppendHeader(nil, Header{Kind: KindSyncRequest, Node: n.id}), scope))
	if err := n.nc.PublishRequest(subject, inbox, req); err != nil {
		return fmt.Errorf("catch-up from %s: %w", subject, err)
	}
	var (
		ts     swarm.TorrentState
		next   uint32 = 1
		peers  uint64
		failed error
	)
	for {
		msg, err := n.nextInStream(ctx, sub)
		if errors.Is(err, errNoResponders) {
			return err
		}
		if err != nil {
			return fmt.Errorf("catch-up from %s after %d messages: %w", subject, next-1, err)
		}
		data, ok := n.open(msg.Subject, msg.Data)
		if !ok {
			continue // forged: wait for the real stream
		}
		h, body, err := ParseHeader(data)
		switch {
		case err != nil:
			n.malformed.Add(1)
			return fmt.Errorf("catch-up from %s: %w", subject, err)
		case h.Seq != next:
			return fmt.Errorf("catch-up from %s: message %d lost", subject, next)
		case scope == SyncOwn && h.Node != from:
			n.malformed.Add(1)
			return fmt.Errorf("catch-up from %s: answered by node %x", subject, h.Node)
		}
		next++
		switch h.Kind {
		case KindSyncChunk:
			for len(body) > 0 {
				if body, err = ParseTorrent(body, &ts); err != nil {
					n.malformed.Add(1)
					return fmt.Errorf("catch-up from %s: %w", subject, err)
				}
				peers += uint64(len(ts.Peers))
				if !n.validate(&ts) {
					continue
				}
				for i := range ts.Peers {
					ts.Peers[i].Origin = origin
				}
				if _, err := n.store.Restore(&ts); err != nil && failed == nil {
					failed = err // the store's limits: keep merging what fits
				}
			}
			if msg.Reply != "" {
				msg.Respond(nil)
			}
		case KindSyncEnd:
			end, err := ParseSyncEnd(body)
			if err != nil {
				n.malformed.Add(1)
				return fmt.Errorf("catch-up from %s: %w", subject, err)
			}
			// A store that refused peers of the stream left them
			// unmarked: removing by marks is exact only without refusals.
			removed := 0
			if origin != 0 && failed == nil {
				removed = n.store.DropUnmarked(origin)
				n.stale.Add(uint64(removed))
			}
			n.catchUps.Add(1)
			n.catchUpPeer.Add(peers)
			n.log.Info("cluster: caught up", "from", end.Name, "own_only", scope == SyncOwn, "torrents", end.Torrents, "peers", end.Peers,
				"stale_removed", removed, "took", time.Since(start).Round(time.Millisecond), "store_err", failed)
			return nil
		default:
			n.malformed.Add(1)
			return fmt.Errorf("catch-up from %s: unexpected message kind %d", subject, h.Kind)
		}
	}
}

// nextInStream waits up to SyncTimeout for the next message of a stream
// asked for on sub; a request nobody listened to is errNoResponders.
func (n *Node) nextInStream(ctx context.Context, sub *nats.Subscription) (*nats.Msg, error) {
	wctx, cancel := context.WithTimeout(ctx, n.cfg.SyncTimeout)
	defer cancel()
	msg, err := sub.NextMsgWithContext(wctx)
	if errors.Is(err, nats.ErrNoResponders) {
		return nil, errNoResponders
	}
	return msg, err
}

// validate applies the checks of onAnnounces to a catch-up torrent: a
// torrent the access list refuses is dropped whole, peers swarm.ValidPeer
// refuses one by one. It reports whether anything is left to restore.
func (n *Node) validate(ts *swarm.TorrentState) bool {
	if !n.allowed(ts.InfoHash) {
		n.notAllowed.Add(uint64(len(ts.Peers)))
		return false
	}
	kept := ts.Peers[:0]
	for _, p := range ts.Peers {
		if swarm.ValidPeer(p.Addr) {
			kept = append(kept, p)
		} else {
			n.invalidAddr.Add(1)
		}
	}
	ts.Peers = kept
	return true
}

// onSyncRequest streams this node's state to the asker's inbox. It runs on
// the subscription's goroutine, so one node serves one stream at a time per
// subject; further requests wait their turn.
func (n *Node) onSyncRequest(msg *nats.Msg) {
	data, ok := n.open(msg.Subject, msg.Data)
	if !ok {
		return
	}
	h, body, err := ParseHeader(data)
	if err != nil || h.Kind != KindSyncRequest || len(body) != 1 || body[0] > SyncOwn || msg.Reply == "" {
		n.malformed.Add(1)
		return
	}
	asker, _ := n.origins.lookup(h.Node)
	if err := n.serveSync(msg.Reply, body[0] == SyncOwn, asker); err != nil {
		n.log.Warn("cluster: catch-up stream to another node cut short", "to_node", strconv.FormatUint(h.Node, 16), "err", err)
		return
	}
	n.served.Add(1)
}

// serveSync streams the store, or with ownOnly only the peers that
// announced to this node, to reply. It leaves out the peers learned from the
// asker (origin asker, 0 if it has no number): the asker is their
// authority, and its stops of them may still be on their way here.
func (n *Node) serveSync(reply string, ownOnly bool, asker uint8) error {
	size := n.cfg.BatchBytes
	if mp := int(n.nc.MaxPayload()); mp > 0 {
		size = min(size, mp)
	}
	if n.key != nil {
		size -= tagLen // the tag goes on top
	}
	chunk := make([]byte, 0, size+tagLen)
	stream := numbered{nc: n.nc, reply: reply, timeout: n.cfg.SyncTimeout, seal: n.seal}
	begin := func() { chunk = AppendHeader(chunk[:0], Header{Kind: KindSyncChunk, Node: n.id, Seq: stream.seq + 1}) }
	send := func() error { return stream.send(chunk) }
	var end SyncEnd
	var part swarm.TorrentState
	begin()
	err := n.store.Dump(func(ts *swarm.TorrentState) error {
		if err := n.ctx.Err(); err != nil {
			return err
		}
		peers := ts.Peers[:0] // ts is Dump's to reuse; filtering in place is fine
		for _, p := range ts.Peers {
			if !p.Synced || !ownOnly && (asker == 0 || p.Origin != asker) {
				peers = append(peers, p)
			}
		}
		if ownOnly && len(peers) == 0 {
			return nil
		}
		end.Torrents++
		end.Peers += uint64(len(peers))
		for first := true; first || len(peers) > 0; first = false {
			room := (size - len(chunk) - maxTorrentHeader) / maxPeer
			if room < 1 || room < len(peers) && len(chunk) > HeaderLen+size/2 {
				// Full, or so full that the torrent would be cut small:
				// start a new chunk.
				if err := send(); err != nil {
					return err
				}
				begin()
				room = (size - len(chunk) - maxTorrentHeader) / maxPeer
			}
			k := min(room, len(peers))
			part = *ts
			part.Peers = peers[:k]
			chunk = swarm.AppendTorrentState(chunk, &part)
			peers = peers[k:]
		}
		return nil
	})
	if err == nil && len(chunk) > HeaderLen {
		err = send()
	}
	if err != nil {
		return err
	}
	end.Name = n.cfg.NodeName
	msg := AppendSyncEnd(AppendHeader(chunk[:0], Header{Kind: KindSyncEnd, Node: n.id, Seq: stream.seq + 1}), end)
	return n.nc.Publish(reply, n.seal(reply, msg))
}

// origins numbers the nodes heard from 1 to swarm.MaxOrigin; the store
// keeps a peer's number (swarm.Announce.Origin), so that a direct catch-up
// from a node can remove the peers it no longer holds. A number goes to
// another node only once its node has been silent a whole peer timeout:
// by then every peer stored under it has expired or been announced again
// under another number. Nodes beyond the numbers heard within a peer
// timeout get 0, counted: their peers are only ever added, and expire if
// their stops are missed.
type origins struct {
	mu      sync.Mutex
	timeout time.Duration
	ids     [swarm.MaxOrigin + 1]uint64    // guarded by mu; index 0 unused
	last    [swarm.MaxOrigin + 1]time.Time // a batch's arrival; guarded by mu
	none    atomic.Uint64                  // batches from nodes without a number
}

// lookup returns node id's number and when a batch of it last arrived, or
// zeros for a node without a number.
func (o *origins) lookup(id uint64) (uint8, time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := 1; i < len(o.ids); i++ {
		if o.ids[i] == id && !o.last[i].IsZero() {
			return uint8(i), o.last[i]
		}
	}
	return 0, time.Time{}
}

// heard notes a batch of node id arriving at now and returns the node's
// number, giving it one if it has none.
func (o *origins) heard(id uint64, now time.Time) uint8 {
	o.mu.Lock()
	defer o.mu.Unlock()
	free := 0
	for i := 1; i < len(o.ids); i++ {
		if o.ids[i] == id {
			o.last[i] = now
			return uint8(i)
		}
		if free == 0 && (o.last[i].IsZero() || now.Sub(o.last[i]) > o.timeout) {
			free = i
		}
	}
	if free == 0 {
		o.none.Add(1)
		return 0
	}
	o.ids[free], o.last[free] = id, now
	return uint8(free)
}
