package wstracker

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"

	"herald/swarm"
	"herald/tracker"
)

// Action is what a request asks for.
type Action uint8

const (
	ActionAnnounce Action = iota + 1
	ActionScrape
)

// OfferID is the 20-byte id a client gives each WebRTC offer; the answer
// carries it back so the offerer can match the two.
type OfferID [20]byte

// Offer is one WebRTC offer of an announce: SDP is the client's "offer"
// object ({"type":"offer","sdp":"…"}), kept as raw JSON and relayed
// byte for byte.
type Offer struct {
	ID  OfferID
	SDP json.RawMessage
}

// Request is one parsed client message. Binary fields (info_hash, peer_id,
// to_peer_id, offer_id) travel as JavaScript "binary" strings: 20
// characters, each one byte (U+0000 to U+00FF).
type Request struct {
	Action   Action
	InfoHash swarm.InfoHash
	PeerID   swarm.PeerID

	// Announce fields. Left is tracker.LeftUnknown when the client did
	// not send a usable number (bittorrent-tracker then treats it as
	// Infinity: a leecher).
	Event      swarm.Event
	Left       uint64
	Uploaded   uint64
	Downloaded uint64
	// NumWant is the client's numwant, or -1 when absent.
	NumWant int
	Offers  []Offer

	// An announce with an answer replies to the offer OfferID that
	// ToPeerID sent; Answer is the raw "answer" object.
	Answer   json.RawMessage
	ToPeerID swarm.PeerID
	OfferID  OfferID

	// ScrapeHashes are a scrape's hashes, at least one: herald has no
	// full scrape over WebSocket.
	ScrapeHashes []swarm.InfoHash
}

// wireRequest holds a client message's fields as they were sent: spans of
// the message, nil when absent. Fields the tracker reads as strings
// (action, peer_id, event, to_peer_id, offer_id) are nil for null too, and
// any other type is a JSON error, as in the npm server. Numbers stay raw:
// JavaScript clients send floats, null (JSON.stringify(Infinity)) or
// nothing, and bittorrent-tracker accepts all of them.
type wireRequest struct {
	Action, InfoHash, PeerID, Event     []byte
	Left, Uploaded, Downloaded, NumWant []byte
	Offers                              []wireOffer
	Answer, ToPeerID, OfferID           []byte
}

type wireOffer struct {
	Offer, OfferID []byte
}

// ParseRequest decodes one text frame into r, which it resets first. The
// offers and the answer in r are spans of data, relayed as they are.
// maxOffers and maxScrape bound the work one message can cause: offers
// beyond maxOffers are dropped (as aquatic_ws does), a scrape of more than
// maxScrape hashes is refused. The error is always a failure whose text is
// the reply's "failure reason"; the texts follow bittorrent-tracker's
// parse-websocket.js.
func ParseRequest(data []byte, maxOffers, maxScrape int, r *Request) error {
	offers, hashes := r.Offers[:0], r.ScrapeHashes[:0]
	*r = Request{Offers: offers, ScrapeHashes: hashes, Left: tracker.LeftUnknown, NumWant: -1}
	var w wireRequest
	if err := decodeWire(data, maxOffers, &w); err != nil {
		return err
	}
	var buf [16]byte
	if len(w.Action) <= 2+6*len("announce") {
		switch string(unquote(buf[:0], w.Action)) {
		case "announce":
			r.Action = ActionAnnounce
			return parseAnnounce(&w, r)
		case "scrape":
			r.Action = ActionScrape
			return parseScrape(&w, maxScrape, r)
		}
	}
	return failAction
}

