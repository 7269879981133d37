package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// One INFO line at start says what runs: the config file, the addresses
// by protocol, the state file and what it restored, the limits and the
// memory they come from, the access list and who may read the stats.
func TestStartSummary(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "whitelist")
	os.WriteFile(list, []byte(hexOf(hashOf(1))+"\n"+hexOf(hashOf(2))+"\n"), 0o644)
	conf := filepath.Join(dir, "herald.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("access.whitelist %s\ntracker.max_peers 5000\naccess.stats 10.0.0.0/8\n", list)), 0o644)
	port := freePort(t)
	h := startHerald(t, port, "-f", conf, "-snapshot", filepath.Join(dir, "state"))
	h.Stop(t)
	line := regexp.MustCompile(`(?m)^.*msg="herald started".*$`).FindString(h.Output())
	if line == "" {
		t.Fatalf("no start summary in:\n%s", h.Output())
	}
	for _, want := range []string{
		`version="herald `,
		"config=" + conf,
		fmt.Sprintf("listen.http=127.0.0.1:%d listen.udp=127.0.0.1:%d", port, port),
		"snapshot.path=" + filepath.Join(dir, "state"),
		"snapshot.restored_torrents=0",
		"limits.max_peers=5000",
		`limits.memory="`,
		`access.mode="whitelist ` + list + `" access.hashes=2`,
		"stats.to=10.0.0.0/8",
	} {
		if !regexp.MustCompile(regexp.QuoteMeta(want)).MatchString(line) {
			t.Errorf("start summary lacks %q:\n%s", want, line)
		}
	}
}
