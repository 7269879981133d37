// Package config reads herald's settings from opentracker's config file
// format and command-line flags, so that an operator can swap binaries
// without touching either.
//
// A config file is one directive per line, "key value", with '#' comments.
// opentracker's keys keep their meaning; herald's own settings use the same
// format under its own keys (see Directives). Flags and -f files apply in the
// order given, as in opentracker: "-i 10.0.0.1 -p 80" binds 10.0.0.1:80.
package config

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"herald/certs"
	"herald/cluster"
)

// Listen is one address to serve on.
type Listen struct {
	Addr     string // host:port
	TCP, UDP bool
}

// Settings is everything herald can be told.
type Settings struct {
	Listens []Listen
	// UDPSockets is the number of UDP sockets (and reader goroutines) per
	// UDP listen address; 0 means one per core.
	UDPSockets int

	Whitelist, Blacklist string
	// FIFOAdd and FIFODelete are opentracker's access-list FIFOs: each
	// line written to one adds or removes an info hash.
	FIFOAdd, FIFODelete string
	// Keys is the keys file (access.keys): with it, every announce and
	// scrape must carry a listed key in its URL path.
	Keys string
	// AccessReload is how often list files are checked for changes.
	AccessReload time.Duration
	StatsNets    []netip.Prefix
	ProxyNets    []netip.Prefix
	ProxyHeader  string
	StatsPath    string

	RootDir     string
	User        string
	RedirectURL string
	Statedump   string

	Interval       time.Duration
	PeerTimeout    time.Duration
	DefaultNumWant int
	MaxNumWant     int
	UDPMaxPeers4   int
	UDPMaxPeers6   int
	MaxTorrents    int
	MaxPeers       int
	AllowIPField   bool
	DecoyPeers     int
	RateLimit      float64
	RateBurst      int
	// UDPConnectRate bounds the UDP connects answered per second on each
	// UDP address, for all clients together.
	UDPConnectRate int
	// BanAfter refusals a minute ban a client for BanDuration (0: never);
	// BanBadConnectionIDs counts wrong UDP connection ids among them.
	// Bans are kept in BanFile ("" keeps them in memory).
	BanAfter            int
	BanDuration         time.Duration
	BanBadConnectionIDs bool
	BanFile             string

	// AdminListen is the admin API's address ("" off), AdminTokenFile the
	// file holding its bearer token.
	AdminListen, AdminTokenFile string

	// HTTP frontend bounds, each per HTTP listen address.
	HTTPMaxConnections          int
	HTTPMaxConnectionsPerClient int
	HTTPReadHeaderTimeout       time.Duration
	HTTPReadTimeout             time.Duration
	HTTPIdleTimeout             time.Duration
	HTTPWriteTimeout            time.Duration
	HTTPMaxHeaderBytes          int
	HTTPMaxScrapeHashes         int
	HTTPMaxFullScrapes          int // 0: full scrapes off

	Snapshot         string
	SnapshotInterval time.Duration

	// WebSocket (WebTorrent) tracker: on the HTTP port when WSOnHTTP,
	// and on each of WSListens.
	WSOnHTTP                  bool
	WSListens                 []string
	WSInterval                time.Duration
	WSMaxOffers               int
	WSMaxConnections          int
	WSMaxConnectionsPerClient int
	WSMaxPeers                int // also bounds the WebSocket torrents: each has a peer
	WSFirstMessageTimeout     time.Duration
	WSMessageRate             float64
	WSMessageBurst            int

	// Cluster is off while Cluster.URLs is empty.
	Cluster cluster.Config

	// TLSListens serve HTTPS announce, scrape and pages and wss://
	// WebTorrent, with certificates from TLS.
	TLSListens []string
	TLS        certs.Config

	LogLevel slog.Level
	LogJSON  bool

	// Warnings are directives accepted but not honoured, with the reason.
	Warnings []string
	// ConfigFiles are the config files read, in order.
	ConfigFiles []string
	// ShowVersion is set by -v, -version or --version.
	ShowVersion bool
}

// Defaults returns the defaults that are herald's own: bounds sized to the
// memory, the snapshot, the log level, how often the access list is
// checked and WebSocket on the HTTP port (and DefaultListen). The defaults
// of the components' settings are theirs, in their packages: cmd/herald
// adds them before it hands the whole to ParseArgs, so that every default
// has one source and config needs none of those packages.
func Defaults() Settings {
	maxTorrents, maxPeers := memoryBounds()
	return Settings{
		MaxTorrents:      maxTorrents,
		MaxPeers:         maxPeers,
		AccessReload:     5 * time.Second,
		WSOnHTTP:         true,
		WSMaxConnections: wsMaxConnections(),
		TLS:              certs.Config{ACMEDirectory: certs.DefaultACMEDirectory, ACMECache: certs.DefaultACMECache},
		WSMaxPeers:       wsMaxPeers(),
		Snapshot:         "herald.snapshot",
		BanFile:          "herald.bans",
		SnapshotInterval: 5 * time.Minute,
		LogLevel:         slog.LevelInfo,
	}
}

// DefaultListen is where herald serves when no address is configured.
const DefaultListen = "[::]:6969"

