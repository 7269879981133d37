//go:build !nofastpath

package httptracker

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"herald/internal/sched"
)

// Most trackers' HTTP traffic is one announce per TCP connection, and
// net/http spends more CPU on each of those (a goroutine, its buffers, the
// request's maps, deadline timers, two epoll registrations) than
// opentracker spends on the whole connection. An eventLoop answers them
// itself: it accepts on its own SO_REUSEPORT socket, reads the request
// into a buffer it reuses, answers through the same Handler code (its one
// entry point, fastpath_linux.go), writes and closes, with no goroutine
// and no allocation per connection. Whatever
// it does not recognise (parseRequestHead) it hands to net/http with the
// bytes read so far, so behaviour and errors stay net/http's there.
//
// The loop waits in epoll_wait itself, a blocking system call that holds
// its thread and its P, as udptracker's readers wait in recvmmsg: the
// connection that wakes it is accepted, read and answered on that thread
// with no pass through the runtime's scheduler or netpoller (parking the
// loop's epoll fd in the netpoller instead cost two more epoll_waits per
// wake-up and the scheduler's work around them). cmd/herald keeps one P
// more than the loops and readers that wait this way
// (Server.BlockedLoops). When connections come seldom (sched.IdleAfter),
// the loop waits in the netpoller after all (sched.IdleWait): a wait in
// epoll_wait over 10 ms would cost more in sysmon's work than the
// netpoller's wake-up does.

// loopConfig is everything an event loop is given: its bounds, its
// logger, the one entry point into the tracker it answers for, and where
// the rest goes.
type loopConfig struct {
	// answer appends the reply to a request the loop has read whole
	// (Handler.fastAnswerer).
	answer answerFunc
	// handoff passes a connection from the client at the address, with
	// the bytes read from it so far, to net/http.
	handoff func(net.Conn, netip.Addr, []byte)
	// limit counts the loop's connections against the Server's bounds.
	limit *connLimit
	// readHeaderTimeout, readTimeout and idleTimeout are Config's.
	readHeaderTimeout, readTimeout, idleTimeout time.Duration
	// maxHeaderBytes is Config.MaxHeaderBytes.
	maxHeaderBytes int
	logger         *slog.Logger
}

// eventLoop serves one listening socket.
type eventLoop struct {
	cfg   loopConfig
	lfd   int             // the listening socket, non-blocking
	epfd  int             // the epoll instance the loop waits in
	idle  *sched.IdleWait // the loop's waits, and its wait in the netpoller over epfd
	timer int             // timerfd: wakes the loop for deadlines, and to stop
	mu    sync.Mutex      // keeps stop from arming timer as closeFiles closes it
	// conns holds the connections registered in epoll by descriptor:
	// the kernel hands out the lowest free one, so the slice stays as
	// long as the most connections open at once, and a connection that
	// waits costs a store, not a map insert and delete.
	conns  []*conn
	free   []*conn
	events []unix.EpollEvent
	in     []byte // read buffer, reused for every read
	out    []byte // reply buffer
	head   requestHead
	now    time.Time
	date   []byte // the Date header's value, renewed each second
	// acceptPaused is when accepting stopped because the process ran out of
	// file descriptors; zero while accepting.
	acceptPaused time.Time
	// queued is set when the last epoll_wait returned without sleeping:
	// connections arrived while the loop was busy (accept).
	queued bool
	// accepted is how many connections the last wakeup for the listening
	// socket accepted (accept).
	accepted int
	// waiting counts the connections in conns; the sweep timer runs only
	// while there are any, or accepting is paused (sweeping).
	waiting  int
	sweeping bool
	stopping atomic.Bool
}

// conn is a connection the loop waits on: a request not complete yet, a
// keep-alive connection between requests, or a reply not sent yet.
type conn struct {
	fd         int
	remote     netip.Addr
	in         []byte // bytes of requests not answered yet
	out        []byte // reply bytes the socket has not taken yet
	deadline   time.Time
	idle       bool // between requests of a keep-alive connection
	closeAfter bool // close once out is sent
	registered bool
	writing    bool // registered for EPOLLOUT rather than EPOLLIN
}

