package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"herald/internal/heraldtest"
	"herald/internal/servetest"
)

// Issue 15: a key added through the admin API of one node admits the npm
// client (WebTorrent's tracker client) at http://host/KEY/announce on that
// node and, within a second, on a second node of the cluster; removed, it
// is refused on both, again within a second on the second.
func TestAdminAPIKeyAdmitsAndRefusesARealClientOnEveryNode(t *testing.T) {
	requireClient(t, "npm bittorrent-tracker (e2e/testdata/node)", npmClientInstalled())
	natsURL := heraldtest.StartNATS(t)
	dir := t.TempDir()
	token, keysA, keysB := filepath.Join(dir, "admin.token"), filepath.Join(dir, "a.keys"), filepath.Join(dir, "b.keys")
	const tokenText = "e2e-admin-token-0123456789"
	for path, content := range map[string]string{token: tokenText + "\n", keysA: "# members\n", keysB: "# members\n"} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	adminPort := heraldtest.FreePort(t, "127.0.0.1")
	common := []string{"-snapshot", "off", "-ban-file", "off", "-cluster-nats-url", natsURL, "-cluster-flush", "50ms"}
	a := startHerald(t, "127.0.0.1", append(common, "-cluster-node", "a", "-keys", keysA,
		"-listen-admin", fmt.Sprint(adminPort), "-admin-token-file", token)...)
	b := startHerald(t, "127.0.0.1", append(common, "-cluster-node", "b", "-keys", keysB)...)
	call := func(method, path string) {
		t.Helper()
		req, _ := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", adminPort, path), nil)
		req.Header.Set("Authorization", "Bearer "+tokenText)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("%s %s: status %d", method, path, resp.StatusCode)
		}
	}
	c := startTrackerClient(t)
	infoHash := randomInfoHash(t)
	// The script keeps one client per peer name, with one URL: each
	// announce is a new client.
	clients := 0
	announce := func(h *heraldtest.Herald, key string) error {
		t.Helper()
		clients++
		r := c.do(t, trackerCommand{Op: "announce", Peer: fmt.Sprint(clients), URL: h.URL + "/" + key + "/announce", InfoHash: infoHash, Port: 6881, Event: "started", Left: 1})
		if !r.OK {
			return fmt.Errorf("announce through %s: %s", h.Addr, r.Error)
		}
		return nil
	}
	refused := func(h *heraldtest.Herald, key string) func() error {
		return func() error {
			err := announce(h, key)
			if err == nil {
				return fmt.Errorf("announce through %s accepted", h.Addr)
			}
			if !strings.Contains(err.Error(), "unknown key") {
				return fmt.Errorf("refused for another reason: %v", err)
			}
			return nil
		}
	}
	// Until both nodes' admin connections are up, a change stays on a.
	warmUp := strings.Repeat("W", 32)
	servetest.WaitFor(t, 10*time.Second, func() error { call("PUT", "/keys/"+warmUp); return announce(b, warmUp) })

	key := strings.Repeat("k3Y", 10) + "ok"
	if err := refused(a, key)(); err != nil {
		t.Fatal(err)
	}
	call("PUT", "/keys/"+key)
	if err := announce(a, key); err != nil {
		t.Fatalf("after the key was added: %v", err)
	}
	start := time.Now()
	servetest.WaitFor(t, time.Second, func() error { return announce(b, key) })
	t.Logf("the added key admits the client on b after %v", time.Since(start).Round(time.Millisecond))

	call("DELETE", "/keys/"+key)
	if err := refused(a, key)(); err != nil {
		t.Fatalf("after the key was removed: %v", err)
	}
	start = time.Now()
	servetest.WaitFor(t, time.Second, refused(b, key))
	t.Logf("the removed key is refused on b after %v", time.Since(start).Round(time.Millisecond))
	for path, node := range map[string]string{keysA: "a", keysB: "b"} {
		if data, _ := os.ReadFile(path); strings.Contains(string(data), key) || !strings.Contains(string(data), warmUp) {
			t.Errorf("%s's keys file:\n%s", node, data)
		}
	}
}
