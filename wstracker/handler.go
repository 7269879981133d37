package wstracker

import (
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/gobwas/ws"

	"herald/access"
	"herald/counters"
	"herald/ratelimit"
	"herald/swarm"
	"herald/tracker"
)

// Handler accepts WebSocket upgrades on Config.Path and runs the tracker
// protocol on them. Mount it in any net/http server; Close ends every
// connection it accepted (net/http's Shutdown does not see hijacked
// connections).
type Handler struct {
	cfg     Config
	tracker *tracker.Tracker
	swarms  *swarms

	mu      sync.Mutex
	conns   map[*conn]struct{} // guarded by mu
	clients map[[8]byte]int    // guarded by mu; open connections per ratelimit.Key, but Config.Unlimited's
	closing bool               // guarded by mu
	wg      sync.WaitGroup     // one per connection goroutine

	counts *counters.Set
}

// NewHandler checks cfg and returns a handler with empty swarms.
func NewHandler(cfg Config) (*Handler, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	h := &Handler{cfg: cfg, tracker: cfg.Tracker, swarms: newSwarms(cfg.Cluster), conns: make(map[*conn]struct{}), clients: make(map[[8]byte]int),
		counts: cfg.Counters}
	limit := func(n int) func() int64 { return func() int64 { return int64(n) } }
	for _, w := range []struct {
		g    counters.Gauge
		read func() int64
	}{
		{counters.Connections, h.connections},
		{counters.ConnectionLimit, limit(cfg.MaxConnections)},
		{counters.Swarms, h.swarms.torrents.Load},
		{counters.SwarmLimit, limit(cfg.MaxTorrents)},
		{counters.Peers, h.swarms.peers.Load},
		{counters.PeerLimit, limit(cfg.MaxPeers)},
	} {
		h.counts.Watch(counters.WS, w.g, w.read)
	}
	return h, nil
}

// connections is the number of connections open now.
func (h *Handler) connections() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return int64(len(h.conns))
}

// IsUpgrade reports whether r asks for a WebSocket upgrade, for a server
// that serves plain HTTP announces on the same path.
func IsUpgrade(r *http.Request) bool {
	for _, v := range r.Header.Values("Upgrade") {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), "websocket") {
				return true
			}
		}
	}
	return false
}

// ServeHTTP upgrades the request and hands the connection to its own
// goroutine.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Public WebTorrent trackers are published without a path
	// (wss://tracker.example.org), so "/" is always an announce URL; a
	// private one's carry the member's key first (/KEY/announce, /KEY).
	key, path, _ := access.KeyFromPath(r.URL.Path)
	if path != h.cfg.Path && path != "/" && path != "" {
		http.NotFound(w, r)
		return
	}
	if !IsUpgrade(r) {
		w.Header().Set("Upgrade", "websocket")
		http.Error(w, "WebSocket tracker: upgrade required", http.StatusUpgradeRequired)
		return
	}
	client, limited := h.client(r)
	h.mu.Lock()
	full := h.cfg.MaxConnections > 0 && len(h.conns) >= h.cfg.MaxConnections ||
		limited && h.clients[client] >= h.cfg.MaxConnectionsPerClient
	closing := h.closing
	if !full && !closing && limited {
		// The slot is taken now, under the lock that checked it: a
		// client's next upgrade may arrive before this one is done.
		h.clients[client]++
	}
	h.mu.Unlock()
	if full || closing {
		h.counts.Event(counters.WS, counters.Turned)
		w.Header().Set("Retry-After", "60")
		http.Error(w, "WebSocket tracker: too many connections", http.StatusServiceUnavailable)
		return
	}
	nc, rw, _, err := ws.UpgradeHTTP(r, w)
	if err != nil {
		// The upgrader has answered (400, 426…) on the hijacked connection.
		if nc != nil {
			nc.Close()
		}
		h.mu.Lock()
		h.releaseClient(client, limited)
		h.mu.Unlock()
		return
	}
	// On the HTTP port the connection leaves that port's limits: this
	// tracker's own bound it from now on.
	if hc, ok := nc.(interface{ LeaveLimit() }); ok {
		hc.LeaveLimit()
	}
	buffered, _ := rw.Reader.Peek(rw.Reader.Buffered())
	from, _ := netip.ParseAddrPort(r.RemoteAddr) // net/http sets it from the socket
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	c := &conn{h: h, nc: nc, from: from, r: prefixReader(append([]byte(nil), buffered...), nc), client: client, limited: limited, key: key}
	h.mu.Lock()
	if h.closing {
		h.releaseClient(client, limited)
		h.mu.Unlock()
		c.sendClose(ws.StatusGoingAway, "tracker is shutting down")
		nc.Close()
		return
	}
	h.conns[c] = struct{}{}
	h.wg.Add(1)
	h.mu.Unlock()
	h.counts.Event(counters.WS, counters.Accepted)
	// A fresh goroutine, not net/http's: its stack starts small, and most
	// connections sit idle for their whole life.
	go h.serveConn(c)
}

