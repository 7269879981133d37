package httptracker

import (
	"strings"
	"testing"

	"herald/bencode"
	"herald/swarm"
	"herald/tracker"
)

var (
	peer4 = "\x7f\x00\x00\x01\x1a\xe1"                                                 // 127.0.0.1:6881
	peer6 = "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x1a\xe2" // [::1]:6882
)

func TestReplyGolden(t *testing.T) {
	reply := &announceReply{counts: swarm.Counts{Seeders: 2, Leechers: 3, Completed: 4}, interval: 1800, minInterval: 900}
	head := "d8:completei2e10:downloadedi4e10:incompletei3e8:intervali1800e12:min intervali900e"
	h := swarm.InfoHash([]byte("0123456789abcdefghij"))
	for _, tc := range []struct {
		name string
		got  []byte
		want string
	}{
		{"compact both families", appendAnnounce(nil, reply, swarm.Peers{V4: []byte(peer4), V6: []byte(peer6)}),
			head + "5:peers6:" + peer4 + "6:peers618:" + peer6 + "e"},
		{"compact v6 only keeps an empty peers", appendAnnounce(nil, reply, swarm.Peers{V6: []byte(peer6)}),
			head + "5:peers0:6:peers618:" + peer6 + "e"},
		{"compact no peers", appendAnnounce(nil, reply, swarm.Peers{}),
			head + "5:peers0:e"},
		{"dictionary model", appendAnnounceDicts(nil, reply, swarm.Peers{V4: []byte(peer4 + peer4), V6: []byte(peer6)}),
			head + "5:peersl" +
				"d2:ip9:127.0.0.14:porti6881ee" +
				"d2:ip9:127.0.0.14:porti6881ee" +
				"d2:ip3:::14:porti6882ee" +
				"ee"},
		{"dictionary model no peers", appendAnnounceDicts(nil, reply, swarm.Peers{}), head + "5:peerslee"},
		{"failure", appendFailure(nil, failMissingInfoHash.Text),
			"d14:failure reason80:Your client forgot to send your torrent's info_hash. Please upgrade your client.e"},
		{"failure not authorized", appendFailure(nil, tracker.NotAllowed.Text()),
			"d14:failure reason63:Requested download is not authorized for use with this tracker.e"},
		{"scrape", append(appendScrapeFile([]byte(scrapeHead), &h, swarm.Counts{Seeders: 1, Leechers: 2, Completed: 3}), scrapeTail...),
			"d5:filesd20:0123456789abcdefghijd8:completei1e10:downloadedi3e10:incompletei2eeee"},
	} {
		if string(tc.got) != tc.want {
			t.Errorf("%s:\n got  %q\n want %q", tc.name, tc.got, tc.want)
		}
		// Canonical bencoding, keys sorted: the strict decoder accepts it.
		if _, err := bencode.Decode(tc.got); err != nil {
			t.Errorf("%s: strict decode: %v", tc.name, err)
		}
	}
}

func TestAppendAnnounceNoAllocs(t *testing.T) {
	reply := &announceReply{counts: swarm.Counts{Seeders: 2, Leechers: 3, Completed: 4}, interval: 1800, minInterval: 900}
	peers := swarm.Peers{V4: []byte(strings.Repeat(peer4, 50)), V6: []byte(strings.Repeat(peer6, 50))}
	buf := make([]byte, 0, 8192)
	if n := testing.AllocsPerRun(100, func() { buf = appendAnnounce(buf[:0], reply, peers) }); n != 0 {
		t.Errorf("appendAnnounce: %v allocations, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { buf = appendAnnounceDicts(buf[:0], reply, peers) }); n != 0 {
		t.Errorf("appendAnnounceDicts: %v allocations, want 0", n)
	}
}
