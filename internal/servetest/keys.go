package servetest

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"herald/access"
)

// Keys writes a keys file of n keys (access.keys) and opens it; key i is
// Key(i).
func Keys(t testing.TB, n int) *access.Keys {
	t.Helper()
	var file strings.Builder
	for i := range n {
		file.WriteString(Key(i) + "\n")
	}
	path := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(path, []byte(file.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := access.OpenKeys(path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// Key is the text of key i of Keys.
func Key(i int) string { return fmt.Sprintf("ServetestKey%020d", i) }
