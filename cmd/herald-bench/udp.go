package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"herald/swarm"
	"herald/udptracker"
)

// connIDLifetime is how long the generator reuses a connection id. BEP 15
// lets a client use one for a minute after receiving it; refreshing at 55 s
// keeps a slow reply from pushing a request past the tracker's limit.
const connIDLifetime = 55 * time.Second

// udpConfig configures the udp mode.
type udpConfig struct {
	target  netip.AddrPort
	sources []netip.Addr
	sockets int
	window  int           // requests in flight per socket (closed loop)
	rate    float64       // total requests per second; 0 = closed loop
	timeout time.Duration // a request unanswered this long is an error
	wl      *workload
}

// udpRunner drives one socket per goroutine pair: a sender that keeps up to
// window requests in flight (or paces them, open loop) and a receiver that
// matches replies to requests by transaction id and validates them.
type udpRunner struct {
	cfg     udpConfig
	clk     *clock
	win     *window
	sockets []*udpSocket
	wg      sync.WaitGroup
}

// udpSlot is one outstanding request. The transaction id is the slot index
// in the low 16 bits and the slot's sequence number in the high 16, so a
// late reply to a reused slot is recognised as stale.
type udpSlot struct {
	busy   bool
	seq    uint16
	sent   int64
	expect udpExpect
}

type udpSocket struct {
	index   int
	conn    *net.UDPConn
	peerLen int

	connID     atomic.Uint64
	connAt     atomic.Int64
	connecting atomic.Bool // a connect is in flight
	reconnect  atomic.Bool // the tracker rejected the connection id

	mu    sync.Mutex // guards slots
	slots []udpSlot
	free  chan uint16

	sendStats counters // owned by the sender
	recvStats counters // owned by the receiver
}

func newUDPRunner(cfg udpConfig, clk *clock, win *window) (*udpRunner, error) {
	if cfg.window < 1 || cfg.window > 1<<16 {
		return nil, fmt.Errorf("udp: window %d: want 1..65536", cfg.window)
	}
	r := &udpRunner{cfg: cfg, clk: clk, win: win}
	for i := range cfg.sockets {
		var src netip.Addr
		if len(cfg.sources) > 0 {
			src = cfg.sources[i%len(cfg.sources)]
		}
		conn, err := dialUDP(src, cfg.target)
		if err != nil {
			r.close()
			return nil, err
		}
		s := &udpSocket{
			index:   i,
			conn:    conn,
			peerLen: peerLenOf(cfg.target.Addr()),
			slots:   make([]udpSlot, cfg.window),
			free:    make(chan uint16, cfg.window),
		}
		for j := range cfg.window {
			s.free <- uint16(j)
		}
		r.sockets = append(r.sockets, s)
		id, err := connectSync(conn, cfg.timeout)
		if err != nil {
			r.close()
			return nil, fmt.Errorf("udp: socket %d (%v): %w", i, conn.LocalAddr(), err)
		}
		s.connID.Store(id)
		s.connAt.Store(clk.now())
	}
	return r, nil
}

func peerLenOf(a netip.Addr) int {
	if a.Unmap().Is4() {
		return 6
	}
	return 18
}

// dialUDP opens a connected UDP socket from src (any address if invalid) to
// target, with receive and send buffers large enough for a burst of replies.
func dialUDP(src netip.Addr, target netip.AddrPort) (*net.UDPConn, error) {
	var laddr *net.UDPAddr
	if src.IsValid() {
		laddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
	}
	conn, err := net.DialUDP("udp", laddr, net.UDPAddrFromAddrPort(target))
	if err != nil {
		return nil, fmt.Errorf("udp: dial %v from %v: %w", target, src, err)
	}
	// The kernel caps these at net.core.[rw]mem_max; a smaller buffer only
	// means more drops, which show up as timeouts.
	_ = conn.SetReadBuffer(8 << 20)
	_ = conn.SetWriteBuffer(8 << 20)
	return conn, nil
}

