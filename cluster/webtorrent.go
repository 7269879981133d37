package cluster

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"herald/swarm"
)

// WebTorrent swarms span the cluster. A WebTorrent peer is a WebSocket
// connection, not an address (wstracker/doc.go), so it cannot be shared as
// announces are: each node tells the others which peers its connections
// hold, and relays offers and answers to the node whose connection holds
// the peer they are for.
//
// # Subjects
//
//	<prefix>.ws.peers          peer batches and state requests, every node to all
//	<prefix>.ws.node.<id hex>  offers, answers, state requests and states for one node
//
// # Peers
//
// A node keeps the set of its own WebTorrent peers (info hash, peer id,
// seeder). A change to it (a peer joins, turns seeder, completes, leaves
// with a stopped event or a closed connection) is a 41-byte record in the
// current batch, published every FlushInterval or when full, numbered in a
// sequence of its own; a refresh that changes nothing costs nothing. The
// receiver keeps each other node's set and applies records to the WebSocket
// tracker (WebTorrentSwarms), whose swarms then hold local and remote
// members: announces pick recipients among both, and announce replies and
// scrapes count both.
//
// A node that (re)connects asks everyone for their sets (one request on
// <prefix>.ws.peers); a node that sees a batch number skipped, or hears a
// node for the first time in mid-sequence, asks that node alone. The state
// goes to the asker's own subject in chunks, the last one saying which
// batch number it is current as of; the asker replaces its copy of that
// node's set with it (removing what is gone) and skips batches up to that
// number. The state is published after every batch it includes and before
// any it does not, and the asker reads both subjects in one goroutine in
// the order they arrive, so no change is lost or applied twice.
//
// A node that stops sends an empty list to everyone: its peers leave every
// swarm at once. An idle node publishes an empty batch every 10 flush
// intervals; a node not heard for 3 such periods (30 s by default) is taken
// for dead, and its peers are removed. If it was only cut off, its next
// batch is out of sequence and brings a state request.
//
// # Offers and answers
//
// An offer for a peer on another node is one message to that node's own
// subject, never a broadcast; that node remembers it on the receiving
// connection as a local relay does (at most the last 32 offers per
// connection) and writes it to the peer's socket. The answer goes back the
// same way to the offering peer's node. Offers and answers are relayed at
// once, not batched: WebRTC signalling is latency bound.
//
// # Trust
//
// Records pass the access list (Config.Allowed) and the WebSocket tracker's
// limits; an SDP is at most MaxRelaySDP bytes and must be one JSON object
// (checked by the tracker before it is written to a socket). With
// Config.SharedKeyFile every message is tagged as the others are.
type WebTorrentSwarms interface {
	// RemoteJoined adds or updates peer id of swarm h, held by node; it
	// reports false when the swarm's limits refuse it.
	RemoteJoined(node uint64, h swarm.InfoHash, id swarm.PeerID, seeder, completed bool) bool
	// RemoteLeft removes peer id of swarm h if node holds it.
	RemoteLeft(node uint64, h swarm.InfoHash, id swarm.PeerID)
	// DeliverOffer writes an offer of peer from (on node) to the local
	// peer to, and DeliverAnswer an answer to the local offerer to; each
	// reports whether the peer was there to take it.
	DeliverOffer(node uint64, h swarm.InfoHash, from, to swarm.PeerID, offerID [20]byte, sdp []byte) bool
	DeliverAnswer(node uint64, h swarm.InfoHash, from, to swarm.PeerID, offerID [20]byte, sdp []byte) bool
}

// webPeerKey is one peer of one swarm.
type webPeerKey struct {
	infoHash swarm.InfoHash
	peerID   swarm.PeerID
}

// webTorrent is a node's part in the WebTorrent swarms.
type webTorrent struct {
	n      *Node
	swarms WebTorrentSwarms

	subjPeers, subjOwn string
	// in carries both subscriptions' messages to one goroutine, in the
	// order they arrived: a state must be applied between the batches it
	// includes and those it does not.
	in   chan *nats.Msg
	kick chan struct{} // capacity 1: a batch is sealed or a state is asked for
	// nc is the node's connection once Run has it: the tracker's
	// goroutines send offers and answers from the start.
	nc atomic.Pointer[nats.Conn]

	mu         sync.Mutex
	own        map[webPeerKey]bool // this node's peers, seeder or not; guarded by mu
	seq        uint32              // number of the last sealed batch; guarded by mu
	cur        []byte              // batch being filled, header included; guarded by mu
	curRecs    int                 // guarded by mu
	sealed     [][]byte            // batches waiting for NATS, oldest first; guarded by mu
	askers     map[uint64]struct{} // nodes waiting for this node's state; guarded by mu
	askAll     bool                // ask every node for its state; guarded by mu
	lastSealed time.Time           // guarded by mu

	// nodes is what this node knows of the others; only the receiving
	// goroutine touches it.
	nodes map[uint64]*webNode

	remotePeers                                          atomic.Int64
	offersSent, answersSent, offersIn, answersIn         atomic.Uint64
	undeliverable, sendFailed, refused                   atomic.Uint64
	statesServed, statesReceived, gaps, expired, dropped atomic.Uint64
}

