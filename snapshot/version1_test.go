package snapshot

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"herald/swarm"
)

// testdata/v1.snap was written by herald's format version 1 (the release
// before the shared swarm codec): IPv4 and IPv6 peers, seeders and
// leechers, completed and synced flags, ages, idle times and completed
// counts of one, two and three varint bytes. Every later herald reads it.
func TestDecodeVersion1File(t *testing.T) {
	data, err := os.ReadFile("testdata/v1.snap")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	info, err := Decode(data, func(ts *swarm.TorrentState) error {
		var b strings.Builder
		fmt.Fprintf(&b, "%x completed=%d idle=%v", ts.InfoHash[:2], ts.Completed, ts.Idle)
		for _, p := range ts.Peers {
			fmt.Fprintf(&b, " %v", p.Addr)
			for _, f := range []struct {
				on   bool
				mark string
			}{{p.Seeder, "S"}, {p.Completed, "C"}, {p.Synced, "Y"}} {
				if f.on {
					b.WriteString(f.mark)
				}
			}
			fmt.Fprintf(&b, "@%v", p.Age)
		}
		got = append(got, b.String())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"1011 completed=7 idle=30s 10.0.0.1:6881SC@1m0s 10.0.0.2:51413@5s [2001:db8::1]:6881S@2m0s [2001:db8::2]:443Y@0s",
		"8081 completed=0 idle=0s 192.0.2.7:1Y@39m59s [2001:db8::7]:65535SCY@10s",
		"e0e1 completed=123456 idle=1h0m0s",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("decoded\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	created := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	if !info.Created.Equal(created) || info.Torrents != 3 || info.Peers != 6 || info.Bytes != int64(len(data)) || info.ConnIDSecret != nil {
		t.Fatalf("info %+v, want created %v, 3 torrents, 6 peers, %d bytes, no secret", info, created, len(data))
	}

	// Loaded into a store ten seconds after it was written, as herald does.
	s, err := swarm.New(swarm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	now := created.Add(10 * time.Second)
	s.SetNow(now)
	if _, err := Load("testdata/v1.snap", s, nil, now); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		first byte
		want  swarm.Counts
	}{
		{0x10, swarm.Counts{Seeders: 2, Leechers: 2, Completed: 7}},
		{0x80, swarm.Counts{Seeders: 1, Leechers: 1}},
		{0xe0, swarm.Counts{Completed: 123456}},
	} {
		var h swarm.InfoHash
		for i := range h {
			h[i] = c.first + byte(i)
		}
		if got, ok := s.Scrape(h); !ok || got != c.want {
			t.Errorf("torrent %x: %+v (present %v), want %+v", h[:2], got, ok, c.want)
		}
	}
}