// decodeWire scans a message into w, keeping at most maxOffers offers.
func decodeWire(data []byte, maxOffers int, w *wireRequest) error {
	s := scanner{data: data}
	switch s.peek() {
	case '{':
	case 'n':
		// JSON null decodes to nothing: a message without an action.
		if s.literal("null") && s.atEnd() {
			w.Action = []byte(`""`)
			return nil
		}
		return failJSON
	default:
		return failJSON
	}
	var ok bool
	stringField := func(dst *[]byte) bool {
		*dst, ok = s.stringOrNull()
		return ok
	}
	rawField := func(dst *[]byte) bool {
		*dst, ok = s.value(1)
		return ok
	}
	offer := func() bool {
		switch s.peek() {
		case 'n':
			if len(w.Offers) < maxOffers {
				w.Offers = append(w.Offers, wireOffer{})
			}
			return s.literal("null")
		case '{':
		default:
			return false
		}
		var o wireOffer
		if !s.object(2, func(key []byte) bool {
			switch {
			case keyIs(key, "offer"):
				o.Offer, ok = s.value(2)
				return ok
			case keyIs(key, "offer_id"):
				o.OfferID, ok = s.stringOrNull()
				return ok
			}
			_, ok = s.value(2)
			return ok
		}) {
			return false
		}
		if len(w.Offers) < maxOffers {
			w.Offers = append(w.Offers, o)
		}
		return true
	}
	member := func(key []byte) bool {
		switch {
		case keyIs(key, "action"):
			if !stringField(&w.Action) {
				return false
			}
			if w.Action == nil {
				w.Action = []byte(`""`)
			}
			return true
		case keyIs(key, "info_hash"):
			return rawField(&w.InfoHash)
		case keyIs(key, "peer_id"):
			return stringField(&w.PeerID)
		case keyIs(key, "event"):
			return stringField(&w.Event)
		case keyIs(key, "left"):
			return rawField(&w.Left)
		case keyIs(key, "uploaded"):
			return rawField(&w.Uploaded)
		case keyIs(key, "downloaded"):
			return rawField(&w.Downloaded)
		case keyIs(key, "numwant"):
			return rawField(&w.NumWant)
		case keyIs(key, "answer"):
			return rawField(&w.Answer)
		case keyIs(key, "to_peer_id"):
			return stringField(&w.ToPeerID)
		case keyIs(key, "offer_id"):
			return stringField(&w.OfferID)
		case keyIs(key, "offers"):
			// A repeated key replaces the earlier list, as in encoding/json.
			w.Offers = w.Offers[:0]
			switch s.peek() {
			case '[':
				return s.array(1, offer)
			case 'n':
				w.Offers = nil
				return s.literal("null")
			}
			return false
		}
		_, ok = s.value(1)
		return ok
	}
	if !s.object(0, member) || !s.atEnd() {
		return failJSON
	}
	if w.Action == nil {
		w.Action = []byte(`""`)
	}
	return nil
}

func parseAnnounce(w *wireRequest, r *Request) error {
	if !decodeBinaryString(r.InfoHash[:], w.InfoHash) {
		return failInfoHash
	}
	if !decodeBinaryString(r.PeerID[:], w.PeerID) {
		return failPeerID
	}
	if w.Event != nil {
		var buf [16]byte
		if len(w.Event) > 2+6*len("completed") {
			return failEvent
		}
		e, ok := tracker.ParseEvent(unquote(buf[:0], w.Event))
		if !ok {
			return failEvent
		}
		r.Event = e
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
		if !decodeBinaryString(r.ToPeerID[:], w.ToPeerID) {
			return failToPeerID
		}
		if !decodeBinaryString(r.OfferID[:], w.OfferID) {
			return failOfferID
		}
		if !isObject(w.Answer) {
			return failAnswer
		}
		r.Answer = w.Answer
		return nil
	}
	for i := range w.Offers {
		o := &w.Offers[i]
		var id OfferID
		if !isObject(o.Offer) || !decodeBinaryString(id[:], o.OfferID) {
			return failOffer
		}
		r.Offers = append(r.Offers, Offer{ID: id, SDP: o.Offer})
	}
	return nil
}

