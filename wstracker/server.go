package wstracker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
)

// Server is a WebSocket tracker on its own TCP address.
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
	return h.Listen(addr)
}

// Listen binds addr for h: peers connecting there share h's swarms with
// those of every other server h is mounted in. Serve closes h's
// connections when it ends.
func (h *Handler) Listen(addr string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("wstracker: listen: %w", err)
	}
	return &Server{handler: h, ln: ln, addr: ln.Addr().(*net.TCPAddr).AddrPort()}, nil
}

// Addr returns the address the server is bound to.
func (s *Server) Addr() netip.AddrPort { return s.addr }

// Handler returns the server's handler (for its Stats).
func (s *Server) Handler() *Handler { return s.handler }

// Serve accepts upgrades until ctx is done, then stops accepting, closes
// every WebSocket connection with status 1001 and returns nil once all
// their goroutines have ended. Call Serve once.
func (s *Server) Serve(ctx context.Context) error {
	cfg := &s.handler.cfg
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx },
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
