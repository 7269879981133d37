package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"herald/internal/heraldtest"
	"herald/internal/servetest"
)

func wsModulesInstalled(packages ...string) bool {
	if _, err := exec.LookPath("node"); err != nil {
		return false
	}
	for _, p := range packages {
		if _, err := os.Stat(filepath.Join(wsClientDir, "node_modules", p, "package.json")); err != nil {
			return false
		}
	}
	return heraldtest.StatDirs(wsClientDir) == nil
}

// startHeraldCluster runs n heralds that share their swarms through one
// NATS server (embedded in the test), and returns once each is connected.
// Their WebSocket interval is short: should a WebRTC attempt fail on a
// loaded machine, the clients re-announce with fresh offers within seconds.
func startHeraldCluster(t *testing.T, n int) []*heraldtest.Herald {
	t.Helper()
	nats := heraldtest.StartNATS(t)
	hs := make([]*heraldtest.Herald, n)
	for i := range hs {
		hs[i] = startHerald(t, "127.0.0.1", "-snapshot", "off", "-ws-interval", "5s",
			"-cluster-nats-url", nats, "-cluster-flush", "100ms", "-cluster-node", fmt.Sprintf("herald-%d", i))
	}
	for _, h := range hs {
		waitMetric(t, h, "herald_cluster_connected", 1)
	}
	return hs
}

// waitMetric waits until h's /metrics shows series at want.
func waitMetric(t *testing.T, h *heraldtest.Herald, series string, want int) {
	t.Helper()
	servetest.WaitFor(t, 20*time.Second, func() error {
		v, err := heraldMetric(h.Addr, series)
		if err == nil && v != want {
			err = fmt.Errorf("%s: %s %d, want %d", h.Addr, series, v, want)
		}
		return err
	})
}

func metric(t *testing.T, h *heraldtest.Herald, series string) int {
	t.Helper()
	v, err := heraldMetric(h.Addr, series)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

const (
	remoteWebPeers = `herald_cluster_webtorrent_peers{holder="remote"}`
	offersOut      = `herald_cluster_webtorrent_relayed_total{direction="out",what="offer"}`
	offersIn       = `herald_cluster_webtorrent_relayed_total{direction="in",what="offer"}`
	answersOut     = `herald_cluster_webtorrent_relayed_total{direction="out",what="answer"}`
	answersIn      = `herald_cluster_webtorrent_relayed_total{direction="in",what="answer"}`
	wsAccepted     = `herald_ws_connections_accepted_total`
)

// Issue 13 item 1: two npm bittorrent-tracker clients in WebSocket mode,
// each in its own node process with node WebRTC, announce to different
// instances of a three-instance cluster. The leecher's offer crosses to
// the seeder's instance and the answer comes back; the two open a WebRTC
// data channel and exchange a message; the third instance gets neither.
func TestNPMClientsAcrossInstances(t *testing.T) {
	requireClient(t, "npm bittorrent-tracker and @roamhq/wrtc ("+wsClientDir+")", wsModulesInstalled("bittorrent-tracker", "@roamhq/wrtc"))
	hs := startHeraldCluster(t, 3)
	testWebTorrentPair(t, "ws://"+hs[0].Addr+"/announce", "ws://"+hs[1].Addr+"/announce")
	checkRelays(t, hs)
}

// checkRelays checks that offers and answers crossed between hs[0] and
// hs[1] (either peer may offer first: seeders send offers too), each
// client over one connection, and that hs[2] relayed nothing.
func checkRelays(t *testing.T, hs []*heraldtest.Herald) {
	t.Helper()
	for _, series := range []string{wsAccepted, offersOut, offersIn, answersOut, answersIn} {
		v := metric(t, hs[0], series) + metric(t, hs[1], series)
		if series == wsAccepted && v != 2 || v < 1 {
			t.Errorf("%s: %d on the clients' instances, want 2 connections, at least 1 relay", series, v)
		}
		if v := metric(t, hs[2], series); v != 0 {
			t.Errorf("the third instance: %s %d, want 0", series, v)
		}
	}
}

// Issue 13 item 1: two WebTorrent clients in headless Chromium, the seeder
// on one instance of a three-instance cluster and the downloader on
// another, share a file; the bytes match. See wstracker's
// TestWebTorrentInChromium for the network namespace; here each herald is
// reached from it through a UNIX socket of its own.
func TestWebTorrentInChromiumAcrossInstances(t *testing.T) {
	tools := true
	for _, tool := range []string{"/usr/bin/chromium", "unshare", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			tools = false
		}
	}
	tools = tools && exec.Command("unshare", "--net", "true").Run() == nil
	requireClient(t, "chromium, unshare --net, ip, and webtorrent and playwright-core ("+wsClientDir+")",
		tools && wsModulesInstalled("webtorrent", "playwright-core"))
	hs := startHeraldCluster(t, 3)
	dir := t.TempDir()
	sockets := []string{unixBridge(t, filepath.Join(dir, "seeder.sock"), hs[0].Addr), unixBridge(t, filepath.Join(dir, "leecher.sock"), hs[1].Addr)}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "--net", "sh", "-c", `ip link set lo up && exec node webtorrent-browser.mjs "$0" "$1"`, sockets[0], sockets[1])
	cmd.Dir = wsClientDir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// The script exits 0 only when the downloaded bytes' SHA-256 is the
	// seeded bytes'; it prints both digests.
	err := cmd.Run()
	t.Logf("webtorrent-browser.mjs: %s", bytes.TrimSpace(out.Bytes()))
	var r struct{ Seeded, Downloaded struct{ Digest string } }
	last := bytes.TrimSpace(out.Bytes())
	last = last[bytes.LastIndexByte(last, '\n')+1:]
	if jerr := json.Unmarshal(last, &r); err != nil || jerr != nil || r.Downloaded.Digest != r.Seeded.Digest {
		t.Fatalf("webtorrent-browser.mjs: %v, %v: seeded %q, downloaded %q", err, jerr, r.Seeded.Digest, r.Downloaded.Digest)
	}
	checkRelays(t, hs)
}

// unixBridge listens on the UNIX socket path and forwards each connection
// to the TCP address addr, until the test ends.
func unixBridge(t *testing.T, path, addr string) string {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				u, err := net.Dial("tcp", addr)
				if err != nil {
					return
				}
				defer u.Close()
				go func() {
					io.Copy(u, c)
					u.(*net.TCPConn).CloseWrite()
				}()
				io.Copy(c, u)
			}()
		}
	}()
	return path
}
