package udptracker

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"time"

	"herald/counters"
)

// fakeConn is a batchConn that records what is written and fails the
// write of chosen transaction ids, as sendmmsg does for a message whose
// destination has no route.
type fakeConn struct {
	failTID map[uint32]bool
	sent    []uint32      // transaction ids of the replies sent
	sendFor time.Duration // how long each WriteBatch takes
}

func (f *fakeConn) ReadBatch([]message) (int, instant, error) { return 0, instant{}, net.ErrClosed }
func (f *fakeConn) LocalAddr() netip.AddrPort                 { return netip.AddrPort{} }
func (f *fakeConn) Close() error                              { return nil }

func (f *fakeConn) WriteBatch(msgs []message) (int, error) {
	time.Sleep(f.sendFor)
	for i, m := range msgs {
		r, err := ParseConnectResponse(m.Buf[:m.N])
		if err != nil {
			return i, err
		}
		if f.failTID[r.TransactionID] {
			return i, syscall.ENETUNREACH
		}
		f.sent = append(f.sent, r.TransactionID)
	}
	return len(msgs), nil
}

var _ batchConn = (*fakeConn)(nil)

// TestServeBatchSkipsFailedSend: one reply the kernel refuses costs that
// reply only; the rest of the batch still goes out, and it is counted.
func TestServeBatchSkipsFailedSend(t *testing.T) {
	h := newTestHandler(t, Config{})
	rx := newMessages(5, maxPacketLen)
	tx := newMessages(5, maxReplyLen(h.cfg))
	for i := range rx {
		rx[i].N = len(AppendConnectRequest(rx[i].Buf[:0], ConnectRequest{TransactionID: uint32(i)}))
		rx[i].Addr = testClient
	}
	rx[3].N = 10 // a runt: no reply
	fc := &fakeConn{failTID: map[uint32]bool{1: true}}
	if err := serveBatch(fc, h, rx, tx, instant{testNow * int64(time.Second), nanotime()}, new(counters.Tally)); err != nil {
		t.Fatal(err)
	}
	if want := []uint32{0, 2, 4}; len(fc.sent) != len(want) || fc.sent[0] != 0 || fc.sent[1] != 2 || fc.sent[2] != 4 {
		t.Fatalf("sent replies %v, want %v", fc.sent, want)
	}
	if got := h.counts.Read().Faults[counters.UDP][counters.SendFailed]; got != 1 {
		t.Errorf("send failures %d, want 1", got)
	}
}

// TestServeBatchStopsOnClose: a socket closed mid-batch ends the reader.
func TestServeBatchStopsOnClose(t *testing.T) {
	h := newTestHandler(t, Config{})
	rx, tx := newMessages(1, maxPacketLen), newMessages(1, maxReplyLen(h.cfg))
	rx[0].N = len(AppendConnectRequest(rx[0].Buf[:0], ConnectRequest{}))
	if err := serveBatch(&closedConn{}, h, rx, tx, instant{testNow * int64(time.Second), nanotime()}, new(counters.Tally)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("serveBatch on a closed socket: %v", err)
	}
}

type closedConn struct{ fakeConn }

func (*closedConn) WriteBatch([]message) (int, error) { return 0, net.ErrClosed }

// TestServeBatchTimesFromArrival: a datagram's response time runs from its
// receive time (or, without one, from the read) to the start of the send,
// whatever the send then takes; its service time runs from the read, the
// wait in the socket left out.
func TestServeBatchTimesFromArrival(t *testing.T) {
	h := newTestHandler(t, Config{})
	rx := newMessages(2, maxPacketLen)
	tx := newMessages(2, maxReplyLen(h.cfg))
	read := now()
	for i := range rx {
		rx[i].N = len(AppendConnectRequest(rx[i].Buf[:0], ConnectRequest{TransactionID: uint32(i)}))
		rx[i].Addr = testClient
	}
	rx[0].Arrived = read.wall - int64(200*time.Millisecond) // queued before the read
	fc := &fakeConn{sendFor: 300 * time.Millisecond}
	if err := serveBatch(fc, h, rx, tx, read, new(counters.Tally)); err != nil {
		t.Fatal(err)
	}
	c := h.counts.Read()
	l := c.Latency[counters.UDP]
	le := func(d time.Duration) uint64 { return l.Buckets[slices.Index(counters.LatencyBuckets[:], d)] }
	// One within 100 ms (from the read), one over 200 ms (from its
	// arrival), the send's 300 ms left out of both.
	if l.Count != 2 || le(100*time.Millisecond) != 1 || le(250*time.Millisecond) != 2 ||
		l.Sum < 200*time.Millisecond || l.Sum >= 300*time.Millisecond {
		t.Fatalf("count %d, buckets %v, sum %v", l.Count, l.Buckets, l.Sum)
	}
	// Both within 100 ms of the read: the 200 ms queued left out, as is
	// the send.
	if sv := c.Service[counters.UDP]; sv.Count != 2 || sv.Buckets[slices.Index(counters.LatencyBuckets[:], 100*time.Millisecond)] != 2 ||
		sv.Sum >= 200*time.Millisecond {
		t.Fatalf("service: count %d, buckets %v, sum %v", sv.Count, sv.Buckets, sv.Sum)
	}
}

// BenchmarkServeBatch answers a batch of 16 connects, each with a receive
// time, and hands the replies to a socket that takes them: the per-batch
// work of a reader (timing, histograms) without the syscalls.
func BenchmarkServeBatch(b *testing.B) {
	h := newTestHandler(b, Config{})
	rx := newMessages(16, maxPacketLen)
	tx := newMessages(16, maxReplyLen(h.cfg))
	var times counters.Tally
	var c discardConn
	b.ReportAllocs()
	for b.Loop() {
		read := now()
		for i := range rx {
			rx[i].N = len(AppendConnectRequest(rx[i].Buf[:0], ConnectRequest{TransactionID: uint32(i)}))
			rx[i].Addr = testClient
			rx[i].Arrived = read.wall - 1000
		}
		if err := serveBatch(&c, h, rx, tx, read, &times); err != nil {
			b.Fatal(err)
		}
	}
}

type discardConn struct{ fakeConn }

func (*discardConn) WriteBatch(msgs []message) (int, error) { return len(msgs), nil }
