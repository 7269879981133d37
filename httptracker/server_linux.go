//go:build !nofastpath

package httptracker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"herald/counters"
	"herald/internal/reuseport"
)

// fastPath is a Server's event loops, one per core, each on its own
// SO_REUSEPORT socket, and the listener through which they hand net/http
// the requests they do not answer themselves.
type fastPath struct {
	loops   []*eventLoop
	handed  *handoffListener
	running sync.WaitGroup
}

// listen binds the loops' sockets and builds the loops.
func (s *Server) listen(addr string) error {
	cfg := s.handler.cfg
	var nofile unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &nofile); err == nil && uint64(s.limit.max) > nofile.Cur {
		cfg.Logger.Warn("httptracker: max connections above the file descriptor limit; accepting pauses when descriptors run out",
			"addr", addr, "max_connections", s.limit.max, "nofile", nofile.Cur)
	}
	fds, bound, err := listenSockets(addr, runtime.GOMAXPROCS(0))
	if err != nil {
		return err
	}
	s.addr = bound
	s.fast.handed = &handoffListener{conns: make(chan net.Conn, handoffQueue), done: make(chan struct{}),
		addr: net.TCPAddrFromAddrPort(bound)}
	s.listener = s.fast.handed
	loopCfg := loopConfig{
		handoff:           s.handOff,
		limit:             &s.limit,
		readHeaderTimeout: cfg.ReadHeaderTimeout,
		readTimeout:       cfg.ReadTimeout,
		idleTimeout:       cfg.IdleTimeout,
		maxHeaderBytes:    cfg.MaxHeaderBytes,
		logger:            cfg.Logger,
	}
	for i, fd := range fds {
		loopCfg.answer = s.handler.fastAnswerer()
		l, err := newEventLoop(fd, loopCfg)
		if err != nil {
			for _, fd := range fds[i+1:] {
				unix.Close(fd)
			}
			for _, l := range s.fast.loops {
				l.closeFiles()
			}
			return err
		}
		s.fast.loops = append(s.fast.loops, l)
	}
	return nil
}

// listenSockets binds n TCP sockets to addr with SO_REUSEPORT, so the
// kernel spreads connections over them, and returns their descriptors
// (non-blocking, outside Go's netpoller) and the address they are bound to.
// An empty host or "::" is one dual-stack address, as net.Listen makes it.
func listenSockets(addr string, n int) ([]int, netip.AddrPort, error) {
	lc := net.ListenConfig{
		// No TCP keep-alive probes on accepted sockets: the loops bound
		// idle connections themselves.
		KeepAlive: -1,
		Control: func(_, _ string, c syscall.RawConn) error {
			var err error
			c.Control(func(fd uintptr) {
				err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
				if err == nil {
					// Accept a connection once its request has arrived (or
					// after a second): no read that finds nothing, no
					// epoll registration, no second wakeup for it.
					err = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, 1)
				}
			})
			return err
		},
	}
	var fds []int
	var bound netip.AddrPort
	fail := func(err error) ([]int, netip.AddrPort, error) {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, netip.AddrPort{}, fmt.Errorf("httptracker: listen %s: %w", addr, err)
	}
	if err := reuseport.Free("tcp", addr); err != nil {
		return fail(err)
	}
	for i := range n {
		ln, err := lc.Listen(context.Background(), "tcp", addr)
		if err != nil {
			return fail(err)
		}
		if i == 0 {
			// The other sockets join the first one's address: the port it
			// was given for port 0, the address a host name resolved to.
			bound = ln.Addr().(*net.TCPAddr).AddrPort()
			addr = bound.String()
		}
		// The loop owns a duplicate; closing the listener takes the
		// original out of Go's netpoller. Both share one socket.
		rc, err := ln.(*net.TCPListener).SyscallConn()
		var fd int
		if err == nil {
			cerr := rc.Control(func(lfd uintptr) { fd, err = unix.FcntlInt(lfd, unix.F_DUPFD_CLOEXEC, 0) })
			err = errors.Join(err, cerr)
		}
		ln.Close()
		if err != nil {
			return fail(err)
		}
		fds = append(fds, fd)
	}
	return fds, bound, nil
}

// size is the number of event loops.
func (f *fastPath) size() int { return len(f.loops) }

// start runs the loops; each sends served the error that stops it, if any.
func (f *fastPath) start(served chan<- error) {
	for _, l := range f.loops {
		f.running.Go(func() {
			if err := l.run(); err != nil {
				served <- err
			}
		})
	}
}

// stop stops the loops and waits for them, then closes the connections
// they handed over that net/http has not taken.
func (f *fastPath) stop() {
	for _, l := range f.loops {
		l.stop()
	}
	f.running.Wait()
	if f.handed != nil { // nil for ListenTLS: no loops
		f.handed.drain()
	}
}

// handOff passes a connection from a loop to net/http.
func (s *Server) handOff(c net.Conn, client netip.Addr, read []byte) {
	hc := &handedConn{Conn: c, read: read, limit: &s.limit, client: client}
	select {
	case s.fast.handed.conns <- hc:
	default:
		// net/http is not keeping up: refusing this one is better than
		// stalling the loop and every connection on it.
		s.limit.counts.Event(counters.HTTP, counters.Turned)
		hc.Close()
	}
}

// handoffQueue is how many handed connections may wait for net/http.
const handoffQueue = 1024

// handoffListener is the net.Listener net/http serves: it yields the
// connections the loops hand over.
type handoffListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	addr  net.Addr
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }

// drain closes connections handed over but never accepted.
func (l *handoffListener) drain() {
	for {
		select {
		case c := <-l.conns:
			c.Close()
		default:
			return
		}
	}
}
