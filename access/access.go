// Package access holds the torrent allow or deny list (opentracker's
// whitelist/blacklist files of 40-hex info hashes) and the members' keys of
// a private tracker (keys.go), both reloaded without a restart.
//
// A loaded list is an immutable set published through an atomic pointer:
// announces read it with no lock, and a reload (or an edit of the keys)
// builds a new set and swaps it in, so serving never pauses and no peer is
// lost.
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

// LineError is one line of a list file that is not what the file lists.
type LineError struct {
	Line int
	Text string
	// Want says what the line should have been.
	Want string
}

func (e LineError) Error() string {
	return fmt.Sprintf("line %d: not %s: %q", e.Line, e.Want, e.Text)
}

// wantInfoHash is the LineError.Want of an access list.
const wantInfoHash = "a 40-hex info hash"

// Parse reads a list file: one info hash per line as 40 hex digits; as in
// opentracker, anything after them that starts with a non-hex character (a
// comment, a name) is ignored. Blank lines and lines starting with '#' are skipped; any
// other line is returned as a LineError and skipped.
func Parse(r io.Reader) (map[swarm.InfoHash]struct{}, []LineError, error) {
	set := make(map[swarm.InfoHash]struct{})
	var bad []LineError
	err := scanLines(r, func(n int, line string) {
		var h swarm.InfoHash
		if len(line) < 40 || (len(line) > 40 && isHex(line[40])) {
			bad = append(bad, LineError{n, truncate(line), wantInfoHash})
			return
		}
		if _, err := hex.Decode(h[:], []byte(line[:40])); err != nil {
			bad = append(bad, LineError{n, truncate(line), wantInfoHash})
			return
		}
		set[h] = struct{}{}
	})
	if err != nil {
		return nil, bad, err
	}
	return set, bad, nil
}

// scanLines calls fn with the number and the text, surrounding white space
// trimmed, of each line of r that is neither blank nor a '#' comment.
func scanLines(r io.Reader, fn func(n int, line string)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		if line := strings.TrimSpace(sc.Text()); line != "" && line[0] != '#' {
			fn(n, line)
		}
	}
	return sc.Err()
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
	set  atomic.Pointer[map[swarm.InfoHash]struct{}]
	file watchedFile
}