// directive is one config file key, optionally also a long flag.
type directive struct {
	key, flag string
	arg       string // what the value is, for help
	usage     string
	set       func(s *Settings, v string) error
	def       func(s *Settings) string // current value, for -h
}

// Directives lists every config file key in the order -h prints them.
var directives = []directive{
	{key: "listen.tcp_udp", flag: "listen", arg: "addr", usage: "serve HTTP and UDP on addr ([ip]:port, repeatable; default " + DefaultListen + ", dual stack)",
		set: func(s *Settings, v string) error { return s.addListen(v, true, true) }},
	{key: "listen.tcp", flag: "listen-tcp", arg: "addr", usage: "serve HTTP only on addr (repeatable)",
		set: func(s *Settings, v string) error { return s.addListen(v, true, false) }},
	{key: "listen.udp", flag: "listen-udp", arg: "addr", usage: "serve UDP only on addr (repeatable)",
		set: func(s *Settings, v string) error { return s.addListen(v, false, true) }},
	{key: "listen.udp.workers", flag: "udp-sockets", arg: "n", usage: "UDP sockets per UDP address, one reader each (0: one per core)",
		set: intSetter(func(s *Settings) *int { return &s.UDPSockets }, 0, 1024), def: intDef(func(s *Settings) int { return s.UDPSockets })},
	{key: "access.whitelist", flag: "whitelist", arg: "file", usage: "serve only the torrents listed in file (40-hex info hashes)",
		set: func(s *Settings, v string) error { s.Whitelist = v; return nil }},
	{key: "access.blacklist", flag: "blacklist", arg: "file", usage: "serve every torrent but those listed in file",
		set: func(s *Settings, v string) error { s.Blacklist = v; return nil }},
	{key: "access.fifo_add", flag: "fifo-add", arg: "file", usage: "FIFO (mkfifo) whose lines, 40-hex info hashes, are added to the access list and its file, as opentracker's (needs an access list)",
		set: strSetter(func(s *Settings) *string { return &s.FIFOAdd })},
	{key: "access.fifo_delete", flag: "fifo-delete", arg: "file", usage: "FIFO whose lines are removed from the access list and its file",
		set: strSetter(func(s *Settings) *string { return &s.FIFODelete })},
	{key: "access.keys", flag: "keys", arg: "file", usage: "serve only members: every announce and scrape carries a key listed in file (one a line, 32 characters of A-Z, a-z, 0-9) in its path, http://host:port/KEY/announce, udp://host:port/KEY/announce, ws://host:port/KEY/announce; others get \"unknown key\"",
		set: func(s *Settings, v string) error { s.Keys = v; return nil }},
	{key: "access.reload", flag: "access-reload", arg: "duration", usage: "how often list files are checked for changes; a changed file loads once a check finds it unchanged (SIGHUP reloads at once)",
		set: durSetter(func(s *Settings) *time.Duration { return &s.AccessReload }), def: durDef(func(s *Settings) time.Duration { return s.AccessReload })},
	{key: "access.stats", flag: "stats-net", arg: "net", usage: "network (ip or CIDR) allowed to read /stats (repeatable)",
		set: prefixSetter(func(s *Settings) *[]netip.Prefix { return &s.StatsNets })},
	{key: "access.proxy", flag: "proxy-net", arg: "net", usage: "trusted reverse proxy network whose access.proxy_header is honoured (repeatable)",
		set: prefixSetter(func(s *Settings) *[]netip.Prefix { return &s.ProxyNets })},
	{key: "access.proxy_header", flag: "proxy-header", arg: "name", usage: "the one header trusted proxies name the client in, X-Forwarded-For or X-Real-IP (nginx's real_ip_header); a request it names no untrusted client in is refused",
		set: func(s *Settings, v string) error {
			switch http.CanonicalHeaderKey(v) {
			case "X-Forwarded-For":
				s.ProxyHeader = "X-Forwarded-For"
			case "X-Real-Ip":
				s.ProxyHeader = "X-Real-IP"
			default:
				return fmt.Errorf("%q is not X-Forwarded-For or X-Real-IP", v)
			}
			return nil
		}, def: func(s *Settings) string { return s.ProxyHeader }},
	{key: "access.stats_path", flag: "stats-path", arg: "name", usage: "path of the stats page",
		set: func(s *Settings, v string) error { s.StatsPath = strings.Trim(v, "/"); return nil }, def: func(s *Settings) string { return s.StatsPath }},
	{key: "tracker.rootdir", flag: "rootdir", arg: "dir", usage: "chroot into dir after binding (as root)",
		set: func(s *Settings, v string) error { s.RootDir = v; return nil }},
	{key: "tracker.user", flag: "user", arg: "name", usage: "drop privileges to this user after binding (as root)",
		set: func(s *Settings, v string) error { s.User = v; return nil }},
	{key: "tracker.redirect_url", flag: "redirect-url", arg: "url", usage: "where GET / redirects (302)",
		set: func(s *Settings, v string) error { s.RedirectURL = v; return nil }},
	{key: "tracker.interval", flag: "interval", arg: "duration", usage: "announce interval told to clients (±10% jitter; min interval is half)",
		set: durSetter(func(s *Settings) *time.Duration { return &s.Interval }), def: durDef(func(s *Settings) time.Duration { return s.Interval })},
	{key: "tracker.peer_timeout", flag: "peer-timeout", arg: "duration", usage: "a peer that does not re-announce within this is dropped",
		set: durSetter(func(s *Settings) *time.Duration { return &s.PeerTimeout }), def: durDef(func(s *Settings) time.Duration { return s.PeerTimeout })},
	{key: "tracker.numwant", flag: "numwant", arg: "n", usage: "peers returned when the client does not ask for a number",
		set: intSetter(func(s *Settings) *int { return &s.DefaultNumWant }, 0, 10000), def: intDef(func(s *Settings) int { return s.DefaultNumWant })},
	{key: "tracker.max_numwant", flag: "max-numwant", arg: "n", usage: "most peers returned to one announce",
		set: intSetter(func(s *Settings) *int { return &s.MaxNumWant }, 0, 10000), def: intDef(func(s *Settings) int { return s.MaxNumWant })},
	{key: "tracker.udp_max_peers4", flag: "udp-max-peers4", arg: "n", usage: "most IPv4 peers in one UDP reply (keeps it in one packet)",
		set: intSetter(func(s *Settings) *int { return &s.UDPMaxPeers4 }, 0, 1000), def: intDef(func(s *Settings) int { return s.UDPMaxPeers4 })},
	{key: "tracker.udp_max_peers6", flag: "udp-max-peers6", arg: "n", usage: "most IPv6 peers in one UDP reply",
		set: intSetter(func(s *Settings) *int { return &s.UDPMaxPeers6 }, 0, 1000), def: intDef(func(s *Settings) int { return s.UDPMaxPeers6 })},
	{key: "tracker.max_torrents", flag: "max-torrents", arg: "n", usage: "most torrents held; new ones beyond get a failure (default: a quarter of the memory at 512 bytes each; 0: no limit)",
		set: intSetter(func(s *Settings) *int { return &s.MaxTorrents }, 0, 1<<40), def: intDef(func(s *Settings) int { return s.MaxTorrents })},
	{key: "tracker.max_peers", flag: "max-peers", arg: "n", usage: "most peers held; new ones beyond get a failure (default: half of the memory at 80 bytes each; 0: no limit)",
		set: intSetter(func(s *Settings) *int { return &s.MaxPeers }, 0, 1<<40), def: intDef(func(s *Settings) int { return s.MaxPeers })},
	{key: "tracker.allow_ip_field", flag: "allow-ip-field", arg: "bool", usage: "honour addresses clients state themselves (UDP announce ip field; HTTP ip=, and BEP 7 ipv4=/ipv6= as a second peer); lets a client register any address",
		set: boolSetter(func(s *Settings) *bool { return &s.AllowIPField }), def: func(s *Settings) string { return strconv.FormatBool(s.AllowIPField) }},
	{key: "tracker.decoy_peers", flag: "decoy-peers", arg: "n", usage: "random addresses mixed into every peer list for plausible deniability; each costs clients a dead connection attempt (0: off)",
		set: intSetter(func(s *Settings) *int { return &s.DecoyPeers }, 0, 50), def: intDef(func(s *Settings) int { return s.DecoyPeers })},
	{key: "tracker.rate_limit", flag: "rate-limit", arg: "n", usage: "requests per second one client (IPv4 address, IPv6 /64) may make; more get the protocol's error; loopback is exempt (0: off)",
		set: rateSetter(func(s *Settings) *float64 { return &s.RateLimit }, true), def: rateDef(func(s *Settings) float64 { return s.RateLimit })},
	{key: "tracker.rate_burst", flag: "rate-burst", arg: "n", usage: "requests one client may make at once before tracker.rate_limit applies",
		set: intSetter(func(s *Settings) *int { return &s.RateBurst }, 1, 1<<20), def: intDef(func(s *Settings) int { return s.RateBurst })},
	{key: "tracker.udp_connect_rate", flag: "udp-connect-rate", arg: "n", usage: "UDP connects answered per second per UDP address, all clients together; more are dropped (a connect's address is unproven, so it never counts against tracker.rate_limit) (0: no bound)",
		set: intSetter(func(s *Settings) *int { return &s.UDPConnectRate }, 0, 1<<30), def: intDef(func(s *Settings) int { return s.UDPConnectRate })},
	{key: "tracker.ban_after", flag: "ban-after", arg: "n", usage: "refusals a minute (over tracker.rate_limit, and with tracker.ban_bad_connection_ids wrong UDP connection ids) that ban a client (IPv4 address, IPv6 /64) for tracker.ban_duration; loopback is exempt (0: no automatic bans)",
		set: intSetter(func(s *Settings) *int { return &s.BanAfter }, 0, 1<<30), def: intDef(func(s *Settings) int { return s.BanAfter })},
	{key: "tracker.ban_duration", flag: "ban-duration", arg: "duration", usage: "how long a ban earned under tracker.ban_after lasts",
		set: durSetter(func(s *Settings) *time.Duration { return &s.BanDuration }), def: durDef(func(s *Settings) time.Duration { return s.BanDuration })},
	{key: "tracker.ban_bad_connection_ids", flag: "ban-bad-connection-ids", arg: "bool", usage: "count UDP requests with a wrong connection id towards tracker.ban_after; their source address is unproven, so a spoofer could get another address banned",
		set: boolSetter(func(s *Settings) *bool { return &s.BanBadConnectionIDs }), def: func(s *Settings) string { return strconv.FormatBool(s.BanBadConnectionIDs) }},
	{key: "tracker.ban_file", flag: "ban-file", arg: "file", usage: "file the bans (earned and set through the admin API) are kept in across restarts (\"off\": memory only)",
		set: strSetter(func(s *Settings) *string { return &s.BanFile }), def: func(s *Settings) string { return s.BanFile }},
	{key: "tracker.http_max_connections", flag: "http-max-connections", arg: "n", usage: "most open HTTP connections per HTTP address; beyond it new ones are closed at once (keep it below the file descriptor limit)",
		set: intSetter(func(s *Settings) *int { return &s.HTTPMaxConnections }, 1, 1<<24), def: intDef(func(s *Settings) int { return s.HTTPMaxConnections })},
	{key: "tracker.http_max_connections_per_client", flag: "http-max-connections-per-client", arg: "n", usage: "most open HTTP connections of one client (IPv4 address, IPv6 /64) per HTTP address; beyond it its new ones are closed at once (loopback and access.proxy are exempt)",
		set: intSetter(func(s *Settings) *int { return &s.HTTPMaxConnectionsPerClient }, 1, 1<<24), def: intDef(func(s *Settings) int { return s.HTTPMaxConnectionsPerClient })},
	{key: "tracker.http_header_timeout", flag: "http-header-timeout", arg: "duration", usage: "time an HTTP client has to send a request's line and headers (bounds slowloris)",
		set: durSetter(func(s *Settings) *time.Duration { return &s.HTTPReadHeaderTimeout }), def: durDef(func(s *Settings) time.Duration { return s.HTTPReadHeaderTimeout })},
	{key: "tracker.http_read_timeout", flag: "http-read-timeout", arg: "duration", usage: "time an HTTP client has to send a whole request, and to take an announce or scrape reply",
		set: durSetter(func(s *Settings) *time.Duration { return &s.HTTPReadTimeout }), def: durDef(func(s *Settings) time.Duration { return s.HTTPReadTimeout })},
	{key: "tracker.http_idle_timeout", flag: "http-idle-timeout", arg: "duration", usage: "how long an idle keep-alive HTTP connection stays open",
		set: durSetter(func(s *Settings) *time.Duration { return &s.HTTPIdleTimeout }), def: durDef(func(s *Settings) time.Duration { return s.HTTPIdleTimeout })},
	{key: "tracker.http_write_timeout", flag: "http-write-timeout", arg: "duration", usage: "time to write one HTTP reply; a full scrape to a slow client takes longest",
		set: durSetter(func(s *Settings) *time.Duration { return &s.HTTPWriteTimeout }), def: durDef(func(s *Settings) time.Duration { return s.HTTPWriteTimeout })},
	{key: "tracker.http_max_header_bytes", flag: "http-max-header-bytes", arg: "n", usage: "most bytes of an HTTP request line and headers; a longer request gets 431",
		set: intSetter(func(s *Settings) *int { return &s.HTTPMaxHeaderBytes }, 1024, 1<<20), def: intDef(func(s *Settings) int { return s.HTTPMaxHeaderBytes })},
	{key: "tracker.http_max_scrape_hashes", flag: "http-max-scrape-hashes", arg: "n", usage: "most info hashes one HTTP scrape answers; extra ones are dropped, as opentracker (UDP: 74, one packet)",
		set: intSetter(func(s *Settings) *int { return &s.HTTPMaxScrapeHashes }, 1, 4096), def: intDef(func(s *Settings) int { return s.HTTPMaxScrapeHashes })},
	{key: "tracker.http_max_full_scrapes", flag: "http-max-full-scrapes", arg: "n", usage: "full scrapes (GET /scrape) sent at once; more get 503 (0: full scrapes off); one client gets one per announce interval",
		set: intSetter(func(s *Settings) *int { return &s.HTTPMaxFullScrapes }, 0, 1024), def: intDef(func(s *Settings) int { return s.HTTPMaxFullScrapes })},
	{key: "snapshot.path", flag: "snapshot", arg: "file", usage: "state file loaded at start, written periodically and at exit (\"off\" disables)",
		set: func(s *Settings, v string) error { s.Snapshot = v; return nil }, def: func(s *Settings) string { return s.Snapshot }},
	{key: "snapshot.interval", flag: "snapshot-interval", arg: "duration", usage: "how often the state file is written",
		set: durSetter(func(s *Settings) *time.Duration { return &s.SnapshotInterval }), def: durDef(func(s *Settings) time.Duration { return s.SnapshotInterval })},
	{key: "listen.ws", flag: "listen-ws", arg: "addr", usage: "serve the WebSocket (WebTorrent) tracker alone on addr (repeatable)",
		set: func(s *Settings, v string) error {
			addr, err := normalizeAddr(v, "6969")
			s.WSListens = append(s.WSListens, addr)
			return err
		}},
	{key: "websocket.on_http", flag: "ws-on-http", arg: "bool", usage: "answer WebSocket upgrades on the HTTP port (ws://host:port or ws://host:port/announce)",
		set: boolSetter(func(s *Settings) *bool { return &s.WSOnHTTP }), def: func(s *Settings) string { return strconv.FormatBool(s.WSOnHTTP) }},
	{key: "websocket.interval", flag: "ws-interval", arg: "duration", usage: "announce interval told to WebTorrent clients",
		set: durSetter(func(s *Settings) *time.Duration { return &s.WSInterval }), def: durDef(func(s *Settings) time.Duration { return s.WSInterval })},
	{key: "websocket.max_offers", flag: "ws-max-offers", arg: "n", usage: "most WebRTC offers relayed for one announce",
		set: intSetter(func(s *Settings) *int { return &s.WSMaxOffers }, 1, 100), def: intDef(func(s *Settings) int { return s.WSMaxOffers })},
	{key: "websocket.max_connections", flag: "ws-max-connections", arg: "n", usage: "most open WebSocket connections, upgraded or not on listen.ws (default from memory: a sixteenth at 8 KiB each; 0: no limit)",
		set: intSetter(func(s *Settings) *int { return &s.WSMaxConnections }, 0, 1<<30), def: intDef(func(s *Settings) int { return s.WSMaxConnections })},
	{key: "websocket.max_peers", flag: "ws-max-peers", arg: "n", usage: "most WebSocket swarm joins (peers), and torrents, apart from tracker.max_peers (default from memory: a sixteenth at 640 B each; 0: no limit)",
		set: intSetter(func(s *Settings) *int { return &s.WSMaxPeers }, 0, 1<<40), def: intDef(func(s *Settings) int { return s.WSMaxPeers })},
	{key: "websocket.max_connections_per_client", flag: "ws-max-connections-per-client", arg: "n", usage: "most open WebSocket connections of one client (IPv4 address, IPv6 /64); beyond it its upgrades get 503 (loopback and access.proxy are exempt)",
		set: intSetter(func(s *Settings) *int { return &s.WSMaxConnectionsPerClient }, 1, 1<<30), def: intDef(func(s *Settings) int { return s.WSMaxConnectionsPerClient })},
	{key: "websocket.first_message_timeout", flag: "ws-first-message-timeout", arg: "duration", usage: "time a new WebSocket connection has to send its first message",
		set: durSetter(func(s *Settings) *time.Duration { return &s.WSFirstMessageTimeout }), def: durDef(func(s *Settings) time.Duration { return s.WSFirstMessageTimeout })},
	{key: "websocket.message_rate", flag: "ws-message-rate", arg: "n", usage: "messages per second one WebSocket connection may send",
		set: rateSetter(func(s *Settings) *float64 { return &s.WSMessageRate }, false), def: rateDef(func(s *Settings) float64 { return s.WSMessageRate })},
	{key: "websocket.message_burst", flag: "ws-message-burst", arg: "n", usage: "messages one WebSocket connection may send at once",
		set: intSetter(func(s *Settings) *int { return &s.WSMessageBurst }, 1, 1<<20), def: intDef(func(s *Settings) int { return s.WSMessageBurst })},
	{key: "cluster.nats_url", flag: "cluster-nats-url", arg: "url", usage: "NATS server to sync with other instances through, nats:// or tls:// (repeatable; none: no cluster)",
		set: func(s *Settings, v string) error { s.Cluster.URLs = append(s.Cluster.URLs, v); return nil }},
	{key: "cluster.creds", flag: "cluster-creds", arg: "file", usage: "NATS credentials file (JWT and seed)",
		set: func(s *Settings, v string) error { s.Cluster.CredsFile = v; return nil }},
	{key: "cluster.user", flag: "cluster-user", arg: "name", usage: "NATS user (with cluster.password)",
		set: func(s *Settings, v string) error { s.Cluster.User = v; return nil }},
	{key: "cluster.password", flag: "cluster-password", arg: "secret", usage: "NATS password",
		set: func(s *Settings, v string) error { s.Cluster.Password = v; return nil }},
	{key: "cluster.token", flag: "cluster-token", arg: "secret", usage: "NATS token",
		set: func(s *Settings, v string) error { s.Cluster.Token = v; return nil }},
	{key: "cluster.tls_ca", flag: "cluster-tls-ca", arg: "file", usage: "CA that signs the NATS servers' certificates (default: system roots)",
		set: func(s *Settings, v string) error { s.Cluster.CAFile = v; return nil }},
	{key: "cluster.tls_cert", flag: "cluster-tls-cert", arg: "file", usage: "client certificate for NATS (with cluster.tls_key)",
		set: func(s *Settings, v string) error { s.Cluster.CertFile = v; return nil }},
	{key: "cluster.tls_key", flag: "cluster-tls-key", arg: "file", usage: "client key for NATS",
		set: func(s *Settings, v string) error { s.Cluster.KeyFile = v; return nil }},
	{key: "cluster.shared_key", flag: "cluster-shared-key", arg: "file", usage: "file with a key (32 bytes or more) all instances share: messages are authenticated with it, others dropped (default: none)",
		set: func(s *Settings, v string) error { s.Cluster.SharedKeyFile = v; return nil }},
	{key: "cluster.subject_prefix", flag: "cluster-prefix", arg: "name", usage: "first NATS subject token, so several trackers can share one NATS (default " + cluster.DefaultPrefix + ")",
		set: func(s *Settings, v string) error { s.Cluster.Prefix = v; return nil }},
	{key: "cluster.node_name", flag: "cluster-node", arg: "name", usage: "this instance's name in logs and NATS (default hostname and 4 hex digits)",
		set: func(s *Settings, v string) error { s.Cluster.NodeName = v; return nil }},
	{key: "cluster.flush_interval", flag: "cluster-flush", arg: "duration", usage: "how often changes are published to the cluster (default " + cluster.DefaultFlushInterval.String() + "; sooner when a batch fills)",
		set: durSetter(func(s *Settings) *time.Duration { return &s.Cluster.FlushInterval })},
	{key: "cluster.batch_bytes", flag: "cluster-batch-bytes", arg: "n", usage: "bytes per cluster message (default " + strconv.Itoa(cluster.DefaultBatchBytes) + "; below the NATS max_payload)",
		set: intSetter(func(s *Settings) *int { return &s.Cluster.BatchBytes }, 1024, 8<<20)},
	{key: "cluster.buffer_bytes", flag: "cluster-buffer-bytes", arg: "n", usage: "changes kept while NATS is unreachable; beyond, the oldest are dropped (default " + strconv.Itoa(cluster.DefaultBufferBytes>>20) + " MiB)",
		set: intSetter(func(s *Settings) *int { return &s.Cluster.BufferBytes }, 1024, 1<<30)},
	{key: "cluster.republish_after", flag: "cluster-republish-after", arg: "duration", usage: "least time between re-sends of a plain refresh of one peer (default peer_timeout/3)",
		set: durSetter(func(s *Settings) *time.Duration { return &s.Cluster.RepublishAfter })},
	{key: "cluster.accounting_interval", flag: "cluster-accounting-interval", arg: "duration", usage: "how often the per-key accounting (with access.keys) is published on <prefix>.accounting for a site's database (default " + cluster.DefaultAccountingInterval.String() + ")",
		set: durSetter(func(s *Settings) *time.Duration { return &s.Cluster.AccountingInterval })},
	{key: "listen.tls", flag: "listen-tls", arg: "addr", usage: "serve HTTPS announce, scrape and stats and wss:// WebTorrent on addr (repeatable; needs tls.cert_file and tls.key_file, or tls.acme_domain)",
		set: func(s *Settings, v string) error {
			addr, err := normalizeAddr(v, "443")
			s.TLSListens = append(s.TLSListens, addr)
			return err
		}},
	{key: "tls.cert_file", flag: "tls-cert-file", arg: "file", usage: "PEM certificate chain for listen.tls, leaf first; reloaded when it changes and on SIGHUP",
		set: strSetter(func(s *Settings) *string { return &s.TLS.CertFile })},
	{key: "tls.key_file", flag: "tls-key-file", arg: "file", usage: "PEM private key of tls.cert_file",
		set: strSetter(func(s *Settings) *string { return &s.TLS.KeyFile })},
	{key: "tls.acme_domain", flag: "tls-acme-domain", arg: "name", usage: "obtain and renew a certificate for name over ACME (repeatable; HTTP-01 on the HTTP port, TLS-ALPN-01 on listen.tls)",
		set: func(s *Settings, v string) error {
			if v == "" || strings.ContainsAny(v, "/: ") {
				return fmt.Errorf("%q is not a domain name", v)
			}
			s.TLS.ACMEDomains = append(s.TLS.ACMEDomains, v)
			return nil
		}},
	{key: "tls.acme_directory", flag: "tls-acme-directory", arg: "url", usage: "ACME server's directory URL",
		set: strSetter(func(s *Settings) *string { return &s.TLS.ACMEDirectory }), def: func(s *Settings) string { return s.TLS.ACMEDirectory }},
	{key: "tls.acme_email", flag: "tls-acme-email", arg: "address", usage: "contact address given to the ACME server (expiry notices)",
		set: strSetter(func(s *Settings) *string { return &s.TLS.ACMEEmail })},
	{key: "tls.acme_cache", flag: "tls-acme-cache", arg: "dir", usage: "directory keeping the ACME account key and certificates across restarts",
		set: strSetter(func(s *Settings) *string { return &s.TLS.ACMECache }), def: func(s *Settings) string { return s.TLS.ACMECache }},
	{key: "tls.acme_directory_ca", flag: "tls-acme-directory-ca", arg: "file", usage: "PEM CA certificates trusted for a private ACME server's own HTTPS (default: system roots)",
		set: strSetter(func(s *Settings) *string { return &s.TLS.ACMEDirectoryCA })},
	{key: "listen.admin", flag: "listen-admin", arg: "addr", usage: "serve the admin API (JSON, bearer token from admin.token_file) on addr; a bare port or :port binds 127.0.0.1 (default: off)",
		set: func(s *Settings, v string) error {
			var err error
			s.AdminListen, err = adminAddr(v)
			return err
		}},
	{key: "admin.token_file", flag: "admin-token-file", arg: "file", usage: "file holding the admin API's bearer token (one line, at least 22 characters; must not be readable by group or others)",
		set: strSetter(func(s *Settings) *string { return &s.AdminTokenFile })},
	{key: "log.level", flag: "log-level", arg: "level", usage: "debug, info, warn or error",
		set: func(s *Settings, v string) error { return s.LogLevel.UnmarshalText([]byte(v)) }, def: func(s *Settings) string { return s.LogLevel.String() }},
	{key: "log.json", flag: "log-json", arg: "bool", usage: "log as JSON instead of text",
		set: boolSetter(func(s *Settings) *bool { return &s.LogJSON }), def: func(s *Settings) string { return strconv.FormatBool(s.LogJSON) }},
}

