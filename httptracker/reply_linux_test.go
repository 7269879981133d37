//go:build !nofastpath

package httptracker

import (
	"strconv"
	"testing"
)

// appendReplyRef is appendReply as it was before its fixed parts were
// joined into constants: the reference its bytes are held to.
func appendReplyRef(dst []byte, badRequest bool, body []byte, head *requestHead, date []byte) []byte {
	if head.http10 {
		dst = append(dst, "HTTP/1.0"...)
	} else {
		dst = append(dst, "HTTP/1.1"...)
	}
	if badRequest {
		dst = append(dst, " 400 Bad Request\r\nContent-Type: text/plain\r\nX-Content-Type-Options: nosniff\r\n"...)
	} else {
		dst = append(dst, " 200 OK\r\nContent-Type: text/plain\r\n"...)
	}
	dst = append(dst, "Content-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(body)), 10)
	dst = append(dst, "\r\nDate: "...)
	dst = append(dst, date...)
	switch {
	case !head.keepAlive:
		dst = append(dst, "\r\nConnection: close"...)
	case head.http10:
		dst = append(dst, "\r\nConnection: keep-alive"...)
	}
	dst = append(dst, "\r\n\r\n"...)
	return append(dst, body...)
}

func TestAppendReplySameAsReference(t *testing.T) {
	date := []byte("Mon, 07 Dec 2026 19:00:00 GMT")
	for _, body := range []string{"", "d5:peers0:e", string(make([]byte, 12345))} {
		for _, bad := range []bool{false, true} {
			for _, http10 := range []bool{false, true} {
				for _, keepAlive := range []bool{false, true} {
					head := requestHead{http10: http10, keepAlive: keepAlive}
					got := string(appendReply([]byte("x"), bad, []byte(body), &head, date))
					want := string(appendReplyRef([]byte("x"), bad, []byte(body), &head, date))
					if got != want {
						t.Errorf("bad %v 1.0 %v keep-alive %v body %d bytes:\n got %q\nwant %q", bad, http10, keepAlive, len(body), got[:min(len(got), 200)], want[:min(len(want), 200)])
					}
				}
			}
		}
	}
}
