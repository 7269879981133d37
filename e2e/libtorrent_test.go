package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"herald/bencode"

	"herald/internal/heraldtest"
)

// debianPython is the interpreter Debian's python3-libtorrent is built for;
// the python3 first on PATH may be another one.
const debianPython = "/usr/bin/python3"

const peerScript = "testdata/libtorrent_peer.py"

// transferDeadline bounds each client's wait for a download. The scripts get
// it as their own deadline and the test waits 10 s longer, so that on failure
// a script has ended and printed its alerts.
const transferDeadline = 60 * time.Second

// seconds formats d as a command-line argument in whole seconds.
func seconds(d time.Duration) string { return strconv.Itoa(int(d / time.Second)) }

var libtorrentInstalled = sync.OnceValue(func() bool {
	return exec.Command(debianPython, "-c", "import libtorrent").Run() == nil
})

// TestLibtorrentDownload has a libtorrent seeder and a libtorrent leecher find
// each other through herald and checks that the leecher gets the file, for
// HTTP and UDP trackers on IPv4 and IPv6.
func TestLibtorrentDownload(t *testing.T) {
	requireClient(t, "python3-libtorrent", libtorrentInstalled())
	for _, family := range []struct{ name, host string }{
		{"ipv4", "127.0.0.1"},
		{"ipv6", "::1"},
	} {
		t.Run(family.name, func(t *testing.T) {
			h := startHerald(t, family.host)
			for _, scheme := range []string{"http", "udp"} {
				t.Run(scheme, func(t *testing.T) {
					testLibtorrentTransfer(t, scheme+"://"+h.Addr+"/announce", family.host, h.Addr)
				})
			}
		})
	}
}

// TestLibtorrentDownloadOpentracker runs the same transfer through Debian's
// opentracker. It checks the client driver itself: when it passes and
// TestLibtorrentDownload fails, the fault is herald's.
func TestLibtorrentDownloadOpentracker(t *testing.T) {
	requireClient(t, "python3-libtorrent", libtorrentInstalled())
	const opentracker = "/usr/bin/opentracker"
	_, err := os.Stat(opentracker)
	requireClient(t, "opentracker", err == nil)
	for _, scheme := range []string{"http", "udp"} {
		t.Run(scheme, func(t *testing.T) {
			// Debian's build only serves info hashes on its whitelist, read at
			// start, so the torrent is made first.
			dir := t.TempDir()
			data, dataFile := writePayload(t, dir, 1<<20)
			port := heraldtest.FreePort(t, "127.0.0.1")
			addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
			torrent := filepath.Join(dir, "payload.torrent")
			infoHash := makeTorrent(t, torrent, dataFile, scheme+"://"+addr+"/announce")
			startOpentracker(t, opentracker, port, infoHash)
			transferAndCheck(t, dir, torrent, data, "127.0.0.1", addr, infoHash)
		})
	}
}

func testLibtorrentTransfer(t *testing.T, trackerURL, bindIP, scrapeAddr string) {
	dir := t.TempDir()
	data, dataFile := writePayload(t, dir, 1<<20)
	torrent := filepath.Join(dir, "payload.torrent")
	infoHash := makeTorrent(t, torrent, dataFile, trackerURL)
	transferAndCheck(t, dir, torrent, data, bindIP, scrapeAddr, infoHash)
}

// transferAndCheck starts a libtorrent seeder, then a libtorrent leecher in
// its own process, and checks that the leecher downloads the file. While both
// run, a scrape must show two seeders and one download; after both sent
// "stopped", none.
func transferAndCheck(t *testing.T, dir, torrent string, data []byte, bindIP, scrapeAddr string, infoHash [20]byte) {
	t.Helper()
	seeder := startPeerScript(t, "seed", torrent, filepath.Join(dir, "seed"), bindIP, seconds(2*transferDeadline), "0")
	seeder.waitLine(t, "ready", transferDeadline+10*time.Second)
	download := filepath.Join(dir, "download")
	leecher := startPeerScript(t, "leech", torrent, download, bindIP, seconds(transferDeadline))
	leecher.waitLine(t, "finished", transferDeadline+10*time.Second)
	checkDownload(t, filepath.Join(download, "payload.bin"), data)
	wantScrapeHTTP(t, scrapeAddr, infoHash, "while both peers run", 2, 0, 1)
	seeder.stop(t)
	leecher.stop(t)
	wantScrapeHTTP(t, scrapeAddr, infoHash, "after both sent stopped", 0, 0, 1)
}

func checkDownload(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the client reported the download finished, but: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("downloaded file differs from the seeded one (%d bytes, want %d)", len(got), len(want))
	}
}

// writePayload writes size random bytes to dir/seed/payload.bin.
func writePayload(t *testing.T, dir string, size int) ([]byte, string) {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	path := filepath.Join(dir, "seed", "payload.bin")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return data, path
}

// makeTorrent writes a private torrent for dataFile announcing to trackerURL
// and returns its info hash.
func makeTorrent(t *testing.T, torrent, dataFile, trackerURL string) [20]byte {
	t.Helper()
	out, err := exec.Command(debianPython, peerScript, "make", torrent, dataFile, trackerURL).CombinedOutput()
	if err != nil {
		t.Fatalf("making the torrent: %v\n%s", err, out)
	}
	var ih [20]byte
	if n, err := hex.Decode(ih[:], bytes.TrimSpace(out)); err != nil || n != 20 {
		t.Fatalf("making the torrent: want a hex info hash, got %q", out)
	}
	return ih
}