// Close closes every connection with status 1001 (going away), gives the
// clients closeLinger to answer, and waits for the connection goroutines.
// Upgrades after Close are refused.
func (h *Handler) Close() {
	h.mu.Lock()
	h.closing = true
	conns := make([]*conn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		// The connection's goroutine reads the client's close frame, or
		// times out after closeLinger, and ends.
		c.sendClose(ws.StatusGoingAway, "tracker is shutting down")
	}
	h.wg.Wait()
}

// serveConn reads and handles one message, then hands the connection to
// a fresh goroutine for the next one. Handling a message (JSON decoding
// above all) grows a goroutine's stack to 8 KB, and the runtime shrinks a
// parked stack only while it is under a quarter used, so a goroutine that
// has handled messages idles on 4 KB; a fresh one waits on 2 KB. A
// goroutine start per message costs well under a microsecond.
func (h *Handler) serveConn(c *conn) {
	err := h.serveMessage(c)
	if err == nil {
		go h.serveConn(c)
		return
	}
	defer h.wg.Done()
	var ce *closeError
	switch {
	case errors.As(err, &ce):
		h.counts.Fault(counters.WS, counters.ClosedByTracker)
		c.sendClose(ce.code, ce.reason)
		c.lingerClose()
	case errors.Is(err, errClientClosed):
		c.sendClose(ws.StatusNormalClosure, "")
		c.nc.Close()
	default:
		if !c.spoke { // silent since the upgrade: FirstMessageTimeout
			h.counts.Fault(counters.WS, counters.ClosedByTracker)
		}
		c.nc.Close()
	}
	c.markClosed()
	h.swarms.leaveAll(c)
	h.forget(c)
}

// forget removes a closed connection from the counts. (Apart from
// serveConn, whose frame sits under every idle connection's read: a larger
// frame grows the goroutine stacks past 2 KiB.)
func (h *Handler) forget(c *conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.conns, c)
	h.releaseClient(c.client, c.limited)
}

// releaseClient gives back a connection slot of client; h.mu is held.
func (h *Handler) releaseClient(client [8]byte, limited bool) {
	if !limited {
		return
	}
	if n := h.clients[client]; n > 1 {
		h.clients[client] = n - 1
	} else {
		delete(h.clients, client)
	}
}

// client returns the key of r's client for MaxConnectionsPerClient, and
// whether the limit applies to it.
func (h *Handler) client(r *http.Request) ([8]byte, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil || h.cfg.Unlimited != nil && h.cfg.Unlimited(ap.Addr().Unmap()) {
		return [8]byte{}, false
	}
	return ratelimit.Key(ap.Addr()), true
}

// serveMessage waits for the next message and answers it; an error ends
// the connection.
func (h *Handler) serveMessage(c *conn) error {
	var buf *[]byte
	msg, err := c.readMessage(&buf)
	if err == nil {
		c.spoke = true
		err = h.serveOne(c, msg)
	}
	if buf != nil {
		putBuffer(buf)
	}
	return err
}

// serveOne handles msg unless the connection is over its message rate, and
// times it. It is kept out of serveMessage, whose frame every idle
// connection's goroutine waits in: inlined there, its locals grew that
// frame past the 2 KB a fresh goroutine starts with (5.4 KB per idle
// connection instead of 3.4, TestMemoryPerIdleConnection).
//
//go:noinline
func (h *Handler) serveOne(c *conn, msg []byte) error {
	start := time.Now()
	if !c.allow(start, h.cfg.MessageRate, h.cfg.MessageBurst) {
		tracker.Count(h.counts, counters.WS, counters.Invalid, tracker.RateLimited)
		return errRate
	}
	return h.handle(c, msg, start)
}

