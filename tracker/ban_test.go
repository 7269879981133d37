package tracker_test

import (
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"herald/bans"
	"herald/counters"
	"herald/internal/servetest"
	"herald/ratelimit"
	"herald/swarm"
	"herald/tracker"
	"herald/udptracker"
)

// Issue 15 item 4: a real UDP client that keeps announcing over its rate
// limit is refused for the limit, then banned: every request gets the
// banned refusal, counted by reason; once the ban expires it is served
// again. Loopback is not exempt here (herald's wiring exempts it).
func TestUDPClientOverItsRateLimitIsBannedUntilTheBanExpires(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	store, err := swarm.New(swarm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	limiter, err := ratelimit.New(ratelimit.Config{Rate: 0.5, Burst: 3})
	if err != nil {
		t.Fatal(err)
	}
	table, err := bans.New(bans.Config{After: 5, Duration: 2500 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	core, err := tracker.New(tracker.Config{Store: store, Admit: limiter.Allow, Bans: table, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	counts := counters.New()
	s, err := udptracker.Listen("127.0.0.1:0", udptracker.Config{Tracker: core, Sockets: 1, Counters: counts, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	servetest.Serve(t, s.Serve, 5*time.Second)
	c := dialUDP(t, s.Addr())
	a := announce{hash: swarm.InfoHash([]byte("bbbbbbbbbbbbbbbbbbbb")), peer: swarm.PeerID([]byte("-HT0001-banbanbanban")), port: 6881}

	var texts []string
	for range 12 {
		texts = append(texts, c.announce(t, a))
	}
	// 3 served from the burst, 5 strikes tolerated, the 6th bans.
	for i, text := range texts {
		want := ""
		switch {
		case i >= 3+6:
			want = tracker.Banned.Text()
		case i >= 3:
			want = tracker.RateLimited.Text()
		}
		if text != want {
			t.Errorf("announce %d: %q, want %q", i+1, text, want)
		}
	}
	if got := table.List(time.Now()); len(got) != 1 || got[0].Prefix != netip.MustParsePrefix("127.0.0.1/32") || got[0].Reason != bans.ReasonRateLimited {
		t.Errorf("bans %v", got)
	}
	if n := counts.Read().Refusals[counters.UDP][tracker.Banned]; n != 3 {
		t.Errorf("%d refusals counted as banned, want 3", n)
	}
	// By the ban's end the client's bucket holds a token again (one per 2 s).
	servetest.WaitFor(t, 8*time.Second, func() error {
		if text := c.announce(t, a); text != "" {
			return errorText(text)
		}
		return nil
	})
}

type errorText string

func (e errorText) Error() string { return "refused: " + string(e) }

// With bans.Config.BadConnectionIDs, a client that keeps sending wrong UDP
// connection ids is banned too: its next request, with the right id, is
// refused as banned.
func TestUDPClientSendingWrongConnectionIDsIsBanned(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	store, err := swarm.New(swarm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	table, err := bans.New(bans.Config{After: 3, BadConnectionIDs: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	core, err := tracker.New(tracker.Config{Store: store, Bans: table, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	s, err := udptracker.Listen("127.0.0.1:0", udptracker.Config{Tracker: core, Sockets: 1, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	servetest.Serve(t, s.Serve, 5*time.Second)
	c := dialUDP(t, s.Addr())
	a := announce{hash: swarm.InfoHash([]byte("cccccccccccccccccccc")), peer: swarm.PeerID([]byte("-HT0001-connidconnid")), port: 6881}
	if text := c.announce(t, a); text != "" {
		t.Fatalf("first announce: %q", text)
	}
	for i := range 4 {
		if text := c.announceWithID(t, a, c.id^1); text != tracker.BadConnectionID.Text() {
			t.Fatalf("wrong id %d: %q", i+1, text)
		}
	}
	if text := c.announce(t, a); text != tracker.Banned.Text() {
		t.Errorf("after 4 wrong ids, with the right one: %q, want the banned text", text)
	}
	if got := table.List(time.Now()); len(got) != 1 || got[0].Reason != bans.ReasonBadConnectionID {
		t.Errorf("bans %v", got)
	}
}

// The ban check is the first rule of every announce: with no table, with
// an empty one, and with 1000 bans that do not cover the client (the
// filter in front of the lookups answers), Prepare allocates nothing and
// the three cost about the same.
func BenchmarkPrepareBans(b *testing.B) {
	now := time.Now()
	many, err := bans.New(bans.Config{})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 1000 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24)
		many.Ban(bans.Ban{Prefix: p, Expires: now.Add(time.Hour)})
	}
	for _, c := range []struct {
		name  string
		table *bans.Table
	}{{"off", nil}, {"empty", must(bans.New(bans.Config{}))}, {"1000 bans", many}} {
		b.Run(c.name, func(b *testing.B) {
			core, err := tracker.New(tracker.Config{Bans: c.table})
			if err != nil {
				b.Fatal(err)
			}
			r := tracker.AnnounceRequest{Announce: swarm.Announce{Addr: netip.MustParseAddrPort("203.0.113.9:6881"), NumWant: -1}}
			b.ReportAllocs()
			for b.Loop() {
				r.NumWant = -1
				if ce := core.Prepare(&r, now); ce != nil {
					b.Fatal(ce)
				}
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
