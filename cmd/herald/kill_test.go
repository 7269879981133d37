package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"herald/bencode"
	"herald/snapshot"
	"herald/swarm"
)

// killTorrents is how many torrents the load spreads its peers over. Peer k
// announces torrent k%killTorrents from 127.0.0.1 and port
// 1024+k/killTorrents, so every announce adds a peer nobody announced before.
const killTorrents = 1000

func killPeer(k int) (torrent, port int) { return k % killTorrents, 1024 + k/killTorrents }

// announceLoad announces new peers over HTTP keep-alive from several
// goroutines until stopped, through a kill and a restart, and records when
// each announce started and when it was answered.
type announceLoad struct {
	base   string
	client *http.Client
	next   atomic.Int64
	served atomic.Int64
	stop   chan struct{}
	wg     sync.WaitGroup

	mu     sync.Mutex
	ok     []announceRecord
	failed []announceRecord
}

type announceRecord struct {
	k          int
	start, end time.Time
	err        string
}

func startAnnounceLoad(base string, workers int) *announceLoad {
	l := &announceLoad{
		base:   base,
		client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}},
		stop:   make(chan struct{}),
	}
	for range workers {
		l.wg.Go(func() {
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				k := int(l.next.Add(1) - 1)
				rec := announceRecord{k: k, start: time.Now()}
				err := l.announce(k)
				rec.end = time.Now()
				l.mu.Lock()
				if err != nil {
					rec.err = err.Error()
					l.failed = append(l.failed, rec)
				} else {
					l.ok = append(l.ok, rec)
					l.served.Add(1)
				}
				l.mu.Unlock()
				if err != nil {
					time.Sleep(10 * time.Millisecond) // herald is down: do not spin
				}
			}
		})
	}
	return l
}

func (l *announceLoad) announce(k int) error {
	torrent, port := killPeer(k)
	resp, err := l.client.Get(announceURL(l.base, hashOf(torrent), port, k%2, 0))
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("read reply: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %q", resp.StatusCode, body)
	}
	v, err := bencode.Decode(body)
	if err != nil {
		return fmt.Errorf("reply %q: %w", body, err)
	}
	d, _ := v.(map[string]any)
	if fr, ok := d["failure reason"]; ok {
		return fmt.Errorf("failure reason %v", fr)
	}
	if iv, _ := d["interval"].(int64); iv <= 0 {
		return fmt.Errorf("reply %q has no interval", body)
	}
	return nil
}

func (l *announceLoad) halt() {
	close(l.stop)
	l.wg.Wait()
}

