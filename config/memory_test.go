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

// The per-key accounting is bounded by memory too: with the store's
// default bound alone its remembered peers (five times a stored peer's
// cost) could take more memory than the machine has.
func TestLedgerBoundFitsMemory(t *testing.T) {
	mem := memoryLimit()
	if mem == 0 {
		t.Skip("memory not readable here")
	}
	budget := int(mem / 8 / bytesPerLedgerPeer)
	d := Defaults()
	if got := LedgerMaxPeers(d.MaxPeers); got != budget || uint64(got)*bytesPerLedgerPeer > mem/8 {
		t.Errorf("ledger bound with the default max_peers %d: %d peers, want %d (an eighth of %d bytes)", d.MaxPeers, got, budget, mem)
	}
	if got := LedgerMaxPeers(0); got != budget {
		t.Errorf("ledger bound with max_peers 0 (no store bound): %d, want the memory bound %d", got, budget)
	}
	if got := LedgerMaxPeers(1000); got != 1000 {
		t.Errorf("ledger bound with max_peers 1000: %d, want 1000", got)
	}
}
