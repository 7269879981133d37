package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
)

// Issue 14 item 16: the process_* metrics are still there after the chroot
// into tracker.rootdir, which has no /proc.
func TestProcessMetricsUnderChroot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chroot")
	}
	if _, err := user.Lookup("nobody"); err != nil {
		t.Skip("no user nobody")
	}
	root := t.TempDir()
	os.Chmod(root, 0o755)
	h := startHerald(t, freePort(t), "-d", root, "-u", "nobody", "-snapshot", "off")
	if link, err := os.Readlink(fmt.Sprintf("/proc/%d/root", h.Cmd.Process.Pid)); err != nil || link != root {
		t.Fatalf("herald's root is %q (%v), want %s", link, err, filepath.Clean(root))
	}
	resp, err := http.Get(h.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, name := range []string{"process_cpu_seconds_total", "process_resident_memory_bytes", "process_virtual_memory_bytes",
		"process_open_fds", "process_max_fds", "process_start_time_seconds"} {
		if !strings.Contains(string(body), "\n"+name+" ") {
			t.Errorf("/metrics under the chroot lacks %s", name)
		}
	}
}