// webNode is another node's WebTorrent peers as this node knows them.
type webNode struct {
	seq   uint32 // last batch applied
	seen  time.Time
	peers map[webPeerKey]bool
	asked time.Time // when its state was last asked for; zero when none is awaited
	// A state arriving in chunks.
	incoming map[webPeerKey]bool
	chunk    uint32
}

// ServeWebTorrent makes the node carry the WebSocket tracker's swarms
// across the cluster; call it before Run. The node is then the tracker's
// cluster (wstracker.Config.Cluster).
func (n *Node) ServeWebTorrent(s WebTorrentSwarms) {
	w := &webTorrent{
		n:         n,
		swarms:    s,
		subjPeers: n.cfg.Prefix + ".ws.peers",
		subjOwn:   n.webSubject(n.id),
		in:        make(chan *nats.Msg, 8192),
		kick:      make(chan struct{}, 1),
		own:       make(map[webPeerKey]bool),
		askers:    make(map[uint64]struct{}),
		nodes:     make(map[uint64]*webNode),
	}
	w.cur = w.newBatch()
	n.web = w
}

func (n *Node) webSubject(node uint64) string {
	return n.cfg.Prefix + ".ws.node." + strconv.FormatUint(node, 16)
}

// batchBytes is the most a WebTorrent message may hold before its tag.
func (w *webTorrent) batchBytes() int {
	if w.n.key != nil {
		return w.n.cfg.BatchBytes - tagLen
	}
	return w.n.cfg.BatchBytes
}

func (w *webTorrent) newBatch() []byte {
	return make([]byte, HeaderLen, w.batchBytes())
}

// PeerJoined records that a local connection holds peer id of swarm h, or
// that its state changed; a call that changes nothing costs no record.
func (n *Node) PeerJoined(h swarm.InfoHash, id swarm.PeerID, seeder, completed bool) {
	w := n.web
	k := webPeerKey{h, id}
	w.mu.Lock()
	defer w.mu.Unlock()
	if was, ok := w.own[k]; ok && was == seeder && !completed {
		return
	}
	w.own[k] = seeder
	w.addLocked(&WebPeer{InfoHash: h, PeerID: id, Seeder: seeder, Completed: completed})
}

// PeerLeft records that peer id of swarm h left this node.
func (n *Node) PeerLeft(h swarm.InfoHash, id swarm.PeerID) {
	w := n.web
	k := webPeerKey{h, id}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.own[k]; !ok {
		return
	}
	delete(w.own, k)
	w.addLocked(&WebPeer{InfoHash: h, PeerID: id, Left: true})
}

func (w *webTorrent) addLocked(p *WebPeer) {
	if len(w.cur)+WebPeerLen > w.batchBytes() {
		w.sealLocked()
	}
	w.cur = AppendWebPeer(w.cur, p)
	w.curRecs++
}

