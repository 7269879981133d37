package stats

import (
	"herald/version"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric descriptions. Every label comes from a closed set written in this
// file: protocol (http, udp), action, outcome, reason, family (ipv4, ipv6),
// role (seeder, leecher). Each configured limit is a gauge of its own
// rather than one gauge labelled by limit, since limits of different units
// do not add up; a limit that is off has no series, so a ratio such as
// herald_torrents / herald_torrents_limit is absent rather than 0 or +Inf.
var (
	requestsDesc = prometheus.NewDesc("herald_requests_total",
		"Tracker requests answered (or dropped), by protocol, action and outcome. "+
			"Outcome ok: served; failure: refused with a client-visible error; error: internal or cut off; dropped: not answered.",
		[]string{"protocol", "action", "outcome"}, nil)
	errorsDesc = prometheus.NewDesc("herald_errors_total",
		"Requests not served as asked and socket failures, by protocol and reason. "+
			"rate_limited: refused by the per-client rate limit (for http also counted as announce_failure or scrape_failure).",
		[]string{"protocol", "reason"}, nil)
	storeRefusalsDesc = prometheus.NewDesc("herald_store_refusals_total",
		"New torrents (reason torrent_limit) and peers (peer_limit) the swarm store refused at its bounds, "+
			"and peers refused for an address no client can reach (invalid_address: port 0, unspecified, multicast, broadcast), "+
			"from any frontend, cluster catch-up or snapshot load.",
		[]string{"reason"}, nil)
	torrentsLimitDesc = prometheus.NewDesc("herald_torrents_limit",
		"Most torrents the store holds (tracker.max_torrents); absent when unbounded.", nil, nil)
	peersLimitDesc = prometheus.NewDesc("herald_peers_limit",
		"Most peers the store holds (tracker.max_peers); absent when unbounded.", nil, nil)
	rateLimitDesc = prometheus.NewDesc("herald_client_rate_limit_per_second",
		"Sustained requests per second one client (IPv4 address, IPv6 /64) may make (tracker.rate_limit); absent when off.", nil, nil)
	rateBurstDesc = prometheus.NewDesc("herald_client_rate_limit_burst",
		"Requests one client may make at once before the rate limit applies (tracker.rate_burst); absent when off.", nil, nil)
	httpConnsLimitDesc = prometheus.NewDesc("herald_http_connections_limit",
		"Most open HTTP connections (tracker.http_max_connections), summed over HTTP listen addresses as herald_http_connections is.", nil, nil)
	httpConnsDesc = prometheus.NewDesc("herald_http_connections",
		"Open HTTP connections, waiting or being answered (WebSocket upgrades on the HTTP port included), summed over HTTP listen addresses.", nil, nil)
	httpConnsRefusedDesc = prometheus.NewDesc("herald_http_connections_refused_total",
		"HTTP connections closed on arrival: herald_http_connections_limit reached, or net/http not keeping up with handed-over requests.", nil, nil)
	torrentsDesc = prometheus.NewDesc("herald_torrents",
		"Torrents in the swarm store.", nil, nil)
	peersDesc = prometheus.NewDesc("herald_peers",
		"Peers in the swarm store, by address family and role.",
		[]string{"family", "role"}, nil)
	completedDesc = prometheus.NewDesc("herald_torrent_downloads",
		"Completed downloads recorded by the torrents now in the store (it falls when torrents expire).", nil, nil)
	durationDesc = prometheus.NewDesc("herald_request_duration_seconds",
		"Time from reading a request to handing its reply to the kernel, by protocol.",
		[]string{"protocol"}, nil)
	statsRequestsDesc = prometheus.NewDesc("herald_stats_requests_total",
		"Requests to the stats page, metrics and dashboard, by outcome.",
		[]string{"outcome"}, nil)
)

// buildInfoGauge is herald_build_info: 1, labelled with what the binary
// is, so a dashboard can show the version and an alert can tell a rollout.
func buildInfoGauge(v version.Info) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "herald_build_info",
		Help: "Always 1; the labels name the release, the VCS commit (empty when unknown) and the Go version of this binary.",
		ConstLabels: prometheus.Labels{
			"version":   v.Release,
			"revision":  v.Revision,
			"goversion": v.GoVersion,
		},
	})
	g.Set(1)
	return g
}

// metricsCollector turns a Snapshot into metrics at scrape time: the hot
// path only bumps the frontends' atomic counters.
type metricsCollector struct{ m *Monitor }

var _ prometheus.Collector = metricsCollector{}

func (c metricsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		requestsDesc, errorsDesc, storeRefusalsDesc, torrentsDesc, peersDesc, completedDesc, durationDesc, statsRequestsDesc,
		torrentsLimitDesc, peersLimitDesc, rateLimitDesc, rateBurstDesc,
		httpConnsDesc, httpConnsRefusedDesc, httpConnsLimitDesc,
	} {
		ch <- d
	}
}