func parseScrape(w *wireRequest, maxScrape int, r *Request) error {
	if !isPresent(w.InfoHash) {
		return failInfoHash
	}
	if w.InfoHash[0] == '"' {
		var h swarm.InfoHash
		if !decodeBinaryString(h[:], w.InfoHash) {
			return failInfoHash
		}
		r.ScrapeHashes = append(r.ScrapeHashes, h)
		return nil
	}
	if w.InfoHash[0] != '[' {
		return failInfoHash
	}
	// First the shape and the count, then the hashes: too many is
	// reported before a bad hash, as the npm server does.
	n := 0
	s := scanner{data: w.InfoHash}
	if !s.array(1, func() bool {
		n++
		_, ok := s.stringOrNull()
		return ok
	}) || s.pos != len(s.data) {
		return failInfoHash
	}
	if n > maxScrape {
		return failScrapeHashes
	}
	s = scanner{data: w.InfoHash}
	valid := s.array(1, func() bool {
		quoted, _ := s.stringOrNull()
		var h swarm.InfoHash
		if !decodeBinaryString(h[:], quoted) {
			return false
		}
		r.ScrapeHashes = append(r.ScrapeHashes, h)
		return true
	})
	if !valid {
		return failInfoHash
	}
	return nil
}

// decodeBinaryString fills dst from a scanned JSON string holding a
// JavaScript binary string: exactly len(dst) characters, each at most
// U+00FF. nil (absent or null) fails.
func decodeBinaryString(dst []byte, quoted []byte) bool {
	// Every character escaped as \u00XX is the longest form.
	if len(quoted) < 2 || quoted[0] != '"' || len(quoted) > 2+6*len(dst) {
		return false
	}
	var buf [2 + 6*20]byte
	return decodeBinary(dst, unquote(buf[:0], quoted))
}

// decodeBinary fills dst from the UTF-8 text of a JavaScript binary
// string: exactly len(dst) characters, each at most U+00FF.
func decodeBinary(dst []byte, s []byte) bool {
	i := 0
	for len(s) > 0 {
		c, n := utf8.DecodeRune(s)
		if i == len(dst) || c > 0xFF || c == utf8.RuneError && n == 1 {
			return false
		}
		dst[i] = byte(c)
		s = s[n:]
		i++
	}
	return i == len(dst)
}

// parseCount reads a JSON number as a non-negative count, truncating a
// fraction; ok is false for null, absence, negatives, NaN and non-numbers.
func parseCount(raw json.RawMessage) (uint64, bool) {
	if len(raw) == 0 || raw[0] == 'n' || raw[0] == '"' || raw[0] == '{' || raw[0] == '[' || raw[0] == 't' || raw[0] == 'f' {
		return 0, false
	}
	if v, err := strconv.ParseUint(string(raw), 10, 64); err == nil {
		return v, true
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || !(f >= 0) {
		return 0, false
	}
	if f >= math.MaxUint64 {
		return math.MaxUint64, true
	}
	return uint64(f), true
}

// isPresent reports whether a raw field holds something other than null;
// bittorrent-tracker tests these fields for truthiness.
func isPresent(raw json.RawMessage) bool {
	return len(raw) > 0 && !bytes.Equal(raw, []byte("null"))
}

func isObject(raw json.RawMessage) bool { return len(raw) > 0 && raw[0] == '{' }

// appendBinary appends b as a JSON string of one character per byte, the
// form JSON.stringify gives a JavaScript binary string: bytes 0x80 and up
// become two-byte UTF-8, control characters, '"' and '\' are escaped.
func appendBinary(dst []byte, b []byte) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for _, c := range b {
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c == '\b':
			dst = append(dst, '\\', 'b')
		case c == '\f':
			dst = append(dst, '\\', 'f')
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
		case c < utf8.RuneSelf:
			dst = append(dst, c)
		default:
			dst = utf8.AppendRune(dst, rune(c))
		}
	}
	return append(dst, '"')
}

// appendString appends s as a JSON string (failure reasons are fixed ASCII
// texts, so only quotes and backslashes need escaping).
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			dst = append(dst, '\\')
		}
		dst = append(dst, s[i])
	}
	return append(dst, '"')
}

