package httptracker

// The scanners as they were before session 6 made them faster (one pass
// over the target, names and numbers read in place, a table for hex
// digits): the reference FuzzSameAsReference holds the new ones to,
// result for result.

import (
	"bytes"
	"math"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"herald/swarm"
	"herald/tracker"
)

func nextParamRef(q string) (key, value, rest string) {
	param, rest, _ := strings.Cut(q, "&")
	key, value, _ = strings.Cut(param, "=")
	return key, value, rest
}

func unescapeRef(dst []byte, raw string) (int, error) {
	n := 0
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '%':
			if i+2 >= len(raw) {
				return n, malformedEscape
			}
			hi, ok1 := unhex(raw[i+1])
			lo, ok2 := unhex(raw[i+2])
			if !ok1 || !ok2 {
				return n, malformedEscape
			}
			c = hi<<4 | lo
			i += 2
		case c >= 0x80:
			return n, malformedHighByte
		}
		if n < len(dst) {
			dst[n] = c
		}
		n++
	}
	return n, nil
}

func numberRef(raw string) (mag uint64, neg, ok bool, err error) {
	var buf [maxNumberLen]byte
	n, err := unescapeRef(buf[:], raw)
	if err != nil || n > len(buf) {
		return 0, false, false, err
	}
	digits := buf[:n]
	if len(digits) > 0 && digits[0] == '-' {
		neg, digits = true, digits[1:]
	}
	if len(digits) == 0 {
		return 0, false, false, nil
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false, false, nil
		}
		d := uint64(c - '0')
		if mag > (math.MaxUint64-d)/10 {
			mag = math.MaxUint64
			continue
		}
		mag = mag*10 + d
	}
	return mag, neg, true, nil
}

func unsignedRef(raw string) (uint64, bool, error) {
	mag, neg, ok, err := numberRef(raw)
	return mag, ok && !neg, err
}

func paramNameRef(buf *[16]byte, raw string) ([]byte, error) {
	n, err := unescapeRef(buf[:], raw)
	if err != nil || n > len(buf) {
		return nil, err
	}
	return buf[:n], nil
}

func parseAnnounceRef(q string, req *announceRequest) error {
	*req = announceRequest{left: tracker.LeftUnknown, numWant: -1, compact: true}
	var keyBuf [16]byte
	haveHash, havePort := false, false
	for q != "" {
		var rawKey, raw string
		rawKey, raw, q = nextParamRef(q)
		name, err := paramNameRef(&keyBuf, rawKey)
		if err != nil {
			return err
		}
		switch string(name) {
		case "info_hash":
			if haveHash {
				return failTwoInfoHashes
			}
			n, err := unescapeRef(req.infoHash[:], raw)
			switch {
			case err != nil:
				return err
			case n != len(req.infoHash):
				return failInfoHashLength
			}
			haveHash = true
		case "peer_id":
			n, err := unescapeRef(req.peerID[:], raw)
			switch {
			case err != nil:
				return err
			case n != len(req.peerID):
				return failPeerIDLength
			}
		case "port":
			port, ok, err := unsignedRef(raw)
			switch {
			case err != nil:
				return err
			case !ok || port == 0 || port > math.MaxUint16:
				return failBadPort
			}
			req.port, havePort = uint16(port), true
		case "uploaded", "downloaded", "left":
			v, ok, err := unsignedRef(raw)
			switch {
			case err != nil:
				return err
			case !ok && string(name) == "left":
				v = tracker.LeftUnknown
			case !ok:
				v = 0
			}
			switch string(name) {
			case "uploaded":
				req.uploaded = v
			case "downloaded":
				req.downloaded = v
			default:
				req.left = v
			}
		case "event":
			var buf [16]byte
			n, err := unescapeRef(buf[:], raw)
			if err != nil {
				return err
			}
			// An unknown event is a plain announce, as in opentracker.
			req.event, _ = tracker.ParseEvent(buf[:min(n, len(buf))])
		case "numwant":
			mag, neg, ok, err := numberRef(raw)
			switch {
			case err != nil:
				return err
			case !ok:
				return failBadNumWant
			case neg:
				req.numWant = -1
			default:
				req.numWant = int(min(mag, math.MaxInt32))
			}
		case "compact":
			var buf [2]byte
			n, err := unescapeRef(buf[:], raw)
			if err != nil {
				return err
			}
			req.compact = n != 1 || buf[0] != '0'
		case "ip", "ipv4", "ipv6":
			var buf [64]byte
			n, err := unescapeRef(buf[:], raw)
			if err != nil {
				return err
			}
			// Unreadable addresses are ignored: the connection's address
			// still identifies the peer.
			text := string(buf[:min(n, len(buf))])
			hop, ok := parseHop(text)
			port := uint16(0)
			if ap, err := netip.ParseAddrPort(text); err == nil {
				port = ap.Port()
			}
			switch {
			case !ok || hop.IsUnspecified():
			case string(name) == "ip":
				req.ip = hop
			case string(name) == "ipv4" && hop.Is4():
				req.ipv4 = netip.AddrPortFrom(hop, port)
			case string(name) == "ipv6" && hop.Is6():
				req.ipv6 = netip.AddrPortFrom(hop, port)
			}
		case "key":
			var buf [32]byte
			n, err := unescapeRef(buf[:], raw)
			if err != nil {
				return err
			}
			req.key = peerKey(buf[:min(n, len(buf))])
		}
	}
	switch {
	case !haveHash:
		return failMissingInfoHash
	case !havePort:
		return failMissingPort
	}
	return nil
}

