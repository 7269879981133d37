package e2e

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"herald/internal/heraldtest"
	"herald/internal/servetest"
	"herald/internal/testcert"
)

// clientCommand makes the command that runs a client (libtorrent, the npm
// clients); a test can route clients through resolveNames.
var clientCommand = exec.Command

// resolveNames makes the clients started until the test ends resolve name
// to 127.0.0.1: each runs in a mount namespace of its own where a hosts
// file naming it is bound over /etc/hosts (needs root, as make test runs).
func resolveNames(t *testing.T, name string) {
	t.Helper()
	hosts := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(hosts, []byte("127.0.0.1 localhost "+name+"\n::1 localhost\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("unshare", "--mount", "--", "true").CombinedOutput(); err != nil {
		t.Fatalf("unshare --mount (needed to resolve %s for the clients): %v\n%s", name, err, out)
	}
	clientCommand = func(bin string, args ...string) *exec.Cmd {
		return exec.Command("unshare", append([]string{"--mount", "--", "sh", "-c",
			`mount --bind "$0" /etc/hosts && exec "$@"`, hosts, bin}, args...)...)
	}
	t.Cleanup(func() { clientCommand = exec.Command })
}

var errSameCertificate = errors.New("herald still serves the first certificate")

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// certValidity is the lifetime of the certificates pebble issues here: short,
// so that renewal (at two thirds of the lifetime) happens within the test.
const certValidity = 45 * time.Second

// domain is the name herald obtains a certificate for: pebble's DNS
// (pebble-challtestsrv) and the clients' hosts file say 127.0.0.1.
const domain = "tracker.test"

// TestTLSACME obtains a certificate for tracker.test from Debian's pebble (an
// RFC 8555 server) through herald's own ACME client, serves it to
// libtorrent (an https tracker) and to the npm client (https and wss://),
// and renews it before it expires.
func TestTLSACME(t *testing.T) {
	requireClient(t, "pebble", commandExists("pebble") && commandExists("pebble-challtestsrv"))
	requireClient(t, "python3-libtorrent", libtorrentInstalled())
	requireClient(t, "npm bittorrent-tracker (e2e/testdata/node)", npmClientInstalled())
	dir := t.TempDir()
	free := func() string { return strconv.Itoa(heraldtest.FreePort(t, "127.0.0.1")) }

	// Pebble's own HTTPS (its directory) needs a certificate; herald is told
	// to trust its CA with tls.acme_directory_ca.
	ca := testcert.NewCA(t, dir)
	pebbleCert, pebbleKey := filepath.Join(dir, "pebble.pem"), filepath.Join(dir, "pebble.key")
	ca.Issue(t, pebbleCert, pebbleKey, 10)
	dns, directory, management := free(), free(), free()

	// pebble-challtestsrv answers every name with 127.0.0.1 (no AAAA), so
	// pebble validates the domain at herald.
	heraldtest.StartProcess(t, dir, "pebble-challtestsrv", "-dns01", "127.0.0.1:"+dns,
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-management", "127.0.0.1:"+free(),
		"-defaultIPv4", "127.0.0.1", "-defaultIPv6", "")

	tlsAddr := net.JoinHostPort("::", free())
	h := startHerald(t, "127.0.0.1", "-listen-tls", tlsAddr, "-snapshot", "off",
		"-tls-acme-domain", domain,
		"-tls-acme-directory", "https://127.0.0.1:"+directory+"/dir",
		"-tls-acme-directory-ca", ca.File,
		"-tls-acme-cache", filepath.Join(dir, "acme"),
		"-tls-acme-email", "ops@example.org")
	_, tlsPort, _ := net.SplitHostPort(tlsAddr)

	conf, err := json.Marshal(map[string]any{"pebble": map[string]any{
		"listenAddress":             "127.0.0.1:" + directory,
		"managementListenAddress":   "127.0.0.1:" + management,
		"certificate":               pebbleCert,
		"privateKey":                pebbleKey,
		"httpPort":                  h.Port, // HTTP-01 at herald's plain HTTP port
		"tlsPort":                   mustAtoi(t, tlsPort),
		"certificateValidityPeriod": int(certValidity / time.Second),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pebble.json"), conf, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	heraldtest.StartProcess(t, dir, "pebble", "-config", "pebble.json", "-dnsserver", "127.0.0.1:"+dns)

	// Pebble makes a new root for each run; fetch it to trust what it issues.
	mgmt := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: rootsFrom(t, ca.File)}}}
	var rootPEM []byte
	servetest.WaitFor(t, 30*time.Second, func() error {
		resp, err := mgmt.Get("https://127.0.0.1:" + management + "/roots/0")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		rootPEM, err = io.ReadAll(resp.Body)
		return err
	})
	rootFile := filepath.Join(dir, "pebble-root.pem")
	if err := os.WriteFile(rootFile, rootPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	roots := rootsFrom(t, rootFile)
	tlsTarget := net.JoinHostPort("127.0.0.1", tlsPort)

	// The first handshake for the domain makes herald order the certificate.
	var first int64
	servetest.WaitFor(t, 60*time.Second, func() error {
		var err error
		first, err = tlsSerial(t, tlsTarget, domain, roots)
		return err
	})
	start := time.Now()

	// libtorrent announces to https://tracker.test:PORT, trusting pebble's
	// root through OpenSSL's SSL_CERT_FILE; the npm client through Node's own.
	resolveNames(t, domain)
	t.Setenv("SSL_CERT_FILE", rootFile)
	t.Setenv("NODE_EXTRA_CA_CERTS", rootFile)
	url := "https://" + net.JoinHostPort(domain, tlsPort) + "/announce"
	testLibtorrentTransfer(t, url, "127.0.0.1", h.Addr)
	testSwarmLifecycle(t, url, "127.0.0.1")
	wss := "wss://" + net.JoinHostPort(domain, tlsPort) + "/announce"
	testWebTorrentPair(t, wss, wss)

	// Renewal: a new certificate before the first one expires.
	servetest.WaitFor(t, certValidity+15*time.Second, func() error {
		serial, err := tlsSerial(t, tlsTarget, domain, roots)
		if err != nil {
			return err
		}
		if serial == first {
			return errSameCertificate
		}
		return nil
	})
	if renewedAfter := time.Since(start); renewedAfter > certValidity {
		t.Errorf("renewed %v after issue, after the first certificate expired (%v)", renewedAfter, certValidity)
	}
}
