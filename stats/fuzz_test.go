package stats

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParseQuery: any query either names a mode that survives a round trip
// through its name, or fails with one of the two errors; a query with an
// info_hash parameter never yields stats.
func FuzzParseQuery(f *testing.F) {
	for _, seed := range []string{
		"", "mode=peer", "mode=conn", "mode=scrp", "mode=udp4", "mode=tcp4", "mode=torr", "mode=fscr",
		"mode=completed", "mode=top10", "mode=top100", "mode=everything", "mode=version", "mode=busy",
		"mode=tpbs&format=bin", "mode=conn&mode=udp4", "mode=", "mode", "info_hash=%11%22", "info%5Fhash=x",
		"mode=%70eer", "%zz=1&mode=fscr", "mode=%zz", "&&mode=busy&", "mode=peer&info_hash=",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, query string) {
		mode, err := ParseQuery(query)
		if err != nil {
			if !errors.Is(err, ErrInfoHash) && !errors.Is(err, ErrUnknownMode) {
				t.Fatalf("ParseQuery(%q): unexpected error %v", query, err)
			}
			return
		}
		if mode >= numModes {
			t.Fatalf("ParseQuery(%q) = %v, no such mode", query, mode)
		}
		if again, err := ParseQuery("mode=" + mode.String()); again != mode || err != nil {
			t.Fatalf("mode %v does not round-trip: %v, %v", mode, again, err)
		}
		for _, pair := range strings.Split(query, "&") {
			if pair == "info_hash" || strings.HasPrefix(pair, "info_hash=") {
				t.Fatalf("ParseQuery(%q) served stats despite an info_hash parameter", query)
			}
		}
	})
}