// ignored are opentracker directives herald accepts but does not honour,
// with the reason given in the warning.
var ignored = map[string]string{
	"livesync.cluster.listen":    "livesync multicast is not supported; herald instances sync through NATS",
	"livesync.cluster.node_ip":   "livesync multicast is not supported; herald instances sync through NATS",
	"batchsync.cluster.admin_ip": "batchsync is dead code in opentracker",
}

func (s *Settings) addListen(v string, tcp, udp bool) error {
	addr, err := normalizeAddr(v, "6969")
	if err != nil {
		return err
	}
	s.Listens = append(s.Listens, Listen{Addr: addr, TCP: tcp, UDP: udp})
	return nil
}

// adminAddr reads listen.admin: an address as normalizeAddr, except that
// a bare port or ":port" binds loopback, not every address.
func adminAddr(v string) (string, error) {
	port := strings.TrimPrefix(v, ":")
	if n, err := strconv.ParseUint(port, 10, 16); err == nil && n > 0 {
		return "127.0.0.1:" + port, nil
	}
	if _, err := netip.ParseAddrPort(v); err != nil {
		return "", fmt.Errorf("%q is not a port or an ip:port address", v)
	}
	return normalizeAddr(v, "")
}

// normalizeAddr accepts opentracker's forms: "ip", "ip:port", "[v6]:port",
// a bare v6 address, or ":port".
func normalizeAddr(v, defPort string) (string, error) {
	if ap, err := netip.ParseAddrPort(v); err == nil {
		return ap.String(), nil
	}
	if a, err := netip.ParseAddr(strings.Trim(v, "[]")); err == nil {
		return netip.AddrPortFrom(a, mustPort(defPort)).String(), nil
	}
	if p, ok := strings.CutPrefix(v, ":"); ok {
		if _, err := strconv.ParseUint(p, 10, 16); err == nil {
			return "[::]:" + p, nil
		}
	}
	return "", fmt.Errorf("%q is not an address (want ip, ip:port or [ipv6]:port)", v)
}

