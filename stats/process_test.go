package stats

import (
	"math"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// The process collector that survives a chroot reports what client_golang's
// reports.
func TestProcessCollectorMatchesClientGolang(t *testing.T) {
	ours, err := newProcessCollector()
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	gather := func(c prometheus.Collector) map[string]float64 {
		reg := prometheus.NewRegistry()
		reg.MustRegister(c)
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		m := make(map[string]float64)
		for _, mf := range mfs {
			for _, x := range mf.GetMetric() {
				m[mf.GetName()] = x.GetGauge().GetValue() + x.GetCounter().GetValue()
			}
		}
		return m
	}
	want := gather(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	got := gather(ours)
	for name, tolerance := range map[string]float64{
		"process_cpu_seconds_total": 0.5, "process_open_fds": 32, // other tests' connections close meanwhile
		"process_max_fds": 0, "process_virtual_memory_bytes": 64 << 20,
		"process_virtual_memory_max_bytes": 0, "process_resident_memory_bytes": 16 << 20, "process_start_time_seconds": 1,
	} {
		g, ok := got[name]
		if !ok {
			t.Errorf("%s missing", name)
			continue
		}
		if w := want[name]; math.Abs(g-w) > tolerance {
			t.Errorf("%s = %v, client_golang says %v", name, g, w)
		}
	}
}
