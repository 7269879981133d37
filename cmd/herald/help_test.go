package main

import (
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"herald/httptracker"
	"herald/internal/heraldtest"
	"herald/tracker"
	"herald/udptracker"
	"herald/wstracker"
)

// herald -h states the defaults herald runs with, and they are the
// components' own (config has no copy of them).
func TestHelpShowsDefaults(t *testing.T) {
	out, err := exec.Command(heraldtest.Binary(t), "-h").CombinedOutput()
	if err != nil {
		t.Fatalf("herald -h: %v\n%s", err, out)
	}
	for key, value := range map[string]any{
		"tracker.interval":             tracker.DefaultInterval,
		"tracker.numwant":              tracker.DefaultNumWant,
		"tracker.udp_max_peers6":       udptracker.DefaultMaxPeers6,
		"tracker.http_max_connections": httptracker.DefaultMaxConnections,
		"tracker.http_header_timeout":  httptracker.DefaultReadHeaderTimeout,
		"websocket.interval":           wstracker.DefaultInterval,
	} {
		text := fmt.Sprint(value)
		if d, ok := value.(time.Duration); ok { // -h prints 30m, not 30m0s
			text = d.String()
			if m, ok := strings.CutSuffix(text, "m0s"); ok {
				text = m + "m"
			}
			if h, ok := strings.CutSuffix(text, "h0m"); ok {
				text = h + "h"
			}
		}
		want := regexp.MustCompile(`\[` + regexp.QuoteMeta(key) + `\]\n[^\n]*\(default ` + regexp.QuoteMeta(text) + `\)`)
		if !want.Match(out) {
			t.Errorf("herald -h does not show %s's default %s", key, text)
		}
	}
}
