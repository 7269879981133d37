package main

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// exposition writes a histogram in herald's form for protocols udp and
// http, plus the Go runtime's lines a reader must pass over.
func exposition(name string, udp, httpCounts []int) string {
	bounds := []string{"2.5e-05", "5e-05", "0.0001", "0.00025", "+Inf"}
	var b strings.Builder
	b.WriteString("# HELP go_gc_duration_seconds A summary.\n# TYPE go_gc_duration_seconds summary\n")
	b.WriteString("go_gc_duration_seconds{quantile=\"0.5\"} 1.2e-05\ngo_gc_duration_seconds_sum 0.1\n")
	b.WriteString("go_sched_latencies_seconds_bucket{le=\"1e-06\"} 5\ngo_sched_latencies_seconds_bucket{le=\"+Inf\"} 9\n")
	b.WriteString("herald_errors_total{protocol=\"udp\",reason=\"a \\\"quoted\\\" one\"} 0\n")
	fmt.Fprintf(&b, "# TYPE %s histogram\n", name)
	for _, s := range []struct {
		proto  string
		counts []int
	}{{"http", httpCounts}, {"udp", udp}} {
		cum := 0
		for i, c := range s.counts {
			cum += c
			fmt.Fprintf(&b, "%s_bucket{protocol=%q,le=%q} %d\n", name, s.proto, bounds[i], cum)
		}
		fmt.Fprintf(&b, "%s_sum{protocol=%q} 1\n%s_count{protocol=%q} %d 1700000000000\n", name, s.proto, name, s.proto, cum)
	}
	return b.String()
}

// family is an exposition's herald histogram alone, to follow another.
func family(exposition string) string {
	return exposition[strings.Index(exposition, "# TYPE herald_request"):]
}

