package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"herald/internal/heraldtest"
)

// startFails runs herald with args and returns its output once it has
// exited with status 1, as a start that fails does; a herald still running
// after 10s fails the test.
func startFails(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, heraldtest.Binary(t), args...).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("herald %v still running after 10s, want it to refuse to start\n%s", args, out)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("herald %v exited with %v, want status 1\n%s", args, err, out)
	}
	return string(out)
}

// Issue 14 item 1: SO_REUSEPORT would let a second herald join the first
// one's sockets and take part of its traffic; it must refuse to start.
func TestSecondHeraldOnServedPortFails(t *testing.T) {
	port := freePort(t)
	first := fmt.Sprintf("127.0.0.1:%d", port)
	for _, tc := range []struct {
		name, serving, second, named string
	}{
		{"same address", "-listen", "-listen", "httptracker: listen " + first},
		{"UDP only served", "-listen-udp", "-listen", "udptracker: listen " + first},
		{"wildcard over the served address", "-listen-udp", "-listen-udp=[::]:" + fmt.Sprint(port), fmt.Sprintf("udptracker: listen [::]:%d", port)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			heraldtest.Run(t, "-snapshot", "off", tc.serving, first).WaitUDP(t, first)

			args := []string{"-snapshot", "off", tc.second}
			if !strings.Contains(tc.second, "=") {
				args = append(args, first)
			}
			out := startFails(t, args...)
			if !strings.Contains(string(out), tc.named) || !strings.Contains(string(out), "already served by another process") {
				t.Fatalf("output does not say %q is already served:\n%s", tc.named, out)
			}
		})
	}
}
