package wstracker

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"

	"herald/swarm"
)

// The reference parser below is the first version of ParseRequest, built
// on encoding/json. FuzzParseRequestMatchesEncodingJSON holds the scanner
// to it.

type refWireRequest struct {
	Action     string          `json:"action"`
	InfoHash   json.RawMessage `json:"info_hash"`
	PeerID     *string         `json:"peer_id"`
	Event      *string         `json:"event"`
	Left       json.RawMessage `json:"left"`
	Uploaded   json.RawMessage `json:"uploaded"`
	Downloaded json.RawMessage `json:"downloaded"`
	NumWant    json.RawMessage `json:"numwant"`
	Offers     []refWireOffer  `json:"offers"`
	Answer     json.RawMessage `json:"answer"`
	ToPeerID   *string         `json:"to_peer_id"`
	OfferID    *string         `json:"offer_id"`
}

type refWireOffer struct {
	Offer   json.RawMessage `json:"offer"`
	OfferID *string         `json:"offer_id"`
}

func parseRequestRef(data []byte, maxOffers, maxScrape int, r *Request) error {
	offers, hashes := r.Offers[:0], r.ScrapeHashes[:0]
	*r = Request{Offers: offers, ScrapeHashes: hashes, Left: math.MaxUint64, NumWant: -1}
	var w refWireRequest
	if err := json.Unmarshal(data, &w); err != nil {
		return failJSON
	}
	switch w.Action {
	case "announce":
		r.Action = ActionAnnounce
		return parseAnnounceRef(&w, maxOffers, r)
	case "scrape":
		r.Action = ActionScrape
		return parseScrapeRef(&w, maxScrape, r)
	}
	return failAction
}

func parseAnnounceRef(w *refWireRequest, maxOffers int, r *Request) error {
	var s string
	if json.Unmarshal(w.InfoHash, &s) != nil || !decodeBinaryRef(r.InfoHash[:], s) {
		return failInfoHash
	}
	if w.PeerID == nil || !decodeBinaryRef(r.PeerID[:], *w.PeerID) {
		return failPeerID
	}
	if w.Event != nil {
		switch *w.Event {
		case "", "update", "empty", "paused":
		case "started":
			r.Event = swarm.EventStarted
		case "completed":
			r.Event = swarm.EventCompleted
		case "stopped":
			r.Event = swarm.EventStopped
		default:
			return failEvent
		}
	}
	if v, ok := parseCount(w.Left); ok {
		r.Left = v
	}
	r.Uploaded, _ = parseCount(w.Uploaded)
	r.Downloaded, _ = parseCount(w.Downloaded)
	if v, ok := parseCount(w.NumWant); ok {
		r.NumWant = int(min(v, math.MaxInt32))
	}
	if isPresent(w.Answer) {
		if w.ToPeerID == nil || !decodeBinaryRef(r.ToPeerID[:], *w.ToPeerID) {
			return failToPeerID
		}
		if w.OfferID == nil || !decodeBinaryRef(r.OfferID[:], *w.OfferID) {
			return failOfferID
		}
		if !isObject(w.Answer) {
			return failAnswer
		}
		r.Answer = w.Answer
		return nil
	}
	for i := range w.Offers {
		if len(r.Offers) == maxOffers {
			break
		}
		o := &w.Offers[i]
		var id OfferID
		if !isObject(o.Offer) || o.OfferID == nil || !decodeBinaryRef(id[:], *o.OfferID) {
			return failOffer
		}
		r.Offers = append(r.Offers, Offer{ID: id, SDP: o.Offer})
	}
	return nil
}

func parseScrapeRef(w *refWireRequest, maxScrape int, r *Request) error {
	if !isPresent(w.InfoHash) {
		return failInfoHash
	}
	var list []string
	if w.InfoHash[0] == '"' {
		list = make([]string, 1)
		if json.Unmarshal(w.InfoHash, &list[0]) != nil {
			return failInfoHash
		}
	} else if json.Unmarshal(w.InfoHash, &list) != nil {
		return failInfoHash
	}
	if len(list) > maxScrape {
		return failScrapeHashes
	}
	for _, s := range list {
		var h swarm.InfoHash
		if !decodeBinaryRef(h[:], s) {
			return failInfoHash
		}
		r.ScrapeHashes = append(r.ScrapeHashes, h)
	}
	return nil
}

// decodeBinary fills dst from a JavaScript binary string: exactly len(dst)
// characters, each at most U+00FF.
func decodeBinaryRef(dst []byte, s string) bool {
	i := 0
	for _, c := range s {
		if i == len(dst) || c > 0xFF {
			return false
		}
		dst[i] = byte(c)
		i++
	}
	return i == len(dst)
}

// FuzzParseRequestMatchesEncodingJSON checks that the hand-written scanner
// accepts and refuses exactly what the encoding/json parser did, with the
// same failure texts and the same fields. Inputs where the two are meant
// to differ are skipped: encoding/json matches keys case-insensitively
// (also folding 'ſ' and the Kelvin sign) where JavaScript, and so the
// scanner, does not, and it allows deeper nesting than maxDepth.
func FuzzParseRequestMatchesEncodingJSON(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if bytes.ContainsFunc(data, func(r rune) bool { return r >= 'A' && r <= 'Z' || r == 'ſ' || r == '\u212a' }) ||
			bytes.Contains(data, []byte(`\u`)) || bytes.Count(data, []byte("{"))+bytes.Count(data, []byte("[")) > maxDepth {
			return
		}
		var got, want Request
		gotErr := ParseRequest(data, 3, 4, &got)
		wantErr := parseRequestRef(data, 3, 4, &want)
		if gotErr != wantErr {
			t.Fatalf("%q: scanner says %v, encoding/json says %v", data, gotErr, wantErr)
		}
		if gotErr != nil {
			return
		}
		if got.Action != want.Action || got.InfoHash != want.InfoHash || got.PeerID != want.PeerID ||
			got.Event != want.Event || got.Left != want.Left || got.Uploaded != want.Uploaded ||
			got.Downloaded != want.Downloaded || got.NumWant != want.NumWant ||
			!bytes.Equal(got.Answer, want.Answer) || got.ToPeerID != want.ToPeerID || got.OfferID != want.OfferID ||
			len(got.Offers) != len(want.Offers) || len(got.ScrapeHashes) != len(want.ScrapeHashes) {
			t.Fatalf("%q:\nscanner       %+v\nencoding/json %+v", data, got, want)
		}
		for i := range got.Offers {
			if got.Offers[i].ID != want.Offers[i].ID || !bytes.Equal(got.Offers[i].SDP, want.Offers[i].SDP) {
				t.Fatalf("%q: offer %d differs", data, i)
			}
		}
		for i := range got.ScrapeHashes {
			if got.ScrapeHashes[i] != want.ScrapeHashes[i] {
				t.Fatalf("%q: scrape hash %d differs", data, i)
			}
		}
	})
}
