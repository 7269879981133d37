package udptracker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"herald/counters"
	"herald/internal/reuseport"
	"herald/swarm"
	"herald/tracker"
)

// Defaults for Config.
const (
	DefaultMaxPeers4     = 200 // 20 + 200*6 = 1220 bytes
	DefaultMaxPeers6     = 66  // 20 + 66*18 = 1208 bytes: under the 1280-byte IPv6 minimum MTU
	DefaultKeyRotation   = time.Hour
	DefaultReceiveBuffer = 8 << 20
	maxPacketLen         = 2048 // the largest request read; longer ones are cut (see doc.go)
	batchLen             = 64   // datagrams per recvmmsg/sendmmsg
	maxUDPPayload        = 65507
)

// Config configures a Server. Zero fields take the defaults named beside
// them.
type Config struct {
	// Tracker applies the tracker's rules (access list, rate limit,
	// numwant, intervals, the connect bound) and holds the store;
	// required. A connect over the connect bound is dropped without a word
	// (its source is unproven); an announce or scrape over its client's
	// rate limit, with a valid connection id, gets an error packet.
	Tracker *tracker.Tracker
	// MaxPeers4 and MaxPeers6 cap the peers in one reply to an IPv4 or IPv6
	// client, to keep replies within a typical MTU. Default 200 and 66.
	MaxPeers4, MaxPeers6 int
	// Counters receives the request counts and each request's response
	// time: from the kernel's receive time of the datagram (so the time
	// spent queued in the socket counts; from the end of the read where
	// the platform gives no receive time) to the start of the sendmmsg
	// that hands its reply to the kernel. The send itself is left out: on
	// loopback it runs the client's side too (delivery, wake-up). The
	// clock is read once per batch. It also receives each request's
	// service time: from the end of the recvmmsg that read its batch to
	// the same start of the sendmmsg, the wait in the socket left out
	// (one add per batch). Default a Set of its own.
	Counters *counters.Set
	// Sockets is the number of SO_REUSEPORT sockets, each with one reader
	// goroutine. Default runtime.GOMAXPROCS(0); always 1 off Linux.
	Sockets int
	// KeyRotation is how often the connection id key is replaced. Default
	// 1h, at least 2m (an id must outlive one rotation).
	KeyRotation time.Duration
	// ConnIDSecret is what the connection id keys are derived from (see
	// connid.go). Default: NewConnIDSecret(), random per Listen. Give the
	// one a snapshot kept, and ids issued before a restart stay valid.
	ConnIDSecret []byte
	// ReceiveBuffer is the SO_RCVBUF asked for each socket, best effort.
	// Default 8 MiB.
	ReceiveBuffer int
	// Logger gets start, stop and internal errors, never a line per
	// request. Default slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	if c.Tracker == nil {
		return c, errors.New("udptracker: Config.Tracker is nil")
	}
	if c.MaxPeers4 == 0 {
		c.MaxPeers4 = DefaultMaxPeers4
	}
	if c.MaxPeers6 == 0 {
		c.MaxPeers6 = DefaultMaxPeers6
	}
	if c.Counters == nil {
		c.Counters = counters.New()
	}
	if c.Sockets == 0 {
		c.Sockets = runtime.GOMAXPROCS(0)
	}
	if !reusePort {
		c.Sockets = 1
	}
	if c.KeyRotation == 0 {
		c.KeyRotation = DefaultKeyRotation
	}
	if len(c.ConnIDSecret) == 0 {
		c.ConnIDSecret = NewConnIDSecret()
	}
	if c.ReceiveBuffer == 0 {
		c.ReceiveBuffer = DefaultReceiveBuffer
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	switch {
	case c.MaxPeers4 < 0 || c.MaxPeers6 < 0 || c.Sockets < 0 || c.ReceiveBuffer < 0:
		return c, fmt.Errorf("udptracker: negative count among peer caps %d/%d, sockets %d, receive buffer %d",
			c.MaxPeers4, c.MaxPeers6, c.Sockets, c.ReceiveBuffer)
	case announceResponseHeaderLen+c.MaxPeers4*swarm.PeerLen4 > maxUDPPayload, announceResponseHeaderLen+c.MaxPeers6*swarm.PeerLen6 > maxUDPPayload:
		return c, fmt.Errorf("udptracker: peer caps %d/%d: a reply would not fit a UDP datagram", c.MaxPeers4, c.MaxPeers6)
	case c.KeyRotation < minKeyRotation:
		return c, fmt.Errorf("udptracker: key rotation %v: must be at least %v", c.KeyRotation, minKeyRotation)
	}
	return c, nil
}

// Server is a BEP 15 UDP tracker on one address: Config.Sockets sockets
// bound to it with SO_REUSEPORT, so the kernel spreads clients over them,
// each read by one goroutine.
type Server struct {
	cfg     Config
	addr    netip.AddrPort
	conns   []batchConn
	ids     *connIDs
	serving atomic.Bool
}

// Listen binds the sockets for addr ("host:port"; an empty host or "::"
// is one dual-stack socket for IPv4 and IPv6, an IPv4 host IPv4 only). It
// only binds, so privileges can be dropped before Serve.
func Listen(addr string, cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	network, err := networkFor(addr)
	if err != nil {
		return nil, err
	}
	if err := reuseport.Free(network, addr); err != nil {
		return nil, fmt.Errorf("udptracker: listen %s: %w", addr, err)
	}
	s := &Server{cfg: cfg, ids: newConnIDs(cfg.ConnIDSecret, cfg.KeyRotation)}
	for i := range cfg.Sockets {
		c, err := listenBatch(network, addr, cfg.ReceiveBuffer)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("udptracker: listen %s (socket %d of %d): %w", addr, i+1, cfg.Sockets, err)
		}
		if i == 0 {
			// The other sockets join the first one's address: the port it
			// was given for port 0, the address a host name resolved to.
			s.addr = c.LocalAddr()
			addr = s.addr.String()
		}
		s.conns = append(s.conns, c)
	}
	return s, nil
}