// waitServed waits until n more announces than now have been answered.
func (l *announceLoad) waitServed(t *testing.T, n int64, what string) {
	t.Helper()
	target := l.served.Load() + n
	deadline := time.Now().Add(30 * time.Second)
	for l.served.Load() < target {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d announces answered in 30s, want %d more", what, l.served.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// snapshotCreated reads the creation time (whole seconds) from a snapshot's
// header, or the zero time if there is no snapshot yet.
func snapshotCreated(path string) time.Time {
	data, err := os.ReadFile(path)
	if err != nil || len(data) < 20 {
		return time.Time{}
	}
	return time.Unix(int64(binary.BigEndian.Uint64(data[12:20])), 0)
}

// servedPorts returns the ports of the peers herald hands an observer (port
// 1, which no load peer uses) for torrent i.
func servedPorts(t *testing.T, base string, i int) map[uint16]bool {
	t.Helper()
	d := get(t, announceURL(base, hashOf(i), 1, 1, 2000))
	peers, _ := d["peers"].(string)
	ports := map[uint16]bool{}
	for j := 0; j+6 <= len(peers); j += 6 {
		ports[binary.BigEndian.Uint16([]byte(peers[j+4:]))] = true
	}
	return ports
}

// Issue 10: SIGKILL while announces flow loses nothing the last snapshot
// held: every announce answered before that snapshot was taken is in it,
// herald restarted on it serves every one of its swarms, and announces
// succeed again as soon as herald is back.
func TestKillUnderLoadKeepsLastSnapshot(t *testing.T) {
	dir := t.TempDir()
	snap := filepath.Join(dir, "state")
	port := freePort(t)
	// The observer asks for every peer of a swarm (the load keeps them well
	// under 2000).
	args := []string{"-snapshot", snap, "-snapshot-interval", "200ms", "-max-numwant", "2000"}
	h := startHerald(t, port, args...)
	load := startAnnounceLoad(h.base, 4)
	defer func() {
		select {
		case <-load.stop:
		default:
			load.halt()
		}
	}()

	// A snapshot written while the load ran: its creation time (whole
	// seconds) is after a few hundred answered announces.
	load.waitServed(t, 300, "before the first snapshot")
	loadStarted := time.Now()
	deadline := time.Now().Add(30 * time.Second)
	for !snapshotCreated(snap).After(loadStarted) {
		if time.Now().After(deadline) {
			t.Fatal("no snapshot written under load within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Kill while announces are being answered, snapshots every 200ms: the
	// kill may land mid-write.
	load.waitServed(t, 50, "just before the kill")
	h.cmd.Process.Signal(syscall.SIGKILL)
	<-h.done
	h.done <- nil

	data, err := os.ReadFile(snap)
	if err != nil {
		t.Fatal(err)
	}
	saved := map[int]map[uint16]bool{}
	info, err := snapshot.Decode(data, func(ts *swarm.TorrentState) error {
		var i int
		if _, err := fmt.Sscanf(string(ts.InfoHash[:]), "restart-test-%07d", &i); err != nil {
			return fmt.Errorf("unexpected torrent %q in the snapshot", ts.InfoHash[:])
		}
		saved[i] = map[uint16]bool{}
		for _, p := range ts.Peers {
			if p.Addr.Addr() != netip.MustParseAddr("127.0.0.1") {
				return fmt.Errorf("torrent %d: unexpected peer %v", i, p.Addr)
			}
			saved[i][p.Addr.Port()] = true
		}
		return nil
	})
	if err != nil {
		t.Fatalf("the last snapshot before the kill: %v", err)
	}

	// Nothing answered before the snapshot was taken is missing from it.
	load.mu.Lock()
	before := 0
	for _, r := range load.ok {
		if !r.end.Before(info.Created) {
			continue
		}
		before++
		torrent, port := killPeer(r.k)
		if !saved[torrent][uint16(port)] {
			t.Errorf("peer %d (torrent %d, port %d), answered at %v, is missing from the snapshot of %v",
				r.k, torrent, port, r.end.Format(time.StampMicro), info.Created)
		}
	}
	load.mu.Unlock()
	if before < 300 || len(saved) == 0 {
		t.Fatalf("the snapshot of %v follows %d announces and holds %d torrents; the test proves little", info.Created, before, len(saved))
	}

	h = startHerald(t, port, args...)
	ready := time.Now()
	load.waitServed(t, 500, "after the restart")
	load.halt()

	// Announces succeed again once herald is back.
	load.mu.Lock()
	failedDown, after := 0, 0
	for _, r := range load.failed {
		if r.start.After(ready) {
			t.Errorf("announce of peer %d, sent after the restart, failed: %s", r.k, r.err)
		} else {
			failedDown++
		}
	}
	for _, r := range load.ok {
		if r.start.After(ready) {
			after++
		}
	}
	load.mu.Unlock()
	if after < 500 {
		t.Errorf("%d announces answered after the restart, want at least 500", after)
	}

	// Every swarm of the last snapshot is back, with every one of its peers.
	lost := 0
	for i, peers := range saved {
		served := servedPorts(t, h.base, i)
		if len(served) >= 2000 {
			t.Fatalf("torrent %d has %d peers, more than one reply shows", i, len(served))
		}
		for p := range peers {
			if !served[p] {
				lost++
				if lost <= 10 {
					t.Errorf("torrent %d: peer 127.0.0.1:%d of the snapshot is not served after the restart", i, p)
				}
			}
		}
	}
	if lost > 0 {
		t.Errorf("%d peers of the last snapshot lost", lost)
	}
	t.Logf("snapshot of %v: %d torrents, %d peers, %d announces answered before it; %d announces failed while herald was down, %d answered after the restart",
		info.Created.Format(time.TimeOnly), info.Torrents, info.Peers, before, failedDown, after)
}
