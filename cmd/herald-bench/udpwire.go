package main

import "encoding/binary"

// BEP 15 wire format, client side: the generator appends requests and checks
// replies. Offsets and sizes are BEP 15's.
const (
	udpProtocolID = 0x41727101980

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
	dst = binary.BigEndian.AppendUint64(dst, udpProtocolID)
	dst = binary.BigEndian.AppendUint32(dst, udpActionConnect)
	return binary.BigEndian.AppendUint32(dst, tid)
}

// udpAnnounce holds the fields of an announce request the generator varies.
type udpAnnounce struct {
	connID   uint64
	tid      uint32
	infoHash [20]byte
	peerID   [20]byte
	left     uint64
	event    uint32
	key      uint32
	numWant  uint32
	port     uint16
}

// appendAnnounce appends a 98-byte announce request. The IP field is 0: the
// tracker uses the source address.
func appendAnnounce(dst []byte, a *udpAnnounce) []byte {
	dst = binary.BigEndian.AppendUint64(dst, a.connID)
	dst = binary.BigEndian.AppendUint32(dst, udpActionAnnounce)
	dst = binary.BigEndian.AppendUint32(dst, a.tid)
	dst = append(dst, a.infoHash[:]...)
	dst = append(dst, a.peerID[:]...)
	dst = binary.BigEndian.AppendUint64(dst, 0) // downloaded
	dst = binary.BigEndian.AppendUint64(dst, a.left)
	dst = binary.BigEndian.AppendUint64(dst, 0) // uploaded
	dst = binary.BigEndian.AppendUint32(dst, a.event)
	dst = binary.BigEndian.AppendUint32(dst, 0) // IP address
	dst = binary.BigEndian.AppendUint32(dst, a.key)
	dst = binary.BigEndian.AppendUint32(dst, a.numWant)
	return binary.BigEndian.AppendUint16(dst, a.port)
}

// appendScrapeHeader appends a scrape request's header; the caller appends
// the info hashes.
func appendScrapeHeader(dst []byte, connID uint64, tid uint32) []byte {
	dst = binary.BigEndian.AppendUint64(dst, connID)
	dst = binary.BigEndian.AppendUint32(dst, udpActionScrape)
	return binary.BigEndian.AppendUint32(dst, tid)
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
		if len(reply) != udpConnectLen {
			return errSize, 0
		}
		return errNone, binary.BigEndian.Uint64(reply[8:])
	case udpActionAnnounce:
		// opentracker answers a torrent missing from its whitelist with
		// the bare 8-byte header; it is caught here.
		if len(reply) < udpAnnounceHeaderLen || (len(reply)-udpAnnounceHeaderLen)%peerLen != 0 {
			return errSize, 0
		}
		interval := binary.BigEndian.Uint32(reply[8:])
		leechers := binary.BigEndian.Uint32(reply[12:])
		seeders := binary.BigEndian.Uint32(reply[16:])
		peers := (len(reply) - udpAnnounceHeaderLen) / peerLen
		if interval == 0 {
			return errInterval, 0
		}
		if peers > int(want.numWant) || uint64(peers) > uint64(leechers)+uint64(seeders) {
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