func TestServiceQuantilesFromTwoReadings(t *testing.T) {
	const name = "herald_request_duration_seconds"
	before, err := parsePromHistograms([]byte(exposition(name, []int{10, 0, 0, 0, 0}, []int{1, 1, 1, 1, 1})))
	if err != nil {
		t.Fatal(err)
	}
	// In the window: 100 UDP requests, 60 under 25 µs, 39 in 25–50 µs, 1
	// in 50–100 µs. The 10 before the window must not count.
	after, err := parsePromHistograms([]byte(exposition(name, []int{70, 39, 1, 0, 0}, []int{1, 1, 1, 1, 500})))
	if err != nil {
		t.Fatal(err)
	}
	hb, err := pickServiceHistogram(before, "udp", "")
	if err != nil {
		t.Fatal(err)
	}
	ha, err := pickServiceHistogram(after, "udp", "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := service(hb, ha)
	if err != nil {
		t.Fatal(err)
	}
	if s.Count != 100 || s.Metric != name+`{protocol="udp"}` {
		t.Fatalf("service %+v: want 100 requests of %s{protocol=\"udp\"}", s, name)
	}
	// p50: rank 50 of 60 in the first bucket, 0–25 µs: 20.8 µs. p99: rank
	// 99 is the 39th of 39 in 25–50 µs: 50 µs.
	if math.Abs(s.P50-20.833) > 0.01 || math.Abs(s.P99-50) > 0.01 {
		t.Errorf("p50 %.3f p99 %.3f µs, want 20.833 and 50", s.P50, s.P99)
	}
	hh, err := pickServiceHistogram(after, "http", "")
	if err != nil {
		t.Fatal(err)
	}
	// Most HTTP requests are in +Inf: the highest finite bound stands for them.
	if q := hh.quantile(0.99) * 1e6; q != 250 {
		t.Errorf("HTTP p99 %v µs, want the last finite bound 250", q)
	}
}

func TestPickServiceHistogramFollowsRenames(t *testing.T) {
	hs, err := parsePromHistograms([]byte(exposition("herald_udp_service_seconds", []int{1, 0, 0, 0, 0}, []int{1, 0, 0, 0, 0})))
	if err != nil {
		t.Fatal(err)
	}
	h, err := pickServiceHistogram(hs, "udp", "")
	if err != nil || h.name != "herald_udp_service_seconds" || !strings.Contains(h.labels, `"udp"`) {
		t.Fatalf("picked %v, %v", h, err)
	}
	if _, err := pickServiceHistogram(hs, "udp", "herald_request_duration_seconds"); err == nil {
		t.Error("found a histogram by a name the exposition lacks")
	}
	if _, err := pickServiceHistogram(hs, "ws", ""); err == nil || !strings.Contains(err.Error(), "-metrics-histogram") {
		t.Errorf("no histogram for ws: err %v, want one naming -metrics-histogram", err)
	}
}

func TestParsePromHistogramsRejectsBadInput(t *testing.T) {
	for _, bad := range []string{
		"x_bucket{le=\"1\"} 1\n",                             // no +Inf bucket
		"x_bucket{le=\"1\"} 5\nx_bucket{le=\"+Inf\"} 4\n",    // counts fall
		"x_bucket{le=\"2\"} 1\nx_bucket{le=\"1\"} 1\n",       // bounds fall
		"x_bucket{a=\"1\"} 1\n",                              // no le
		"x_bucket{le=\"1} 1\n",                               // unterminated value
		"x_bucket{le=\"one\"} 1\n",                           // le not a number
		"x 1 2 3\n",                                          // extra fields
		"x{a=\"\\q\"} 1\n",                                   // bad escape
		"{le=\"1\"} 1\n",                                     // no name
		"x_bucket{le=\"1\"} many\nx_bucket{le=\"+Inf\"} 1\n", // value not a number
		"x_bucket{le=\"-1\"} 1\nx_bucket{le=\"+Inf\"} 1\n",   // negative bound
		"x_bucket{le=\"1\"} NaN\nx_bucket{le=\"+Inf\"} 1\n",  // count not a number
	} {
		if _, err := parsePromHistograms([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestUDPRunnerReportsServiceTime runs the udp mode end to end against the
// fake tracker with a fake /metrics whose histogram grows between the two
// readings, and checks the JSON line carries the tracker's own quantiles.
func TestUDPRunnerReportsServiceTime(t *testing.T) {
	ft := startFakeTracker(t, 0, 0)
	var reads atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The service time first, to show it is not taken for the
		// response time.
		if reads.Add(1) == 1 {
			fmt.Fprint(w, exposition("herald_request_service_seconds", []int{0, 0, 0, 0, 0}, []int{0, 0, 0, 0, 0}))
			fmt.Fprint(w, family(exposition("herald_request_duration_seconds", []int{0, 0, 0, 0, 0}, []int{0, 0, 0, 0, 0})))
			return
		}
		fmt.Fprint(w, exposition("herald_request_service_seconds", []int{100, 0, 0, 0, 0}, []int{0, 0, 0, 0, 0}))
		fmt.Fprint(w, family(exposition("herald_request_duration_seconds", []int{0, 0, 100, 0, 0}, []int{0, 0, 0, 0, 0})))
	}))
	defer srv.Close()
	var out strings.Builder
	err := run([]string{"udp", "-target", ft.addr().String(), "-duration", "200ms", "-warmup", "50ms", "-torrents", "10",
		"-rate", "500", "-metrics", srv.URL + "/metrics", "-json"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"service_us":{"metric":"herald_request_duration_seconds{protocol=\"udp\"}","count":100,"p50":75,"p99":99.5}`) {
		t.Errorf("output lacks the response time:\n%s", out.String())
	}
	if !strings.Contains(out.String(), `"service_time_us":{"metric":"herald_request_service_seconds{protocol=\"udp\"}","count":100,"p50":12.5,"p99":24.75`) {
		t.Errorf("output lacks the service time:\n%s", out.String())
	}
	if _, err := parseOptions("udp", []string{"-metrics-histogram", "herald_requests_total"}); err == nil {
		t.Error("accepted a histogram name not in seconds")
	}
}

func FuzzParsePromHistograms(f *testing.F) {
	f.Add([]byte(exposition("herald_request_duration_seconds", []int{1, 2, 3, 4, 5}, []int{0, 0, 0, 0, 1})))
	f.Add([]byte("x_bucket{le=\"1\",a=\"b\\\\\"} 1 17\nx_bucket{a=\"b\\\\\",le=\"+Inf\"} 2\n"))
	f.Add([]byte("x_bucket{le=\"NaN\"} 1\n# c\n\n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		hs, err := parsePromHistograms(text)
		if err != nil {
			return
		}
		for i := range hs {
			h := &hs[i]
			if len(h.bounds) == 0 || len(h.bounds) != len(h.counts) || !math.IsInf(h.bounds[len(h.bounds)-1], 1) {
				t.Fatalf("%s: bounds %v counts %v", h, h.bounds, h.counts)
			}
			for _, q := range []float64{0, 0.5, 0.99, 1} {
				v := h.quantile(q)
				if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
					t.Fatalf("%s: quantile %v = %v", h, q, v)
				}
			}
			if _, err := service(h, h); err != nil {
				t.Fatalf("%s against itself: %v", h, err)
			}
		}
		_, _ = pickServiceHistogram(hs, "udp", "")
	})
}
