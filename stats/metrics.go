package stats

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metric descriptions. Every label comes from a closed set written in this
// file: protocol (http, udp), action, outcome, reason, family (ipv4, ipv6),
// role (seeder, leecher).
var (
	requestsDesc = prometheus.NewDesc("herald_requests_total",
		"Tracker requests answered (or dropped), by protocol, action and outcome. "+
			"Outcome ok: served; failure: refused with a client-visible error; error: internal or cut off; dropped: not answered.",
		[]string{"protocol", "action", "outcome"}, nil)
	errorsDesc = prometheus.NewDesc("herald_errors_total",
		"Requests not served as asked and socket failures, by protocol and reason.",
		[]string{"protocol", "reason"}, nil)
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

// metricsCollector turns a Snapshot into metrics at scrape time: the hot
// path only bumps the frontends' atomic counters.
type metricsCollector struct{ m *Monitor }

var _ prometheus.Collector = metricsCollector{}

func (c metricsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{requestsDesc, errorsDesc, torrentsDesc, peersDesc, completedDesc, durationDesc, statsRequestsDesc} {
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
	counter(errorsDesc, u.BadConnectionID, "udp", "connection_id_mismatch")
	counter(errorsDesc, u.Refused, "udp", "refused")
	counter(errorsDesc, u.Malformed, "udp", "malformed")
	counter(errorsDesc, u.StoreErrors, "udp", "store")
	counter(errorsDesc, u.Dropped, "udp", "dropped")
	counter(errorsDesc, u.SendFailures, "udp", "send_failed")
	counter(errorsDesc, u.ReadFailures, "udp", "read_failed")

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
