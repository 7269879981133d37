package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"herald/bencode"
	"herald/snapshot"
	"herald/swarm"
	"herald/udptracker"
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

// udpLoad announces over UDP from several sockets until stopped, each with
// the one connection id it got before the kill: through the kill and the
// restart no client connects again (issue 14 item 17).
type udpLoad struct {
	stop chan struct{}
	wg   sync.WaitGroup

	mu      sync.Mutex
	ok      []time.Time // when each answered announce was sent
	refused []string    // error packets, with when they were sent
}

// startUDPLoad connects each of its sockets to addr once, then announces
// peer 127.0.0.1:udpKillPort+worker on torrent worker in a loop.
func startUDPLoad(t *testing.T, addr string, workers int) *udpLoad {
	t.Helper()
	l := &udpLoad{stop: make(chan struct{})}
	for w := range workers {
		conn, err := net.Dial("udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		id, err := udpConnect(conn)
		if err != nil {
			t.Fatalf("UDP connect: %v", err)
		}
		l.wg.Go(func() {
			defer conn.Close()
			req := &udptracker.AnnounceRequest{ConnectionID: id, InfoHash: hashOf(w), Left: 1, NumWant: -1, Port: uint16(udpKillPort + w)}
			buf := make([]byte, 2048)
			for tid := uint32(1); ; tid++ {
				select {
				case <-l.stop:
					return
				default:
				}
				req.TransactionID = tid
				sent := time.Now()
				conn.SetDeadline(sent.Add(200 * time.Millisecond))
				if _, err := conn.Write(udptracker.AppendAnnounceRequest(nil, req)); err != nil {
					time.Sleep(10 * time.Millisecond) // herald is down: do not spin
					continue
				}
				n, err := conn.Read(buf)
				if err != nil {
					continue // herald is down, or the datagram was lost
				}
				var resp udptracker.AnnounceResponse
				l.mu.Lock()
				if e, err := udptracker.ParseErrorResponse(buf[:n]); err == nil {
					l.refused = append(l.refused, fmt.Sprintf("%s (sent %s)", e.Message, sent.Format(time.StampMilli)))
				} else if err := udptracker.ParseAnnounceResponse(buf[:n], &resp); err == nil && resp.TransactionID == tid {
					l.ok = append(l.ok, sent)
				}
				l.mu.Unlock()
			}
		})
	}
	return l
}

// udpKillPort is the first port the UDP load's peers announce; the HTTP
// load's ports stay far below it.
const udpKillPort = 60000

func udpConnect(conn net.Conn) (uint64, error) {
	buf := make([]byte, 64)
	for range 10 {
		conn.SetDeadline(time.Now().Add(500 * time.Millisecond))
		if _, err := conn.Write(udptracker.AppendConnectRequest(nil, udptracker.ConnectRequest{TransactionID: 7})); err != nil {
			return 0, err
		}
		n, err := conn.Read(buf)
		if err != nil {
			continue
		}
		r, err := udptracker.ParseConnectResponse(buf[:n])
		if err != nil {
			return 0, err
		}
		return r.ConnectionID, nil
	}
	return 0, errors.New("no answer to 10 connects")
}

// waitAnswered waits until n announces sent after since were answered.
func (l *udpLoad) waitAnswered(t *testing.T, since time.Time, n int, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		l.mu.Lock()
		got := 0
		for _, sent := range l.ok {
			if sent.After(since) {
				got++
			}
		}
		refused := l.refused
		l.mu.Unlock()
		switch {
		case got >= n:
			return
		case len(refused) > 0:
			t.Fatalf("%s: UDP announce refused: %s", what, refused[0])
		case time.Now().After(deadline):
			t.Fatalf("%s: %d UDP announces answered in 30s, want %d", what, got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (l *udpLoad) halt() {
	close(l.stop)
	l.wg.Wait()
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
// succeed again as soon as herald is back. Issue 14 item 17: UDP clients
// announce through the kill and the restart with the connection ids they
// got before it, and none is refused.
func TestKillUnderLoadKeepsLastSnapshot(t *testing.T) {
	dir := t.TempDir()
	snap := filepath.Join(dir, "state")
	port := freePort(t)
	// The observer asks for every peer of a swarm (the load keeps them well
	// under 2000).
	args := []string{"-snapshot", snap, "-snapshot-interval", "200ms", "-max-numwant", "2000"}
	h := startHerald(t, port, args...)
	load := startAnnounceLoad(h.URL, 4)
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
	udp := startUDPLoad(t, fmt.Sprintf("127.0.0.1:%d", port), 4)
	defer func() {
		select {
		case <-udp.stop:
		default:
			udp.halt()
		}
	}()
	udp.waitAnswered(t, time.Time{}, 20, "UDP before the kill")
	h.Kill()

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
	// UDP clients go on with the connection ids of the killed process.
	udp.waitAnswered(t, ready, 200, "UDP after the restart")
	udp.halt()
	if len(udp.refused) > 0 {
		t.Errorf("%d UDP announces refused, first: %s; ids issued before a kill -9 must stay valid", len(udp.refused), udp.refused[0])
	}

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
		served := servedPorts(t, h.URL, i)
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
