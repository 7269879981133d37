package main

import (
	"encoding/binary"

	"herald/udptracker"
)

// BEP 15 on the client side. Requests are encoded by udptracker's codec, the
// one the tracker parses with; the generator adds the checks of a reply
// against the request it answers. Numbers and sizes are BEP 15's.
const (
	udpActionConnect  = 0
	udpActionAnnounce = 1
	udpActionScrape   = 2
	udpActionError    = 3

	udpEventNone      = 0
	udpEventCompleted = 1
	udpEventStarted   = 2
	udpEventStopped   = 3

	udpConnectLen        = 16
	udpAnnounceLen       = 98
	udpAnnounceHeaderLen = 20 // reply: action, tid, interval, leechers, seeders
	udpScrapeHeaderLen   = 8  // reply: action, tid
	udpScrapeEntryLen    = 12 // reply: seeders, completed, leechers
)

// appendConnect appends a connect request.
func appendConnect(dst []byte, tid uint32) []byte {
	return udptracker.AppendConnectRequest(dst, udptracker.ConnectRequest{TransactionID: tid})
}

// appendScrapeHeader appends a scrape request's header; the caller appends
// the info hashes.
func appendScrapeHeader(dst []byte, connID uint64, tid uint32) []byte {
	return udptracker.AppendScrapeRequest(dst, &udptracker.ScrapeRequest{ConnectionID: connID, TransactionID: tid})
}

// replyTID returns a reply's transaction id, or false if the reply is too
// short to carry one.
func replyTID(reply []byte) (uint32, bool) {
	if len(reply) < 8 {
		return 0, false
	}
	return binary.BigEndian.Uint32(reply[4:8]), true
}

// udpExpect describes the request a reply answers, enough to validate it.
type udpExpect struct {
	action  uint8
	numWant uint16 // announce
	hashes  uint8  // scrape
}

// checkUDPReply validates a reply whose transaction id matched a request
// described by want. peerLen is 6 on an IPv4 socket, 18 on IPv6. It returns
// errNone, or the kind of error. For a connect it also returns the
// connection id.
func checkUDPReply(reply []byte, want udpExpect, peerLen int) (errKind, uint64) {
	if len(reply) < 8 {
		return errShort, 0
	}
	action := binary.BigEndian.Uint32(reply)
	if action == udpActionError {
		return errTrackerError, 0
	}
	if action != uint32(want.action) {
		return errAction, 0
	}
	switch want.action {
	case udpActionConnect:
		r, err := udptracker.ParseConnectResponse(reply)
		if err != nil || len(reply) != udpConnectLen {
			return errSize, 0
		}
		return errNone, r.ConnectionID
	case udpActionAnnounce:
		// opentracker answers a torrent missing from its whitelist with
		// the bare 8-byte header; it is caught here.
		var r udptracker.AnnounceResponse
		if err := udptracker.ParseAnnounceResponse(reply, &r); err != nil || len(r.Peers)%peerLen != 0 {
			return errSize, 0
		}
		peers := len(r.Peers) / peerLen
		if r.Interval == 0 {
			return errInterval, 0
		}
		if peers > int(want.numWant) || uint64(peers) > uint64(r.Leechers)+uint64(r.Seeders) {
			return errPeerCount, 0
		}
		return errNone, 0
	case udpActionScrape:
		if len(reply) != udpScrapeHeaderLen+udpScrapeEntryLen*int(want.hashes) {
			return errSize, 0
		}
		return errNone, 0
	}
	return errAction, 0
}