func mustPort(p string) uint16 {
	n, _ := strconv.ParseUint(p, 10, 16)
	return uint16(n)
}

// ParsePrefix reads "ip" or "ip/bits".
func ParsePrefix(v string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(v); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or network (want ip or ip/bits)", v)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func prefixSetter(field func(*Settings) *[]netip.Prefix) func(*Settings, string) error {
	return func(s *Settings, v string) error {
		p, err := ParsePrefix(v)
		if err != nil {
			return err
		}
		*field(s) = append(*field(s), p)
		return nil
	}
}

func durSetter(field func(*Settings) *time.Duration) func(*Settings, string) error {
	return func(s *Settings, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			if n, nerr := strconv.ParseUint(v, 10, 32); nerr == nil { // bare seconds
				d, err = time.Duration(n)*time.Second, nil
			}
		}
		if err != nil || d <= 0 {
			return fmt.Errorf("%q is not a positive duration (e.g. 30m, 45s)", v)
		}
		*field(s) = d
		return nil
	}
}

func durDef(field func(*Settings) time.Duration) func(*Settings) string {
	return func(s *Settings) string { return durationText(field(s)) }
}

func intSetter(field func(*Settings) *int, lo, hi int) func(*Settings, string) error {
	return func(s *Settings, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("%q is not a whole number from %d to %d", v, lo, hi)
		}
		*field(s) = n
		return nil
	}
}

