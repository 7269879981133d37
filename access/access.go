// Package access holds the torrent allow or deny list: opentracker's
// whitelist/blacklist files of 40-hex info hashes, reloaded without a restart.
//
// A loaded list is an immutable set published through an atomic pointer:
// announces read it with no lock, and a reload builds a new set and swaps
// it in, so serving never pauses and no peer is lost.
package access

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"herald/internal/atomicfile"
	"herald/swarm"
)

// Mode says what membership in the list means.
type Mode int

const (
	// Whitelist serves only listed torrents (opentracker's access.whitelist).
	Whitelist Mode = iota + 1
	// Blacklist serves every torrent but the listed ones (access.blacklist).
	Blacklist
)

func (m Mode) String() string {
	if m == Blacklist {
		return "blacklist"
	}
	return "whitelist"
}

// LineError is one line of a list file that is not an info hash.
type LineError struct {
	Line int
	Text string
}

func (e LineError) Error() string {
	return fmt.Sprintf("line %d: not a 40-hex info hash: %q", e.Line, e.Text)
}

// Parse reads a list file: one info hash per line as 40 hex digits; as in
// opentracker, anything after them that starts with a non-hex character (a
// comment, a name) is ignored. Blank lines and lines starting with '#' are skipped; any
// other line is returned as a LineError and skipped.
func Parse(r io.Reader) (map[swarm.InfoHash]struct{}, []LineError, error) {
	set := make(map[swarm.InfoHash]struct{})
	var bad []LineError
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		var h swarm.InfoHash
		if len(line) < 40 || (len(line) > 40 && isHex(line[40])) {
			bad = append(bad, LineError{n, truncate(line)})
			continue
		}
		if _, err := hex.Decode(h[:], []byte(line[:40])); err != nil {
			bad = append(bad, LineError{n, truncate(line)})
			continue
		}
		set[h] = struct{}{}
	}
	if err := sc.Err(); err != nil {
		return nil, bad, err
	}
	return set, bad, nil
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// List is an access list bound to its file.
type List struct {
	mode Mode
	path string
	log  *slog.Logger

	set atomic.Pointer[map[swarm.InfoHash]struct{}]

	mu    sync.Mutex // serialises reloads; guards stamp and changed
	stamp fileStamp  // of the file last loaded
	// changed is the file's stamp at the last check, when it differed
	// from stamp: the file is loaded once a check finds it unchanged.
	changed fileStamp
}

type fileStamp struct {
	mod  time.Time
	size int64
}

// Open loads the list at path. Unlike a later reload, a missing or
// unreadable file at start is an error: the operator named it, and serving
// with no list would open (or close) the tracker by surprise.
func Open(path string, mode Mode, log *slog.Logger) (*List, error) {
	if log == nil {
		log = slog.Default()
	}
	l := &List{mode: mode, path: path, log: log}
	if err := l.Reload(); err != nil {
		return nil, err
	}
	return l, nil
}

// Allowed reports whether the tracker serves the torrent. It takes no lock.
func (l *List) Allowed(h swarm.InfoHash) bool {
	_, listed := (*l.set.Load())[h]
	return listed == (l.mode == Whitelist)
}

// Mode is what membership in the list means.
func (l *List) Mode() Mode { return l.mode }

// Contains reports whether h is on the list (listed, whatever the mode).
func (l *List) Contains(h swarm.InfoHash) bool {
	_, listed := (*l.set.Load())[h]
	return listed
}

// Add puts the info hashes on the list: it appends the ones not listed
// yet to the file, which it replaces whole (see atomicfile), and loads
// it. It returns how many were new. The file keeps its comments and
// permissions, so a restart or a reload finds the change.
func (l *List) Add(hs ...swarm.InfoHash) (int, error) {
	return l.edit(func(data []byte, set map[swarm.InfoHash]struct{}) ([]byte, int) {
		if len(data) > 0 && data[len(data)-1] != '\n' {
			data = append(data, '\n')
		}
		added := 0
		for _, h := range hs {
			if _, listed := set[h]; !listed {
				set[h] = struct{}{}
				data = append(hex.AppendEncode(data, h[:]), '\n')
				added++
			}
		}
		return data, added
	})
}

