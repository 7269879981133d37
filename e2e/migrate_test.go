package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"herald/bencode"
	"herald/internal/heraldtest"
)

// debianConf is the config file of Debian's opentracker package: a
// whitelist, a chroot into /etc/opentracker and the user _opentracker.
const debianConf = "/etc/opentracker/opentracker.conf"

// TestMigratingFromDebianOpentracker follows docs/migrating-from-opentracker.md
// with Debian's own config file: opentracker runs with it, is stopped,
// and herald starts with the same arguments, first stopping with the words
// the page quotes, then serving once the state file is settled as the page
// says. Both refuse a torrent that is not on the (empty) shipped whitelist.
func TestMigratingFromDebianOpentracker(t *testing.T) {
	_, err := os.Stat(debianConf)
	requireClient(t, "opentracker (Debian's package and its config)", err == nil)
	if os.Geteuid() != 0 {
		t.Skip("needs root: the config chroots and drops to _opentracker")
	}
	port := strconv.Itoa(heraldtest.FreePort(t, "127.0.0.1"))
	addr := net.JoinHostPort("127.0.0.1", port)
	args := []string{"-f", debianConf, "-i", "127.0.0.1", "-p", port, "-P", port}

	ot := heraldtest.StartProcess(t, t.TempDir(), "/usr/bin/opentracker", args...)
	waitRefused(t, addr, "opentracker")
	ot.Signal(syscall.SIGINT) // as Debian's unit stops it

	// The same arguments: herald stops at start and says what to change.
	h := heraldtest.Run(t, args...)
	select {
	case <-h.Exited():
	case <-time.After(heraldtest.Timeout):
		t.Fatal("herald with Debian's config and no writable state file did not stop at start")
	}
	for _, want := range []string{"snapshot.path /etc/opentracker/herald.snapshot cannot be written", "_opentracker", "snapshot.path off"} {
		if !strings.Contains(h.Output(), want) {
			t.Errorf("herald's start does not say %q, as the migration page quotes:\n%s", want, h.Output())
		}
	}

	// The page's second way: no state, as opentracker.
	h = heraldtest.Start(t, addr, append(args, "-snapshot", "off")...)
	waitRefused(t, addr, "herald")
}

// waitRefused announces an unlisted torrent over HTTP until the tracker
// answers, and requires a refusal.
func waitRefused(t *testing.T, addr, tracker string) {
	t.Helper()
	url := fmt.Sprintf("http://%s/announce?info_hash=%s&peer_id=-HE0000-migratemigra&port=6881&left=0", addr, strings.Repeat("%EE", 20))
	deadline := time.Now().Add(heraldtest.Timeout)
	for {
		resp, err := http.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			v, err := bencode.Decode(body)
			d, _ := v.(map[string]any)
			if err != nil || d["failure reason"] == nil {
				t.Fatalf("%s answered an announce for a torrent off the whitelist with %q, want a refusal", tracker, body)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer on %s: %v", tracker, addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
