package wstracker

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"herald/swarm"
	"herald/tracker"
)

func TestParseRequest(t *testing.T) {
	for _, tc := range []struct {
		name  string
		msg   string
		err   error
		check func(*testing.T, *Request)
	}{
		{"announce as the npm client sends it", announce(hashA, peerA, `,"left":0,"event":"started","numwant":2`+offers(offer, peerB)), nil, func(t *testing.T, r *Request) {
			if r.Action != ActionAnnounce || r.InfoHash != hashA || r.PeerID != peerA || r.Event != swarm.EventStarted ||
				r.Left != 0 || r.NumWant != 2 || len(r.Offers) != 2 || r.Offers[1].ID != OfferID(peerB) {
				t.Fatalf("%+v", r)
			}
			if string(r.Offers[0].SDP) != `{"type":"offer","sdp":"v=0 sdp of 0"}` {
				t.Fatalf("offer SDP %s", r.Offers[0].SDP)
			}
		}},
		{"left null is Infinity: a leecher", announce(hashA, peerA, `,"left":null`), nil, func(t *testing.T, r *Request) {
			if r.Left != tracker.LeftUnknown || r.NumWant != -1 {
				t.Fatalf("%+v", r)
			}
		}},
		{"left missing", announce(hashA, peerA, ``), nil, func(t *testing.T, r *Request) {
			if r.Left == 0 {
				t.Fatal("seeder without left")
			}
		}},
		{"float counts", announce(hashA, peerA, `,"left":0.0,"uploaded":1.5e3,"downloaded":-1`), nil, func(t *testing.T, r *Request) {
			if r.Left != 0 || r.Uploaded != 1500 || r.Downloaded != 0 {
				t.Fatalf("%+v", r)
			}
		}},
		{"string left", announce(hashA, peerA, `,"left":"0"`), nil, func(t *testing.T, r *Request) {
			if r.Left == 0 {
				t.Fatal(`"0" as a string made a seeder`)
			}
		}},
		{"update event", announce(hashA, peerA, `,"event":"update"`), nil, func(t *testing.T, r *Request) {
			if r.Event != swarm.EventNone {
				t.Fatal(r.Event)
			}
		}},
		{"offers beyond the limit are dropped", announce(hashA, peerA, offers(offer, offer, offer, offer, offer)), nil, func(t *testing.T, r *Request) {
			if len(r.Offers) != 3 {
				t.Fatalf("%d offers, want 3", len(r.Offers))
			}
		}},
		{"answer", announce(hashA, peerA, `,"to_peer_id":`+bin(peerB)+`,"offer_id":`+bin(offer)+`,"answer":{"type":"answer","sdp":"x"}`), nil, func(t *testing.T, r *Request) {
			if r.ToPeerID != peerB || r.OfferID != OfferID(offer) || string(r.Answer) != `{"type":"answer","sdp":"x"}` {
				t.Fatalf("%+v", r)
			}
		}},
		{"answer null is no answer", announce(hashA, peerA, `,"answer":null`), nil, func(t *testing.T, r *Request) {
			if r.Answer != nil {
				t.Fatal("answer")
			}
		}},
		{"scrape one", `{"action":"scrape","info_hash":` + bin(hashA) + `}`, nil, func(t *testing.T, r *Request) {
			if r.Action != ActionScrape || len(r.ScrapeHashes) != 1 || r.ScrapeHashes[0] != hashA {
				t.Fatalf("%+v", r)
			}
		}},
		{"scrape list", `{"action":"scrape","info_hash":[` + bin(hashA) + `,` + bin(peerA) + `]}`, nil, func(t *testing.T, r *Request) {
			if len(r.ScrapeHashes) != 2 || r.ScrapeHashes[1] != swarm.InfoHash(peerA) {
				t.Fatalf("%+v", r)
			}
		}},
		{"escaped binary", `{"action":"scrape","info_hash":"\u0000\u0001\u00ff\u00e9aaaaaaaaaaaaaaaa"}`, nil, func(t *testing.T, r *Request) {
			if h := r.ScrapeHashes[0]; h[0] != 0 || h[1] != 1 || h[2] != 0xff || h[3] != 0xe9 {
				t.Fatalf("%x", h)
			}
		}},

		{"not JSON", `announce`, failJSON, nil},
		{"truncated", `{"action":"announce",`, failJSON, nil},
		{"trailing NUL (a fuzz find)", "{}\x00", failJSON, nil},
		{"trailing garbage", `{"action":"scrape","info_hash":"aaaaaaaaaaaaaaaaaaaa"}x`, failJSON, nil},
		{"null", `null`, failAction, nil},
		{"action not a string", `{"action":1}`, failJSON, nil},
		{"peer_id not a string", `{"action":"announce","info_hash":"aaaaaaaaaaaaaaaaaaaa","peer_id":5}`, failJSON, nil},
		{"nesting too deep", `{"action":"announce","x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, failJSON, nil},
		{"array", `[1,2]`, failJSON, nil},
		{"no action", `{}`, failAction, nil},
		{"unknown action", `{"action":"connect"}`, failAction, nil},
		{"info_hash 19 chars", `{"action":"announce","info_hash":"aaaaaaaaaaaaaaaaaaa","peer_id":` + bin(peerA) + `}`, failInfoHash, nil},
		{"info_hash above U+00FF", `{"action":"announce","info_hash":"aaaaaaaaaaaaaaaaaaa\u0100","peer_id":` + bin(peerA) + `}`, failInfoHash, nil},
		{"info_hash number", `{"action":"announce","info_hash":12,"peer_id":` + bin(peerA) + `}`, failInfoHash, nil},
		{"peer_id missing", `{"action":"announce","info_hash":` + bin(hashA) + `}`, failPeerID, nil},
		{"answer without to_peer_id", announce(hashA, peerA, `,"answer":{"type":"answer"}`), failToPeerID, nil},
		{"answer without offer_id", announce(hashA, peerA, `,"to_peer_id":`+bin(peerB)+`,"answer":{}`), failOfferID, nil},
		{"answer not an object", announce(hashA, peerA, `,"to_peer_id":`+bin(peerB)+`,"offer_id":`+bin(offer)+`,"answer":"sdp"`), failAnswer, nil},
		{"offer without id", announce(hashA, peerA, `,"offers":[{"offer":{}}]`), failOffer, nil},
		{"offer not an object", announce(hashA, peerA, `,"offers":[{"offer":1,"offer_id":`+bin(offer)+`}]`), failOffer, nil},
		{"offers not a list", announce(hashA, peerA, `,"offers":{}`), failJSON, nil},
		{"bad event", announce(hashA, peerA, `,"event":"pause"`), failEvent, nil},
		{"scrape without hash", `{"action":"scrape"}`, failInfoHash, nil},
		{"scrape of a bad hash", `{"action":"scrape","info_hash":["x"]}`, failInfoHash, nil},
		{"scrape of too many", `{"action":"scrape","info_hash":[` + strings.Repeat(bin(hashA)+",", 4) + bin(hashA) + `]}`, failScrapeHashes, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r Request
			err := ParseRequest([]byte(tc.msg), 3, 4, &r)
			if err != tc.err {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if tc.check != nil {
				tc.check(t, &r)
			}
		})
	}
}

// TestParseRequestReuse checks that a reused Request keeps nothing of the
// previous message.
func TestParseRequestReuse(t *testing.T) {
	var r Request
	if err := ParseRequest([]byte(announce(hashA, peerA, `,"left":0`+offers(offer, offer))), 10, 10, &r); err != nil {
		t.Fatal(err)
	}
	if err := ParseRequest([]byte(announce(hashA, peerB, ``)), 10, 10, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Offers) != 0 || r.Left == 0 || r.PeerID != peerB {
		t.Fatalf("%+v", r)
	}
}

func TestAppendBinaryMatchesJSONStringify(t *testing.T) {
	// JSON.stringify of String.fromCharCode(0..255), as node prints it.
	var all [256]byte
	for i := range all {
		all[i] = byte(i)
	}
	got := string(appendBinary(nil, all[:]))
	want := `"\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\b\t\n\u000b\f\r\u000e\u000f` +
		`\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001a\u001b\u001c\u001d\u001e\u001f` +
		` !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_` + "`" +
		"abcdefghijklmnopqrstuvwxyz{|}~\x7f" + string(appendRunes(0x80, 0xff)) + `"`
	if got != want {
		t.Fatalf("appendBinary =\n%q\nwant\n%q", got, want)
	}
	var back string
	if err := json.Unmarshal([]byte(got), &back); err != nil {
		t.Fatal(err)
	}
	var round [256]byte
	if !decodeBinary(round[:], []byte(back)) || round != all {
		t.Fatal("binary string does not round-trip")
	}
}

func appendRunes(from, to rune) []byte {
	var b []byte
	for r := from; r <= to; r++ {
		b = utf8.AppendRune(b, r)
	}
	return b
}

func TestAppendReplies(t *testing.T) {
	h, a, b := swarm.InfoHash(hashA), swarm.PeerID(peerA), swarm.PeerID(peerB)
	for _, tc := range []struct {
		name, got, want string
	}{
		{"announce", string(AppendAnnounceReply(nil, &h, swarm.Counts{Seeders: 2, Leechers: 3}, 120)),
			`{"action":"announce","info_hash":` + bin(hashA) + `,"complete":2,"incomplete":3,"interval":120}`},
		{"offer", string(AppendOffer(nil, &h, &a, &Offer{ID: OfferID(offer), SDP: json.RawMessage(`{"type":"offer","sdp":"s"}`)})),
			`{"action":"announce","offer":{"type":"offer","sdp":"s"},"offer_id":` + bin(offer) + `,"peer_id":` + bin(peerA) + `,"info_hash":` + bin(hashA) + `}`},
		{"answer", string(AppendAnswer(nil, &h, &b, (*OfferID)(&offer), json.RawMessage(`{"type":"answer"}`))),
			`{"action":"announce","answer":{"type":"answer"},"offer_id":` + bin(offer) + `,"peer_id":` + bin(peerB) + `,"info_hash":` + bin(hashA) + `}`},
		{"scrape", string(AppendScrapeReply(nil, []ScrapeFile{{InfoHash: hashA, Counts: swarm.Counts{Seeders: 1, Leechers: 2, Completed: 3}}}, 120)),
			`{"action":"scrape","files":{` + bin(hashA) + `:{"complete":1,"incomplete":2,"downloaded":3}},"flags":{"min_request_interval":120}}`},
		{"bare failure", string(AppendFailure(nil, 0, nil, "invalid JSON")), `{"failure reason":"invalid JSON"}`},
		{"announce failure", string(AppendFailure(nil, ActionAnnounce, &h, "quote \" here")),
			`{"action":"announce","info_hash":` + bin(hashA) + `,"failure reason":"quote \" here"}`},
	} {
		if tc.got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, tc.got, tc.want)
		}
		if !json.Valid([]byte(tc.got)) {
			t.Errorf("%s: not JSON: %s", tc.name, tc.got)
		}
	}
}

