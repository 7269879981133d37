package main

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// sleeper waits precisely on a timerfd set to the wait's length and read through Go's netpoller: the goroutine parks and its P
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
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d))}
	if s.f == nil || unix.TimerfdSettime(s.fd, 0, &spec, nil) != nil {
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
