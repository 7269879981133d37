package httptracker

import (
	"math"
	"net/netip"
	"strings"

	"herald/swarm"
	"herald/tracker"
)

// This file scans the query string of announce and scrape requests
// (BEP 3 "Trackers", BEP 48) straight from r.URL.RawQuery, percent-decoding
// each value into a fixed array: no maps, no strings, no allocations.
//
// Decoding follows opentracker: %xx escapes are decoded, '+' is kept as a
// literal '+' (it is not a space in these URLs), and a bad escape or a raw
// byte of 0x80 or above in a parameter the tracker reads makes the request
// malformed (HTTP 400). Parameters the tracker does not read are skipped
// unchecked. Parameters are separated by '&' only.

// announceRequest is an announce's query, decoded.
type announceRequest struct {
	infoHash   swarm.InfoHash
	peerID     swarm.PeerID
	port       uint16
	uploaded   uint64
	downloaded uint64
	left       uint64 // tracker.LeftUnknown when absent or not a number
	event      swarm.Event
	numWant    int  // -1 when absent or negative: use the default
	compact    bool // false only for compact=0
	key        uint32
	// Addresses the client states itself (BEP 3 ip=, BEP 7 ipv4=/ipv6=);
	// zero when absent or unreadable. Used only with Config.AllowClientIP.
	ip         netip.Addr
	ipv4, ipv6 netip.AddrPort
}

// nextParam splits the first parameter off a raw query: its raw key, raw
// value (empty when there is no '='), and the rest after the '&'.
func nextParam(q string) (key, value, rest string) {
	param := q
	if i := strings.IndexByte(q, '&'); i >= 0 {
		param, rest = q[:i], q[i+1:]
	}
	key = param
	if i := strings.IndexByte(param, '='); i >= 0 {
		key, value = param[:i], param[i+1:]
	}
	return key, value, rest
}

