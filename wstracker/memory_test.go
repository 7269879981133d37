package wstracker

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"herald/counters"
)

// idleClientEnv makes the test binary a client that holds idle connections
// (see TestMemoryPerIdleConnection). The clients run in their own process
// so that their memory and file descriptors are not counted against the
// tracker's: 10,000 connections on loopback take 20,000 descriptors.
const idleClientEnv = "WSTRACKER_IDLE_CLIENT"

// TestMemoryPerIdleConnection opens 10,000 WebSocket connections, has each
// announce once (1,000 swarms of 10 peers), and measures what the tracker
// holds per connection while they sit idle: Go heap plus goroutine stacks,
// and RSS.
func TestMemoryPerIdleConnection(t *testing.T) {
	if addr := os.Getenv(idleClientEnv); addr != "" {
		holdIdleConnections(t, addr)
		return
	}
	if testing.Short() {
		t.Skip("opens 10,000 connections")
	}
	if raceEnabled {
		t.Skip("memory figures are meaningless under the race detector")
	}
	const conns = 10_000
	// All from one address: the per-client cap must not apply.
	s := startServer(t, Config{Unlimited: func(netip.Addr) bool { return true }})
	h := s.handler

	heap0, rss0 := memoryInUse()
	cmd := exec.Command(os.Args[0], "-test.run=^TestMemoryPerIdleConnection$")
	cmd.Env = append(os.Environ(), idleClientEnv+"="+s.Addr().String()+","+strconv.Itoa(conns))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ready") {
		t.Fatalf("client: %q, %v", line, err)
	}
	if c, p := gauge(h, counters.Connections), gauge(h, counters.Peers); c != conns || p != conns {
		t.Fatalf("%d connections, %d peers open; want %d", c, p, conns)
	}
	heap1, rss1 := memoryInUse()
	heapPer := float64(heap1-heap0) / conns
	rssPer := float64(rss1-rss0) / conns
	t.Logf("%d idle connections, each a peer: Go heap+stacks %.0f B/conn, RSS %.0f B/conn", conns, heapPer, rssPer)
	// The design target: an idle connection holds a parked goroutine on a
	// 2 KB stack, its socket and its peer, no buffers (about 3.4 KB in
	// all). A goroutine idling on a grown stack, or a message buffer held
	// while waiting, pushes it past 4 KiB.
	if heapPer > 4<<10 {
		t.Fatalf("%.0f B of heap and stack per idle connection, want at most 4 KiB", heapPer)
	}
	stdin.Close()
	waitGauge(t, h, counters.Connections, 0) // the clients went
	if p, n := gauge(h, counters.Peers), gauge(h, counters.Swarms); p != 0 || n != 0 {
		t.Fatalf("after every connection closed: %d peers in %d swarms", p, n)
	}
}

// memoryInUse returns the Go heap in use plus goroutine stacks after a
// collection, and the process's resident set.
func memoryInUse() (heap, rss int64) {
	for range 5 {
		runtime.GC()
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	status, _ := os.ReadFile("/proc/self/status")
	for line := range strings.Lines(string(status)) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			rss = kb << 10
		}
	}
	return int64(m.HeapInuse + m.StackInuse), rss
}

// holdIdleConnections is the client process: it connects, announces once
// per connection, reports "ready" and holds the connections until its
// stdin closes.
func holdIdleConnections(t *testing.T, arg string) {
	addr, n, _ := strings.Cut(arg, ",")
	conns, _ := strconv.Atoi(n)
	var open []io.Closer
	for i := range conns {
		nc, _, _, err := ws.Dial(context.Background(), "ws://"+addr+"/announce")
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		h := id(fmt.Sprintf("idle swarm %010d", i%1000))
		p := id(fmt.Sprintf("-WW0100-idle-%07d", i))
		if err := wsutil.WriteClientText(nc, []byte(announce(h, p, `,"left":1,"event":"started"`))); err != nil {
			t.Fatal(err)
		}
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := wsutil.ReadServerText(nc); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		open = append(open, nc)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	for _, c := range open {
		c.Close()
	}
}
