package httptracker

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"herald/swarm"
	"herald/tracker"
)

// hash20 is a 20-byte info_hash with bytes that must be escaped; q20 is its
// escaped form as clients send it.
var hash20 = swarm.InfoHash{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67}

const q20 = "%01%23%45%67%89%ab%cd%ef%01%23%45%67%89%ab%cd%ef%01%23%45%67"

const announceBase = "info_hash=" + q20 + "&port=6881"

// parseAnnounceCases and parseAnnounceErrorCases are the scanner's tables;
// they also seed FuzzParseAnnounce and FuzzParseScrape.
var parseAnnounceCases = []struct {
	query string
	want  announceRequest
}{
	// A real Transmission announce.
	{"info_hash=" + q20 + "&peer_id=-TR2940-abcdefghijkl&port=51413&uploaded=1&downloaded=2&left=100&numwant=80&key=0A1b2C3d&compact=1&supportcrypto=1&event=started",
		announceRequest{infoHash: hash20, peerID: swarm.PeerID([]byte("-TR2940-abcdefghijkl")), port: 51413, uploaded: 1, downloaded: 2,
			left: 100, event: swarm.EventStarted, numWant: 80, compact: true, key: 0x0a1b2c3d}},
	{announceBase, announceRequest{infoHash: hash20, port: 6881, left: tracker.LeftUnknown, numWant: -1, compact: true, key: 0}},
	{announceBase + "&left=0&event=completed", announceRequest{infoHash: hash20, port: 6881, event: swarm.EventCompleted, numWant: -1, compact: true}},
	{announceBase + "&left=-1", announceRequest{infoHash: hash20, port: 6881, left: tracker.LeftUnknown, numWant: -1, compact: true}},
	{announceBase + "&left=abc", announceRequest{infoHash: hash20, port: 6881, left: tracker.LeftUnknown, numWant: -1, compact: true}},
	{announceBase + "&left=99999999999999999999999", announceRequest{infoHash: hash20, port: 6881, left: tracker.LeftUnknown, numWant: -1, compact: true}},
	{announceBase + "&event=stopped&compact=0&numwant=-5", announceRequest{infoHash: hash20, port: 6881, left: tracker.LeftUnknown, event: swarm.EventStopped, numWant: -1}},
	{announceBase + "&event=paused&numwant=99999999999&compact=%30", announceRequest{infoHash: hash20, port: 6881, left: tracker.LeftUnknown, numWant: 1<<31 - 1}},
	{announceBase + "&compact=00&numwant=0", announceRequest{infoHash: hash20, port: 6881, left: tracker.LeftUnknown, numWant: 0, compact: true}},
	// Escaped keys, '+' kept literally, unknown and empty parameters skipped.
	{"info%5Fhash=" + q20 + "&port=%36881&&ip=1.2.3.4&x=%zz\xff&no_peer_id=1&trackerid&peer_id=+++++++++++++++++++%2b",
		announceRequest{infoHash: hash20, peerID: swarm.PeerID([]byte(strings.Repeat("+", 20))), port: 6881, left: tracker.LeftUnknown, numWant: -1, compact: true,
			ip: netip.MustParseAddr("1.2.3.4")}},
	// BEP 7: the other family's address, with or without a port; the
	// wrong family, unspecified and unreadable addresses are ignored.
	{announceBase + "&ipv6=2001%3adb8%3a%3a1&ipv4=%5b2001:db8::9%5d:7", announceRequest{infoHash: hash20, port: 6881, left: tracker.LeftUnknown, numWant: -1, compact: true,
		ipv6: netip.MustParseAddrPort("[2001:db8::1]:0")}},
	{announceBase + "&ipv4=192.0.2.7:7000&ip=0.0.0.0&ipv6=nonsense", announceRequest{infoHash: hash20, port: 6881, left: tracker.LeftUnknown, numWant: -1, compact: true,
		ipv4: netip.MustParseAddrPort("192.0.2.7:7000")}},
}

func TestParseAnnounce(t *testing.T) {
	for _, tc := range parseAnnounceCases {
		var got announceRequest
		if err := parseAnnounce(tc.query, &got); err != nil {
			t.Errorf("parseAnnounce(%q): %v", tc.query, err)
			continue
		}
		if got != tc.want {
			t.Errorf("parseAnnounce(%q)\n got  %+v\n want %+v", tc.query, got, tc.want)
		}
	}
}

