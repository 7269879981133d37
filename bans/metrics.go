package bans

import "github.com/prometheus/client_golang/prometheus"

var (
	descActive   = prometheus.NewDesc("herald_bans_active", "Addresses and networks banned now, earned and set through the admin API.", nil, nil)
	descEarned   = prometheus.NewDesc("herald_bans_earned_total", "Bans clients earned by going on over the rate limit (or sending wrong UDP connection ids); the requests bans refused are herald_errors_total{reason=\"banned\"}.", nil, nil)
	descReceived = prometheus.NewDesc("herald_bans_received_total", "Bans clients earned on other instances of the cluster, adopted here (exempt addresses and bans shorter than one held already left out).", nil, nil)
)

// Describe and Collect export the table's figures, read at scrape time.
func (t *Table) Describe(ch chan<- *prometheus.Desc) {
	ch <- descActive
	ch <- descEarned
	ch <- descReceived
}

func (t *Table) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descActive, prometheus.GaugeValue, float64(t.Active()))
	ch <- prometheus.MustNewConstMetric(descEarned, prometheus.CounterValue, float64(t.Earned()))
	ch <- prometheus.MustNewConstMetric(descReceived, prometheus.CounterValue, float64(t.Received()))
}