// networkFor picks "udp" for a wildcard or named host (Go then opens one
// dual-stack socket for the wildcard), "udp4" or "udp6" for an address.
func networkFor(addr string) (string, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("udptracker: listen address %q: %w", addr, err)
	}
	ip, err := netip.ParseAddr(host)
	switch {
	case err != nil || ip.IsUnspecified() && ip.Is6():
		return "udp", nil
	case ip.Is4():
		return "udp4", nil
	}
	return "udp6", nil
}

// Addr returns the address the sockets are bound to (with the port chosen
// when Listen was given port 0).
func (s *Server) Addr() netip.AddrPort { return s.addr }

// BlockedReaders returns how many Ps (GOMAXPROCS) the server's readers hold
// while they wait: on Linux each socket's reader blocks in recvmmsg, a
// system call, keeping its P. When no P is left idle, Go's sysmon takes a
// P back from a system call 20 µs into it and wakes a thread to hold it,
// which at light load is every datagram: a futex wake-up, a context switch
// and sysmon itself polling every 20 µs. With one P more than the blocked
// readers, sysmon leaves system calls under 10 ms alone (see
// docs/benchmarks.md, "Wake-ups per datagram"). 0 off Linux, where the
// reader waits in the netpoller.
func (s *Server) BlockedReaders() int {
	if !blockingReaders {
		return 0
	}
	return len(s.conns)
}

// Close closes the sockets of a Server that will not Serve; Serve closes
// them itself when its context ends.
func (s *Server) Close() error {
	var errs []error
	for _, c := range s.conns {
		if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Serve answers requests until ctx is done, then closes the sockets and
// returns nil once every reader has stopped. It returns early with an error
// if a socket fails.
func (s *Server) Serve(ctx context.Context) error {
	if !s.serving.CompareAndSwap(false, true) {
		return errors.New("udptracker: Serve called twice")
	}
	log := s.cfg.Logger
	log.Info("udp tracker serving", "addr", s.addr, "sockets", len(s.conns))
	failed := make(chan error, len(s.conns))
	var readers sync.WaitGroup
	for i, c := range s.conns {
		h := newHandler(&s.cfg, s.ids)
		readers.Go(func() {
			if err := s.read(c, h); err != nil {
				failed <- fmt.Errorf("udptracker: socket %d: %w", i, err)
			}
		})
	}
	var err error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err = <-failed:
			log.Error("udp tracker socket failed", "err", err)
			break loop
		}
	}
	closeErr := s.Close()
	readers.Wait()
	log.Info("udp tracker stopped", "addr", s.addr)
	return errors.Join(err, closeErr)
}

// read is one socket's reader loop: read a batch, answer it, send the
// replies in one batch. It returns nil once the socket is closed.
func (s *Server) read(c batchConn, h *handler) error {
	rx := newMessages(batchLen, maxPacketLen)
	tx := newMessages(batchLen, maxReplyLen(&s.cfg))
	var times counters.Tally
	for {
		n, read, err := c.ReadBatch(rx)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			h.counts.Fault(counters.UDP, counters.ReadFailed)
			continue
		}
		if n == 0 {
			continue // woken by Close; the next read reports it
		}
		if err := serveBatch(c, h, rx[:n], tx, read, &times); err != nil {
			return nil // closed while sending
		}
	}
}

// serveBatch answers the datagrams in rx, read at time read, building
// replies in tx, and sends them; it records the datagrams' response times
// (see Config.Counters) through times, and the batch's service time (from
// the read to the start of the send, the same for each of its datagrams)
// in one add. It returns an error only when the socket has been closed.
//
// It reads one clock once, the monotonic one (see clock.go): the
// handler's seconds are the read's, and the start of the send is the
// read's end plus the monotonic time since.
func serveBatch(c batchConn, h *handler, rx, tx []message, read instant, times *counters.Tally) error {
	now := read.unix()
	out := 0
	for i := range rx {
		m := &rx[i]
		reply := h.serve(tx[out].Buf[:0], m.Buf[:m.N], m.Addr, now)
		if len(reply) == 0 {
			continue
		}
		t := &tx[out]
		t.Buf, t.N = reply[:cap(reply)], len(reply)
		t.Addr, t.Scope, t.Local = m.Addr, m.Scope, m.Local
		out++
	}
	served := read.since()
	handed := read.wall + int64(served)
	for i := range rx {
		start := rx[i].Arrived
		if start == 0 || start > handed {
			// No receive time, or the wall clock stepped back since:
			// time from the read.
			start = read.wall
		}
		times.Add(time.Duration(handed - start))
	}
	h.counts.ObserveBatch(counters.UDP, times, max(served, 0), len(rx))
	for sent := 0; sent < out; {
		n, err := c.WriteBatch(tx[sent:out])
		sent += n
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// The kernel refused msgs[sent] (no route, a bad address):
			// skip it and send the rest.
			h.counts.Fault(counters.UDP, counters.SendFailed)
			sent++
		}
	}
	return nil
}
