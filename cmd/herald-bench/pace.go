package main

import (
	"context"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// maxLag is how far an open-loop sender may fall behind its schedule before
// it skips requests (counted as backlog) rather than sending them in a
// burst. A descheduled generator would otherwise fire hundreds of requests
// at once and overflow a tracker's default 208 KiB socket buffer (about 270
// announces), measuring the generator's stall instead of the tracker.
const maxLag = float64(5 * time.Millisecond)

// coarseMargin: a wait longer than this sleeps on Go's timers until
// coarseMargin before the due time and waits the rest on a sleeper.
// Go's timers wake through the netpoller, whose timeout has millisecond
// resolution, so they alone turn sub-millisecond gaps into a burst a
// millisecond.
const coarseMargin = 2 * time.Millisecond

// schedule paces an open-loop sender: its requests are due at the arrivals
// of a Poisson process, exponential gaps of mean interval ns drawn from rng,
// as many independent clients would send them. Senders with their own
// schedules add up to one Poisson process of the sum of their rates.
type schedule struct {
	now      func() int64 // the clock, ns
	pause    func(now, due int64)
	sleeper  *sleeper
	win      *window
	interval float64 // mean gap between requests, ns
	rng      *rand.Rand
	next     float64 // when the next request is due
}

// newSchedule starts a schedule on clk; the first request is due one gap
// from now, so senders started together do not send together.
func newSchedule(clk *clock, win *window, interval float64, rng *rand.Rand) *schedule {
	s := &schedule{now: clk.now, sleeper: newSleeper(), win: win, interval: interval, rng: rng}
	s.pause = s.sleep
	s.next = float64(s.now()) + s.gap()
	return s
}

func (s *schedule) close() { s.sleeper.close() }

func (s *schedule) gap() float64 { return s.rng.ExpFloat64() * s.interval }

// advance moves the schedule to the next request.
func (s *schedule) advance() { s.next += s.gap() }

// wait sleeps until the next request is due and returns the clock reading,
// or false once ctx is done. A sender more than maxLag behind (a
// descheduled generator) does not burst to catch up: the requests it missed
// inside the window are added to *backlog and the schedule restarts now.
func (s *schedule) wait(ctx context.Context, backlog *uint64) (int64, bool) {
	for ctx.Err() == nil {
		now := s.now()
		if float64(now) < s.next {
			s.pause(now, int64(math.Ceil(s.next)))
			continue
		}
		if float64(now)-s.next > maxLag {
			atomic.AddUint64(backlog, s.win.missed(s.next, float64(now), s.interval))
			s.next = float64(now)
		}
		return now, true
	}
	return 0, false
}

// sleep waits from now until about due: on Go's timers while due is more
// than coarseMargin away, then on the sleeper; a wait shorter than
// spinBelow spins.
func (s *schedule) sleep(now, due int64) {
	switch d := time.Duration(due - now); {
	case d > coarseMargin:
		time.Sleep(d - coarseMargin)
	case d > spinBelow:
		s.sleeper.sleep(d)
	default:
		for s.now() < due {
		}
	}
}

// spinBelow is the shortest wait a sleeper sleeps; a shorter one spins.
// A sleep costs the generator a wake-up, about 20 µs of its core on the
// benchmark machine (a VM): sleeping every gap, 4 sockets fell short of
// 40,000 requests/s (31,327/s), spinning the gaps under 30 µs reaches
// 71,795 of 72,000/s, and spinning under 60 µs gave no more rate but
// doubled the median latency at 72,000/s (the spin holds the receivers' P).
const spinBelow = 30 * time.Microsecond
