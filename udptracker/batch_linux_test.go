package udptracker

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"herald/counters"
	"herald/internal/sched"
	"herald/internal/servetest"
	"herald/swarm"
	"herald/tracker"
)

func listenTestBatch(t testing.TB, network, addr string) *linuxConn {
	t.Helper()
	bc, err := listenBatch(network, addr, DefaultReceiveBuffer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bc.Close() })
	return bc.(*linuxConn)
}

// TestRecvmmsgReadsABatch: datagrams waiting in the socket come back from
// one ReadBatch, each with its sender and, on a wildcard socket, the
// address it was sent to.
func TestRecvmmsgReadsABatch(t *testing.T) {
	c := listenTestBatch(t, "udp", "[::]:0")
	client, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), c.LocalAddr().Port())
	for i := range 10 {
		if _, err := client.WriteToUDPAddrPort([]byte{byte(i)}, to); err != nil {
			t.Fatal(err)
		}
	}
	rx := newMessages(batchLen, maxPacketLen)
	n, readAt, err := c.ReadBatch(rx)
	read := time.Now().UnixNano()
	if err != nil || n != 10 {
		t.Fatalf("ReadBatch read %d datagrams, %v; want all 10", n, err)
	}
	from := client.LocalAddr().(*net.UDPAddr).AddrPort()
	var last int64
	for i, m := range rx[:n] {
		if m.N != 1 || m.Buf[0] != byte(i) || m.Addr != from || m.Local != to.Addr() {
			t.Fatalf("datagram %d: %d bytes %x from %v to %v; want 1 byte %x from %v to %v", i, m.N, m.Buf[:m.N], m.Addr, m.Local, i, from, to.Addr())
		}
		// Received in the order sent, before the read returned.
		if m.Arrived < last || m.Arrived > read || read-m.Arrived > int64(10*time.Second) {
			t.Fatalf("datagram %d received at %d, after %d, read at %d", i, m.Arrived, last, read)
		}
		last = m.Arrived
	}
	// The read's end as ReadBatch reports it: after the datagrams came,
	// before ReadBatch returned.
	if at := readAt.wall; at < last || at > read || readAt.since() < 0 {
		t.Fatalf("ReadBatch reports the read ended at %d (%v ago), last datagram received at %d, returned by %d", at, readAt.since(), last, read)
	}
}

// TestSocketPathAllocatesNothing runs datagrams through the real socket
// path (recvmmsg, parse, store, reply, sendmmsg) and counts allocations,
// the client's included.
func TestSocketPathAllocatesNothing(t *testing.T) {
	for _, tc := range []struct{ network, bind, target string }{
		{"udp4", "127.0.0.1:0", "127.0.0.1"},
		{"udp", "[::]:0", "127.0.0.2"}, // dual stack with IPV6_PKTINFO in and out
		{"udp6", "[::1]:0", "::1"},
	} {
		t.Run(tc.bind, func(t *testing.T) {
			c := listenTestBatch(t, tc.network, tc.bind)
			h := newTestHandler(t, Config{})
			to := netip.AddrPortFrom(netip.MustParseAddr(tc.target), c.LocalAddr().Port())
			client, from := dialTestClient(t, to)
			id := h.ids.issue(from, time.Now().Unix())
			pkts := [][]byte{
				AppendConnectRequest(nil, ConnectRequest{TransactionID: 1}),
				announcePacket(id, func(r *AnnounceRequest) { r.URLData = []byte("/announce") }),
				AppendScrapeRequest(nil, &ScrapeRequest{ConnectionID: id, InfoHashes: make([]swarm.InfoHash, 3)}),
			}
			rx := newMessages(batchLen, maxPacketLen)
			tx := newMessages(batchLen, maxReplyLen(h.cfg))
			buf := make([]byte, maxPacketLen)
			var times counters.Tally
			allocs := testing.AllocsPerRun(200, func() {
				for _, p := range pkts {
					if _, err := client.WriteToUDPAddrPort(p, to); err != nil {
						t.Fatal(err)
					}
				}
				for got := 0; got < len(pkts); {
					n, read, err := c.ReadBatch(rx)
					if err != nil {
						t.Fatal(err)
					}
					if rx[0].Arrived == 0 {
						t.Fatal("no receive time")
					}
					if err := serveBatch(c, h, rx[:n], tx, read, &times); err != nil {
						t.Fatal(err)
					}
					got += n
				}
				for range pkts {
					n, _, err := client.ReadFromUDPAddrPort(buf)
					if err != nil || n < 8 || buf[3] == byte(ActionError) {
						t.Fatalf("reply %x, %v", buf[:n], err)
					}
				}
			})
			if allocs != 0 {
				t.Fatalf("%v allocations per round of %d requests", allocs, len(pkts))
			}
			if l := h.counts.Read().Latency[counters.UDP]; l.Count < 200*uint64(len(pkts)) || l.Sum <= 0 {
				t.Fatalf("%d response times summing to %v for %d requests", l.Count, l.Sum, 200*len(pkts))
			}
		})
	}
}