func parseScrapeRef(q string, hashes []swarm.InfoHash) (int, error) {
	var keyBuf [16]byte
	count := 0
	for q != "" && count < len(hashes) {
		var rawKey, raw string
		rawKey, raw, q = nextParamRef(q)
		name, err := paramNameRef(&keyBuf, rawKey)
		if err != nil {
			return 0, err
		}
		if string(name) != "info_hash" {
			continue
		}
		n, err := unescapeRef(hashes[count][:], raw)
		switch {
		case err != nil:
			return 0, err
		case n != len(hashes[count]):
			return 0, failInfoHashLength
		}
		count++
	}
	return count, nil
}
func parseRequestHeadRef(b []byte, h *requestHead) (int, headResult) {
	// Cheap checks first: anything but GET is never ours, and saying so
	// early spares waiting for the rest of a head net/http will read.
	if !bytes.HasPrefix(b, []byte("GET /")) {
		if len(b) >= 5 || !bytes.HasPrefix([]byte("GET /"), b) {
			return 0, headOther
		}
		return 0, headIncomplete
	}
	end := bytes.Index(b, headEnd)
	if end < 0 {
		if bytes.Contains(b, []byte("\n\n")) {
			return 0, headOther // bare LF line ends
		}
		return 0, headIncomplete
	}
	head := b[:end+2] // each line, the last included, ends in CRLF
	line, head := cutLineRef(head)
	*h = requestHead{}
	if !h.parseRequestLineRef(line) {
		return 0, headOther
	}
	hosts := 0
	closeConn, keepAlive := false, false
	for len(head) > 0 {
		line, head = cutLineRef(head)
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !isToken(line[:colon]) {
			return 0, headOther // no name, a space before the colon, or a folded line
		}
		name, value := line[:colon], trimSpace(line[colon+1:])
		if !isFieldValue(value) {
			return 0, headOther
		}
		switch {
		case equalFold(name, "host"):
			hosts++
		case equalFold(name, "connection"):
			c, k, upgrade := connectionOptions(value)
			if upgrade {
				return 0, headOther
			}
			closeConn, keepAlive = closeConn || c, keepAlive || k
		case equalFold(name, "content-length"):
			if string(value) != "0" {
				return 0, headOther
			}
		case equalFold(name, "transfer-encoding"), equalFold(name, "upgrade"), equalFold(name, "expect"):
			return 0, headOther
		case equalFold(name, "x-forwarded-for"):
			if h.nForward == maxForwarded {
				return 0, headOther
			}
			h.forwarded[h.nForward] = aliasString(value)
			h.nForward++
		case equalFold(name, "x-real-ip"):
			if h.nRealIP == len(h.realIP) {
				return 0, headOther
			}
			h.realIP[h.nRealIP] = aliasString(value)
			h.nRealIP++
		}
	}
	// HTTP/1.1 requires exactly one Host; net/http answers the rest 400.
	if hosts > 1 || hosts == 0 && !h.http10 {
		return 0, headOther
	}
	// HTTP/1.0 keeps the connection only when asked to; close always wins.
	h.keepAlive = !closeConn && (!h.http10 || keepAlive)
	return end + len(headEnd), headFast
}

