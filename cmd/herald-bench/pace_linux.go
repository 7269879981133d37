package main

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// spinBelow is the shortest wait a sleeper sleeps; a shorter one spins.
// A sleep costs the generator a wake-up, about 20 µs of its core on the
// benchmark machine (a VM): sleeping every gap, 4 sockets fell short of
// 40,000 requests/s (31,327/s), spinning the gaps under 30 µs reaches
// 71,795 of 72,000/s, and spinning under 60 µs gave no more rate but
// doubled the median latency at 72,000/s (the spin holds the receivers' P).
const spinBelow = 30 * time.Microsecond

// sleeper waits precisely on a timerfd set to an absolute CLOCK_MONOTONIC
// deadline and read through Go's netpoller: the goroutine parks and its P
// goes on serving the receivers, and the epoll wait wakes when the timer
// fires, not at the next millisecond as for Go's own timers. (A locked
// thread sleeping in clock_nanosleep was tried first: the runtime takes it
// for a short system call, so the sleeper keeps its P and the replies wait
// for sysmon to take it back; the generator's median latency to the floor
// went from 200 to 440-1,100 µs.) A timerfd's hrtimer has no timer slack.
type sleeper struct {
	fd int
	f  *os.File // fd, registered with the netpoller
}

// newSleeper returns a sleeper, or one that falls back on time.Sleep if the
// timerfd cannot be made.
func newSleeper() *sleeper {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return &sleeper{}
	}
	return &sleeper{fd: fd, f: os.NewFile(uintptr(fd), "timerfd")}
}

// sleep returns after d (and not before).
func (s *sleeper) sleep(d time.Duration) {
	var now unix.Timespec
	if s.f == nil || unix.ClockGettime(unix.CLOCK_MONOTONIC, &now) != nil {
		time.Sleep(d)
		return
	}
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(now.Nano() + int64(d))}
	if unix.TimerfdSettime(s.fd, unix.TFD_TIMER_ABSTIME, &spec, nil) != nil {
		time.Sleep(d)
		return
	}
	var expirations [8]byte
	if _, err := s.f.Read(expirations[:]); err != nil {
		time.Sleep(d)
	}
}

func (s *sleeper) close() {
	if s.f != nil {
		s.f.Close()
	}
}
