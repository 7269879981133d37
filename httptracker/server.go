package httptracker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
)

// Server is an HTTP tracker bound to one TCP address.
type Server struct {
	handler *Handler
	ln      net.Listener
	addr    netip.AddrPort
}

// Listen checks cfg and binds addr ("host:port"; port 0 picks one), so the
// caller can drop privileges before Serve.
func Listen(addr string, cfg Config) (*Server, error) {
	h, err := NewHandler(cfg)
	if err != nil {
		return nil, err
	}
	// No TCP keep-alive probes: most clients send one request and close, and
	// setting the option costs a syscall per accepted connection (9% of
	// herald's CPU in a no-keep-alive benchmark); IdleTimeout bounds idle
	// connections instead.
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("httptracker: listen: %w", err)
	}
	return &Server{handler: h, ln: ln, addr: ln.Addr().(*net.TCPAddr).AddrPort()}, nil
}

// Addr returns the address the server is bound to.
func (s *Server) Addr() netip.AddrPort { return s.addr }

// Handler returns the server's handler, for tests and for mounting it in
// another server.
func (s *Server) Handler() http.Handler { return s.handler }

// Stats returns the server's request counters.
func (s *Server) Stats() Stats { return s.handler.Stats() }

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
	served := make(chan error, 1)
	go func() { served <- srv.Serve(s.ln) }()
	cfg.Logger.Info("httptracker: serving", "addr", s.addr)

	select {
	case err := <-served:
		return fmt.Errorf("httptracker: serve %v: %w", s.addr, err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	if err != nil {
		cfg.Logger.Warn("httptracker: shutdown timed out, closing connections", "addr", s.addr, "err", err)
		srv.Close()
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("httptracker: serve %v: %w", s.addr, err)
	}
	cfg.Logger.Info("httptracker: stopped", "addr", s.addr)
	return nil
}
