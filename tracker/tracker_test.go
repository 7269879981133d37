package tracker

import (
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"herald/access"
	"herald/swarm"
)

func newTestTracker(t *testing.T, cfg Config) *Tracker {
	t.Helper()
	if cfg.Store == nil {
		store, err := swarm.New(swarm.Config{})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Store = store
	}
	tr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestConfigRejectsNonsense(t *testing.T) {
	for _, cfg := range []Config{
		{Interval: time.Millisecond},
		{Interval: 1 << 32 * time.Second},
		{Interval: time.Minute, IntervalJitter: time.Hour},
		{Interval: time.Minute, MinInterval: time.Hour},
		{DefaultNumWant: -1},
		{DefaultNumWant: 300, MaxNumWant: 100},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}

// Intervals are drawn from Interval±IntervalJitter (opentracker's
// 1800±180 s by default), and the min interval is half of each, or
// MinInterval.
func TestIntervals(t *testing.T) {
	tr := newTestTracker(t, Config{})
	seen := map[uint32]bool{}
	for range 1000 {
		i, mi := tr.Intervals()
		if i < 1620 || i > 1980 || mi != i/2 {
			t.Fatalf("interval %d, min %d: want 1800±180 and half", i, mi)
		}
		seen[i] = true
	}
	if len(seen) < 100 {
		t.Errorf("%d distinct intervals in 1000 replies: no jitter", len(seen))
	}
	fixed := newTestTracker(t, Config{Interval: 10 * time.Minute, IntervalJitter: -1, MinInterval: time.Minute})
	if i, mi := fixed.Intervals(); i != 600 || mi != 60 {
		t.Errorf("fixed: interval %d, min %d; want 600, 60", i, mi)
	}
}

// Prepare defaults and caps numwant, and lists the peer under the address
// it states only when AllowIPField says so.
func TestPrepare(t *testing.T) {
	from := netip.MustParseAddrPort("192.0.2.1:6881")
	stated := netip.MustParseAddr("198.51.100.7")
	for _, tc := range []struct {
		allowIP           bool
		numWant, maxPeers int
		wantNumWant       int
		wantAddr          netip.AddrPort
	}{
		{false, -1, 0, DefaultNumWant, from},
		{false, 0, 0, 0, from},
		{false, 7, 0, 7, from},
		{false, 5000, 0, DefaultMaxNumWant, from},
		{false, 5000, 66, 66, from},
		{false, -1, 20, 20, from},
		{true, 7, 0, 7, netip.AddrPortFrom(stated, 6881)},
	} {
		tr := newTestTracker(t, Config{AllowIPField: tc.allowIP})
		r := AnnounceRequest{Announce: swarm.Announce{Addr: from, NumWant: tc.numWant}, StatedIP: stated, MaxPeers: tc.maxPeers}
		if ce := tr.Prepare(&r, time.Now()); ce != nil {
			t.Fatal(ce)
		}
		if r.NumWant != tc.wantNumWant || r.Addr != tc.wantAddr {
			t.Errorf("%+v: numwant %d, addr %v", tc, r.NumWant, r.Addr)
		}
	}
}

// The access list is asked before the rate limit, so a refused torrent
// does not cost its client a token; a scrape is only rate limited. An
// unknown key is refused before either, for announces and scrapes.
func TestRefusalOrder(t *testing.T) {
	charged := 0
	path := filepath.Join(t.TempDir(), "keys")
	member := access.Key([]byte("0123456789abcdefghijABCDEFGHIJ00"))
	if err := os.WriteFile(path, append(member[:], '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := access.OpenKeys(path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	tr := newTestTracker(t, Config{
		Keys:    keys,
		Allowed: func(h swarm.InfoHash) bool { return h[0] == 1 },
		Admit:   func(netip.Addr, time.Time) bool { charged++; return false },
	})
	r := AnnounceRequest{Announce: swarm.Announce{InfoHash: swarm.InfoHash{2}}}
	if ce := tr.Prepare(&r, time.Now()); ce != UnknownKey.Err() || charged != 0 {
		t.Fatalf("no key: %v, %d tokens charged", ce, charged)
	}
	if ce := tr.AdmitScrape(netip.Addr{}, &r.AccessKey, time.Now()); ce != UnknownKey.Err() || charged != 0 {
		t.Fatalf("scrape with no key: %v, %d tokens charged", ce, charged)
	}
	r.AccessKey = member
	if ce := tr.Prepare(&r, time.Now()); ce != NotAllowed.Err() || charged != 0 {
		t.Fatalf("refused torrent: %v, %d tokens charged", ce, charged)
	}
	r.InfoHash[0] = 1
	if ce := tr.Prepare(&r, time.Now()); ce != RateLimited.Err() || charged != 1 {
		t.Fatalf("listed torrent over the limit: %v, %d tokens charged", ce, charged)
	}
	if ce := tr.AdmitScrape(netip.Addr{}, &member, time.Now()); ce != RateLimited.Err() {
		t.Fatalf("scrape over the limit: %v", ce)
	}
}

func TestParseEvent(t *testing.T) {
	for name, want := range map[string]swarm.Event{
		"": swarm.EventNone, "empty": swarm.EventNone, "paused": swarm.EventNone, "update": swarm.EventNone,
		"started": swarm.EventStarted, "completed": swarm.EventCompleted, "stopped": swarm.EventStopped,
	} {
		if got, ok := ParseEvent([]byte(name)); got != want || !ok {
			t.Errorf("%q: %v, %v", name, got, ok)
		}
	}
	for _, name := range []string{"Started", "stop", "paused "} {
		if _, ok := ParseEvent([]byte(name)); ok {
			t.Errorf("%q accepted", name)
		}
	}
}
