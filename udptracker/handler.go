package udptracker

import (
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"strings"
	"time"

	"herald/swarm"
)

// Texts of the error packets the server sends. They are ASCII, so the bytes
// of an error packet where a request has its action field (offset 8) never
// read as 0, 1 or 2: a tracker that gets our error packet drops it as an
// unknown action instead of answering, and two trackers cannot be made to
// bounce error packets at each other.
const (
	msgBadConnectionID = "connection id mismatch or expired"
	msgRefused         = "Requested download is not authorized for use with this tracker."
	msgShortAnnounce   = "announce shorter than 98 bytes"
	msgScrapeLength    = "scrape is not 16 + 20*n bytes"
	msgTooManyHashes   = "too many info hashes (at most 74 per scrape)"
	msgInternal        = "internal server error"
	msgRateLimited     = "too many requests from your address; slow down"
)

// handler turns one request into one reply. Each socket's reader owns one,
// and with it the scratch space every request reuses: nothing on the path
// from packet to reply allocates.
type handler struct {
	cfg    *Config // defaults applied
	ids    *connIDs
	counts *counters
	log    *slog.Logger

	announce AnnounceRequest
	scrape   ScrapeRequest
	toStore  swarm.Announce
	peers    []byte         // capacity for the larger family's peer cap
	torrents []swarm.Counts // capacity MaxScrapeHashes
}

func newHandler(cfg *Config, ids *connIDs, counts *counters) *handler {
	return &handler{
		cfg:      cfg,
		ids:      ids,
		counts:   counts,
		log:      cfg.Logger,
		announce: AnnounceRequest{URLData: make([]byte, 0, maxPacketLen)},
		scrape:   ScrapeRequest{InfoHashes: make([]swarm.InfoHash, 0, MaxScrapeHashes)},
		peers:    make([]byte, 0, max(cfg.MaxPeers4*swarm.PeerLen4, cfg.MaxPeers6*swarm.PeerLen6)),
		torrents: make([]swarm.Counts, 0, MaxScrapeHashes),
	}
}

// maxReplyLen is the largest reply the handler builds under cfg.
func maxReplyLen(cfg *Config) int {
	return max(
		announceResponseHeaderLen+max(cfg.MaxPeers4*swarm.PeerLen4, cfg.MaxPeers6*swarm.PeerLen6),
		responseHeaderLen+MaxScrapeHashes*scrapeEntryLen,
		responseHeaderLen+len(msgRefused),
		connectLen,
	)
}

// serve answers the request pkt from the client at from (IPv4 unmapped)
// at Unix time now (seconds). It appends the reply to dst and returns it;
// dst comes back unchanged when the packet gets no answer.
func (h *handler) serve(dst, pkt []byte, from netip.AddrPort, now int64) []byte {
	hdr, err := ParseHeader(pkt)
	if err != nil {
		h.counts.dropped.Add(1) // a runt has no transaction id to answer with
		return dst
	}
	switch hdr.Action {
	case ActionConnect:
		if hdr.ConnectionID != ProtocolID {
			h.counts.dropped.Add(1) // not BEP 15 traffic
			return dst
		}
		if h.cfg.Admit != nil && !h.cfg.Admit(from.Addr(), time.Unix(now, 0)) {
			h.counts.rateLimited.Add(1) // dropped: answering would feed a spoofed flood
			return dst
		}
		h.counts.connects.Add(1)
		return AppendConnectResponse(dst, ConnectResponse{TransactionID: hdr.TransactionID, ConnectionID: h.ids.issue(from, now)})
	case ActionAnnounce, ActionScrape:
	default:
		// Unknown actions, error packets included, are dropped: answering
		// them would let one tracker's replies keep another one talking.
		h.counts.dropped.Add(1)
		return dst
	}
	if !h.ids.valid(hdr.ConnectionID, from, now) {
		h.counts.badConnectionID.Add(1)
		// The source address is unproven here, so the reply must not be
		// bigger than the request (no amplification): cut the message.
		msg := msgBadConnectionID[:min(len(msgBadConnectionID), len(pkt)-responseHeaderLen)]
		return AppendErrorResponse(dst, ErrorResponse{TransactionID: hdr.TransactionID, Message: msg})
	}
	if h.cfg.Admit != nil && !h.cfg.Admit(from.Addr(), time.Unix(now, 0)) {
		h.counts.rateLimited.Add(1)
		return AppendErrorResponse(dst, ErrorResponse{TransactionID: hdr.TransactionID, Message: msgRateLimited})
	}
	if hdr.Action == ActionAnnounce {
		return h.serveAnnounce(dst, pkt, hdr.TransactionID, from)
	}
	return h.serveScrape(dst, pkt, hdr.TransactionID)
}

