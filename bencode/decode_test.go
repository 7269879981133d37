package bencode

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want any
	}{
		{"i3e", int64(3)},
		{"i-3e", int64(-3)},
		{"i0e", int64(0)},
		{"i9223372036854775807e", int64(9223372036854775807)},
		{"i-9223372036854775808e", int64(-9223372036854775808)},
		{"4:spam", "spam"},
		{"0:", ""},
		{"3:\x00\xffe", "\x00\xffe"},
		{"le", []any{}},
		{"de", map[string]any{}},
		{"l4:spam4:eggse", []any{"spam", "eggs"}},
		{"d3:cow3:moo4:spam4:eggse", map[string]any{"cow": "moo", "spam": "eggs"}},
		{"d4:spaml1:a1:bee", map[string]any{"spam": []any{"a", "b"}}},
		{"d0:i1e1:ai2ee", map[string]any{"": int64(1), "a": int64(2)}},
		// Keys sort as raw bytes: "A" < "a" < "\x80".
		{"d1:Ai1e1:ai2e1:\x80i3ee", map[string]any{"A": int64(1), "a": int64(2), "\x80": int64(3)}},
		{"d8:completei0e10:downloadedi0e10:incompletei1e8:intervali1900e12:min intervali950e5:peers6:\x7f\x00\x00\x01\xc8\xd5e",
			map[string]any{"complete": int64(0), "downloaded": int64(0), "incomplete": int64(1), "interval": int64(1900),
				"min interval": int64(950), "peers": "\x7f\x00\x00\x01\xc8\xd5"}},
	} {
		got, err := Decode([]byte(tc.in))
		if err != nil {
			t.Errorf("Decode(%q): %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Decode(%q) = %#v, want %#v", tc.in, got, tc.want)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	deep := strings.Repeat("l", MaxDepth+1) + strings.Repeat("e", MaxDepth+1)
	okDeep := strings.Repeat("l", MaxDepth) + strings.Repeat("e", MaxDepth)
	if _, err := Decode([]byte(okDeep)); err != nil {
		t.Fatalf("nesting of exactly MaxDepth rejected: %v", err)
	}
	for _, tc := range []struct {
		in     string
		offset int
		msg    string
	}{
		{"", 0, "unexpected end of input"},
		{"i03e", 1, "leading zero"},
		{"i-03e", 1, "leading zero"},
		{"i00e", 1, "leading zero"},
		{"i-0e", 1, "negative zero"},
		{"ie", 1, "missing digits"},
		{"i-e", 1, "missing digits"},
		{"i+3e", 1, "missing digits"},
		{"i3", 2, "unexpected end of input"},
		{"i3x", 2, `expected 'e' after digits, found 'x'`},
		{"i1.5e", 2, `expected 'e' after digits, found '.'`},
		{"i9223372036854775808e", 19, "integer overflows int64"},
		{"i-9223372036854775809e", 20, "integer overflows int64"},
		{"i99999999999999999999e", 19, "integer overflows int64"},
		{"03:abc", 0, "leading zero"},
		{"-1:a", 0, `invalid byte '-'`},
		{"5:abc", 0, "string length 5 beyond end of input"},
		{"99999999999999999999:", 18, "integer overflows int64"},
		{"4", 1, "unexpected end of input"},
		{"4x", 1, `expected ':' after digits, found 'x'`},
		{"l", 1, "unterminated list"},
		{"l4:spam", 7, "unterminated list"},
		{"d", 1, "unterminated dictionary"},
		{"d3:cow", 6, "unexpected end of input"},
		{"di1ei2ee", 1, "dictionary key is not a byte string"},
		{"d4:spam4:eggs3:cow3:mooe", 13, `dictionary key "cow" not sorted after "spam"`},
		{"d3:cow3:moo3:cow3:mooe", 11, `duplicate dictionary key "cow"`},
		{"d1:ai1e1:Ai2ee", 7, `dictionary key "A" not sorted after "a"`},
		{"i3ei4e", 3, "trailing data after value"},
		{"4:spamx", 6, "trailing data after value"},
		{"dex", 2, "trailing data after value"},
		{"x", 0, `invalid byte 'x'`},
		{"e", 0, `invalid byte 'e'`},
		{deep, MaxDepth, "nesting deeper than 64"},
		{strings.Repeat("d0:", MaxDepth+1), 3 * MaxDepth, "nesting deeper than 64"},
	} {
		v, err := Decode([]byte(tc.in))
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Decode(%.30q) = %#v, %v; want SyntaxError %q", tc.in, v, err, tc.msg)
			continue
		}
		if se.Offset != tc.offset || se.Msg != tc.msg {
			t.Errorf("Decode(%.30q): error at %d %q, want at %d %q", tc.in, se.Offset, se.Msg, tc.offset, tc.msg)
		}
	}
}

func BenchmarkDecodeReply(b *testing.B) {
	b.ReportAllocs()
	in := appendReply(nil, make([]byte, 6*50))
	for b.Loop() {
		if _, err := Decode(in); err != nil {
			b.Fatal(err)
		}
	}
}
