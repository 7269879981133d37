package main

import (
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"herald/bencode"
	"herald/internal/heraldtest"
	"herald/snapshot"
	"herald/swarm"
)

func TestMain(m *testing.M) { os.Exit(heraldtest.Main(m)) }

// startHerald runs herald on 127.0.0.1:port with args.
func startHerald(t *testing.T, port int, args ...string) *heraldtest.Herald {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	return heraldtest.Start(t, addr, append([]string{"-listen", addr}, args...)...)
}

// freePort returns a port free for both TCP and UDP on 127.0.0.1.
func freePort(t *testing.T) int { return heraldtest.FreePort(t, "127.0.0.1") }

func hashOf(i int) swarm.InfoHash {
	var h swarm.InfoHash
	copy(h[:], fmt.Sprintf("restart-test-%07d", i))
	return h
}

// hashKey is hashOf(i) as a string: a scrape reply's key, a query value.
func hashKey(i int) string {
	h := hashOf(i)
	return string(h[:])
}

// scrape returns the text of herald's /metrics at base.
func scrape(base string) (string, error) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func get(t *testing.T, u string) map[string]any {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	v, err := bencode.Decode(body)
	if err != nil {
		t.Fatalf("%s: %v in %q", u, err, body)
	}
	d, _ := v.(map[string]any)
	if fr, ok := d["failure reason"]; ok {
		t.Fatalf("%s: failure %v", u, fr)
	}
	return d
}

func announceURL(base string, h swarm.InfoHash, port int, left int, numwant int) string {
	return fmt.Sprintf("%s/announce?info_hash=%s&peer_id=-HE0001-%012d&port=%d&left=%d&numwant=%d&compact=1",
		base, url.QueryEscape(string(h[:])), port, port, left, numwant)
}

// swarmView is what clients see of a tracker: per torrent, the counts and
// the set of peers an outsider is given.
func swarmView(t *testing.T, base string, torrents int) map[int]string {
	t.Helper()
	view := map[int]string{}
	for i := range torrents {
		// Port 1 is the observer; stop it afterwards so it is not counted.
		d := get(t, announceURL(base, hashOf(i), 1, 1, 200))
		peers, _ := d["peers"].(string)
		var list []string
		for j := 0; j+6 <= len(peers); j += 6 {
			list = append(list, netip.AddrPortFrom(netip.AddrFrom4([4]byte([]byte(peers[j:j+4]))), uint16(peers[j+4])<<8|uint16(peers[j+5])).String())
		}
		sort.Strings(list)
		get(t, announceURL(base, hashOf(i), 1, 1, 0)+"&event=stopped")
		view[i] = fmt.Sprintf("complete=%v incomplete=%v downloaded=%v peers=%v", d["complete"], d["incomplete"].(int64)-1, d["downloaded"], list)
	}
	return view
}

// Issue 7: fill, SIGTERM, start again, same swarms.
func TestRestartKeepsSwarms(t *testing.T) {
	dir := t.TempDir()
	snap := filepath.Join(dir, "state")
	port := freePort(t)
	h := startHerald(t, port, "-snapshot", snap)
	const torrents = 20
	for i := range 300 {
		u := announceURL(h.URL, hashOf(i%torrents), 10000+i, i%3, 0)
		if i%5 == 0 {
			u += "&event=completed"
		}
		get(t, u)
	}
	before := swarmView(t, h.URL, torrents)
	h.Stop(t)

	h = startHerald(t, port, "-snapshot", snap)
	after := swarmView(t, h.URL, torrents)
	for i := range torrents {
		if before[i] != after[i] {
			t.Errorf("torrent %d after restart:\n got %s\nwant %s", i, after[i], before[i])
		}
	}
	if !strings.Contains(before[0], "downloaded=") || strings.Contains(before[0], "peers=[]") {
		t.Fatalf("test filled nothing: %s", before[0])
	}
}