// AppendAnnounceReply appends the reply to an announce: the swarm's counts
// and the re-announce interval in seconds, as bittorrent-tracker sends it.
func AppendAnnounceReply(dst []byte, h *swarm.InfoHash, c swarm.Counts, interval int) []byte {
	dst = append(dst, `{"action":"announce","info_hash":`...)
	dst = appendBinary(dst, h[:])
	dst = append(dst, `,"complete":`...)
	dst = strconv.AppendUint(dst, uint64(c.Seeders), 10)
	dst = append(dst, `,"incomplete":`...)
	dst = strconv.AppendUint(dst, uint64(c.Leechers), 10)
	dst = append(dst, `,"interval":`...)
	dst = strconv.AppendInt(dst, int64(interval), 10)
	return append(dst, '}')
}

// AppendOffer appends the message that hands one offer of peer from to
// another peer of swarm h.
func AppendOffer(dst []byte, h *swarm.InfoHash, from *swarm.PeerID, o *Offer) []byte {
	dst = append(dst, `{"action":"announce","offer":`...)
	dst = append(dst, o.SDP...)
	return appendRelayTail(dst, h, from, &o.ID)
}

// AppendAnswer appends the message that hands an answer of peer from back
// to the peer whose offer id it answers.
func AppendAnswer(dst []byte, h *swarm.InfoHash, from *swarm.PeerID, id *OfferID, answer json.RawMessage) []byte {
	dst = append(dst, `{"action":"announce","answer":`...)
	dst = append(dst, answer...)
	return appendRelayTail(dst, h, from, id)
}

func appendRelayTail(dst []byte, h *swarm.InfoHash, from *swarm.PeerID, id *OfferID) []byte {
	dst = append(dst, `,"offer_id":`...)
	dst = appendBinary(dst, id[:])
	dst = append(dst, `,"peer_id":`...)
	dst = appendBinary(dst, from[:])
	dst = append(dst, `,"info_hash":`...)
	dst = appendBinary(dst, h[:])
	return append(dst, '}')
}

// ScrapeFile is one entry of a scrape reply.
type ScrapeFile struct {
	InfoHash swarm.InfoHash
	Counts   swarm.Counts
}

// AppendScrapeReply appends a scrape reply: "files" keyed by binary info
// hash, and the interval as flags.min_request_interval.
func AppendScrapeReply(dst []byte, files []ScrapeFile, interval int) []byte {
	dst = append(dst, `{"action":"scrape","files":{`...)
	for i := range files {
		f := &files[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendBinary(dst, f.InfoHash[:])
		dst = append(dst, `:{"complete":`...)
		dst = strconv.AppendUint(dst, uint64(f.Counts.Seeders), 10)
		dst = append(dst, `,"incomplete":`...)
		dst = strconv.AppendUint(dst, uint64(f.Counts.Leechers), 10)
		dst = append(dst, `,"downloaded":`...)
		dst = strconv.AppendUint(dst, uint64(f.Counts.Completed), 10)
		dst = append(dst, '}')
	}
	dst = append(dst, `},"flags":{"min_request_interval":`...)
	dst = strconv.AppendInt(dst, int64(interval), 10)
	return append(dst, `}}`...)
}

// AppendFailure appends an error reply. With an action (a request that
// parsed) it names the action and the info hash, so the client can route
// it to the right torrent; without one it is the bare
// {"failure reason":…} bittorrent-tracker sends for unparseable messages.
func AppendFailure(dst []byte, a Action, h *swarm.InfoHash, reason string) []byte {
	dst = append(dst, '{')
	switch a {
	case ActionAnnounce:
		dst = append(dst, `"action":"announce",`...)
	case ActionScrape:
		dst = append(dst, `"action":"scrape",`...)
	}
	if a != 0 && h != nil {
		dst = append(dst, `"info_hash":`...)
		dst = appendBinary(dst, h[:])
		dst = append(dst, ',')
	}
	dst = append(dst, `"failure reason":`...)
	dst = appendString(dst, reason)
	return append(dst, '}')
}
