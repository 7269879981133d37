package main

import (
	"encoding/binary"
	"testing"
)

// announceReply builds a BEP 15 announce reply with n peers of peerLen bytes.
func announceReply(tid, interval, leechers, seeders uint32, n, peerLen int) []byte {
	b := binary.BigEndian.AppendUint32(nil, udpActionAnnounce)
	b = binary.BigEndian.AppendUint32(b, tid)
	b = binary.BigEndian.AppendUint32(b, interval)
	b = binary.BigEndian.AppendUint32(b, leechers)
	b = binary.BigEndian.AppendUint32(b, seeders)
	return append(b, make([]byte, n*peerLen)...)
}

func TestCheckUDPReply(t *testing.T) {
	announce := udpExpect{action: udpActionAnnounce, numWant: 30}
	tests := []struct {
		name    string
		reply   []byte
		want    udpExpect
		peerLen int
		kind    errKind
	}{
		{"connect", append(binary.BigEndian.AppendUint64(nil, 7), 1, 2, 3, 4, 5, 6, 7, 8), udpExpect{action: udpActionConnect}, 6, errNone},
		{"connect too long", append(binary.BigEndian.AppendUint64(nil, 7), make([]byte, 9)...), udpExpect{action: udpActionConnect}, 6, errSize},
		{"announce v4", announceReply(1, 1800, 3, 2, 5, 6), announce, 6, errNone},
		{"announce v6", announceReply(1, 1800, 3, 2, 5, 18), announce, 18, errNone},
		{"v4 peers on a v6 socket", announceReply(1, 1800, 3, 2, 1, 6), announce, 18, errSize},
		{"announce no peers", announceReply(1, 1800, 0, 0, 0, 6), announce, 6, errNone},
		// opentracker's reply to a torrent missing from its whitelist.
		{"bare header (not whitelisted)", announceReply(1, 0, 0, 0, 0, 6)[:8], announce, 6, errSize},
		{"interval zero", announceReply(1, 0, 3, 2, 1, 6), announce, 6, errInterval},
		{"more peers than numwant", announceReply(1, 1800, 40, 0, 31, 6), announce, 6, errPeerCount},
		{"more peers than the swarm", announceReply(1, 1800, 1, 1, 3, 6), announce, 6, errPeerCount},
		{"error packet", append(binary.BigEndian.AppendUint64(nil, 3<<32|1), "Connection ID missmatch.\x00"...), announce, 6, errTrackerError},
		{"scrape reply to announce", append(binary.BigEndian.AppendUint64(nil, 2<<32|1), make([]byte, 12)...), announce, 6, errAction},
		{"short", []byte{0, 0, 0, 1, 0, 0, 0}, announce, 6, errShort},
		{"scrape 3", append(binary.BigEndian.AppendUint64(nil, 2<<32|1), make([]byte, 36)...), udpExpect{action: udpActionScrape, hashes: 3}, 6, errNone},
		{"scrape missing entry", append(binary.BigEndian.AppendUint64(nil, 2<<32|1), make([]byte, 24)...), udpExpect{action: udpActionScrape, hashes: 3}, 6, errSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, _ := checkUDPReply(tt.reply, tt.want, tt.peerLen); got != tt.kind {
				t.Errorf("checkUDPReply = %v, want %v", got, tt.kind)
			}
		})
	}
}

func TestConnectReplyID(t *testing.T) {
	reply := binary.BigEndian.AppendUint64(nil, 42) // action 0, tid 42
	reply = binary.BigEndian.AppendUint64(reply, 0x1111c8f85e377216)
	kind, id := checkUDPReply(reply, udpExpect{action: udpActionConnect}, 6)
	if kind != errNone || id != 0x1111c8f85e377216 {
		t.Fatalf("got %v %#x, want none 0x1111c8f85e377216", kind, id)
	}
}

func FuzzCheckUDPReply(f *testing.F) {
	f.Add(announceReply(1, 1800, 3, 2, 5, 6), uint8(udpActionAnnounce), uint16(30), uint8(0), true)
	f.Add(announceReply(1, 1800, 3, 2, 5, 18), uint8(udpActionAnnounce), uint16(30), uint8(0), false)
	f.Add(append(binary.BigEndian.AppendUint64(nil, 2<<32|1), make([]byte, 36)...), uint8(udpActionScrape), uint16(0), uint8(3), true)
	f.Add(binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, 42), 7), uint8(udpActionConnect), uint16(0), uint8(0), true)
	f.Add([]byte{0, 0, 0, 3, 0, 0, 0, 1, 'x'}, uint8(udpActionAnnounce), uint16(30), uint8(0), true)
	f.Fuzz(func(t *testing.T, reply []byte, action uint8, numWant uint16, hashes uint8, v4 bool) {
		peerLen := 18
		if v4 {
			peerLen = 6
		}
		want := udpExpect{action: action % 3, numWant: numWant, hashes: hashes}
		kind, _ := checkUDPReply(reply, want, peerLen)
		if kind != errNone {
			return
		}
		// Whatever passes must be consistent with the request.
		switch want.action {
		case udpActionConnect:
			if len(reply) != udpConnectLen {
				t.Fatalf("accepted connect of %d bytes", len(reply))
			}
		case udpActionAnnounce:
			peers := (len(reply) - udpAnnounceHeaderLen) / peerLen
			if len(reply) < udpAnnounceHeaderLen || (len(reply)-udpAnnounceHeaderLen)%peerLen != 0 || peers > int(numWant) {
				t.Fatalf("accepted announce of %d bytes for numwant %d", len(reply), numWant)
			}
		case udpActionScrape:
			if len(reply) != udpScrapeHeaderLen+udpScrapeEntryLen*int(hashes) {
				t.Fatalf("accepted scrape of %d bytes for %d hashes", len(reply), hashes)
			}
		}
	})
}
