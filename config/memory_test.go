package config

import (
	"strings"
	"testing"
)

func TestParseMemTotal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
	}{
		{"MemTotal:       24683620 kB\nMemFree:  1 kB\n", 24683620 * 1024},
		{"MemFree:  1 kB\nMemTotal: 2048 kB\n", 2048 * 1024},
		{"MemTotal: 2048 MB\n", 0},
		{"MemTotal: lots kB\n", 0},
		{"", 0},
	} {
		if got := parseMemTotal(strings.NewReader(tc.in)); got != tc.want {
			t.Errorf("%q: %d, want %d", tc.in, got, tc.want)
		}
	}
}

// On Linux the defaults bound torrents and peers: a flood cannot take the
// machine's memory unless the operator turns the bounds off.
func TestDefaultsBoundMemory(t *testing.T) {
	d := Defaults()
	if d.MaxTorrents <= 0 || d.MaxPeers <= 0 {
		t.Fatalf("default bounds %d torrents, %d peers: want both set from memory", d.MaxTorrents, d.MaxPeers)
	}
}