// sealLocked numbers the current batch and queues it; past the buffer's
// bound the oldest queued batch is dropped, which the receivers see as a
// gap. mu held.
func (w *webTorrent) sealLocked() {
	w.seq++
	AppendHeader(w.cur[:0], Header{Kind: KindWebPeers, Node: w.n.id, Seq: w.seq})
	if len(w.sealed) >= max(1, w.n.cfg.BufferBytes/w.n.cfg.BatchBytes) {
		w.sealed = w.sealed[1:]
		w.dropped.Add(1)
	}
	w.sealed = append(w.sealed, w.cur)
	w.cur, w.curRecs = w.newBatch(), 0
	w.lastSealed = time.Now()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// SendOffer sends an offer of local peer from to peer to of swarm h, held
// by node: one message, to that node alone. It reports false when NATS is
// unreachable.
func (n *Node) SendOffer(node uint64, h swarm.InfoHash, from, to swarm.PeerID, offerID [20]byte, sdp []byte) bool {
	if !n.web.send(KindWebOffer, node, &WebRelay{InfoHash: h, From: from, To: to, OfferID: offerID, SDP: sdp}) {
		return false
	}
	n.web.offersSent.Add(1)
	return true
}

// SendAnswer sends the answer of local peer from to the offer offerID of
// peer to, held by node.
func (n *Node) SendAnswer(node uint64, h swarm.InfoHash, from, to swarm.PeerID, offerID [20]byte, sdp []byte) bool {
	if !n.web.send(KindWebAnswer, node, &WebRelay{InfoHash: h, From: from, To: to, OfferID: offerID, SDP: sdp}) {
		return false
	}
	n.web.answersSent.Add(1)
	return true
}

var relayBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func (w *webTorrent) send(kind Kind, node uint64, r *WebRelay) bool {
	nc := w.nc.Load()
	if nc == nil || !nc.IsConnected() || len(r.SDP) > MaxRelaySDP {
		w.sendFailed.Add(1)
		return false
	}
	buf := relayBuffers.Get().(*[]byte)
	defer relayBuffers.Put(buf)
	subject := w.n.webSubject(node)
	msg := AppendWebRelay(AppendHeader((*buf)[:0], Header{Kind: kind, Node: w.n.id}), r)
	msg = w.n.seal(subject, msg)
	*buf = msg[:0]
	if err := nc.Publish(subject, msg); err != nil {
		w.sendFailed.Add(1)
		return false
	}
	return true
}

// subscribe routes both WebTorrent subjects into one channel, read by run.
func (w *webTorrent) subscribe(nc *nats.Conn) error {
	for _, subj := range []string{w.subjPeers, w.subjOwn} {
		if _, err := nc.ChanSubscribe(subj, w.in); err != nil {
			return fmt.Errorf("subscribe %s: %w", subj, err)
		}
	}
	w.nc.Store(nc)
	return nil
}

// run publishes and applies WebTorrent messages until ctx is done.
func (w *webTorrent) run(ctx context.Context) {
	w.reconnected()
	var wg sync.WaitGroup
	wg.Go(func() { w.publishLoop(ctx) })
	wg.Go(func() { w.receiveLoop(ctx) })
	wg.Wait()
}

// reconnected asks every node for its state again: what changed while
// NATS was away is unknown.
func (w *webTorrent) reconnected() {
	w.mu.Lock()
	w.askAll = true
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *webTorrent) publishLoop(ctx context.Context) {
	tick := time.NewTicker(w.n.cfg.FlushInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			w.mu.Lock()
			if w.curRecs > 0 {
				w.sealLocked()
			}
			w.mu.Unlock()
			w.publish()
			w.goodbye()
			return
		case <-tick.C:
			w.mu.Lock()
			if w.curRecs > 0 || time.Since(w.lastSealed) >= w.n.heartbeatEvery() {
				w.sealLocked()
			}
			w.mu.Unlock()
		case <-w.kick:
		}
		w.publish()
	}
}

// goodbye tells the others, as the node stops, that it holds no peers any
// more: an empty list, so that they drop its peers at once rather than
// after its silence.
func (w *webTorrent) goodbye() {
	nc := w.nc.Load()
	if !nc.IsConnected() {
		return
	}
	w.mu.Lock()
	asOf := w.seq
	w.mu.Unlock()
	msg := AppendWebPeersState(AppendHeader(nil, Header{Kind: KindWebPeersState, Node: w.n.id, Seq: 1}), WebPeersState{AsOf: asOf, Last: true})
	nc.Publish(w.subjPeers, w.n.seal(w.subjPeers, msg))
	nc.FlushTimeout(time.Second)
}

