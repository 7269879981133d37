package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"herald/internal/heraldtest"
)

// trackerCase is one family of trackers a client test runs against: a herald
// listening on host, and the tracker URL schemes the client supports there.
type trackerCase struct {
	family  string
	host    string
	schemes []string
}

// forEachTracker runs test once per family and scheme, with one herald per
// family.
func forEachTracker(t *testing.T, cases []trackerCase, test func(t *testing.T, h *heraldtest.Herald, scheme string)) {
	for _, c := range cases {
		t.Run(c.family, func(t *testing.T) {
			h := startHerald(t, c.host)
			for _, scheme := range c.schemes {
				t.Run(scheme, func(t *testing.T) { test(t, h, scheme) })
			}
		})
	}
}

// TestTransmissionDownload has transmission-cli download a file from a
// libtorrent seeder that it finds through herald.
func TestTransmissionDownload(t *testing.T) {
	requireClient(t, "python3-libtorrent", libtorrentInstalled())
	bin, err := exec.LookPath("transmission-cli")
	requireClient(t, "transmission-cli", err == nil)
	cases := []trackerCase{
		{"ipv4", "127.0.0.1", []string{"http", "udp"}},
		// Transmission 3.00 cannot reach a UDP tracker over IPv6: it logs
		// "Could not connect to tracker" and sends nothing.
		{"ipv6", "::1", []string{"http"}},
	}
	forEachTracker(t, cases, func(t *testing.T, h *heraldtest.Herald, scheme string) {
		transmissionDownload(t, bin, h.Host, scheme, h.Addr)
	})
}

// transmissionDownload has transmission-cli at bin download a file from a
// libtorrent seeder, both bound to host, through the tracker at
// scheme://tracker/announce (tracker is the address, with a key path
// segment if one is needed).
func transmissionDownload(t *testing.T, bin, host, scheme, tracker string) {
	dir := t.TempDir()
	// Transmission fetches slowly from libtorrent on loopback (about
	// 200 kB/s), so its file is smaller.
	data, dataFile := writePayload(t, dir, 256<<10)
	torrent := filepath.Join(dir, "payload.torrent")
	infoHash := makeTorrent(t, torrent, dataFile, scheme+"://"+tracker+"/announce")
	// Transmission 3.00 never dials a loopback peer, so the seeder
	// re-announces every second, learns Transmission's address from
	// herald and connects to it.
	seeder := startPeerScript(t, "seed", torrent, filepath.Join(dir, "seed"), host, seconds(2*transferDeadline), "1")
	seeder.waitLine(t, "ready", transferDeadline+10*time.Second)

	config := filepath.Join(dir, "transmission")
	if err := os.MkdirAll(config, 0o755); err != nil {
		t.Fatal(err)
	}
	settings := `{"dht-enabled": false, "lpd-enabled": false, "pex-enabled": false, "utp-enabled": false,
		"port-forwarding-enabled": false, "message-level": 3}`
	if err := os.WriteFile(filepath.Join(config, "settings.json"), []byte(settings), 0o644); err != nil {
		t.Fatal(err)
	}
	download := filepath.Join(dir, "download")
	port := strconv.Itoa(heraldtest.FreePort(t, host))
	tr := heraldtest.StartProcess(t, dir, bin, "-g", config, "-w", download, "-p", port, "-M", torrent)
	waitForDownload(t, tr, filepath.Join(download, "payload.bin"), data)
	wantScrapeHTTP(t, tracker, infoHash, "after Transmission completed", 2, 0, 1)

	// The seeder leaves; Transmission, a seeder now, stays. Transmission
	// itself is not checked for "stopped": on SIGINT transmission-cli
	// 3.00 sends it only if its announce timer fires between pausing and
	// closing (seen on the wire with herald and with opentracker alike).
	seeder.stop(t)
	wantScrapeHTTP(t, tracker, infoHash, "after the seeder stopped", 1, 0, 1)
	// transmission-cli quits cleanly on SIGINT; SIGTERM kills it.
	if !tr.Signal(os.Interrupt) {
		t.Errorf("transmission-cli did not exit within %v of SIGINT", heraldtest.Timeout)
	}
}

// TestAria2Download has aria2c download a file from a libtorrent seeder that
// it finds through herald.
func TestAria2Download(t *testing.T) {
	requireClient(t, "python3-libtorrent", libtorrentInstalled())
	bin, err := exec.LookPath("aria2c")
	requireClient(t, "aria2c (Debian aria2)", err == nil)
	cases := []trackerCase{
		{"ipv4", "127.0.0.1", []string{"http", "udp"}},
		// aria2 sends UDP tracker requests from its IPv4 DHT socket only.
		{"ipv6", "::1", []string{"http"}},
	}
	forEachTracker(t, cases, func(t *testing.T, h *heraldtest.Herald, scheme string) {
		dir := t.TempDir()
		data, dataFile := writePayload(t, dir, 1<<20)
		torrent := filepath.Join(dir, "payload.torrent")
		infoHash := makeTorrent(t, torrent, dataFile, scheme+"://"+h.Addr+"/announce")
		seeder := startPeerScript(t, "seed", torrent, filepath.Join(dir, "seed"), h.Host, seconds(2*transferDeadline), "0")
		seeder.waitLine(t, "ready", transferDeadline+10*time.Second)

		download := filepath.Join(dir, "download")
		// aria2 uses udp:// trackers only with its DHT on; the torrent is
		// private and the DHT has no node to start from, so herald is still
		// the only way to the seeder. aria2 announces "completed" only if it
		// seeds after the download (with --seed-time=0 it goes straight to
		// "stopped"), so it seeds for 3 s, then exits.
		ar := heraldtest.StartProcess(t, dir, bin, "--no-conf", "--dir="+download, "--seed-time=0.05",
			"--enable-dht=true", "--enable-dht6=false",
			"--dht-listen-port="+strconv.Itoa(heraldtest.FreePort(t, "127.0.0.1")), "--dht-file-path="+filepath.Join(dir, "dht.dat"),
			"--listen-port="+strconv.Itoa(heraldtest.FreePort(t, h.Host)),
			"--bt-enable-lpd=false", "--enable-peer-exchange=false", "--file-allocation=none",
			"--summary-interval=0", "--console-log-level=notice", "--log=-", "--log-level=info",
			torrent)
		select {
		case <-ar.Exited():
			if ar.Err() != nil {
				t.Fatalf("aria2c failed: %v", ar.Err())
			}
		case <-time.After(transferDeadline):
			t.Fatalf("aria2c did not finish the download within %v", transferDeadline)
		}
		checkDownload(t, filepath.Join(download, "payload.bin"), data)
		wantScrapeHTTP(t, h.Addr, infoHash, "after aria2 completed and stopped", 1, 0, 1)
		seeder.stop(t)
		wantScrapeHTTP(t, h.Addr, infoHash, "after the seeder stopped", 0, 0, 1)
	})
}

// waitForDownload waits up to transferDeadline until the file at path holds
// exactly want, failing early if the client exits.
func waitForDownload(t *testing.T, client *heraldtest.Process, path string, want []byte) {
	t.Helper()
	deadline := time.Now().Add(transferDeadline)
	for {
		if got, err := os.ReadFile(path); err == nil && bytes.Equal(got, want) {
			return
		}
		if !client.Running() {
			t.Fatalf("%s exited (%v) before %s was complete", filepath.Base(client.Name), client.Err(), path)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s was not complete within %v", path, transferDeadline)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
