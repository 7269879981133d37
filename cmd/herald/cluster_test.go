package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"herald/internal/heraldtest"
	"herald/internal/servetest"
)

// Issue 8, wired end to end: two herald processes configured with one NATS
// server (embedded in the test) share their swarms. Issue 14 item 8: with a
// shared key; b's access list applies to what a sends.
func TestTwoInstancesShareSwarmsThroughNATS(t *testing.T) {
	nats := heraldtest.StartNATS(t)
	dir := t.TempDir()
	keyFile, blacklist := filepath.Join(dir, "cluster.key"), filepath.Join(dir, "blacklist")
	refused := hashOf(2)
	if err := os.WriteFile(keyFile, []byte(strings.Repeat("7", 64)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(blacklist, []byte(hex.EncodeToString(refused[:])+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-snapshot", "off", "-cluster-nats-url", nats, "-cluster-flush", "50ms", "-cluster-shared-key", keyFile}
	a := startHerald(t, freePort(t), append(args, "-cluster-node", "a")...)
	b := startHerald(t, freePort(t), append(args, "-cluster-node", "b", "-blacklist", blacklist)...)
	get(t, announceURL(a.URL, refused, 4001, 1, 0))

	get(t, announceURL(a.URL, hashOf(1), 4001, 1, 0))
	servetest.WaitFor(t, 10*time.Second, func() error {
		d := get(t, announceURL(b.URL, hashOf(1), 4002, 1, 50))
		if peers, _ := d["peers"].(string); len(peers) != 6 || peers[4] != 4001>>8 || peers[5] != 4001&0xff {
			return fmt.Errorf("instance b does not hand out a's peer: %v", d)
		}
		return nil
	})
	get(t, announceURL(a.URL, hashOf(1), 4001, 1, 0)+"&event=stopped")
	servetest.WaitFor(t, 10*time.Second, func() error {
		d := get(t, announceURL(b.URL, hashOf(1), 4002, 1, 50))
		if peers, _ := d["peers"].(string); peers != "" {
			return fmt.Errorf("the stop has not reached instance b: %v", d)
		}
		return nil
	})
	resp, err := http.Get(a.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), "\nherald_cluster_connected 1\n") {
		t.Errorf("metrics do not show the cluster connected:\n%s", body)
	}
	resp, err = http.Get(b.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ = io.ReadAll(resp.Body)
	// The refused peer reaches b in a batch, a catch-up, or both.
	for _, want := range []string{`\nherald_cluster_refused_total\{reason="not_allowed"\} [12]\n`, `\nherald_cluster_events_total\{event="unauthenticated"\} 0\n`} {
		if !regexp.MustCompile(want).Match(body) {
			t.Errorf("b's metrics do not match %q:\n%s", want, body)
		}
	}
}
