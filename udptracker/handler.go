package udptracker

import (
	"errors"
	"net/netip"
	"time"

	"herald/access"
	"herald/counters"
	"herald/swarm"
	"herald/tracker"
)

// The errors of requests the handler cannot parse; every other refusal is
// a tracker.Reason with the tracker's text. Texts are ASCII, so the bytes
// of an error packet where a request has its action field (offset 8) never
// read as 0, 1 or 2: a tracker that gets our error packet drops it as an
// unknown action instead of answering, and two trackers cannot be made to
// bounce error packets at each other.
var (
	errShortAnnounce = tracker.NewMalformed("announce shorter than 98 bytes")
	errScrapeLength  = tracker.NewMalformed("scrape is not 16 + 20*n bytes")
	errTooManyHashes = tracker.NewMalformed("too many info hashes (at most 74 per scrape)")
)

// handler turns one request into one reply. Each socket's reader owns one,
// and with it the scratch space every request reuses: nothing on the path
// from packet to reply allocates.
type handler struct {
	cfg      *Config // defaults applied
	tracker  *tracker.Tracker
	connects *tracker.ConnectWindow
	ids      *connIDs
	counts   *counters.Set

	announce AnnounceRequest
	scrape   ScrapeRequest
	toStore  tracker.AnnounceRequest
	reply    tracker.AnnounceReply
	peers    []byte         // capacity for the larger family's peer cap
	torrents []swarm.Counts // capacity MaxScrapeHashes
}

func newHandler(cfg *Config, ids *connIDs) *handler {
	return &handler{
		cfg:      cfg,
		tracker:  cfg.Tracker,
		connects: cfg.Tracker.ConnectWindow(cfg.Sockets),
		ids:      ids,
		counts:   cfg.Counters,
		announce: AnnounceRequest{URLData: make([]byte, 0, maxPacketLen)},
		scrape:   ScrapeRequest{InfoHashes: make([]swarm.InfoHash, 0, MaxScrapeHashes)},
		peers:    make([]byte, 0, max(cfg.MaxPeers4*swarm.PeerLen4, cfg.MaxPeers6*swarm.PeerLen6)),
		torrents: make([]swarm.Counts, 0, MaxScrapeHashes),
	}
}

// maxReplyLen is the largest reply the handler builds under cfg. Error
// packets, whose texts are the tracker's short sentences, are all shorter
// than the largest scrape reply.
func maxReplyLen(cfg *Config) int {
	return max(
		announceResponseHeaderLen+max(cfg.MaxPeers4*swarm.PeerLen4, cfg.MaxPeers6*swarm.PeerLen6),
		responseHeaderLen+MaxScrapeHashes*scrapeEntryLen,
		connectLen,
	)
}

// serve answers the request pkt from the client at from (IPv4 unmapped)
// at Unix time now (seconds). It appends the reply to dst and returns it;
// dst comes back unchanged when the packet gets no answer.
func (h *handler) serve(dst, pkt []byte, from netip.AddrPort, now int64) []byte {
	hdr, err := ParseHeader(pkt)
	if err != nil {
		h.drop() // a runt has no transaction id to answer with
		return dst
	}
	switch hdr.Action {
	case ActionConnect:
		if hdr.ConnectionID != ProtocolID {
			h.drop() // not BEP 15 traffic
			return dst
		}
		// Not the client's rate limit: its address is unproven (see
		// tracker.ConnectWindow).
		if !h.connects.Admit(now) {
			// Dropped: answering would feed a spoofed flood.
			tracker.Count(h.counts, counters.UDP, counters.Connect, tracker.RateLimited)
			return dst
		}
		h.counts.Request(counters.UDP, counters.Connect, counters.OK)
		return AppendConnectResponse(dst, ConnectResponse{TransactionID: hdr.TransactionID, ConnectionID: h.ids.issue(from, now)})
	case ActionAnnounce, ActionScrape:
	default:
		// Unknown actions, error packets included, are dropped: answering
		// them would let one tracker's replies keep another one talking.
		h.drop()
		return dst
	}
	if !h.ids.valid(hdr.ConnectionID, from, now) {
		tracker.Count(h.counts, counters.UDP, actionOf(hdr.Action), tracker.BadConnectionID)
		h.tracker.StrikeBadConnectionID(from.Addr(), time.Unix(now, 0))
		// The source address is unproven here, so the reply must not be
		// bigger than the request (no amplification): cut the message.
		msg := tracker.BadConnectionID.Text()
		msg = msg[:min(len(msg), len(pkt)-responseHeaderLen)]
		return AppendErrorResponse(dst, ErrorResponse{TransactionID: hdr.TransactionID, Message: msg})
	}
	if hdr.Action == ActionAnnounce {
		return h.serveAnnounce(dst, pkt, hdr.TransactionID, from, now)
	}
	return h.serveScrape(dst, pkt, hdr.TransactionID, from, now)
}

