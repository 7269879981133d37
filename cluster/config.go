package cluster

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"herald/accounting"
	"herald/swarm"
)

// Config holds a node's settings. Zero fields take the defaults documented
// beside them.
type Config struct {
	// URLs are the NATS servers to use ("nats://host:4222", "tls://…");
	// the client fails over between them and learns the rest of the NATS
	// cluster from the servers. At least one is required.
	URLs []string
	// Credentials: a .creds file (JWT and NKey seed), a user and password,
	// or a token. At most one kind. Files are read once, by New.
	CredsFile      string
	User, Password string
	Token          string
	// TLS: CAFile verifies the servers; CertFile and KeyFile, both or
	// neither, are the client certificate.
	CAFile, CertFile, KeyFile string
	// SharedKeyFile holds a key every node of the cluster shares (at least
	// 32 bytes, such as `openssl rand -hex 32`; surrounding white space is
	// not part of it). With it every message carries an HMAC-SHA-256 tag,
	// and messages without a valid one are dropped and counted: a NATS
	// client without the key can neither feed peers in nor ask for them.
	// Read once, by New. Default: none, messages are not authenticated.
	SharedKeyFile string

	// Allowed reports whether the tracker serves a torrent (the access
	// list): announces and catch-up torrents from other nodes that it
	// refuses are dropped, as the tracker's own frontends refuse them. It
	// is called from the node's goroutines. nil allows all.
	Allowed func(swarm.InfoHash) bool

	// Prefix is the first subject token, so that several trackers can
	// share one NATS: <prefix>.announces, <prefix>.sync. Default "herald".
	Prefix string
	// NodeName names this instance in logs and in NATS's connection list.
	// Default: the host name and four random hex digits.
	NodeName string
	// FlushInterval is how often collected announces are published; a
	// batch that fills up goes at once. Default 1s.
	FlushInterval time.Duration
	// BatchBytes bounds one message (capped by the server's max_payload).
	// Default 64 KiB.
	BatchBytes int
	// BufferBytes bounds the announces kept while NATS is unreachable; past
	// it the oldest are dropped and counted. Default 8 MiB (about 300,000
	// IPv4 announces).
	BufferBytes int
	// RepublishAfter is the least time between two publications of a
	// plain refresh (no event, same seeder state) of one peer; started,
	// completed, stopped and seeder changes always go out. It must be well
	// below the peer timeout, or remote copies would expire. Default: the
	// store's peer timeout / 3.
	RepublishAfter time.Duration
	// ReconnectWait is the pause between attempts to reach NATS. Default 2s.
	ReconnectWait time.Duration
	// SyncTimeout is how long a catch-up waits for the next message before
	// it gives up and tries again. Default 10s.
	SyncTimeout time.Duration

	// Accounting is the per-key accounting (access.keys) the node
	// publishes on <prefix>.accounting (see accounting.go); nil for none.
	Accounting *accounting.Ledger
	// AccountingInterval is how often the keys whose accounting changed
	// are published. Default 10s.
	AccountingInterval time.Duration
}

// Defaults for Config.
const (
	DefaultPrefix        = "herald"
	DefaultFlushInterval = time.Second
	DefaultBatchBytes    = 64 << 10
	DefaultBufferBytes   = 8 << 20
	DefaultReconnectWait = 2 * time.Second
	DefaultSyncTimeout   = 10 * time.Second

	DefaultAccountingInterval = 10 * time.Second
)

func (c Config) withDefaults() (Config, error) {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.NodeName == "" {
		host, _ := os.Hostname()
		if host == "" {
			host = "herald"
		}
		var r [2]byte
		rand.Read(r[:])
		c.NodeName = host + "-" + hex.EncodeToString(r[:])
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = DefaultFlushInterval
	}
	if c.BatchBytes == 0 {
		c.BatchBytes = DefaultBatchBytes
	}
	if c.BufferBytes == 0 {
		c.BufferBytes = max(DefaultBufferBytes, c.BatchBytes)
	}
	if c.ReconnectWait == 0 {
		c.ReconnectWait = DefaultReconnectWait
	}
	if c.SyncTimeout == 0 {
		c.SyncTimeout = DefaultSyncTimeout
	}
	if c.AccountingInterval == 0 {
		c.AccountingInterval = DefaultAccountingInterval
	}
	var errs []error
	if len(c.URLs) == 0 {
		errs = append(errs, errors.New("no NATS URL"))
	}
	for _, u := range c.URLs {
		if u == "" || strings.ContainsAny(u, ", ") {
			errs = append(errs, fmt.Errorf("NATS URL %q: one URL per entry, no spaces or commas", u))
		}
	}
	kinds := 0
	for _, set := range []bool{c.CredsFile != "", c.User != "" || c.Password != "", c.Token != ""} {
		if set {
			kinds++
		}
	}
	if kinds > 1 {
		errs = append(errs, errors.New("give one of credentials file, user and password, or token"))
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		errs = append(errs, errors.New("TLS certificate and key go together"))
	}
	if !validPrefix(c.Prefix) {
		errs = append(errs, fmt.Errorf("subject prefix %q: tokens of letters, digits, '-' and '_' separated by dots", c.Prefix))
	}
	switch {
	case c.FlushInterval < time.Millisecond:
		errs = append(errs, fmt.Errorf("flush interval %v: must be at least 1ms", c.FlushInterval))
	case c.BatchBytes < 1<<10 || c.BatchBytes > 8<<20:
		errs = append(errs, fmt.Errorf("batch size %d: must be between 1 KiB and 8 MiB", c.BatchBytes))
	case c.BufferBytes < c.BatchBytes:
		errs = append(errs, fmt.Errorf("buffer %d: must hold at least one batch (%d bytes)", c.BufferBytes, c.BatchBytes))
	case c.RepublishAfter < 0 || c.ReconnectWait < 0 || c.SyncTimeout < 0:
		errs = append(errs, errors.New("negative duration"))
	case c.AccountingInterval < 100*time.Millisecond:
		errs = append(errs, fmt.Errorf("accounting interval %v: must be at least 100ms", c.AccountingInterval))
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("cluster: %w", err)
	}
	return c, nil
}