// connectSync runs a BEP 15 connect on conn, trying three times.
func connectSync(conn *net.UDPConn, timeout time.Duration) (uint64, error) {
	const tid = 0xc0ffee
	req := appendConnect(nil, tid)
	buf := make([]byte, 64)
	var lastErr error
	for range 3 {
		if _, err := conn.Write(req); err != nil {
			lastErr = err
			time.Sleep(timeout)
			continue
		}
		if err := conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
			return 0, fmt.Errorf("connect: %w", err)
		}
		for {
			n, err := conn.Read(buf)
			if err != nil {
				lastErr = err
				break
			}
			if got, ok := replyTID(buf[:n]); !ok || got != tid {
				continue // a stray reply to an earlier attempt
			}
			kind, id := checkUDPReply(buf[:n], udpExpect{action: udpActionConnect}, 0)
			if kind != errNone {
				return 0, fmt.Errorf("connect: invalid reply (%v)", kind)
			}
			return id, conn.SetReadDeadline(time.Time{})
		}
	}
	return 0, fmt.Errorf("connect: no reply after 3 tries: %w", lastErr)
}

func (r *udpRunner) start(ctx context.Context) {
	for _, s := range r.sockets {
		r.wg.Add(2)
		go func() {
			defer r.wg.Done()
			r.receive(s)
		}()
		go func() {
			defer r.wg.Done()
			r.send(ctx, s)
		}()
	}
}

// stop waits (after ctx is done) for outstanding requests to be answered or
// time out, closes the sockets and returns the merged counters.
func (r *udpRunner) stop() counters {
	deadline := time.Now().Add(r.cfg.timeout)
	for time.Now().Before(deadline) && r.outstanding() > 0 {
		time.Sleep(5 * time.Millisecond)
	}
	r.close()
	r.wg.Wait()
	var c counters
	for _, s := range r.sockets {
		c.merge(&s.sendStats)
		c.merge(&s.recvStats)
	}
	return c
}

func (r *udpRunner) tally() tally {
	var t tally
	for _, s := range r.sockets {
		t.add(&s.sendStats)
		t.add(&s.recvStats)
	}
	return t
}

func (r *udpRunner) outstanding() int {
	n := 0
	for _, s := range r.sockets {
		n += cap(s.free) - len(s.free)
	}
	return n
}

func (r *udpRunner) close() {
	for _, s := range r.sockets {
		s.conn.Close()
	}
}

// send issues requests: closed loop, one whenever a slot is free; open loop
// (rate > 0), at the arrivals of a Poisson process of rate/len(sockets) per
// second, counting a due request with no free slot as a backlog error.
func (r *udpRunner) send(ctx context.Context, s *udpSocket) {
	rng := rand.New(rand.NewPCG(r.cfg.wl.seed, uint64(s.index)+1))
	buf := make([]byte, 0, 1024)
	var scratch [][20]byte
	if r.cfg.rate <= 0 {
		for {
			select {
			case idx := <-s.free:
				buf = r.sendOne(s, rng, buf, &scratch, idx, r.clk.now())
			case <-ctx.Done():
				return
			}
		}
	}
	// The arrivals draw from their own stream, so the requests are the
	// same as a closed loop's with the same seed.
	arrivals := rand.New(rand.NewPCG(r.cfg.wl.seed, 1<<33|uint64(s.index)))
	sched := newSchedule(r.clk, r.win, float64(len(r.sockets))/r.cfg.rate*1e9, arrivals)
	defer sched.close()
	for {
		now, ok := sched.wait(ctx, &s.sendStats.errors[errBacklog])
		if !ok {
			return
		}
		select {
		case idx := <-s.free:
			buf = r.sendOne(s, rng, buf, &scratch, idx, now)
		default:
			if r.win.in(now) {
				atomic.AddUint64(&s.sendStats.errors[errBacklog], 1)
			}
		}
		sched.advance()
	}
}

