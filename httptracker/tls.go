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
)

// TLSServer serves the tracker over HTTPS on one address (listen.tls):
// announces, scrapes, the stats pages and WebSocket upgrades (wss://),
// HTTP/1.1 with keep-alive. net/http answers every request: the handshake
// and record layer cost far more than the parse the event loops save, and
// a keep-alive client pays the handshake once.
type TLSServer struct {
	handler  *Handler
	addr     netip.AddrPort
	listener net.Listener
	limit    connLimit
}

// ListenTLS checks cfg and binds addr, to serve with tlsConfig (whose
// GetCertificate supplies the certificate of each handshake).
func ListenTLS(addr string, cfg Config, tlsConfig *tls.Config) (*TLSServer, error) {
	h, err := NewHandler(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("httptracker: listen tls %s: %w", addr, err)
	}
	s := &TLSServer{handler: h, addr: ln.Addr().(*net.TCPAddr).AddrPort()}
	s.limit.max = int64(h.cfg.MaxConnections)
	s.listener = tls.NewListener(&limitListener{Listener: ln, limit: &s.limit}, tlsConfig)
	return s, nil
}

// Addr returns the address the server is bound to.
func (s *TLSServer) Addr() netip.AddrPort { return s.addr }

// Stats returns the server's request and connection counters.
func (s *TLSServer) Stats() Stats {
	st := s.handler.Stats()
	st.OpenConnections = uint64(max(s.limit.open.Load(), 0))
	st.RefusedConnections = s.limit.refused.Load()
	st.MaxConnections = uint64(s.limit.max)
	return st
}

// Serve answers requests until ctx is done, then shuts down as Server.Serve
// does. Call Serve once.
func (s *TLSServer) Serve(ctx context.Context) error {
	cfg := s.handler.cfg
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		// Failed handshakes (scanners, expired client clocks) are routine.
		ErrorLog:    slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(s.listener) }()
	cfg.Logger.Info("httptracker: serving tls", "addr", s.addr)
	var err error
	select {
	case err = <-served:
		return fmt.Errorf("httptracker: serve tls %v: %w", s.addr, err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		cfg.Logger.Warn("httptracker: tls shutdown timed out, closing connections", "addr", s.addr, "err", err)
		srv.Close()
	}
	if err = <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("httptracker: serve tls %v: %w", s.addr, err)
	}
	cfg.Logger.Info("httptracker: stopped", "addr", s.addr)
	return nil
}

// limitListener closes the connections beyond the limit as it accepts
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
		if l.limit.admit() {
			return &handedConn{Conn: c, limit: l.limit}, nil
		}
		c.Close()
	}
}