// unescape percent-decodes raw into dst and returns the decoded length,
// which may exceed len(dst): bytes beyond dst are counted, not written, so
// callers can tell an over-long value from one that fits.
func unescape(dst []byte, raw string) (int, error) {
	n := 0
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '%':
			if i+2 >= len(raw) {
				return n, malformedEscape
			}
			hi, lo := hexValue[raw[i+1]], hexValue[raw[i+2]]
			if hi|lo > 0xf {
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

// hexValue is each byte's value as a hexadecimal digit, 0xff for the
// bytes that are not one.
var hexValue = func() (t [256]byte) {
	for c := range t {
		v, ok := unhex(byte(c))
		if !ok {
			v = 0xff
		}
		t[c] = v
	}
	return t
}()

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// maxNumberLen bounds a decoded numeric value; longer ones are not numbers.
const maxNumberLen = 24

// number decodes raw as an optionally negative decimal integer. Its
// magnitude saturates at MaxUint64; ok is false for anything but digits.
func number(raw string) (mag uint64, neg, ok bool, err error) {
	// Clients send plain digits: read them where they are, in one pass,
	// and decode first only what is not (escapes, high bytes: their
	// errors are unescape's).
	if mag, neg, ok = digits(raw); ok {
		return mag, neg, true, nil
	}
	var buf [maxNumberLen]byte
	n, err := unescape(buf[:], raw)
	if err != nil || n > len(buf) {
		return 0, false, false, err
	}
	mag, neg, ok = digits(aliasString(buf[:n]))
	return mag, neg, ok, nil
}

// digits reads s, at most maxNumberLen bytes, as an optionally negative
// decimal integer whose magnitude saturates at MaxUint64.
func digits(s string) (mag uint64, neg, ok bool) {
	if len(s) > maxNumberLen {
		return 0, false, false
	}
	if len(s) > 0 && s[0] == '-' {
		neg, s = true, s[1:]
	}
	if len(s) == 0 {
		return 0, false, false
	}
	for i := 0; i < len(s); i++ {
		d := uint64(s[i] - '0')
		if d > 9 {
			return 0, false, false
		}
		if mag > (math.MaxUint64-d)/10 {
			mag = math.MaxUint64
			continue
		}
		mag = mag*10 + d
	}
	return mag, neg, true
}

// unsigned is number for values that must not be negative.
func unsigned(raw string) (uint64, bool, error) {
	mag, neg, ok, err := number(raw)
	return mag, ok && !neg, err
}

// paramName decodes a raw key into buf; keys longer than buf are returned
// empty, which matches no parameter the tracker reads. The names the
// tracker reads, sent plain as clients send them, are returned as they are.
func paramName(buf *[16]byte, raw string) (string, error) {
	switch raw {
	case "info_hash", "peer_id", "port", "uploaded", "downloaded", "left", "event",
		"numwant", "compact", "ip", "ipv4", "ipv6", "key":
		return raw, nil
	}
	n, err := unescape(buf[:], raw)
	if err != nil || n > len(buf) {
		return "", err
	}
	return aliasString(buf[:n]), nil
}

// parseAnnounce decodes an announce query into req. The error is a
// malformed (HTTP 400) or a failure (a bencoded failure reason).
func parseAnnounce(q string, req *announceRequest) error {
	*req = announceRequest{left: tracker.LeftUnknown, numWant: -1, compact: true}
	var keyBuf [16]byte
	haveHash, havePort := false, false
	for q != "" {
		var rawKey, raw string
		rawKey, raw, q = nextParam(q)
		name, err := paramName(&keyBuf, rawKey)
		if err != nil {
			return err
		}
		switch name {
		case "info_hash":
			if haveHash {
				return failTwoInfoHashes
			}
			n, err := unescape(req.infoHash[:], raw)
			switch {
			case err != nil:
				return err
			case n != len(req.infoHash):
				return failInfoHashLength
			}
			haveHash = true
		case "peer_id":
			n, err := unescape(req.peerID[:], raw)
			switch {
			case err != nil:
				return err
			case n != len(req.peerID):
				return failPeerIDLength
			}
		case "port":
			port, ok, err := unsigned(raw)
			switch {
			case err != nil:
				return err
			case !ok || port == 0 || port > math.MaxUint16:
				return failBadPort
			}
			req.port, havePort = uint16(port), true
		case "uploaded", "downloaded", "left":
			v, ok, err := unsigned(raw)
			switch {
			case err != nil:
				return err
			case !ok && name == "left":
				v = tracker.LeftUnknown
			case !ok:
				v = 0
			}
			switch name {
			case "uploaded":
				req.uploaded = v
			case "downloaded":
				req.downloaded = v
			default:
				req.left = v
			}
		case "event":
			var buf [16]byte
			n, err := unescape(buf[:], raw)
			if err != nil {
				return err
			}
			// An unknown event is a plain announce, as in opentracker.
			req.event, _ = tracker.ParseEvent(buf[:min(n, len(buf))])
		case "numwant":
			mag, neg, ok, err := number(raw)
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
			n, err := unescape(buf[:], raw)
			if err != nil {
				return err
			}
			req.compact = n != 1 || buf[0] != '0'
		case "ip", "ipv4", "ipv6":
			var buf [64]byte
			n, err := unescape(buf[:], raw)
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
			case name == "ip":
				req.ip = hop
			case name == "ipv4" && hop.Is4():
				req.ipv4 = netip.AddrPortFrom(hop, port)
			case name == "ipv6" && hop.Is6():
				req.ipv6 = netip.AddrPortFrom(hop, port)
			}
		case "key":
			var buf [32]byte
			n, err := unescape(buf[:], raw)
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

// peerKey turns BEP 3's free-form "key" into the store's 32-bit key: the
// 8-hex-digit form most clients send is read as the number itself (so it
// matches the same client's BEP 15 key), anything else is hashed.
func peerKey(b []byte) uint32 {
	var k uint32
	for _, c := range b {
		d, ok := unhex(c)
		if !ok || len(b) != 8 {
			return fnv1a(b)
		}
		k = k<<4 | uint32(d)
	}
	if len(b) != 8 {
		return fnv1a(b)
	}
	return k
}

// fnv1a is the 32-bit FNV-1a hash, written out because hash/fnv's
// interface value would allocate on every announce.
func fnv1a(b []byte) uint32 {
	h := uint32(2166136261)
	for _, c := range b {
		h ^= uint32(c)
		h *= 16777619
	}
	return h
}

// parseScrape decodes the info_hash parameters of a scrape query into
// hashes (BEP 48) and returns how many it found. Hashes beyond len(hashes)
// are dropped unchecked, as opentracker drops them.
func parseScrape(q string, hashes []swarm.InfoHash) (int, error) {
	var keyBuf [16]byte
	count := 0
	for q != "" && count < len(hashes) {
		var rawKey, raw string
		rawKey, raw, q = nextParam(q)
		name, err := paramName(&keyBuf, rawKey)
		if err != nil {
			return 0, err
		}
		if name != "info_hash" {
			continue
		}
		n, err := unescape(hashes[count][:], raw)
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
