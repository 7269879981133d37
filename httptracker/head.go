package httptracker

import (
	"bytes"
	"encoding/binary"
	"unsafe"
)

// The fast path (loop_linux.go) answers the requests nearly every client
// sends, a GET of /announce or /scrape in one well-formed HTTP/1.x head,
// without net/http. parseRequestHead recognises exactly those; anything it
// does not recognise goes to net/http with the bytes read so far, so odd
// but legal requests (bare LF line ends, folded headers, percent-encoded
// paths, bodies, upgrades) keep net/http's full behaviour and errors.

// headResult says what parseRequestHead made of a buffer.
type headResult uint8

const (
	headIncomplete headResult = iota // no end of head yet: read more
	headFast                         // a request the fast path answers
	headOther                        // anything else: hand it to net/http
)

// maxForwarded is how many X-Forwarded-For headers the fast path keeps;
// a request with more goes to net/http, which keeps them all.
const maxForwarded = 4

// requestHead is what the fast path needs of a request head. Its strings
// alias the connection's buffer and are valid until the buffer is reused.
type requestHead struct {
	target    string // origin-form request target: path and query
	http10    bool
	keepAlive bool // the client keeps the connection open after the reply
	forwarded [maxForwarded]string
	nForward  int
	realIP    [1]string
	nRealIP   int
}

// proxyHeader returns the values of the header Config.ProxyHeader names
// (X-Forwarded-For or X-Real-IP), in order.
func (h *requestHead) proxyHeader(name string) []string {
	if name == "X-Real-IP" {
		return h.realIP[:h.nRealIP]
	}
	return h.forwarded[:h.nForward]
}

var headEnd = []byte("\r\n\r\n")

