package sched

import (
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// IdleAfter is the mean wait of a loop's system calls above which it waits
// in Go's netpoller rather than in the kernel (see IdleWait). A call
// blocked in the kernel for more than 10 ms has its P taken back by
// sysmon (proc.go retake), which then polls every 20 µs for a
// millisecond, and again when the call returns and finds its P gone:
// about a hundred wake-ups a request at 100 requests a second, and 300 µs
// of CPU more than waiting in the netpoller, where the loop holds no P
// and sysmon sleeps. That wait costs an epoll_ctl, an epoll_wait and the
// goroutine's park and wake-up, some 10-15 µs. With requests arriving at
// random, a wait passes 10 ms with probability exp(-10 ms / mean wait),
// which passes 15/300 at a mean of about 3 ms. At one request
// outstanding the mean is about 150 µs: those loops keep the blocking
// path, the cheapest there (docs/benchmarks.md, issue 18, session 7: idle
// waits).
const IdleAfter = 3 * time.Millisecond

// waitWeight is the weight, 1/waitWeight, of each wait in the running
// mean that IdleAfter is compared with: one long wait in a busy run, or
// one short wait between idle ones, does not switch paths.
const waitWeight = 8

// IdleWait decides, from the waits of one loop, whether the loop's next
// wait is in the kernel or in the netpoller, and makes the netpoller
// wait. It is an epoll instance holding the loop's descriptor with
// EPOLLONESHOT, armed only for a netpoller wait, so that readiness the
// blocking path consumes wakes nothing; the instance itself is in the
// netpoller as an os.File. One goroutine uses it at a time.
type IdleWait struct {
	fd     int             // the descriptor waited for
	epfd   int             // the epoll instance holding fd
	file   *os.File        // epfd, in the netpoller
	raw    syscall.RawConn // file's
	stepFn func(uintptr) bool
	armed  bool // step armed epfd in this wait
	events [1]unix.EpollEvent
	mean   int64 // the running mean of the loop's waits, ns
}

// NewIdleWait returns an IdleWait for reads from fd (a socket, or an
// epoll instance), which must stay open until Close. A new loop has no
// traffic yet: its first waits are in the netpoller.
func NewIdleWait(fd int) (*IdleWait, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	// No events asked for: disarmed until step arms it.
	ev := unix.EpollEvent{Events: unix.EPOLLONESHOT, Fd: int32(fd)}
	if err = unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		err = os.NewSyscallError("epoll_ctl", err)
	} else if err = unix.SetNonblock(epfd, true); err != nil { // so that os.NewFile polls it
		err = os.NewSyscallError("fcntl O_NONBLOCK", err)
	}
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	w := &IdleWait{fd: fd, epfd: epfd, file: os.NewFile(uintptr(epfd), "epoll"), mean: 2 * int64(IdleAfter)}
	if w.raw, err = w.file.SyscallConn(); err != nil {
		w.file.Close()
		return nil, err
	}
	w.stepFn = w.step
	return w, nil
}

// Waited adds a wait of the loop (a blocking call's, or Wait's and the
// call after it) to the running mean.
func (w *IdleWait) Waited(ns int64) { w.mean += (ns - w.mean) / waitWeight }

// Idle reports whether the loop's waits are long: its next wait should be
// Wait, not a blocking call.
func (w *IdleWait) Idle() bool { return w.mean > int64(IdleAfter) }

// Wait parks the goroutine in the netpoller until fd is readable (for a
// socket shut down to wake its reader, too). The call that follows then
// finds it ready: make it a raw, non-blocking call, for the reason in
// step, and block only should it find nothing. Wait cannot fail:
// only Close would end it, and Close comes after the loop's last Wait;
// should arming fail, it returns at once and the loop's call blocks as it
// would have.
func (w *IdleWait) Wait() {
	w.armed = false
	_ = w.raw.Read(w.stepFn)
}

// step is the RawConn.Read callback of Wait. The first call arms epfd,
// after Read has cleared the poller's readiness, so the runtime hears of
// readiness from then on; arming checks the level, so fd already ready
// makes epfd ready at once. Later calls, after the poller reported epfd
// readable, take the event (which disarms fd again) and report whether
// there was one. The epoll_wait is a raw system call: it returns at once,
// and through the runtime's syscall entry it would wake sysmon, which
// sleeps while every P is idle, only for it to poll and sleep again.
func (w *IdleWait) step(uintptr) bool {
	if !w.armed {
		w.armed = true
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLONESHOT, Fd: int32(w.fd)}
		return unix.EpollCtl(w.epfd, unix.EPOLL_CTL_MOD, w.fd, &ev) != nil // then block as before
	}
	n, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(w.epfd), uintptr(unsafe.Pointer(&w.events[0])), 1, 0, 0, 0)
	return n > 0 || errno != 0 && errno != unix.EINTR
}

// Close closes the epoll instance; fd stays open.
func (w *IdleWait) Close() error { return w.file.Close() }