// publish sends the queued batches, then the states asked for, from one
// goroutine and in that order: a state is current as of the last batch
// sealed before it, and reaches its asker after that batch and before the
// next.
func (w *webTorrent) publish() {
	nc := w.nc.Load()
	if !nc.IsConnected() {
		return
	}
	w.mu.Lock()
	askAll := w.askAll
	w.askAll = false
	var (
		askers []uint64
		state  []WebPeer
	)
	if len(w.askers) > 0 {
		if w.curRecs > 0 {
			w.sealLocked()
		}
		for id := range w.askers {
			askers = append(askers, id)
		}
		clear(w.askers)
		state = make([]WebPeer, 0, len(w.own))
		for k, seeder := range w.own {
			state = append(state, WebPeer{InfoHash: k.infoHash, PeerID: k.peerID, Seeder: seeder})
		}
	}
	asOf := w.seq
	batches := w.sealed
	w.sealed = nil
	w.mu.Unlock()

	for _, b := range batches {
		if nc.Publish(w.subjPeers, w.n.seal(w.subjPeers, b)) != nil {
			w.dropped.Add(1) // a gap for the receivers, who ask for the state
		}
	}
	if askAll {
		req := AppendHeader(nil, Header{Kind: KindWebPeersRequest, Node: w.n.id})
		nc.Publish(w.subjPeers, w.n.seal(w.subjPeers, req))
	}
	for _, id := range askers {
		w.serveState(nc, id, asOf, state)
	}
}

// serveState sends this node's peers to node id, in chunks.
func (w *webTorrent) serveState(nc *nats.Conn, id uint64, asOf uint32, state []WebPeer) {
	subject := w.n.webSubject(id)
	per := (w.batchBytes() - HeaderLen - webStateHeadLen) / WebPeerLen
	var buf []byte
	for chunk := uint32(1); ; chunk++ {
		k := min(per, len(state))
		buf = AppendHeader(buf[:0], Header{Kind: KindWebPeersState, Node: w.n.id, Seq: chunk})
		buf = AppendWebPeersState(buf, WebPeersState{AsOf: asOf, Last: k == len(state)})
		for i := range state[:k] {
			buf = AppendWebPeer(buf, &state[i])
		}
		if nc.Publish(subject, w.n.seal(subject, buf)) != nil {
			return // the asker times out and asks again
		}
		if state = state[k:]; len(state) == 0 {
			break
		}
	}
	w.statesServed.Add(1)
}

func (w *webTorrent) receiveLoop(ctx context.Context) {
	prune := time.NewTicker(w.n.heartbeatEvery())
	defer prune.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-prune.C:
			w.prune(time.Now())
		case msg := <-w.in:
			w.receive(msg)
		}
	}
}

// prune removes the peers of nodes not heard for 3 heartbeat periods, and
// asks again for states that did not come.
func (w *webTorrent) prune(now time.Time) {
	for id, r := range w.nodes {
		if now.Sub(r.seen) > 3*w.n.heartbeatEvery() {
			for k := range r.peers {
				w.swarms.RemoteLeft(id, k.infoHash, k.peerID)
			}
			w.remotePeers.Add(-int64(len(r.peers)))
			delete(w.nodes, id)
			w.expired.Add(1)
			w.n.log.Info("cluster: WebTorrent peers of a silent node removed", "node_id", strconv.FormatUint(id, 16), "peers", len(r.peers))
			continue
		}
		if !r.asked.IsZero() && now.Sub(r.asked) > w.n.cfg.SyncTimeout {
			w.ask(id, r, now)
		}
	}
}

// ask asks node id for its state, unless an earlier ask is still young.
func (w *webTorrent) ask(id uint64, r *webNode, now time.Time) {
	if !r.asked.IsZero() && now.Sub(r.asked) <= w.n.cfg.SyncTimeout {
		return
	}
	r.asked = now
	subject := w.n.webSubject(id)
	req := AppendHeader(nil, Header{Kind: KindWebPeersRequest, Node: w.n.id})
	w.nc.Load().Publish(subject, w.n.seal(subject, req))
}

func (w *webTorrent) node(id uint64, now time.Time) *webNode {
	r := w.nodes[id]
	if r == nil {
		r = &webNode{peers: make(map[webPeerKey]bool), seen: now}
		w.nodes[id] = r
	}
	return r
}

