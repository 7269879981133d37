package main

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

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
		if want := fmt.Sprintf("[config: %s] (default %v)", key, value); !strings.Contains(string(out), want) {
			t.Errorf("herald -h does not show %q", want)
		}
	}
}
