package admin_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"herald/access"
	"herald/admin"
	"herald/bans"
)

// FuzzRequestBodies sends arbitrary bodies to every route that takes one.
// Whatever the body, the reply is JSON with the route's success status or
// a client error (400, or 413), never a server error, and the list file
// stays a list herald reads.
func FuzzRequestBodies(f *testing.F) {
	f.Add(uint8(0), []byte(`{"add": ["746f7272656e742d303030303030303030303032"], "remove": []}`))
	f.Add(uint8(0), []byte(`{"remove": ["746F7272656E742D303030303030303030303031"]}`))
	f.Add(uint8(0), []byte(`{"add": null}`))
	f.Add(uint8(1), []byte(`{"prefix": "198.51.100.0/24", "duration": "24h"}`))
	f.Add(uint8(1), []byte(`{"prefix": "::ffff:192.0.2.1", "expires": "2099-01-01T00:00:00Z"}`))
	f.Add(uint8(1), []byte(`{"prefix": "fe80::1%eth0", "duration": "1h"}`))
	f.Add(uint8(1), []byte(`{"prefix": "10.0.0.1", "duration": "1h", "expires": "2099-01-01T00:00:00Z"}`))
	f.Add(uint8(1), []byte(`[]`))
	dir := f.TempDir()
	listPath := filepath.Join(dir, "whitelist")
	if err := os.WriteFile(listPath, []byte("746f7272656e742d303030303030303030303031\n"), 0o644); err != nil {
		f.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	list, err := access.Open(listPath, access.Whitelist, quiet)
	if err != nil {
		f.Fatal(err)
	}
	table, err := bans.New(bans.Config{Logger: quiet})
	if err != nil {
		f.Fatal(err)
	}
	s, err := admin.New(admin.Config{Token: token, List: list, Bans: table, Logger: quiet})
	if err != nil {
		f.Fatal(err)
	}
	routes := []struct {
		path string
		ok   int
	}{{"/access-list", http.StatusOK}, {"/bans", http.StatusCreated}}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		r := routes[int(route)%len(routes)]
		req := httptest.NewRequest("POST", r.path, strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		var reply map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &reply); err != nil {
			t.Fatalf("reply %q is no JSON object: %v", rec.Body.Bytes(), err)
		}
		switch rec.Code {
		case r.ok:
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			if msg, _ := reply["error"].(string); msg == "" {
				t.Fatalf("status %d without an error text: %s", rec.Code, rec.Body.Bytes())
			}
		default:
			t.Fatalf("body %q: status %d, %s", body, rec.Code, rec.Body.Bytes())
		}
		fh, err := os.Open(listPath)
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		if _, bad, err := access.Parse(fh); err != nil || len(bad) > 0 {
			t.Fatal(fmt.Sprint("list file no longer reads: ", err, bad))
		}
	})
}
