package cluster

import (
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

func TestCollectorReportsStateAndLints(t *testing.T) {
	n, err := New(Config{URLs: []string{"nats://127.0.0.1:1"}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(n.Collector()); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			found[mf.GetName()] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	if v, ok := found["herald_cluster_connected"]; !ok || v != 0 {
		t.Fatalf("herald_cluster_connected = %v (present %v), want 0 before Run", v, ok)
	}
	if _, ok := found["herald_cluster_announces_total"]; !ok {
		t.Fatalf("no herald_cluster_announces_total in %v", found)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
}
