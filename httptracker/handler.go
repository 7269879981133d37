package httptracker

import (
	"bytes"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"herald/access"
	"herald/counters"
	"herald/swarm"
	"herald/tracker"
)

// Handler serves announces and scrapes over HTTP. Use it through Server,
// or mount it in another server with NewHandler.
type Handler struct {
	cfg     Config
	tracker *tracker.Tracker
	counts  *counters.Set
	// states recycles per-request buffers, so an announce allocates
	// nothing of its own in the steady state.
	states sync.Pool
	// fullScrapeSlots holds a token per running full scrape; nil when
	// full scrapes are off.
	fullScrapeSlots chan struct{}
	gzipWriters     sync.Pool
}

// requestState is the scratch space of one request.
type requestState struct {
	body   []byte
	peers  swarm.Peers
	ann    tracker.AnnounceRequest
	reply  tracker.AnnounceReply
	req    announceRequest
	hashes []swarm.InfoHash
}

// NewHandler checks cfg, fills in its defaults and returns a handler.
func NewHandler(cfg Config) (*Handler, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	h := &Handler{cfg: cfg, tracker: cfg.Tracker, counts: cfg.Counters}
	if cfg.MaxFullScrapes > 0 {
		h.fullScrapeSlots = make(chan struct{}, cfg.MaxFullScrapes)
	}
	h.states.New = func() any {
		return &requestState{
			body:   make([]byte, 0, 1024),
			peers:  swarm.Peers{V4: make([]byte, 0, swarm.PeerLen4*tracker.DefaultNumWant), V6: make([]byte, 0, swarm.PeerLen6*tracker.DefaultNumWant)},
			hashes: make([]swarm.InfoHash, cfg.MaxScrapeHashes),
		}
	}
	return h, nil
}

// Header values shared by every reply; net/http only reads them.
var (
	textPlain   = []string{"text/plain"}
	octetStream = []string{"application/octet-stream"}
	noSniff     = []string{"nosniff"}
)

// route is where a request goes.
type route uint8

const (
	routeNotFound route = iota
	routeRoot
	routeAnnounce
	routeScrape
	routeFullScrape
	routeStats
)

// routeOf routes a request for path (unescaped) the way opentracker does
// (see the package documentation); hasQuery is whether the target had a
// '?'. A first segment that is a key (/KEY/announce) is taken off and
// returned, zero when there is none. Both frontends, net/http and the fast
// path, route through it.
func (h *Handler) routeOf(path string, hasQuery bool) (route, access.Key) {
	if h.cfg.Stats != nil && h.isStatsPath(path) {
		return routeStats, access.Key{}
	}
	key, path, _ := access.KeyFromPath(path)
	return h.routeAfterKey(path, hasQuery), key
}

func (h *Handler) routeAfterKey(path string, hasQuery bool) route {
	path = strings.TrimLeft(path, "/")
	switch {
	case path == "":
		return routeRoot
	case path[0] == 'a':
		return routeAnnounce
	case path == "scrape" && !hasQuery && h.fullScrapeSlots != nil:
		return routeFullScrape
	case strings.HasPrefix(path, "sc"):
		return routeScrape
	}
	return routeNotFound
}

// ServeHTTP routes a request and answers it.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.cfg.ACMEChallenge != nil && strings.HasPrefix(r.URL.Path, acmeChallengePath) {
		h.cfg.ACMEChallenge.ServeHTTP(w, r)
		return
	}
	if h.cfg.WebSocket != nil && h.cfg.IsWebSocket(r) {
		h.cfg.WebSocket.ServeHTTP(w, h.forwarded(r))
		return
	}
	rt, key := h.routeOf(r.URL.Path, r.URL.RawQuery != "" || r.URL.ForceQuery)
	if rt == routeStats {
		addr, _ := h.ClientAddr(r)
		h.cfg.Stats(w, r, addr)
		return
	}
	if r.Method != http.MethodGet {
		h.invalid(counters.MethodNotAllowed)
		w.Header()["Allow"] = []string{http.MethodGet}
		writeText(w, http.StatusMethodNotAllowed, "only GET is served")
		return
	}
	switch rt {
	case routeRoot:
		if h.cfg.RedirectURL == "" {
			h.notFound(w)
			return
		}
		h.counts.Request(counters.HTTP, counters.Redirect, counters.OK)
		w.Header()["Location"] = []string{h.cfg.RedirectURL}
		w.WriteHeader(http.StatusFound)
	case routeAnnounce:
		start := time.Now()
		defer h.observe(start)
		h.announce(w, r, &key, start)
	case routeFullScrape:
		h.fullScrape(w, r, &key)
	case routeScrape:
		start := time.Now()
		defer h.observe(start)
		h.scrape(w, r, &key, start)
	default:
		h.notFound(w)
	}
}