// rateSetter reads a rate per second up to a million, 0 only when zeroOff.
// The bounds are written so that NaN, which compares false with
// everything, fails them; Inf is beyond them.
func rateSetter(field func(*Settings) *float64, zeroOff bool) func(*Settings, string) error {
	return func(s *Settings, v string) error {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || !(r > 0 || r == 0 && zeroOff) || !(r <= 1e6) {
			if zeroOff {
				return fmt.Errorf("%q is not a rate from 0 to 1000000", v)
			}
			return fmt.Errorf("%q is not a rate above 0 and up to 1000000", v)
		}
		*field(s) = r
		return nil
	}
}

func rateDef(field func(*Settings) float64) func(*Settings) string {
	return func(s *Settings) string { return strconv.FormatFloat(field(s), 'g', -1, 64) }
}

func intDef(field func(*Settings) int) func(*Settings) string {
	return func(s *Settings) string { return strconv.Itoa(field(s)) }
}

func strSetter(field func(*Settings) *string) func(*Settings, string) error {
	return func(s *Settings, v string) error {
		*field(s) = v
		return nil
	}
}

// servesHTTP reports whether some listen address serves plain HTTP.
func (s *Settings) servesHTTP() bool {
	for _, l := range s.Listens {
		if l.TCP {
			return true
		}
	}
	return false
}

