package httptracker

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"herald/counters"
	"herald/tracker"
)

// Config holds the HTTP tracker's settings. Zero fields take the defaults
// documented beside them, which are opentracker's compile-time constants
// where it has one.
type Config struct {
	// Tracker applies the tracker's rules (access list, rate limit,
	// numwant, intervals, the addresses clients state) and holds the
	// store announces and scrapes go to. Required.
	Tracker *tracker.Tracker

	// MaxScrapeHashes is how many info_hash parameters one scrape answers;
	// extra ones are dropped silently, as opentracker. Default 64.
	MaxScrapeHashes int
	// MaxFullScrapes bounds concurrent full scrapes; more get 503 with
	// Retry-After. Default 2; negative turns full scrapes off, and a bare
	// /scrape is then answered as a scrape of no hashes.
	MaxFullScrapes int

	// RedirectURL is where GET / is redirected (302); empty gives 404.
	RedirectURL string

	// TrustedProxies are the networks of reverse proxies whose ProxyHeader
	// names the client. The client is the rightmost address in it that is
	// not a trusted proxy: entries to its left were written by the client
	// itself and prove nothing (opentracker takes the leftmost, so any
	// client behind a proxy can choose its own address). When there is
	// none (no header, a garbled hop, every hop trusted) the client is
	// unknown: its announces and scrapes are refused (UnknownClient) and
	// Stats gets an invalid address.
	TrustedProxies []netip.Prefix
	// ProxyHeader is the one header trusted proxies name the client in,
	// as nginx's real_ip_header: "X-Forwarded-For" (the default) or
	// "X-Real-IP". The other is ignored, so a client cannot pick one.
	ProxyHeader string
	// Stats, if set, answers requests for StatsPaths with the client's
	// address as ClientAddr resolves it (through trusted proxies), so the
	// stats access check sees the address announces see. Paths are given
	// without the leading slash; one ending in "/" matches everything
	// below it. They are routed before opentracker's prefix rules, so a
	// stats path starting with "a" still reaches the stats.
	Stats      func(w http.ResponseWriter, r *http.Request, client netip.Addr)
	StatsPaths []string

	// WebSocket, if set, takes every request IsWebSocket picks (upgrades
	// for a WebTorrent tracker on the same port), before any other route.
	WebSocket   http.Handler
	IsWebSocket func(*http.Request) bool
	// ACMEChallenge, if set, answers every request under
	// /.well-known/acme-challenge/ (RFC 8555 HTTP-01), so herald can obtain
	// certificates for listen.tls on its plain HTTP port.
	ACMEChallenge http.Handler

	// Counters receives the request counts, the connection counts and how
	// long each announce and scrape took to answer (full scrapes and stats
	// excluded): on Linux's event loops, the response time runs from the
	// epoll_wait that found the request's connection ready (so it counts
	// the connections served before it in that pass) and the service time
	// from when the request's head was parsed, both to the start of the
	// write of the reply; through net/http (other platforms, TLS, requests
	// handed off), both run from when net/http handed herald the parsed
	// request and are the same value. Default a Set of its own.
	Counters *counters.Set

	// ReadHeaderTimeout, ReadTimeout and IdleTimeout bound how long a client
	// may take to send a request's headers, a whole request, and how long a
	// keep-alive connection may idle. Defaults 10s, 15s, 60s. A connection
	// that sends nothing waits in the kernel for about a second
	// (TCP_DEFER_ACCEPT) before it is accepted and ReadHeaderTimeout starts.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	IdleTimeout       time.Duration
	// MaxConnections bounds the open connections; beyond it new ones are
	// closed at once (and counted). Keep it below the process's file
	// descriptor limit. Default 16384.
	MaxConnections int
	// MaxConnectionsPerClient bounds the open connections of one client
	// (an IPv4 address or IPv6 /64), so that one cannot take every slot;
	// beyond it its new ones are closed at once (and counted). Default
	// 256. Unlimited, if set, names the clients it does not apply to
	// (the operator's own tools, reverse proxies).
	MaxConnectionsPerClient int
	Unlimited               func(netip.Addr) bool
	// WriteTimeout bounds writing one reply; a full scrape to a slow client
	// is the longest. Default 15m (opentracker's reply timeout).
	WriteTimeout time.Duration
	// ShutdownTimeout is how long Serve waits for in-flight requests after
	// its context is done before closing connections. Default 5s.
	ShutdownTimeout time.Duration
	// MaxHeaderBytes bounds the request line plus headers; a longer request
	// gets 431 from net/http (which reads up to 4 KiB beyond it before
	// noticing). Default 8192, opentracker's limit.
	MaxHeaderBytes int

	// Logger receives startup, shutdown and internal-error messages, never
	// one line per request. Default slog.Default().
	Logger *slog.Logger
}