// sendOne builds the next request into slot idx and sends it.
func (r *udpRunner) sendOne(s *udpSocket, rng *rand.Rand, buf []byte, scratch *[][20]byte, idx uint16, now int64) []byte {
	wl := r.cfg.wl
	var exp udpExpect
	connID := s.connID.Load()
	needConnect := s.reconnect.Load() || now-s.connAt.Load() > int64(connIDLifetime)
	s.mu.Lock()
	slot := &s.slots[idx]
	slot.seq++
	tid := uint32(slot.seq)<<16 | uint32(idx)
	s.mu.Unlock()
	buf = buf[:0]
	switch {
	case needConnect && s.connecting.CompareAndSwap(false, true):
		s.reconnect.Store(false)
		exp = udpExpect{action: udpActionConnect}
		buf = appendConnect(buf, tid)
	case wl.isScrape(rng):
		*scratch = wl.scrapeHashes(rng, (*scratch)[:0])
		exp = udpExpect{action: udpActionScrape, hashes: uint8(len(*scratch))}
		buf = appendScrapeHeader(buf, connID, tid)
		for _, h := range *scratch {
			buf = append(buf, h[:]...)
		}
	default:
		nSock := len(r.sockets)
		pi := s.index + nSock*rng.IntN((len(wl.peers)-s.index+nSock-1)/nSock)
		p := wl.peers[pi]
		ev := wl.event(rng)
		exp = udpExpect{action: udpActionAnnounce, numWant: uint16(wl.numWant)}
		buf = udptracker.AppendAnnounceRequest(buf, &udptracker.AnnounceRequest{
			ConnectionID:  connID,
			TransactionID: tid,
			InfoHash:      wl.hashes[p.torrent],
			PeerID:        peerID(pi),
			Left:          left(p, ev),
			Event:         swarm.Event(ev),
			Key:           uint32(pi),
			NumWant:       int32(wl.numWant),
			Port:          p.port,
			URLData:       wl.udpURLData(pi),
		})
	}
	s.mu.Lock()
	slot.busy = true
	slot.sent = now
	slot.expect = exp
	s.mu.Unlock()
	if _, err := s.conn.Write(buf); err != nil {
		if r.win.in(now) {
			atomic.AddUint64(&s.sendStats.errors[errSend], 1)
		}
		s.mu.Lock()
		slot.busy = false
		s.mu.Unlock()
		if exp.action == udpActionConnect {
			s.connecting.Store(false)
		}
		s.free <- idx
	}
	return buf
}

// receive reads replies until the socket closes, sweeping timed-out
// requests every sweepEvery.
func (r *udpRunner) receive(s *udpSocket) {
	const sweepEvery = 50 * time.Millisecond
	buf := make([]byte, 4096)
	var nextSweep int64
	for {
		n, err := s.conn.Read(buf)
		now := r.clk.now()
		if now >= nextSweep {
			r.sweep(s, now)
			_ = s.conn.SetReadDeadline(time.Now().Add(4 * sweepEvery))
			nextSweep = now + int64(sweepEvery)
		}
		if err != nil {
			switch {
			case errors.Is(err, net.ErrClosed):
				return
			case errors.Is(err, os.ErrDeadlineExceeded):
				nextSweep = 0
			default:
				// A connected UDP socket reports ICMP errors (such as a
				// closed port) on the next read.
				if r.win.in(now) {
					atomic.AddUint64(&s.recvStats.errors[errRecv], 1)
				}
			}
			continue
		}
		r.handle(s, buf[:n], now)
	}
}

func (r *udpRunner) handle(s *udpSocket, reply []byte, now int64) {
	st := &s.recvStats
	counting := r.win.in(now)
	tid, ok := replyTID(reply)
	if !ok {
		if counting {
			atomic.AddUint64(&st.errors[errShort], 1)
		}
		return
	}
	idx := int(tid & 0xffff)
	s.mu.Lock()
	if idx >= len(s.slots) || !s.slots[idx].busy || s.slots[idx].seq != uint16(tid>>16) {
		s.mu.Unlock()
		if counting {
			atomic.AddUint64(&st.errors[errUnmatched], 1)
		}
		return
	}
	slot := &s.slots[idx]
	slot.busy = false
	exp, sent := slot.expect, slot.sent
	s.mu.Unlock()
	s.free <- uint16(idx)

	kind, connID := checkUDPReply(reply, exp, s.peerLen)
	switch {
	case exp.action == udpActionConnect:
		if kind == errNone {
			s.connID.Store(connID)
			s.connAt.Store(now)
		}
		s.connecting.Store(false)
	case kind == errTrackerError:
		// Most likely "connection id mismatch": get a fresh one.
		s.reconnect.Store(true)
	}
	if !counting {
		return
	}
	if kind != errNone {
		atomic.AddUint64(&st.errors[kind], 1)
		return
	}
	atomic.AddUint64(&st.valid[exp.action], 1)
	st.latency.record(time.Duration(now - sent))
}

// sweep frees slots whose request has waited longer than the timeout.
func (r *udpRunner) sweep(s *udpSocket, now int64) {
	limit := now - int64(r.cfg.timeout)
	counting := r.win.in(now)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.slots {
		slot := &s.slots[i]
		if !slot.busy || slot.sent > limit {
			continue
		}
		slot.busy = false
		if slot.expect.action == udpActionConnect {
			s.connecting.Store(false)
		}
		if counting {
			atomic.AddUint64(&s.recvStats.errors[errTimeout], 1)
		}
		s.free <- uint16(i)
	}
}