var parseAnnounceErrorCases = []struct {
	query string
	want  error
}{
	{"", failMissingInfoHash},
	{"port=6881", failMissingInfoHash},
	{"info_hash=" + q20, failMissingPort},
	{"info_hash=abc&port=6881", failInfoHashLength},
	{"info_hash=" + q20 + "%00&port=6881", failInfoHashLength},
	{"info_hash=&port=6881", failInfoHashLength},
	{announceBase + "&info_hash=" + q20, failTwoInfoHashes},
	{announceBase + "&peer_id=short", failPeerIDLength},
	{announceBase + "&port=0", failBadPort},
	{announceBase + "&port=65536", failBadPort},
	{announceBase + "&port=-1", failBadPort},
	{announceBase + "&port=http", failBadPort},
	{announceBase + "&numwant=ten", failBadNumWant},
	{announceBase + "&numwant=", failBadNumWant},
	{"info_hash=%0g" + q20[3:] + "&port=6881", malformedEscape},
	{"info_hash=" + q20[:len(q20)-1], malformedEscape},
	{announceBase + "&event=%", malformedEscape},
	{"info_hash=\x80" + q20[3:] + "&port=6881", malformedHighByte},
	{announceBase + "&peer_id=\xff", malformedHighByte},
	{"info%zzhash=1", malformedEscape},
}

func TestParseAnnounceErrors(t *testing.T) {
	for _, tc := range parseAnnounceErrorCases {
		var req announceRequest
		if err := parseAnnounce(tc.query, &req); err != tc.want {
			t.Errorf("parseAnnounce(%q) = %v, want %v", tc.query, err, tc.want)
		}
	}
}

func TestParseScrape(t *testing.T) {
	other := strings.Repeat("%ff", 20)
	hashes := make([]swarm.InfoHash, 3)
	for _, tc := range []struct {
		query string
		n     int
		err   error
	}{
		{"", 0, nil},
		{"info_hash=" + q20, 1, nil},
		{"info_hash=" + q20 + "&info_hash=" + other + "&foo=bar", 2, nil},
		// Beyond len(hashes), hashes are dropped unchecked.
		{"info_hash=" + q20 + "&info_hash=" + other + "&info_hash=" + q20 + "&info_hash=bad", 3, nil},
		{"info_hash=bad", 0, failInfoHashLength},
		{"info_hash=%g0", 0, malformedEscape},
	} {
		n, err := parseScrape(tc.query, hashes)
		if n != tc.n || err != tc.err {
			t.Errorf("parseScrape(%q) = %d, %v; want %d, %v", tc.query, n, err, tc.n, tc.err)
		}
	}
	parseScrape("info_hash="+other+"&info_hash="+q20, hashes)
	if hashes[1] != hash20 || hashes[0][0] != 0xff {
		t.Errorf("parseScrape decoded %x", hashes[:2])
	}
}

func TestParseAnnounceNoAllocs(t *testing.T) {
	q := "info_hash=" + q20 + "&peer_id=-TR2940-abcdefghijkl&port=51413&uploaded=0&downloaded=0&left=100&numwant=80&key=0A1B2C3D&compact=1&event=started"
	var req announceRequest
	if n := testing.AllocsPerRun(100, func() { parseAnnounce(q, &req) }); n != 0 {
		t.Errorf("parseAnnounce: %v allocations, want 0", n)
	}
}

func TestAcceptsGzip(t *testing.T) {
	for _, tc := range []struct {
		header []string
		want   bool
	}{
		{nil, false},
		{[]string{""}, false},
		{[]string{"gzip"}, true},
		{[]string{"GZIP"}, true},
		{[]string{"x-gzip"}, true},
		{[]string{"deflate, gzip;q=1.0, *;q=0.5"}, true},
		{[]string{"identity"}, false},
		{[]string{"gzip;q=0"}, false},
		{[]string{"gzip; q=0.000"}, false},
		{[]string{"gzip;q=0.001"}, true},
		{[]string{"*"}, true},
		{[]string{"*;q=0"}, false},
		{[]string{"gzip;q=0, *"}, false},
		{[]string{"br", "gzip"}, true},
		{[]string{"gzipper"}, false},
		{[]string{"gzip;q=x"}, false},
		{[]string{"gzip;q=2"}, false},
		{[]string{"zstd, br;q=0.9"}, false},
	} {
		if got := acceptsGzip(tc.header); got != tc.want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", tc.header, got, tc.want)
		}
	}
}

// appendAnnounceQuery writes req back as a query that parseAnnounce reads
// as req: the fuzz target's round trip.
func appendAnnounceQuery(req *announceRequest, withPeerID bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "info_hash=%s&port=%d&uploaded=%d&downloaded=%d", escapeAll(req.infoHash[:]), req.port, req.uploaded, req.downloaded)
	if withPeerID {
		fmt.Fprintf(&b, "&peer_id=%s", escapeAll(req.peerID[:]))
	}
	if req.left != tracker.LeftUnknown {
		fmt.Fprintf(&b, "&left=%d", req.left)
	}
	if req.event != swarm.EventNone {
		fmt.Fprintf(&b, "&event=%s", req.event)
	}
	if req.numWant >= 0 {
		fmt.Fprintf(&b, "&numwant=%d", req.numWant)
	}
	if !req.compact {
		b.WriteString("&compact=0")
	}
	fmt.Fprintf(&b, "&key=%08x", req.key)
	if req.ip.IsValid() {
		fmt.Fprintf(&b, "&ip=%s", escapeAll([]byte(req.ip.String())))
	}
	for name, ap := range map[string]netip.AddrPort{"ipv4": req.ipv4, "ipv6": req.ipv6} {
		switch {
		case !ap.IsValid():
		case ap.Port() == 0:
			fmt.Fprintf(&b, "&%s=%s", name, escapeAll([]byte(ap.Addr().String())))
		default:
			fmt.Fprintf(&b, "&%s=%s", name, escapeAll([]byte(ap.String())))
		}
	}
	return b.String()
}