const (
	// acceptBatch bounds the accepts of one wakeup, so connections already
	// open get their turn during a connection flood.
	acceptBatch = 256
	// sweepInterval is how often deadlines are checked.
	sweepInterval = 250 * time.Millisecond
	// acceptPause is how long accepting rests when file descriptors run out.
	acceptPause = time.Second
	// keepBuffer is the largest per-connection buffer kept for reuse.
	keepBuffer = 16 << 10
	// queuedWait separates an epoll_wait that found a descriptor ready
	// (about a system call's time, ~1 µs) from one that slept until a
	// client's connection arrived (its round trip at least: tens of µs).
	queuedWait = 10 * time.Microsecond
)

// newEventLoop takes ownership of the listening socket lfd.
func newEventLoop(lfd int, cfg loopConfig) (*eventLoop, error) {
	l := &eventLoop{cfg: cfg, lfd: lfd, epfd: -1, timer: -1,
		events: make([]unix.EpollEvent, 128),
		// net/http reads 4 KiB beyond MaxHeaderBytes before answering 431;
		// a head that fills this buffer goes to it for that answer.
		in: make([]byte, 0, cfg.maxHeaderBytes+4096),
	}
	err := l.open()
	if err != nil {
		l.closeFiles()
		return nil, fmt.Errorf("httptracker: event loop: %w", err)
	}
	return l, nil
}

func (l *eventLoop) open() error {
	var err error
	if l.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return fmt.Errorf("epoll_create1: %w", err)
	}
	if l.timer, err = unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC); err != nil {
		return fmt.Errorf("timerfd_create: %w", err)
	}
	for _, fd := range []int{l.lfd, l.timer} {
		if err := l.ctl(unix.EPOLL_CTL_ADD, fd, unix.EPOLLIN); err != nil {
			return err
		}
	}
	if l.idle, err = sched.NewIdleWait(l.epfd); err != nil {
		return fmt.Errorf("idle wait: %w", err)
	}
	return nil
}

// sweepTimer starts (on) or stops the sweep timer. A loop with nothing to
// sweep sleeps in epoll_wait until a connection comes: a periodic wake-up
// there would also hand the loop's P to sysmon after every sleep longer
// than 10 ms, which then polls every 20 µs for a millisecond (4 ms of CPU a
// second for an idle herald, measured; docs/benchmarks.md, issue 18,
// session 7). Setting it as it is already costs nothing.
func (l *eventLoop) sweepTimer(on bool) {
	if l.sweeping == on {
		return
	}
	var spec unix.ItimerSpec
	if on {
		every := unix.NsecToTimespec(int64(sweepInterval))
		spec = unix.ItimerSpec{Interval: every, Value: every}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.timer < 0 || l.stopping.Load() {
		return // stop fired it, to wake the loop: leave it so
	}
	if err := unix.TimerfdSettime(l.timer, 0, &spec, nil); err != nil {
		l.cfg.logger.Warn("httptracker: cannot set the sweep timer", "err", err)
		return
	}
	l.sweeping = on
}

func (l *eventLoop) ctl(op, fd int, events uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	if err := unix.EpollCtl(l.epfd, op, fd, &ev); err != nil {
		return fmt.Errorf("epoll_ctl %d fd %d: %w", op, fd, err)
	}
	return nil
}

// closeFiles closes the loop's descriptors, the listening socket first.
func (l *eventLoop) closeFiles() {
	if l.lfd >= 0 {
		unix.Close(l.lfd)
		l.lfd = -1
	}
	l.mu.Lock()
	if l.timer >= 0 {
		unix.Close(l.timer)
		l.timer = -1
	}
	l.mu.Unlock()
	if l.idle != nil {
		l.idle.Close()
		l.idle = nil
	}
	if l.epfd >= 0 {
		unix.Close(l.epfd)
		l.epfd = -1
	}
}

// stop makes run return soon; safe from any goroutine.
func (l *eventLoop) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopping.Store(true)
	if l.timer >= 0 {
		// Fire the timer now: that wakes a run waiting in epoll_pwait.
		now := unix.ItimerSpec{Value: unix.Timespec{Nsec: 1}}
		unix.TimerfdSettime(l.timer, 0, &now, nil)
	}
}