// refuse counts a refusal of a request for action a and appends its
// error packet.
func (h *handler) refuse(dst []byte, tid uint32, a counters.Action, ce *tracker.ClientError) []byte {
	tracker.Count(h.counts, counters.UDP, a, ce.Reason)
	return AppendErrorResponse(dst, ErrorResponse{TransactionID: tid, Message: ce.Text})
}

func (h *handler) serveAnnounce(dst, pkt []byte, tid uint32, from netip.AddrPort, now int64) []byte {
	r := &h.announce
	if err := ParseAnnounceRequest(pkt, r); err != nil {
		return h.refuse(dst, tid, counters.Announce, errShortAnnounce)
	}
	// Peers of the requester's own family only: a client talking IPv4 reads
	// 6-byte entries, one talking IPv6 18-byte entries (BEP 15).
	family, maxPeers := swarm.FamilyV4, h.cfg.MaxPeers4
	dstPeers := swarm.Peers{V4: h.peers[:0]}
	if from.Addr().Is6() {
		family, maxPeers = swarm.FamilyV6, h.cfg.MaxPeers6
		dstPeers = swarm.Peers{V6: h.peers[:0]}
	}
	numWant := int(r.NumWant)
	if numWant == 0 { // -1 (0xFFFFFFFF) is BEP 15's "default"; 0 as well
		numWant = -1
	}
	a := &h.toStore
	*a = tracker.AnnounceRequest{
		Announce: swarm.Announce{
			InfoHash:   r.InfoHash,
			PeerID:     r.PeerID,
			Addr:       netip.AddrPortFrom(from.Addr(), r.Port),
			Left:       r.Left,
			Uploaded:   r.Uploaded,
			Downloaded: r.Downloaded,
			Event:      r.Event,
			NumWant:    numWant,
			Key:        r.Key,
		},
		StatedIP: r.IP,
		Family:   family,
		MaxPeers: maxPeers,
	}
	a.AccessKey, _, _ = access.KeyFromPath(r.Path())
	reply := &h.reply
	if ce := h.tracker.Announce(a, time.Unix(now, 0), dstPeers, reply); ce != nil {
		return h.refuse(dst, tid, counters.Announce, ce)
	}
	h.counts.Request(counters.UDP, counters.Announce, counters.OK)
	resp := AnnounceResponse{
		TransactionID: tid,
		Interval:      reply.Interval,
		Leechers:      reply.Counts.Leechers,
		Seeders:       reply.Counts.Seeders,
		Peers:         reply.Peers.V4,
	}
	if family == swarm.FamilyV6 {
		resp.Peers = reply.Peers.V6
	}
	return AppendAnnounceResponse(dst, &resp)
}

func (h *handler) serveScrape(dst, pkt []byte, tid uint32, from netip.AddrPort, now int64) []byte {
	r := &h.scrape
	switch err := ParseScrapeRequest(pkt, r); {
	case errors.Is(err, ErrTooManyHashes):
		return h.refuse(dst, tid, counters.Scrape, errTooManyHashes)
	case err != nil:
		return h.refuse(dst, tid, counters.Scrape, errScrapeLength)
	}
	// A BEP 15 scrape has no room for BEP 41 options, so it carries no
	// key: with keys on, UDP scrapes are refused.
	if ce := h.tracker.AdmitScrape(from.Addr(), &access.Key{}, time.Unix(now, 0)); ce != nil {
		return h.refuse(dst, tid, counters.Scrape, ce)
	}
	h.torrents = h.torrents[:0]
	for _, ih := range r.InfoHashes {
		c, _ := h.tracker.ScrapeCounts(ih) // an unknown or refused torrent is all zeros
		h.torrents = append(h.torrents, c)
	}
	h.counts.Request(counters.UDP, counters.Scrape, counters.OK)
	return AppendScrapeResponse(dst, &ScrapeResponse{TransactionID: tid, Torrents: h.torrents})
}

// drop counts a datagram left unanswered: a runt, not BEP 15, or an
// unknown action.
func (h *handler) drop() {
	h.counts.Request(counters.UDP, counters.Invalid, counters.Dropped)
	h.counts.Fault(counters.UDP, counters.Runt)
}

// actionOf is the counters' action for a header's announce or scrape.
func actionOf(a Action) counters.Action {
	if a == ActionAnnounce {
		return counters.Announce
	}
	return counters.Scrape
}
