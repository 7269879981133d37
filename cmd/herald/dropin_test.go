package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"herald/bencode"
	"herald/internal/heraldtest"
	"herald/internal/servetest"
	"herald/swarm"
)

// announceReply returns the decoded reply and its failure reason, if any.
func announceReply(t *testing.T, base string, h swarm.InfoHash, port int) (map[string]any, string) {
	t.Helper()
	return announceReplyURL(t, announceURL(base, h, port, 1, 50))
}

// announceReplyURL is announceReply for any request URL u.
func announceReplyURL(t *testing.T, u string) (map[string]any, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	v, err := bencode.Decode(body)
	if err != nil {
		t.Fatalf("reply %q: %v", body, err)
	}
	d := v.(map[string]any)
	fr, _ := d["failure reason"].(string)
	return d, fr
}

func hexOf(h swarm.InfoHash) string { return hex.EncodeToString(h[:]) }

// Issue 5: an opentracker config file of ours, with a whitelist, is served
// as configured; issue 15: a hash written to its access.fifo_add FIFO, as
// opentracker's scripts do, is served from then on.
func TestServesOpentrackerConfig(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "whitelist")
	os.WriteFile(list, []byte("# allowed torrents\n"+hexOf(hashOf(1))+" first\n"), 0o644)
	port := freePort(t)
	conf := filepath.Join(dir, "opentracker.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(`# opentracker.conf
listen.tcp_udp 127.0.0.1:%d
access.whitelist %s
access.fifo_add %s
tracker.interval 10m
snapshot.path off
`, port, list, filepath.Join(dir, "adder.fifo"))), 0o644)
	h := heraldtest.Start(t, fmt.Sprintf("127.0.0.1:%d", port), "-f", conf)

	d, fr := announceReply(t, h.URL, hashOf(1), 5000)
	if fr != "" {
		t.Fatalf("listed torrent refused: %s", fr)
	}
	if iv := d["interval"].(int64); iv < 540 || iv > 660 {
		t.Errorf("interval %d, want 10m ± 10%%", iv)
	}
	if _, fr := announceReply(t, h.URL, hashOf(2), 5000); !strings.Contains(fr, "not authorized") {
		t.Errorf("unlisted torrent: failure %q, want the not-authorized failure", fr)
	}
	fifo, err := os.OpenFile(filepath.Join(dir, "adder.fifo"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(fifo, hexOf(hashOf(2)))
	fifo.Close()
	servetest.WaitFor(t, 5*time.Second, func() error {
		if _, fr := announceReply(t, h.URL, hashOf(2), 5000); fr != "" {
			return errors.New(fr)
		}
		return nil
	})
	if data, _ := os.ReadFile(list); !strings.Contains(string(data), hexOf(hashOf(2))) {
		t.Errorf("the hash from the FIFO is not in the list file:\n%s", data)
	}
}

func TestBadConfigLineStopsStart(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "bad.conf")
	os.WriteFile(conf, []byte("listen.tcp_udp 127.0.0.1:0\n\ntracker.intervall 30m\n"), 0o644)
	out, err := exec.Command(heraldtest.Binary(t), "-f", conf).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Fatalf("exit %v, want status 2", err)
	}
	if want := conf + ":3: tracker.intervall: unknown directive"; !strings.Contains(string(out), want) {
		t.Fatalf("output %q does not contain %q", out, want)
	}
}

// Issue 5: reloading the list under load fails no request and loses no peer.
func TestListReloadUnderLoad(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "whitelist")
	write := func(n int) {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "%s\n", hexOf(hashOf(i)))
		}
		os.WriteFile(list+".new", []byte(b.String()), 0o644)
		os.Rename(list+".new", list)
	}
	write(10)
	port := freePort(t)
	h := startHerald(t, port, "-w", list, "-snapshot", "off", "-access-reload", "50ms")
	for i := range 10 {
		for p := range 5 {
			if _, fr := announceReply(t, h.URL, hashOf(i), 6000+p); fr != "" {
				t.Fatal(fr)
			}
		}
	}
	var wg sync.WaitGroup
	var failures sync.Map
	var served atomic.Int64
	stop := make(chan struct{})
	for w := range 2 {
		wg.Go(func() {
			client := &http.Client{}
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get(announceURL(h.URL, hashOf(n%10), 6000+n%5, 1, 50))
				if err != nil {
					failures.Store(fmt.Sprint(w, n), err.Error())
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if strings.Contains(string(body), "failure") {
					failures.Store(fmt.Sprint(w, n), string(body))
				}
				served.Add(1)
			}
		})
	}
	for round := range 20 {
		write(10 + round)
		h.Cmd.Process.Signal(syscall.SIGHUP)
		time.Sleep(30 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	failures.Range(func(k, v any) bool { t.Errorf("request %v failed: %v", k, v); return false })
	if served.Load() < 100 {
		t.Errorf("only %d announces during the reloads; the test proves little", served.Load())
	}
	for i := range 10 {
		d := get(t, h.URL+"/scrape?info_hash="+url.QueryEscape(hashKey(i)))
		f := d["files"].(map[string]any)[hashKey(i)].(map[string]any)
		if f["incomplete"] != int64(5) {
			t.Errorf("torrent %d has %v leechers after the reloads, want 5", i, f["incomplete"])
		}
	}
	if _, fr := announceReply(t, h.URL, hashOf(25), 6000); fr != "" {
		t.Errorf("hash added by the last reload refused: %s", fr)
	}
}

// Issue 5: as root, herald chroots and drops to the configured user after
// binding, and the list is still read (and reloaded) from inside the root.
func TestPrivilegeDrop(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to drop privileges")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	root := t.TempDir()
	os.Chmod(root, 0o755)
	list := filepath.Join(root, "whitelist")
	os.WriteFile(list, []byte(hexOf(hashOf(1))+"\n"), 0o644)
	port := freePort(t)
	h := startHerald(t, port, "-d", root, "-u", "nobody", "-w", list, "-snapshot", "off")

	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", h.Cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(status), "\nUid:\t"+nobody.Uid+"\t"+nobody.Uid) {
		t.Errorf("herald still runs as %q, want uid %s", grepLine(string(status), "Uid:"), nobody.Uid)
	}
	if link, err := os.Readlink(fmt.Sprintf("/proc/%d/root", h.Cmd.Process.Pid)); err != nil || link != root {
		t.Errorf("herald's root is %q (%v), want %s", link, err, root)
	}
	if _, fr := announceReply(t, h.URL, hashOf(1), 7000); fr != "" {
		t.Errorf("listed torrent refused after the drop: %s", fr)
	}
	os.WriteFile(list, []byte(hexOf(hashOf(1))+"\n"+hexOf(hashOf(2))+"\n"), 0o644)
	h.Cmd.Process.Signal(syscall.SIGHUP)
	servetest.WaitFor(t, 10*time.Second, func() error {
		if _, fr := announceReply(t, h.URL, hashOf(2), 7000); fr != "" {
			return fmt.Errorf("list not reloaded inside the chroot: %s", fr)
		}
		return nil
	})
}

// The config file shipped by Debian's opentracker package starts herald as
// it starts opentracker: chrooted into /etc/opentracker as _opentracker,
// whitelist-only with the shipped (empty) list.
func TestDebianConfigStarts(t *testing.T) {
	const conf = "/etc/opentracker/opentracker.conf"
	if _, err := os.Stat(conf); err != nil {
		t.Skip("opentracker not installed (apt-get install opentracker; make test does)")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to drop privileges as the config asks")
	}
	port := freePort(t)
	h := startHerald(t, port, "-f", conf, "-snapshot", "off")
	if _, fr := announceReply(t, h.URL, hashOf(1), 7000); !strings.Contains(fr, "not authorized") {
		t.Errorf("with the shipped empty whitelist an announce got %q, want refused", fr)
	}
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", h.Cmd.Process.Pid))
	u, err := user.Lookup("_opentracker")
	if err == nil && !strings.Contains(string(status), "\nUid:\t"+u.Uid+"\t") {
		t.Errorf("not running as _opentracker: %s", grepLine(string(status), "Uid:"))
	}
}

func grepLine(s, prefix string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

// Issue 5: X-Forwarded-For counts only from a configured proxy; the same
// header from any other client is ignored.
func TestForwardedForOnlyFromTrustedProxy(t *testing.T) {
	port := freePort(t)
	h := startHerald(t, port, "-proxy-net", "127.0.0.2", "-snapshot", "off")
	from := func(src string) *http.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	}
	send := func(c *http.Client, peerPort int) {
		req, _ := http.NewRequest("GET", announceURL(h.URL, hashOf(1), peerPort, 1, 0), nil)
		req.Header.Set("X-Forwarded-For", "203.0.113.50")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	send(from("127.0.0.1"), 1001) // a client spoofing the header
	send(from("127.0.0.2"), 1002) // the trusted proxy
	d := get(t, announceURL(h.URL, hashOf(1), 1003, 1, 50))
	peers := d["peers"].(string)
	got := map[string]bool{}
	for j := 0; j+6 <= len(peers); j += 6 {
		got[netip.AddrPortFrom(netip.AddrFrom4([4]byte([]byte(peers[j:j+4]))), uint16(peers[j+4])<<8|uint16(peers[j+5])).String()] = true
	}
	if !got["127.0.0.1:1001"] || !got["203.0.113.50:1002"] || len(got) != 2 {
		t.Fatalf("peers %v, want the spoofer at its own address and the proxied client at 203.0.113.50", got)
	}
}

// Issue 5: stats, metrics and the dashboard are served only to the
// configured networks; by default to this machine only.
func TestStatsAccess(t *testing.T) {
	status := func(base, path string) int {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	open := startHerald(t, freePort(t), "-snapshot", "off")
	closed := startHerald(t, freePort(t), "-snapshot", "off", "-stats-net", "10.0.0.0/8", "-stats-path", "admin")
	for _, path := range []string{"/stats?mode=peer", "/metrics", "/dashboard"} {
		if got := status(open.URL, path); got != 200 {
			t.Errorf("default config, loopback client: %s answered %d, want 200", path, got)
		}
	}
	for _, path := range []string{"/admin?mode=peer", "/metrics", "/dashboard"} {
		if got := status(closed.URL, path); got != 403 {
			t.Errorf("stats for 10.0.0.0/8 only: %s answered %d to 127.0.0.1, want 403", path, got)
		}
	}
}
