package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"herald/access"
	"herald/accounting"
	"herald/snapshot"
	"herald/swarm"
)

const (
	memberKey = "Member0Key0Of0The0Site0000000001"
	laterKey  = "Member0Key0Added0Later0000000002"
)

// keyFailure is the failure reason of an HTTP announce through base (with
// its path prefix), "" for an accepted one.
func keyFailure(t *testing.T, base string, port int) string {
	t.Helper()
	_, fr := announceReply(t, base, hashOf(1), port)
	return fr
}

// Issue 15 item 1: with access.keys, an announce or scrape must carry a
// listed key in its path; keys combine with the whitelist; the file is
// reloaded when it changes and on SIGHUP.
func TestKeysGateAnnouncesAndScrapes(t *testing.T) {
	dir := t.TempDir()
	keys, list := filepath.Join(dir, "keys"), filepath.Join(dir, "whitelist")
	os.WriteFile(keys, []byte("# members\n"+memberKey+"\nnot-a-key\n"), 0o600)
	os.WriteFile(list, []byte(hexOf(hashOf(1))+"\n"), 0o644)
	h := startHerald(t, freePort(t), "-keys", keys, "-w", list, "-snapshot", "off", "-access-reload", "50ms")
	member := h.URL + "/" + memberKey

	if fr := keyFailure(t, member, 7001); fr != "" {
		t.Fatalf("member's announce refused: %q", fr)
	}
	for what, base := range map[string]string{"no key": h.URL, "unknown key": h.URL + "/" + laterKey} {
		if fr := keyFailure(t, base, 7002); fr != "unknown key" {
			t.Errorf("%s: failure %q, want \"unknown key\"", what, fr)
		}
	}
	if _, fr := announceReply(t, member, hashOf(2), 7001); !strings.Contains(fr, "not authorized") {
		t.Errorf("member announcing an unlisted torrent: %q, want the whitelist's refusal", fr)
	}
	scrape := "/scrape?info_hash=" + url.QueryEscape(hashKey(1))
	d := get(t, member+scrape)
	if f, _ := d["files"].(map[string]any)[hashKey(1)].(map[string]any); f["incomplete"] != int64(1) {
		t.Errorf("member's scrape: %v, want the one leecher it announced (refused announces store nothing)", d)
	}
	if _, fr := announceReplyURL(t, h.URL+scrape); fr != "unknown key" {
		t.Errorf("scrape with no key: failure %q", fr)
	}
	// Two announces and a scrape refused over HTTP, counted by reason.
	resp, err := http.Get(h.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `herald_errors_total{protocol="http",reason="unknown_key"} 3`; !strings.Contains(string(metrics), want) {
		t.Errorf("/metrics lacks %s", want)
	}
	if !strings.Contains(h.Output(), `keys file line skipped`) || !strings.Contains(h.Output(), "line=3") {
		t.Errorf("the bad line was not reported with its number:\n%s", h.Output())
	}

	// A changed file is loaded by the periodic check.
	os.WriteFile(keys+".new", []byte(laterKey+"\n"), 0o600)
	os.Rename(keys+".new", keys)
	waitFor(t, func() bool { return keyFailure(t, h.URL+"/"+laterKey, 7003) == "" }, "the added key to be accepted")
	if fr := keyFailure(t, member, 7001); fr != "unknown key" {
		t.Errorf("removed key: failure %q", fr)
	}
	// And SIGHUP loads it at once.
	os.WriteFile(keys+".new", []byte(memberKey+"\n"), 0o600)
	os.Rename(keys+".new", keys)
	h.Cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, func() bool { return keyFailure(t, member, 7001) == "" }, "the key to be accepted after SIGHUP")
}

// Without access.keys nothing changes for paths without a key, and a path
// that starts with a key is served as if it had none: a tracker that stops
// being private keeps serving the torrent files that carry keyed URLs.
func TestKeysOffIgnoresKeyInPath(t *testing.T) {
	h := startHerald(t, freePort(t), "-snapshot", "off")
	for _, base := range []string{h.URL, h.URL + "/" + memberKey} {
		if fr := keyFailure(t, base, 7001); fr != "" {
			t.Errorf("%s: failure %q", base, fr)
		}
	}
}

func waitFor(t *testing.T, ok func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// Issue 15 item 2: the per-key accounting is saved in the snapshot and
// restored at start, peers included: a peer's next announce after the
// restart counts its growth since its last announce before it.
func TestAccountingSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	keys, snap := filepath.Join(dir, "keys"), filepath.Join(dir, "herald.snapshot")
	os.WriteFile(keys, []byte(memberKey+"\n"), 0o600)
	port := freePort(t)
	args := []string{"-keys", keys, "-snapshot", snap}
	uploaded := func(base string, n int) {
		t.Helper()
		get(t, announceURL(base+"/"+memberKey, hashOf(1), 7001, 1, 0)+fmt.Sprintf("&uploaded=%d", n))
	}
	saved := func() accounting.Entry {
		t.Helper()
		store, _ := swarm.New(swarm.Config{})
		ledger := accounting.New(time.Hour, 0)
		if _, err := snapshot.Load(snap, store, ledger, time.Now()); err != nil {
			t.Fatal(err)
		}
		k, _ := access.ParseKey(memberKey)
		e, _ := ledger.Get(k)
		return e
	}
	h := startHerald(t, port, args...)
	uploaded(h.URL, 1000) // the baseline
	uploaded(h.URL, 1500)
	h.Stop(t)
	if e := saved(); e.Announces != 2 || e.Uploaded != 500 || e.ActiveTorrents != 1 {
		t.Fatalf("saved accounting %+v, want 2 announces, 500 bytes uploaded, 1 torrent", e)
	}
	h = startHerald(t, port, args...)
	uploaded(h.URL, 4000)
	h.Stop(t)
	if e := saved(); e.Announces != 3 || e.Uploaded != 3000 {
		t.Fatalf("after a restart, accounting %+v, want 3 announces and 3000 bytes uploaded", e)
	}
}