// Open loads the list at path. Unlike a later reload, a missing or
// unreadable file at start is an error: the operator named it, and serving
// with no list would open (or close) the tracker by surprise.
func Open(path string, mode Mode, log *slog.Logger) (*List, error) {
	l := &List{mode: mode}
	l.file = newWatchedFile(path, "access "+mode.String(), "access list", log, l.load)
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
// yet to the file, which it replaces whole (see watchedFile.edit), and
// loads it. It returns how many were new. The file keeps its comments and
// permissions, so a restart or a reload finds the change.
func (l *List) Add(hs ...swarm.InfoHash) (int, error) {
	return l.file.edit(func(data []byte) ([]byte, int, error) {
		set, _, err := Parse(bytes.NewReader(data))
		if err != nil {
			return nil, 0, err
		}
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
		return data, added, nil
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
	return l.file.edit(func(data []byte) ([]byte, int, error) {
		set, _, err := Parse(bytes.NewReader(data))
		if err != nil {
			return nil, 0, err
		}
		removed := 0
		for h := range drop {
			if _, listed := set[h]; listed {
				removed++
			}
		}
		if removed == 0 {
			return data, 0, nil
		}
		var out []byte
		for line := range bytes.Lines(data) {
			if h, ok := lineHash(line); ok {
				if _, gone := drop[h]; gone {
					continue
				}
			}
			out = append(out, line...)
		}
		return out, removed, nil
	})
}

// lineHash reads the info hash of a list file's line, as Parse does.
func lineHash(line []byte) (swarm.InfoHash, bool) {
	var h swarm.InfoHash
	t := bytes.TrimSpace(line)
	if len(t) < 40 || len(t) > 40 && isHex(t[40]) {
		return h, false
	}
	_, err := hex.Decode(h[:], t[:40])
	return h, err == nil
}

// State returns the info hashes on the list, in no order, and when the
// file they were loaded from was last modified: what a node of a cluster
// hands one that catches up.
func (l *List) State() ([]swarm.InfoHash, time.Time) {
	l.file.mu.Lock()
	defer l.file.mu.Unlock()
	set := *l.set.Load()
	hs := make([]swarm.InfoHash, 0, len(set))
	for h := range set {
		hs = append(hs, h)
	}
	return hs, l.file.stamp.mod
}

// Changed is when the file the list was loaded from was last modified.
func (l *List) Changed() time.Time { return l.file.changedAt() }

// Replace makes hs the list: it drops the lines of the hashes not in hs
// and appends the ones of hs not listed, in one rewrite of the file, and
// returns how many it added and removed.
func (l *List) Replace(hs []swarm.InfoHash) (added, removed int, err error) {
	want := make(map[swarm.InfoHash]struct{}, len(hs))
	for _, h := range hs {
		want[h] = struct{}{}
	}
	_, err = l.file.edit(func(data []byte) ([]byte, int, error) {
		var out []byte
		out, added, removed = replaceEntries(data, want, lineHash, func(b []byte, h swarm.InfoHash) []byte { return hex.AppendEncode(b, h[:]) })
		return out, added + removed, nil
	})
	return added, removed, err
}

// replaceEntries returns the lines of a list or keys file with the lines
// of entries not in want dropped and the entries of want it lacks
// appended, one a line (text writes one), and how many it added and
// removed. entry reads a line's entry; the lines it reads none from
// (comments, bad lines) stay.
func replaceEntries[E comparable](data []byte, want map[E]struct{}, entry func([]byte) (E, bool), text func([]byte, E) []byte) (out []byte, added, removed int) {
	have := make(map[E]struct{}, len(want))
	for line := range bytes.Lines(data) {
		if e, ok := entry(line); ok {
			if _, keep := want[e]; !keep {
				removed++
				continue
			}
			have[e] = struct{}{}
		}
		out = append(out, line...)
	}
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	for e := range want {
		if _, ok := have[e]; !ok {
			out = append(text(out, e), '\n')
			added++
		}
	}
	return out, added, removed
}

// Len is the number of info hashes on the list.
func (l *List) Len() int { return len(*l.set.Load()) }

// Reload reads the file again and swaps the new list in. Bad lines are
// logged with their numbers and skipped. If the file cannot be read, the
// last good list stays and the error is returned.
func (l *List) Reload() error { return l.file.reload() }

// Watch reloads the list when its file changes, until ctx is done (see
// watchedFile.watch).
func (l *List) Watch(ctx context.Context, interval time.Duration) { l.file.watch(ctx, interval) }

func (l *List) load(r io.Reader) (int, []LineError, error) {
	set, bad, err := Parse(r)
	if err != nil {
		return 0, bad, err
	}
	l.set.Store(&set)
	return len(set), bad, nil
}

// watchedFile is a list file (info hashes or keys) reloaded when it
// changes and on demand; load parses it and swaps the result in.
type watchedFile struct {
	path string
	// name is what errors call the file ("access whitelist"), what the
	// logs do ("access list").
	name, what string
	log        *slog.Logger
	load       func(io.Reader) (entries int, bad []LineError, err error)
	// create lets edit create a missing file, readable by its owner only
	// (keys are secrets); a missing access list is an error.
	create bool

	mu    sync.Mutex // serialises reloads and edits; guards stamp and changed
	stamp fileStamp  // of the file last loaded
	// changed is the file's stamp at the last check, when it differed
	// from stamp: the file is loaded once a check finds it unchanged.
	changed fileStamp
}

type fileStamp struct {
	mod  time.Time
	size int64
}

func newWatchedFile(path, name, what string, log *slog.Logger, load func(io.Reader) (int, []LineError, error)) watchedFile {
	if log == nil {
		log = slog.Default()
	}
	return watchedFile{path: path, name: name, what: what, log: log, load: load}
}

// edit rewrites the file with fn, which gets the file's bytes and returns
// the new bytes and how many entries it changed; nothing is written when
// none changed. The file is replaced whole (see atomicfile) with its mode,
// so a reader or a crash never sees it half-written, and comments and
// other lines stay as they are. The new bytes are then loaded as they
// are, without reading the file again or logging its bad lines anew.
func (w *watchedFile) edit(fn func(data []byte) ([]byte, int, error)) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	data, mode, err := readFile(w.path)
	if errors.Is(err, os.ErrNotExist) && w.create {
		data, mode, err = nil, 0o600, nil
	}
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", w.name, w.path, err)
	}
	data, n, err := fn(data)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", w.name, w.path, err)
	}
	if n == 0 {
		return 0, nil
	}
	if err := atomicfile.WriteFile(w.path, data, mode); err != nil {
		return 0, fmt.Errorf("%s: %w", w.name, err)
	}
	st, err := os.Stat(w.path)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", w.name, w.path, err)
	}
	if _, _, err := w.load(bytes.NewReader(data)); err != nil {
		return 0, fmt.Errorf("%s %s: %w", w.name, w.path, err)
	}
	// The file now holds what is loaded: the watcher need not read it.
	w.stamp, w.changed = fileStamp{st.ModTime(), st.Size()}, fileStamp{}
	return n, nil
}