// Defaults for Config.
const (
	DefaultMaxScrapeHashes   = 64
	DefaultMaxFullScrapes    = 2
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 15 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
	DefaultWriteTimeout      = 15 * time.Minute
	DefaultShutdownTimeout   = 5 * time.Second
	DefaultMaxHeaderBytes    = 8192
	DefaultMaxConnections    = 16384
	// DefaultMaxConnectionsPerClient is a 64th of DefaultMaxConnections.
	DefaultMaxConnectionsPerClient = 256
	DefaultProxyHeader             = "X-Forwarded-For"
)

func (c Config) withDefaults() (Config, error) {
	if c.Tracker == nil {
		return c, fmt.Errorf("httptracker: Config.Tracker is nil")
	}
	if (c.WebSocket == nil) != (c.IsWebSocket == nil) {
		return c, fmt.Errorf("httptracker: Config.WebSocket and Config.IsWebSocket go together")
	}
	if c.Counters == nil {
		c.Counters = counters.New()
	}
	if c.MaxScrapeHashes == 0 {
		c.MaxScrapeHashes = DefaultMaxScrapeHashes
	}
	if c.MaxFullScrapes == 0 {
		c.MaxFullScrapes = DefaultMaxFullScrapes
	}
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	switch http.CanonicalHeaderKey(c.ProxyHeader) {
	case "", DefaultProxyHeader:
		c.ProxyHeader = DefaultProxyHeader
	case "X-Real-Ip":
		c.ProxyHeader = "X-Real-IP"
	default:
		return c, fmt.Errorf("httptracker: proxy header %q: want X-Forwarded-For or X-Real-IP", c.ProxyHeader)
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = DefaultMaxConnections
	}
	if c.MaxConnectionsPerClient == 0 {
		c.MaxConnectionsPerClient = DefaultMaxConnectionsPerClient
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	switch {
	case c.MaxScrapeHashes < 1:
		return c, fmt.Errorf("httptracker: max scrape hashes %d: must be at least 1", c.MaxScrapeHashes)
	case c.ReadHeaderTimeout < 0 || c.ReadTimeout < 0 || c.IdleTimeout < 0 || c.WriteTimeout < 0 || c.ShutdownTimeout < 0:
		return c, fmt.Errorf("httptracker: negative timeout")
	case c.MaxHeaderBytes < 0:
		return c, fmt.Errorf("httptracker: max header bytes %d: must not be negative", c.MaxHeaderBytes)
	case c.MaxConnectionsPerClient < 0:
		return c, fmt.Errorf("httptracker: max connections per client %d: must not be negative", c.MaxConnectionsPerClient)
	case c.MaxConnections < 0:
		return c, fmt.Errorf("httptracker: max connections %d: must not be negative", c.MaxConnections)
	}
	return c, nil
}

// acmeChallengePath is where an ACME server fetches HTTP-01 key
// authorizations (RFC 8555 section 8.3).
const acmeChallengePath = "/.well-known/acme-challenge/"
