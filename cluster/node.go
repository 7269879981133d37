package cluster

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"herald/swarm"
)

// Node is one herald instance's member of the cluster. It is the store's
// Sink (pass it as swarm.Config.Sink), publishes what the store accepted,
// applies what the other instances publish, and answers their catch-up
// requests.
type Node struct {
	cfg     Config
	secrets []nats.Option // credentials and TLS, read by New
	key     []byte        // the shared key, or nil (see auth.go)
	log     *slog.Logger
	id      uint64
	out     *outbox
	web     *webTorrent // nil unless ServeWebTorrent was called

	subjAnnounces, subjSync, subjDirect string

	running atomic.Bool
	// Set by Run before any goroutine that reads them starts.
	ctx   context.Context
	store *swarm.Store
	nc    *nats.Conn

	// wants are catch-ups asked for by connection events and gaps, for
	// the sync loop; syncKick wakes it.
	syncMu   sync.Mutex
	wantAll  bool                // guarded by syncMu
	wantFrom map[uint64]struct{} // guarded by syncMu
	syncKick chan struct{}

	// senders is what the announce subscription knows of each other node;
	// only its callback goroutine touches it.
	senders   map[uint64]*sender
	lastPrune time.Time
	origins   origins

	admin changes // admin changes' own connection (admin.go)

	errLogged atomic.Int64 // unix nanoseconds of the last async error logged
	sealed    []byte       // the publish loop's copy of a batch with its tag

	connected, caughtUp                       atomic.Bool
	members                                   atomic.Int64
	published, publishedBatches, publishedLen atomic.Uint64
	accountingSeq                             atomic.Uint64 // numbers accounting messages
	applied, rejected, received, malformed    atomic.Uint64
	gaps, catchUps, catchUpFails, catchUpPeer atomic.Uint64
	served, unauthenticated                   atomic.Uint64
	notAllowed, invalidAddr, stale            atomic.Uint64
}

type sender struct {
	seq  uint32
	seen time.Time
}

var _ swarm.Sink = (*Node)(nil)

// New checks cfg, reads its credentials and TLS files, and returns a node
// that queues announces until Run connects it. It fails only on invalid
// settings or unreadable files; call it before dropping privileges.
func New(cfg Config, log *slog.Logger) (*Node, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	secrets, err := cfg.loadSecrets()
	if err != nil {
		return nil, err
	}
	key, err := cfg.loadSharedKey()
	if err != nil {
		return nil, err
	}
	batchBytes := cfg.BatchBytes
	if key != nil {
		batchBytes -= tagLen // the tag goes on top
	}
	var idb [8]byte
	rand.Read(idb[:])
	id := binary.BigEndian.Uint64(idb[:])
	n := &Node{
		cfg:           cfg,
		secrets:       secrets,
		key:           key,
		log:           log.With("cluster_node", cfg.NodeName),
		id:            id,
		out:           newOutbox(id, batchBytes, cfg.BufferBytes),
		subjAnnounces: cfg.Prefix + ".announces",
		subjSync:      cfg.Prefix + ".sync",
		subjDirect:    cfg.Prefix + ".sync." + strconv.FormatUint(id, 16),
		wantFrom:      make(map[uint64]struct{}),
		syncKick:      make(chan struct{}, 1),
		senders:       make(map[uint64]*sender),
	}
	n.admin.queue = make(chan Change, changeQueue)
	return n, nil
}

// Name returns the node's name.
func (n *Node) Name() string { return n.cfg.NodeName }

// Announced queues an announce the store accepted for publication; it never
// blocks. Announces learned from the cluster are not sent back.
func (n *Node) Announced(a swarm.Announce) {
	if a.FromCluster {
		return
	}
	n.out.Add(&a)
}

// heartbeatEvery is how long a node stays silent before it publishes an
// empty batch: the batch number it carries lets the others notice a lost
// last batch, and its arrival says the node is alive.
func (n *Node) heartbeatEvery() time.Duration { return 10 * n.cfg.FlushInterval }

