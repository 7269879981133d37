// Package certs supplies the certificates herald's TLS listeners serve
// (listen.tls): either a key pair from files, reloaded when the files
// change or on SIGHUP, or certificates obtained and renewed over ACME
// (RFC 8555, Let's Encrypt by default) by golang.org/x/crypto's autocert,
// which answers HTTP-01 challenges on the plain HTTP port and TLS-ALPN-01
// challenges on the TLS port.
//
// A handshake in flight keeps the certificate it started with: a reload
// swaps a pointer that later handshakes read.
package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// Defaults for Config.
const (
	DefaultACMEDirectory = autocert.DefaultACMEDirectory // Let's Encrypt's production directory
	DefaultACMECache     = "herald-acme"
	DefaultReload        = 10 * time.Second
)

// Config says where certificates come from: CertFile and KeyFile, or
// ACMEDomains (not both).
type Config struct {
	// CertFile and KeyFile are PEM files: the certificate chain (leaf
	// first) and its private key.
	CertFile, KeyFile string
	// ACMEDomains are the names certificates are obtained for; a client
	// asking for any other name (SNI) is refused.
	ACMEDomains []string
	// ACMEDirectory is the ACME server's directory URL. Default Let's
	// Encrypt's.
	ACMEDirectory string
	// ACMEEmail is the contact address given to the ACME server
	// (expiry notices); optional.
	ACMEEmail string
	// ACMECache is the directory that keeps the account key and the
	// certificates across restarts. Default "herald-acme" in the working
	// directory.
	ACMECache string
	// ACMEDirectoryCA, if set, is a PEM file of CA certificates trusted for
	// the ACME server's own HTTPS, for a private ACME server (step-ca,
	// pebble); the system roots are used otherwise.
	ACMEDirectoryCA string
	// ACMERenewBefore is how long before expiry a certificate is renewed.
	// Zero: a third of its lifetime, at most 30 days.
	ACMERenewBefore time.Duration
	// Reload is how often CertFile and KeyFile are checked for changes.
	// Default 10s; negative: only on Reload calls (SIGHUP).
	Reload time.Duration
	// Logger gets reloads, renewals and failures. Default slog.Default().
	Logger *slog.Logger
}

// Provider hands out the current certificate. Its methods are safe for
// concurrent use.
type Provider struct {
	cfg     Config
	manager *autocert.Manager // ACME; nil with files
	current atomic.Pointer[tls.Certificate]
	// reloadMu serialises Reload: the file check (Run) and SIGHUP call it
	// from different goroutines.
	reloadMu sync.Mutex
	loaded   filePair // the files' bytes as last loaded; guarded by reloadMu
	reloads  atomic.Uint64
	fails    atomic.Uint64
}

// New checks cfg and, with files, loads them: an unreadable or mismatched
// pair is an error at start, naming the files.
func New(cfg Config) (*Provider, error) {
	files := cfg.CertFile != "" || cfg.KeyFile != ""
	switch {
	case files && len(cfg.ACMEDomains) > 0:
		return nil, errors.New("certs: tls.cert_file/tls.key_file and tls.acme_domain are exclusive: pick one source")
	case files && (cfg.CertFile == "" || cfg.KeyFile == ""):
		return nil, errors.New("certs: tls.cert_file and tls.key_file go together")
	case !files && len(cfg.ACMEDomains) == 0:
		return nil, errors.New("certs: listen.tls needs tls.cert_file and tls.key_file, or tls.acme_domain")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Reload == 0 {
		cfg.Reload = DefaultReload
	}
	p := &Provider{cfg: cfg}
	if files {
		if _, err := p.Reload(); err != nil {
			return nil, err
		}
		return p, nil
	}
	m, err := newManager(cfg)
	if err != nil {
		return nil, err
	}
	p.manager = m
	return p, nil
}

func newManager(cfg Config) (*autocert.Manager, error) {
	if cfg.ACMEDirectory == "" {
		cfg.ACMEDirectory = DefaultACMEDirectory
	}
	if cfg.ACMECache == "" {
		cfg.ACMECache = DefaultACMECache
	}
	// The cache holds the account key: make it now, owner-only, so an
	// unwritable path fails at start rather than at the first handshake.
	if err := os.MkdirAll(cfg.ACMECache, 0o700); err != nil {
		return nil, fmt.Errorf("certs: tls.acme_cache: %w", err)
	}
	client := &acme.Client{DirectoryURL: cfg.ACMEDirectory}
	if cfg.ACMEDirectoryCA != "" {
		pem, err := os.ReadFile(cfg.ACMEDirectoryCA)
		if err != nil {
			return nil, fmt.Errorf("certs: tls.acme_directory_ca: %w", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("certs: tls.acme_directory_ca %s: no PEM certificate in it", cfg.ACMEDirectoryCA)
		}
		client.HTTPClient = &http.Client{
			Timeout:   time.Minute,
			Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}},
		}
	}
	return &autocert.Manager{
		Prompt:      autocert.AcceptTOS,
		Cache:       autocert.DirCache(cfg.ACMECache),
		HostPolicy:  autocert.HostWhitelist(cfg.ACMEDomains...),
		Client:      client,
		Email:       cfg.ACMEEmail,
		RenewBefore: cfg.ACMERenewBefore,
	}, nil
}

