package bencode

import (
	"fmt"
	"slices"
	"strconv"
)

// AppendInt appends the bencoded integer i ("i<decimal>e") to dst.
func AppendInt(dst []byte, i int64) []byte {
	dst = append(dst, 'i')
	dst = strconv.AppendInt(dst, i, 10)
	return append(dst, 'e')
}

// AppendString appends the bencoded byte string s ("<length>:<bytes>") to dst.
func AppendString(dst []byte, s string) []byte {
	dst = strconv.AppendInt(dst, int64(len(s)), 10)
	dst = append(dst, ':')
	return append(dst, s...)
}

// AppendBytes appends the bencoded byte string b to dst.
func AppendBytes(dst []byte, b []byte) []byte {
	dst = strconv.AppendInt(dst, int64(len(b)), 10)
	dst = append(dst, ':')
	return append(dst, b...)
}

// AppendStringHeader appends only the length prefix of a byte string of n
// bytes ("<n>:"), for a caller that writes the n bytes itself, for example
// compact peers gathered from several slices.
func AppendStringHeader(dst []byte, n int) []byte {
	dst = strconv.AppendInt(dst, int64(n), 10)
	return append(dst, ':')
}

// AppendDictStart, AppendListStart and AppendEnd open a dictionary, open a
// list, and close either.
func AppendDictStart(dst []byte) []byte { return append(dst, 'd') }
func AppendListStart(dst []byte) []byte { return append(dst, 'l') }
func AppendEnd(dst []byte) []byte       { return append(dst, 'e') }

// AppendKeyInt appends a dictionary entry whose value is an integer.
func AppendKeyInt(dst []byte, key string, i int64) []byte {
	return AppendInt(AppendString(dst, key), i)
}

// AppendKeyString appends a dictionary entry whose value is a byte string.
func AppendKeyString(dst []byte, key, s string) []byte {
	return AppendString(AppendString(dst, key), s)
}

// AppendKeyBytes appends a dictionary entry whose value is a byte string.
func AppendKeyBytes(dst []byte, key string, b []byte) []byte {
	return AppendBytes(AppendString(dst, key), b)
}

// AppendValue appends a value of the types Decode returns (int64, string,
// []any, map[string]any) and also int, []byte and map[string]any values of
// those types, nested. Map keys are written in sorted order. It allocates
// (for sorting keys) and is meant for tests and clients, not hot paths.
func AppendValue(dst []byte, v any) ([]byte, error) {
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
			if dst, err = AppendValue(dst, e); err != nil {
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
			if dst, err = AppendValue(dst, v[k]); err != nil {
				return dst, fmt.Errorf("dictionary key %q: %w", k, err)
			}
		}
		return AppendEnd(dst), nil
	}
	return dst, fmt.Errorf("bencode: cannot encode %T", v)
}