func (h *handler) serveAnnounce(dst, pkt []byte, tid uint32, from netip.AddrPort) []byte {
	r := &h.announce
	if err := ParseAnnounceRequest(pkt, r); err != nil {
		h.counts.malformed.Add(1)
		return AppendErrorResponse(dst, ErrorResponse{TransactionID: tid, Message: msgShortAnnounce})
	}
	if h.cfg.Allowed != nil && !h.cfg.Allowed(r.InfoHash) {
		h.counts.refused.Add(1)
		return AppendErrorResponse(dst, ErrorResponse{TransactionID: tid, Message: msgRefused})
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
	if numWant <= 0 { // -1 (0xFFFFFFFF) is BEP 15's "default"; 0 as well
		numWant = h.cfg.DefaultNumWant
	}
	ip := from.Addr()
	if h.cfg.AllowIPField && r.IP.IsValid() {
		ip = r.IP
	}
	a := &h.toStore
	*a = swarm.Announce{
		InfoHash:   r.InfoHash,
		PeerID:     r.PeerID,
		Addr:       netip.AddrPortFrom(ip, r.Port),
		Left:       r.Left,
		Uploaded:   r.Uploaded,
		Downloaded: r.Downloaded,
		Event:      r.Event,
		NumWant:    min(numWant, maxPeers),
		Key:        r.Key,
	}
	peers, counts, err := h.cfg.Store.Announce(a, family, dstPeers)
	if err != nil {
		h.counts.storeErrs.Add(1)
		return AppendErrorResponse(dst, ErrorResponse{TransactionID: tid, Message: h.storeErrorText(err)})
	}
	h.counts.announces.Add(1)
	resp := AnnounceResponse{
		TransactionID: tid,
		Interval:      h.interval(),
		Leechers:      counts.Leechers,
		Seeders:       counts.Seeders,
		Peers:         peers.V4,
	}
	if family == swarm.FamilyV6 {
		resp.Peers = peers.V6
	}
	return AppendAnnounceResponse(dst, &resp)
}

// storeErrorText is the client-visible text of a store error: the store's
// own words for the errors it documents, a generic text (and a log line)
// for anything else.
func (h *handler) storeErrorText(err error) string {
	switch {
	case errors.Is(err, swarm.ErrTorrentLimit), errors.Is(err, swarm.ErrPeerLimit), errors.Is(err, swarm.ErrInvalidAddr):
		return strings.TrimPrefix(err.Error(), "swarm: ")
	}
	h.log.Error("udp tracker: store announce failed", "err", err)
	return msgInternal
}

// interval is Config.Interval plus or minus up to IntervalJitter, drawn per
// reply as opentracker does, so that clients started together drift apart.
func (h *handler) interval() uint32 {
	base, jitter := h.cfg.intervalSecs, h.cfg.jitterSecs
	if jitter == 0 {
		return base
	}
	return base - jitter + rand.Uint32N(2*jitter+1)
}

func (h *handler) serveScrape(dst, pkt []byte, tid uint32) []byte {
	r := &h.scrape
	switch err := ParseScrapeRequest(pkt, r); {
	case errors.Is(err, ErrTooManyHashes):
		h.counts.malformed.Add(1)
		return AppendErrorResponse(dst, ErrorResponse{TransactionID: tid, Message: msgTooManyHashes})
	case err != nil:
		h.counts.malformed.Add(1)
		return AppendErrorResponse(dst, ErrorResponse{TransactionID: tid, Message: msgScrapeLength})
	}
	h.torrents = h.torrents[:0]
	for _, ih := range r.InfoHashes {
		c, _ := h.cfg.Store.Scrape(ih) // an unknown torrent is all zeros
		h.torrents = append(h.torrents, c)
	}
	h.counts.scrapes.Add(1)
	return AppendScrapeResponse(dst, &ScrapeResponse{TransactionID: tid, Torrents: h.torrents})
}
