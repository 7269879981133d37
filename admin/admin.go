// Package admin is herald's runtime administration API: JSON over HTTP on
// a listener of its own (listen.admin), behind a bearer token. It changes
// the access list, the keys and the bans without a restart, triggers a
// snapshot and shows the effective configuration. openapi.json, served at
// /openapi.json, describes every route.
//
// Where each change is kept: access list and key changes rewrite their
// files (so a restart or a SIGHUP reload keeps them), bans go to the ban
// file (tracker.ban_file). With a cluster, each change is also published
// to the other nodes, which apply it to their own files, and a node that
// connects takes another's list, keys and bans (State, ApplyState).
package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"herald/access"
	"herald/accounting"
	"herald/bans"
	"herald/cluster"
)

// MaxBodyBytes bounds a request body; a larger one gets 413.
const MaxBodyBytes = 1 << 20

// MinTokenLen is the shortest token accepted: 128 bits of hex or base64.
const MinTokenLen = 22

//go:embed openapi.json
var openAPI []byte

// Config is what the API works on. Nil parts answer 409 (not configured).
type Config struct {
	// Token is the bearer token every request must carry (LoadToken).
	Token string
	// List is the access list; nil when every torrent is served.
	List *access.List
	Bans *bans.Table
	// Keys are the access keys; nil when no key is required.
	Keys Keys
	// Ledger is the per-key accounting; nil when no key is required.
	Ledger *accounting.Ledger
	// Snapshot saves the snapshot now; nil when snapshots are off.
	Snapshot func() error
	// Settings is the effective configuration as served, secrets removed.
	Settings any
	// Publish sends a change to the other nodes of a cluster; nil alone.
	Publish func(cluster.Change) error
	Logger  *slog.Logger
}

// Keys is the access key store the API changes and reads.
type Keys interface {
	Add(key string) (bool, error)
	Remove(key string) (bool, error)
	// State, Changed and Replace serve the cluster's catch-up (State).
	State() ([]access.Key, time.Time)
	Changed() time.Time
	Replace([]access.Key) (added, removed int, err error)
}

// LoadToken reads the bearer token from path: the file's first line,
// without surrounding space. The file must not be readable by group or
// others, as an SSH key, and the token must be at least MinTokenLen
// characters: anyone who reads it controls the tracker.
func LoadToken(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("admin.token_file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("admin.token_file %s: mode %04o lets group or others read the token; chmod 600 it", path, st.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("admin.token_file: %w", err)
	}
	token, _, _ := strings.Cut(string(data), "\n")
	token = strings.TrimSpace(token)
	if len(token) < MinTokenLen || strings.ContainsAny(token, " \t") {
		return "", fmt.Errorf("admin.token_file %s: the token must be one word of at least %d characters (e.g. openssl rand -hex 32)", path, MinTokenLen)
	}
	return token, nil
}

// Server is the API. Without a token it serves nothing, but still
// applies changes from the cluster and the FIFOs.
type Server struct {
	cfg    Config
	token  [sha256.Size]byte
	routes []route
}

// New checks cfg and returns the API.
func New(cfg Config) (*Server, error) {
	if cfg.Bans == nil {
		return nil, errors.New("admin: no ban table")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, token: sha256.Sum256([]byte(cfg.Token))}
	s.routes = s.table()
	return s, nil
}

// Serve answers requests on ln until ctx is done. It refuses to start
// without a token.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if len(s.cfg.Token) < MinTokenLen {
		ln.Close()
		return errors.New("admin: no token (admin.token_file); the API does not start without one")
	}
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	s.cfg.Logger.Info("admin: serving", "addr", ln.Addr())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("admin: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(shutdown)
	<-served
	return nil
}

// authorized reports whether r carries the token. Both sides are hashed
// first, so the comparison takes the same time whatever the length and
// content of what was sent.
func (s *Server) authorized(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	sum := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(sum[:], s.token[:]) == 1
}

// ServeHTTP checks the token, routes the request and writes its JSON reply.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="herald admin"`)
		writeJSON(w, http.StatusUnauthorized, errorReply{"missing or wrong bearer token"})
		return
	}
	rt, param, allowed := s.match(r.Method, r.URL.Path)
	if rt == nil {
		if allowed == "" {
			writeJSON(w, http.StatusNotFound, errorReply{"no such route: " + r.URL.Path})
			return
		}
		w.Header().Set("Allow", allowed)
		writeJSON(w, http.StatusMethodNotAllowed, errorReply{r.Method + " is not allowed on " + r.URL.Path + "; allowed: " + allowed})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	status, reply, err := rt.handle(r, param)
	if err != nil {
		var he *httpError
		if !errors.As(err, &he) {
			s.cfg.Logger.Error("admin: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			he = &httpError{http.StatusInternalServerError, err.Error()}
		}
		writeJSON(w, he.status, errorReply{he.msg})
		return
	}
	if raw, ok := reply.(json.RawMessage); ok {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(raw)
		return
	}
	writeJSON(w, status, reply)
}

// errorReply is the body of every error: {"error": "..."}.
type errorReply struct {
	Error string `json:"error"`
}

// httpError is an error a handler answers with its own status.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) error {
	return &httpError{status, fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// decode reads r's body as exactly one JSON value of v's type: unknown
// fields, trailing data and a body over MaxBodyBytes are errors (400, 413).
func decode(r *http.Request, v any) error {
	d := json.NewDecoder(r.Body)
	d.DisallowUnknownFields()
	err := d.Decode(v)
	if err == nil && d.More() {
		err = errors.New("data after the JSON object")
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return errorf(http.StatusRequestEntityTooLarge, "body over %d bytes", tooBig.Limit)
	case err != nil:
		return errorf(http.StatusBadRequest, "body: %v", err)
	}
	return nil
}