// readFile returns the bytes of the file at path and its permissions.
func readFile(path string) ([]byte, os.FileMode, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	data, err := io.ReadAll(f)
	return data, st.Mode().Perm(), err
}

// changedAt is the modification time of the file as last loaded, zero if
// it never was.
func (w *watchedFile) changedAt() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stamp.mod
}

func (w *watchedFile) reload() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.reloadLocked()
}

func (w *watchedFile) reloadLocked() error {
	f, err := os.Open(w.path)
	if err != nil {
		return fmt.Errorf("%s %s: %w", w.name, w.path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%s %s: %w", w.name, w.path, err)
	}
	n, bad, err := w.load(f)
	if err != nil {
		return fmt.Errorf("%s %s: %w", w.name, w.path, err)
	}
	for _, b := range bad {
		w.log.Warn(w.what+" line skipped", "path", w.path, "line", b.Line, "text", b.Text, "want", b.Want)
	}
	w.stamp = fileStamp{st.ModTime(), st.Size()}
	w.log.Info(w.what+" loaded", "name", w.name, "path", w.path, "entries", n, "bad_lines", len(bad))
	return nil
}

// watch reloads the file when its modification time or size has changed
// and then stayed the same for one interval, checking every interval,
// until ctx is done: a file rewritten in place is not loaded half-written,
// unless its writer pauses for a whole interval. Writing a new file and
// renaming it over the old one is atomic and always safe. An unreadable
// file is logged once per change and keeps the last good contents.
func (w *watchedFile) watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := w.poll()
		switch {
		case err != nil && err.Error() != lastErr:
			if errors.Is(err, os.ErrNotExist) {
				w.log.Error(w.what+" file gone; keeping the last good one", "path", w.path)
			} else {
				w.log.Error(w.what+" not reloaded; keeping the last good one", "err", err)
			}
			lastErr = err.Error()
		case err == nil:
			lastErr = ""
		}
	}
}

// poll is one of watch's checks: it reloads the file if it changed
// before the last check and not since.
func (w *watchedFile) poll() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	st, err := os.Stat(w.path)
	if err != nil {
		return err
	}
	now := fileStamp{st.ModTime(), st.Size()}
	switch now {
	case w.stamp:
		w.changed = fileStamp{}
	case w.changed:
		return w.reloadLocked()
	default:
		w.changed = now
	}
	return nil
}