func (w *webTorrent) receive(msg *nats.Msg) {
	n := w.n
	data, ok := n.open(msg.Subject, msg.Data)
	if !ok {
		return
	}
	h, body, err := ParseHeader(data)
	switch {
	case err != nil || h.Node == 0:
		n.malformed.Add(1)
		return
	case h.Node == n.id:
		return
	}
	n.received.Add(uint64(len(msg.Data)))
	now := time.Now()
	switch h.Kind {
	case KindWebPeers:
		w.onPeers(h, body, now)
	case KindWebPeersRequest:
		if len(body) != 0 {
			n.malformed.Add(1)
			return
		}
		w.mu.Lock()
		w.askers[h.Node] = struct{}{}
		w.mu.Unlock()
		select {
		case w.kick <- struct{}{}:
		default:
		}
	case KindWebPeersState:
		w.onState(h, body, now)
	case KindWebOffer, KindWebAnswer:
		r, err := ParseWebRelay(body)
		if err != nil {
			n.malformed.Add(1)
			return
		}
		if !n.allowed(r.InfoHash) {
			n.notAllowed.Add(1)
			return
		}
		var delivered bool
		if h.Kind == KindWebOffer {
			w.offersIn.Add(1)
			delivered = w.swarms.DeliverOffer(h.Node, r.InfoHash, r.From, r.To, r.OfferID, r.SDP)
		} else {
			w.answersIn.Add(1)
			delivered = w.swarms.DeliverAnswer(h.Node, r.InfoHash, r.From, r.To, r.OfferID, r.SDP)
		}
		if !delivered {
			w.undeliverable.Add(1)
		}
	default:
		n.malformed.Add(1)
	}
}

// onPeers applies a batch of another node's peer records.
func (w *webTorrent) onPeers(h Header, body []byte, now time.Time) {
	if len(body)%WebPeerLen != 0 {
		w.n.malformed.Add(1)
		return
	}
	r := w.nodes[h.Node]
	switch {
	case r == nil:
		// Heard first in mid-sequence: what came before is missing.
		r = w.node(h.Node, now)
		if h.Seq > 1 {
			w.ask(h.Node, r, now)
		}
	case h.Seq <= r.seq:
		r.seen = now
		return // in the state applied already
	case h.Seq > r.seq+1:
		w.gaps.Add(1)
		w.ask(h.Node, r, now)
	}
	r.seq, r.seen = h.Seq, now
	for len(body) > 0 {
		p, rest, err := ParseWebPeer(body)
		if err != nil {
			w.n.malformed.Add(1)
			return
		}
		body = rest
		w.apply(h.Node, r, &p)
	}
}

// apply applies one record of node id to the swarms and to r.
func (w *webTorrent) apply(id uint64, r *webNode, p *WebPeer) {
	k := webPeerKey{p.InfoHash, p.PeerID}
	if p.Left {
		if _, ok := r.peers[k]; ok {
			delete(r.peers, k)
			w.remotePeers.Add(-1)
			w.swarms.RemoteLeft(id, p.InfoHash, p.PeerID)
		}
		return
	}
	if !w.n.allowed(p.InfoHash) {
		w.n.notAllowed.Add(1)
		return
	}
	if !w.swarms.RemoteJoined(id, p.InfoHash, p.PeerID, p.Seeder, p.Completed) {
		w.refused.Add(1)
		return
	}
	if _, ok := r.peers[k]; !ok {
		w.remotePeers.Add(1)
	}
	r.peers[k] = p.Seeder
}

// onState collects a chunk of another node's state; the last chunk
// replaces what this node knew of that node's peers.
func (w *webTorrent) onState(h Header, body []byte, now time.Time) {
	st, recs, err := ParseWebPeersState(body)
	if err != nil || len(recs)%WebPeerLen != 0 {
		w.n.malformed.Add(1)
		return
	}
	r := w.node(h.Node, now)
	if h.Seq == 1 {
		r.incoming, r.chunk = make(map[webPeerKey]bool), 0
	}
	if r.incoming == nil || h.Seq != r.chunk+1 {
		r.incoming = nil // a chunk lost: ask again after SyncTimeout
		return
	}
	r.chunk = h.Seq
	for len(recs) > 0 {
		p, rest, err := ParseWebPeer(recs)
		if err != nil || p.Left || p.Completed {
			w.n.malformed.Add(1)
			r.incoming = nil
			return
		}
		recs = rest
		r.incoming[webPeerKey{p.InfoHash, p.PeerID}] = p.Seeder
	}
	if !st.Last {
		return
	}
	incoming := r.incoming
	r.incoming = nil
	if st.AsOf < r.seq {
		return // older than batches applied already; the ask stands
	}
	for k := range r.peers {
		if _, ok := incoming[k]; !ok {
			delete(r.peers, k)
			w.remotePeers.Add(-1)
			w.swarms.RemoteLeft(h.Node, k.infoHash, k.peerID)
		}
	}
	for k, seeder := range incoming {
		if was, ok := r.peers[k]; ok && was == seeder {
			continue
		}
		w.apply(h.Node, r, &WebPeer{InfoHash: k.infoHash, PeerID: k.peerID, Seeder: seeder})
	}
	r.seq, r.seen, r.asked = st.AsOf, now, time.Time{}
	w.statesReceived.Add(1)
}

