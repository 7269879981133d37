package udptracker

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"testing"

	"herald/swarm"
)

// specPackets are wire examples built from BEP 15 and BEP 41's tables, and
// the malformed shapes of the table test; they seed the fuzz targets.
func specPackets() [][]byte {
	hash := swarm.InfoHash{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}
	ann := &AnnounceRequest{
		ConnectionID: 0x1122334455667788, TransactionID: 7, InfoHash: hash,
		PeerID: swarm.PeerID([]byte("-qB5000-abcdefghijkl")), Left: 1000, Event: swarm.EventStarted,
		Key: 42, NumWant: -1, Port: 6881, URLData: []byte("/announce?passkey=abc"),
	}
	announce := AppendAnnounceRequest(nil, ann)
	long := *ann
	long.URLData = bytes.Repeat([]byte("x"), 600) // three URLData options
	scrape := AppendScrapeRequest(nil, &ScrapeRequest{ConnectionID: 1, TransactionID: 9, InfoHashes: []swarm.InfoHash{hash, {}}})
	return [][]byte{
		AppendConnectRequest(nil, ConnectRequest{TransactionID: 0xdeadbeef}),
		announce,
		announce[:announceRequestLen],
		announce[:announceRequestLen-1],
		append(announce[:announceRequestLen:announceRequestLen], optionURLData, 200, 'x'), // option runs past the end
		append(announce[:announceRequestLen:announceRequestLen], optionNOP, optionNOP, 0x7f, 1, 0, optionURLData, 1, '/', optionEndOfOptions, optionURLData),
		AppendAnnounceRequest(nil, &long),
		scrape,
		scrape[:requestHeaderLen],
		scrape[:len(scrape)-1],
		AppendScrapeRequest(nil, &ScrapeRequest{InfoHashes: make([]swarm.InfoHash, MaxScrapeHashes+1)}),
		AppendConnectResponse(nil, ConnectResponse{TransactionID: 1, ConnectionID: 2}),
		AppendAnnounceResponse(nil, &AnnounceResponse{TransactionID: 1, Interval: 1800, Leechers: 1, Seeders: 2, Peers: []byte{127, 0, 0, 1, 0x1a, 0xe1}}),
		AppendScrapeResponse(nil, &ScrapeResponse{TransactionID: 1, Torrents: []swarm.Counts{{Seeders: 1, Completed: 2, Leechers: 3}}}),
		AppendErrorResponse(nil, ErrorResponse{TransactionID: 1, Message: "connection id mismatch"}),
		binary.BigEndian.AppendUint32(AppendConnectRequest(nil, ConnectRequest{})[:8], 99), // unknown action, runt
		{},
		{0},
	}
}