// FuzzParseRequest checks that no message crashes the parser, that every
// error is a client-facing failure, and that what parses re-encodes (as
// the relayed offer and answer messages) into valid JSON carrying the same
// ids.
func FuzzParseRequest(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Request
		err := ParseRequest(data, 10, 64, &r)
		if err != nil {
			if ce, ok := err.(*tracker.ClientError); !ok || ce.Reason != tracker.Malformed {
				t.Fatalf("error %T %v is not a Malformed refusal", err, err)
			}
			return
		}
		if len(r.Offers) > 10 || len(r.ScrapeHashes) > 64 {
			t.Fatalf("bounds ignored: %d offers, %d hashes", len(r.Offers), len(r.ScrapeHashes))
		}
		var out []byte
		for i := range r.Offers {
			out = AppendOffer(out[:0], &r.InfoHash, &r.PeerID, &r.Offers[i])
			checkRelay(t, out, &r, r.Offers[i].ID)
		}
		if r.Answer != nil {
			out = AppendAnswer(out[:0], &r.InfoHash, &r.PeerID, &r.OfferID, r.Answer)
			checkRelay(t, out, &r, r.OfferID)
		}
	})
}

func checkRelay(t *testing.T, msg []byte, r *Request, offerID OfferID) {
	var relayed struct {
		InfoHash string `json:"info_hash"`
		PeerID   string `json:"peer_id"`
		OfferID  string `json:"offer_id"`
	}
	if err := json.Unmarshal(msg, &relayed); err != nil {
		t.Fatalf("relayed message %q: %v", msg, err)
	}
	var h swarm.InfoHash
	var p swarm.PeerID
	var o OfferID
	if !decodeBinary(h[:], []byte(relayed.InfoHash)) || !decodeBinary(p[:], []byte(relayed.PeerID)) || !decodeBinary(o[:], []byte(relayed.OfferID)) ||
		h != r.InfoHash || p != r.PeerID || o != offerID {
		t.Fatalf("relayed message %q lost an id", msg)
	}
}