// Run connects to NATS and syncs until ctx is done. NATS being down is not
// an error: Run keeps trying, and the store keeps serving from its own
// state. Run returns an error only if the NATS client cannot be set up.
func (n *Node) Run(ctx context.Context, store *swarm.Store) error {
	if n.running.Swap(true) {
		return errors.New("cluster: node already running")
	}
	n.ctx, n.store = ctx, store
	window := n.cfg.RepublishAfter
	if window == 0 {
		window = store.Config().PeerTimeout / 3
	}
	n.out.republish.Store(int64(window))
	n.origins.timeout = store.Config().PeerTimeout

	// nats.go calls handlers from its own goroutine; the closed handler
	// comes last, so Run waits for it and no handler runs after Run.
	closed := make(chan struct{})
	opts := append(n.cfg.natsOptions(n.secrets),
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }),
		nats.ConnectHandler(func(nc *nats.Conn) { n.onConnect(nc, "connected to NATS") }),
		nats.ReconnectHandler(func(nc *nats.Conn) { n.onConnect(nc, "reconnected to NATS") }),
		nats.DisconnectErrHandler(n.onDisconnect),
		nats.ErrorHandler(n.onAsyncError),
	)
	nc, err := nats.Connect(strings.Join(n.cfg.URLs, ","), opts...)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	n.nc = nc
	defer func() {
		nc.Close()
		<-closed
	}()
	if _, err := nc.Subscribe(n.subjAnnounces, n.onAnnounces); err != nil {
		return fmt.Errorf("cluster: subscribe %s: %w", n.subjAnnounces, err)
	}
	if _, err := nc.Subscribe(n.subjDirect, n.onSyncRequest); err != nil {
		return fmt.Errorf("cluster: subscribe %s: %w", n.subjDirect, err)
	}
	if n.web != nil {
		if err := n.web.subscribe(nc); err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
	}
	n.log.Info("cluster node started", "urls", n.cfg.URLs, "prefix", n.cfg.Prefix, "node_id", strconv.FormatUint(n.id, 16))

	var wg sync.WaitGroup
	wg.Go(func() { n.publishLoop(ctx) })
	wg.Go(func() { n.syncLoop(ctx) })
	if n.web != nil {
		wg.Go(func() { n.web.run(ctx) })
	}
	if n.cfg.Accounting != nil {
		wg.Go(func() { n.accountingLoop(ctx) })
	}
	wg.Wait()
	return nil
}

func (n *Node) onConnect(nc *nats.Conn, what string) {
	n.connected.Store(true)
	n.log.Info("cluster: "+what, "server", nc.ConnectedUrlRedacted())
	n.wantCatchUp(0)
	if n.web != nil {
		n.web.reconnected()
	}
}

func (n *Node) onDisconnect(nc *nats.Conn, err error) {
	if !n.connected.Swap(false) || n.ctx.Err() != nil {
		return
	}
	n.log.Warn("cluster: lost NATS; serving local state and buffering announces", "err", err)
}

// onAsyncError logs nats.go's asynchronous errors (a slow consumer, a
// permission refused) at most once a minute.
func (n *Node) onAsyncError(nc *nats.Conn, sub *nats.Subscription, err error) {
	now := time.Now().UnixNano()
	last := n.errLogged.Load()
	if now-last < int64(time.Minute) || !n.errLogged.CompareAndSwap(last, now) {
		return
	}
	subj := ""
	if sub != nil {
		subj = sub.Subject
	}
	n.log.Warn("cluster: NATS error", "subject", subj, "err", err)
}

// wantCatchUp asks the sync loop for a catch-up: from any member (node 0),
// or from one node whose batches went missing.
func (n *Node) wantCatchUp(node uint64) {
	n.syncMu.Lock()
	if node == 0 {
		n.wantAll = true
	} else {
		n.wantFrom[node] = struct{}{}
	}
	n.syncMu.Unlock()
	select {
	case n.syncKick <- struct{}{}:
	default:
	}
}

