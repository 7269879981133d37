package ratelimit

import (
	"net/netip"
	"sync"
	"testing"
	"time"
)

func TestBurstThenRate(t *testing.T) {
	l, err := New(Config{Rate: 10, Burst: 5})
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr("192.0.2.1")
	t0 := time.Now()
	for i := range 5 {
		if !l.Allow(a, t0) {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	if l.Allow(a, t0) {
		t.Fatal("request beyond the burst allowed")
	}
	if !l.Allow(netip.MustParseAddr("192.0.2.2"), t0) {
		t.Fatal("another client was limited too")
	}
	if !l.Allow(a, t0.Add(110*time.Millisecond)) || l.Allow(a, t0.Add(120*time.Millisecond)) {
		t.Fatal("after 110 ms at 10/s exactly one more request should pass")
	}
	for i := range 5 { // a long pause refills up to the burst, no more
		if !l.Allow(a, t0.Add(time.Hour)) {
			t.Fatalf("after an hour, request %d refused", i)
		}
	}
	if l.Allow(a, t0.Add(time.Hour)) {
		t.Fatal("the bucket grew beyond the burst")
	}
}

func TestIPv6ClientIsItsSlash64(t *testing.T) {
	l, _ := New(Config{Rate: 1, Burst: 2})
	t0 := time.Now()
	l.Allow(netip.MustParseAddr("2001:db8:1:2::1"), t0)
	l.Allow(netip.MustParseAddr("2001:db8:1:2:ffff::9"), t0)
	if l.Allow(netip.MustParseAddr("2001:db8:1:2:abcd::5"), t0) {
		t.Fatal("a third address in the same /64 was not limited with the other two")
	}
	if !l.Allow(netip.MustParseAddr("2001:db8:1:3::1"), t0) {
		t.Fatal("the next /64 was limited")
	}
	if Key(netip.MustParseAddr("::ffff:192.0.2.1")) != Key(netip.MustParseAddr("192.0.2.1")) {
		t.Fatal("a mapped IPv4 address is a different client")
	}
}

// A flood of addresses can't grow the table, and the flooder's own
// address stays limited while it keeps sending.
func TestFloodOfAddressesIsBounded(t *testing.T) {
	l, _ := New(Config{Rate: 1, Burst: 3, Clients: 1024})
	if len(l.sets)*ways != 1024 {
		t.Fatalf("table has %d slots, want 1024", len(l.sets)*ways)
	}
	t0 := time.Now()
	hammer := netip.MustParseAddr("198.51.100.7")
	allowed := 0
	for i := range 100_000 {
		addr := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		now := t0.Add(time.Duration(i) * time.Microsecond)
		l.Allow(addr, now)
		if l.Allow(hammer, now) {
			allowed++
		}
	}
	if allowed > 3+1 { // the burst plus 100 ms of refill at 1/s
		t.Fatalf("the hammering address got %d requests through a flood of others", allowed)
	}
}

func TestConcurrentUse(t *testing.T) {
	l, _ := New(Config{Rate: 1000, Burst: 10})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 10_000 {
				l.Allow(netip.AddrFrom4([4]byte{10, 0, byte(g), byte(i)}), time.Now())
			}
		})
	}
	wg.Wait()
}

func TestConfigErrors(t *testing.T) {
	if _, err := New(Config{Rate: 0, Burst: 1}); err == nil {
		t.Error("zero rate accepted")
	}
	if _, err := New(Config{Rate: 1}); err == nil {
		t.Error("zero burst accepted")
	}
}

func BenchmarkAllow(b *testing.B) {
	l, _ := New(Config{Rate: 1e9, Burst: 1 << 20})
	now := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		l.Allow(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), now)
	}
}

// Issue 14 item 9: the limit holds after 49.7 days of uptime (a uint32
// millisecond clock wraps there), and for a client first seen through
// UDP's whole-second timestamps, which can fall before the limiter's start.
func TestLimitHoldsOverLongUptimeAndCoarseClock(t *testing.T) {
	const rate, burst = 10, 5
	for _, tc := range []struct {
		name  string
		start func(epoch time.Time) time.Time
	}{
		{"across 2^32 ms of uptime", func(e time.Time) time.Time { return e.Add((1<<32 - 5000) * time.Millisecond) }},
		{"first seen at a whole second", func(e time.Time) time.Time { return time.Unix(e.Unix(), 0) }},
		{"after 60 days", func(e time.Time) time.Time { return e.Add(60 * 24 * time.Hour) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := New(Config{Rate: rate, Burst: burst})
			if err != nil {
				t.Fatal(err)
			}
			a := netip.MustParseAddr("192.0.2.1")
			t0 := tc.start(l.epoch)
			allowed := 0
			// 100 requests per 100 ms for 10 s: the burst and 10/s pass.
			for i := range 10000 {
				if l.Allow(a, t0.Add(time.Duration(i/100)*100*time.Millisecond)) {
					allowed++
				}
			}
			if most := burst + rate*10 + 1; allowed > most {
				t.Fatalf("%d requests allowed in 10 s, want at most %d", allowed, most)
			}
		})
	}
}
