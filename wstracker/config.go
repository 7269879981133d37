package wstracker

import (
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"herald/counters"
	"herald/tracker"
)

// Config holds the WebSocket tracker's settings. Zero fields take the
// defaults documented beside them.
type Config struct {
	// Path is the URL path upgrades are accepted on besides "/". Default
	// "/announce".
	Path string
	// Tracker applies the tracker's rules (access list, rate limit,
	// numwant, intervals); required. Its Store is not used: WebSocket peers
	// are not addresses and live in the handler's own swarms. Its interval
	// should be shorter than HTTP's (DefaultInterval): a WebRTC offer
	// reaches only peers that are connected right now, so a swarm needs
	// fresher announces.
	Tracker *tracker.Tracker
	// IdleTimeout drops a connection that sends nothing (no message, no
	// ping) for this long, and with it its peers. Default twice the
	// tracker's interval plus a minute.
	IdleTimeout time.Duration
	// WriteTimeout bounds writing one message to a peer; a peer that does
	// not read is cut off. Default 10s.
	WriteTimeout time.Duration

	// MaxOffers is how many offers of one announce are relayed; extra ones
	// are dropped. Default 10.
	MaxOffers int
	// MaxScrapeHashes is how many info hashes one scrape may ask for; more
	// is an error. Default 64.
	MaxScrapeHashes int
	// MaxMessageBytes is the read limit: a longer message closes the
	// connection with status 1009. Default 64 KiB (ten offers of about
	// 1-5 KB of SDP each fit).
	MaxMessageBytes int
	// MessageRate and MessageBurst limit each connection to MessageRate
	// messages per second, with bursts of MessageBurst; a connection over
	// the limit is closed with status 1008. Defaults 20 and 200: a browser
	// uses one connection for all its torrents and announces them all at
	// start, and 200 torrents at once must not get it cut off.
	MessageRate  float64
	MessageBurst int

	// MaxConnections bounds open WebSocket connections; upgrades beyond it
	// get 503. 0 means no limit.
	MaxConnections int
	// MaxConnectionsPerClient bounds the connections of one client (an
	// IPv4 address or IPv6 /64); its upgrades beyond it get 503. Default
	// 64. Unlimited, if set, names the clients it does not apply to (the
	// operator's own tools, reverse proxies).
	MaxConnectionsPerClient int
	Unlimited               func(netip.Addr) bool
	// FirstMessageTimeout closes an upgraded connection that sends no
	// message for this long; after its first, IdleTimeout applies.
	// Default ReadHeaderTimeout.
	FirstMessageTimeout time.Duration
	// MaxTorrents and MaxPeers bound the WebSocket swarms; 0 means no limit.
	MaxTorrents int
	MaxPeers    int
	// MaxSwarmsPerConn bounds how many swarms one connection may be in (a
	// browser uses one connection for all its torrents). Default 100: at
	// about 533 B a join, 53 KB per connection.
	MaxSwarmsPerConn int

	// ReadHeaderTimeout and MaxHeaderBytes bound the upgrade request when
	// the tracker has its own listener (Listen); a connection idle after a
	// plain HTTP request is closed after ReadHeaderTimeout too. Defaults
	// 10s and 8192.
	ReadHeaderTimeout time.Duration
	MaxHeaderBytes    int

	// Cluster, if set, makes the swarms span the instances of a cluster
	// (relay.go); the handler is then the cluster's WebTorrentSwarms.
	Cluster Cluster

	// Counters receives the counts of messages, connections and relayed
	// offers and answers, how long each message took to answer (from the
	// end of the read of its frame to the start of the write of the reply:
	// the response time and the service time are the same value, as
	// herald cannot see a frame's wait in the socket), and the swarms'
	// sizes and limits. Default a Set of its own.
	Counters *counters.Set

	// Logger receives startup and shutdown messages, never one line per
	// message. Default slog.Default().
	Logger *slog.Logger
}

// Defaults for Config.
const (
	DefaultPath = "/announce"
	// DefaultInterval is the interval of bittorrent-tracker's WebSocket
	// server and aquatic_ws, for the Tracker a WebSocket handler is given.
	DefaultInterval                = 2 * time.Minute
	DefaultWriteTimeout            = 10 * time.Second
	DefaultMaxOffers               = 10
	DefaultMaxScrapeHashes         = 64
	DefaultMaxMessageBytes         = 64 << 10
	DefaultMessageRate             = 20
	DefaultMessageBurst            = 200
	DefaultMaxSwarmsPerConn        = 100
	DefaultMaxConnectionsPerClient = 64
	DefaultReadHeaderTimeout       = 10 * time.Second
	DefaultMaxHeaderBytes          = 8192
)

func (c Config) withDefaults() (Config, error) {
	if c.Path == "" {
		c.Path = DefaultPath
	}
	if c.Tracker == nil {
		return c, fmt.Errorf("wstracker: Config.Tracker is nil")
	}
	if c.Counters == nil {
		c.Counters = counters.New()
	}
	interval := c.Tracker.Interval()
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 2*interval + time.Minute
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.MaxOffers == 0 {
		c.MaxOffers = DefaultMaxOffers
	}
	if c.MaxScrapeHashes == 0 {
		c.MaxScrapeHashes = DefaultMaxScrapeHashes
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.MessageRate == 0 {
		c.MessageRate = DefaultMessageRate
	}
	if c.MessageBurst == 0 {
		c.MessageBurst = DefaultMessageBurst
	}
	if c.MaxSwarmsPerConn == 0 {
		c.MaxSwarmsPerConn = DefaultMaxSwarmsPerConn
	}
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if c.FirstMessageTimeout == 0 {
		c.FirstMessageTimeout = c.ReadHeaderTimeout
	}
	if c.MaxConnectionsPerClient == 0 {
		c.MaxConnectionsPerClient = DefaultMaxConnectionsPerClient
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	switch {
	case c.Path[0] != '/':
		return c, fmt.Errorf("wstracker: path %q: must start with /", c.Path)
	case c.IdleTimeout <= interval:
		return c, fmt.Errorf("wstracker: idle timeout %v: must be longer than the interval %v", c.IdleTimeout, interval)
	case c.WriteTimeout < 0 || c.ReadHeaderTimeout < 0 || c.FirstMessageTimeout < 0:
		return c, fmt.Errorf("wstracker: negative timeout")
	case c.MaxOffers < 1:
		return c, fmt.Errorf("wstracker: max offers %d: must be at least 1", c.MaxOffers)
	case c.MaxScrapeHashes < 1:
		return c, fmt.Errorf("wstracker: max scrape hashes %d: must be at least 1", c.MaxScrapeHashes)
	case c.MaxMessageBytes < 256:
		return c, fmt.Errorf("wstracker: max message bytes %d: must be at least 256", c.MaxMessageBytes)
	case c.MessageRate < 0 || c.MessageBurst < 1:
		return c, fmt.Errorf("wstracker: message rate %v, burst %d: need rate >= 0, burst >= 1", c.MessageRate, c.MessageBurst)
	case c.MaxConnections < 0 || c.MaxConnectionsPerClient < 0 || c.MaxTorrents < 0 || c.MaxPeers < 0 || c.MaxSwarmsPerConn < 0 || c.MaxHeaderBytes < 0:
		return c, fmt.Errorf("wstracker: negative limit")
	}
	return c, nil
}