// TestReceiveBuffer: the socket gets the 8 MiB receive buffer it asks for
// (SO_RCVBUFFORCE as root), or as much as net.core.rmem_max allows. Linux
// reports twice the size set, the rest being its bookkeeping.
func TestReceiveBuffer(t *testing.T) {
	c := listenTestBatch(t, "udp4", "127.0.0.1:0")
	var got int
	var gerr error
	if got, gerr = unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_RCVBUF); gerr != nil {
		t.Fatal(gerr)
	}
	want := 2 * DefaultReceiveBuffer
	if os.Geteuid() != 0 {
		raw, err := os.ReadFile("/proc/sys/net/core/rmem_max")
		if err != nil {
			t.Skip("rmem_max unknown:", err)
		}
		rmemMax, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
		want = 2 * min(DefaultReceiveBuffer, rmemMax)
	}
	if got < want {
		t.Fatalf("SO_RCVBUF %d, want at least %d", got, want)
	}
}

// BenchmarkLoopbackAnnounce measures announces end to end over loopback:
// a batching client (recvmmsg/sendmmsg as well) keeps 64 announces in
// flight against a one-socket server; each reply carries 50 of 100 peers.
// ns/op is per announce, client and server working at once (one core
// each on a two-core machine); cpu-ns/op is the CPU both spent on it.
func BenchmarkLoopbackAnnounce(b *testing.B) {
	store, _ := swarm.New(swarm.Config{})
	for i := range 100 {
		a := &swarm.Announce{InfoHash: testHash, Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), 6881), Left: 1}
		store.Announce(a, swarm.FamilyV4, swarm.Peers{})
	}
	s := startServer(b, "127.0.0.1:0", Config{Tracker: testTracker(b, tracker.Config{Store: store}), Sockets: 1})
	client := listenTestBatch(b, "udp4", "127.0.0.1:0")
	// The socket blocks: a lost reply fails the read after a minute
	// instead of hanging the benchmark.
	if err := unix.SetsockoptTimeval(client.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 60}); err != nil {
		b.Fatal(err)
	}
	const window = batchLen
	tx, rx := newMessages(window, maxPacketLen), newMessages(window, maxPacketLen)
	exchange := func(n int) {
		for sent := 0; sent < n; {
			k, err := client.WriteBatch(tx[sent:n])
			if err != nil {
				b.Fatal(err)
			}
			sent += k
		}
		for got := 0; got < n; {
			k, _, err := client.ReadBatch(rx)
			if err != nil {
				b.Fatal(err)
			}
			got += k
		}
	}
	tx[0].N = len(AppendConnectRequest(tx[0].Buf[:0], ConnectRequest{}))
	tx[0].Addr = s.Addr()
	exchange(1)
	cr, err := ParseConnectResponse(rx[0].Buf[:rx[0].N])
	if err != nil {
		b.Fatal(err)
	}
	for i := range tx {
		tx[i].N = len(AppendAnnounceRequest(tx[i].Buf[:0], &AnnounceRequest{ConnectionID: cr.ConnectionID, InfoHash: testHash, Left: 1, NumWant: -1, Port: 7000}))
		tx[i].Addr = s.Addr()
	}
	b.ReportAllocs()
	b.ResetTimer()
	stopCPU := reportCPU(b)
	for done := 0; done < b.N; done += window {
		exchange(min(window, b.N-done))
	}
	b.StopTimer()
	stopCPU()
	var resp AnnounceResponse
	if err := ParseAnnounceResponse(rx[0].Buf[:rx[0].N], &resp); err != nil || len(resp.Peers) != 50*swarm.PeerLen4 {
		b.Fatalf("last reply: %v, %d bytes of peers", err, len(resp.Peers))
	}
	if c := s.cfg.Counters.Read(); c.NotOK(counters.UDP) != 0 || c.Faults[counters.UDP][counters.SendFailed] != 0 {
		b.Fatalf("%d requests not served, %d sends failed", c.NotOK(counters.UDP), c.Faults[counters.UDP][counters.SendFailed])
	}
}