// parseRequestHead reads the request head at the start of b into h and
// returns its length (with the blank line) when the result is headFast.
func parseRequestHead(b []byte, h *requestHead) (int, headResult) {
	// Cheap checks first: anything but GET is never ours, and saying so
	// early spares waiting for the rest of a head net/http will read.
	if !bytes.HasPrefix(b, []byte("GET /")) {
		if len(b) >= 5 || !bytes.HasPrefix([]byte("GET /"), b) {
			return 0, headOther
		}
		return 0, headIncomplete
	}
	// The lines are read as they come, each to its CRLF, up to the blank
	// line that ends the head. Whatever the fast path does not take (a
	// line, a bare LF) stops the walk, and notOurs tells a whole head,
	// for net/http to answer, from one still arriving.
	*h = requestHead{}
	line, rest, ok := cutLine(b)
	if !ok || !h.parseRequestLine(line) {
		return notOurs(b)
	}
	hosts := 0
	closeConn, keepAlive := false, false
	for {
		if line, rest, ok = cutLine(rest); !ok {
			return notOurs(b)
		}
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !isToken(line[:colon]) {
			return notOurs(b) // no name, a space before the colon, or a folded line
		}
		name, value := line[:colon], trimSpace(line[colon+1:])
		if !isFieldValue(value) {
			return notOurs(b)
		}
		switch {
		case equalFold(name, "host"):
			hosts++
		case equalFold(name, "connection"):
			c, k, upgrade := connectionOptions(value)
			if upgrade {
				return notOurs(b)
			}
			closeConn, keepAlive = closeConn || c, keepAlive || k
		case equalFold(name, "content-length"):
			if string(value) != "0" {
				return notOurs(b)
			}
		case equalFold(name, "transfer-encoding"), equalFold(name, "upgrade"), equalFold(name, "expect"):
			return notOurs(b)
		case equalFold(name, "x-forwarded-for"):
			if h.nForward == maxForwarded {
				return notOurs(b)
			}
			h.forwarded[h.nForward] = aliasString(value)
			h.nForward++
		case equalFold(name, "x-real-ip"):
			if h.nRealIP == len(h.realIP) {
				return notOurs(b)
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
	return len(b) - len(rest), headFast
}

// notOurs is parseRequestHead's result for a head the fast path does not
// take: net/http's as soon as the head is whole (or has a bare LF line
// end), after more reading while it is not.
func notOurs(b []byte) (int, headResult) {
	if bytes.Contains(b, headEnd) || bytes.Contains(b, []byte("\n\n")) {
		return 0, headOther
	}
	return 0, headIncomplete
}

// parseRequestLine reads "GET /target HTTP/1.x".
func (h *requestHead) parseRequestLine(line []byte) bool {
	line = line[len("GET "):]
	// One pass over the target to the space that ends it. net/http
	// unescapes the path (and rejects bad escapes there) and drops a
	// fragment; such targets are rare enough to leave to it.
	i := 0
	for i < len(line) && !pathStop[line[i]] {
		i++
	}
	if i < len(line) && line[i] == '?' {
		// The query is most of the line: skip it eight bytes at a time
		// while no byte of a word is one that stops it.
		for i++; i+8 <= len(line) && !queryStopIn(binary.LittleEndian.Uint64(line[i:])); i += 8 {
		}
		for ; i < len(line) && !queryStop[line[i]]; i++ {
		}
	}
	if i == len(line) || line[i] != ' ' {
		return false
	}
	target, version := line[:i], line[i+1:]
	switch string(version) {
	case "HTTP/1.1":
	case "HTTP/1.0":
		h.http10 = true
	default:
		return false
	}
	h.target = aliasString(target)
	return true
}

// queryStopIn reports whether one of the eight bytes in x is marked in
// queryStop. It may not miss one; it may report one where a stopping
// byte below it made a borrow or carry: the byte loop after it finds which.
func queryStopIn(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	outside := (x - ones*'!') | x // a high bit for bytes below '!' or from 0x80
	del := (x + ones) &^ x        // a high bit for 0x7f
	hash := x ^ ones*'#'          // a zero byte for '#'
	hash = (hash - ones) &^ hash  // a high bit for it
	return (outside|del|hash)&highs != 0
}

// queryStop marks the bytes that end a request target's query: the space
// before the version, and those the fast path leaves to net/http
// (controls, non-ASCII, a fragment). pathStop adds the query's '?' and the
// path's escapes.
var queryStop, pathStop = func() (query, path [256]bool) {
	for c := range query {
		query[c] = c <= ' ' || c >= 0x7f || c == '#'
		path[c] = query[c] || c == '?' || c == '%'
	}
	return query, path
}()

// connectionOptions reads a Connection header's options; upgrade asks for
// net/http (and the WebSocket tracker behind it).
func connectionOptions(v []byte) (closeConn, keepAlive, upgrade bool) {
	for len(v) > 0 {
		var opt []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			opt, v = trimSpace(v[:i]), v[i+1:]
		} else {
			opt, v = trimSpace(v), nil
		}
		closeConn = closeConn || equalFold(opt, "close")
		keepAlive = keepAlive || equalFold(opt, "keep-alive")
		upgrade = upgrade || equalFold(opt, "upgrade")
	}
	return closeConn, keepAlive, upgrade
}

// cutLine splits b after its first line end; ok is false when that is a
// bare LF or b has none.
func cutLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 1 || b[i-1] != '\r' {
		return nil, nil, false
	}
	return b[:i-1], b[i+1:], true
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// isToken reports whether b is an RFC 9110 token (a valid field name).
func isToken(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 || !tokenChars[c] {
			return false
		}
	}
	return len(b) > 0
}

var tokenChars = func() (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// isFieldValue rejects control bytes other than tab, as net/http does.
func isFieldValue(b []byte) bool {
	for _, c := range b {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// equalFold compares an ASCII header token case-insensitively with a
// lower-case name.
func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// aliasString returns b as a string without copying: the fast path answers
// a request before its buffer is reused, and nothing it calls keeps the
// strings (the query parser copies what it stores).
func aliasString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
