package e2e

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"

	"herald/internal/heraldtest"
)

// Issue 17: /stats?mode=renew, opentracker's histogram of re-announces by
// minutes since the peer's previous announce, reads the same from herald
// as from Debian's opentracker after the same announces: MRTG and munin
// scripts written for one read the other.
func TestRenewModeMatchesOpentracker(t *testing.T) {
	const opentracker = "/usr/bin/opentracker"
	_, err := os.Stat(opentracker)
	requireClient(t, "opentracker", err == nil)
	if os.Geteuid() != 0 {
		t.Skip("needs root: opentracker drops to user nobody")
	}
	infoHash := [20]byte{0x52, 0x45, 0x4e, 0x45, 0x57, 19: 1}
	port := heraldtest.FreePort(t, "127.0.0.1")
	// -A: Debian's build serves /stats only to the networks it names.
	startOpentracker(t, opentracker, port, infoHash, "-A", "127.0.0.1")
	otBase := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	h := startHerald(t, "127.0.0.1")

	// Peer 7001 announces and comes back twice at once; peer 7002
	// announces once: two re-announces, both in minute 00.
	renew := map[string]string{}
	for name, base := range map[string]string{"opentracker": otBase, "herald": h.URL} {
		for _, port := range []int{7001, 7001, 7001, 7002} {
			res, err := http.Get(base + "/announce?info_hash=" + url.QueryEscape(string(infoHash[:])) +
				"&peer_id=-HE0001-" + strconv.Itoa(100000000000+port) + "&port=" + strconv.Itoa(port) + "&left=1&compact=1")
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			res.Body.Close()
		}
		res, err := http.Get(base + "/stats?mode=renew")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: mode=renew answered %s: %q", name, res.Status, body)
		}
		renew[name] = string(body)
	}
	if renew["herald"] != renew["opentracker"] {
		t.Errorf("mode=renew:\nherald      %q\nopentracker %q", renew["herald"], renew["opentracker"])
	}
	if want := "00 2\n01 0\n"; !strings.HasPrefix(renew["herald"], want) {
		t.Errorf("herald's mode=renew starts %q, want %q", renew["herald"], want)
	}
}