func boolSetter(field func(*Settings) *bool) func(*Settings, string) error {
	return func(s *Settings, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not true or false", v)
		}
		*field(s) = b
		return nil
	}
}

// Error is one bad line of a config file.
type Error struct {
	File string
	Line int
	Key  string
	Msg  string
}

func (e *Error) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Key, e.Msg)
}

// ParseFile applies the config file at path to s. It returns every bad line
// at once, joined, each an *Error naming file, line and key; directives
// opentracker has but herald does not honour add to s.Warnings.
func (s *Settings) ParseFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	s.ConfigFiles = append(s.ConfigFiles, path)
	return s.Parse(path, f)
}

// Parse applies a config file read from r; name is used in errors.
func (s *Settings) Parse(name string, r io.Reader) error {
	var errs []error
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line == "" {
			continue
		}
		key, value, _ := strings.Cut(line, " ")
		if k, v, ok := strings.Cut(line, "\t"); ok && len(k) < len(key) {
			key, value = k, v
		}
		value = strings.TrimSpace(value)
		if reason, ok := ignored[key]; ok {
			s.Warnings = append(s.Warnings, fmt.Sprintf("%s:%d: %s: ignored: %s", name, n, key, reason))
			continue
		}
		d := lookup(key)
		if d == nil {
			what := "unknown directive"
			if near, ok := closest(key, directiveKeys()); ok {
				what += " (did you mean " + near + "?)"
			}
			errs = append(errs, &Error{name, n, key, what})
			continue
		}
		if value == "" {
			errs = append(errs, &Error{name, n, key, "missing value"})
			continue
		}
		if err := d.set(s, value); err != nil {
			errs = append(errs, &Error{name, n, key, err.Error()})
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", name, err))
	}
	return errors.Join(errs...)
}

