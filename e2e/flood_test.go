package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"herald/swarm"
	"herald/udptracker"

	"herald/internal/heraldtest"
)

// TestFloodUniqueInfoHashes floods herald with 1,000,000 announces for
// distinct made-up info hashes over UDP while a libtorrent seeder and leecher
// share a file through it. herald, bounded to maxTorrents, must refuse the
// torrents beyond the bound with a BEP 15 error, hold no more than the bound
// and stay within a memory bound derived from it, and the real swarm must
// keep working: the leecher, which joins once the tracker is full, gets the
// file, and after the flood an announce to the swarm still returns both peers.
func TestFloodUniqueInfoHashes(t *testing.T) {
	requireClient(t, "python3-libtorrent", libtorrentInstalled())
	const (
		maxTorrents = 100_000
		floodHashes = 1_000_000
		// perTorrent is a generous allowance of RSS for each torrent held:
		// one map entry, one torrent record and one 8-byte peer cost a few
		// hundred bytes of live heap, which the Go GC lets grow up to
		// twofold before it collects.
		perTorrent = 1 << 10
	)
	h := startHerald(t, "127.0.0.1", "-max-torrents", strconv.Itoa(maxTorrents), "-snapshot", "off")
	dir := t.TempDir()
	data, dataFile := writePayload(t, dir, 1<<20)
	torrent := filepath.Join(dir, "payload.torrent")
	infoHash := makeTorrent(t, torrent, dataFile, "udp://"+h.Addr+"/announce")
	// The peers must outlive the flood, which takes from 15 s to a minute
	// on a busy 2-core machine, so their deadlines are generous.
	peerDeadline := seconds(3 * transferDeadline)
	seeder := startPeerScript(t, "seed", torrent, filepath.Join(dir, "seed"), h.Host, peerDeadline, "0")
	seederPort := seeder.waitLine(t, "ready", transferDeadline+10*time.Second)

	torrentsBefore, err := heraldMetric(h.Addr, "herald_torrents")
	if err != nil {
		t.Fatal(err)
	}
	rssBefore, err := vmRSS(h.Cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	// The bound is what herald held before the flood (the Go runtime, the
	// seeder's swarm) plus perTorrent for each torrent the flood may add:
	// 100,000 × 1 KiB ≈ 98 MiB. herald takes about 350 bytes of RSS per
	// torrent, so the 1,000,000 hashes, were they all held, would need
	// more than three times that.
	rssBound := rssBefore + maxTorrents*perTorrent
	peak := sampleHerald(h)

	var counts floodCounts
	floodDone := make(chan error, 1)
	start := time.Now()
	var floodTime time.Duration
	go func() {
		err := flood(h.Addr, floodHashes, &counts)
		floodTime = time.Since(start)
		floodDone <- err
	}()
	// The leecher joins once the tracker is full and refusing new torrents.
	for counts.refused.Load() == 0 {
		select {
		case err := <-floodDone:
			t.Fatalf("the flood ended (%v) with %d accepted and no announce refused", err, counts.accepted.Load())
		case <-time.After(10 * time.Millisecond):
		}
	}
	leecher := startPeerScript(t, "leech", torrent, filepath.Join(dir, "download"), h.Host, peerDeadline)
	leecherPort := leecher.waitLine(t, "finished", transferDeadline+10*time.Second)
	answeredAtFinish := counts.accepted.Load() + counts.refused.Load()
	checkDownload(t, filepath.Join(dir, "download", "payload.bin"), data)
	if err := <-floodDone; err != nil {
		t.Fatalf("flood: %v", err)
	}
	maxRSS, maxTorrentsSeen, err := peak()
	if err != nil {
		t.Fatal(err)
	}
	torrentsAfter, err := heraldMetric(h.Addr, "herald_torrents")
	if err != nil {
		t.Fatal(err)
	}
	accepted, refused := int(counts.accepted.Load()), int(counts.refused.Load())
	t.Logf("flood: %d announces in %v (%d answered when the leecher finished, %d resent), %d accepted, %d refused as over the bound; herald_torrents %d before, %d after, at most %d seen; VmRSS %d kB before, at most %d kB (bound %d kB)",
		floodHashes, floodTime.Round(time.Millisecond), answeredAtFinish, counts.resent.Load(), accepted, refused, torrentsBefore, torrentsAfter, maxTorrentsSeen, rssBefore>>10, maxRSS>>10, rssBound>>10)
	if accepted+refused != floodHashes {
		t.Errorf("flood answers: %d accepted + %d refused, want %d", accepted, refused, floodHashes)
	}
	// Every slot left under the bound went to the flood, and no more.
	if torrentsAfter != maxTorrents || accepted != maxTorrents-torrentsBefore {
		t.Errorf("herald holds %d torrents after accepting %d of the flood's (had %d), want the bound %d",
			torrentsAfter, accepted, torrentsBefore, maxTorrents)
	}
	if maxTorrentsSeen > maxTorrents {
		t.Errorf("herald_torrents reached %d during the flood, above the bound %d", maxTorrentsSeen, maxTorrents)
	}
	if maxRSS > rssBound {
		t.Errorf("herald's VmRSS reached %d kB, above the bound %d kB", maxRSS>>10, rssBound>>10)
	}
	// An operator sees the bound and the refusals in the metrics: each
	// refused announce once, or more often if it was sent again.
	if limit, err := heraldMetric(h.Addr, "herald_torrents_limit"); err != nil || limit != maxTorrents {
		t.Errorf("herald_torrents_limit = %d (%v), want %d", limit, err, maxTorrents)
	}
	metricRefusals, err := heraldMetric(h.Addr, `herald_store_refusals_total{reason="torrent_limit"}`)
	if resent := int(counts.resent.Load()); err != nil || metricRefusals < refused || metricRefusals > refused+resent {
		t.Errorf("herald_store_refusals_total{reason=\"torrent_limit\"} = %d (%v), want %d refused (+ up to %d resent)",
			metricRefusals, err, refused, resent)
	}

	// The swarm still works: both libtorrent peers are counted and handed out.
	wantScrapeHTTP(t, h.Addr, infoHash, "after the flood", 2, 0, 1)
	c, err := dialUDPTracker(h.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.conn.Close()
	var resp udptracker.AnnounceResponse
	req := c.announceRequest(1, infoHash, 50)
	err = c.exchange(map[uint32][]byte{1: req}, func(b []byte) error { return udptracker.ParseAnnounceResponse(b, &resp) })
	if err != nil {
		t.Fatalf("announce to the libtorrent swarm after the flood: %v", err)
	}
	ports := map[string]bool{}
	for p := resp.Peers; len(p) >= 6; p = p[6:] {
		ports[strconv.Itoa(int(binary.BigEndian.Uint16(p[4:])))] = true
	}
	if !ports[seederPort] || !ports[leecherPort] {
		t.Errorf("announce after the flood: peers on ports %v, want the seeder's %s and the leecher's %s", ports, seederPort, leecherPort)
	}
	seeder.stop(t)
	leecher.stop(t)
}

// floodCounts are the flood's announces by herald's answer, and how many
// were sent again for want of one.
type floodCounts struct{ accepted, refused, resent atomic.Int64 }

// flood announces n distinct random info hashes to the UDP tracker at addr
// from several sockets at once, each keeping a window of requests in flight.
// An announce answered with anything but success or the tracker-full error
// ends it with an error.
func flood(addr string, n int, counts *floodCounts) error {
	const workers, window = 8, 32
	var prefix [12]byte
	rand.Read(prefix[:])
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			errs[w] = floodRange(addr, prefix, w*n/workers, (w+1)*n/workers, window, counts)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// floodRange announces the info hashes prefix+i for i in [from, to), window
// at a time, on a socket of its own; the transaction id is i.
func floodRange(addr string, prefix [12]byte, from, to, window int, counts *floodCounts) error {
	c, err := dialUDPTracker(addr)
	if err != nil {
		return err
	}
	defer func() {
		c.conn.Close()
		counts.resent.Add(int64(c.resent))
	}()
	handle := func(b []byte) error {
		var r udptracker.AnnounceResponse
		if udptracker.ParseAnnounceResponse(b, &r) == nil {
			counts.accepted.Add(1)
			return nil
		}
		e, err := udptracker.ParseErrorResponse(b)
		if err != nil {
			return fmt.Errorf("announce reply %x: %w", b, err)
		}
		if !strings.Contains(e.Message, "no new torrents") {
			return fmt.Errorf("announce refused with %q, want a tracker-full error", e.Message)
		}
		counts.refused.Add(1)
		return nil
	}
	for next := from; next < to; next += window {
		// BEP 15 connection ids last one to two minutes.
		if time.Since(c.connectedAt) > 30*time.Second {
			if err := c.connect(); err != nil {
				return err
			}
		}
		reqs := make(map[uint32][]byte, window)
		for i := next; i < min(next+window, to); i++ {
			var ih [20]byte
			copy(ih[:], prefix[:])
			binary.BigEndian.PutUint64(ih[12:], uint64(i))
			reqs[uint32(i)] = c.announceRequest(uint32(i), ih, 0)
		}
		if err := c.exchange(reqs, handle); err != nil {
			return err
		}
	}
	return nil
}

// udpTrackerClient is a BEP 15 client on one connected UDP socket.
type udpTrackerClient struct {
	conn        *net.UDPConn
	connID      uint64
	connectedAt time.Time
	peerID      [20]byte
	buf         []byte
	resent      int // requests sent again for want of a reply
}

// dialUDPTracker opens a socket to the tracker at addr and gets a
// connection id.
func dialUDPTracker(addr string) (*udpTrackerClient, error) {
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	conn, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		return nil, fmt.Errorf("dialing the UDP tracker: %w", err)
	}
	c := &udpTrackerClient{conn: conn, buf: make([]byte, 2048)}
	rand.Read(c.peerID[:])
	if err := c.connect(); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

func (c *udpTrackerClient) connect() error {
	const tid = math.MaxUint32 // above every announce's transaction id
	req := udptracker.AppendConnectRequest(nil, udptracker.ConnectRequest{TransactionID: tid})
	return c.exchange(map[uint32][]byte{tid: req}, func(b []byte) error {
		r, err := udptracker.ParseConnectResponse(b)
		if err != nil {
			return fmt.Errorf("connect reply %x: %w", b, err)
		}
		c.connID, c.connectedAt = r.ConnectionID, time.Now()
		return nil
	})
}

// announceRequest is a leecher's "started" announce for infoHash asking for
// numWant peers, listening on this socket's port.
func (c *udpTrackerClient) announceRequest(tid uint32, infoHash [20]byte, numWant int32) []byte {
	return udptracker.AppendAnnounceRequest(nil, &udptracker.AnnounceRequest{
		ConnectionID:  c.connID,
		TransactionID: tid,
		InfoHash:      swarm.InfoHash(infoHash),
		PeerID:        swarm.PeerID(c.peerID),
		Left:          1,
		Event:         swarm.EventStarted,
		NumWant:       numWant,
		Port:          uint16(c.conn.LocalAddr().(*net.UDPAddr).Port),
	})
}

// exchange sends the requests, keyed by transaction id, and hands each reply
// to handle once. Requests without a reply within 500 ms are sent again, up
// to 10 times in all: UDP may drop what a socket buffer cannot hold.
func (c *udpTrackerClient) exchange(reqs map[uint32][]byte, handle func(reply []byte) error) error {
	for try := 0; len(reqs) > 0; try++ {
		if try == 10 {
			return fmt.Errorf("%d requests to the UDP tracker unanswered after %d sends", len(reqs), try)
		}
		if try > 0 {
			c.resent += len(reqs)
		}
		for _, r := range reqs {
			if _, err := c.conn.Write(r); err != nil {
				return fmt.Errorf("sending to the UDP tracker: %w", err)
			}
		}
		c.conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		for len(reqs) > 0 {
			n, err := c.conn.Read(c.buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			if err != nil {
				return fmt.Errorf("reading from the UDP tracker: %w", err)
			}
			if n < 8 {
				return fmt.Errorf("UDP tracker reply of %d bytes", n)
			}
			tid := binary.BigEndian.Uint32(c.buf[4:8])
			if _, pending := reqs[tid]; !pending {
				continue // the second reply to a request sent twice
			}
			delete(reqs, tid)
			if err := handle(c.buf[:n]); err != nil {
				return err
			}
		}
	}
	return nil
}

// sampleHerald reads herald's VmRSS and herald_torrents every 100 ms until
// the returned function is called, which returns the highest of each.
func sampleHerald(h *heraldtest.Herald) func() (rss, torrents int, err error) {
	stop, done := make(chan struct{}), make(chan struct{})
	var maxRSS, maxTorrents int
	var sampleErr error
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			rss, err := vmRSS(h.Cmd.Process.Pid)
			torrents, err2 := heraldMetric(h.Addr, "herald_torrents")
			if err = errors.Join(err, err2); err != nil {
				sampleErr = err
				return
			}
			maxRSS, maxTorrents = max(maxRSS, rss), max(maxTorrents, torrents)
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return func() (int, int, error) {
		close(stop)
		<-done
		return maxRSS, maxTorrents, sampleErr
	}
}

// vmRSS returns the resident set size of process pid in bytes.
func vmRSS(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("reading herald's RSS: %w", err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				return 0, fmt.Errorf("parsing VmRSS %q: %w", line, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// heraldMetric reads one series, its name and any labels as /metrics prints
// them, from herald's /metrics.
func heraldMetric(addr, series string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("fetching /metrics: %w", err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	for lines.Scan() {
		if v, ok := strings.CutPrefix(lines.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, fmt.Errorf("parsing %s %q: %w", series, v, err)
			}
			return int(f), nil
		}
	}
	return 0, fmt.Errorf("no %s in /metrics (status %s, %v)", series, resp.Status, lines.Err())
}