// TestCloseWakesBlockedRead: a reader asleep in recvmmsg (or, in
// single-datagram mode, recvmsg) on the blocking socket, or parked in the
// netpoller in the idle wait, returns when the socket is closed (Shutdown
// depends on it), and reads after that report net.ErrClosed.
func TestCloseWakesBlockedRead(t *testing.T) {
	for _, tc := range []struct {
		network, bind string
		single        bool // blocked in recvmsg, not recvmmsg
		idle          bool // parked in the idle wait
	}{
		{"udp4", "127.0.0.1:0", false, false}, {"udp", "[::]:0", false, false},
		{"udp4", "127.0.0.1:0", true, false}, {"udp", "[::]:0", true, false},
		{"udp4", "127.0.0.1:0", false, true}, {"udp", "[::]:0", true, true},
	} {
		t.Run(fmt.Sprint(tc.bind, " single ", tc.single, " idle ", tc.idle), func(t *testing.T) {
			bc, err := listenBatch(tc.network, tc.bind, DefaultReceiveBuffer)
			if err != nil {
				t.Fatal(err)
			}
			read := make(chan error)
			c := bc.(*linuxConn)
			c.single = tc.single
			if !tc.idle {
				setIdle(c.idle, false)
			}
			go func() {
				rx := newMessages(batchLen, maxPacketLen)
				for {
					if _, _, err := bc.ReadBatch(rx); err != nil {
						read <- err
						return
					}
				}
			}()
			awaitReader(t, tc.idle)
			closeEndsReader(t, bc, read)
		})
	}
}

