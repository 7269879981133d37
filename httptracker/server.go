package httptracker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"herald/counters"
	"herald/internal/reuseport"
)

// Server is an HTTP tracker bound to one TCP address: one event loop per
// core, each on its own SO_REUSEPORT socket, answering announces and
// scrapes itself (see loop.go), and a net/http server for every other
// request, which the loops hand it.
type Server struct {
	handler *Handler
	addr    netip.AddrPort
	loops   []*eventLoop
	limit   connLimit
	// handed carries connections from the loops to net/http.
	handed *handoffListener
}

// Listen checks cfg and binds addr ("host:port"; port 0 picks one), so the
// caller can drop privileges before Serve.
func Listen(addr string, cfg Config) (*Server, error) {
	h, err := NewHandler(cfg)
	if err != nil {
		return nil, err
	}
	s := &Server{handler: h}
	s.limit.max, s.limit.counts = int64(h.cfg.MaxConnections), h.counts
	s.limit.perClient = h.cfg.MaxConnectionsPerClient
	s.limit.unlimited = h.cfg.Unlimited
	s.limit.clients = make(map[[8]byte]int)
	var nofile unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &nofile); err == nil && uint64(s.limit.max) > nofile.Cur {
		h.cfg.Logger.Warn("httptracker: max connections above the file descriptor limit; accepting pauses when descriptors run out",
			"addr", addr, "max_connections", s.limit.max, "nofile", nofile.Cur)
	}
	fds, bound, err := listenSockets(addr, runtime.GOMAXPROCS(0))
	if err != nil {
		return nil, err
	}
	s.addr = bound
	s.handed = &handoffListener{conns: make(chan net.Conn, handoffQueue), done: make(chan struct{}),
		addr: net.TCPAddrFromAddrPort(bound)}
	for i, fd := range fds {
		l, err := newEventLoop(h, fd, &s.limit, s.handOff)
		if err != nil {
			for _, fd := range fds[i+1:] {
				unix.Close(fd)
			}
			s.closeLoops()
			return nil, err
		}
		s.loops = append(s.loops, l)
	}
	h.counts.Watch(counters.HTTP, counters.Connections, s.limit.open.Load)
	h.counts.Watch(counters.HTTP, counters.ConnectionLimit, func() int64 { return s.limit.max })
	return s, nil
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

// Addr returns the address the server is bound to.
func (s *Server) Addr() netip.AddrPort { return s.addr }

// Handler returns the server's handler, for tests and for mounting it in
// another server.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve answers requests until ctx is done, then stops accepting, gives
// in-flight requests Config.ShutdownTimeout to finish (running full scrapes
// see their request context cancelled and stop early), closes every
// connection and returns nil. Connections are HTTP/1.1 keep-alive, unlike
// opentracker's one request per connection. Call Serve once.
func (s *Server) Serve(ctx context.Context) error {
	cfg := s.handler.cfg
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	served := make(chan error, 1+len(s.loops))
	go func() { served <- srv.Serve(s.handed) }()
	var loops sync.WaitGroup
	for _, l := range s.loops {
		loops.Go(func() {
			if err := l.run(); err != nil {
				served <- err
			}
		})
	}
	cfg.Logger.Info("httptracker: serving", "addr", s.addr, "loops", len(s.loops))

	var err error
	select {
	case err = <-served:
		err = fmt.Errorf("httptracker: serve %v: %w", s.addr, err)
	case <-ctx.Done():
	}
	for _, l := range s.loops {
		l.stop()
	}
	loops.Wait()
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		cfg.Logger.Warn("httptracker: shutdown timed out, closing connections", "addr", s.addr, "err", err)
		srv.Close()
	}
	s.handed.drain()
	if err != nil {
		return err
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("httptracker: serve %v: %w", s.addr, err)
	}
	cfg.Logger.Info("httptracker: stopped", "addr", s.addr)
	return nil
}

func (s *Server) closeLoops() {
	for _, l := range s.loops {
		l.closeFiles()
	}
}

// handOff passes a connection from a loop to net/http.
func (s *Server) handOff(c net.Conn, client netip.Addr, read []byte) {
	hc := &handedConn{Conn: c, read: read, limit: &s.limit, client: client}
	select {
	case s.handed.conns <- hc:
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

// handedConn is a connection handed to net/http: it first yields the bytes
// the loop read, and gives up its place in the limit when closed, or
// when upgraded to a WebSocket, which the WebSocket tracker's own limits
// then bound (LeaveLimit).
type handedConn struct {
	net.Conn
	read   []byte
	limit  *connLimit
	client netip.Addr
	left   atomic.Bool
}

// LeaveLimit gives up the connection's place in the limit.
func (c *handedConn) LeaveLimit() {
	if c.left.CompareAndSwap(false, true) {
		c.limit.release(c.client)
	}
}

func (c *handedConn) Read(p []byte) (int, error) {
	if len(c.read) > 0 {
		n := copy(p, c.read)
		c.read = c.read[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

func (c *handedConn) Close() error {
	c.LeaveLimit()
	return c.Conn.Close()
}
