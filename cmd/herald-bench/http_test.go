package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/url"
	"strings"
	"testing"
)

// otAnnounce is opentracker's reply to a compact announce, as recorded in
// opentracker.md §14 (one peer: 127.0.0.1:51413).
const otAnnounce = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 98\r\n\r\n" +
	"d8:completei0e10:downloadedi0e10:incompletei1e8:intervali1900e12:min intervali950e5:peers6:\x7f\x00\x00\x01\xc8\xd5e"

func TestReadHTTPResponse(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		status  int
		body    string
		closing bool
		err     error
	}{
		{"opentracker announce", otAnnounce, 200, otAnnounce[len(otAnnounce)-98:], false, nil},
		{"HTTP/1.0 closes", "HTTP/1.0 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: 9\r\n\r\nnot found", 404, "not found", true, nil},
		{"Connection: close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nde", 200, "de", true, nil},
		{"no length reads to EOF", "HTTP/1.1 200 OK\r\n\r\nde", 200, "de", true, nil},
		{"truncated body", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nde", 0, "", true, io.ErrUnexpectedEOF},
		{"garbage status", "SSH-2.0-OpenSSH\r\n\r\n", 0, "", true, errMalformedHTTP},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 0, "", true, errMalformedHTTP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sent bytes.Buffer
			status, body, closing, err := readHTTPResponse(&sent, []byte("GET / HTTP/1.1\r\n\r\n"), bufio.NewReader(strings.NewReader(tt.raw)), nil)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			if status != tt.status || string(body) != tt.body || closing != tt.closing {
				t.Errorf("got %d %q close=%v, want %d %q close=%v", status, body, closing, tt.status, tt.body, tt.closing)
			}
			if sent.String() != "GET / HTTP/1.1\r\n\r\n" {
				t.Errorf("sent %q", sent.String())
			}
		})
	}
}

func TestCheckHTTPAnnounce(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		numWant int
		kind    errKind
	}{
		{"opentracker", otAnnounce[len(otAnnounce)-98:], 30, errNone},
		{"peers6 only", "d8:intervali1800e6:peers618:" + strings.Repeat("x", 18) + "e", 30, errNone},
		{"both families count together", "d8:intervali1800e5:peers12:" + strings.Repeat("x", 12) + "6:peers618:" + strings.Repeat("x", 18) + "e", 2, errPeerCount},
		{"failure", "d14:failure reason63:Requested download is not authorized for use with this tracker.e", 30, errFailure},
		{"over numwant", "d8:intervali1800e5:peers12:" + strings.Repeat("x", 12) + "e", 1, errPeerCount},
		{"more than the swarm", "d8:completei0e10:incompletei1e8:intervali1800e5:peers12:" + strings.Repeat("x", 12) + "e", 30, errPeerCount},
		{"ragged peers", "d8:intervali1800e5:peers5:xxxxxe", 30, errSize},
		{"dictionary peers", "d8:intervali1800e5:peerslee", 30, errSize},
		{"no interval", "d5:peers0:e", 30, errMissingKey},
		{"no peers", "d8:intervali1800ee", 30, errMissingKey},
		{"zero interval", "d8:intervali0e5:peers0:e", 30, errInterval},
		{"unsorted keys", "d5:peers0:8:intervali1800ee", 30, errBencode},
		{"not a dictionary", "i3e", 30, errBencode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := checkHTTPAnnounce([]byte(tt.body), tt.numWant); got != tt.kind {
				t.Errorf("got %v, want %v", got, tt.kind)
			}
		})
	}
}

func TestCheckHTTPScrape(t *testing.T) {
	var a, b [20]byte
	a[0], b[0] = 'a', 'b'
	entry := "d8:completei1e10:downloadedi0e10:incompletei2ee"
	tests := []struct {
		name string
		body string
		kind errKind
	}{
		{"two known", "d5:filesd20:" + string(a[:]) + entry + "20:" + string(b[:]) + entry + "ee", errNone},
		{"unknown left out", "d5:filesd20:" + string(a[:]) + entry + "ee", errNone},
		{"empty", "d5:filesdee", errNone},
		{"unrequested hash", "d5:filesd20:" + strings.Repeat("c", 20) + entry + "ee", errSize},
		{"missing count", "d5:filesd20:" + string(a[:]) + "d8:completei1eeee", errMissingKey},
		{"no files", "de", errMissingKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := checkHTTPScrape([]byte(tt.body), [][20]byte{a, b}); got != tt.kind {
				t.Errorf("got %v, want %v", got, tt.kind)
			}
		})
	}
}

func TestAppendHTTPAnnounceEscapes(t *testing.T) {
	hash := [20]byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 'A', '~', ' ', '%', '&'}
	req := string(appendHTTPAnnounce(nil, []byte("/announce"), hash, peerID(7), 51413, 0, udpEventCompleted, 30))
	u, err := url.ParseRequestURI(strings.TrimPrefix(req, "GET "))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if got := q.Get("info_hash"); got != string(hash[:]) {
		t.Errorf("info_hash %q, want %q", got, hash[:])
	}
	for k, want := range map[string]string{"peer_id": "-HB0100-000000000007", "port": "51413", "left": "0", "event": "completed", "numwant": "30", "compact": "1"} {
		if got := q.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if u.Path != "/announce" {
		t.Errorf("path %q", u.Path)
	}
}

func FuzzReadHTTPResponse(f *testing.F) {
	f.Add([]byte(otAnnounce))
	f.Add([]byte("HTTP/1.0 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found"))
	f.Add([]byte("HTTP/1.1 200 OK\r\n\r\nde"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		status, body, _, err := readHTTPResponse(io.Discard, nil, bufio.NewReader(bytes.NewReader(raw)), nil)
		if err != nil {
			return
		}
		if status < 100 || status > 999 || len(body) > len(raw) {
			t.Fatalf("status %d, body of %d bytes from %d", status, len(body), len(raw))
		}
		_ = checkHTTPAnnounce(body, 30)
		_ = checkHTTPScrape(body, nil)
	})
}
