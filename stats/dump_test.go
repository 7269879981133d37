package stats

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"herald/bencode"
	"herald/snapshot"
	"herald/swarm"
)

// The dumps opentracker's scrapers and scripts read, over the fixture:
// A (0x11…) 3 seeders, 3 leechers, 1 completed; B (0x22…) 0, 3, 0;
// C (0xCC…) 1, 0, 1.
func TestStatsDumps(t *testing.T) {
	m := newFixtureMonitor(t, fixtureStore(t))
	a, b, c := strings.Repeat("11", 20), strings.Repeat("22", 20), strings.Repeat("cc", 20)
	for _, tc := range []struct{ query, want string }{
		{"mode=tpbs&format=txt", a + ":3:3\n" + b + ":0:3\n" + c + ":1:0\n"},
		{"mode=tpbs&format=txtp", a + ":3:3:1\n" + b + ":0:3:0\n" + c + ":1:0:1\n"},
		{"mode=tpbs&format=url", strings.Repeat("%11", 20) + ":3:3\n" + strings.Repeat("%22", 20) + ":0:3\n" + strings.Repeat("%CC", 20) + ":1:0\n"},
		{"mode=statedump", a + ":0:1\n" + b + ":0:0\n" + c + ":0:1\n"},
		{"mode=herr", "302 RED 20\n400 ... 40\n400 PAR 0\n400 COM 0\n403 IP  0\n404 INV 60\n500 SRV 2\n"},
		{"mode=s24s", "Busiest IPv4 /24 networks by peers:\n00000006: 10.0.0.0/24\n\nBusiest IPv4 /28 networks by peers:\n00000006: 10.0.0.0/28\n"},
	} {
		if got := get(t, m, "127.0.0.1:1", "/stats?"+tc.query).Body.String(); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.query, got, tc.want)
		}
	}

	// bin, the default format: hash, seeders, leechers (uint32 big-endian).
	bin := get(t, m, "127.0.0.1:1", "/stats?mode=tpbs").Body.Bytes()
	if len(bin) != 3*28 || !bytes.Equal(bin[:20], bytes.Repeat([]byte{0x11}, 20)) ||
		binary.BigEndian.Uint32(bin[20:]) != 3 || binary.BigEndian.Uint32(bin[24:]) != 3 {
		t.Errorf("mode=tpbs (bin): %x", bin)
	}
	// ben: the full scrape's dictionary.
	v, err := bencode.Decode(get(t, m, "127.0.0.1:1", "/stats?mode=tpbs&format=ben").Body.Bytes())
	if err != nil {
		t.Fatalf("mode=tpbs&format=ben: %v", err)
	}
	files := v.(map[string]any)["files"].(map[string]any)
	if cc := files[strings.Repeat("\xcc", 20)].(map[string]any); len(files) != 3 || cc["complete"] != int64(1) || cc["downloaded"] != int64(1) {
		t.Errorf("mode=tpbs&format=ben: %v", files)
	}

	// A statedump loads back (-l) with the completed counts.
	store, err := swarm.New(swarm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := snapshot.ImportStatedump(get(t, m, "127.0.0.1:1", "/stats?mode=statedump").Body, store)
	if err != nil || n != 3 {
		t.Fatalf("importing the statedump: %d torrents, %v", n, err)
	}
	if counts, ok := store.Scrape(hashOf(0xCC)); !ok || counts.Completed != 1 {
		t.Errorf("torrent C after the import: %+v, %v; want 1 completed", counts, ok)
	}
}