// parseRequestLine reads "GET /target HTTP/1.x".
func (h *requestHead) parseRequestLineRef(line []byte) bool {
	line = line[len("GET "):]
	sp := bytes.IndexByte(line, ' ')
	if sp < 0 {
		return false
	}
	target, version := line[:sp], line[sp+1:]
	switch string(version) {
	case "HTTP/1.1":
	case "HTTP/1.0":
		h.http10 = true
	default:
		return false
	}
	// net/http unescapes the path (and rejects bad escapes there) and
	// drops a fragment; such targets are rare enough to leave to it.
	inQuery := false
	for _, c := range target {
		if c <= ' ' || c >= 0x7f || c == '#' || c == '%' && !inQuery {
			return false
		}
		inQuery = inQuery || c == '?'
	}
	h.target = aliasString(target)
	return true
}

func cutLineRef(b []byte) (line, rest []byte) {
	i := bytes.Index(b, []byte("\r\n"))
	return b[:i], b[i+2:]
}

// FuzzSameAsReference holds the request-head and query scanners to the
// reference ones above: the same result, error and request for any input
// (the query fuzzed is also the head's target).
func FuzzSameAsReference(f *testing.F) {
	for _, s := range announceSeeds() {
		f.Add(s)
	}
	for _, c := range fastPathHeads {
		f.Add(c.head)
	}
	for _, s := range []string{"GET /a?x=%zz HTTP/1.1\r\nHost: x\r\n\r\n", "GET /%61?b HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /a?b#c HTTP/1.0\r\n\r\n", "GET /a\tb HTTP/1.1\r\nHost: x\r\n\r\n", "GET /a HTTP/1.1\nHost: x\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: x\nX: y\r\n\r\n", "GET /a HTTP/1.1\r\n\nHost: x\r\n\r\n", "GET /a?\x80 HTTP/1.1\r\nHost: x\r\n\r\n",
		"port=%31&left=1%30&numwant=-%31&uploaded=99999999999999999999999999&downloaded=\x80",
		"info%5fhash=" + q20 + "&port=1&%70ort=2&info_hash%zz=1", "port=1&info_hash=" + q20 + "&info_hash=" + q20} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var h, hr requestHead
		n, res := parseRequestHead([]byte(s), &h)
		nr, resr := parseRequestHeadRef([]byte(s), &hr)
		if n != nr || res != resr || res == headFast && h != hr {
			t.Fatalf("parseRequestHead(%q) = %d %v %+v; reference %d %v %+v", s, n, res, h, nr, resr, hr)
		}
		var req, reqr announceRequest
		err, errr := parseAnnounce(s, &req), parseAnnounceRef(s, &reqr)
		if err != errr || req != reqr {
			t.Fatalf("parseAnnounce(%q) = %v %+v; reference %v %+v", s, err, req, errr, reqr)
		}
		hashes, hashesr := make([]swarm.InfoHash, 3), make([]swarm.InfoHash, 3)
		k, err := parseScrape(s, hashes)
		kr, errr := parseScrapeRef(s, hashesr)
		if k != kr || err != errr || !slices.Equal(hashes, hashesr) {
			t.Fatalf("parseScrape(%q) = %d %v %x; reference %d %v %x", s, k, err, hashes, kr, errr, hashesr)
		}
	})
}
