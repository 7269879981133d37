package bencode

import "strconv"

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
