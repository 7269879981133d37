package udptracker

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"

	"herald/counters"
)

// fakeConn is a batchConn that records what is written and fails the
// write of chosen transaction ids, as sendmmsg does for a message whose
// destination has no route.
type fakeConn struct {
	failTID map[uint32]bool
	sent    []uint32 // transaction ids of the replies sent
}

func (f *fakeConn) ReadBatch([]message) (int, error) { return 0, net.ErrClosed }
func (f *fakeConn) LocalAddr() netip.AddrPort        { return netip.AddrPort{} }
func (f *fakeConn) Close() error                     { return nil }

func (f *fakeConn) WriteBatch(msgs []message) (int, error) {
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
	if err := serveBatch(fc, h, rx, tx, testNow); err != nil {
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
	if err := serveBatch(&closedConn{}, h, rx, tx, testNow); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("serveBatch on a closed socket: %v", err)
	}
}

type closedConn struct{ fakeConn }

func (*closedConn) WriteBatch([]message) (int, error) { return 0, net.ErrClosed }