// work is the scratch space of one message, pooled so that idle
// connections hold none of it.
type work struct {
	start   time.Time // when the message was read; zero once its time is recorded
	req     Request
	ann     tracker.AnnounceRequest
	out     []byte
	targets []target
	files   []ScrapeFile
}

var workPool = sync.Pool{New: func() any { return new(work) }}

// reply sends w.out to c. The message's response time ends as the reply
// is handed to the kernel, before the write: on loopback the write also
// runs the client's side (delivery, wake-up), which is not herald's time.
func (h *Handler) reply(c *conn, w *work) error {
	h.observe(w)
	return c.send(w.out)
}

// observe records the response time of w's message, once; it is also its
// service time (Config.Counters).
func (h *Handler) observe(w *work) {
	if !w.start.IsZero() {
		d := time.Since(w.start)
		h.counts.ObserveRequest(counters.WS, d, d) // response = service: from the read
		w.start = time.Time{}
	}
}

// handle answers one message, read at start. Its error is a write
// failure, which ends the connection; client mistakes are answered and the
// connection stays.
func (h *Handler) handle(c *conn, msg []byte, start time.Time) error {
	w := workPool.Get().(*work)
	w.start = start
	defer func() {
		h.observe(w)                      // a message without a reply to its sender
		clear(w.targets[:cap(w.targets)]) // drop conn pointers
		w.targets = w.targets[:0]
		w.out = w.out[:0]
		w.req.Answer = nil
		clear(w.req.Offers)
		workPool.Put(w)
	}()
	r := &w.req
	err := ParseRequest(msg, h.cfg.MaxOffers, h.cfg.MaxScrapeHashes, r)
	if err != nil {
		tracker.Count(h.counts, counters.WS, actionOf(r), tracker.Malformed)
		// The action and info hash go back only when they were read, so
		// that the client can route the failure to its torrent.
		var hash *swarm.InfoHash
		if r.Action == ActionAnnounce && err != failInfoHash {
			hash = &r.InfoHash
		}
		action := r.Action
		if hash == nil && action == ActionAnnounce {
			action = 0
		}
		w.out = AppendFailure(w.out, action, hash, err.Error())
		return h.reply(c, w)
	}
	if r.Action == ActionScrape {
		return h.scrape(c, w)
	}
	// An announce, with offers or with an answer, is the same
	// swarm.Announce as over HTTP and UDP, and goes through the same rules.
	// Offers bound the peers picked: each gets one.
	a := &w.ann
	*a = tracker.AnnounceRequest{
		Announce: swarm.Announce{
			InfoHash:   r.InfoHash,
			PeerID:     r.PeerID,
			Addr:       c.from,
			Left:       r.Left,
			Uploaded:   r.Uploaded,
			Downloaded: r.Downloaded,
			Event:      r.Event,
			NumWant:    r.NumWant,
		},
		AccessKey: c.key,
	}
	if ce := h.tracker.Prepare(a, time.Now()); ce != nil {
		return h.refuse(c, w, actionOf(r), ce)
	}
	if r.Answer != nil {
		return h.answer(c, w)
	}
	return h.announce(c, w)
}

// refuse answers an announce (action a: with offers or with an answer)
// with a refusal, the tracker's text under the announce's info hash.
func (h *Handler) refuse(c *conn, w *work, a counters.Action, ce *tracker.ClientError) error {
	tracker.Count(h.counts, counters.WS, a, ce.Reason)
	w.out = AppendFailure(w.out, ActionAnnounce, &w.req.InfoHash, ce.Text)
	return h.reply(c, w)
}