// Issue 7: SIGKILL while a snapshot is being written leaves the previous
// one whole, and herald restores it.
func TestKillDuringSnapshotKeepsPrevious(t *testing.T) {
	dir := t.TempDir()
	snap := filepath.Join(dir, "state")
	// A large state makes each save take long enough to be caught mid-write.
	store, _ := swarm.New(swarm.Config{})
	store.SetNow(time.Now())
	for i := range 1_000_000 {
		a := swarm.Announce{InfoHash: hashOf(i % 50_000), Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), uint16(i)), Left: uint64(i % 2)}
		store.Announce(&a, swarm.FamilyV4, swarm.Peers{})
	}
	if _, err := snapshot.Save(snap, store, nil, nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	want := store.Totals()

	port := freePort(t)
	h := startHerald(t, port, "-snapshot", snap, "-snapshot-interval", "100ms")
	caught := false
	deadline := time.Now().Add(30 * time.Second)
	for !caught && time.Now().Before(deadline) {
		tmps, _ := filepath.Glob(snap + ".tmp-*")
		if len(tmps) > 0 {
			h.Kill()
			caught = true
		}
	}
	if !caught {
		t.Fatal("never saw a snapshot being written")
	}
	if tmps, _ := filepath.Glob(snap + ".tmp-*"); len(tmps) == 0 {
		t.Fatal("the kill did not land mid-write; the test proves nothing")
	}
	data, err := os.ReadFile(snap)
	if err != nil {
		t.Fatal(err)
	}
	check, _ := swarm.New(swarm.Config{})
	if _, err := snapshot.Decode(data, func(ts *swarm.TorrentState) error { _, err := check.Restore(ts); return err }); err != nil {
		t.Fatalf("snapshot after kill: %v", err)
	}
	if got := check.Totals(); got != want {
		t.Fatalf("snapshot after kill holds %+v, want %+v", got, want)
	}
	h = startHerald(t, port, "-snapshot", snap)
	d := get(t, h.URL+"/scrape?info_hash="+url.QueryEscape(hashKey(7)))
	files := d["files"].(map[string]any)
	f, ok := files[hashKey(7)].(map[string]any)
	c, _ := store.Scrape(hashOf(7))
	if !ok || f["complete"] != int64(c.Seeders) || f["incomplete"] != int64(c.Leechers) {
		t.Fatalf("after restart scrape %v, want %+v", files, c)
	}
	if tmps, _ := filepath.Glob(snap + ".tmp-*"); len(tmps) != 0 {
		t.Fatalf("stale temporary files left after restart: %v", tmps)
	}
}

// Issue 7: a damaged snapshot is moved aside, not deleted, and herald
// starts empty and serves.
func TestDamagedSnapshotMovedAside(t *testing.T) {
	for name, content := range map[string][]byte{
		"garbage":   []byte("this is not a snapshot"),
		"truncated": nil, // filled below from a real snapshot
		"future":    nil,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			snap := filepath.Join(dir, "state")
			if content == nil {
				store, _ := swarm.New(swarm.Config{})
				store.Announce(&swarm.Announce{InfoHash: hashOf(1), Addr: netip.MustParseAddrPort("10.0.0.1:1")}, 0, swarm.Peers{})
				if _, err := snapshot.Save(snap, store, nil, nil, time.Now()); err != nil {
					t.Fatal(err)
				}
				content, _ = os.ReadFile(snap)
				if name == "truncated" {
					content = content[:len(content)-3]
				} else {
					content[9] = 99 // version
				}
			}
			os.WriteFile(snap, content, 0o600)
			h := startHerald(t, freePort(t), "-snapshot", snap)
			aside, _ := filepath.Glob(snap + ".bad-*")
			if len(aside) != 1 {
				t.Fatalf("damaged snapshot not moved aside: %v", aside)
			}
			if kept, _ := os.ReadFile(aside[0]); string(kept) != string(content) {
				t.Fatal("the moved-aside file differs from the damaged snapshot")
			}
			if !strings.Contains(h.Output(), "snapshot unusable, moved aside") {
				t.Errorf("no clear log line:\n%s", h.Output())
			}
			if d := get(t, announceURL(h.URL, hashOf(1), 5, 1, 50)); d["incomplete"] != int64(1) {
				t.Errorf("herald did not start empty: %v", d)
			}
		})
	}
}
