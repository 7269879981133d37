package wstracker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"

	"herald/counters"
)

// Server is a WebSocket tracker on its own TCP address.
type Server struct {
	handler *Handler
	ln      net.Listener
	addr    netip.AddrPort
	// open counts the listener's connections, upgraded or not, which
	// Config.MaxConnections bounds as it bounds the upgraded ones.
	open atomic.Int64
}

// Listen binds addr for h: peers connecting there share h's swarms with
// those of every other server h is mounted in. Serve closes h's
// connections when it ends.
func (h *Handler) Listen(addr string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("wstracker: listen: %w", err)
	}
	s := &Server{handler: h, addr: ln.Addr().(*net.TCPAddr).AddrPort()}
	s.ln = &capListener{Listener: ln, s: s}
	return s, nil
}

// capListener closes connections beyond Config.MaxConnections at once,
// before they cost a goroutine, as the HTTP port does.
type capListener struct {
	net.Listener
	s *Server
}

func (l *capListener) Accept() (net.Conn, error) {
	limit := int64(l.s.handler.cfg.MaxConnections)
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if n := l.s.open.Add(1); limit > 0 && n > limit {
			l.s.open.Add(-1)
			l.s.handler.counts.Event(counters.WS, counters.Turned)
			c.Close()
			continue
		}
		return &countedConn{TCPConn: c.(*net.TCPConn), open: &l.s.open}, nil
	}
}

// countedConn gives its place back when closed, by net/http or, once
// upgraded, by the WebSocket connection.
type countedConn struct {
	*net.TCPConn
	open *atomic.Int64
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.open.Add(-1) })
	return c.TCPConn.Close()
}

// Addr returns the address the server is bound to.
func (s *Server) Addr() netip.AddrPort { return s.addr }

// Serve accepts upgrades until ctx is done, then stops accepting, closes
// every WebSocket connection with status 1001 and returns nil once all
// their goroutines have ended. Call Serve once.
func (s *Server) Serve(ctx context.Context) error {
	cfg := &s.handler.cfg
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		// An upgrade request has no body: the whole request gets the
		// header's time, and a connection left idle after a plain
		// request is closed as soon.
		ReadTimeout:    cfg.ReadHeaderTimeout,
		IdleTimeout:    cfg.ReadHeaderTimeout,
		MaxHeaderBytes: cfg.MaxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
		BaseContext:    func(net.Listener) context.Context { return ctx },
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(s.ln) }()
	cfg.Logger.Info("wstracker: serving", "addr", s.addr, "path", cfg.Path)

	var err error
	select {
	case err = <-served:
	case <-ctx.Done():
		// Upgrade requests are answered at once, so there is nothing to
		// drain: Close stops the listener and any half-read request.
		srv.Close()
		err = <-served
	}
	s.handler.Close()
	if !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("wstracker: serve %v: %w", s.addr, err)
	}
	cfg.Logger.Info("wstracker: stopped", "addr", s.addr)
	return nil
}
