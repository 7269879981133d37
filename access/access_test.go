package access

import (
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"herald/swarm"
)

func hash(s string) swarm.InfoHash {
	var h swarm.InfoHash
	hex.Decode(h[:], []byte(s))
	return h
}

const (
	hashA = "0123456789abcdef0123456789abcdef01234567"
	hashB = "FEDCBA9876543210FEDCBA9876543210FEDCBA98"
	hashC = "1111111111111111111111111111111111111111"
)

func TestParse(t *testing.T) {
	in := "# comment\n\n" + hashA + "\n" + hashB + " ubuntu.iso\n" + "  " + hashC + "\t# indented\n" +
		"0123\n" + hashA + "0\n" + "zz23456789abcdef0123456789abcdef01234567\n"
	set, bad, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(set) != 3 {
		t.Fatalf("parsed %d hashes, want 3", len(set))
	}
	for _, h := range []string{hashA, hashB, hashC} {
		if _, ok := set[hash(h)]; !ok {
			t.Errorf("%s missing", h)
		}
	}
	wantLines := []int{6, 7, 8}
	if len(bad) != len(wantLines) {
		t.Fatalf("bad lines %v, want lines %v", bad, wantLines)
	}
	for i, b := range bad {
		if b.Line != wantLines[i] {
			t.Errorf("bad line %d reported as %d", wantLines[i], b.Line)
		}
	}
	if !strings.Contains(bad[0].Error(), "line 6") {
		t.Errorf("error text %q does not name the line", bad[0].Error())
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestModes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "list")
	writeFile(t, path, hashA+"\n")
	w, err := Open(path, Whitelist, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(path, Blacklist, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !w.Allowed(hash(hashA)) || w.Allowed(hash(hashB)) {
		t.Error("whitelist must allow only listed torrents")
	}
	if b.Allowed(hash(hashA)) || !b.Allowed(hash(hashB)) {
		t.Error("blacklist must refuse only listed torrents")
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing"), Whitelist, nil); err == nil {
		t.Error("a missing list at start must be an error")
	}
}

func TestReloadKeepsLastGoodList(t *testing.T) {
	path := filepath.Join(t.TempDir(), "list")
	writeFile(t, path, hashA+"\n")
	l, err := Open(path, Whitelist, nil)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, hashA+"\n"+hashB+"\n")
	if err := l.Reload(); err != nil || !l.Allowed(hash(hashB)) {
		t.Fatalf("reload: %v, B allowed %v", err, l.Allowed(hash(hashB)))
	}
	os.Remove(path)
	if err := l.Reload(); err == nil {
		t.Fatal("reload of a missing file reported no error")
	}
	if !l.Allowed(hash(hashA)) || !l.Allowed(hash(hashB)) || len(*l.set.Load()) != 2 {
		t.Fatal("a missing file replaced the last good list")
	}
}

func TestWatchReloadsOnChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "list")
	writeFile(t, path, hashA+"\n")
	l, err := Open(path, Whitelist, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { l.Watch(ctx, 10*time.Millisecond) })
	defer func() { cancel(); wg.Wait() }()

	// Readers never see a missing or half-built list while it changes.
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if !l.Allowed(hash(hashA)) {
					t.Error("hash A, in every version of the file, was refused during a reload")
					return
				}
			}
		})
	}
	writeFile(t, path, hashA+"\n"+hashC+" added\n")
	deadline := time.Now().Add(5 * time.Second)
	for !l.Allowed(hash(hashC)) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	readers.Wait()
	if !l.Allowed(hash(hashC)) {
		t.Fatal("a changed file was not picked up within 5s")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(hashA + "\n# c\n\n" + hashB + " x\n")
	f.Add("0123\n")
	f.Fuzz(func(t *testing.T, in string) {
		set, bad, err := Parse(strings.NewReader(in))
		if err != nil {
			return
		}
		lines := strings.Count(in, "\n") + 1
		if len(set)+len(bad) > lines {
			t.Fatalf("%d hashes and %d bad lines from %d lines", len(set), len(bad), lines)
		}
	})
}

// Issue 14 item 12: a list rewritten in place (truncated, then written) is
// seen half-written by a check in between; only a file that stayed the
// same across two checks is loaded.
func TestInPlaceRewriteNotLoadedHalfWritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "list")
	writeFile(t, path, hashA+"\n"+hashB+"\n")
	l, err := Open(path, Whitelist, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	step := func(what string) {
		t.Helper()
		if err := l.file.poll(); err != nil {
			t.Fatal(err)
		}
		if !l.Allowed(hash(hashA)) || !l.Allowed(hash(hashB)) {
			t.Fatalf("%s: the half-written file replaced the list (%d torrents)", what, len(*l.set.Load()))
		}
	}
	step("truncated")
	f.WriteString(hashA + "\n" + hashB[:20])
	step("written up to half a line")
	f.WriteString(hashB[20:] + "\n" + hashC + "\n")
	step("written, changed since the last check")
	if err := l.file.poll(); err != nil {
		t.Fatal(err)
	}
	if !l.Allowed(hash(hashC)) || len(*l.set.Load()) != 3 {
		t.Fatalf("the file, unchanged across two checks, was not loaded (%d torrents)", len(*l.set.Load()))
	}
}

// List.Add and Remove rewrite the file in place of the operator's hand:
// comments, names after a hash and the mode stay; a missing list file is
// an error, not a new list (only a keys file is created when missing).
func TestListEditKeepsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "whitelist")
	if err := os.WriteFile(path, []byte("# mine\n"+hashA+" ubuntu.iso"), 0o640); err != nil {
		t.Fatal(err)
	}
	l, err := Open(path, Whitelist, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := l.Add(hash(hashA), hash(hashB), hash(hashB)); n != 1 || err != nil {
		t.Fatalf("Add: %d new, %v; want 1", n, err)
	}
	if n, err := l.Remove(hash(hashA), hash(hashC)); n != 1 || err != nil {
		t.Fatalf("Remove: %d listed, %v; want 1", n, err)
	}
	data, _ := os.ReadFile(path)
	if want := "# mine\n" + strings.ToLower(hashB) + "\n"; string(data) != want {
		t.Fatalf("file %q, want %q", data, want)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want the original 0640", st.Mode().Perm())
	}
	if l.Contains(hash(hashA)) || !l.Contains(hash(hashB)) || l.Len() != 1 {
		t.Fatalf("serving A %v, B %v, %d hashes", l.Contains(hash(hashA)), l.Contains(hash(hashB)), l.Len())
	}
	os.Remove(path)
	if _, err := l.Add(hash(hashC)); err == nil {
		t.Fatal("Add to a missing list file: no error")
	}
	if _, err := os.Stat(path); err == nil {
		t.Fatal("Add created the missing list file")
	}
}