func escapeAll(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		fmt.Fprintf(&s, "%%%02x", c)
	}
	return s.String()
}

func announceSeeds() []string {
	seeds := []string{
		"info_hash=" + q20 + "&peer_id=-TR2940-abcdefghijkl&port=51413&uploaded=0&downloaded=0&left=100&numwant=80&key=0A1B2C3D&compact=1&event=started",
		"info_hash=" + q20 + "&port=6881&left=0&event=completed&compact=0&no_peer_id=1",
		"info_hash=" + q20 + "&port=6881&event=stopped&numwant=-1&key=abc",
		"info%5Fhash=" + q20 + "&port=%36881&x=%zz\xff&peer_id=++++++++++++++++++++",
		"info_hash=" + q20 + "&info_hash=" + q20 + "&port=1",
		"info_hash=%0g&port=1", "info_hash=\x80", "port=65536", "numwant=ten", "info_hash=" + q20 + "&numwant=99999999999999999999999999&port=1",
		"", "&", "=", "&&==&",
	}
	for _, tc := range parseAnnounceCases {
		seeds = append(seeds, tc.query)
	}
	for _, tc := range parseAnnounceErrorCases {
		seeds = append(seeds, tc.query)
	}
	return seeds
}

// FuzzParseAnnounce checks that the query scanner never panics, returns
// only the two error kinds, and that an accepted query means what it says:
// writing the request back as a query and parsing it again gives the same
// request.
func FuzzParseAnnounce(f *testing.F) {
	for _, s := range announceSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		var req announceRequest
		err := parseAnnounce(q, &req)
		if err != nil {
			var m malformed
			var ce *tracker.ClientError
			if !errors.As(err, &m) && (!errors.As(err, &ce) || ce.Reason != tracker.Malformed) {
				t.Fatalf("parseAnnounce(%q): error of type %T", q, err)
			}
			return
		}
		if req.port == 0 {
			t.Fatalf("parseAnnounce(%q) accepted port 0", q)
		}
		var again announceRequest
		q2 := appendAnnounceQuery(&req, req.peerID != swarm.PeerID{})
		if err := parseAnnounce(q2, &again); err != nil {
			t.Fatalf("re-encoded %q of %q: %v", q2, q, err)
		}
		if again != req {
			t.Fatalf("round trip of %q via %q:\n got  %+v\n want %+v", q, q2, again, req)
		}
	})
}

// FuzzParseScrape checks the scrape scanner against the announce scanner's
// view of the same info_hash parameters.
func FuzzParseScrape(f *testing.F) {
	for _, s := range announceSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		hashes := make([]swarm.InfoHash, 4)
		n, err := parseScrape(q, hashes)
		if err != nil {
			return
		}
		for i := range n {
			var req announceRequest
			if err := parseAnnounce("info_hash="+escapeAll(hashes[i][:])+"&port=1", &req); err != nil || req.infoHash != hashes[i] {
				t.Fatalf("hash %d of %q (%x) does not survive re-parsing: %v", i, q, hashes[i], err)
			}
		}
	})
}

// FuzzUnescape compares percent-decoding with net/url's path unescaping,
// which also keeps '+': whatever unescape accepts, url.PathUnescape must
// decode to the same bytes.
func FuzzUnescape(f *testing.F) {
	for _, s := range []string{q20, "%", "%4", "%41", "%zz", "+", "a+b%2B", "\x80", "%80%FF"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		buf := make([]byte, 8)
		n, err := unescape(buf, raw)
		if err != nil {
			return
		}
		want, uerr := url.PathUnescape(raw)
		if uerr != nil {
			t.Fatalf("unescape(%q) succeeded, url.PathUnescape: %v", raw, uerr)
		}
		if n != len(want) || string(buf[:min(n, len(buf))]) != want[:min(n, len(buf))] {
			t.Fatalf("unescape(%q) = %q (%d), want %q", raw, buf[:min(n, len(buf))], n, want)
		}
	})
}

// FuzzAcceptsGzip only checks that Accept-Encoding parsing never panics
// and that an explicit gzip;q=0 always wins over anything else listed.
func FuzzAcceptsGzip(f *testing.F) {
	for _, s := range []string{"gzip", "deflate, gzip;q=1.0, *;q=0.5", "gzip;q=0, *", "*;q=0", "gzip;q=x;q=1", ";;,,=;q"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		acceptsGzip([]string{h})
		if acceptsGzip([]string{h, "gzip;q=0", "x-gzip;q=0"}) && strings.Count(strings.ToLower(h), "gzip") == 0 {
			t.Fatalf("acceptsGzip(%q + gzip;q=0) = true", h)
		}
	})
}
