package wstracker

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"herald/counters"
	"herald/tracker"
)

// TestWebTorrentInChromium has two real WebTorrent clients (the npm
// webtorrent browser bundle) in headless Chromium share a 256 KiB file
// through the tracker: one seeds, the other downloads it over WebRTC,
// having found the seeder only through the tracker's offer and answer
// relay. Chromium runs in a network namespace with only loopback
// (testdata/webtorrent-browser.mjs says why); the tracker, here, reaches
// it through a UNIX socket. The handler is mounted in a plain
// net/http server, as cmd/herald mounts it.
func TestWebTorrentInChromium(t *testing.T) {
	requireNodeModules(t, "webtorrent", "playwright-core")
	for _, tool := range []string{"/usr/bin/chromium", "unshare", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			missingTool(t, tool+" (Debian packages chromium, util-linux, iproute2)")
		}
	}
	if err := exec.Command("unshare", "--net", "true").Run(); err != nil {
		missingTool(t, "permission to create a network namespace (unshare --net: "+err.Error()+")")
	}

	// A short interval makes the clients re-announce, with fresh offers,
	// within seconds should a WebRTC connection attempt fail (ICE can time
	// out on a loaded machine).
	h, err := NewHandler(Config{Tracker: testTracker(t, tracker.Config{Interval: 5 * time.Second}), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "tracker.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer h.Close()
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "--net", "sh", "-c", `ip link set lo up && exec node webtorrent-browser.mjs "$0"`, sock)
	cmd.Dir = "testdata"
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	t.Logf("webtorrent-browser.mjs: %s", bytes.TrimSpace(out.Bytes()))
	var r struct {
		Error  string
		Seeded struct {
			InfoHash string
			Length   int
			Digest   string
		}
		Downloaded struct {
			Length     int
			Downloaded int
			Digest     string
		}
	}
	if jerr := json.Unmarshal(lastLine(out.Bytes()), &r); jerr != nil || err != nil || r.Error != "" {
		t.Fatalf("webtorrent-browser.mjs failed: %v %v %s", err, jerr, r.Error)
	}
	if r.Downloaded.Digest != r.Seeded.Digest || r.Downloaded.Length != 256<<10 || r.Downloaded.Downloaded < 256<<10 {
		t.Fatalf("seeded %+v, downloaded %+v", r.Seeded, r.Downloaded)
	}
	if ev := h.counts.Read().Events[counters.WS]; ev[counters.Accepted] != 2 || ev[counters.OfferRelayed] < 1 || ev[counters.AnswerRelayed] < 1 {
		t.Fatalf("tracker events %v: want 2 browser connections, offers and answers relayed", ev)
	}
}

// missingTool skips the test, or fails it under E2E_REQUIRE_CLIENTS=1 (as
// `make test` sets once it has installed the clients).
func missingTool(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("E2E_REQUIRE_CLIENTS") == "1" {
		t.Fatal(what + " missing")
	}
	t.Skip(what + " missing")
}

func lastLine(b []byte) []byte {
	b = bytes.TrimSpace(b)
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		return b[i+1:]
	}
	return b
}
