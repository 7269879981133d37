package bencode

import (
	"fmt"
	"math"
	"slices"
	"testing"
)

func TestAppendGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  []byte
		want string
	}{
		// The examples of BEP 3's "bencoding" section.
		{"int", AppendInt(nil, 3), "i3e"},
		{"negative int", AppendInt(nil, -3), "i-3e"},
		{"zero", AppendInt(nil, 0), "i0e"},
		{"min int64", AppendInt(nil, math.MinInt64), "i-9223372036854775808e"},
		{"max int64", AppendInt(nil, math.MaxInt64), "i9223372036854775807e"},
		{"string", AppendString(nil, "spam"), "4:spam"},
		{"empty string", AppendString(nil, ""), "0:"},
		{"bytes", AppendBytes(nil, []byte{0, 0xff, ':'}), "3:\x00\xff:"},
		{"list", AppendEnd(AppendString(AppendString(AppendListStart(nil), "spam"), "eggs")), "l4:spam4:eggse"},
		{"dict", AppendEnd(AppendKeyString(AppendKeyString(AppendDictStart(nil), "cow", "moo"), "spam", "eggs")), "d3:cow3:moo4:spam4:eggse"},
		{"dict with list", AppendEnd(AppendEnd(AppendString(AppendString(AppendString(AppendListStart(AppendString(AppendDictStart(nil), "spam")), "a"), "b"), ""))), "d4:spaml1:a1:b0:ee"},
		{"key int", AppendKeyInt([]byte("x"), "interval", 1800), "x8:intervali1800e"},
		{"key bytes", AppendKeyBytes(nil, "peers", []byte{127, 0, 0, 1, 0x1a, 0xe1}), "5:peers6:\x7f\x00\x00\x01\x1a\xe1"},
	} {
		if string(tc.got) != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}

func TestAppendValueSortsKeys(t *testing.T) {
	v := map[string]any{
		"peers":        "",
		"min interval": int64(900),
		"interval":     1800,
		"complete":     int64(1),
		"incomplete":   int64(2),
		"downloaded":   int64(0),
		"peers6":       []byte{},
		"z":            []any{int64(-1), map[string]any{"b": "", "a": ""}},
	}
	got, err := appendValue(nil, v)
	if err != nil {
		t.Fatal(err)
	}
	want := "d8:completei1e10:downloadedi0e10:incompletei2e8:intervali1800e12:min intervali900e5:peers0:6:peers60:1:zli-1ed1:a0:1:b0:eee"
	if string(got) != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if _, err := appendValue(nil, []any{1.5}); err == nil {
		t.Error("appendValue(float) succeeded")
	}
}

// A reply-sized dictionary written into a buffer with room must not allocate:
// the HTTP tracker encodes every announce reply this way.
func TestAppendNoAllocs(t *testing.T) {
	buf := make([]byte, 0, 512)
	peers := make([]byte, 6*50)
	allocs := testing.AllocsPerRun(100, func() {
		buf = appendReply(buf[:0], peers)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per reply, want 0", allocs)
	}
}

func appendReply(dst, peers []byte) []byte {
	dst = AppendDictStart(dst)
	dst = AppendKeyInt(dst, "complete", 12)
	dst = AppendKeyInt(dst, "downloaded", 345)
	dst = AppendKeyInt(dst, "incomplete", 6)
	dst = AppendKeyInt(dst, "interval", 1800)
	dst = AppendKeyInt(dst, "min interval", 900)
	dst = AppendKeyBytes(dst, "peers", peers)
	return AppendEnd(dst)
}

func BenchmarkAppendInt(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 32)
	for b.Loop() {
		buf = AppendInt(buf[:0], 1234567890)
	}
}

func BenchmarkAppendString(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 64)
	for b.Loop() {
		buf = AppendString(buf[:0], "min interval")
	}
}

func BenchmarkAppendReply(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 512)
	peers := make([]byte, 6*50)
	for b.Loop() {
		buf = appendReply(buf[:0], peers)
	}
	b.SetBytes(int64(len(buf)))
}

// appendValue appends a value of the types Decode returns (int64, string,
// []any, map[string]any) and also int and []byte, nested, with map keys in
// sorted order: the tests' encoder of whole values, which herald itself
// never needs.
func appendValue(dst []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case int64:
		return AppendInt(dst, v), nil
	case int:
		return AppendInt(dst, int64(v)), nil
	case string:
		return AppendString(dst, v), nil
	case []byte:
		return AppendBytes(dst, v), nil
	case []any:
		dst = AppendListStart(dst)
		for i, e := range v {
			var err error
			if dst, err = appendValue(dst, e); err != nil {
				return dst, fmt.Errorf("list element %d: %w", i, err)
			}
		}
		return AppendEnd(dst), nil
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys) // Go compares strings bytewise, as BEP 3 sorts keys
		dst = AppendDictStart(dst)
		for _, k := range keys {
			dst = AppendString(dst, k)
			var err error
			if dst, err = appendValue(dst, v[k]); err != nil {
				return dst, fmt.Errorf("dictionary key %q: %w", k, err)
			}
		}
		return AppendEnd(dst), nil
	}
	return dst, fmt.Errorf("bencode: cannot encode %T", v)
}
