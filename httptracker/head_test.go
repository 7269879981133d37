package httptracker

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// FuzzParseRequestHead checks the fast path's parser against net/http's:
// every head it takes must be one net/http reads as the same GET, with the
// same target, connection persistence and forwarding headers.
func FuzzParseRequestHead(f *testing.F) {
	for _, s := range []string{
		"GET /announce?info_hash=aaaaaaaaaaaaaaaaaaaa&port=1 HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /scrape HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, close\r\nX-Forwarded-For: 1.2.3.4, 5.6.7.8\r\nX-Real-IP: 9.9.9.9\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\nGET /b HTTP/1.1\r\n",
		"GET /a HTTP/1.1\nHost: x\n\n",
		"GET /%61 HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var h requestHead
		n, res := parseRequestHead(b, &h)
		if res != headFast {
			return
		}
		if n > len(b) || !bytes.HasSuffix(b[:n], headEnd) {
			t.Fatalf("consumed %d of %d bytes: %q", n, len(b), b)
		}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(b[:n])))
		if err != nil {
			t.Fatalf("fast path takes %q, net/http refuses it: %v", b[:n], err)
		}
		if req.Method != "GET" || req.RequestURI != h.target || req.Close == h.keepAlive ||
			h.http10 != (req.ProtoMinor == 0) {
			t.Fatalf("%q: fast path target %q keep-alive %v 1.0 %v; net/http %s %q close %v %s",
				b[:n], h.target, h.keepAlive, h.http10, req.Method, req.RequestURI, req.Close, req.Proto)
		}
		for _, name := range []string{"X-Forwarded-For", "X-Real-IP"} {
			if !slices.Equal(h.proxyHeader(name), req.Header.Values(name)) {
				t.Fatalf("%q: %s %q; net/http %q", b[:n], name, h.proxyHeader(name), req.Header.Values(name))
			}
		}
		if _, _, hasQuery := strings.Cut(h.target, "?"); hasQuery != (req.URL.RawQuery != "" || req.URL.ForceQuery) {
			t.Fatalf("%q: query disagreement", b[:n])
		}
	})
}

// TestQueryStopIn checks the word test against the table for every byte
// in every position of a word of otherwise plain bytes.
func TestQueryStopIn(t *testing.T) {
	for c := range 256 {
		for pos := range 8 {
			w := []byte("aaaaaaaa")
			w[pos] = byte(c)
			if got := queryStopIn(binary.LittleEndian.Uint64(w)); got != queryStop[c] {
				t.Fatalf("queryStopIn(%q) = %v, table says %v", w, got, queryStop[c])
			}
		}
	}
	// Words of bytes around the edges: a stopping byte anywhere, with
	// any neighbours, is never missed.
	edges := []byte{0x00, '\t', ' ', '!', '"', '#', '$', '%', '&', '=', 'a', 0x7e, 0x7f, 0x80, 0xfe, 0xff}
	r := rand.New(rand.NewPCG(1, 2))
	for range 1 << 20 {
		var x uint64
		want := false
		for i := range 8 {
			c := edges[r.IntN(len(edges))]
			x |= uint64(c) << (8 * i)
			want = want || queryStop[c]
		}
		if want && !queryStopIn(x) {
			t.Fatalf("queryStopIn(%#x) misses a stopping byte", x)
		}
	}
}
