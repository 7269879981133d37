package cluster

import "github.com/prometheus/client_golang/prometheus"

// Collector exports the node's Stats as Prometheus metrics, read at scrape
// time: nothing is recorded per announce.
func (n *Node) Collector() prometheus.Collector { return (*collector)(n) }

type collector Node

var (
	descConnected = prometheus.NewDesc("herald_cluster_connected", "1 while NATS is reachable.", nil, nil)
	descCaughtUp  = prometheus.NewDesc("herald_cluster_caught_up", "1 once this node has taken the cluster's state.", nil, nil)
	descMembers   = prometheus.NewDesc("herald_cluster_members", "Other instances heard from recently.", nil, nil)
	descQueued    = prometheus.NewDesc("herald_cluster_queued_batches", "Batches waiting for NATS.", nil, nil)
	descAnnounces = prometheus.NewDesc("herald_cluster_announces_total", "Announces by what sync did with them.", []string{"outcome"}, nil)
	descBytes     = prometheus.NewDesc("herald_cluster_bytes_total", "Sync payload bytes.", []string{"direction"}, nil)
	descEvents    = prometheus.NewDesc("herald_cluster_events_total", "Sync events (unauthenticated: messages dropped for a missing or wrong shared-key tag; origin_unnumbered: batches from a node beyond the 15 origin numbers, whose missed stops are left to expire; admin_catch_up*: access list, keys and bans taken from, or sent to, another node on connecting).", []string{"event"}, nil)
	descStale     = prometheus.NewDesc("herald_cluster_stale_peers_removed_total",
		"Peers removed because the instance they came from no longer held them when it answered a catch-up: stops missed while cut off.", nil, nil)
	descChanges = prometheus.NewDesc("herald_cluster_admin_changes_total",
		"Admin changes (access list, keys, bans set through the API or earned by clients) by outcome: applied and rejected (unsealed, invalid, stale or refused here) for other nodes' changes, unsent for this node's own earned bans dropped before they reached NATS.",
		[]string{"outcome"}, nil)
	descRefused = prometheus.NewDesc("herald_cluster_refused_total",
		"Peers from other nodes (announced or in catch-ups) refused as the tracker refuses announces, by reason: not_allowed (access list), invalid_address (port 0, unspecified, multicast, broadcast).",
		[]string{"reason"}, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConnected, descCaughtUp, descMembers, descQueued, descAnnounces, descBytes, descEvents, descStale, descRefused, descChanges} {
		ch <- d
	}
	describeWebTorrent(ch)
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := (*Node)(c).Stats()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(descConnected, b2f(s.Connected))
	gauge(descCaughtUp, b2f(s.CaughtUp))
	gauge(descMembers, float64(s.Members))
	gauge(descQueued, float64(s.Queued))
	counter(descAnnounces, s.Published, "published")
	counter(descAnnounces, s.Suppressed, "suppressed")
	counter(descAnnounces, s.Dropped, "dropped")
	counter(descAnnounces, s.Applied, "applied")
	counter(descAnnounces, s.Rejected, "rejected")
	counter(descBytes, s.PublishedBytes, "out")
	counter(descBytes, s.ReceivedBytes, "in")
	counter(descEvents, s.Malformed, "malformed")
	counter(descEvents, s.Gaps, "gap")
	counter(descEvents, s.CatchUps, "catch_up")
	counter(descEvents, s.CatchUpFailures, "catch_up_failure")
	counter(descEvents, s.Served, "catch_up_served")
	counter(descEvents, s.Unauthenticated, "unauthenticated")
	counter(descEvents, s.Unnumbered, "origin_unnumbered")
	counter(descEvents, s.AdminCatchUps, "admin_catch_up")
	counter(descEvents, s.AdminCatchUpFailures, "admin_catch_up_failure")
	counter(descEvents, s.AdminServed, "admin_catch_up_served")
	counter(descStale, s.StaleRemoved)
	counter(descRefused, s.NotAllowed, "not_allowed")
	counter(descRefused, s.InvalidAddr, "invalid_address")
	counter(descChanges, s.ChangesApplied, "applied")
	counter(descChanges, s.ChangesRejected, "rejected")
	counter(descChanges, s.ChangesUnsent, "unsent")
	(*Node)(c).collectWebTorrent(ch)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
