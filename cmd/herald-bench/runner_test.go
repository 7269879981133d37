package main

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeTracker is a minimal BEP 15 tracker on 127.0.0.1:0 that misbehaves on
// purpose: every truncateEvery-th announce gets only the 8-byte header, and
// every dropEvery-th gets no reply at all.
type fakeTracker struct {
	conn          *net.UDPConn
	truncateEvery int
	dropEvery     int
	wg            sync.WaitGroup

	mu        sync.Mutex
	announces int
	swarms    map[[20]byte]map[netip.AddrPort]bool
}

const fakeConnID = 0x5eed

func startFakeTracker(t *testing.T, truncateEvery, dropEvery int) *fakeTracker {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ft := &fakeTracker{conn: conn, truncateEvery: truncateEvery, dropEvery: dropEvery, swarms: map[[20]byte]map[netip.AddrPort]bool{}}
	ft.wg.Add(1)
	go ft.serve()
	t.Cleanup(func() {
		conn.Close()
		ft.wg.Wait()
	})
	return ft
}

func (ft *fakeTracker) addr() netip.AddrPort { return ft.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

func (ft *fakeTracker) serve() {
	defer ft.wg.Done()
	buf := make([]byte, 2048)
	for {
		n, from, err := ft.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		if reply := ft.handle(buf[:n], from); reply != nil {
			ft.conn.WriteToUDPAddrPort(reply, from)
		}
	}
}

func (ft *fakeTracker) handle(req []byte, from netip.AddrPort) []byte {
	if len(req) < 16 {
		return nil
	}
	action, tid := binary.BigEndian.Uint32(req[8:]), binary.BigEndian.Uint32(req[12:])
	reply := binary.BigEndian.AppendUint32(nil, action)
	reply = binary.BigEndian.AppendUint32(reply, tid)
	if action == udpActionConnect {
		return binary.BigEndian.AppendUint64(reply, fakeConnID)
	}
	if binary.BigEndian.Uint64(req) != fakeConnID {
		return append(binary.BigEndian.AppendUint64(nil, udpActionError<<32|uint64(tid)), "Connection ID missmatch.\x00"...)
	}
	ft.mu.Lock()
	defer ft.mu.Unlock()
	switch action {
	case udpActionAnnounce:
		ft.announces++
		if ft.dropEvery > 0 && ft.announces%ft.dropEvery == 0 {
			return nil
		}
		if ft.truncateEvery > 0 && ft.announces%ft.truncateEvery == 0 {
			return reply
		}
		var hash [20]byte
		copy(hash[:], req[16:36])
		peer := netip.AddrPortFrom(from.Addr(), binary.BigEndian.Uint16(req[96:]))
		swarm := ft.swarms[hash]
		if swarm == nil {
			swarm = map[netip.AddrPort]bool{}
			ft.swarms[hash] = swarm
		}
		if binary.BigEndian.Uint32(req[80:]) == udpEventStopped {
			delete(swarm, peer)
		} else {
			swarm[peer] = true
		}
		numWant := int(binary.BigEndian.Uint32(req[92:]))
		reply = binary.BigEndian.AppendUint32(reply, 1800)
		reply = binary.BigEndian.AppendUint32(reply, 0)
		reply = binary.BigEndian.AppendUint32(reply, uint32(len(swarm)))
		for p := range swarm {
			if numWant == 0 {
				break
			}
			if p != peer {
				reply = append(reply, p.Addr().AsSlice()...)
				reply = binary.BigEndian.AppendUint16(reply, p.Port())
				numWant--
			}
		}
		return reply
	case udpActionScrape:
		for h := req[16:]; len(h) >= 20; h = h[20:] {
			reply = binary.BigEndian.AppendUint32(reply, uint32(len(ft.swarms[[20]byte(h[:20])])))
			reply = binary.BigEndian.AppendUint64(reply, 0)
		}
		return reply
	}
	return nil
}

func TestUDPRunnerCountsOnlyValidReplies(t *testing.T) {
	ft := startFakeTracker(t, 10, 0)
	wl, err := newWorkload(workloadConfig{seed: 1, torrents: 100, peers: 1000, mix: "1:0", events: "1:1:0:0", seeders: 0.75, numWant: 30, maxScrape: 10})
	if err != nil {
		t.Fatal(err)
	}
	clk, win := newClock(), newWindow()
	r, err := newUDPRunner(udpConfig{target: ft.addr(), sources: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, sockets: 2, window: 8, timeout: time.Second, wl: wl}, clk, win)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	win.start.Store(clk.now())
	r.start(ctx)
	time.Sleep(300 * time.Millisecond)
	win.end.Store(clk.now())
	cancel()
	c := r.stop()
	valid, truncated := c.valid[kindAnnounce], c.errors[errSize]
	if valid < 100 {
		t.Fatalf("%d valid announces in 300ms", valid)
	}
	// Every tenth reply is truncated: one error per nine valid replies.
	if ratio := float64(valid) / float64(truncated); ratio < 8 || ratio > 10 {
		t.Errorf("%d valid, %d size errors: want about 9 valid per error", valid, truncated)
	}
	if c.errors[errTimeout] != 0 || c.errors[errUnmatched] != 0 {
		t.Errorf("errors %v on a tracker that answers everything", c.errors)
	}
	if q := c.latency.quantile(0.5); q <= 0 || q > time.Second {
		t.Errorf("median latency %v", q)
	}
}

func TestUDPRunnerOpenLoopKeepsRate(t *testing.T) {
	ft := startFakeTracker(t, 0, 0)
	wl, err := newWorkload(workloadConfig{seed: 1, torrents: 100, peers: 1000, mix: "100:1", events: "5:90:3:2", seeders: 0.75, numWant: 30, maxScrape: 10})
	if err != nil {
		t.Fatal(err)
	}
	clk, win := newClock(), newWindow()
	r, err := newUDPRunner(udpConfig{target: ft.addr(), sockets: 2, window: 512, rate: 2000, timeout: time.Second, wl: wl}, clk, win)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.start(ctx)
	time.Sleep(100 * time.Millisecond)
	win.start.Store(clk.now())
	time.Sleep(500 * time.Millisecond)
	win.end.Store(clk.now())
	cancel()
	c := r.stop()
	// 2000/s for 0.5s: each due request is either answered or, if the
	// generator was descheduled and fell behind, counted as backlog.
	if got := c.totalValid() + c.errors[errBacklog]; got < 850 || got > 1150 {
		t.Errorf("%d valid responses and %d backlog at 2000/s over 0.5s, want about 1000 together", c.totalValid(), c.errors[errBacklog])
	}
	if c.totalValid() == 0 {
		t.Error("no valid responses")
	}
}

func TestFillLoadsEveryPeerDespiteDrops(t *testing.T) {
	ft := startFakeTracker(t, 0, 50)
	res, c, err := fill(context.Background(), fillConfig{
		target: ft.addr(), sources: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
		peers: 3000, torrents: 100, window: 16, timeout: 200 * time.Millisecond, seed: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Held != 3000 {
		t.Errorf("tracker holds %d peers, want 3000", res.Held)
	}
	if res.Retries == 0 || c.errors[errTimeout] == 0 {
		t.Errorf("every 50th announce is dropped, yet %d re-sent, errors %v", res.Retries, c.errors)
	}
	if c.valid[kindAnnounce] != 3000 {
		t.Errorf("%d valid announces, want 3000", c.valid[kindAnnounce])
	}
}

func TestReannounceKeepsEveryPeerForTheWholeTime(t *testing.T) {
	for _, tc := range []struct {
		name      string
		dropEvery int
		d         time.Duration
	}{
		// Passes of a few ms: many whole passes, the last cut at d.
		{"cut at d", 0, 300 * time.Millisecond},
		// Every 50th announce is dropped and re-sent after 200 ms, so the
		// first pass outlasts d and runs to its end anyway.
		{"first pass longer than d", 50, 100 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ft := startFakeTracker(t, 0, tc.dropEvery)
			cfg := fillConfig{
				target: ft.addr(), sources: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
				peers: 2000, torrents: 100, window: 16, timeout: 200 * time.Millisecond, seed: 1,
			}
			if _, _, err := fill(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
			res, c, err := reannounce(context.Background(), cfg, tc.d)
			if err != nil {
				t.Fatal(err)
			}
			if res.Held != 2000 {
				t.Errorf("tracker holds %d peers after re-announcing, want 2000", res.Held)
			}
			if res.Passes < 1 || res.PassSeconds <= 0 || res.Seconds < res.PassSeconds {
				t.Errorf("%d whole passes, the first %.3fs, in all %.3fs", res.Passes, res.PassSeconds, res.Seconds)
			}
			switch valid := c.valid[kindAnnounce]; {
			case res.PassSeconds < tc.d.Seconds() && (res.Seconds < tc.d.Seconds() || res.Seconds > tc.d.Seconds()+0.15):
				t.Errorf("re-announced for %.3fs, want %v (a cut pass stops at once)", res.Seconds, tc.d)
			case res.PassSeconds >= tc.d.Seconds() && (res.Passes != 1 || res.Seconds > res.PassSeconds+0.05):
				t.Errorf("%d passes in %.3fs, the first %.3fs: want the first pass only", res.Passes, res.Seconds, res.PassSeconds)
			case valid < uint64(res.Passes)*2000 || valid >= uint64(res.Passes+1)*2000:
				t.Errorf("%d whole passes but %d valid announces", res.Passes, valid)
			}
		})
	}
}

func TestFillNeedsEnoughSourceAddresses(t *testing.T) {
	ft := startFakeTracker(t, 0, 0)
	_, _, err := fill(context.Background(), fillConfig{
		target: ft.addr(), sources: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
		peers: 2 * fillPortsPerAddr, torrents: 100, window: 16, timeout: time.Second, seed: 1,
	})
	if err == nil || !strings.Contains(err.Error(), "-src") {
		t.Fatalf("err %v, want one that names -src", err)
	}
}

func TestParseSources(t *testing.T) {
	v4 := netip.MustParseAddr("127.0.0.1")
	got, err := parseSources("", v4)
	if err != nil || len(got) != 16 || got[15] != netip.MustParseAddr("127.0.0.16") {
		t.Fatalf("default v4 sources %v, %v", got, err)
	}
	got, err = parseSources("fd68:6572::1+3,::1", netip.MustParseAddr("::1"))
	if err != nil || len(got) != 4 || got[2] != netip.MustParseAddr("fd68:6572::3") {
		t.Fatalf("v6 sources %v, %v", got, err)
	}
	if _, err := parseSources("::1", v4); err == nil {
		t.Error("accepted an IPv6 source for an IPv4 target")
	}
	if _, err := parseSources("127.0.0.1+0", v4); err == nil {
		t.Error("accepted a count of 0")
	}
}
