package main

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// A soak run reads -report lines while the load runs: they must come at the
// interval, count up, name the error kinds, and never exceed the final total.
func TestReportPrintsRunningTotals(t *testing.T) {
	ft := startFakeTracker(t, 10, 0)
	var out bytes.Buffer
	err := run([]string{"udp", "-target", ft.addr().String(), "-src", "127.0.0.1", "-sockets", "2", "-window", "8",
		"-torrents", "100", "-peers", "1000", "-mix", "1:0", "-warmup", "0", "-duration", "1s", "-report", "200ms"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	progress := regexp.MustCompile(`(?m)^progress t=(\d+)s valid=(\d+) errors=(\d+)(.*)$`).FindAllStringSubmatch(out.String(), -1)
	// Four lines at 0.2, 0.4, 0.6 and 0.8 s; the result covers the end.
	if len(progress) != 4 {
		t.Fatalf("%d progress lines in 1s at 200ms, want 4:\n%s", len(progress), out.String())
	}
	var last uint64
	for _, p := range progress {
		valid, _ := strconv.ParseUint(p[2], 10, 64)
		if valid <= last {
			t.Errorf("valid went from %d to %d:\n%s", last, valid, out.String())
		}
		last = valid
		// Every tenth reply is truncated, so size errors show by name.
		if p[3] == "0" || !strings.Contains(p[4], " size=") {
			t.Errorf("progress line %q does not report the size errors", p[0])
		}
	}
	m := regexp.MustCompile(`valid responses: (\d+) `).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no result in:\n%s", out.String())
	}
	if total, _ := strconv.ParseUint(m[1], 10, 64); total < last {
		t.Errorf("final total %d below the last progress line's %d", total, last)
	}
}
