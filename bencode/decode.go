package bencode

import "fmt"

// MaxDepth bounds how deeply lists and dictionaries may nest in Decode's
// input, so hostile input cannot exhaust the stack. Tracker replies nest
// at most four deep (dict, files dict, per-hash dict; or dict, peers list,
// peer dict).
const MaxDepth = 64

// SyntaxError reports non-canonical or malformed bencoding and the byte
// offset in the input where it was found.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("bencode: %s at offset %d", e.Msg, e.Offset)
}

// Decode parses exactly one bencoded value filling all of data, and returns
// it as one of these Go types:
//
//	integer      int64
//	byte string  string (the raw bytes; Go strings may hold any bytes)
//	list         []any
//	dictionary   map[string]any
//
// Only canonical bencoding is accepted: integers without leading zeros, a
// plus sign or "-0"; string lengths without leading zeros; dictionary keys
// that are byte strings in strictly increasing order (so no duplicates);
// nothing after the value; nesting at most MaxDepth. Every other input is
// rejected with a *SyntaxError, which also covers string lengths and
// integers that overrun the input or int64.
func Decode(data []byte) (any, error) {
	d := decoder{data: data}
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	if d.off != len(data) {
		return nil, d.errorf("trailing data after value")
	}
	return v, nil
}

type decoder struct {
	data []byte
	off  int
}

func (d *decoder) errorf(format string, args ...any) error {
	return &SyntaxError{Offset: d.off, Msg: fmt.Sprintf(format, args...)}
}

func (d *decoder) value(depth int) (any, error) {
	if d.off >= len(d.data) {
		return nil, d.errorf("unexpected end of input")
	}
	switch c := d.data[d.off]; {
	case c == 'i':
		d.off++
		n, err := d.integer('e', true)
		return n, err
	case c >= '0' && c <= '9':
		return d.str()
	case c == 'l':
		if depth >= MaxDepth {
			return nil, d.errorf("nesting deeper than %d", MaxDepth)
		}
		d.off++
		list := []any{}
		for {
			if d.off >= len(d.data) {
				return nil, d.errorf("unterminated list")
			}
			if d.data[d.off] == 'e' {
				d.off++
				return list, nil
			}
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			list = append(list, v)
		}
	case c == 'd':
		if depth >= MaxDepth {
			return nil, d.errorf("nesting deeper than %d", MaxDepth)
		}
		d.off++
		dict := map[string]any{}
		prev, first := "", true
		for {
			if d.off >= len(d.data) {
				return nil, d.errorf("unterminated dictionary")
			}
			if d.data[d.off] == 'e' {
				d.off++
				return dict, nil
			}
			if c := d.data[d.off]; c < '0' || c > '9' {
				return nil, d.errorf("dictionary key is not a byte string")
			}
			keyOff := d.off
			key, err := d.str()
			if err != nil {
				return nil, err
			}
			if !first && key <= prev {
				d.off = keyOff
				if key == prev {
					return nil, d.errorf("duplicate dictionary key %q", key)
				}
				return nil, d.errorf("dictionary key %q not sorted after %q", key, prev)
			}
			prev, first = key, false
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			dict[key] = v
		}
	default:
		return nil, d.errorf("invalid byte %q", c)
	}
}

// integer parses a canonical decimal integer ending in term and consumes the
// terminator. signed allows a leading '-'.
func (d *decoder) integer(term byte, signed bool) (int64, error) {
	start := d.off
	neg := false
	if signed && d.off < len(d.data) && d.data[d.off] == '-' {
		neg = true
		d.off++
	}
	digits := d.off
	var n uint64
	for d.off < len(d.data) && d.data[d.off] >= '0' && d.data[d.off] <= '9' {
		// Accumulate the magnitude; 1<<63 is allowed only for a negative.
		if n > (1<<63)/10 {
			return 0, d.errorf("integer overflows int64")
		}
		n = n*10 + uint64(d.data[d.off]-'0')
		if n > 1<<63 || (n == 1<<63 && !neg) {
			return 0, d.errorf("integer overflows int64")
		}
		d.off++
	}
	switch {
	case d.off == digits:
		d.off = start
		return 0, d.errorf("missing digits")
	case d.data[digits] == '0' && d.off-digits > 1:
		d.off = start
		return 0, d.errorf("leading zero")
	case neg && n == 0:
		d.off = start
		return 0, d.errorf("negative zero")
	case d.off >= len(d.data):
		return 0, d.errorf("unexpected end of input")
	case d.data[d.off] != term:
		return 0, d.errorf("expected %q after digits, found %q", term, d.data[d.off])
	}
	d.off++
	if neg {
		return -int64(n-1) - 1, nil // n may be 1<<63
	}
	return int64(n), nil
}

func (d *decoder) str() (string, error) {
	start := d.off
	n, err := d.integer(':', false)
	if err != nil {
		return "", err
	}
	if n > int64(len(d.data)-d.off) {
		d.off = start
		return "", d.errorf("string length %d beyond end of input", n)
	}
	s := string(d.data[d.off : d.off+int(n)])
	d.off += int(n)
	return s, nil
}