// peerProcess is one running libtorrent_peer.py in transfer or seed mode.
type peerProcess struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr heraldtest.LogBuffer
	done   chan struct{}
	err    error // from Wait, valid once done is closed
}

func startPeerScript(t *testing.T, args ...string) *peerProcess {
	t.Helper()
	if err := statScripts(); err != nil {
		t.Fatal(err)
	}
	p := &peerProcess{lines: make(chan string, 8), done: make(chan struct{})}
	p.cmd = clientCommand(debianPython, append([]string{peerScript}, args...)...)
	p.cmd.Stderr = &p.stderr
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", peerScript, err)
	}
	go func() {
		lines := bufio.NewScanner(stdout)
		for lines.Scan() {
			p.lines <- lines.Text()
		}
		close(p.lines)
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stdin.Close()
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("libtorrent %s alerts:\n%s", args[0], p.stderr.String())
		}
	})
	return p
}

// waitLine waits for the script's next stdout line, which must start with
// prefix, and returns the rest.
func (p *peerProcess) waitLine(t *testing.T, prefix string, timeout time.Duration) string {
	t.Helper()
	select {
	case line, ok := <-p.lines:
		if !ok {
			<-p.done
			t.Fatalf("libtorrent_peer.py exited (%v) before printing %q", p.err, prefix)
		}
		rest, found := strings.CutPrefix(line, prefix+" ")
		if !found {
			t.Fatalf("libtorrent_peer.py printed %q, want %q", line, prefix)
		}
		return rest
	case <-time.After(timeout):
		t.Fatalf("libtorrent_peer.py printed no %q within %v", prefix, timeout)
	}
	return ""
}

// stop closes the script's stdin, so its peers send "stopped" and it exits,
// and fails the test unless it exits 0 (every stopped announce sent).
func (p *peerProcess) stop(t *testing.T) {
	t.Helper()
	p.stdin.Close()
	select {
	case <-p.done:
		if p.err != nil {
			t.Fatalf("libtorrent_peer.py did not send stopped and exit cleanly: %v", p.err)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("libtorrent_peer.py did not exit within 15 s of stdin closing")
	}
}

// wantScrapeHTTP scrapes one info hash over HTTP until its counts are the
// wanted ones, for up to 10 s: clients send some announces, such as
// "completed", a moment after the event a test waits for. addr is the
// tracker's host:port, followed by /KEY when it needs a key.
func wantScrapeHTTP(t *testing.T, addr string, infoHash [20]byte, when string, complete, incomplete, downloaded int64) {
	t.Helper()
	want := scrapeCounts{complete, incomplete, downloaded}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := scrapeHTTP(addr, infoHash)
		if err == nil && got == want {
			return
		}
		if time.Now().After(deadline) {
			if err != nil {
				t.Fatalf("scrape %s: %v", when, err)
			}
			t.Fatalf("scrape %s: complete, incomplete, downloaded = %v, want %v", when, got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type scrapeCounts struct{ complete, incomplete, downloaded int64 }

func scrapeHTTP(addr string, infoHash [20]byte) (scrapeCounts, error) {
	var q strings.Builder
	for _, b := range infoHash {
		fmt.Fprintf(&q, "%%%02X", b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/scrape?info_hash="+q.String(), nil)
	if err != nil {
		return scrapeCounts{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return scrapeCounts{}, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		return scrapeCounts{}, fmt.Errorf("status %s, %v, body %q", resp.Status, err, body)
	}
	v, err := bencode.Decode(body)
	if err != nil {
		return scrapeCounts{}, fmt.Errorf("%w in %q", err, body)
	}
	files, _ := v.(map[string]any)["files"].(map[string]any)
	counts, ok := files[string(infoHash[:])].(map[string]any)
	if !ok {
		return scrapeCounts{}, fmt.Errorf("no entry for the info hash in %q", body)
	}
	c := scrapeCounts{}
	for key, n := range map[string]*int64{"complete": &c.complete, "incomplete": &c.incomplete, "downloaded": &c.downloaded} {
		if *n, ok = counts[key].(int64); !ok {
			return scrapeCounts{}, fmt.Errorf("no integer %q in %q", key, body)
		}
	}
	return c, nil
}

// startOpentracker runs Debian's opentracker on 127.0.0.1:port (TCP and UDP)
// serving only infoHash, with any further arguments in extra, and stops it
// when the test ends.
func startOpentracker(t *testing.T, bin string, port int, infoHash [20]byte, extra ...string) {
	t.Helper()
	// opentracker drops to user nobody, who must be able to read the list.
	dir, err := os.MkdirTemp("", "herald-e2e-opentracker-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	whitelist := filepath.Join(dir, "whitelist")
	if err := os.WriteFile(whitelist, []byte(hex.EncodeToString(infoHash[:])+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := strconv.Itoa(port)
	args := append([]string{"-i", "127.0.0.1", "-p", p, "-P", p, "-w", whitelist, "-u", "nobody"}, extra...)
	ot := heraldtest.StartProcess(t, dir, bin, args...)
	addr := net.JoinHostPort("127.0.0.1", p)
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			conn.Close()
			return
		}
		if !ot.Running() || time.Now().After(deadline) {
			t.Fatalf("opentracker did not accept TCP on %s within 10 s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