// Remove takes the info hashes off the list: it drops their lines from
// the file, which it replaces whole, and loads it. It returns how many
// were listed.
func (l *List) Remove(hs ...swarm.InfoHash) (int, error) {
	drop := make(map[swarm.InfoHash]struct{}, len(hs))
	for _, h := range hs {
		drop[h] = struct{}{}
	}
	return l.edit(func(data []byte, set map[swarm.InfoHash]struct{}) ([]byte, int) {
		removed := 0
		for h := range drop {
			if _, listed := set[h]; listed {
				removed++
			}
		}
		if removed == 0 {
			return data, 0
		}
		var out []byte
		for line := range bytes.Lines(data) {
			var h swarm.InfoHash
			t := bytes.TrimSpace(line)
			if len(t) >= 40 && (len(t) == 40 || !isHex(t[40])) {
				if _, err := hex.Decode(h[:], t[:40]); err == nil {
					if _, gone := drop[h]; gone {
						continue
					}
				}
			}
			out = append(out, line...)
		}
		return out, removed
	})
}

// edit rewrites the list file with fn, which gets the file's bytes and
// the set they hold and returns the new bytes and how many hashes it
// changed; nothing is written when none changed.
func (l *List) edit(fn func(data []byte, set map[swarm.InfoHash]struct{}) ([]byte, int)) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	data, err := os.ReadFile(l.path)
	if err != nil {
		return 0, fmt.Errorf("access %s %s: %w", l.mode, l.path, err)
	}
	st, err := os.Stat(l.path)
	if err != nil {
		return 0, fmt.Errorf("access %s %s: %w", l.mode, l.path, err)
	}
	set, _, err := Parse(bytes.NewReader(data))
	if err != nil {
		return 0, fmt.Errorf("access %s %s: %w", l.mode, l.path, err)
	}
	data, n := fn(data, set)
	if n == 0 {
		return 0, nil
	}
	if err := atomicfile.WriteFile(l.path, data, st.Mode().Perm()); err != nil {
		return 0, fmt.Errorf("access %s: %w", l.mode, err)
	}
	return n, l.reloadLocked()
}

// Len is the number of info hashes on the list.
func (l *List) Len() int { return len(*l.set.Load()) }

// Reload reads the file again and swaps the new list in. Bad lines are
// logged with their numbers and skipped. If the file cannot be read, the
// last good list stays and the error is returned.
func (l *List) Reload() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reloadLocked()
}

func (l *List) reloadLocked() error {
	f, err := os.Open(l.path)
	if err != nil {
		return fmt.Errorf("access %s %s: %w", l.mode, l.path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("access %s %s: %w", l.mode, l.path, err)
	}
	set, bad, err := Parse(f)
	if err != nil {
		return fmt.Errorf("access %s %s: %w", l.mode, l.path, err)
	}
	for _, b := range bad {
		l.log.Warn("access list line skipped", "path", l.path, "line", b.Line, "text", b.Text)
	}
	l.set.Store(&set)
	l.stamp = fileStamp{st.ModTime(), st.Size()}
	l.log.Info("access list loaded", "mode", l.mode, "path", l.path, "torrents", len(set), "bad_lines", len(bad))
	return nil
}

// Watch reloads the list when the file's modification time or size has
// changed and then stayed the same for one interval, checking every
// interval, until ctx is done: a file rewritten in place is not loaded
// half-written, unless its writer pauses for a whole interval. Writing a
// new file and renaming it over the list is atomic and always safe. An
// unreadable file is logged once per change and keeps the last good list.
func (l *List) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := l.poll()
		switch {
		case err != nil && err.Error() != lastErr:
			if errors.Is(err, os.ErrNotExist) {
				l.log.Error("access list file gone; keeping the last good list", "path", l.path)
			} else {
				l.log.Error("access list not reloaded; keeping the last good list", "err", err)
			}
			lastErr = err.Error()
		case err == nil:
			lastErr = ""
		}
	}
}

// poll is one of Watch's checks: it reloads the file if it changed
// before the last check and not since.
func (l *List) poll() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	st, err := os.Stat(l.path)
	if err != nil {
		return err
	}
	now := fileStamp{st.ModTime(), st.Size()}
	switch now {
	case l.stamp:
		l.changed = fileStamp{}
	case l.changed:
		return l.reloadLocked()
	default:
		l.changed = now
	}
	return nil
}
