package access

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	keyA = "0123456789abcdefghijklmnopqrstuv"
	keyB = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
	keyC = "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"
)

func mustKey(t testing.TB, s string) Key {
	t.Helper()
	k, err := ParseKey(s)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return k
}

func TestParseKeys(t *testing.T) {
	in := "# members\n\n" + keyA + "\n  " + keyB + "\t\n" +
		keyA[:31] + "\n" + keyA + "0\n" + "0123456789abcdefghijklmnopqrstu-\n" + keyC + " # trailing comment\n" + keyC + "\n"
	set, bad, err := ParseKeys(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(set) != 3 {
		t.Fatalf("parsed %d keys, want 3", len(set))
	}
	for _, k := range []string{keyA, keyB, keyC} {
		if _, ok := set[mustKey(t, k)]; !ok {
			t.Errorf("%s missing", k)
		}
	}
	wantLines := []int{5, 6, 7, 8}
	if len(bad) != len(wantLines) {
		t.Fatalf("bad lines %v, want lines %v", bad, wantLines)
	}
	for i, b := range bad {
		if b.Line != wantLines[i] {
			t.Errorf("bad line %d reported as %d", wantLines[i], b.Line)
		}
	}
	if msg := bad[0].Error(); !strings.Contains(msg, "line 5") || !strings.Contains(msg, "not a key") {
		t.Errorf("error text %q does not name the line and what it should be", msg)
	}
}

func TestKeyFromPath(t *testing.T) {
	for _, c := range []struct {
		path, rest string
		ok         bool
	}{
		{"/" + keyA + "/announce", "/announce", true},
		{"/" + keyA + "/scrape", "/scrape", true},
		{"/" + keyA, "", true},
		{"/" + keyA + "/", "/", true},
		{"/announce", "/announce", false},
		{"/" + keyA + "x/announce", "/" + keyA + "x/announce", false},
		{"/" + keyA[:31] + "/announce", "/" + keyA[:31] + "/announce", false},
		{"/" + keyA[:31] + "%/announce", "/" + keyA[:31] + "%/announce", false},
		{keyA + "/announce", keyA + "/announce", false},
		{"", "", false},
	} {
		k, rest, ok := KeyFromPath(c.path)
		if ok != c.ok || rest != c.rest || ok && k != mustKey(t, keyA) {
			t.Errorf("%q: key %q, rest %q, ok %v; want rest %q, ok %v", c.path, k.String(), rest, ok, c.rest, c.ok)
		}
		if _, brest, bok := KeyFromPath([]byte(c.path)); bok != ok || string(brest) != rest {
			t.Errorf("%q as bytes: rest %q, ok %v", c.path, brest, bok)
		}
	}
	if n := testing.AllocsPerRun(100, func() { KeyFromPath("/" + keyA + "/announce") }); n != 0 {
		t.Errorf("KeyFromPath allocates %v times", n)
	}
}

func TestKeysAddRemovePersist(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	orig := "# members of the site\n" + keyA + "\nnot a key\n"
	if err := os.WriteFile(path, []byte(orig), 0o640); err != nil {
		t.Fatal(err)
	}
	keys, err := OpenKeys(path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	a, b := mustKey(t, keyA), mustKey(t, keyB)
	if !keys.Listed(&a) || keys.Listed(&b) || keys.Len() != 1 {
		t.Fatalf("loaded: A %v, B %v, %d keys", keys.Listed(&a), keys.Listed(&b), keys.Len())
	}
	if added, err := keys.Add(keyB); !added || err != nil {
		t.Fatalf("Add(B): %v, %v", added, err)
	}
	if added, err := keys.Add(keyB); added || err != nil {
		t.Fatalf("Add(B) again: %v, %v; want false, nil", added, err)
	}
	if !keys.Listed(&b) || !slices.Equal(keys.List(), []Key{a, b}) {
		t.Fatalf("after Add: B listed %v, list %v", keys.Listed(&b), keys.List())
	}
	if removed, err := keys.Remove(keyA); !removed || err != nil {
		t.Fatalf("Remove(A): %v, %v", removed, err)
	}
	if removed, err := keys.Remove(keyA); removed || err != nil {
		t.Fatalf("Remove(A) again: %v, %v; want false, nil", removed, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "# members of the site\nnot a key\n" + keyB + "\n"; string(data) != want {
		t.Fatalf("file after edits:\n%s\nwant\n%s", data, want)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o640 {
		t.Errorf("file mode %v after rewrite, want the original 0640", st.Mode().Perm())
	}
	if left, _ := filepath.Glob(path + ".tmp-*"); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
	// What another herald (or a restart) reads is what this one serves.
	again, err := OpenKeys(path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(again.List(), keys.List()) {
		t.Fatalf("reread %v, serving %v", again.List(), keys.List())
	}
	for _, bad := range []string{"", keyA[:31], keyA + "0", keyA[:31] + "-"} {
		if _, err := keys.Add(bad); err != ErrKey {
			t.Errorf("Add(%q): %v, want ErrKey", bad, err)
		}
	}
}

// A key added to a file that does not exist creates it, readable by its
// owner only.
func TestKeysAddCreatesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	keys := NewKeys(path, slog.New(slog.DiscardHandler))
	if _, err := keys.Add(keyC); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil || string(data) != keyC+"\n" {
		t.Fatalf("file %q, %v", data, err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("new file mode %v, want 0600", st.Mode().Perm())
	}
}

func TestKeysWatchReloads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	writeFile(t, path, keyA+"\n")
	keys, err := OpenKeys(path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go keys.Watch(ctx, 10*time.Millisecond)
	writeFile(t, path, keyB+"\n"+keyC+"\n")
	a, b := mustKey(t, keyA), mustKey(t, keyB)
	for deadline := time.Now().Add(5 * time.Second); keys.Listed(&a) || !keys.Listed(&b); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not reloaded: A %v, B %v", keys.Listed(&a), keys.Listed(&b))
		}
	}
	if keys.Len() != 2 {
		t.Fatalf("%d keys after reload, want 2", keys.Len())
	}
	// An unreadable file keeps the last good keys.
	os.Remove(path)
	if err := keys.Reload(); err == nil || !keys.Listed(&b) {
		t.Fatalf("reload of a missing file: %v, B listed %v", err, keys.Listed(&b))
	}
}

func BenchmarkKeysListed(b *testing.B) {
	path := filepath.Join(b.TempDir(), "keys")
	var file bytes.Buffer
	for i := range 100000 {
		file.WriteString(strings.Repeat("k", 24))
		file.WriteString(strings.Repeat("0", 8-len(itoa(i))) + itoa(i) + "\n")
	}
	os.WriteFile(path, file.Bytes(), 0o600)
	keys, err := OpenKeys(path, slog.New(slog.DiscardHandler))
	if err != nil || keys.Len() != 100000 {
		b.Fatalf("%d keys, %v", keys.Len(), err)
	}
	k := mustKey(b, strings.Repeat("k", 24)+"00054321")
	b.ReportAllocs()
	for b.Loop() {
		if !keys.Listed(&k) {
			b.Fatal("not listed")
		}
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

func FuzzParseKeys(f *testing.F) {
	f.Add([]byte("# c\n" + keyA + "\n\n  " + keyB + " \n"))
	f.Add([]byte(keyA[:31] + "\n" + keyA + "!\n"))
	f.Add([]byte("\x00\xff\r\n" + keyC))
	f.Fuzz(func(t *testing.T, data []byte) {
		set, bad, err := ParseKeys(bytes.NewReader(data))
		if err != nil {
			return // a line over the scanner's limit
		}
		for k := range set {
			if !isKey(k[:]) || !bytes.Contains(data, k[:]) {
				t.Fatalf("key %q parsed from %q", k, data)
			}
		}
		for _, b := range bad {
			if b.Line < 1 || b.Line > bytes.Count(data, []byte("\n"))+1 {
				t.Fatalf("bad line number %d", b.Line)
			}
		}
	})
}

// Keys.Replace (a cluster catch-up) makes the file list exactly the keys
// given in one rewrite: comments and bad lines stay, a missing file is
// created readable by its owner only, and State reads back what it wrote.
func TestKeysReplace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	keys := NewKeys(path, slog.New(slog.DiscardHandler))
	a, b, c := mustKey(t, keyA), mustKey(t, keyB), mustKey(t, keyC)
	if added, removed, err := keys.Replace([]Key{a, b}); added != 2 || removed != 0 || err != nil {
		t.Fatalf("Replace into a missing file: +%d -%d, %v", added, removed, err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("new file mode %v, want 0600", st.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	os.WriteFile(path, append([]byte("# members\nnot a key\n"), data...), 0o600)
	if err := keys.Reload(); err != nil {
		t.Fatal(err)
	}
	if added, removed, err := keys.Replace([]Key{b, c}); added != 1 || removed != 1 || err != nil {
		t.Fatalf("Replace: +%d -%d, %v", added, removed, err)
	}
	data, _ = os.ReadFile(path)
	if want := "# members\nnot a key\n" + keyB + "\n" + keyC + "\n"; string(data) != want {
		t.Errorf("file %q, want %q", data, want)
	}
	got, changed := keys.State()
	if st, _ := os.Stat(path); len(got) != 2 || !keys.Listed(&b) || !keys.Listed(&c) || keys.Listed(&a) || !changed.Equal(st.ModTime()) || !keys.Changed().Equal(changed) {
		t.Errorf("State %v at %v", got, changed)
	}
	if added, removed, err := keys.Replace([]Key{c, b}); added+removed != 0 || err != nil {
		t.Errorf("Replace with the same keys: +%d -%d, %v", added, removed, err)
	}
}
