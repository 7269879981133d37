package bans_test

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"herald/bans"
)

var quiet = slog.New(slog.DiscardHandler)

func newTable(t testing.TB, cfg bans.Config) *bans.Table {
	t.Helper()
	cfg.Logger = quiet
	tb, err := bans.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestBanCoversItsPrefixUntilItExpires(t *testing.T) {
	tb := newTable(t, bans.Config{})
	now := time.Now()
	if tb.Banned(addr("10.1.2.3"), now) {
		t.Fatal("banned with no bans")
	}
	for _, p := range []string{"10.0.0.0/8", "192.0.2.7/32", "2001:db8:1::/48", "::ffff:198.51.100.0/120"} {
		if err := tb.Ban(bans.Ban{Prefix: netip.MustParsePrefix(p), Expires: now.Add(time.Minute), Reason: bans.ReasonManual}); err != nil {
			t.Fatal(err)
		}
	}
	for a, want := range map[string]bool{
		"10.1.2.3": true, "::ffff:10.200.0.1": true, "11.0.0.1": false,
		"192.0.2.7": true, "192.0.2.8": false,
		"2001:db8:1:ffff::1": true, "2001:db8:2::1": false,
		"198.51.100.9": true, "198.51.101.9": false,
	} {
		if got := tb.Banned(addr(a), now); got != want {
			t.Errorf("Banned(%s) = %v, want %v", a, got, want)
		}
	}
	if tb.Banned(addr("10.1.2.3"), now.Add(time.Minute)) {
		t.Error("banned once the ban expired")
	}
	if got := tb.List(now); len(got) != 4 || got[0].Prefix.String() != "10.0.0.0/8" || got[3].Prefix.String() != "2001:db8:1::/48" {
		t.Errorf("List = %v", got)
	}
	if !tb.Unban(netip.MustParsePrefix("10.0.0.0/8")) || tb.Unban(netip.MustParsePrefix("10.0.0.0/8")) || tb.Banned(addr("10.1.2.3"), now) {
		t.Error("Unban did not lift the ban once")
	}
}

func TestStrikesEarnABan(t *testing.T) {
	tb := newTable(t, bans.Config{After: 5, Duration: time.Hour, Exempt: netip.Addr.IsLoopback})
	now := time.Now()
	client := addr("2001:db8::1")
	for i := range 5 {
		tb.Strike(client, now, bans.ReasonRateLimited)
		if tb.Banned(client, now) {
			t.Fatalf("banned after %d strikes, want after 6", i+1)
		}
	}
	tb.Strike(client, now, bans.ReasonRateLimited)
	if !tb.Banned(addr("2001:db8::ffff"), now) || tb.Banned(addr("2001:db8:0:1::1"), now) {
		t.Error("the sixth strike did not ban the client's /64, or banned more")
	}
	if got := tb.List(now); len(got) != 1 || got[0].Reason != bans.ReasonRateLimited || !got[0].Expires.Equal(now.Add(time.Hour)) || tb.Earned() != 1 {
		t.Errorf("bans %v, earned %d", got, tb.Earned())
	}
	for range 100 {
		tb.Strike(addr("127.0.0.1"), now, bans.ReasonRateLimited)
		tb.Strike(addr("192.0.2.1"), now, bans.ReasonBadConnectionID)
	}
	if tb.Banned(addr("127.0.0.1"), now) || tb.Banned(addr("192.0.2.1"), now) {
		t.Error("loopback, or wrong connection ids without BadConnectionIDs, earned a ban")
	}
	off := newTable(t, bans.Config{})
	for range 10000 {
		off.Strike(client, now, bans.ReasonRateLimited)
	}
	if off.Banned(client, now) {
		t.Error("banned with automatic bans off")
	}
}

// Issue 15 (cluster): a ban a client earns is handed to Config.OnEarn once;
// a ban set by the operator, or adopted from another node, is not (it
// would go back to the cluster).
func TestEarnedBansAreHandedOnOnce(t *testing.T) {
	var handed []bans.Ban
	tb := newTable(t, bans.Config{After: 2, Duration: time.Minute, OnEarn: func(b bans.Ban) { handed = append(handed, b) }})
	now := time.Now()
	for range 10 {
		tb.Strike(addr("::ffff:192.0.2.7"), now, bans.ReasonRateLimited)
	}
	tb.Ban(bans.Ban{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Expires: now.Add(time.Hour), Reason: bans.ReasonManual})
	if _, err := tb.Adopt(bans.Ban{Prefix: netip.MustParsePrefix("203.0.113.9/32"), Expires: now.Add(time.Minute), Reason: bans.ReasonRateLimited}, now); err != nil {
		t.Fatal(err)
	}
	want := bans.Ban{Prefix: netip.MustParsePrefix("192.0.2.7/32"), Expires: now.Add(time.Minute), Reason: bans.ReasonRateLimited}
	if len(handed) != 1 || handed[0] != want {
		t.Fatalf("handed on %v, want [%v]", handed, want)
	}
}

// A ban earned on another node is adopted under this node's rules: its
// own duration bounds it, its exempt addresses stay unbanned (loopback,
// including the IPv6 /64 that holds ::1), automatic bans off here means
// none adopted, and a longer ban already held stays.
func TestAdoptAppliesThisNodesRules(t *testing.T) {
	tb := newTable(t, bans.Config{After: 5, Duration: time.Minute, Exempt: netip.Addr.IsLoopback})
	now := time.Now()
	earned := func(p string, d time.Duration) bans.Ban {
		return bans.Ban{Prefix: netip.MustParsePrefix(p), Expires: now.Add(d), Reason: bans.ReasonRateLimited}
	}
	for _, c := range []struct {
		ban     bans.Ban
		adopted bool
		err     error
	}{
		{earned("192.0.2.7/32", 10*time.Second), true, nil},
		{earned("2001:db8:1:2::/64", 100*365*24*time.Hour), true, nil}, // cut to a minute
		{earned("192.0.2.7/32", 5*time.Second), false, nil},            // shorter than the one held
		{earned("192.0.2.7/32", 20*time.Second), true, nil},            // longer
		{earned("127.0.0.1/32", time.Minute), false, nil},
		{earned("::/64", time.Minute), false, nil},
		{earned("192.0.2.8/32", -time.Second), false, nil},
		{earned("192.0.2.0/24", time.Minute), false, bans.ErrNotEarned},
		{earned("2001:db8::/48", time.Minute), false, bans.ErrNotEarned},
		{bans.Ban{Prefix: netip.MustParsePrefix("192.0.2.9/32"), Expires: now.Add(time.Minute), Reason: bans.ReasonManual}, false, bans.ErrNotEarned},
	} {
		if adopted, err := tb.Adopt(c.ban, now); adopted != c.adopted || err != c.err {
			t.Errorf("Adopt(%v): %v, %v; want %v, %v", c.ban, adopted, err, c.adopted, c.err)
		}
	}
	if !tb.Banned(addr("192.0.2.7"), now.Add(15*time.Second)) || tb.Banned(addr("192.0.2.7"), now.Add(20*time.Second)) {
		t.Error("192.0.2.7 not banned for the longer of its two bans")
	}
	if !tb.Banned(addr("2001:db8:1:2::5"), now.Add(59*time.Second)) || tb.Banned(addr("2001:db8:1:2::5"), now.Add(time.Minute)) {
		t.Error("a century-long earned ban not cut to this node's minute")
	}
	if tb.Banned(addr("127.0.0.1"), now) || tb.Banned(addr("::1"), now) || tb.Received() != 3 || tb.Earned() != 0 {
		t.Errorf("bans %v, received %d, earned %d", tb.List(now), tb.Received(), tb.Earned())
	}
	off := newTable(t, bans.Config{})
	if adopted, err := off.Adopt(earned("192.0.2.7/32", time.Minute), now); adopted || err != nil || off.Active() != 0 {
		t.Errorf("with automatic bans off: adopted %v, %v", adopted, err)
	}
}

// Bans survive a restart through the ban file; expired ones do not, and a
// file that is not bans stops the start rather than being overwritten.
func TestBansSavedAndRestored(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herald.bans")
	tb := newTable(t, bans.Config{})
	if err := tb.Restore(path, time.Now()); err != nil {
		t.Fatalf("missing file: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tb.Run(ctx); close(done) }()
	now := time.Now()
	tb.Ban(bans.Ban{Prefix: netip.MustParsePrefix("192.0.2.0/24"), Expires: now.Add(time.Hour), Reason: bans.ReasonManual})
	tb.Ban(bans.Ban{Prefix: netip.MustParsePrefix("198.51.100.1/32"), Expires: now.Add(1500 * time.Millisecond), Reason: bans.ReasonRateLimited})
	deadline := time.Now().Add(5 * time.Second)
	for tb.Active() != 1 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if tb.Active() != 1 {
		t.Fatalf("%d bans held, want the expired one dropped", tb.Active())
	}
	cancel()
	<-done
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("ban file: %v", err)
	}
	again := newTable(t, bans.Config{})
	if err := again.Restore(path, time.Now()); err != nil {
		t.Fatal(err)
	}
	if !again.Banned(addr("192.0.2.9"), time.Now()) || again.Active() != 1 {
		t.Errorf("restored %v", again.List(time.Now()))
	}
	os.WriteFile(path, []byte("not json"), 0o600)
	if err := newTable(t, bans.Config{}).Restore(path, time.Now()); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("damaged file: %v", err)
	}
}

func TestParsePrefix(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7": "192.0.2.7/32", "192.0.2.7/24": "192.0.2.0/24", "::ffff:192.0.2.7": "192.0.2.7/32",
		"::ffff:192.0.2.7/120": "192.0.2.0/24", "2001:db8::1/64": "2001:db8::/64",
	} {
		if p, err := bans.ParsePrefix(in); err != nil || p.String() != want {
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	for _, in := range []string{"", "192.0.2", "192.0.2.7/33", "fe80::1%eth0", "host"} {
		if _, err := bans.ParsePrefix(in); err == nil {
			t.Errorf("ParsePrefix(%q): no error", in)
		}
	}
}

// The check every request makes costs one atomic load with no bans, and
// allocates nothing with some.
func BenchmarkBanned(b *testing.B) {
	now := time.Now()
	client := addr("203.0.113.9")
	b.Run("none", func(b *testing.B) {
		tb := newTable(b, bans.Config{})
		b.ReportAllocs()
		for b.Loop() {
			if tb.Banned(client, now) {
				b.Fatal("banned")
			}
		}
	})
	b.Run("some", func(b *testing.B) {
		tb := newTable(b, bans.Config{})
		for _, p := range []string{"10.0.0.0/8", "192.0.2.0/24", "198.51.100.7/32", "2001:db8::/32"} {
			tb.Ban(bans.Ban{Prefix: netip.MustParsePrefix(p), Expires: now.Add(time.Hour)})
		}
		b.ReportAllocs()
		for b.Loop() {
			if tb.Banned(client, now) {
				b.Fatal("banned")
			}
		}
	})
}