// WebTorrentStats are the counters of a node's WebTorrent swarms.
type WebTorrentStats struct {
	// OwnPeers and RemotePeers are the WebTorrent peers held by this
	// node's connections and known held by others'.
	OwnPeers, RemotePeers int
	// OffersSent and AnswersSent count messages relayed to other nodes,
	// one each; OffersIn and AnswersIn those received, Undeliverable
	// those whose peer had gone, SendFailed those NATS did not take.
	OffersSent, AnswersSent, OffersIn, AnswersIn, Undeliverable, SendFailed uint64
	// Refused counts remote peers the WebSocket tracker's limits refused.
	Refused uint64
	// StatesServed and StatesReceived count full peer lists sent and
	// applied; Gaps counts peer batches found missing, Dropped those lost
	// from a full buffer or refused by NATS; Expired counts nodes whose
	// peers were removed after their silence.
	StatesServed, StatesReceived, Gaps, Dropped, Expired uint64
}

// WebTorrentStats returns the counters; zero when the node does not serve
// WebTorrent.
func (n *Node) WebTorrentStats() WebTorrentStats {
	w := n.web
	if w == nil {
		return WebTorrentStats{}
	}
	w.mu.Lock()
	own := len(w.own)
	w.mu.Unlock()
	return WebTorrentStats{
		OwnPeers:       own,
		RemotePeers:    int(w.remotePeers.Load()),
		OffersSent:     w.offersSent.Load(),
		AnswersSent:    w.answersSent.Load(),
		OffersIn:       w.offersIn.Load(),
		AnswersIn:      w.answersIn.Load(),
		Undeliverable:  w.undeliverable.Load(),
		SendFailed:     w.sendFailed.Load(),
		Refused:        w.refused.Load(),
		StatesServed:   w.statesServed.Load(),
		StatesReceived: w.statesReceived.Load(),
		Gaps:           w.gaps.Load(),
		Dropped:        w.dropped.Load(),
		Expired:        w.expired.Load(),
	}
}

var (
	descWebPeers = prometheus.NewDesc("herald_cluster_webtorrent_peers",
		"WebTorrent peers by holder: own (this node's connections) or remote (other nodes').", []string{"holder"}, nil)
	descWebRelayed = prometheus.NewDesc("herald_cluster_webtorrent_relayed_total",
		"Offers and answers relayed through NATS, one message each, by what and direction (out, in, undeliverable: the peer had gone, failed: NATS did not take it).",
		[]string{"what", "direction"}, nil)
	descWebEvents = prometheus.NewDesc("herald_cluster_webtorrent_events_total",
		"WebTorrent peer sync events: state_served, state_received, gap, dropped (peer batches lost), node_expired, refused (remote peers over the tracker's limits).",
		[]string{"event"}, nil)
)

func describeWebTorrent(ch chan<- *prometheus.Desc) {
	ch <- descWebPeers
	ch <- descWebRelayed
	ch <- descWebEvents
}

func (n *Node) collectWebTorrent(ch chan<- prometheus.Metric) {
	if n.web == nil {
		return
	}
	s := n.WebTorrentStats()
	ch <- prometheus.MustNewConstMetric(descWebPeers, prometheus.GaugeValue, float64(s.OwnPeers), "own")
	ch <- prometheus.MustNewConstMetric(descWebPeers, prometheus.GaugeValue, float64(s.RemotePeers), "remote")
	for _, c := range []struct {
		v         uint64
		what, dir string
	}{
		{s.OffersSent, "offer", "out"}, {s.OffersIn, "offer", "in"},
		{s.AnswersSent, "answer", "out"}, {s.AnswersIn, "answer", "in"},
		{s.Undeliverable, "any", "undeliverable"}, {s.SendFailed, "any", "failed"},
	} {
		ch <- prometheus.MustNewConstMetric(descWebRelayed, prometheus.CounterValue, float64(c.v), c.what, c.dir)
	}
	for _, c := range []struct {
		v     uint64
		event string
	}{
		{s.StatesServed, "state_served"}, {s.StatesReceived, "state_received"}, {s.Gaps, "gap"},
		{s.Dropped, "dropped"}, {s.Expired, "node_expired"}, {s.Refused, "refused"},
	} {
		ch <- prometheus.MustNewConstMetric(descWebEvents, prometheus.CounterValue, float64(c.v), c.event)
	}
}