// observe records a request net/http handed over at start: its response
// time and service time are the same (Config.Counters).
func (h *Handler) observe(start time.Time) {
	d := time.Since(start)
	h.counts.ObserveRequest(counters.HTTP, d, d)
}

// observeFast records a request of an event loop, woken at woke, whose
// head was parsed by began (Config.Counters).
func (h *Handler) observeFast(woke, began time.Time) {
	end := time.Now()
	h.counts.ObserveRequest(counters.HTTP, end.Sub(woke), end.Sub(began))
}

func (h *Handler) isStatsPath(p string) bool {
	p = strings.TrimLeft(p, "/")
	for _, sp := range h.cfg.StatsPaths {
		if p == sp || strings.HasSuffix(sp, "/") && strings.HasPrefix(p, sp) {
			return true
		}
	}
	return false
}

func (h *Handler) notFound(w http.ResponseWriter) {
	h.invalid(counters.NotFound)
	writeText(w, http.StatusNotFound, "not found")
}

// invalid counts a request for no action the tracker has.
func (h *Handler) invalid(why counters.Fault) {
	h.counts.Request(counters.HTTP, counters.Invalid, counters.Failure)
	h.counts.Fault(counters.HTTP, why)
}

// forwarded returns r as sent by its client as ClientAddr resolves it,
// for a handler that reads r.RemoteAddr (the WebSocket tracker charges its
// rate limit and per-client cap to it): behind a trusted proxy, without
// it, every client would be the proxy.
func (h *Handler) forwarded(r *http.Request) *http.Request {
	client, ok := h.ClientAddr(r)
	conn, err := netip.ParseAddrPort(r.RemoteAddr)
	if !ok || err != nil || client == conn.Addr().Unmap() {
		return r
	}
	r = r.Clone(r.Context())
	r.RemoteAddr = netip.AddrPortFrom(client, conn.Port()).String()
	return r
}

// ClientAddr returns the address of the client that sent r, the address the
// tracker hands out to other peers: the connection's address, or, from a
// trusted proxy, the client it forwarded for (see Config.TrustedProxies).
// Every path asks this one method, so stats access checks see the same
// address as announces.
func (h *Handler) ClientAddr(r *http.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	addr := ap.Addr().Unmap().WithZone("")
	if !h.trustedProxy(addr) {
		return addr, true
	}
	return h.forwardedClient(r.Header.Values(h.cfg.ProxyHeader))
}

// forwardedClient returns the client a trusted proxy forwarded for, given
// the values of Config.ProxyHeader, and false when it named none.
func (h *Handler) forwardedClient(values []string) (netip.Addr, bool) {
	// Walk from the nearest hop back, across repeated headers.
	for i := len(values) - 1; i >= 0; i-- {
		list := values[i]
		for list != "" {
			var item string
			if k := strings.LastIndexByte(list, ','); k >= 0 {
				list, item = list[:k], list[k+1:]
			} else {
				list, item = "", list
			}
			hop, ok := parseHop(item)
			if !ok {
				return netip.Addr{}, false // a garbled hop: trust nothing beyond it
			}
			if !h.trustedProxy(hop) {
				return hop, true
			}
		}
	}
	return netip.Addr{}, false
}

// parseHop reads one forwarded address: "ip", "ip:port" or "[v6]:port".
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	return netip.Addr{}, false
}

