package admin_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"herald/access"
	"herald/accounting"
	"herald/admin"
	"herald/bans"
	"herald/cluster"
	"herald/internal/servetest"
	"herald/swarm"
)

const token = "0123456789abcdef0123456789abcdef"

// api is an admin API served on loopback for a test.
type api struct {
	url      string
	listPath string
	list     *access.List
	bans     *bans.Table
	server   *admin.Server
	mu       sync.Mutex       // guards sent: both FIFOs' readers publish at once
	sent     []cluster.Change // what it published
}

// options adjust an api's config before it starts.
type options func(*admin.Config)

func startAPI(t *testing.T, opts ...options) *api {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	a := &api{listPath: filepath.Join(t.TempDir(), "whitelist")}
	if err := os.WriteFile(a.listPath, []byte("# our torrents\n"+hexOf(hashOf(1))+" first\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var err error
	if a.list, err = access.Open(a.listPath, access.Whitelist, quiet); err != nil {
		t.Fatal(err)
	}
	if a.bans, err = bans.New(bans.Config{Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	cfg := admin.Config{
		Token: token, List: a.list, Bans: a.bans, Logger: quiet,
		Settings: map[string]any{"Interval": "30m0s"},
		Publish: func(c cluster.Change) error {
			a.mu.Lock()
			defer a.mu.Unlock()
			a.sent = append(a.sent, c)
			return nil
		},
	}
	for _, o := range opts {
		o(&cfg)
	}
	if a.server, err = admin.New(cfg); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	servetest.Serve(t, func(ctx context.Context) error { return a.server.Serve(ctx, ln) }, 10*time.Second)
	a.url = "http://" + ln.Addr().String()
	return a
}

// published is a copy of what the API has published so far.
func (a *api) published() []cluster.Change {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.sent)
}

func hashOf(i int) swarm.InfoHash {
	var h swarm.InfoHash
	copy(h[:], fmt.Sprintf("torrent-%012d", i))
	return h
}

func hexOf(h swarm.InfoHash) string { return hex.EncodeToString(h[:]) }

// do sends a request with the token and returns the status and the
// decoded JSON body.
func (a *api) do(t *testing.T, method, path, body string) (int, map[string]any) {
	t.Helper()
	return a.doAs(t, "Bearer "+token, method, path, body)
}

func (a *api) doAs(t *testing.T, auth, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, a.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	var v map[string]any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s %s: status %d, body %q is no JSON object: %v", method, path, resp.StatusCode, data, err)
	}
	return resp.StatusCode, v
}

func TestTokenRequired(t *testing.T) {
	a := startAPI(t)
	for _, auth := range []string{"", "Bearer", "Bearer " + token[:len(token)-1], "Bearer " + token + "x", "Basic " + token, "bearer " + token} {
		status, body := a.doAs(t, auth, "GET", "/bans", "")
		if status != http.StatusUnauthorized || body["error"] == nil {
			t.Errorf("Authorization %q: status %d, body %v; want 401 with an error", auth, status, body)
		}
	}
	if status, body := a.do(t, "GET", "/bans", ""); status != http.StatusOK {
		t.Errorf("with the token: status %d, body %v", status, body)
	}
}

func TestErrorsAreJSONWithTheirStatus(t *testing.T) {
	a := startAPI(t)
	noList := startAPI(t, func(c *admin.Config) { c.List = nil; c.Snapshot = nil })
	big := `{"add":["` + strings.Repeat("a", admin.MaxBodyBytes) + `"]}`
	for _, c := range []struct {
		api                *api
		method, path, body string
		status             int
		says               string
	}{
		{a, "GET", "/nothing", "", 404, "no such route"},
		{a, "GET", "/access-list/" + hexOf(hashOf(1)) + "/more", "", 404, "no such route"},
		{a, "DELETE", "/access-list", "", 405, "allowed: GET, POST"},
		{a, "POST", "/access-list", `{"add": [`, 400, "body"},
		{a, "POST", "/access-list", `{"add": ["zz"]}`, 400, "not 40 hex digits"},
		{a, "POST", "/access-list", `{"plus": []}`, 400, "unknown field"},
		{a, "POST", "/access-list", `{}`, 400, "nothing to add or remove"},
		{a, "POST", "/access-list", `{"add": []} {}`, 400, "after the JSON object"},
		{a, "POST", "/access-list", big, 413, "over"},
		{a, "GET", "/access-list/xyz", "", 400, "not 40 hex digits"},
		{a, "POST", "/bans", `{"prefix": "300.1.2.3", "duration": "1h"}`, 400, "not an address"},
		{a, "POST", "/bans", `{"prefix": "192.0.2.1"}`, 400, "give duration or expires"},
		{a, "POST", "/bans", `{"prefix": "192.0.2.1", "duration": "-1h"}`, 400, "positive"},
		{a, "POST", "/bans", `{"prefix": "192.0.2.1", "expires": "2001-01-01T00:00:00Z"}`, 400, "next 100 years"},
		{a, "DELETE", "/bans/192.0.2.1", "", 404, "not banned"},
		{a, "PUT", "/keys/" + strings.Repeat("k", 32), "", 409, "no access keys"},
		{noList, "GET", "/access-list", "", 409, "no access list"},
		{noList, "POST", "/snapshot", "", 409, "snapshots are off"},
	} {
		status, body := c.api.do(t, c.method, c.path, c.body)
		msg, _ := body["error"].(string)
		if status != c.status || !strings.Contains(msg, c.says) {
			t.Errorf("%s %s %.40q: status %d, error %q; want %d saying %q", c.method, c.path, c.body, status, msg, c.status, c.says)
		}
	}
}

func TestMethodNotAllowedNamesTheMethods(t *testing.T) {
	a := startAPI(t)
	req, _ := http.NewRequest("PATCH", a.url+"/bans", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, POST" {
		t.Errorf("status %d, Allow %q; want 405, GET, POST", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// A list change rewrites the file, comments kept, so that the list read
// again after a restart has it; the change goes to the cluster.
func TestListChangesPersist(t *testing.T) {
	a := startAPI(t)
	add := fmt.Sprintf(`{"add": ["%s", "%s"]}`, hexOf(hashOf(2)), strings.ToUpper(hexOf(hashOf(3))))
	status, body := a.do(t, "POST", "/access-list", add)
	if status != 200 || body["added"] != 2.0 || body["torrents"] != 3.0 || body["mode"] != "whitelist" {
		t.Fatalf("add: status %d, body %v", status, body)
	}
	if !a.list.Allowed(hashOf(2)) || !a.list.Allowed(hashOf(3)) {
		t.Error("added torrents not allowed")
	}
	status, body = a.do(t, "POST", "/access-list", fmt.Sprintf(`{"remove": ["%s"], "add": ["%s"]}`, hexOf(hashOf(1)), hexOf(hashOf(2))))
	if status != 200 || body["added"] != 0.0 || body["removed"] != 1.0 || body["torrents"] != 2.0 {
		t.Fatalf("remove: status %d, body %v", status, body)
	}
	if status, body := a.do(t, "GET", "/access-list/"+hexOf(hashOf(1)), ""); status != 200 || body["listed"] != false || body["allowed"] != false {
		t.Errorf("removed torrent: status %d, body %v", status, body)
	}
	data, err := os.ReadFile(a.listPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "# our torrents\n") || strings.Contains(string(data), hexOf(hashOf(1))) {
		t.Errorf("list file:\n%s", data)
	}
	restarted, err := access.Open(a.listPath, access.Whitelist, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if restarted.Len() != 2 || !restarted.Allowed(hashOf(2)) || !restarted.Allowed(hashOf(3)) || restarted.Allowed(hashOf(1)) {
		t.Errorf("list read again has %d torrents", restarted.Len())
	}
	want := []cluster.ChangeKind{cluster.ListAdd, cluster.ListAdd, cluster.ListRemove}
	sent := a.published()
	if len(sent) != len(want) {
		t.Fatalf("published %+v, want kinds %v", sent, want)
	}
	for i, c := range sent {
		if c.Kind != want[i] {
			t.Errorf("published %d: %s, want %s", i, c.Kind, want[i])
		}
	}
}

func TestBanAndUnban(t *testing.T) {
	a := startAPI(t)
	status, body := a.do(t, "POST", "/bans", `{"prefix": "198.51.100.77/24", "duration": "1h"}`)
	if status != 201 || body["prefix"] != "198.51.100.0/24" || body["reason"] != "manual" {
		t.Fatalf("ban: status %d, body %v", status, body)
	}
	expires, err := time.Parse(time.RFC3339, body["expires"].(string))
	if err != nil || time.Until(expires) < 59*time.Minute || time.Until(expires) > time.Hour {
		t.Errorf("expires %v (%v), want in an hour", body["expires"], err)
	}
	if status, _ := a.do(t, "POST", "/bans", `{"prefix": "2001:db8::1", "expires": "`+time.Now().Add(time.Minute).Format(time.RFC3339)+`"}`); status != 201 {
		t.Fatalf("ban of an IPv6 address: status %d", status)
	}
	now := time.Now()
	if !a.bans.Banned(netip.MustParseAddr("198.51.100.200"), now) || !a.bans.Banned(netip.MustParseAddr("::ffff:198.51.100.1"), now) ||
		!a.bans.Banned(netip.MustParseAddr("2001:db8::1"), now) || a.bans.Banned(netip.MustParseAddr("198.51.101.1"), now) {
		t.Error("the bans do not cover what was banned, or cover more")
	}
	status, body = a.do(t, "GET", "/bans", "")
	list, _ := body["bans"].([]any)
	if status != 200 || len(list) != 2 || list[0].(map[string]any)["prefix"] != "198.51.100.0/24" {
		t.Fatalf("bans: status %d, body %v", status, body)
	}
	if status, body := a.do(t, "DELETE", "/bans/198.51.100.0/24", ""); status != 200 || body["removed"] != true {
		t.Fatalf("unban: status %d, body %v", status, body)
	}
	if a.bans.Banned(netip.MustParseAddr("198.51.100.200"), time.Now()) {
		t.Error("still banned after the unban")
	}
	if status, _ := a.do(t, "DELETE", "/bans/2001:db8::1", ""); status != 200 {
		t.Errorf("unban of an IPv6 address: status %d", status)
	}
	kinds := []cluster.ChangeKind{}
	for _, c := range a.published() {
		kinds = append(kinds, c.Kind)
	}
	if fmt.Sprint(kinds) != "[ban ban unban unban]" {
		t.Errorf("published %v", kinds)
	}
}

func TestSnapshotAndConfig(t *testing.T) {
	saved := 0
	a := startAPI(t, func(c *admin.Config) { c.Snapshot = func() error { saved++; return nil } })
	if status, body := a.do(t, "POST", "/snapshot", ""); status != 200 || saved != 1 || body["saved"] == nil {
		t.Errorf("snapshot: status %d, body %v, saves %d", status, body, saved)
	}
	if status, body := a.do(t, "GET", "/config", ""); status != 200 || body["Interval"] != "30m0s" {
		t.Errorf("config: status %d, body %v", status, body)
	}
}

func TestServeRefusesWithoutToken(t *testing.T) {
	s, err := admin.New(admin.Config{Bans: must(bans.New(bans.Config{}))})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(context.Background(), ln); err == nil || !strings.Contains(err.Error(), "admin.token_file") {
		t.Errorf("Serve without a token: %v", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestLoadToken(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	if got, err := admin.LoadToken(write("good", token+"\n", 0o600)); err != nil || got != token {
		t.Errorf("good token: %q, %v", got, err)
	}
	for name, c := range map[string]struct {
		content string
		mode    os.FileMode
		says    string
	}{
		"readable": {token, 0o644, "chmod 600"},
		"short":    {"secret", 0o600, "at least 22"},
		"two":      {token + " " + token, 0o600, "one word"},
		"empty":    {"", 0o400, "at least 22"},
	} {
		if _, err := admin.LoadToken(write(name, c.content, c.mode)); err == nil || !strings.Contains(err.Error(), c.says) || !strings.Contains(err.Error(), "admin.token_file") {
			t.Errorf("%s: %v, want an admin.token_file error saying %q", name, err, c.says)
		}
	}
	if _, err := admin.LoadToken(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file: no error")
	}
}

// opentracker's scripts keep working: lines written to the FIFOs, by
// writers that come and go, change the list and its file.
func TestFIFOChangesTheList(t *testing.T) {
	a := startAPI(t)
	dir := t.TempDir()
	addPath, delPath := filepath.Join(dir, "add.fifo"), filepath.Join(dir, "delete.fifo")
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	for path, kind := range map[string]cluster.ChangeKind{addPath: cluster.ListAdd, delPath: cluster.ListRemove} {
		f, err := admin.OpenFIFO(path)
		if err != nil {
			t.Fatal(err)
		}
		go a.server.ReadFIFO(ctx, f, kind)
	}
	if st, err := os.Stat(addPath); err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		t.Fatalf("OpenFIFO made no FIFO: %v", err)
	}
	write := func(path, text string) {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(text); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	write(addPath, hexOf(hashOf(5))+"\nnot a hash\n"+hexOf(hashOf(6))+" with a name\n")
	write(delPath, hexOf(hashOf(1))+"\n")
	servetest.WaitFor(t, 5*time.Second, func() error {
		if !a.list.Allowed(hashOf(5)) || !a.list.Allowed(hashOf(6)) || a.list.Allowed(hashOf(1)) {
			return fmt.Errorf("list has %d torrents", a.list.Len())
		}
		return nil
	})
	data, _ := os.ReadFile(a.listPath)
	if !bytes.Contains(data, []byte(hexOf(hashOf(6)))) || bytes.Contains(data, []byte(hexOf(hashOf(1)))) {
		t.Errorf("list file:\n%s", data)
	}
	if _, err := admin.OpenFIFO(a.listPath); err == nil || !strings.Contains(err.Error(), "not a FIFO") {
		t.Errorf("OpenFIFO of a plain file: %v", err)
	}
}

func TestKeysAndAccounting(t *testing.T) {
	keysPath := filepath.Join(t.TempDir(), "access.keys")
	if err := os.WriteFile(keysPath, []byte("# members\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := access.OpenKeys(keysPath, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ledger := accounting.New(time.Hour, 0)
	a := startAPI(t, func(c *admin.Config) { c.Keys, c.Ledger = keys, ledger })
	k1, k2, k3 := strings.Repeat("a", 32), strings.Repeat("b", 32), strings.Repeat("c", 32)

	if status, body := a.do(t, "PUT", "/keys/"+k1, ""); status != 201 || body["changed"] != true {
		t.Fatalf("add: %d %v", status, body)
	}
	if status, body := a.do(t, "PUT", "/keys/"+k1, ""); status != 200 || body["changed"] != false {
		t.Errorf("add again: %d %v", status, body)
	}
	if !keys.Listed(ptr(must(access.ParseKey(k1)))) {
		t.Error("added key not listed")
	}
	if data, _ := os.ReadFile(keysPath); !strings.Contains(string(data), k1) {
		t.Errorf("keys file:\n%s", data)
	}
	if status, _ := a.do(t, "PUT", "/keys/short", ""); status != 400 {
		t.Errorf("malformed key: %d", status)
	}
	if status, _ := a.do(t, "DELETE", "/keys/"+k1, ""); status != 200 {
		t.Errorf("remove: %d", status)
	}
	if status, _ := a.do(t, "DELETE", "/keys/"+k1, ""); status != 404 {
		t.Errorf("remove again: %d", status)
	}
	if fmt.Sprint(a.sent) != fmt.Sprint([]cluster.Change{{Kind: cluster.KeyAdd, Key: k1}, {Kind: cluster.KeyAdd, Key: k1}, {Kind: cluster.KeyRemove, Key: k1}}) {
		t.Errorf("published %v", a.sent)
	}

	now := time.Now()
	for i, k := range []string{k3, k1, k2} {
		key := must(access.ParseKey(k))
		ann := swarm.Announce{InfoHash: hashOf(i), PeerID: swarm.PeerID([]byte("-HT0001-accounting01")), Uploaded: 100, Event: swarm.EventStarted}
		ledger.Record(&key, &ann, now)
		ann.Uploaded, ann.Event = 1100, swarm.EventNone
		ledger.Record(&key, &ann, now)
	}
	status, body := a.do(t, "GET", "/accounting?limit=2", "")
	entries, _ := body["entries"].([]any)
	if status != 200 || len(entries) != 2 || body["next"] != k2 || entries[0].(map[string]any)["key"] != k1 {
		t.Fatalf("first page: %d %v", status, body)
	}
	status, body = a.do(t, "GET", "/accounting?limit=2&after="+k2, "")
	entries, _ = body["entries"].([]any)
	if status != 200 || len(entries) != 1 || body["next"] != "" {
		t.Fatalf("last page: %d %v", status, body)
	}
	e := entries[0].(map[string]any)
	if e["key"] != k3 || e["announces"] != 2.0 || e["uploaded"] != 1000.0 || e["active_torrents"] != 1.0 {
		t.Errorf("entry %v", e)
	}
	if status, body := a.do(t, "GET", "/accounting/"+k2, ""); status != 200 || body["uploaded"] != 1000.0 {
		t.Errorf("one key: %d %v", status, body)
	}
	if status, _ := a.do(t, "GET", "/accounting/"+strings.Repeat("d", 32), ""); status != 404 {
		t.Errorf("key without accounting: %d", status)
	}
	for _, q := range []string{"limit=0", "limit=1001", "limit=x", "after=nokey"} {
		if status, _ := a.do(t, "GET", "/accounting?"+q, ""); status != 400 {
			t.Errorf("?%s: %d", q, status)
		}
	}
}

func ptr[T any](v T) *T { return &v }
