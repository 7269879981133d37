package certs

import (
	"crypto/tls"
	"herald/internal/testcert"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// servedSerial makes a TLS handshake with ln and returns the serial of the
// certificate it was shown.
func servedSerial(t *testing.T, ln net.Listener) int64 {
	t.Helper()
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// serveTLS accepts on a loopback listener with cfg and completes every
// handshake, as an HTTPS listener would.
func serveTLS(t *testing.T, cfg *tls.Config) net.Listener {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
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
				c.(*tls.Conn).Handshake()
				c.Read(make([]byte, 1))
				c.Close()
			}()
		}
	}()
	return ln
}

// A pair replaced on disk is served from the next handshake on; a
// connection made before keeps the certificate it was shown; a broken pair
// (a key written before its certificate) leaves the previous one in place.
// serialOneProvider writes a pair with serial 1 into a new directory and
// returns a Provider of it checking every reload (-1: never by itself).
func serialOneProvider(t *testing.T, reload time.Duration) (dir, cert, key string, ca *testcert.CA, p *Provider) {
	t.Helper()
	dir = t.TempDir()
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca = testcert.NewCA(t, dir)
	ca.Issue(t, cert, key, 1)
	p, err := New(Config{CertFile: cert, KeyFile: key, Reload: reload})
	if err != nil {
		t.Fatal(err)
	}
	return dir, cert, key, ca, p
}

func TestFilesReload(t *testing.T) {
	dir, cert, key, ca, p := serialOneProvider(t, -1)
	ln := serveTLS(t, p.TLSConfig())
	early, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer early.Close()

	if swapped, err := p.Reload(); swapped || err != nil {
		t.Fatalf("Reload of unchanged files = %v, %v; want no swap", swapped, err)
	}
	ca.Issue(t, cert, key, 2)
	if swapped, err := p.Reload(); !swapped || err != nil {
		t.Fatalf("Reload after the swap = %v, %v", swapped, err)
	}
	if got := servedSerial(t, ln); got != 2 {
		t.Errorf("after the swap the listener served serial %d, want 2", got)
	}
	if got := early.ConnectionState().PeerCertificates[0].SerialNumber.Int64(); got != 1 {
		t.Errorf("the connection made before the swap shows serial %d, want 1", got)
	}

	// Half-written: a new key beside the old certificate.
	other := filepath.Join(dir, "other")
	ca.Issue(t, other+".cert", other+".key", 3)
	keyPEM, err := os.ReadFile(other + ".key")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if swapped, err := p.Reload(); swapped || err == nil || !strings.Contains(err.Error(), cert) {
		t.Fatalf("Reload of a mismatched pair = %v, %v; want an error naming %s", swapped, err, cert)
	}
	if got := servedSerial(t, ln); got != 2 {
		t.Errorf("after a failed reload the listener served serial %d, want 2 (the last good pair)", got)
	}
	if s := p.Stats(); s.Loads != 2 || s.Failures != 1 {
		t.Errorf("Stats = %+v, want 2 loads and 1 failure", s)
	}
}

// A pair renewed within one tick of the kernel's file clock keeps its size
// and modification time; Reload must still see the new certificate (e2e
// TestTLSCertificateFiles missed such a swap now and then).
func TestReloadSeesSameSizeSameTimeRenewal(t *testing.T) {
	_, cert, key, ca, p := serialOneProvider(t, -1)
	ln := serveTLS(t, p.TLSConfig())
	stamps := map[string]os.FileInfo{}
	for _, f := range []string{cert, key} {
		var err error
		if stamps[f], err = os.Stat(f); err != nil {
			t.Fatal(err)
		}
	}
	sameSize := func() bool {
		for _, f := range []string{cert, key} {
			fi, err := os.Stat(f)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Size() != stamps[f].Size() {
				return false
			}
		}
		return true
	}
	// Signatures and keys vary by a byte or two: issue until a renewal
	// has the first pair's sizes.
	for i := 0; ; i++ {
		ca.Issue(t, cert, key, 2)
		if sameSize() {
			break
		}
		if i == 200 {
			t.Fatal("no same-size renewal in 200 tries")
		}
	}
	for _, f := range []string{cert, key} {
		if err := os.Chtimes(f, stamps[f].ModTime(), stamps[f].ModTime()); err != nil {
			t.Fatal(err)
		}
	}
	if swapped, err := p.Reload(); !swapped || err != nil {
		t.Fatalf("Reload after a same-size, same-time renewal = %v, %v; want a swap", swapped, err)
	}
	if got := servedSerial(t, ln); got != 2 {
		t.Errorf("after the renewal the listener served serial %d, want 2", got)
	}
}

// Run notices a changed pair by itself.
func TestFilesWatched(t *testing.T) {
	_, cert, key, ca, p := serialOneProvider(t, 20*time.Millisecond)
	ctx := t.Context()
	go p.Run(ctx)
	ln := serveTLS(t, p.TLSConfig())
	// A distinct modification time, even on a coarse-grained file system.
	time.Sleep(10 * time.Millisecond)
	ca.Issue(t, cert, key, 7)
	deadline := time.Now().Add(5 * time.Second)
	for servedSerial(t, ln) != 7 {
		if time.Now().After(deadline) {
			t.Fatal("the swapped pair was not served within 5 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "needs tls.cert_file and tls.key_file, or tls.acme_domain"},
		{Config{CertFile: "a"}, "go together"},
		{Config{CertFile: "a", KeyFile: "b", ACMEDomains: []string{"x.example"}}, "exclusive"},
		{Config{CertFile: filepath.Join(dir, "missing.pem"), KeyFile: filepath.Join(dir, "k.pem")}, "missing.pem"},
		{Config{ACMEDomains: []string{"x.example"}, ACMECache: dir, ACMEDirectoryCA: filepath.Join(dir, "none.pem")}, "tls.acme_directory_ca"},
	} {
		if _, err := New(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) = %v, want an error with %q", c.cfg, err, c.want)
		}
	}
}

// The file check and SIGHUP reload from different goroutines: Reload is
// safe to call at once from both (go test -race fails without its lock).
func TestConcurrentReloads(t *testing.T) {
	_, cert, key, ca, p := serialOneProvider(t, -1)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for range 50 {
				p.Reload()
			}
		})
	}
	ca.Issue(t, cert, key, 2)
	// A new pair is told apart by size and modification time: give it a
	// time of its own, whatever the file system's granularity.
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(cert, later, later); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if _, err := p.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := p.current.Load().Leaf.SerialNumber.Int64(); got != 2 {
		t.Errorf("after the reloads the certificate has serial %d, want 2", got)
	}
}
