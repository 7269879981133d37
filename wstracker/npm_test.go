package wstracker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"herald/internal/servetest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"herald/counters"
	"herald/tracker"
)

// requireNodeModules skips the test (or fails it under
// E2E_REQUIRE_CLIENTS=1, as `make test` sets) unless node and the npm
// packages are installed in testdata/node_modules.
func requireNodeModules(t *testing.T, packages ...string) {
	t.Helper()
	missing := func(what string) {
		t.Helper()
		missingTool(t, what+" (run: cd wstracker/testdata && npm ci --ignore-scripts)")
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing("node (Node.js 20)")
	}
	for _, p := range packages {
		if _, err := os.Stat(filepath.Join("testdata", "node_modules", p, "package.json")); err != nil {
			missing("npm package " + p)
		}
	}
}

// trackerClientResult is what testdata/trackerclient.mjs prints.
type trackerClientResult struct {
	Name     string
	Error    string
	Warnings []string
	Peer     string
	Received string
	Update   struct{ Complete, Incomplete int }
	Scrape   struct{ Complete, Incomplete, Downloaded int }
}

// TestNPMClientsConnectThroughTracker runs two npm bittorrent-tracker
// clients in WebSocket mode, each in its own node process with its own
// connection and a real node WebRTC stack (@roamhq/wrtc). The leecher's
// offer is relayed to the seeder, the seeder's answer back, and the two
// open a WebRTC data channel over loopback and exchange a message.
func TestNPMClientsConnectThroughTracker(t *testing.T) {
	requireNodeModules(t, "bittorrent-tracker", "@roamhq/wrtc")
	// A short interval: should a WebRTC attempt fail on a loaded machine,
	// the clients re-announce with fresh offers within seconds.
	s := startServer(t, Config{Tracker: testTracker(t, tracker.Config{Interval: 5 * time.Second})})
	url := "ws://" + s.Addr().String() + "/announce"
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()

	run := func(name, left string) (*exec.Cmd, *bytes.Buffer) {
		cmd := exec.CommandContext(ctx, "node", "--import", "./webrtc-polyfill-loader.mjs", "trackerclient.mjs", url, name, left)
		cmd.Dir = "testdata"
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, &out
	}
	result := func(cmd *exec.Cmd, out *bytes.Buffer) trackerClientResult {
		t.Helper()
		err := cmd.Wait()
		var r trackerClientResult
		if jerr := json.Unmarshal(bytes.TrimSpace(out.Bytes()), &r); jerr != nil || err != nil || r.Error != "" {
			t.Fatalf("trackerclient.mjs: %v\n%s", err, out)
		}
		t.Logf("%s: %s", r.Name, bytes.TrimSpace(out.Bytes()))
		return r
	}

	seederCmd, seederOut := run("seeder", "0")
	// The leecher's offers need someone to go to. Node and its WebRTC
	// stack take seconds to start on a loaded machine (5 s was too short in CI).
	servetest.WaitFor(t, 30*time.Second, func() error {
		if n := gauge(s.handler, counters.Peers); n != 1 {
			return fmt.Errorf("%d peers, want the seeder", n)
		}
		return nil
	})
	leecherCmd, leecherOut := run("leecher", "1000")
	leecher := result(leecherCmd, leecherOut)
	seeder := result(seederCmd, seederOut)

	if seeder.Received != "hello from leecher" || leecher.Received != "hello from seeder" {
		t.Fatalf("data channel messages: seeder got %q, leecher got %q", seeder.Received, leecher.Received)
	}
	if seeder.Peer != "-WW0100-leecher-----" || leecher.Peer != "-WW0100-seeder------" {
		t.Fatalf("peer ids: seeder saw %q, leecher saw %q", seeder.Peer, leecher.Peer)
	}
	if leecher.Update.Complete != 1 || leecher.Update.Incomplete != 1 {
		t.Fatalf("leecher's announce reply: %+v, want 1 seeder and 1 leecher", leecher.Update)
	}
	// Each client scrapes once its message arrived, then leaves (a stopped
	// announce): the one that scrapes first does so while both are there,
	// the other may find the first gone.
	both := func(c struct{ Complete, Incomplete, Downloaded int }) bool {
		return c.Complete == 1 && c.Incomplete == 1
	}
	if !both(seeder.Scrape) && !both(leecher.Scrape) {
		t.Fatalf("scrapes: seeder's %+v, leecher's %+v; want one to see 1 seeder and 1 leecher", seeder.Scrape, leecher.Scrape)
	}
	if len(seeder.Warnings)+len(leecher.Warnings) > 0 {
		t.Fatalf("client warnings: %q %q", seeder.Warnings, leecher.Warnings)
	}
	if ev := s.handler.counts.Read().Events[counters.WS]; ev[counters.Accepted] != 2 || ev[counters.OfferRelayed] < 1 || ev[counters.AnswerRelayed] < 1 {
		t.Fatalf("tracker events %v: want 2 connections, offers and answers relayed", ev)
	}
}
