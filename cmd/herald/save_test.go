package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"herald/internal/heraldtest"
	"herald/internal/servetest"
)

// Issue 14 item 15: a snapshot path that cannot be written stops the start
// with the path and the fix named, not an error at the first interval.
func TestUnwritableSnapshotFailsAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "herald.snapshot")
	out := startFails(t, "-listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "-snapshot", path)
	for _, want := range []string{path, "snapshot.path off"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output does not say %q:\n%s", want, out)
		}
	}
}

// Issue 14 item 15: every save is logged at INFO with its size and time
// and shows in /metrics; a final save that fails makes the exit status 1.
func TestSnapshotSavesReportedAndFinalFailureExits(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	os.Mkdir(dir, 0o755)
	h := startHerald(t, freePort(t), "-snapshot", filepath.Join(dir, "herald.snapshot"), "-snapshot-interval", "1s")
	announceReply(t, h.URL, hashOf(1), 7000)
	var metrics string
	servetest.WaitFor(t, 10*time.Second, func() error {
		var err error
		if metrics, err = scrape(h.URL); err != nil {
			return err
		}
		if !strings.Contains(metrics, "herald_snapshot_last_save_timestamp_seconds ") {
			return errors.New("no save in /metrics yet")
		}
		return nil
	})
	for _, want := range []string{"herald_snapshot_last_save_timestamp_seconds ", "herald_snapshot_last_save_duration_seconds ",
		"herald_snapshot_last_save_bytes ", "herald_snapshot_save_failures_total 0"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if !strings.Contains(h.Output(), `level=INFO msg="snapshot written"`) || !strings.Contains(h.Output(), "bytes=") {
		t.Errorf("no INFO line with the size for a save:\n%s", h.Output())
	}

	os.RemoveAll(dir) // the final save cannot be written
	if !h.Signal(syscall.SIGTERM) {
		t.Fatalf("herald did not exit within %v of SIGTERM", heraldtest.Timeout)
	}
	var ee *exec.ExitError
	if err := h.Err(); !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("exit after a failed final save: %v, want status 1", err)
	}
}

// Issue 14 item 15: with Debian's opentracker config, which chroots into
// /etc/opentracker (owned by root) and runs as _opentracker, the default
// snapshot path cannot be written: herald says so at start, and what to
// change.
func TestDebianConfigDefaultSnapshotFailsAtStart(t *testing.T) {
	const conf = "/etc/opentracker/opentracker.conf"
	if _, err := os.Stat(conf); err != nil {
		t.Skip("opentracker not installed (apt-get install opentracker; make test does)")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to drop privileges as the config asks")
	}
	out := startFails(t, "-f", conf, "-listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	for _, want := range []string{"snapshot.path /etc/opentracker/herald.snapshot cannot be written", "_opentracker",
		"inside tracker.rootdir /etc/opentracker", "snapshot.path off"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output does not say %q:\n%s", want, out)
		}
	}
}