// publishLoop sends sealed batches every FlushInterval, or as soon as one
// is full, while NATS is reachable.
func (n *Node) publishLoop(ctx context.Context) {
	tick := time.NewTicker(n.cfg.FlushInterval)
	defer tick.Stop()
	lastSent := time.Now()
	var dropping bool
	var droppedBefore uint64
	for {
		select {
		case <-ctx.Done():
			n.out.Seal(false)
			n.publishQueued()
			if n.nc.IsConnected() {
				n.nc.FlushTimeout(time.Second)
			}
			return
		case <-tick.C:
			n.out.Tick()
			n.out.Seal(time.Since(lastSent) >= n.heartbeatEvery())
			// Buffer overflow is a state: log when it starts and ends.
			d := n.out.dropped.Load()
			switch {
			case d > droppedBefore && !dropping:
				dropping = true
				n.log.Warn("cluster: announce buffer full, dropping the oldest", "buffer_bytes", n.cfg.BufferBytes)
			case d == droppedBefore && dropping && n.out.Queued() == 0:
				dropping = false
				n.log.Info("cluster: announce buffer drained", "dropped_total", d)
			}
			droppedBefore = d
		case <-n.out.kick:
		}
		if n.publishQueued() {
			lastSent = time.Now()
		}
	}
}

// publishQueued publishes sealed batches, oldest first, until none is left
// or NATS refuses; it reports whether it sent any.
func (n *Node) publishQueued() bool {
	sent := false
	for n.nc.IsConnected() {
		b, ok := n.out.Next()
		if !ok {
			break
		}
		msg := b.buf
		if n.key != nil {
			n.sealed = n.seal(n.subjAnnounces, append(n.sealed[:0], b.buf...))
			msg = n.sealed
		}
		err := n.nc.Publish(n.subjAnnounces, msg)
		if errors.Is(err, nats.ErrMaxPayload) {
			// Retrying cannot help; the receivers see the gap and catch up.
			n.out.dropped.Add(uint64(b.records))
			n.out.Done(b)
			n.onAsyncError(n.nc, nil, fmt.Errorf("batch of %d bytes over the server's max_payload; lower the batch size: %w", len(b.buf), err))
			continue
		}
		if err != nil {
			n.out.Requeue(b)
			break
		}
		sent = true
		n.published.Add(uint64(b.records))
		n.publishedBatches.Add(1)
		n.publishedLen.Add(uint64(len(b.buf)))
		n.out.Done(b)
	}
	return sent
}

// onAnnounces applies another node's batch. Its records are checked as the
// tracker checks announces: the access list, then swarm.ValidPeer.
func (n *Node) onAnnounces(msg *nats.Msg) {
	data, ok := n.open(msg.Subject, msg.Data)
	if !ok {
		return
	}
	h, body, err := ParseHeader(data)
	if err != nil || h.Kind != KindAnnounces {
		n.malformed.Add(1)
		return
	}
	if h.Node == n.id {
		return
	}
	n.received.Add(uint64(len(msg.Data)))
	origin := n.origins.heard(h.Node, time.Now()) // before track asks for a catch-up that reads it
	n.track(h)
	for len(body) > 0 {
		var r Record
		if r, body, err = ParseRecord(body); err != nil {
			n.malformed.Add(1)
			return
		}
		if !n.allowed(r.InfoHash) {
			n.notAllowed.Add(1)
			continue
		}
		if !swarm.ValidPeer(r.Addr) {
			n.invalidAddr.Add(1)
			continue
		}
		a := r.Announce()
		a.Origin = origin
		if _, _, err := n.store.Announce(&a, 0, swarm.Peers{}); err != nil {
			n.rejected.Add(1)
			continue
		}
		n.applied.Add(1)
	}
}

// allowed applies Config.Allowed.
func (n *Node) allowed(h swarm.InfoHash) bool { return n.cfg.Allowed == nil || n.cfg.Allowed(h) }

// track follows each sender's batch numbers; a number skipped means a lost
// batch, and the node asks that sender for its state.
func (n *Node) track(h Header) {
	now := time.Now()
	s := n.senders[h.Node]
	switch {
	case s == nil:
		// A node heard for the first time: what it sent before this
		// node's subscription reached its server may be missing, unless
		// it started just now.
		s = &sender{seq: h.Seq}
		n.senders[h.Node] = s
		if h.Seq > 1 {
			n.wantCatchUp(h.Node)
		}
	case h.Seq > s.seq+1:
		n.gaps.Add(1)
		n.wantCatchUp(h.Node)
		fallthrough
	case h.Seq > s.seq:
		s.seq = h.Seq
	}
	s.seen = now
	if now.Sub(n.lastPrune) >= n.heartbeatEvery() {
		n.lastPrune = now
		for id, s := range n.senders {
			if now.Sub(s.seen) > 3*n.heartbeatEvery() {
				delete(n.senders, id)
			}
		}
	}
	n.members.Store(int64(len(n.senders)))
}

