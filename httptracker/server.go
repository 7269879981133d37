package httptracker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"

	"herald/counters"
	"herald/ratelimit"
)

// Server is an HTTP tracker bound to one TCP address. On Linux, event
// loops answer announces and scrapes themselves (loop_linux.go) and hand
// every other request to a net/http server; elsewhere net/http answers
// everything (server_other.go).
type Server struct {
	handler *Handler
	addr    netip.AddrPort
	limit   connLimit
	// listener is what net/http serves.
	listener net.Listener
	fast     fastPath
}

// Listen checks cfg and binds addr ("host:port"; port 0 picks one), so the
// caller can drop privileges before Serve.
func Listen(addr string, cfg Config) (*Server, error) {
	s, err := newServer(cfg)
	if err != nil {
		return nil, err
	}
	if err := s.listen(addr); err != nil {
		return nil, err
	}
	return s, nil
}

// ListenTLS is Listen for HTTPS (listen.tls): announces, scrapes, the
// stats pages and WebSocket upgrades (wss://) over HTTP/1.1 with
// keep-alive, each handshake's certificate from tlsConfig. net/http
// answers every request, on every platform: the handshake and record layer
// cost far more than the parse the event loops save.
func ListenTLS(addr string, cfg Config, tlsConfig *tls.Config) (*Server, error) {
	s, err := newServer(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := s.listenPlain(addr)
	if err != nil {
		return nil, err
	}
	s.listener = tls.NewListener(ln, tlsConfig)
	return s, nil
}

func newServer(cfg Config) (*Server, error) {
	h, err := NewHandler(cfg)
	if err != nil {
		return nil, err
	}
	s := &Server{handler: h}
	s.limit.max, s.limit.counts = int64(h.cfg.MaxConnections), h.counts
	s.limit.perClient = h.cfg.MaxConnectionsPerClient
	s.limit.unlimited = h.cfg.Unlimited
	s.limit.clients = make(map[[8]byte]int)
	h.counts.Watch(counters.HTTP, counters.Connections, s.limit.open.Load)
	h.counts.Watch(counters.HTTP, counters.ConnectionLimit, func() int64 { return s.limit.max })
	return s, nil
}

// listenPlain binds addr for net/http alone, within the connection limits.
func (s *Server) listenPlain(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("httptracker: listen %s: %w", addr, err)
	}
	s.addr = ln.Addr().(*net.TCPAddr).AddrPort()
	return &limitListener{Listener: ln, limit: &s.limit}, nil
}

// limitListener closes the connections beyond the limits as it accepts
// them, as the event loops do.
type limitListener struct {
	net.Listener
	limit *connLimit
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		client := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
		if l.limit.admit(client) {
			return &handedConn{Conn: c, limit: l.limit, client: client}, nil
		}
		c.Close()
	}
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
	served := make(chan error, 1+s.fast.size())
	go func() { served <- srv.Serve(s.listener) }()
	s.fast.start(served)
	cfg.Logger.Info("httptracker: serving", "addr", s.addr, "loops", s.fast.size())

	var err error
	select {
	case err = <-served:
		err = fmt.Errorf("httptracker: serve %v: %w", s.addr, err)
	case <-ctx.Done():
	}
	s.fast.stop()
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		cfg.Logger.Warn("httptracker: shutdown timed out, closing connections", "addr", s.addr, "err", err)
		srv.Close()
	}
	if err != nil {
		return err
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("httptracker: serve %v: %w", s.addr, err)
	}
	cfg.Logger.Info("httptracker: stopped", "addr", s.addr)
	return nil
}

// connLimit counts the open connections of a Server, the fast path's and
// those handed to net/http, against Config.MaxConnections, and each
// client's against Config.MaxConnectionsPerClient.
type connLimit struct {
	max    int64
	open   atomic.Int64
	counts *counters.Set

	perClient int
	unlimited func(netip.Addr) bool
	mu        sync.Mutex
	clients   map[[8]byte]int // open connections per ratelimit.Key; guarded by mu
}

func (l *connLimit) admit(client netip.Addr) bool {
	if l.open.Add(1) > l.max {
		l.open.Add(-1)
		l.counts.Event(counters.HTTP, counters.Turned)
		return false
	}
	if l.unlimited == nil || !l.unlimited(client) {
		k := ratelimit.Key(client)
		l.mu.Lock()
		n := l.clients[k]
		if n < l.perClient {
			l.clients[k] = n + 1
		}
		l.mu.Unlock()
		if n >= l.perClient {
			l.open.Add(-1)
			l.counts.Event(counters.HTTP, counters.Turned)
			return false
		}
	}
	l.counts.Event(counters.HTTP, counters.Accepted)
	return true
}

func (l *connLimit) release(client netip.Addr) {
	l.open.Add(-1)
	if l.unlimited != nil && l.unlimited(client) {
		return
	}
	k := ratelimit.Key(client)
	l.mu.Lock()
	if n := l.clients[k]; n > 1 {
		l.clients[k] = n - 1
	} else {
		delete(l.clients, k)
	}
	l.mu.Unlock()
}

// handedConn is a connection net/http serves: it first yields the bytes an
// event loop read from it, if any, and gives up its place in the limit
// when closed, or when upgraded to a WebSocket, which the WebSocket
// tracker's own limits then bound (LeaveLimit).
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

// BlockedLoops returns how many Ps (GOMAXPROCS) the server's event loops
// hold while they wait: on Linux each loop sleeps in epoll_wait, a system
// call, keeping its P, as udptracker's readers do in recvmmsg; the caller
// keeps one P more than all such waiters so that the runtime leaves the
// calls alone (udptracker.Server.BlockedReaders). 0 where net/http serves
// everything.
func (s *Server) BlockedLoops() int { return s.fast.size() }