func lookup(key string) *directive {
	for i := range directives {
		if directives[i].key == key {
			return &directives[i]
		}
	}
	return nil
}

// directiveKeys lists every config file key.
func directiveKeys() []string {
	keys := make([]string, len(directives))
	for i, d := range directives {
		keys[i] = d.key
	}
	return keys
}

// Validate checks settings that depend on each other and fills in the
// default listen address.
func (s *Settings) Validate() error {
	if s.Whitelist != "" && s.Blacklist != "" {
		return errors.New("config: access.whitelist and access.blacklist are exclusive; set one")
	}
	if len(s.Listens) == 0 {
		s.Listens = []Listen{{Addr: DefaultListen, TCP: true, UDP: true}}
	}
	if s.DefaultNumWant > s.MaxNumWant {
		return fmt.Errorf("config: tracker.numwant %d is above tracker.max_numwant %d", s.DefaultNumWant, s.MaxNumWant)
	}
	// net/http's ReadTimeout also bounds the headers: a longer header
	// timeout would hold only on the fast path.
	if s.HTTPReadHeaderTimeout > s.HTTPReadTimeout {
		return fmt.Errorf("config: tracker.http_header_timeout %v is above tracker.http_read_timeout %v", s.HTTPReadHeaderTimeout, s.HTTPReadTimeout)
	}
	if s.Snapshot == "off" {
		s.Snapshot = ""
	}
	if s.BanFile == "off" {
		s.BanFile = ""
	}
	switch {
	case s.AdminListen != "" && s.AdminTokenFile == "":
		return errors.New("config: listen.admin needs admin.token_file: the admin API does not start without a token")
	case s.AdminListen == "" && s.AdminTokenFile != "":
		return errors.New("config: admin.token_file needs a listen.admin address")
	}
	if (s.FIFOAdd != "" || s.FIFODelete != "") && s.Whitelist == "" && s.Blacklist == "" {
		return errors.New("config: access.fifo_add and access.fifo_delete need an access list (access.whitelist or access.blacklist)")
	}
	tlsSource := s.TLS.CertFile != "" || s.TLS.KeyFile != "" || len(s.TLS.ACMEDomains) > 0
	switch {
	case len(s.TLSListens) > 0 && !tlsSource:
		return errors.New("config: listen.tls needs tls.cert_file and tls.key_file, or tls.acme_domain")
	case len(s.TLSListens) == 0 && tlsSource:
		return errors.New("config: tls.cert_file, tls.key_file and tls.acme_domain need a listen.tls address")
	case len(s.TLS.ACMEDomains) > 0 && !s.servesHTTP():
		// HTTP-01 is answered on the plain HTTP port; TLS-ALPN-01 alone
		// works too, but Let's Encrypt may pick either.
		return errors.New("config: tls.acme_domain needs a plain HTTP address (listen.tcp_udp or listen.tcp, port 80 for Let's Encrypt) for HTTP-01 challenges")
	}
	return nil
}