// TestIdleWait: a new socket's reads, and reads that follow long waits,
// park in the netpoller, holding no P, and read the datagrams that come;
// after a run of reads that find a datagram waiting, the next read blocks
// in the kernel.
func TestIdleWait(t *testing.T) {
	c := listenTestBatch(t, "udp4", "127.0.0.1:0")
	client, _ := dialTestClient(t, c.LocalAddr())
	read, next := make(chan int), make(chan struct{})
	go func() {
		rx := newMessages(batchLen, maxPacketLen)
		for {
			n, _, err := c.ReadBatch(rx)
			if err != nil {
				close(read)
				return
			}
			read <- n
			<-next
		}
	}()
	send := func(b byte) {
		t.Helper()
		if _, err := client.WriteToUDPAddrPort([]byte{b}, c.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	// readOne checks that the reader's read returned one datagram.
	readOne := func() {
		t.Helper()
		if n := <-read; n != 1 {
			t.Fatalf("read %d datagrams, want 1", n)
		}
	}
	// A new socket's first read parks; so does the one after it, which
	// waited long.
	for i := range 2 {
		awaitReader(t, true)
		time.Sleep(2 * sched.IdleAfter)
		send(byte(i))
		readOne()
		if i == 0 {
			next <- struct{}{}
		}
	}
	// Datagrams queued before each read: none waits, and the mean wait
	// falls under sched.IdleAfter (32 waits near 0 take a mean of twice
	// IdleAfter under it at any weight up to 1/16).
	for i := range 32 {
		send(byte(i))
		next <- struct{}{}
		readOne()
	}
	next <- struct{}{}
	awaitReader(t, false)
}

// TestIdleWaitAllocatesNothing: a read through the idle wait, with the
// datagram already queued when it arms, allocates nothing.
func TestIdleWaitAllocatesNothing(t *testing.T) {
	c := listenTestBatch(t, "udp4", "127.0.0.1:0")
	client := rawClient(t, c.LocalAddr())
	rx := newMessages(batchLen, maxPacketLen)
	allocs := testing.AllocsPerRun(100, func() {
		client.trySend([]byte{1})
		setIdle(c.idle, true)
		if n, _, err := c.ReadBatch(rx); n != 1 || err != nil {
			t.Fatalf("ReadBatch: %d, %v; want 1 datagram", n, err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per read through the idle wait, want 0", allocs)
	}
}

// awaitReader waits until a goroutine is in linuxConn.ReadBatch, parked in
// the netpoller in the idle wait (idle) or blocked in a system call.
func awaitReader(t *testing.T, idle bool) {
	t.Helper()
	want := "[syscall"
	if idle {
		want = "[IO wait"
	}
	servetest.WaitFor(t, 5*time.Second, func() error {
		if servetest.Goroutines(func(g string) bool {
			return strings.Contains(g, "(*linuxConn).ReadBatch") && strings.Contains(g, want) && strings.Contains(g, "(*IdleWait).Wait") == idle
		}) == 0 {
			return fmt.Errorf("reader not %s (idle wait %v)", want, idle)
		}
		return nil
	})
}

// TestCloseThenCalls: after Close, reads and writes fail with
// net.ErrClosed without touching the descriptor, a second Close says so
// too, and the descriptor is closed.
func TestCloseThenCalls(t *testing.T) {
	c := listenTestBatch(t, "udp4", "127.0.0.1:0")
	open := socketOpen(t, c.fd)
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if open() {
		t.Fatal("descriptor still open after Close with no call in progress")
	}
	rx := newMessages(batchLen, maxPacketLen)
	for _, single := range []bool{false, true} {
		c.single = single
		if n, _, err := c.ReadBatch(rx); n != 0 || !errors.Is(err, net.ErrClosed) {
			t.Fatalf("ReadBatch after Close (single %v): %d, %v; want net.ErrClosed", single, n, err)
		}
	}
	tx := newMessages(2, maxPacketLen)
	for i := range tx {
		tx[i].N, tx[i].Addr = 1, netip.MustParseAddrPort("127.0.0.1:9")
	}
	for _, k := range []int{1, 2} {
		if n, err := c.WriteBatch(tx[:k]); n != 0 || !errors.Is(err, net.ErrClosed) {
			t.Fatalf("WriteBatch of %d after Close: %d, %v; want net.ErrClosed", k, n, err)
		}
	}
	if err := c.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close: %v, want net.ErrClosed", err)
	}
}

// TestCloseLeavesDescriptorToLastCall: a Close while a system call uses
// the socket leaves the descriptor open (its number cannot be reused under
// the call) until that call is done, which closes it, once.
func TestCloseLeavesDescriptorToLastCall(t *testing.T) {
	c := listenTestBatch(t, "udp4", "127.0.0.1:0")
	open := socketOpen(t, c.fd)
	if !c.use() || !c.use() {
		t.Fatal("use refused on an open socket")
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if c.use() {
		t.Fatal("a new call may start after Close")
	}
	for i := range 2 {
		if !open() {
			t.Fatalf("descriptor closed with %d calls still in progress", 2-i)
		}
		if err := c.done(); err != nil {
			t.Fatalf("done: %v", err)
		}
	}
	if open() {
		t.Fatal("descriptor open after the last call")
	}
	if c.use() {
		t.Fatal("a new call may start after the descriptor is closed")
	}
}

// TestCloseWhileServing: Close from another goroutine while the reader
// reads and writes in a loop (and a client keeps it busy) ends the reader
// with net.ErrClosed and closes the descriptor; run with -race.
func TestCloseWhileServing(t *testing.T) {
	for _, single := range []bool{false, true} {
		t.Run(fmt.Sprint("single ", single), func(t *testing.T) {
			c := listenTestBatch(t, "udp4", "127.0.0.1:0")
			open := socketOpen(t, c.fd)
			client := rawClient(t, c.LocalAddr())
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				for {
					select {
					case <-stop:
						return
					default:
						client.trySend([]byte{1, 2, 3})
						time.Sleep(50 * time.Microsecond)
					}
				}
			}()
			ended := make(chan error, 1)
			go func() {
				rx, tx := newMessages(batchLen, maxPacketLen), newMessages(batchLen, maxPacketLen)
				for {
					c.single = single
					n, _, err := c.ReadBatch(rx)
					if err != nil {
						ended <- err
						return
					}
					for i := range n {
						tx[i].N, tx[i].Addr = rx[i].N, rx[i].Addr
					}
					if _, err := c.WriteBatch(tx[:n]); errors.Is(err, net.ErrClosed) {
						ended <- err
						return
					}
				}
			}()
			time.Sleep(30 * time.Millisecond)
			closeEndsReader(t, c, ended)
			if open() {
				t.Fatal("descriptor open after the reader ended")
			}
		})
	}
}

// closeEndsReader closes c and waits for its reader to report, on ended,
// that it stopped with net.ErrClosed.
func closeEndsReader(t *testing.T, c batchConn, ended <-chan error) {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-ended:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("reader ended with %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reader still running 5s after Close")
	}
}

// socketOpen returns a function that reports whether descriptor fd still
// refers to the socket it refers to now (by inode: the number itself may
// have been reused after a close).
func socketOpen(t *testing.T, fd int) func() bool {
	t.Helper()
	want, err := os.Readlink(fmt.Sprint("/proc/self/fd/", fd))
	if err != nil || !strings.HasPrefix(want, "socket:") {
		t.Fatalf("descriptor %d: %q, %v; want a socket", fd, want, err)
	}
	return func() bool {
		got, err := os.Readlink(fmt.Sprint("/proc/self/fd/", fd))
		return err == nil && got == want
	}
}

// TestSingleDatagramReads: after singleAfter reads that each slept until one
// datagram came, the reader reads with recvmsg and a lone reply goes out with sendto (sendmsg
// with its source address on a wildcard socket); senders, local addresses,
// receive times and replies are as on the batch path, nothing allocates,
// and once datagrams queue up they are read as a batch again.
func TestSingleDatagramReads(t *testing.T) {
	for _, tc := range []struct{ network, bind, target string }{
		{"udp4", "127.0.0.1:0", "127.0.0.1"},
		{"udp", "[::]:0", "127.0.0.2"}, // IPv4 through a dual-stack wildcard: IPV6_PKTINFO
		{"udp", "[::]:0", "::1"},       // IPv6 through it
		{"udp6", "[::1]:0", "::1"},     // IPv6, one address
	} {
		t.Run(tc.bind+"->"+tc.target, func(t *testing.T) {
			c := listenTestBatch(t, tc.network, tc.bind)
			to := netip.AddrPortFrom(netip.MustParseAddr(tc.target), c.LocalAddr().Port())
			client, from := dialTestClient(t, to)
			wantLocal := netip.Addr{}
			if c.pktinfo {
				wantLocal = to.Addr()
			}
			rx := newMessages(batchLen, maxPacketLen)
			tx := newMessages(batchLen, maxPacketLen)
			buf := make([]byte, maxPacketLen)
			i := 0
			sent := make(chan error, 1)
			pkt := make([]byte, 3)
			send := func() {
				pkt[0], pkt[1], pkt[2] = byte(i), 1, 2
				_, err := client.WriteToUDPAddrPort(pkt, to)
				sent <- err
			}
			exchange := func(delay time.Duration) {
				i++
				if delay == 0 {
					send()
				} else {
					go func() { time.Sleep(delay); send() }()
				}
				n, _, err := c.ReadBatch(rx)
				if serr := <-sent; serr != nil {
					t.Fatal(serr)
				}
				if err != nil || n != 1 {
					t.Fatalf("ReadBatch: %d datagrams, %v; want 1", n, err)
				}
				m := &rx[0]
				if m.Arrived == 0 || m.Arrived > time.Now().UnixNano() {
					t.Fatalf("datagram received at %d", m.Arrived)
				}
				if m.N != 3 || m.Buf[0] != byte(i) || m.Addr != from || m.Local != wantLocal {
					t.Fatalf("read %x from %v to %v; want %x from %v to %v", m.Buf[:m.N], m.Addr, m.Local, []byte{byte(i), 1, 2}, from, wantLocal)
				}
				tx[0].Buf[0], tx[0].N = byte(i), 1
				tx[0].Addr, tx[0].Scope, tx[0].Local = m.Addr, m.Scope, m.Local
				if n, err := c.WriteBatch(tx[:1]); n != 1 || err != nil {
					t.Fatalf("WriteBatch: %d, %v", n, err)
				}
				n, src, err := client.ReadFromUDPAddrPort(buf)
				if err != nil || n != 1 || buf[0] != byte(i) || src.Addr().Unmap() != to.Addr() {
					t.Fatalf("reply %x from %v, %v; want %x from %v", buf[:n], src, err, byte(i), to.Addr())
				}
			}
			// Batches of one that waited in the queue do not count.
			for range singleAfter {
				exchange(0)
			}
			if c.single {
				t.Fatal("batches of one that had queued put the reader in single-datagram mode")
			}
			for range singleAfter {
				exchange(5 * time.Millisecond)
			}
			if !c.single {
				t.Fatalf("after %d reads that slept for one datagram the reader is not in single-datagram mode", singleAfter)
			}
			// A read that waits for its datagram keeps the mode.
			exchange(20 * time.Millisecond)
			if !c.single {
				t.Fatal("a read that slept left single-datagram mode")
			}
			// A datagram sent before the read ends the mode; put it back,
			// to count what single reads allocate.
			if allocs := testing.AllocsPerRun(20, func() { c.single = true; exchange(0) }); allocs != 0 {
				t.Fatalf("%v allocations per single-datagram exchange", allocs)
			}
			c.single, c.streak = true, 0
			// A queue: the first read takes one datagram, received before
			// the read began, and the reader goes back to batches.
			for k := range 5 {
				if _, err := client.WriteToUDPAddrPort([]byte{byte(k)}, to); err != nil {
					t.Fatal(err)
				}
			}
			for k, want := range []int{1, 4} {
				n, _, err := c.ReadBatch(rx)
				if err != nil || n != want {
					t.Fatalf("read %d of the queue: %d datagrams, %v; want %d", k, n, err, want)
				}
				if c.single {
					t.Fatal("still in single-datagram mode after reading a queued datagram")
				}
			}
		})
	}
}

// BenchmarkSocketServe runs connects through the real socket path of one
// reader: the read (recvmsg in single-datagram mode, or one recvmmsg of a
// batch of 16), serveBatch with its clock reads and histograms, and the
// send (sendto, or one sendmmsg). The client is a bare socket driven by
// raw system calls, so what differs between builds is the server's path;
// it is meant for instruction counts (valgrind --tool=callgrind) as much as
// for time.
func BenchmarkSocketServe(b *testing.B) {
	for _, batch := range []int{1, 16} {
		b.Run(fmt.Sprintf("batch%d", batch), func(b *testing.B) {
			c := listenTestBatch(b, "udp4", "127.0.0.1:0")
			h := newTestHandler(b, Config{})
			client := rawClient(b, c.LocalAddr())
			rx := newMessages(batchLen, maxPacketLen)
			tx := newMessages(batchLen, maxReplyLen(h.cfg))
			var times counters.Tally
			pkt := AppendConnectRequest(nil, ConnectRequest{TransactionID: 1})
			buf := make([]byte, maxPacketLen)
			b.ReportAllocs()
			for b.Loop() {
				for range batch {
					client.send(b, pkt)
				}
				if batch == 1 {
					c.single, c.streak = true, 0
				}
				n, read, err := c.ReadBatch(rx)
				if err != nil || n != batch {
					b.Fatalf("read %d datagrams, %v; want %d", n, err, batch)
				}
				if err := serveBatch(c, h, rx[:n], tx, read, &times); err != nil {
					b.Fatal(err)
				}
				for range batch {
					client.recv(b, buf)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/datagram")
		})
	}
}

// rawSocket is a connected UDP socket used with raw system calls: a test
// client whose own cost does not depend on the server's socket code.
type rawSocket int

func rawClient(tb testing.TB, server netip.AddrPort) rawSocket {
	tb.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { unix.Close(fd) })
	if err := unix.Connect(fd, &unix.SockaddrInet4{Addr: server.Addr().As4(), Port: int(server.Port())}); err != nil {
		tb.Fatal(err)
	}
	return rawSocket(fd)
}

func (s rawSocket) send(tb testing.TB, p []byte) {
	if _, _, errno := unix.RawSyscall(unix.SYS_WRITE, uintptr(s), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p))); errno != 0 {
		tb.Fatal("send:", errno)
	}
}

// trySend sends p if the socket's buffer has room, ignoring errors (a
// refused datagram of a closed server's port among them).
func (s rawSocket) trySend(p []byte) {
	unix.RawSyscall6(unix.SYS_SENDTO, uintptr(s), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), unix.MSG_DONTWAIT, 0, 0)
}

// recv reads one datagram, waiting for it (without telling the scheduler,
// which is fine for a benchmark's single goroutine) if it is not there yet.
func (s rawSocket) recv(tb testing.TB, p []byte) int {
	for {
		n, _, errno := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(s), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
			return int(n)
		case unix.EAGAIN, unix.EINTR:
			runtime.Gosched()
		default:
			tb.Fatal("recv:", errno)
		}
	}
}

// dialTestClient opens a client socket for datagrams to a test server at
// to, read deadline 10 s, closed when the test ends, and returns it with
// the address the server sees it send from: 127.0.0.1 for an IPv4 target
// (any of 127/8), ::1 for an IPv6 one (the tests send only to ::1).
func dialTestClient(t *testing.T, to netip.AddrPort) (*net.UDPConn, netip.AddrPort) {
	t.Helper()
	client, err := net.ListenUDP("udp", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	port := client.LocalAddr().(*net.UDPAddr).AddrPort().Port()
	if to.Addr().Is4() {
		return client, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)
	}
	return client, netip.AddrPortFrom(netip.IPv6Loopback(), port)
}

// setIdle makes w's running mean say idle, or busy, as a run of long, or
// short, waits would.
func setIdle(w *sched.IdleWait, idle bool) {
	for w.Idle() != idle {
		if idle {
			w.Waited(int64(10 * sched.IdleAfter))
		} else {
			w.Waited(0)
		}
	}
}
