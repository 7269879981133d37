package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"herald/internal/heraldtest"
	"herald/internal/servetest"
)

const adminToken = "test-token-0123456789abcdef"

// adminCall sends one request to herald's admin API and decodes the reply.
func adminCall(t *testing.T, base, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var v map[string]any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s %s: %q: %v", method, path, data, err)
	}
	return resp.StatusCode, v
}

// adminFiles writes a token file (mode 0600) and an empty whitelist.
func adminFiles(t *testing.T) (token, list string) {
	dir := t.TempDir()
	token, list = filepath.Join(dir, "admin.token"), filepath.Join(dir, "whitelist")
	if err := os.WriteFile(token, []byte(adminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(list, []byte("# empty\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return token, list
}

// Issue 15 item 3: through herald's admin API a torrent is whitelisted and
// served, an address banned and refused with the banned text, and the ban
// kept across a restart in the ban file; the configuration it shows holds
// no secret.
func TestAdminAPIChangesWhatHeraldServes(t *testing.T) {
	token, list := adminFiles(t)
	port, adminPort := freePort(t), freePort(t)
	banFile := filepath.Join(t.TempDir(), "herald.bans")
	args := []string{"-w", list, "-snapshot", "off", "-ban-file", banFile, "-listen-admin", fmt.Sprint(adminPort),
		"-admin-token-file", token, "-cluster-password", "nats-secret", "-cluster-user", "u", "-cluster-nats-url", "nats://127.0.0.1:1"}
	h := startHerald(t, port, args...)
	api := fmt.Sprintf("http://127.0.0.1:%d", adminPort)

	if _, fr := announceReply(t, h.URL, hashOf(1), 5000); !strings.Contains(fr, "not authorized") {
		t.Fatalf("unlisted torrent: %q", fr)
	}
	if status, body := adminCall(t, api, "POST", "/access-list", fmt.Sprintf(`{"add": ["%s"]}`, hexOf(hashOf(1)))); status != 200 || body["added"] != 1.0 {
		t.Fatalf("add: %d %v", status, body)
	}
	if _, fr := announceReply(t, h.URL, hashOf(1), 5000); fr != "" {
		t.Fatalf("whitelisted torrent refused: %q", fr)
	}
	if status, body := adminCall(t, api, "POST", "/bans", `{"prefix": "127.0.0.0/8", "duration": "1h"}`); status != 201 {
		t.Fatalf("ban: %d %v", status, body)
	}
	if _, fr := announceReply(t, h.URL, hashOf(1), 5000); !strings.Contains(fr, "banned") {
		t.Fatalf("banned client: %q", fr)
	}
	resp, err := http.Get(h.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"\nherald_bans_active 1\n", "\nherald_errors_total{protocol=\"http\",reason=\"banned\"} 1\n"} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	status, cfg := adminCall(t, api, "GET", "/config", "")
	raw, _ := json.Marshal(cfg)
	if status != 200 || strings.Contains(string(raw), "nats-secret") || !strings.Contains(string(raw), `"Password":"redacted"`) || !strings.Contains(string(raw), `"Whitelist":"`+list) {
		t.Errorf("config: %d %s", status, raw)
	}
	h.Stop(t)

	h = startHerald(t, port, args...)
	if _, fr := announceReply(t, h.URL, hashOf(1), 5000); !strings.Contains(fr, "banned") {
		t.Fatalf("after a restart, the banned client: %q", fr)
	}
	if status, body := adminCall(t, api, "DELETE", "/bans/127.0.0.0/8", ""); status != 200 {
		t.Fatalf("unban: %d %v", status, body)
	}
	if _, fr := announceReply(t, h.URL, hashOf(1), 5000); fr != "" {
		t.Fatalf("after the restart and the unban, the listed torrent: %q", fr)
	}
}

// The API does not start on a token file others may read.
func TestAdminAPIRefusesAReadableToken(t *testing.T) {
	token, _ := adminFiles(t)
	os.Chmod(token, 0o644)
	h := heraldtest.Run(t, "-listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "-snapshot", "off",
		"-listen-admin", fmt.Sprint(freePort(t)), "-admin-token-file", token)
	select {
	case <-h.Exited():
	case <-time.After(heraldtest.Timeout):
		t.Fatal("herald started")
	}
	if !strings.Contains(h.Output(), "admin.token_file") || !strings.Contains(h.Output(), "chmod 600") {
		t.Errorf("output:\n%s", h.Output())
	}
}

// Issue 15 item 3: a change made through one node's admin API reaches the
// other node of a cluster, which applies it to its own list, within a
// second.
func TestAdminChangesReachTheOtherNode(t *testing.T) {
	natsURL := heraldtest.StartNATS(t)
	tokenA, listA := adminFiles(t)
	_, listB := adminFiles(t)
	adminPort := freePort(t)
	common := []string{"-snapshot", "off", "-ban-file", "off", "-cluster-nats-url", natsURL, "-cluster-flush", "50ms"}
	startHerald(t, freePort(t), append(common, "-cluster-node", "a", "-w", listA,
		"-listen-admin", fmt.Sprint(adminPort), "-admin-token-file", tokenA)...)
	b := startHerald(t, freePort(t), append(common, "-cluster-node", "b", "-w", listB)...)
	api := fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	add := func(i int) {
		if status, body := adminCall(t, api, "POST", "/access-list", fmt.Sprintf(`{"add": ["%s"]}`, hexOf(hashOf(i)))); status != 200 {
			t.Fatalf("add: %d %v", status, body)
		}
	}
	served := func(i int) error {
		if _, fr := announceReply(t, b.URL, hashOf(i), 5000); fr != "" {
			return fmt.Errorf("b: %s", fr)
		}
		return nil
	}
	// Until both nodes' admin connections are up, a change stays on a.
	servetest.WaitFor(t, 10*time.Second, func() error { add(1); return served(1) })

	add(2)
	start := time.Now()
	servetest.WaitFor(t, time.Second, func() error { return served(2) })
	t.Logf("a's change served by b after %v", time.Since(start).Round(time.Millisecond))
	if data, _ := os.ReadFile(listB); !strings.Contains(string(data), hexOf(hashOf(2))) {
		t.Errorf("b's list file:\n%s", data)
	}
}

// Issue 15 (cluster catch-up): a node that was not running while changes
// were made through another node's API takes them when it starts: its
// older list file is replaced by the newer one's contents, and the bans
// are merged.
func TestNodeStartedLaterTakesTheAdminState(t *testing.T) {
	natsURL := heraldtest.StartNATS(t)
	tokenA, listA := adminFiles(t)
	_, listB := adminFiles(t)
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(listB, old, old); err != nil {
		t.Fatal(err)
	}
	adminPort := freePort(t)
	common := []string{"-snapshot", "off", "-ban-file", "off", "-cluster-nats-url", natsURL, "-cluster-flush", "50ms"}
	startHerald(t, freePort(t), append(common, "-cluster-node", "a", "-w", listA,
		"-listen-admin", fmt.Sprint(adminPort), "-admin-token-file", tokenA)...)
	api := fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	if status, body := adminCall(t, api, "POST", "/access-list", fmt.Sprintf(`{"add": ["%s"]}`, hexOf(hashOf(1)))); status != 200 {
		t.Fatalf("add: %d %v", status, body)
	}
	if status, body := adminCall(t, api, "POST", "/bans", `{"prefix": "198.51.100.0/24", "duration": "1h"}`); status != 201 {
		t.Fatalf("ban: %d %v", status, body)
	}

	b := startHerald(t, freePort(t), append(common, "-cluster-node", "b", "-w", listB)...)
	start := time.Now()
	servetest.WaitFor(t, 10*time.Second, func() error {
		if _, fr := announceReply(t, b.URL, hashOf(1), 5000); fr != "" {
			return fmt.Errorf("b: %s", fr)
		}
		return nil
	})
	t.Logf("b serves the torrent a listed before b started %v after b served", time.Since(start).Round(time.Millisecond))
	if data, _ := os.ReadFile(listB); !strings.Contains(string(data), hexOf(hashOf(1))) {
		t.Errorf("b's list file:\n%s", data)
	}
	servetest.WaitFor(t, 5*time.Second, func() error {
		metrics, err := scrape(b.URL)
		if err != nil {
			return err
		}
		for _, want := range []string{"\nherald_bans_active 1\n", "\nherald_cluster_events_total{event=\"admin_catch_up\"} 1\n"} {
			if !strings.Contains(metrics, want) {
				return fmt.Errorf("b's /metrics lacks %q", want)
			}
		}
		return nil
	})
}
