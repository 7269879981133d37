package e2e

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"testing"
	"time"

	"herald/internal/heraldtest"
)

// nodeDir holds the npm client, its lockfile and tracker_client.mjs.
const nodeDir = "testdata/node"

func npmClientInstalled() bool {
	if _, err := exec.LookPath("node"); err != nil {
		return false
	}
	_, err := os.Stat(nodeDir + "/node_modules/bittorrent-tracker/package.json")
	return err == nil
}

// TestNPMTrackerClient drives the npm bittorrent-tracker client (the tracker
// client of WebTorrent) against one dual-stack herald over HTTP on IPv4 and
// IPv6 and over UDP on IPv4. The client's UDP tracker opens udp4 sockets
// only, so it cannot announce to udp://[::1]; libtorrent covers UDP over IPv6.
func TestNPMTrackerClient(t *testing.T) {
	requireClient(t, "npm bittorrent-tracker (e2e/testdata/node)", npmClientInstalled())
	h := startHerald(t, "::")
	tests := []struct {
		name string
		url  string
		host string // the address herald sees the client's peers on
	}{
		{"http-ipv4", "http://" + h.AddrOn("127.0.0.1") + "/announce", "127.0.0.1"},
		{"http-ipv6", "http://" + h.AddrOn("::1") + "/announce", "::1"},
		{"udp-ipv4", "udp://" + h.AddrOn("127.0.0.1"), "127.0.0.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			testSwarmLifecycle(t, tc.url, tc.host)
		})
	}
}

// testSwarmLifecycle runs one swarm through started, completed and stopped
// and checks what every peer and a scrape see after each step.
func testSwarmLifecycle(t *testing.T, url, host string) {
	c := startTrackerClient(t)
	infoHash := randomInfoHash(t)
	const portA, portB, portC, portD = 6881, 6882, 6883, 6884
	addr := func(port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }
	announce := func(peer string, port int, event string, left int) trackerReply {
		t.Helper()
		r := c.do(t, trackerCommand{Op: "announce", Peer: peer, URL: url, InfoHash: infoHash, Port: port, Event: event, Left: left})
		if !r.OK {
			t.Fatalf("peer %s announce %q: %s", peer, event, r.Error)
		}
		return r
	}
	scrape := func(when string, complete, incomplete, downloaded int) {
		t.Helper()
		r := c.do(t, trackerCommand{Op: "scrape", URL: url, InfoHash: infoHash})
		if !r.OK {
			t.Fatalf("scrape %s: %s", when, r.Error)
		}
		if r.Complete != complete || r.Incomplete != incomplete || r.Downloaded != downloaded {
			t.Errorf("scrape %s: complete=%d incomplete=%d downloaded=%d, want %d %d %d",
				when, r.Complete, r.Incomplete, r.Downloaded, complete, incomplete, downloaded)
		}
	}

	// Two leechers and a seeder start; each sees the ones before it.
	announce("a", portA, "started", 1000)
	wantPeers(t, "b's started", announce("b", portB, "started", 1000), addr(portA))
	wantPeers(t, "c's started", announce("c", portC, "started", 0), addr(portA), addr(portB))
	r := announce("a", portA, "update", 1000)
	wantPeers(t, "a's update", r, addr(portB), addr(portC))
	wantCounts(t, "a's update", r, 1, 2)
	scrape("after three started", 1, 2, 0)

	// b finishes: one more seeder, one fewer leecher, one download.
	wantCounts(t, "b's completed", announce("b", portB, "completed", 0), 2, 1)
	scrape("after b completed", 2, 1, 1)

	// a leaves: a newcomer and a scrape no longer see it.
	announce("a", portA, "stopped", 1000)
	scrape("after a stopped", 2, 0, 1)
	r = announce("d", portD, "started", 1000)
	wantPeers(t, "d's started after a stopped", r, addr(portB), addr(portC))
	wantCounts(t, "d's started after a stopped", r, 2, 1)
}

func wantPeers(t *testing.T, what string, r trackerReply, want ...string) {
	t.Helper()
	got := slices.Sorted(slices.Values(r.Peers))
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s: peers %q, want %q", what, got, want)
	}
}

func wantCounts(t *testing.T, what string, r trackerReply, complete, incomplete int) {
	t.Helper()
	if r.Complete != complete || r.Incomplete != incomplete {
		t.Errorf("%s: complete=%d incomplete=%d, want %d %d", what, r.Complete, r.Incomplete, complete, incomplete)
	}
}

func randomInfoHash(t *testing.T) string {
	var b [20]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// trackerCommand and trackerReply are the JSON lines tracker_client.mjs reads
// and writes.
type trackerCommand struct {
	ID       int    `json:"id"`
	Op       string `json:"op"`
	Peer     string `json:"peer,omitempty"`
	URL      string `json:"url"`
	InfoHash string `json:"infoHash"`
	Port     int    `json:"port,omitempty"`
	Event    string `json:"event,omitempty"`
	Left     int    `json:"left"`
}

type trackerReply struct {
	ID         int      `json:"id"`
	OK         bool     `json:"ok"`
	Error      string   `json:"error"`
	Complete   int      `json:"complete"`
	Incomplete int      `json:"incomplete"`
	Downloaded int      `json:"downloaded"`
	Peers      []string `json:"peers"`
}

// trackerClient is one running tracker_client.mjs.
type trackerClient struct {
	stdin   io.WriteCloser
	replies chan trackerReply
	stderr  heraldtest.LogBuffer
	nextID  int
}

func startTrackerClient(t *testing.T) *trackerClient {
	t.Helper()
	if err := statScripts(); err != nil {
		t.Fatal(err)
	}
	c := &trackerClient{replies: make(chan trackerReply)}
	cmd := clientCommand("node", "tracker_client.mjs")
	cmd.Dir = nodeDir
	cmd.Stderr = &c.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting node tracker_client.mjs: %v", err)
	}
	c.stdin = stdin
	go func() {
		defer close(c.replies)
		lines := bufio.NewScanner(stdout)
		for lines.Scan() {
			var r trackerReply
			if err := json.Unmarshal(lines.Bytes(), &r); err != nil {
				r = trackerReply{ID: -1, Error: "unparsable reply: " + lines.Text()}
			}
			c.replies <- r
		}
	}()
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("tracker_client.mjs exited: %v", err)
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("tracker_client.mjs did not exit within 10 s of stdin closing")
		}
		if t.Failed() {
			t.Logf("tracker_client.mjs stderr:\n%s", c.stderr.String())
		}
	})
	return c
}

// do sends one command and waits up to 20 s for its reply.
func (c *trackerClient) do(t *testing.T, cmd trackerCommand) trackerReply {
	t.Helper()
	c.nextID++
	cmd.ID = c.nextID
	line, err := json.Marshal(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.stdin.Write(append(line, '\n')); err != nil {
		t.Fatalf("writing to tracker_client.mjs: %v", err)
	}
	select {
	case r, ok := <-c.replies:
		if !ok {
			t.Fatalf("tracker_client.mjs exited before answering %s\n%s", line, c.stderr.String())
		}
		if r.ID != cmd.ID {
			t.Fatalf("tracker_client.mjs answered %+v to %s", r, line)
		}
		return r
	case <-time.After(20 * time.Second):
		t.Fatalf("tracker_client.mjs did not answer %s within 20 s\n%s", line, c.stderr.String())
	}
	return trackerReply{}
}
