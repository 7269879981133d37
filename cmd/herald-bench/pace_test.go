package main

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// fakeSchedule is a schedule on a fake clock that a pause advances to the
// due time plus whatever late returns (the sender's oversleep).
func fakeSchedule(interval float64, seed uint64, late func() int64) (*schedule, *int64) {
	var now int64
	win := newWindow()
	win.start.Store(0)
	s := &schedule{
		now:      func() int64 { return now },
		win:      win,
		interval: interval,
		rng:      rand.New(rand.NewPCG(seed, 1)),
	}
	s.pause = func(_, due int64) { now = due + late() }
	s.next = s.gap()
	return s, &now
}

// TestScheduleIsPoisson: the gaps between requests are exponential with the
// asked mean, as from many independent clients: mean, coefficient of
// variation 1 and the share of short gaps. A fixed interval (CV 0) fails.
func TestScheduleIsPoisson(t *testing.T) {
	const interval = 125e3 // 8,000/s
	s, _ := fakeSchedule(interval, 1, func() int64 { return 0 })
	var backlog uint64
	const n = 200_000
	var sum, sumSq float64
	short := 0
	prev, _ := s.wait(context.Background(), &backlog)
	s.advance()
	for range n {
		now, ok := s.wait(context.Background(), &backlog)
		if !ok {
			t.Fatal("wait returned false")
		}
		s.advance()
		g := float64(now - prev)
		prev = now
		sum += g
		sumSq += g * g
		if g < interval/10 {
			short++
		}
	}
	mean := sum / n
	cv := math.Sqrt(sumSq/n-mean*mean) / mean
	if math.Abs(mean/interval-1) > 0.01 {
		t.Errorf("mean gap %.0f ns, want %.0f", mean, interval)
	}
	if math.Abs(cv-1) > 0.02 {
		t.Errorf("coefficient of variation %.3f, want 1 (Poisson)", cv)
	}
	// P(gap < mean/10) = 1 - e^-0.1 = 9.5%.
	if got := float64(short) / n; math.Abs(got-(1-math.Exp(-0.1))) > 0.005 {
		t.Errorf("%.2f%% of gaps under a tenth of the mean, want 9.52%%", 100*got)
	}
	if backlog != 0 {
		t.Errorf("backlog %d on a punctual clock", backlog)
	}
}

// TestScheduleSeeded: the same seed gives the same arrivals; another gives
// others.
func TestScheduleSeeded(t *testing.T) {
	times := func(seed uint64) []int64 {
		s, _ := fakeSchedule(1e5, seed, func() int64 { return 0 })
		var out []int64
		for range 100 {
			now, _ := s.wait(context.Background(), new(uint64))
			s.advance()
			out = append(out, now)
		}
		return out
	}
	a, b, c := times(7), times(7), times(8)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("arrival %d: %d and %d from one seed", i, a[i], b[i])
		}
	}
	same := 0
	for i := range a {
		if a[i] == c[i] {
			same++
		}
	}
	if same == len(a) {
		t.Error("two seeds gave the same arrivals")
	}
}

// TestScheduleLagRestarts: a sender that wakes more than maxLag late (a
// descheduled generator) counts the requests it missed inside the window
// as backlog and restarts the schedule from now, so it does not send them
// in a burst; a lag under maxLag is caught up without backlog.
func TestScheduleLagRestarts(t *testing.T) {
	const interval = 1e5 // 10,000/s
	stall := int64(0)
	s, clk := fakeSchedule(interval, 3, func() int64 { d := stall; stall = 0; return d })
	var backlog uint64
	ctx := context.Background()
	next := func() int64 {
		now, ok := s.wait(ctx, &backlog)
		if !ok {
			t.Fatal("wait returned false")
		}
		s.advance()
		return now
	}
	for range 100 {
		next()
	}

	// Under maxLag: the schedule stands, the missed requests go at once.
	stall = int64(maxLag) / 2
	woke := next()
	sent := 1
	for next() == woke {
		sent++
	}
	if backlog != 0 {
		t.Errorf("backlog %d after a %v stall", backlog, time.Duration(maxLag/2))
	}
	if sent < 5 { // 25 expected
		t.Errorf("%d requests caught up after a %v stall, want the ~25 due", sent, time.Duration(maxLag/2))
	}

	// Over maxLag: the due requests become backlog, not a burst.
	const stall20 = int64(20 * time.Millisecond)
	stall = stall20
	woke = next()
	want := float64(stall20) / interval
	if math.Abs(float64(backlog)-want) > 4*math.Sqrt(want) {
		t.Errorf("backlog %d after a 20 ms stall, want about %.0f", backlog, want)
	}
	burst := 0
	for {
		now := next()
		if now != woke {
			break
		}
		burst++
	}
	if burst > 0 {
		t.Errorf("%d more requests at the wake-up after a 20 ms stall, want none", burst)
	}
	// And the schedule goes on at its rate from there.
	start := *clk
	for range 10_000 {
		next()
	}
	if rate := 10_000 / (float64(*clk-start) / 1e9); math.Abs(rate/1e4-1) > 0.05 {
		t.Errorf("%.0f requests/s after the restart, want 10,000", rate)
	}
}

// TestScheduleStops: wait returns false once the context is done.
func TestScheduleStops(t *testing.T) {
	s, _ := fakeSchedule(1e5, 1, func() int64 { return 0 })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, ok := s.wait(ctx, new(uint64)); ok {
		t.Error("wait went on after the context was done")
	}
}

// TestSleepPrecise: the real sleep never wakes early and, unlike Go's
// timers, wakes well within a millisecond of its due time.
func TestSleepPrecise(t *testing.T) {
	clk := newClock()
	s := newSchedule(clk, newWindow(), 1e5, rand.New(rand.NewPCG(1, 1)))
	defer s.close()
	var late []int64
	for range 200 {
		now := clk.now()
		due := now + int64(300*time.Microsecond)
		s.sleep(now, due)
		got := clk.now()
		if got < due {
			t.Fatalf("woke %v early", time.Duration(due-got))
		}
		late = append(late, got-due)
	}
	if testing.Short() {
		return
	}
	slices.Sort(late)
	if p50 := time.Duration(late[len(late)/2]); p50 > 300*time.Microsecond {
		t.Errorf("median oversleep %v, want under 300µs", p50)
	}
}