// fuzzSeeds are the spec-shaped messages and table cases both fuzz
// targets start from.
func fuzzSeeds() []string {
	return []string{
		announce(hashA, peerA, `,"left":0,"event":"started","numwant":2`+offers(offer, peerB)),
		announce(hashA, peerA, `,"to_peer_id":`+bin(peerB)+`,"offer_id":`+bin(offer)+`,"answer":{"type":"answer","sdp":"x"}`),
		announce(hashA, peerA, `,"left":null,"uploaded":1.5e3,"event":"stopped"`),
		`{"action":"scrape","info_hash":` + bin(hashA) + `}`,
		`{"action":"scrape","info_hash":[` + bin(hashA) + `,` + bin(peerA) + `]}`,
		`{"action":"scrape","info_hash":"\u0000\u0001\u00ff\u00e9aaaaaaaaaaaaaaaa"}`,
		`{"action":"announce"`, `[]`, `{}`, `{"action":"connect"}`, `null`, "\xff",
		`{"action":"announce","info_hash":"\u0000\u0001\u00ff\u00e9aaaaaaaaaaaaaaaa","peer_id":"\ud83d\ude00aaaaaaaaaaaaaaaaaa"}`,
		`{"action":"announce","offers":[null,{"offer":{"a":[1,-2.5e3,true,false,null]},"offer_id":null}],"offers":null}`,
		`{"\u0061ction":"scrape","info_hash":["aaaaaaaaaaaaaaaaaaaa",null]} `,
		` null `, `{"action":"announce","info_hash":"aaaaaaaaaaaaaaaaaaaa","peer_id":"aaaaaaaaaaaaaaaaaaaa"}x`,
	}
}