func (h *Handler) announce(c *conn, w *work) error {
	r, a := &w.req, &w.ann
	n := min(len(r.Offers), a.NumWant)
	if cap(w.targets) < n {
		w.targets = make([]target, 0, n)
	}
	targets, counts, ce := h.swarms.announce(c, &a.Announce, limits{
		maxTorrents:      h.cfg.MaxTorrents,
		maxPeers:         h.cfg.MaxPeers,
		maxSwarmsPerConn: h.cfg.MaxSwarmsPerConn,
	}, w.targets[:0:n])
	w.targets = targets
	if ce != nil {
		return h.refuse(c, w, counters.Announce, ce)
	}
	h.tracker.Record(a, time.Now())
	h.counts.Request(counters.WS, counters.Announce, counters.OK)
	interval, _ := h.tracker.Intervals()
	w.out = AppendAnnounceReply(w.out, &r.InfoHash, counts, int(interval))
	if err := h.reply(c, w); err != nil {
		return err
	}
	for i, t := range targets {
		o := &r.Offers[i]
		if t.conn == nil {
			if h.cfg.Cluster.SendOffer(t.node, r.InfoHash, r.PeerID, t.id, o.ID, o.SDP) {
				h.counts.Event(counters.WS, counters.OfferRelayed)
			}
			continue
		}
		t.conn.expectAnswer(pendingOffer{infoHash: r.InfoHash, id: o.ID, from: r.PeerID, to: t.id})
		w.out = AppendOffer(w.out[:0], &r.InfoHash, &r.PeerID, o)
		// A failed write has closed the receiver, whose own goroutine
		// cleans it up; the sender is not at fault.
		if t.conn.relay(w.out) {
			h.counts.Event(counters.WS, counters.OfferRelayed)
		}
	}
	return nil
}

// answer relays an answer to the peer whose offer it answers, and only if
// that offer was relayed to this connection, under the peer ids it
// names: nobody can push answers to arbitrary peers.
func (h *Handler) answer(c *conn, w *work) error {
	r := &w.req
	node, ok := c.takeAnswered(pendingOffer{infoHash: r.InfoHash, id: r.OfferID, from: r.ToPeerID, to: r.PeerID})
	if !ok {
		return h.refuse(c, w, counters.Answer, tracker.UnknownOffer.Err())
	}
	if node != 0 {
		// The offerer is on another instance; whether it is still there
		// is for that instance to find.
		h.counts.Request(counters.WS, counters.Answer, counters.OK)
		if h.cfg.Cluster.SendAnswer(node, r.InfoHash, r.PeerID, r.ToPeerID, r.OfferID, r.Answer) {
			h.counts.Event(counters.WS, counters.AnswerRelayed)
		}
		return nil
	}
	to := h.swarms.lookup(&r.InfoHash, &r.ToPeerID)
	if to == nil || to.isClosed() {
		return h.refuse(c, w, counters.Answer, tracker.OffererGone.Err())
	}
	h.counts.Request(counters.WS, counters.Answer, counters.OK)
	w.out = AppendAnswer(w.out, &r.InfoHash, &r.PeerID, &r.OfferID, r.Answer)
	if to.relay(w.out) {
		h.counts.Event(counters.WS, counters.AnswerRelayed)
	}
	return nil
}

// scrape answers a scrape; a torrent the access list refuses reads as an
// unknown one, all zeros. Over the rate limit, the scrape is refused.
func (h *Handler) scrape(c *conn, w *work) error {
	r := &w.req
	if ce := h.tracker.AdmitScrape(c.from.Addr(), &c.key, time.Now()); ce != nil {
		tracker.Count(h.counts, counters.WS, counters.Scrape, ce.Reason)
		w.out = AppendFailure(w.out, ActionScrape, nil, ce.Text)
		return h.reply(c, w)
	}
	h.counts.Request(counters.WS, counters.Scrape, counters.OK)
	w.files = w.files[:0]
	for _, ih := range r.ScrapeHashes {
		f := ScrapeFile{InfoHash: ih}
		if h.tracker.Allowed(ih) {
			f.Counts = h.swarms.scrape(&ih)
		}
		w.files = append(w.files, f)
	}
	interval, _ := h.tracker.Intervals()
	w.out = AppendScrapeReply(w.out, w.files, int(interval))
	return h.reply(c, w)
}

// actionOf is the counters' action of a parsed (or partly parsed) message.
func actionOf(r *Request) counters.Action {
	switch {
	case r.Action == ActionScrape:
		return counters.Scrape
	case r.Action != ActionAnnounce:
		return counters.Invalid
	case r.Answer != nil:
		return counters.Answer
	}
	return counters.Announce
}
