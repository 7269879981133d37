package main

import (
	"os"
	"strings"
	"testing"
)

func TestSummarizeMediansAndRatio(t *testing.T) {
	lines := `herald udp: human-readable lines are skipped
{"mode":"udp","tracker":"herald","workload":"udp","valid":100,"valid_per_s":1000,"cpu_us_per_valid":4,"latency_us":{"p99":50}}
{"mode":"udp","tracker":"opentracker","workload":"udp","valid":100,"valid_per_s":900,"cpu_us_per_valid":8,"latency_us":{"p99":60}}
{"mode":"udp","tracker":"herald","workload":"udp","valid":100,"valid_per_s":3000,"cpu_us_per_valid":6,"latency_us":{"p99":70}}
{"mode":"udp","tracker":"opentracker","workload":"udp","valid":100,"valid_per_s":1100,"cpu_us_per_valid":12,"latency_us":{"p99":80}}
{"mode":"udp","tracker":"herald","workload":"udp","valid":100,"valid_per_s":2000,"cpu_us_per_valid":5,"latency_us":{"p99":60}}
{"mode":"fill","tracker":"herald","workload":"fill4","valid":10,"fill":{"peers":10,"held":10,"rss_before_bytes":1,"rss_after_bytes":301,"rss_bytes_per_peer":30}}
{"mode":"fill","tracker":"opentracker","workload":"fill4","valid":10,"fill":{"peers":10,"held":10,"rss_before_bytes":1,"rss_after_bytes":401,"rss_bytes_per_peer":40}}
`
	path := t.TempDir() + "/r.jsonl"
	if err := writeFile(path, lines); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := runSummarize([]string{path}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| udp | valid_per_s | herald | 3 | 2000 | 1000 | 3000 | 2.000 |", // median 2000 / median 1000
		"| udp | cpu_us_per_valid | herald | 3 | 5.000 | 4.000 | 6.000 | 0.500 |",
		"| udp | cpu_us_per_valid | opentracker | 2 | 10.0 | 8.000 | 12.0 |  |",
		"| fill4 | rss_bytes_per_peer | herald | 1 | 30.0 | 30.0 | 30.0 | 0.750 |",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	open := `{"mode":"udp","tracker":"herald","workload":"half","rate":100,"valid":80,"errors":{"backlog":10,"timeout":10},"latency_us":{"p99":1}}`
	if err := writeFile(path, open); err != nil {
		t.Fatal(err)
	}
	if err := runSummarize([]string{path}, &out); err != nil {
		t.Fatal(err)
	}
	// The generator's backlog is not the tracker's error.
	for _, want := range []string{"| half | error_share | herald | 1 | 0.111 |", "| half | backlog_share | herald | 1 | 0.100 |"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
	if err := writeFile(path, lines); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := runSummarize([]string{"-get", "udp/herald/valid_per_s", path}, &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != "2000\n" {
		t.Errorf("-get printed %q, want 2000", out.String())
	}
	if err := runSummarize([]string{"-get", "udp/chihaya/valid_per_s", path}, &out); err == nil {
		t.Error("-get of a missing series succeeded")
	}
}

func TestSummarizeRatiosToSeveralTrackers(t *testing.T) {
	lines := `{"mode":"udp","tracker":"herald","workload":"udp-o25","rate":10,"valid":100,"cpu_us_per_valid":6,"latency_us":{"p99":50},"service_us":{"metric":"m","count":100,"p99":40}}
{"mode":"udp","tracker":"opentracker","workload":"udp-o25","rate":10,"valid":100,"cpu_us_per_valid":12,"latency_us":{"p99":60}}
{"mode":"udp","tracker":"nulltracker","workload":"udp-o25","rate":10,"valid":100,"cpu_us_per_valid":4,"latency_us":{"p99":20}}
{"mode":"udp","tracker":"herald-before","workload":"udp-o25","rate":10,"valid":100,"cpu_us_per_valid":8,"latency_us":{"p99":70},"service_us":{"metric":"m","count":0,"p99":0}}
{"mode":"fill","tracker":"herald","workload":"fill4","valid":10,"fill":{"peers":10,"held":10,"rss_after_bytes":301,"rss_bytes_per_peer":30,"steady":{"held":9,"rss_after_bytes":401,"rss_bytes_per_peer":40}}}
{"mode":"fill","tracker":"opentracker","workload":"fill4","valid":10,"fill":{"peers":10,"held":10,"rss_after_bytes":201,"rss_bytes_per_peer":20,"steady":{"held":10,"rss_after_bytes":201,"rss_bytes_per_peer":20}}}
`
	path := t.TempDir() + "/r.jsonl"
	if err := writeFile(path, lines); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := runSummarize([]string{"-vs", "opentracker,nulltracker,herald-before", path}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| workload | metric | tracker | rounds | median | min | max | ÷ opentracker | ÷ nulltracker | ÷ herald-before |",
		"| udp-o25 | cpu_us_per_valid | herald | 1 | 6.000 | 6.000 | 6.000 | 0.500 | 1.500 | 0.750 |",
		"| udp-o25 | cpu_us_per_valid | nulltracker | 1 | 4.000 | 4.000 | 4.000 | 0.333 |  | 0.500 |",
		"| udp-o25 | service_p99_us | herald | 1 | 40.0 | 40.0 | 40.0 |  |  |  |", // herald-before's window had no requests
		"| fill4 | rss_bytes_per_peer_steady | herald | 1 | 40.0 | 40.0 | 40.0 | 2.000 |  |  |",
		"| fill4 | held_share_steady | herald | 1 | 0.900 | 0.900 | 0.900 | 0.900 |  |  |",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "| service_p99_us | herald-before |") {
		t.Errorf("a window without requests has a service time:\n%s", out.String())
	}
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o644) }

// With -floor, each tracker's CPU per response less the floor's median:
// here herald adds 2 µs to the floor's 4, opentracker 8, so herald adds a
// quarter of what opentracker adds, though its whole figure is half.
func TestSummarizeAboveTheFloor(t *testing.T) {
	lines := `{"mode":"udp","tracker":"herald","workload":"udp-c64","valid":100,"cpu_us_per_valid":6,"cpu_sys_us_per_valid":5,"latency_us":{"p99":50}}
{"mode":"udp","tracker":"opentracker","workload":"udp-c64","valid":100,"cpu_us_per_valid":12,"cpu_sys_us_per_valid":9,"latency_us":{"p99":60}}
{"mode":"udp","tracker":"nulltracker","workload":"udp-c64","valid":100,"cpu_us_per_valid":4,"cpu_sys_us_per_valid":4,"latency_us":{"p99":20}}
{"mode":"udp","tracker":"nulltracker","workload":"udp-c64","valid":100,"cpu_us_per_valid":3,"cpu_sys_us_per_valid":3,"latency_us":{"p99":20}}
{"mode":"udp","tracker":"nulltracker","workload":"udp-c64","valid":100,"cpu_us_per_valid":5,"cpu_sys_us_per_valid":5,"latency_us":{"p99":20}}
{"mode":"http","tracker":"herald","workload":"http-c1","valid":100,"cpu_us_per_valid":60,"latency_us":{"p99":50}}
{"mode":"http","tracker":"opentracker","workload":"http-c1","valid":100,"cpu_us_per_valid":80,"latency_us":{"p99":60}}
`
	path := t.TempDir() + "/r.jsonl"
	if err := writeFile(path, lines); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := runSummarize([]string{"-vs", "opentracker,nulltracker", "-floor", "nulltracker", path}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| udp-c64 | cpu_us_per_valid | herald | 1 | 6.000 | 6.000 | 6.000 | 0.500 | 1.500 |",
		"| udp-c64 | cpu_us_above_floor | herald | 1 | 2.000 | 2.000 | 2.000 | 0.250 |  |",
		"| udp-c64 | cpu_us_above_floor | opentracker | 1 | 8.000 | 8.000 | 8.000 |  |  |",
		"| udp-c64 | cpu_sys_us_per_valid | herald | 1 | 5.000 | 5.000 | 5.000 | 0.556 | 1.250 |",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
	for _, absent := range []string{"cpu_us_above_floor | nulltracker", "http-c1 | cpu_us_above_floor"} {
		if strings.Contains(out.String(), absent) {
			t.Errorf("summary has %q, which has no floor to stand on:\n%s", absent, out.String())
		}
	}
}
