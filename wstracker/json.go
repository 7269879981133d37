package wstracker

import (
	"unicode/utf16"
	"unicode/utf8"
)

// scanner is a validating JSON reader (RFC 8259) over one message. It
// returns values as spans of the message, so that offers and answers are
// relayed without a copy and nothing is decoded that the tracker does not
// read. encoding/json spends about 20 ns per byte on a WebRTC offer's SDP;
// this spends about one.
type scanner struct {
	data []byte
	pos  int
}

// maxDepth bounds nesting inside relayed objects; an SDP object is flat.
const maxDepth = 32

func (s *scanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// atEnd reports whether only spaces are left.
func (s *scanner) atEnd() bool {
	s.skipSpace()
	return s.pos == len(s.data)
}

// peek returns the next non-space byte, or 0 at the end.
func (s *scanner) peek() byte {
	s.skipSpace()
	if s.pos == len(s.data) {
		return 0
	}
	return s.data[s.pos]
}

// value scans one value of any type and returns its bytes.
func (s *scanner) value(depth int) ([]byte, bool) {
	c := s.peek()
	start := s.pos
	var ok bool
	switch {
	case c == '"':
		ok = s.str()
	case c == '{':
		ok = s.object(depth+1, nil)
	case c == '[':
		ok = s.array(depth+1, nil)
	case c == 't':
		ok = s.literal("true")
	case c == 'f':
		ok = s.literal("false")
	case c == 'n':
		ok = s.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		ok = s.number()
	}
	return s.data[start:s.pos], ok
}

// stringOrNull scans a value that must be a string or null (a field the
// tracker reads as a string); it returns nil for null.
func (s *scanner) stringOrNull() ([]byte, bool) {
	switch s.peek() {
	case '"':
		start := s.pos
		ok := s.str()
		return s.data[start:s.pos], ok
	case 'n':
		return nil, s.literal("null")
	}
	return nil, false
}

func (s *scanner) literal(lit string) bool {
	if len(s.data)-s.pos < len(lit) || string(s.data[s.pos:s.pos+len(lit)]) != lit {
		return false
	}
	s.pos += len(lit)
	return true
}

func (s *scanner) digits() bool {
	start := s.pos
	for s.pos < len(s.data) && s.data[s.pos] >= '0' && s.data[s.pos] <= '9' {
		s.pos++
	}
	return s.pos > start
}

// number scans -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() bool {
	if s.data[s.pos] == '-' {
		s.pos++
	}
	if s.pos < len(s.data) && s.data[s.pos] == '0' {
		s.pos++
	} else if !s.digits() {
		return false
	}
	if s.pos < len(s.data) && s.data[s.pos] == '.' {
		s.pos++
		if !s.digits() {
			return false
		}
	}
	if s.pos < len(s.data) && (s.data[s.pos] == 'e' || s.data[s.pos] == 'E') {
		s.pos++
		if s.pos < len(s.data) && (s.data[s.pos] == '+' || s.data[s.pos] == '-') {
			s.pos++
		}
		if !s.digits() {
			return false
		}
	}
	return true
}

// str scans a string, checking its escapes; the scanner is on its quote.
func (s *scanner) str() bool {
	b, i := s.data, s.pos+1
	for i < len(b) {
		c := b[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			i++
			continue
		}
		switch {
		case c == '"':
			s.pos = i + 1
			return true
		case c < 0x20 || i+1 == len(b):
			return false
		}
		switch b[i+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i += 2
		case 'u':
			if len(b)-i < 6 || hex4(b[i+2:i+6]) < 0 {
				return false
			}
			i += 6
		default:
			return false
		}
	}
	return false
}

// object scans an object; the scanner is on its brace. member, when not
// nil, scans each member's value itself, knowing its (raw, quoted) key.
func (s *scanner) object(depth int, member func(key []byte) bool) bool {
	if depth > maxDepth {
		return false
	}
	s.pos++
	if s.peek() == '}' {
		s.pos++
		return true
	}
	for {
		if s.peek() != '"' {
			return false
		}
		start := s.pos
		if !s.str() {
			return false
		}
		key := s.data[start:s.pos]
		if s.peek() != ':' {
			return false
		}
		s.pos++
		if member != nil {
			if !member(key) {
				return false
			}
		} else if _, ok := s.value(depth); !ok {
			return false
		}
		switch s.peek() {
		case ',':
			s.pos++
		case '}':
			s.pos++
			return true
		default:
			return false
		}
	}
}

// array scans an array; elem, when not nil, scans each element itself.
func (s *scanner) array(depth int, elem func() bool) bool {
	if depth > maxDepth {
		return false
	}
	s.pos++
	if s.peek() == ']' {
		s.pos++
		return true
	}
	for {
		if elem != nil {
			if !elem() {
				return false
			}
		} else if _, ok := s.value(depth); !ok {
			return false
		}
		switch s.peek() {
		case ',':
			s.pos++
		case ']':
			s.pos++
			return true
		default:
			return false
		}
	}
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// unquote appends the text of a scanned (so well-formed) string to dst,
// resolving escapes as encoding/json does: a lone surrogate becomes
// U+FFFD.
func unquote(dst, quoted []byte) []byte {
	b := quoted[1 : len(quoted)-1]
	for i := 0; i < len(b); {
		c := b[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		switch b[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(b[i+2:])
			i += 6
			if utf16.IsSurrogate(r) {
				if i+6 <= len(b) && b[i] == '\\' && b[i+1] == 'u' {
					if r2 := utf16.DecodeRune(r, hex4(b[i+2:])); r2 != utf8.RuneError {
						r = r2
						i += 6
					} else {
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, b[i+1])
		}
		i += 2
	}
	return dst
}

// keyIs reports whether a scanned key is name.
func keyIs(quoted []byte, name string) bool {
	if len(quoted) == len(name)+2 && string(quoted[1:len(quoted)-1]) == name {
		return true
	}
	// Escaped keys are legal JSON; no client sends them.
	if len(quoted) > 6*len(name)+2 {
		return false
	}
	var buf [64]byte
	return string(unquote(buf[:0], quoted)) == name
}