// Stats are a node's counters since it started, for metrics.
type Stats struct {
	// Connected reports whether NATS is reachable now.
	Connected bool
	// CaughtUp reports whether the node has taken the cluster's state
	// once (or found no other node to take it from), and answers others'
	// catch-up requests.
	CaughtUp bool
	// Members is how many other nodes were heard from within 30 flush
	// intervals, as of the last batch received.
	Members int
	// Published counts this node's announces sent, in PublishedBatches
	// messages of PublishedBytes payload bytes in all.
	Published, PublishedBatches, PublishedBytes uint64
	// Suppressed counts refreshes not sent because the peer was published
	// less than RepublishAfter ago; Dropped counts announces lost from a
	// full buffer.
	Suppressed, Dropped uint64
	// Queued is the number of batches waiting for NATS.
	Queued int
	// Applied counts other nodes' announces stored; Rejected those the
	// store refused (its limits); ReceivedBytes is their payload.
	Applied, Rejected, ReceivedBytes uint64
	// Malformed counts messages that did not parse; Unauthenticated those
	// dropped for a missing or wrong tag (Config.SharedKeyFile).
	Malformed, Unauthenticated uint64
	// NotAllowed and InvalidAddr count peers from other nodes, announced
	// or in catch-ups, refused by Config.Allowed and swarm.ValidPeer.
	NotAllowed, InvalidAddr uint64
	// Gaps counts batches found missing; each asks their sender for state.
	Gaps uint64
	// CatchUps counts catch-up streams received in full, CatchUpPeers the
	// peers they carried; CatchUpFailures those cut short.
	CatchUps, CatchUpPeers, CatchUpFailures uint64
	// StaleRemoved counts peers removed because the node they came from no
	// longer held them when it answered a catch-up: stops this node missed.
	StaleRemoved uint64
	// Unnumbered counts batches from nodes that got no origin number (more
	// than swarm.MaxOrigin other nodes heard within a peer timeout): their
	// peers are only added, never removed by a catch-up.
	Unnumbered uint64
	// Served counts catch-up streams sent to other nodes.
	Served uint64
	// ChangesApplied counts admin changes (admin.go) from other nodes
	// applied here, ChangesRejected those dropped (unsealed, invalid,
	// stale, or refused by the apply function), ChangesUnsent this node's
	// earned bans given to ShareBan and dropped unsent.
	ChangesApplied, ChangesRejected, ChangesUnsent uint64
	// AdminCatchUps counts admin states (lists, keys, bans) taken from
	// another node on connecting (adminstate.go), AdminCatchUpFailures
	// the attempts that failed, AdminServed the states sent to others.
	AdminCatchUps, AdminCatchUpFailures, AdminServed uint64
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	return Stats{
		Connected:            n.connected.Load(),
		CaughtUp:             n.caughtUp.Load(),
		Members:              int(n.members.Load()),
		Published:            n.published.Load(),
		PublishedBatches:     n.publishedBatches.Load(),
		PublishedBytes:       n.publishedLen.Load(),
		Suppressed:           n.out.suppressed.Load(),
		Dropped:              n.out.dropped.Load(),
		Queued:               n.out.Queued(),
		Applied:              n.applied.Load(),
		Rejected:             n.rejected.Load(),
		ReceivedBytes:        n.received.Load(),
		Malformed:            n.malformed.Load(),
		Unauthenticated:      n.unauthenticated.Load(),
		NotAllowed:           n.notAllowed.Load(),
		InvalidAddr:          n.invalidAddr.Load(),
		Gaps:                 n.gaps.Load(),
		CatchUps:             n.catchUps.Load(),
		CatchUpPeers:         n.catchUpPeer.Load(),
		CatchUpFailures:      n.catchUpFails.Load(),
		StaleRemoved:         n.stale.Load(),
		Unnumbered:           n.origins.none.Load(),
		Served:               n.served.Load(),
		ChangesApplied:       n.admin.applied.Load(),
		ChangesRejected:      n.admin.rejected.Load(),
		ChangesUnsent:        n.admin.unsent.Load(),
		AdminCatchUps:        n.admin.catchUps.Load(),
		AdminCatchUpFailures: n.admin.catchUpFails.Load(),
		AdminServed:          n.admin.served.Load(),
	}
}
