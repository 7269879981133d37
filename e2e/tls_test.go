package e2e

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"herald/bencode"
	"herald/internal/heraldtest"
	"herald/internal/testcert"
)

// rootsFrom is a pool of the PEM certificates in file.
func rootsFrom(t *testing.T, file string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("%s holds no PEM certificate", file)
	}
	return pool
}

// tlsSerial makes a new TLS connection to addr and returns the serial of
// the certificate herald shows, verified against roots for serverName.
func tlsSerial(t *testing.T, addr, serverName string, roots *x509.CertPool) (int64, error) {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
		&tls.Config{RootCAs: roots, ServerName: serverName})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64(), nil
}

// announceOn sends one announce as an HTTP/1.1 keep-alive request on c and
// reads the reply, which must be a bencoded dictionary without a failure.
func announceOn(c net.Conn, r *bufio.Reader, host string, port int) error {
	target := fmt.Sprintf("/announce?info_hash=%s&peer_id=-HE0000-tlstlstlstl1&port=%d&left=0&compact=1",
		strings.Repeat("%AB", 20), port)
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, host); err != nil {
		return err
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return checkAnnounceReply(resp)
}

func checkAnnounceReply(resp *http.Response) error {
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	v, err := bencode.Decode(body)
	if err != nil {
		return fmt.Errorf("reply %q: %w", body, err)
	}
	d, ok := v.(map[string]any)
	if !ok || d["failure reason"] != nil || d["interval"] == nil {
		return fmt.Errorf("reply %q is not a successful announce", body)
	}
	return nil
}

// TestTLSCertificateFiles: herald serves HTTPS announces and wss://
// WebTorrent with a certificate from files, and a certificate replaced on
// disk is served from the next handshake on, after SIGHUP and, without
// one, by the file check, while a client keeps announcing: no announce
// fails, and a connection made before keeps its certificate.
func TestTLSCertificateFiles(t *testing.T) {
	requireClient(t, "npm bittorrent-tracker (e2e/testdata/node)", npmClientInstalled())
	dir := t.TempDir()
	ca := testcert.NewCA(t, dir)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.Issue(t, certFile, keyFile, 1)
	tlsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(heraldtest.FreePort(t, "127.0.0.1")))
	h := startHerald(t, "127.0.0.1", "-listen-tls", tlsAddr,
		"-tls-cert-file", certFile, "-tls-key-file", keyFile, "-snapshot", "off", "-ws-interval", "5s")
	h.WaitTCP(t, tlsAddr)
	roots := rootsFrom(t, ca.File)

	// A client announcing over HTTPS, on new connections, all along.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots}, DisableKeepAlives: true}}
	var announces, failures atomic.Int64
	var lastErr atomic.Value
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			resp, err := client.Get(fmt.Sprintf("https://%s/announce?info_hash=%s&peer_id=-HE0000-loopingpeer1&port=%d&left=1",
				tlsAddr, strings.Repeat("%CD", 20), 7000+i%100))
			if err == nil {
				err = checkAnnounceReply(resp)
				resp.Body.Close()
			}
			announces.Add(1)
			if err != nil {
				failures.Add(1)
				lastErr.Store(err.Error())
			}
		}
	}()

	early, err := tls.Dial("tcp", tlsAddr, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer early.Close()
	earlyReader := bufio.NewReader(early)
	if err := announceOn(early, earlyReader, tlsAddr, 6001); err != nil {
		t.Fatalf("HTTPS keep-alive announce: %v", err)
	}

	waitSerial := func(want int64, how string, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			got, err := tlsSerial(t, tlsAddr, "localhost", roots)
			if err == nil && got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: serial %d (%v) after %v, want %d", how, got, err, within, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitSerial(1, "at start", 5*time.Second)
	ca.Issue(t, certFile, keyFile, 2)
	h.Cmd.Process.Signal(syscall.SIGHUP)
	waitSerial(2, "after SIGHUP", 5*time.Second)
	ca.Issue(t, certFile, keyFile, 3)
	waitSerial(3, "watching the files", 20*time.Second)

	// The connection made at the start still works, on its first certificate.
	if err := announceOn(early, earlyReader, tlsAddr, 6001); err != nil {
		t.Errorf("keep-alive announce after the swaps: %v", err)
	}
	if got := early.ConnectionState().PeerCertificates[0].SerialNumber.Int64(); got != 1 {
		t.Errorf("the connection made before the swaps shows serial %d, want 1", got)
	}
	close(stop)
	<-done
	if failures.Load() > 0 || announces.Load() < 10 {
		t.Errorf("%d of %d announces during the swaps failed (last: %v)", failures.Load(), announces.Load(), lastErr.Load())
	}

	// The npm client (WebTorrent's tracker client) over https, trusting
	// the CA through Node's own setting.
	t.Setenv("NODE_EXTRA_CA_CERTS", ca.File)
	testSwarmLifecycle(t, "https://"+tlsAddr+"/announce", "127.0.0.1")
	wss := "wss://" + tlsAddr + "/announce"
	testWebTorrentPair(t, wss, wss)
}

// wsClientDir holds wstracker's npm WebTorrent tracker client with a real
// node WebRTC stack.
const wsClientDir = "../wstracker/testdata"

// testWebTorrentPair runs two npm bittorrent-tracker clients in WebSocket
// mode (wstracker/testdata/trackerclient.mjs), the seeder against
// seederURL and the leecher against leecherURL: the tracker relays the
// leecher's offer and the seeder's answer, and the two open a WebRTC data
// channel and exchange a message. Herald runs with a short
// websocket.interval, so a leecher that came first re-announces soon.
func testWebTorrentPair(t *testing.T, seederURL, leecherURL string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(wsClientDir, "node_modules", "@roamhq", "wrtc", "package.json")); err != nil {
		requireClient(t, "npm @roamhq/wrtc (wstracker/testdata)", false)
	}
	run := func(url, name, left string) (*exec.Cmd, *bytes.Buffer) {
		cmd := clientCommand("node", "--import", "./webrtc-polyfill-loader.mjs", "trackerclient.mjs", url, name, left)
		cmd.Dir = wsClientDir
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill() })
		return cmd, &out
	}
	received := func(cmd *exec.Cmd, out *bytes.Buffer) string {
		t.Helper()
		err := cmd.Wait()
		var r struct{ Name, Error, Received string }
		if jerr := json.Unmarshal(bytes.TrimSpace(out.Bytes()), &r); jerr != nil || err != nil || r.Error != "" {
			t.Fatalf("trackerclient.mjs: %v\n%s", err, out)
		}
		return r.Received
	}
	// Should the leecher announce first, its offers go nowhere; it sends
	// new ones at herald's next WebSocket interval (5 s here).
	seeder, seederOut := run(seederURL, "seeder", "0")
	leecher, leecherOut := run(leecherURL, "leecher", "1000")
	if got := received(leecher, leecherOut); got != "hello from seeder" {
		t.Errorf("over %s the leecher's data channel got %q", leecherURL, got)
	}
	if got := received(seeder, seederOut); got != "hello from leecher" {
		t.Errorf("over %s the seeder's data channel got %q", seederURL, got)
	}
}
