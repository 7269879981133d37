package admin_test

import (
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"herald/access"
	"herald/admin"
	"herald/bans"
	"herald/cluster"
	"herald/swarm"
)

// Issue 15 (cluster catch-up): what a node takes from another's state when
// it connects. The access list and the keys are taken whole, additions and
// removals, when the other node's file changed later than its own, and
// kept when its own is newer; a list of the other mode is refused. Bans
// are a union, each prefix until the later expiry, earned ones under this
// node's own duration and exemptions.
func TestApplyStateLastWriterWins(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	dir := t.TempDir()
	listPath, keysPath := filepath.Join(dir, "whitelist"), filepath.Join(dir, "keys")
	k1, k2 := strings.Repeat("a", 32), strings.Repeat("b", 32)
	os.WriteFile(listPath, []byte("# ours\n"+hexOf(hashOf(1))+" first\n"+hexOf(hashOf(2))+"\n"), 0o644)
	os.WriteFile(keysPath, []byte(k1+"\n"), 0o600)
	now := time.Now()
	for _, p := range []string{listPath, keysPath} {
		if err := os.Chtimes(p, now.Add(-time.Hour), now.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	list := must(access.Open(listPath, access.Whitelist, quiet))
	keys := must(access.OpenKeys(keysPath, quiet))
	table := must(bans.New(bans.Config{After: 10, Duration: 10 * time.Minute, Exempt: netip.Addr.IsLoopback, Logger: quiet}))
	table.Ban(bans.Ban{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Expires: now.Add(2 * time.Hour), Reason: bans.ReasonManual})
	s := must(admin.New(admin.Config{List: list, Keys: keys, Bans: table, Logger: quiet}))

	mine := s.State()
	if mine.ListMode != "whitelist" || len(mine.List) != 2 || !mine.ListChanged.Equal(now.Add(-time.Hour)) || !mine.HasKeys || len(mine.Keys) != 1 || len(mine.Bans) != 1 {
		t.Fatalf("State() = %+v", mine)
	}
	ban := func(p string, d time.Duration, reason string) bans.Ban {
		return bans.Ban{Prefix: netip.MustParsePrefix(p), Expires: now.Add(d), Reason: reason}
	}
	theirs := cluster.State{
		ListMode: "whitelist", List: []swarm.InfoHash{hashOf(2), hashOf(3)}, ListChanged: now.Add(-time.Minute),
		HasKeys: true, Keys: []access.Key{mustKey(t, k2)}, KeysChanged: now.Add(-2 * time.Hour),
		Bans: []bans.Ban{
			ban("198.51.100.0/24", time.Hour, bans.ReasonManual), // shorter than ours: ours stays
			ban("203.0.113.0/24", time.Hour, bans.ReasonManual),
			ban("192.0.2.7/32", 365*24*time.Hour, bans.ReasonRateLimited), // earned: our 10 minutes at most
			ban("127.0.0.1/32", time.Hour, bans.ReasonRateLimited),        // exempt here
		},
	}
	if err := s.ApplyState(theirs); err != nil {
		t.Fatal(err)
	}
	if list.Contains(hashOf(1)) || !list.Contains(hashOf(2)) || !list.Contains(hashOf(3)) || list.Len() != 2 {
		t.Errorf("list after taking theirs (newer): 1 %v, 2 %v, 3 %v", list.Contains(hashOf(1)), list.Contains(hashOf(2)), list.Contains(hashOf(3)))
	}
	if data, _ := os.ReadFile(listPath); !strings.HasPrefix(string(data), "# ours\n"+hexOf(hashOf(2))+"\n") || strings.Contains(string(data), "first") {
		t.Errorf("list file:\n%s", data)
	}
	if got := keys.List(); len(got) != 1 || got[0].String() != k1 {
		t.Errorf("keys %v: ours (newer) should stay", got)
	}
	got := table.List(now)
	want := []string{"192.0.2.7/32 rate_limited 10m0s", "198.51.100.0/24 manual 2h0m0s", "203.0.113.0/24 manual 1h0m0s"}
	var have []string
	for _, b := range got {
		have = append(have, b.Prefix.String()+" "+b.Reason+" "+b.Expires.Sub(now).Round(time.Second).String())
	}
	if !slices.Equal(have, want) {
		t.Errorf("bans %v, want %v", have, want)
	}

	// Our list file is now the newer: an older state changes nothing.
	theirs.List, theirs.Bans = []swarm.InfoHash{hashOf(1)}, nil
	if err := s.ApplyState(theirs); err != nil || list.Contains(hashOf(1)) || list.Len() != 2 {
		t.Errorf("older list taken: %v, %d hashes", err, list.Len())
	}
	// Newer keys are taken; a blacklist is no whitelist.
	theirs.ListMode, theirs.ListChanged, theirs.KeysChanged = "blacklist", now.Add(time.Hour), now.Add(time.Hour)
	if err := s.ApplyState(theirs); err == nil || !strings.Contains(err.Error(), "blacklist") || list.Contains(hashOf(1)) {
		t.Errorf("a blacklist taken for a whitelist: %v", err)
	}
	if got := keys.List(); len(got) != 1 || got[0].String() != k2 {
		t.Errorf("keys %v, want theirs (newer)", got)
	}
}

func mustKey(t *testing.T, s string) access.Key {
	t.Helper()
	k, err := access.ParseKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
