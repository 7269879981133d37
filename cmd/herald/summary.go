package main

import (
	"fmt"
	"log/slog"
	"strings"

	"herald/config"
	"herald/version"
)

// logSummary writes one INFO line that says what this herald is and what
// it chose: the build, the config files, every address by protocol, the
// state restored, the limits and where the memory-derived ones come from,
// the access list, the cluster, and where the stats are served to whom.
// An operator reading a start-up log needs nothing else to know what runs.
func (d *daemon) logSummary() {
	s := d.s
	var http, udp []string
	for _, l := range s.Listens {
		if l.TCP {
			http = append(http, l.Addr)
		}
		if l.UDP {
			udp = append(udp, l.Addr)
		}
	}
	ws := append([]string(nil), s.WSListens...)
	if s.WSOnHTTP {
		ws = append(ws, "the HTTP and TLS addresses")
	}
	mem, memFrom := config.MemoryLimit()
	attrs := []any{
		"version", version.Read().String(),
		"config", listOrNone(s.ConfigFiles),
		slog.Group("listen", "http", listOrNone(http), "udp", listOrNone(udp), "websocket", listOrNone(ws), "tls", listOrNone(s.TLSListens)),
		slog.Group("snapshot", "path", orNone(d.snapshot), "every", s.SnapshotInterval.String(),
			"restored_torrents", d.store.Torrents(), "restored_peers", d.store.Peers()),
		slog.Group("limits", "max_torrents", limitText(s.MaxTorrents), "max_peers", limitText(s.MaxPeers),
			"ws_max_connections", limitText(s.WSMaxConnections), "http_max_connections", s.HTTPMaxConnections,
			"rate_limit", fmt.Sprintf("%g/s burst %d", s.RateLimit, s.RateBurst),
			"memory", fmt.Sprintf("%d MiB from %s", mem>>20, memFrom)),
		slog.Group("access", "mode", d.accessMode(), "hashes", d.accessSize(), "keys", d.keysText()),
		slog.Group("cluster", "nats", listOrNone(s.Cluster.URLs), "node", orNone(s.Cluster.NodeName)),
		slog.Group("stats", "paths", "/"+s.StatsPath+", /metrics, /dashboard", "to", d.statsAudience()),
	}
	if len(s.TLSListens) > 0 {
		source := "files " + s.TLS.CertFile
		if len(s.TLS.ACMEDomains) > 0 {
			source = "ACME " + s.TLS.ACMEDirectory + " for " + strings.Join(s.TLS.ACMEDomains, ", ")
		}
		attrs = append(attrs, slog.Group("tls", "certificates", source))
	}
	d.log.Info("herald started", attrs...)
}

func (d *daemon) accessMode() string {
	if d.list == nil {
		return "open (every torrent)"
	}
	return d.listMode.String() + " " + d.listPath
}

func (d *daemon) accessSize() int {
	if d.list == nil {
		return 0
	}
	return d.list.Len()
}

func (d *daemon) keysText() string {
	if d.keys == nil {
		return "off (no key needed)"
	}
	return fmt.Sprintf("%d from %s", d.keys.Len(), d.s.Keys)
}

func (d *daemon) statsAudience() string {
	if len(d.s.StatsNets) == 0 {
		return "this machine only (127.0.0.0/8, ::1)"
	}
	nets := make([]string, len(d.s.StatsNets))
	for i, n := range d.s.StatsNets {
		nets[i] = n.String()
	}
	return strings.Join(nets, ", ")
}

func listOrNone(v []string) string { return orNone(strings.Join(v, ", ")) }

func orNone(v string) string {
	if v == "" {
		return "none"
	}
	return v
}

func limitText(n int) string {
	if n == 0 {
		return "none"
	}
	return fmt.Sprint(n)
}