func (h *Handler) trustedProxy(a netip.Addr) bool {
	for _, p := range h.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (h *Handler) announce(w http.ResponseWriter, r *http.Request, key *access.Key, now time.Time) {
	st := h.states.Get().(*requestState)
	defer h.states.Put(st)
	addr, ok := h.ClientAddr(r)
	writeAnswer(w, st, h.answerAnnounce(st, r.URL.RawQuery, key, addr, ok, now))
}

// answerAnnounce answers an announce with query and the key of its path
// from the client at addr (ok false: its address is unusable), received
// at now (the clock read that starts its service time), into
// st.body: a bencoded reply, or with badRequest the text of a 400. Both
// frontends, net/http and the fast path, answer through it.
func (h *Handler) answerAnnounce(st *requestState, query string, key *access.Key, addr netip.Addr, ok bool, now time.Time) (badRequest bool) {
	if err := parseAnnounce(query, &st.req); err != nil {
		return h.answerError(st, err, counters.Announce)
	}
	if !ok {
		return h.answerError(st, tracker.UnknownClient.Err(), counters.Announce)
	}
	req := &st.req
	st.ann = tracker.AnnounceRequest{
		Announce: swarm.Announce{
			InfoHash:   req.infoHash,
			PeerID:     req.peerID,
			Addr:       netip.AddrPortFrom(addr, req.port),
			Left:       req.left,
			Uploaded:   req.uploaded,
			Downloaded: req.downloaded,
			Event:      req.event,
			NumWant:    req.numWant,
			Key:        req.key,
		},
		StatedIP:  req.ip,
		Also:      [2]netip.AddrPort{req.ipv4, req.ipv6},
		Family:    swarm.FamilyBoth,
		AccessKey: *key,
	}
	reply := &st.reply
	if ce := h.tracker.Announce(&st.ann, now, swarm.Peers{V4: st.peers.V4[:0], V6: st.peers.V6[:0]}, reply); ce != nil {
		return h.answerError(st, ce, counters.Announce)
	}
	st.peers = reply.Peers
	r := announceReply{counts: reply.Counts, interval: int64(reply.Interval), minInterval: int64(reply.MinInterval)}
	if req.compact {
		st.body = appendAnnounce(st.body[:0], &r, st.peers)
	} else {
		st.body = appendAnnounceDicts(st.body[:0], &r, st.peers)
	}
	h.counts.Request(counters.HTTP, counters.Announce, counters.OK)
	return false
}

func (h *Handler) scrape(w http.ResponseWriter, r *http.Request, key *access.Key, now time.Time) {
	st := h.states.Get().(*requestState)
	defer h.states.Put(st)
	addr, ok := h.ClientAddr(r)
	writeAnswer(w, st, h.answerScrape(st, r.URL.RawQuery, key, addr, ok, now))
}

// answerScrape is answerAnnounce for a scrape. A torrent the access list
// refuses is left out, as an unknown one.
func (h *Handler) answerScrape(st *requestState, query string, key *access.Key, addr netip.Addr, ok bool, now time.Time) (badRequest bool) {
	n, err := parseScrape(query, st.hashes)
	if err != nil {
		return h.answerError(st, err, counters.Scrape)
	}
	if !ok {
		return h.answerError(st, tracker.UnknownClient.Err(), counters.Scrape)
	}
	if ce := h.tracker.AdmitScrape(addr, key, now); ce != nil {
		return h.answerError(st, ce, counters.Scrape)
	}
	// Keys of the files dictionary must be sorted and unique (BEP 3).
	hashes := st.hashes[:n]
	slices.SortFunc(hashes, func(a, b swarm.InfoHash) int { return bytes.Compare(a[:], b[:]) })
	hashes = slices.Compact(hashes)
	body := append(st.body[:0], scrapeHead...)
	for i := range hashes {
		if c, ok := h.tracker.ScrapeCounts(hashes[i]); ok {
			body = appendScrapeFile(body, &hashes[i], c)
		}
	}
	st.body = append(body, scrapeTail...)
	h.counts.Request(counters.HTTP, counters.Scrape, counters.OK)
	return false
}

// answerError answers a refusal of a request for action: a 400 for a
// query that does not decode, a bencoded failure reason (HTTP 200) with
// the tracker's text for the rest.
func (h *Handler) answerError(st *requestState, err error, action counters.Action) (badRequest bool) {
	if m, ok := err.(malformed); ok {
		h.counts.Request(counters.HTTP, action, counters.Failure)
		h.counts.Fault(counters.HTTP, counters.BadRequest)
		st.body = append(append(st.body[:0], m...), '\n')
		return true
	}
	ce, _ := tracker.AsClientError(err)
	tracker.Count(h.counts, counters.HTTP, action, ce.Reason)
	st.body = appendFailure(st.body[:0], ce.Text)
	return false
}

// writeAnswer sends what answerAnnounce or answerScrape left in st.body.
func writeAnswer(w http.ResponseWriter, st *requestState, badRequest bool) {
	if !badRequest {
		writeBody(w, textPlain, st.body)
		return
	}
	hdr := w.Header()
	hdr["Content-Type"] = textPlain
	hdr["X-Content-Type-Options"] = noSniff
	w.WriteHeader(http.StatusBadRequest)
	w.Write(st.body)
}

// writeBody sends a 200 reply with a Content-Length, so small replies are
// never chunked.
func writeBody(w http.ResponseWriter, contentType []string, body []byte) {
	hdr := w.Header()
	hdr["Content-Type"] = contentType
	hdr["Content-Length"] = contentLength(len(body))
	w.Write(body)
}

// contentLength returns a Content-Length header value, without allocating
// for the sizes announce replies have.
func contentLength(n int) []string {
	if n < len(contentLengths) {
		return contentLengths[n]
	}
	return []string{strconv.Itoa(n)}
}

var contentLengths = func() (s [1 << 13][]string) {
	for i := range s {
		s[i] = []string{strconv.Itoa(i)}
	}
	return s
}()

func writeText(w http.ResponseWriter, status int, text string) {
	hdr := w.Header()
	hdr["Content-Type"] = textPlain
	hdr["X-Content-Type-Options"] = noSniff
	w.WriteHeader(status)
	w.Write([]byte(text + "\n"))
}