// FuzzParsePacket feeds arbitrary bytes to every parser. Whatever parses
// must encode back to something that parses to the same value, and no
// parser may read past its input (a panic) or keep more than it got.
func FuzzParsePacket(f *testing.F) {
	for _, p := range specPackets() {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := ParseConnectRequest(b); err == nil {
			if r2, err := ParseConnectRequest(AppendConnectRequest(nil, r)); err != nil || r2 != r {
				t.Fatalf("connect round trip: %+v -> %+v, %v", r, r2, err)
			}
		}
		var a AnnounceRequest
		if err := ParseAnnounceRequest(b, &a); err == nil {
			if len(a.URLData) > len(b)-announceRequestLen {
				t.Fatalf("URLData %d bytes from %d bytes of options", len(a.URLData), len(b)-announceRequestLen)
			}
			if q := a.Query(); q != nil && !bytes.Equal(append(append(append([]byte(nil), a.Path()...), '?'), q...), a.URLData) {
				t.Fatalf("path %q + query %q != URLData %q", a.Path(), q, a.URLData)
			}
			var a2 AnnounceRequest
			if err := ParseAnnounceRequest(AppendAnnounceRequest(nil, &a), &a2); err != nil || !equalAnnounce(&a, &a2) {
				t.Fatalf("announce round trip: %+v -> %+v, %v", a, a2, err)
			}
		}
		var s ScrapeRequest
		if err := ParseScrapeRequest(b, &s); err == nil {
			if len(s.InfoHashes) > MaxScrapeHashes {
				t.Fatalf("%d hashes accepted", len(s.InfoHashes))
			}
			var s2 ScrapeRequest
			if err := ParseScrapeRequest(AppendScrapeRequest(nil, &s), &s2); err != nil || s2.TransactionID != s.TransactionID || len(s2.InfoHashes) != len(s.InfoHashes) {
				t.Fatalf("scrape round trip: %+v -> %+v, %v", s, s2, err)
			}
		}
		if u, err := ParseOptions(b, nil); len(u) > len(b) {
			t.Fatalf("options: %d bytes of URLData from %d, %v", len(u), len(b), err)
		}
		if r, err := ParseConnectResponse(b); err == nil {
			if r2, err := ParseConnectResponse(AppendConnectResponse(nil, r)); err != nil || r2 != r {
				t.Fatalf("connect response round trip: %+v -> %+v, %v", r, r2, err)
			}
		}
		var ar AnnounceResponse
		if err := ParseAnnounceResponse(b, &ar); err == nil {
			if !bytes.Equal(AppendAnnounceResponse(nil, &ar), b) {
				t.Fatalf("announce response does not re-encode to its input")
			}
		}
		var sr ScrapeResponse
		if err := ParseScrapeResponse(b, &sr); err == nil {
			if !bytes.Equal(AppendScrapeResponse(nil, &sr), b) {
				t.Fatalf("scrape response does not re-encode to its input")
			}
		}
		if e, err := ParseErrorResponse(b); err == nil {
			if !bytes.Equal(AppendErrorResponse(nil, e), b) {
				t.Fatalf("error response does not re-encode to its input")
			}
		}
	})
}

func equalAnnounce(a, b *AnnounceRequest) bool {
	x, y := *a, *b
	x.URLData, y.URLData = nil, nil
	return reflect.DeepEqual(x, y) && bytes.Equal(a.URLData, b.URLData)
}

// FuzzServe feeds arbitrary datagrams through the whole request path,
// with the connection id either as sent or replaced by a valid one so that
// the fuzzer reaches the store. A reply must answer the request's
// transaction id, fit the reply buffer, and, when the sender has not
// proven its address, be no bigger than the request.
func FuzzServe(f *testing.F) {
	for _, p := range specPackets() {
		f.Add(p, false)
		f.Add(p, true)
	}
	h := newTestHandler(f, Config{MaxPeers4: 5, MaxPeers6: 3})
	limit := maxReplyLen(h.cfg)
	f.Fuzz(func(t *testing.T, pkt []byte, authenticate bool) {
		if authenticate && len(pkt) >= 8 {
			pkt = append(binary.BigEndian.AppendUint64(nil, h.ids.issue(testClient, testNow)), pkt[8:]...)
		}
		reply := h.serve(make([]byte, 0, limit), pkt, testClient, testNow)
		if len(reply) == 0 {
			return
		}
		if len(reply) > limit {
			t.Fatalf("reply of %d bytes, buffer holds %d", len(reply), limit)
		}
		if len(pkt) < requestHeaderLen || !bytes.Equal(reply[4:8], pkt[12:16]) {
			t.Fatalf("reply %x does not carry the transaction id of %x", reply, pkt)
		}
		hdr, _ := ParseHeader(pkt)
		if !h.ids.valid(hdr.ConnectionID, testClient, testNow) && len(reply) > len(pkt) {
			t.Fatalf("unauthenticated request of %d bytes drew %d bytes", len(pkt), len(reply))
		}
		switch Action(binary.BigEndian.Uint32(reply)) {
		case ActionConnect:
			if len(reply) != connectLen {
				t.Fatalf("connect reply of %d bytes", len(reply))
			}
		case ActionAnnounce:
			if (len(reply)-announceResponseHeaderLen)%swarm.PeerLen4 != 0 {
				t.Fatalf("announce reply of %d bytes", len(reply))
			}
		case ActionScrape:
			if (len(reply)-responseHeaderLen)%scrapeEntryLen != 0 {
				t.Fatalf("scrape reply of %d bytes", len(reply))
			}
		case ActionError:
		default:
			t.Fatalf("reply with action %d", binary.BigEndian.Uint32(reply))
		}
	})
}
