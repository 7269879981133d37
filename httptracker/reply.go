package httptracker

import (
	"encoding/binary"
	"net/netip"
	"strconv"

	"herald/bencode"
	"herald/swarm"
)

// This file appends the bencoded bodies of replies (BEP 3, BEP 23, BEP 7,
// BEP 48). Dictionary keys are written in sorted order by construction;
// the tests decode every reply with the strict decoder to keep it so.

// announceReply is what an announce reply says besides its peers.
type announceReply struct {
	counts      swarm.Counts
	interval    int64 // seconds
	minInterval int64 // seconds
}

// appendAnnounce appends a compact announce reply: "peers" (BEP 23, always
// present, empty or not: some clients fail on a reply without it) and
// "peers6" (BEP 7, only when there are IPv6 peers).
func appendAnnounce(dst []byte, r *announceReply, peers swarm.Peers) []byte {
	dst = appendAnnounceHead(dst, r)
	dst = append(dst, "5:peers"...)
	dst = bencode.AppendBytes(dst, peers.V4)
	if len(peers.V6) > 0 {
		dst = bencode.AppendKeyBytes(dst, "peers6", peers.V6)
	}
	return bencode.AppendEnd(dst)
}

// appendAnnounceDicts appends the reply for compact=0: BEP 3's original
// model, "peers" as a list of dictionaries. The store keeps no peer ids, so
// each dictionary has only "ip" and "port", the form BEP 3 clients get
// with no_peer_id=1. IPv6 peers are in the same list (their "ip" is the
// textual address); there is no "peers6" here, that key is compact-only.
func appendAnnounceDicts(dst []byte, r *announceReply, peers swarm.Peers) []byte {
	dst = appendAnnounceHead(dst, r)
	dst = bencode.AppendString(dst, "peers")
	dst = bencode.AppendListStart(dst)
	for p := peers.V4; len(p) >= swarm.PeerLen4; p = p[swarm.PeerLen4:] {
		dst = appendPeerDict(dst, netip.AddrFrom4([4]byte(p)), binary.BigEndian.Uint16(p[4:]))
	}
	for p := peers.V6; len(p) >= swarm.PeerLen6; p = p[swarm.PeerLen6:] {
		dst = appendPeerDict(dst, netip.AddrFrom16([16]byte(p)), binary.BigEndian.Uint16(p[16:]))
	}
	dst = bencode.AppendEnd(dst)
	return bencode.AppendEnd(dst)
}

// appendAnnounceHead opens an announce reply's dictionary and appends its
// entries before the peers. The keys are fixed: they are written whole,
// already encoded, and only the numbers are formatted.
func appendAnnounceHead(dst []byte, r *announceReply) []byte {
	dst = appendCounts(dst, r.counts)
	dst = append(dst, "e8:intervali"...)
	dst = strconv.AppendInt(dst, r.interval, 10)
	dst = append(dst, "e12:min intervali"...)
	dst = strconv.AppendInt(dst, r.minInterval, 10)
	return append(dst, 'e')
}

// maxAddrText is the longest textual IPv6 address netip writes.
const maxAddrText = len("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255")

func appendPeerDict(dst []byte, addr netip.Addr, port uint16) []byte {
	dst = bencode.AppendDictStart(dst)
	var text [maxAddrText]byte
	dst = bencode.AppendKeyBytes(dst, "ip", addr.AppendTo(text[:0]))
	dst = bencode.AppendKeyInt(dst, "port", int64(port))
	return bencode.AppendEnd(dst)
}

// appendFailure appends a reply carrying only a failure reason (BEP 3).
func appendFailure(dst []byte, reason string) []byte {
	dst = bencode.AppendDictStart(dst)
	dst = bencode.AppendKeyString(dst, "failure reason", reason)
	return bencode.AppendEnd(dst)
}

// Scrape replies are "d5:filesd" + one appendScrapeFile per hash, in
// increasing hash order + "ee".
const (
	scrapeHead = "d5:filesd"
	scrapeTail = "ee"
)

func appendScrapeFile(dst []byte, h *swarm.InfoHash, c swarm.Counts) []byte {
	dst = append(dst, "20:"...) // len(swarm.InfoHash), checked below
	dst = append(dst, h[:]...)
	return append(appendCounts(dst, c), "ee"...)
}

// appendCounts opens a dictionary and appends a swarm's counts to it, the
// last number not yet closed: the start of both an announce reply and a
// scrape reply's entry.
func appendCounts(dst []byte, c swarm.Counts) []byte {
	dst = append(dst, "d8:completei"...)
	dst = strconv.AppendInt(dst, int64(c.Seeders), 10)
	dst = append(dst, "e10:downloadedi"...)
	dst = strconv.AppendInt(dst, int64(c.Completed), 10)
	dst = append(dst, "e10:incompletei"...)
	return strconv.AppendInt(dst, int64(c.Leechers), 10)
}

// The scrape reply's "20:" is an info hash's length.
var _ [len(swarm.InfoHash{}) - 20]struct{}
var _ [20 - len(swarm.InfoHash{})]struct{}
