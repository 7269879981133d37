package cluster_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"herald/cluster"
	"herald/swarm"
)

// testCA issues certificates for the TLS test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a leaf certificate and key in PEM.
func (ca *testCA) issue(t *testing.T, name string, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// written lists the files writeFile made, for removal.
var written []string

func writeFile(t *testing.T, name string, b []byte) string {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	written = append(written, p)
	return p
}

// Two instances sync through a NATS server that requires TLS with client
// certificates and a password; the files are read by New, so removing them
// afterwards (as a chroot would hide them) changes nothing.
func TestTLSAndPassword(t *testing.T) {
	ca := newTestCA(t, "test CA")
	srvCert, srvKey := ca.issue(t, "nats", x509.ExtKeyUsageServerAuth)
	pair, err := tls.X509KeyPair(srvCert, srvKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.pem)
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		Username: "herald", Password: "s3cret",
		TLS: true, TLSVerify: true,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: pool,
			ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12},
	})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	url := fmt.Sprintf("tls://127.0.0.1:%d", s.Addr().(*net.TCPAddr).Port)

	secure := func(caPEM []byte, password string) func(*cluster.Config) {
		cert, key := ca.issue(t, "herald", x509.ExtKeyUsageClientAuth)
		return func(c *cluster.Config) {
			c.CAFile = writeFile(t, "ca.pem", caPEM)
			c.CertFile, c.KeyFile = writeFile(t, "cert.pem", cert), writeFile(t, "key.pem", key)
			c.User, c.Password = "herald", password
		}
	}
	a := startInstance(t, "a", []string{url}, secure(ca.pem, "s3cret"))
	b := startInstance(t, "b", []string{url}, secure(ca.pem, "s3cret"))
	wrongCA := startInstance(t, "wrong-ca", []string{url}, secure(newTestCA(t, "other CA").pem, "s3cret"))
	wrongPassword := startInstance(t, "wrong-password", []string{url}, secure(ca.pem, "guess"))
	for _, p := range written {
		os.Remove(p)
	}

	h := hashOf("tls")
	a.announce(h, peerAddr(1), swarm.EventStarted, true)
	waitFor(t, 5*time.Second, "an announce over TLS", sameAs(map[string]bool{key(h, peerAddr(1)): true}, a, b))
	for _, in := range []*instance{wrongCA, wrongPassword} {
		if st := in.node.Stats(); st.Connected || st.Applied != 0 {
			t.Errorf("%s got in: %+v", in.name, st)
		}
	}
	if _, err := cluster.New(cluster.Config{URLs: []string{url}, CAFile: writeFile(t, "bad.pem", []byte("not pem"))}, testLogger(t)); err == nil {
		t.Error("a CA file without a certificate accepted")
	}
}
