package privdrop

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPaths(t *testing.T) {
	root := t.TempDir()
	p, err := Prepare(root, "")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ in, now, after, err string }{
		{"list.txt", filepath.Join(root, "list.txt"), "/list.txt", ""},
		{filepath.Join(root, "lists", "w.txt"), filepath.Join(root, "lists", "w.txt"), "/lists/w.txt", ""},
		{"/etc/passwd", "", "", "outside tracker.rootdir"},
		{"../escape", "", "", "outside tracker.rootdir"},
	}
	for _, c := range cases {
		now, after, err := p.Paths(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("Paths(%q): err %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || now != c.now || after != c.after {
			t.Errorf("Paths(%q) = %q, %q, %v; want %q, %q", c.in, now, after, err, c.now, c.after)
		}
	}
	var none *Plan
	if now, after, err := none.Paths("x"); err != nil || now != after || !filepath.IsAbs(now) {
		t.Errorf("no plan: %q %q %v", now, after, err)
	}
}

func TestPrepareErrors(t *testing.T) {
	if p, err := Prepare("", ""); p != nil || err != nil {
		t.Errorf("nothing asked: %v %v", p, err)
	}
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, nil, 0o644)
	if _, err := Prepare(file, ""); err == nil {
		t.Error("a file accepted as rootdir")
	}
	if _, err := Prepare("", "no-such-user-herald"); err == nil {
		t.Error("a missing user accepted")
	}
}