// validPrefix accepts plain subject tokens: no wildcards, no spaces, nothing
// that would make <prefix>.announces match more than herald's own subjects.
func validPrefix(p string) bool {
	for tok := range strings.SplitSeq(p, ".") {
		if tok == "" {
			return false
		}
		for _, r := range tok {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// minSharedKeyLen is the shortest shared key accepted: 32 bytes, as many
// as HMAC-SHA-256's output.
const minSharedKeyLen = 32

// loadSharedKey reads SharedKeyFile, if set. Like loadSecrets, New calls
// it before privileges are dropped.
func (c Config) loadSharedKey() ([]byte, error) {
	if c.SharedKeyFile == "" {
		return nil, nil
	}
	b, err := os.ReadFile(c.SharedKeyFile)
	if err != nil {
		return nil, fmt.Errorf("cluster: shared key: %w", err)
	}
	key := bytes.TrimSpace(b)
	if len(key) < minSharedKeyLen {
		return nil, fmt.Errorf("cluster: shared key %s: %d bytes, want at least %d (openssl rand -hex 32 > %s)", c.SharedKeyFile, len(key), minSharedKeyLen, c.SharedKeyFile)
	}
	return key, nil
}

// loadSecrets reads the credentials and TLS files into nats.go options. New
// calls it, so the files are read before the tracker drops privileges or
// enters a chroot: they may be readable by root only, and need not exist
// inside the chroot.
func (c Config) loadSecrets() ([]nats.Option, error) {
	var opts []nats.Option
	if c.CredsFile != "" {
		b, err := os.ReadFile(c.CredsFile)
		if err != nil {
			return nil, fmt.Errorf("cluster: credentials: %w", err)
		}
		jwt, err := nkeys.ParseDecoratedJWT(b)
		if err != nil {
			return nil, fmt.Errorf("cluster: credentials %s: %w", c.CredsFile, err)
		}
		kp, err := nkeys.ParseDecoratedUserNKey(b)
		if err != nil {
			return nil, fmt.Errorf("cluster: credentials %s: %w", c.CredsFile, err)
		}
		seed, err := kp.Seed()
		if err != nil {
			return nil, fmt.Errorf("cluster: credentials %s: %w", c.CredsFile, err)
		}
		opts = append(opts, nats.UserJWTAndSeed(jwt, string(seed)))
	}
	if c.CAFile == "" && c.CertFile == "" {
		return opts, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("cluster: TLS CA: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cluster: TLS CA %s: no PEM certificate", c.CAFile)
		}
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cluster: TLS client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return append(opts, nats.Secure(tc)), nil
}

// natsOptions turns the settings and the loaded secrets into nats.go's
// options; handlers are added by the node.
func (c Config) natsOptions(secrets []nats.Option) []nats.Option {
	opts := []nats.Option{
		nats.Name("herald " + c.NodeName),
		// The server never hands a node its own messages.
		nats.NoEcho(),
		// Replies go to inboxes under the prefix, so a node needs no
		// permission outside it (see doc.go).
		nats.CustomInboxPrefix(c.Prefix + ".inbox"),
		// Start even with NATS down, and never give up on it.
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(c.ReconnectWait),
		// While reconnecting a publish fails instead of filling nats.go's
		// own buffer: the node's buffer is the only one, bounded and
		// counted.
		nats.ReconnectBufSize(-1),
	}
	switch {
	case c.User != "" || c.Password != "":
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	case c.Token != "":
		opts = append(opts, nats.Token(c.Token))
	}
	return append(opts, secrets...)
}