func (c metricsCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.m.Snapshot()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	limit := func(d *prometheus.Desc, v float64) {
		if v > 0 {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
		}
	}

	h, u := &s.HTTP, &s.UDP
	counter(requestsDesc, h.Announces, "http", "announce", "ok")
	counter(requestsDesc, h.AnnounceFailures, "http", "announce", "failure")
	counter(requestsDesc, h.Scrapes, "http", "scrape", "ok")
	counter(requestsDesc, h.ScrapeFailures, "http", "scrape", "failure")
	counter(requestsDesc, h.FullScrapes, "http", "full_scrape", "ok")
	counter(requestsDesc, h.FullScrapesBusy, "http", "full_scrape", "failure")
	counter(requestsDesc, h.FullScrapeErrors, "http", "full_scrape", "error")
	counter(requestsDesc, h.Redirects, "http", "redirect", "ok")
	counter(requestsDesc, h.BadRequests+h.NotFound+h.BadMethods, "http", "invalid", "failure")
	counter(requestsDesc, u.Connects, "udp", "connect", "ok")
	counter(requestsDesc, u.Announces, "udp", "announce", "ok")
	counter(requestsDesc, u.Refused+u.StoreErrors, "udp", "announce", "failure")
	counter(requestsDesc, u.Scrapes, "udp", "scrape", "ok")
	counter(requestsDesc, u.BadConnectionID+u.Malformed, "udp", "invalid", "failure")
	counter(requestsDesc, u.Dropped, "udp", "invalid", "dropped")

	counter(errorsDesc, h.AnnounceFailures, "http", "announce_failure")
	counter(errorsDesc, h.ScrapeFailures, "http", "scrape_failure")
	counter(errorsDesc, h.BadRequests, "http", "bad_request")
	counter(errorsDesc, h.NotFound, "http", "not_found")
	counter(errorsDesc, h.BadMethods, "http", "method_not_allowed")
	counter(errorsDesc, h.InternalErrors, "http", "internal")
	counter(errorsDesc, h.FullScrapesBusy, "http", "full_scrape_busy")
	counter(errorsDesc, h.FullScrapeErrors, "http", "full_scrape_cut")
	counter(errorsDesc, h.RateLimited, "http", "rate_limited")
	counter(errorsDesc, u.BadConnectionID, "udp", "connection_id_mismatch")
	counter(errorsDesc, u.Refused, "udp", "refused")
	counter(errorsDesc, u.Malformed, "udp", "malformed")
	counter(errorsDesc, u.StoreErrors, "udp", "store")
	counter(errorsDesc, u.Dropped, "udp", "dropped")
	counter(errorsDesc, u.SendFailures, "udp", "send_failed")
	counter(errorsDesc, u.ReadFailures, "udp", "read_failed")
	counter(errorsDesc, u.RateLimited, "udp", "rate_limited")

	gauge(httpConnsDesc, int(h.OpenConnections))
	counter(httpConnsRefusedDesc, h.RefusedConnections)
	limit(httpConnsLimitDesc, float64(h.MaxConnections))

	counter(storeRefusalsDesc, s.Refusals.TorrentLimit, "torrent_limit")
	counter(storeRefusalsDesc, s.Refusals.PeerLimit, "peer_limit")
	counter(storeRefusalsDesc, s.Refusals.InvalidAddr, "invalid_address")
	bounds := c.m.store.Config()
	limit(torrentsLimitDesc, float64(bounds.MaxTorrents))
	limit(peersLimitDesc, float64(bounds.MaxPeers))
	if rl := c.m.cfg.RateLimit; rl.Rate > 0 {
		limit(rateLimitDesc, rl.Rate)
		limit(rateBurstDesc, float64(rl.Burst))
	}

	t := &s.Totals
	gauge(torrentsDesc, s.Torrents)
	gauge(peersDesc, t.Seeders4, "ipv4", "seeder")
	gauge(peersDesc, t.Leechers4, "ipv4", "leecher")
	gauge(peersDesc, t.Seeders6, "ipv6", "seeder")
	gauge(peersDesc, t.Leechers6, "ipv6", "leecher")
	gauge(completedDesc, t.Completed)

	counter(statsRequestsDesc, s.StatsRequests-s.StatsDenied, "ok")
	counter(statsRequestsDesc, s.StatsDenied, "denied")

	src := c.m.src.Load()
	for _, lat := range []struct {
		protocol string
		sources  []*Histogram
		snap     *HistogramSnapshot
	}{{"http", src.HTTPLatency, &s.HTTPLatency}, {"udp", src.UDPLatency, &s.UDPLatency}} {
		if len(lat.sources) == 0 {
			continue // the frontend does not time requests: no empty histogram
		}
		buckets := make(map[float64]uint64, len(LatencyBuckets))
		for i, b := range LatencyBuckets {
			buckets[b.Seconds()] = lat.snap.Buckets[i]
		}
		ch <- prometheus.MustNewConstHistogram(durationDesc, lat.snap.Count, lat.snap.Sum.Seconds(), buckets, lat.protocol)
	}
}
