package access

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"
)

// KeyLen is the length of a key: 32 characters of [A-Za-z0-9], 190 bits.
const KeyLen = 32

// Key is a member's key (access.keys), as it appears in announce URLs:
// http://host/KEY/announce. The zero Key is no key; no listed key is zero.
type Key [KeyLen]byte

// ErrKey is the error of a string that is not a key.
var ErrKey = errors.New("access: a key is 32 characters of A-Z, a-z and 0-9")

// ParseKey reads a key from its text.
func ParseKey(s string) (Key, error) {
	var k Key
	if len(s) != KeyLen || !isKey(s) {
		return k, ErrKey
	}
	copy(k[:], s)
	return k, nil
}

func (k Key) String() string { return string(k[:]) }

// MarshalText writes the key as its text (JSON writes it as a string).
func (k Key) MarshalText() ([]byte, error) { return bytes.Clone(k[:]), nil }

// UnmarshalText reads a key from its text.
func (k *Key) UnmarshalText(b []byte) (err error) {
	*k, err = ParseKey(string(b))
	return err
}

func isKey[S ~string | ~[]byte](s S) bool {
	for i := range len(s) {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// KeyFromPath splits a URL path that starts with a key segment,
// "/KEY/announce" (or "/KEY" alone), into the key and the rest
// ("/announce", or ""). ok is false, and rest the whole path, when the
// first segment is not a key. It allocates nothing: frontends call it on
// every request.
func KeyFromPath[S ~string | ~[]byte](path S) (k Key, rest S, ok bool) {
	if len(path) < 1+KeyLen || path[0] != '/' || len(path) > 1+KeyLen && path[1+KeyLen] != '/' || !isKey(path[1:1+KeyLen]) {
		return k, path, false
	}
	for i := range KeyLen {
		k[i] = path[1+i]
	}
	return k, path[1+KeyLen:], true
}

// ParseKeys reads a keys file: one key per line, 32 characters of
// [A-Za-z0-9], surrounding white space ignored. Blank lines and lines
// starting with '#' are skipped; any other line is returned as a LineError
// and skipped.
func ParseKeys(r io.Reader) (map[Key]struct{}, []LineError, error) {
	set := make(map[Key]struct{})
	var bad []LineError
	err := scanLines(r, func(n int, line string) {
		k, err := ParseKey(line)
		if err != nil {
			bad = append(bad, LineError{n, truncate(line), wantKey})
			return
		}
		set[k] = struct{}{}
	})
	if err != nil {
		return nil, bad, err
	}
	return set, bad, nil
}

// wantKey is the LineError.Want of a keys file.
const wantKey = "a key (32 characters of A-Z, a-z, 0-9)"

// Keys is the set of keys in a keys file (access.keys), reloaded when the
// file changes, and edited through Add and Remove, which rewrite the file.
type Keys struct {
	set  atomic.Pointer[map[Key]struct{}]
	file watchedFile
}

// NewKeys returns the keys of the file at path, empty until Reload reads
// it: herald builds its frontends before it drops privileges, and reads
// the file after, as the user that will rewrite it.
func NewKeys(path string, log *slog.Logger) *Keys {
	k := &Keys{}
	k.set.Store(&map[Key]struct{}{})
	k.file = newWatchedFile(path, "access keys", "keys file", log, k.load)
	k.file.create = true
	return k
}

// OpenKeys is NewKeys and Reload: a missing or unreadable file is an
// error.
func OpenKeys(path string, log *slog.Logger) (*Keys, error) {
	k := NewKeys(path, log)
	if err := k.Reload(); err != nil {
		return nil, err
	}
	return k, nil
}

// Listed reports whether k is a listed key. It takes no lock and
// allocates nothing.
func (k *Keys) Listed(key *Key) bool {
	_, ok := (*k.set.Load())[*key]
	return ok
}

// Len is the number of keys listed.
func (k *Keys) Len() int { return len(*k.set.Load()) }

// List returns the listed keys, sorted.
func (k *Keys) List() []Key {
	set := *k.set.Load()
	keys := make([]Key, 0, len(set))
	for key := range set {
		keys = append(keys, key)
	}
	slices.SortFunc(keys, func(a, b Key) int { return bytes.Compare(a[:], b[:]) })
	return keys
}

// Reload reads the file again and swaps the new set in. Bad lines are
// logged with their numbers and skipped. If the file cannot be read, the
// last good set stays and the error is returned.
func (k *Keys) Reload() error { return k.file.reload() }

// Watch reloads the keys when the file changes, until ctx is done, as
// List.Watch does.
func (k *Keys) Watch(ctx context.Context, interval time.Duration) { k.file.watch(ctx, interval) }

func (k *Keys) load(r io.Reader) (int, []LineError, error) {
	set, bad, err := ParseKeys(r)
	if err != nil {
		return 0, bad, err
	}
	k.set.Store(&set)
	return len(set), bad, nil
}

// Add lists key (its text, as in the file), appending it to the file;
// added is false if it was listed already (the file is then left alone).
// A text that is not a key is ErrKey.
func (k *Keys) Add(key string) (added bool, err error) {
	parsed, err := ParseKey(key)
	if err != nil {
		return false, err
	}
	return k.edit(parsed, true)
}

// Remove unlists key, deleting its lines from the file; removed is false
// if it was not listed.
func (k *Keys) Remove(key string) (removed bool, err error) {
	parsed, err := ParseKey(key)
	if err != nil {
		return false, err
	}
	return k.edit(parsed, false)
}

// edit adds or removes key in the file (see watchedFile.edit) and in the
// set; it reports whether that changed anything.
func (k *Keys) edit(key Key, add bool) (bool, error) {
	n, err := k.file.edit(func(data []byte) ([]byte, int, error) {
		var out []byte
		listed := false
		for line := range bytes.Lines(data) {
			if bytes.Equal(bytes.TrimSpace(line), key[:]) {
				listed = true
				if !add {
					continue
				}
			}
			out = append(out, line...)
		}
		if listed == add {
			return nil, 0, nil
		}
		if add {
			if len(out) > 0 && out[len(out)-1] != '\n' {
				out = append(out, '\n')
			}
			out = append(append(out, key[:]...), '\n')
		}
		return out, 1, nil
	})
	return n > 0, err
}

// lineKey reads the key of a keys file's line, as ParseKeys does.
func lineKey(line []byte) (Key, bool) {
	k, err := ParseKey(string(bytes.TrimSpace(line)))
	return k, err == nil
}

// State returns the listed keys, in no order, and when the file they were
// loaded from was last modified (zero if it was never read): what a node
// of a cluster hands one that catches up.
func (k *Keys) State() ([]Key, time.Time) {
	k.file.mu.Lock()
	defer k.file.mu.Unlock()
	set := *k.set.Load()
	keys := make([]Key, 0, len(set))
	for key := range set {
		keys = append(keys, key)
	}
	return keys, k.file.stamp.mod
}

// Changed is when the file the keys were loaded from was last modified,
// zero if it was never read.
func (k *Keys) Changed() time.Time { return k.file.changedAt() }

// Replace makes keys the listed keys: it drops the lines of the keys not
// in keys and appends the ones not listed, in one rewrite of the file
// (created, mode 0600, if missing), and returns how many it added and
// removed.
func (k *Keys) Replace(keys []Key) (added, removed int, err error) {
	want := make(map[Key]struct{}, len(keys))
	for _, key := range keys {
		want[key] = struct{}{}
	}
	_, err = k.file.edit(func(data []byte) ([]byte, int, error) {
		var out []byte
		out, added, removed = replaceEntries(data, want, lineKey, func(b []byte, key Key) []byte { return append(b, key[:]...) })
		return out, added + removed, nil
	})
	return added, removed, err
}
