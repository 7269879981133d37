package stats

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"herald/counters"
	"herald/tracker"
	"herald/version"
)

// The counters count refusals in an array indexed by tracker.Reason: this
// fails to compile once the tracker has more reasons than it holds.
var _ [counters.MaxReasons - tracker.NumReasons]struct{}

// Metric descriptions. Every label comes from a closed set: protocol (udp,
// http, ws), action, outcome and reason from the counters package's
// enums, family (ipv4, ipv6), role (seeder, leecher). Each configured
// limit is a gauge of its own rather than one gauge labelled by limit,
// since limits of different units do not add up; a limit that is off has
// no series, so a ratio such as herald_torrents / herald_torrents_limit is
// absent rather than 0 or +Inf.
var (
	requestsDesc = prometheus.NewDesc("herald_requests_total",
		"Tracker requests answered (or dropped), by protocol, action and outcome. "+
			"Outcome ok: served; failure: refused with a client-visible error; rate_limited: refused by the per-client "+
			"(for ws per-connection) rate limit; error: internal or cut off; dropped: not answered.",
		[]string{"protocol", "action", "outcome"}, nil)
	errorsDesc = prometheus.NewDesc("herald_errors_total",
		"Why requests were not served as asked, and socket failures, by protocol and reason: "+
			"the tracker's refusals (malformed, not_allowed, rate_limited, torrent_limit, internal...), the same words for every protocol, "+
			"then the frontends' own (not_found, dropped, send_failed, closed_by_tracker...).",
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
	torrentsDesc = prometheus.NewDesc("herald_torrents",
		"Torrents in the swarm store.", nil, nil)
	peersDesc = prometheus.NewDesc("herald_peers",
		"Peers in the swarm store, by address family and role.",
		[]string{"family", "role"}, nil)
	completedDesc = prometheus.NewDesc("herald_torrent_downloads",
		"Completed downloads recorded by the torrents now in the store (it falls when torrents expire).", nil, nil)
	durationDesc = prometheus.NewDesc("herald_request_duration_seconds",
		"Response time of a request, by protocol: from its arrival (udp: the kernel's receive time of the datagram; http: the event loop's wake-up for its connection, or net/http's call of the handler; ws: the read of its message) to the start of the write that hands its reply to the kernel; the write itself is left out.",
		[]string{"protocol"}, nil)
	serviceDesc = prometheus.NewDesc("herald_request_service_seconds",
		"Service time of a request, by protocol: from when herald had read it (udp: the end of the recvmmsg that read its batch; http: the parse of its head on the event loop, or net/http's call of the handler; ws: the read of its message) to the start of the write that hands its reply to the kernel; the wait in the socket before the read, counted in herald_request_duration_seconds, is left out. For http through net/http and for ws herald cannot see that wait, and both histograms get the same value.",
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

// protocolNames name the protocols in help texts.
var protocolNames = [counters.NumProtocols]string{counters.UDP: "UDP", counters.HTTP: "HTTP", counters.WS: "WebSocket"}

// eventHelp and gaugeHelp are the help texts of the per-protocol metrics,
// herald_<protocol>_<label>[_total]; %s is the protocol's name.
var (
	eventHelp = [counters.NumEvents]string{
		counters.Accepted:      "%s connections accepted.",
		counters.Turned:        "%s connections closed on arrival: the connection limit reached, the tracker shutting down, or (HTTP) net/http not keeping up with handed-over requests.",
		counters.OfferRelayed:  "%s (WebRTC) offers sent on to a peer of the swarm.",
		counters.AnswerRelayed: "%s (WebRTC) answers sent on to their offerer.",
	}
	gaugeHelp = [counters.NumGauges]string{
		counters.Connections:     "Open %s connections, summed over listen addresses (HTTP: WebSocket upgrades on the HTTP port included).",
		counters.ConnectionLimit: "Most open %s connections, summed over listen addresses as the connections are.",
		counters.Swarms:          "Torrents in the %s tracker's own swarms (WebTorrent peers are not in the swarm store).",
		counters.SwarmLimit:      "Most torrents in the %s tracker's swarms.",
		counters.Peers:           "Peers in the %s tracker's own swarms.",
		counters.PeerLimit:       "Most peers in the %s tracker's swarms.",
	}
)

// eventDescs and gaugeDescs hold a description for each protocol's events
// and gauges as counters.Events and counters.Gauges list them.
var eventDescs, gaugeDescs = func() (e [counters.NumProtocols][counters.NumEvents]*prometheus.Desc, g [counters.NumProtocols][counters.NumGauges]*prometheus.Desc) {
	for p := range counters.NumProtocols {
		prefix := "herald_" + p.Label() + "_"
		for _, ev := range counters.Events[p] {
			e[p][ev] = prometheus.NewDesc(prefix+ev.Label()+"_total", fmt.Sprintf(eventHelp[ev], protocolNames[p]), nil, nil)
		}
		for _, gg := range counters.Gauges[p] {
			help := gaugeHelp[gg]
			if gg.IsLimit() {
				help += " Absent when unbounded."
			}
			g[p][gg] = prometheus.NewDesc(prefix+gg.Label(), fmt.Sprintf(help, protocolNames[p]), nil, nil)
		}
	}
	return e, g
}()

// metricsCollector turns a Snapshot into metrics at scrape time: the hot
// path only bumps the frontends' counters.
type metricsCollector struct{ m *Monitor }

var _ prometheus.Collector = metricsCollector{}

func (c metricsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		requestsDesc, errorsDesc, storeRefusalsDesc, torrentsDesc, peersDesc, completedDesc, durationDesc, serviceDesc, statsRequestsDesc,
		torrentsLimitDesc, peersLimitDesc, rateLimitDesc, rateBurstDesc,
	} {
		ch <- d
	}
	for p := range counters.NumProtocols {
		for _, e := range counters.Events[p] {
			ch <- eventDescs[p][e]
		}
		for _, g := range counters.Gauges[p] {
			ch <- gaugeDescs[p][g]
		}
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
	histogram := func(d *prometheus.Desc, l *counters.Latency, labels ...string) {
		buckets := make(map[float64]uint64, len(counters.LatencyBuckets))
		for i, b := range counters.LatencyBuckets {
			buckets[b.Seconds()] = l.Buckets[i]
		}
		ch <- prometheus.MustNewConstHistogram(d, l.Count, l.Sum.Seconds(), buckets, labels...)
	}

	cs := &s.Counters
	for p := range counters.NumProtocols {
		proto := p.Label()
		for a := range counters.NumActions {
			if cs.HasAction(p, a) {
				for o := range counters.NumOutcomes {
					counter(requestsDesc, cs.Requests[p][a][o], proto, a.Label(), o.Label())
				}
			}
		}
		for r := range tracker.NumReasons {
			counter(errorsDesc, cs.Refusals[p][r], proto, tracker.Reason(r).Label())
		}
		for f := range counters.NumFaults {
			if cs.HasFault(p, f) {
				counter(errorsDesc, cs.Faults[p][f], proto, f.Label())
			}
		}
		for _, e := range counters.Events[p] {
			counter(eventDescs[p][e], cs.Events[p][e])
		}
		for _, g := range counters.Gauges[p] {
			if v := cs.Gauges[p][g]; g.IsLimit() {
				limit(gaugeDescs[p][g], float64(v))
			} else {
				gauge(gaugeDescs[p][g], int(v))
			}
		}
		histogram(durationDesc, &cs.Latency[p], proto)
		histogram(serviceDesc, &cs.Service[p], proto)
	}

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
}