// TLSConfig is the configuration for a listen.tls listener: TLS 1.2 and
// up, HTTP/1.1 (WebSocket upgrades need it), and with ACME the
// TLS-ALPN-01 challenge protocol.
func (p *Provider) TLSConfig() *tls.Config {
	if p.manager != nil {
		c := p.manager.TLSConfig()
		c.MinVersion = tls.VersionTLS12
		c.NextProtos = []string{"http/1.1", acme.ALPNProto}
		return c
	}
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return p.current.Load(), nil },
	}
}

// ACMEChallenge answers HTTP-01 challenges (requests under
// /.well-known/acme-challenge/) for the plain HTTP port; nil with files.
func (p *Provider) ACMEChallenge() http.Handler {
	if p.manager == nil {
		return nil
	}
	return p.manager.HTTPHandler(http.NotFoundHandler())
}

// Reload reads the certificate files again if they changed since the last
// load and reports whether it swapped the certificate. A pair that fails to
// load leaves the current certificate in place. With ACME it does nothing:
// renewal runs on its own.
func (p *Provider) Reload() (bool, error) {
	if p.manager != nil {
		return false, nil
	}
	p.reloadMu.Lock()
	defer p.reloadMu.Unlock()
	pair, err := readPair(p.cfg.CertFile, p.cfg.KeyFile)
	if err == nil && pair.equal(p.loaded) && p.current.Load() != nil {
		return false, nil
	}
	var cert tls.Certificate
	if err == nil {
		cert, err = tls.X509KeyPair(pair.cert, pair.key)
	}
	if err != nil {
		p.fails.Add(1)
		return false, fmt.Errorf("certs: loading tls.cert_file %s and tls.key_file %s: %w", p.cfg.CertFile, p.cfg.KeyFile, err)
	}
	p.current.Store(&cert)
	p.loaded = pair
	p.reloads.Add(1)
	if leaf := cert.Leaf; leaf != nil {
		p.cfg.Logger.Info("certs: certificate loaded", "file", p.cfg.CertFile,
			"subject", leaf.Subject.String(), "names", leaf.DNSNames, "not_after", leaf.NotAfter)
	}
	return true, nil
}

// Run checks the files every Config.Reload until ctx ends. With ACME, or a
// negative Reload, there is nothing to check and it returns at once.
func (p *Provider) Run(ctx context.Context) {
	if p.manager != nil || p.cfg.Reload < 0 {
		return
	}
	t := time.NewTicker(p.cfg.Reload)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := p.Reload(); err != nil {
				p.cfg.Logger.Error("certs: reload failed; serving the previous certificate", "err", err)
			}
		}
	}
}

// Stats are the loads and failed loads of the certificate files.
type Stats struct{ Loads, Failures uint64 }

// Stats reports the loads and failed loads so far.
func (p *Provider) Stats() Stats {
	return Stats{Loads: p.reloads.Load(), Failures: p.fails.Load()}
}

// filePair is the contents of a certificate and key file pair. A change
// is told by the bytes, not by size and modification time: a pair rewritten
// within one tick of the kernel's coarse file clock, at the same size (a
// renewal of the same names), keeps both, and was missed. A pair rewritten
// in place may be read between the two writes; the key then does not match
// and the previous pair stays (a failure is logged and the next check loads
// the finished pair).
type filePair struct{ cert, key []byte }

func (a filePair) equal(b filePair) bool {
	return bytes.Equal(a.cert, b.cert) && bytes.Equal(a.key, b.key)
}

func readPair(cert, key string) (filePair, error) {
	c, err := os.ReadFile(cert)
	if err != nil {
		return filePair{}, err
	}
	k, err := os.ReadFile(key)
	if err != nil {
		return filePair{}, err
	}
	return filePair{c, k}, nil
}