// run serves until stop, then closes the listening socket and every
// connection the loop holds (requests on them were answered or are
// incomplete).
func (l *eventLoop) run() error {
	defer l.shutdown()
	var lastYield time.Time
	for !l.stopping.Load() {
		waited := time.Now()
		n, err := l.wait()
		now := time.Now()
		l.idle.Waited(int64(now.Sub(waited)))
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return fmt.Errorf("httptracker: event loop: epoll_wait: %w", err)
		}
		l.queued = now.Sub(waited) < queuedWait
		l.handle(l.events[:n], now)
		// A loop that never passes through the scheduler looks to sysmon
		// like one goroutine running for good: every 10 ms it would take
		// the P back from the system call and then poll every 20 µs for
		// the next millisecond. A yield every few milliseconds moves the
		// P's scheduling tick on (as udptracker's readers do).
		if l.now.Sub(lastYield) > sched.YieldEvery {
			sched.Yield()
			lastYield = l.now
		}
	}
	return nil
}

// wait waits for ready descriptors and fills l.events with them. While
// connections come often it is a blocking system call: the thread sleeps
// in the kernel until a descriptor is ready, and the runtime's scheduler
// and netpoller are not on the path of a request (Server.BlockedLoops).
// While they come seldom, the loop parks in the netpoller until epfd is
// ready and then takes the events with a raw epoll_wait that returns at
// once (see sched.IdleWait.Wait); should that find none, the loop waits
// again.
func (l *eventLoop) wait() (int, error) {
	if !l.idle.Idle() {
		return unix.EpollWait(l.epfd, l.events, -1)
	}
	l.idle.Wait()
	n, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(l.epfd), uintptr(unsafe.Pointer(&l.events[0])), uintptr(len(l.events)), 0, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

func (l *eventLoop) shutdown() {
	for _, c := range l.conns {
		if c != nil {
			l.close(c)
		}
	}
	l.closeFiles()
}

// handle serves one batch of ready descriptors.
func (l *eventLoop) handle(events []unix.EpollEvent, now time.Time) {
	l.tick(now)
	for i := range events {
		switch fd := int(events[i].Fd); fd {
		case l.lfd:
			l.accept()
		case l.timer:
			var expirations [8]byte
			unix.Read(l.timer, expirations[:])
			l.sweep()
		default:
			// A conn closed earlier in this batch is gone from conns;
			// if its fd was reused by an accept since, the read or write
			// below finds nothing to do.
			if c := l.connOf(fd); c != nil {
				if c.writing {
					l.flush(c)
				} else {
					l.read(c)
				}
			}
		}
	}
}

// tick renews the loop's clock and, each second, the Date header.
func (l *eventLoop) tick(now time.Time) {
	if now.Unix() != l.now.Unix() {
		l.date = now.UTC().AppendFormat(l.date[:0], "Mon, 02 Jan 2006 15:04:05 GMT")
	}
	l.now = now
}

// accept takes the connections queued on the listening socket. At light
// load a wakeup finds one, and accepting until EAGAIN would cost a second
// accept4 per connection that always fails; so after a sleep in
// epoll_wait, unless the last wakeup found more than one, the loop accepts
// the connection that woke it and goes back to wait (the listening socket
// is level-triggered: a connection still queued ends the next wait at
// once). When the wait returned at once or the last wakeup found several,
// connections are coming faster than the loop serves them: draining costs
// one failed accept4 per wakeup rather than one epoll_wait per connection.
func (l *eventLoop) accept() {
	batch := 1
	if l.queued || l.accepted > 1 {
		batch = acceptBatch
	}
	l.accepted = 0
	for range batch {
		var sa unix.RawSockaddrAny
		salen := uint32(unix.SizeofSockaddrAny)
		fd, errno := rawSyscall(unix.SYS_ACCEPT4, uintptr(l.lfd), uintptr(unsafe.Pointer(&sa)),
			uintptr(unsafe.Pointer(&salen)), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		switch errno {
		case 0:
			l.accepted++
		case unix.EAGAIN, unix.EINTR:
			return
		case unix.ECONNABORTED:
			continue
		case unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM:
			// Out of descriptors or memory: rest, or the level-triggered
			// listening socket would spin the loop.
			if err := l.ctl(unix.EPOLL_CTL_DEL, l.lfd, 0); err == nil {
				l.acceptPaused = l.now
				l.sweepTimer(true)
			}
			l.cfg.logger.Warn("httptracker: accept failed; pausing", "err", errno, "pause", acceptPause)
			return
		default:
			l.cfg.logger.Warn("httptracker: accept failed", "err", errno)
			return
		}
		remote := sockaddrAddr(&sa)
		if !l.cfg.limit.admit(remote) {
			unix.Close(fd)
			continue
		}
		c := l.newConn(fd, remote)
		l.read(c)
	}
}

// rawSyscall makes one of the loop's system calls: all are on non-blocking
// descriptors and return at once, so they skip the runtime's syscall entry
// and exit. With it, a write on loopback (which runs the receiver's TCP
// processing too) outlasting a sysmon tick got its P retaken and handed to
// another thread, and sysmon kept polling every 20 µs: context switches
// that cost more CPU than the request.
func rawSyscall(trap, a1, a2, a3, a4 uintptr) (int, unix.Errno) {
	r, _, errno := unix.RawSyscall6(trap, a1, a2, a3, a4, 0, 0)
	return int(r), errno
}

// sockaddrAddr returns the IP address of an accepted peer, unmapped.
func sockaddrAddr(sa *unix.RawSockaddrAny) netip.Addr {
	switch sa.Addr.Family {
	case unix.AF_INET:
		return netip.AddrFrom4((*unix.RawSockaddrInet4)(unsafe.Pointer(sa)).Addr)
	case unix.AF_INET6:
		return netip.AddrFrom16((*unix.RawSockaddrInet6)(unsafe.Pointer(sa)).Addr).Unmap()
	}
	return netip.Addr{}
}

func (l *eventLoop) newConn(fd int, remote netip.Addr) *conn {
	var c *conn
	if n := len(l.free); n > 0 {
		c, l.free = l.free[n-1], l.free[:n-1]
	} else {
		c = new(conn)
	}
	c.fd, c.remote = fd, remote
	c.deadline = l.now.Add(l.cfg.readHeaderTimeout)
	return c
}

// recycle returns c, whose fd is closed or handed off, to the free list.
func (l *eventLoop) recycle(c *conn) {
	if c.registered {
		l.conns[c.fd] = nil
		l.waiting--
	}
	in, out := c.in[:0], c.out[:0]
	if cap(in) > keepBuffer {
		in = nil
	}
	if cap(out) > keepBuffer {
		out = nil
	}
	*c = conn{fd: -1, in: in, out: out}
	l.free = append(l.free, c)
}

func (l *eventLoop) close(c *conn) {
	rawSyscall(unix.SYS_CLOSE, uintptr(c.fd), 0, 0, 0) // also removes it from the epoll set
	l.cfg.limit.release(c.remote)
	l.recycle(c)
}

// read reads what the client sent and serves it.
func (l *eventLoop) read(c *conn) {
	buf := append(l.in[:0], c.in...)
	n, err := rawSyscall(unix.SYS_READ, uintptr(c.fd), uintptr(unsafe.Pointer(unsafe.SliceData(buf[len(buf):cap(buf)]))), uintptr(cap(buf)-len(buf)), 0)
	switch {
	case n > 0:
		l.serve(c, buf[:len(buf)+n])
	case err == unix.EAGAIN || err == unix.EINTR:
		l.waitRead(c)
	default: // end of stream, reset
		l.close(c)
	}
}

// serve answers the complete requests at the start of data, keeps the
// rest, and hands the connection to net/http at the first request the
// fast path does not answer.
func (l *eventLoop) serve(c *conn, data []byte) {
	for {
		n, res := parseRequestHead(data, &l.head)
		if res == headFast {
			var answered bool
			if l.out, answered = l.cfg.answer(l.out[:0], &l.head, c.remote, l.date, l.now); !answered {
				res = headOther
			}
		}
		switch {
		case res == headOther || res == headIncomplete && len(data) == cap(l.in):
			l.handOff(c, data)
			return
		case res == headIncomplete:
			if len(data) > 0 && c.idle {
				c.idle, c.deadline = false, l.now.Add(l.cfg.readHeaderTimeout)
			}
			c.in = append(c.in[:0], data...)
			l.waitRead(c)
			return
		}
		data = data[n:]
		c.closeAfter = !l.head.keepAlive
		if !l.write(c, l.out) {
			// Closed, or the reply waits for the socket: keep what is left.
			if c.fd >= 0 {
				c.in = append(c.in[:0], data...)
			}
			return
		}
		if c.closeAfter {
			l.close(c)
			return
		}
		// Idle until the next request starts: the next pass waits for it,
		// or, with pipelined bytes already here, answers or times it.
		c.idle, c.deadline = true, l.now.Add(l.cfg.idleTimeout)
	}
}

// write sends b, or keeps what the socket did not take in c.out and waits
// for it to drain; true when all of b was sent. A failed connection is
// closed (c.fd is then -1).
func (l *eventLoop) write(c *conn, b []byte) bool {
	// MSG_NOSIGNAL: a client gone is an error return, not a SIGPIPE.
	// MSG_MORE before a close holds the reply back until close() adds the
	// FIN, so reply and FIN leave in one segment instead of two: on
	// loopback the receiver's processing of each segment runs in this call.
	flags := uintptr(unix.MSG_NOSIGNAL)
	if c.closeAfter {
		flags |= unix.MSG_MORE
	}
	n, err := rawSyscall(unix.SYS_SENDTO, uintptr(c.fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)), flags)
	if n == len(b) {
		return true
	}
	if err != 0 && err != unix.EAGAIN && err != unix.EINTR {
		l.close(c)
		return false
	}
	n = max(n, 0)
	c.out = append(c.out[:0], b[n:]...)
	// A fast-path reply is small: a client that does not take it within
	// ReadTimeout is gone or hostile (WriteTimeout is sized for full
	// scrapes).
	c.deadline = l.now.Add(l.cfg.readTimeout)
	l.waitWrite(c)
	return false
}

// flush sends more of a pending reply, and serves the requests after it
// once it is out.
func (l *eventLoop) flush(c *conn) {
	out := c.out
	if !l.write(c, out) {
		return
	}
	c.out = c.out[:0]
	if c.closeAfter {
		l.close(c)
		return
	}
	c.idle, c.deadline = true, l.now.Add(l.cfg.idleTimeout)
	l.serve(c, c.in) // the requests that came meanwhile, or a wait for the next
}

func (l *eventLoop) waitRead(c *conn) {
	l.register(c, unix.EPOLLIN|unix.EPOLLRDHUP, false)
}

func (l *eventLoop) waitWrite(c *conn) {
	l.register(c, unix.EPOLLOUT, true)
}

func (l *eventLoop) register(c *conn, events uint32, writing bool) {
	op := unix.EPOLL_CTL_ADD
	if c.registered {
		if c.writing == writing {
			return
		}
		op = unix.EPOLL_CTL_MOD
	}
	if err := l.ctl(op, c.fd, events); err != nil {
		l.cfg.logger.Warn("httptracker: cannot wait on connection", "err", err)
		l.close(c)
		return
	}
	if !c.registered {
		l.waiting++
		l.sweepTimer(true)
	}
	c.registered, c.writing = true, writing
	for c.fd >= len(l.conns) {
		l.conns = append(l.conns, nil)
	}
	l.conns[c.fd] = c
}

// connOf returns the registered connection on fd, nil for none.
func (l *eventLoop) connOf(fd int) *conn {
	if fd < 0 || fd >= len(l.conns) {
		return nil
	}
	return l.conns[fd]
}

// sweep closes the connections past their deadline and resumes accepting
// after a pause.
func (l *eventLoop) sweep() {
	for _, c := range l.conns {
		if c != nil && l.now.After(c.deadline) {
			l.close(c)
		}
	}
	if !l.acceptPaused.IsZero() && l.now.Sub(l.acceptPaused) >= acceptPause {
		if err := l.ctl(unix.EPOLL_CTL_ADD, l.lfd, unix.EPOLLIN); err == nil {
			l.acceptPaused = time.Time{}
		}
	}
	if l.waiting == 0 && l.acceptPaused.IsZero() {
		l.sweepTimer(false)
	}
}

// handOff gives the connection, with the bytes read from it so far, to
// net/http. The connection keeps its place in the limit until net/http
// closes it.
func (l *eventLoop) handOff(c *conn, data []byte) {
	if c.registered {
		// The fd is about to be duplicated, and an epoll registration
		// lives as long as any duplicate: remove it first.
		l.ctl(unix.EPOLL_CTL_DEL, c.fd, 0)
	}
	f := os.NewFile(uintptr(c.fd), "")
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		l.cfg.logger.Warn("httptracker: cannot hand connection to net/http", "err", err)
		l.cfg.limit.release(c.remote)
		l.recycle(c)
		return
	}
	l.cfg.handoff(nc, c.remote, bytes.Clone(data))
	l.recycle(c)
}
