package wstracker

import (
	"bytes"
	"errors"
	"fmt"
	"herald/access"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"

	"herald/counters"
	"herald/swarm"
)

// conn is one WebSocket connection. While idle it holds no buffer: its
// goroutine is parked in a read of the next frame header straight from the
// socket, and message buffers come from a pool only while a message is
// being handled. That keeps an idle connection near 3 KB (mostly the
// goroutine's stack); see memory_test.go.
type conn struct {
	h  *Handler
	nc net.Conn
	// from is the client's address, which the rate limit is charged to.
	from netip.AddrPort
	// r reads frames: nc, preceded by whatever the HTTP server had already
	// buffered past the upgrade request.
	r io.Reader

	wmu sync.Mutex // serialises frames written to nc

	// Frames other connections relay to this one wait in out, written by
	// a goroutine of their own (see relay).
	omu      sync.Mutex
	out      []*[]byte // guarded by omu
	outBytes int       // guarded by omu
	writing  bool      // guarded by omu; a writer goroutine runs
	slow     bool      // guarded by omu; closed for a full queue

	mu        sync.Mutex
	closed    atomic.Bool                  // set under mu
	closeSent bool                         // guarded by mu; a close frame went out, nothing follows it
	joined    []joinedSwarm                // guarded by mu; the swarms this connection announced to
	pending   *[pendingOffers]pendingOffer // guarded by mu; allocated on the first offer received
	next      int                          // guarded by mu; where the next pending offer goes

	// Token bucket of the message rate limit; only the read goroutine
	// touches it, and spoke, set once a message arrived.
	tokens float64
	last   time.Time
	spoke  bool

	client  [8]byte // ratelimit.Key of the client, if limited
	limited bool    // counted against MaxConnectionsPerClient
	// key is the key in the upgrade request's path (/KEY/announce), zero
	// without one: every message of the connection carries it.
	key access.Key
}

type joinedSwarm struct {
	infoHash swarm.InfoHash
	peerID   swarm.PeerID
}

// pendingOffers is how many offers relayed to a connection are remembered
// so that its answers can be checked. The npm client drops an unanswered
// offer after 50 s; 32 outstanding offers per connection is far more than a
// peer receives in that time unless it is being flooded, and then the
// oldest are forgotten.
const pendingOffers = 32

// pendingOffer is an offer relayed to this connection's peer to, from peer
// from of swarm infoHash: the only answer accepted for it goes back to from.
type pendingOffer struct {
	infoHash swarm.InfoHash
	id       OfferID
	from, to swarm.PeerID
	// node is the cluster node that holds from, 0 for a local peer.
	node uint64
}

func (c *conn) isClosed() bool { return c.closed.Load() }

// join records that the connection holds peer id in swarm h. It fails on a
// closed connection (so that its cleanup cannot miss the swarm) and past
// the per-connection swarm limit (max 0 means none).
func (c *conn) join(h swarm.InfoHash, id swarm.PeerID, max int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() || (max > 0 && len(c.joined) >= max) {
		return false
	}
	c.joined = append(c.joined, joinedSwarm{infoHash: h, peerID: id})
	return true
}

// leave forgets swarm h, peer id (a stopped event).
func (c *conn) leave(h swarm.InfoHash, id swarm.PeerID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, j := range c.joined {
		if j.infoHash == h && j.peerID == id {
			last := len(c.joined) - 1
			c.joined[i] = c.joined[last]
			c.joined = c.joined[:last]
			if len(c.joined) == 0 {
				c.joined = nil
			}
			return
		}
	}
}

// markClosed closes the connection to new swarms; it reports false when it
// was already closed.
func (c *conn) markClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.closed.Swap(true)
}

func (c *conn) joinedSwarms() []joinedSwarm {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.joined
}

// expectAnswer remembers an offer relayed to this connection.
func (c *conn) expectAnswer(p pendingOffer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending == nil {
		c.pending = new([pendingOffers]pendingOffer)
	}
	c.pending[c.next] = p
	c.next = (c.next + 1) % pendingOffers
}

// takeAnswered forgets and reports whether an offer like p (whatever its
// node) was relayed to this connection, and returns the node of its peer.
func (c *conn) takeAnswered(p pendingOffer) (node uint64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending == nil {
		return 0, false
	}
	for i := range c.pending {
		if q := &c.pending[i]; q.infoHash == p.infoHash && q.id == p.id && q.from == p.from && q.to == p.to {
			node = q.node
			*q = pendingOffer{}
			return node, true
		}
	}
	return 0, false
}

// allow takes one token of the message rate limit.
func (c *conn) allow(now time.Time, rate float64, burst int) bool {
	if c.last.IsZero() {
		c.tokens = float64(burst)
	} else {
		c.tokens = min(float64(burst), c.tokens+now.Sub(c.last).Seconds()*rate)
	}
	c.last = now
	if c.tokens < 1 {
		return false
	}
	c.tokens--
	return true
}

// send writes payload, a reply to c's own message, as one text frame. A
// peer that does not take it within Config.WriteTimeout is cut off. Frames
// from other connections go through relay.
func (c *conn) send(payload []byte) error {
	buf := getBuffer()
	defer putBuffer(buf)
	frame := appendFrameHeader((*buf)[:0], ws.OpText, len(payload))
	frame = append(frame, payload...)
	*buf = frame

	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.nc.SetWriteDeadline(time.Now().Add(c.h.cfg.WriteTimeout)); err != nil {
		return err
	}
	if _, err := c.nc.Write(frame); err != nil {
		c.nc.Close()
		return fmt.Errorf("wstracker: write to %v: %w", c.nc.RemoteAddr(), err)
	}
	return nil
}

// maxQueuedBytes bounds the frames relayed to one connection and not yet
// written: a few offers of the largest SDP. Beyond it the connection is
// closed as a reader too slow for its swarms.
const maxQueuedBytes = 256 << 10

// relay queues payload as one text frame for c and returns at once: a
// peer that does not read delays only itself, never the peers relaying
// to it. A writer goroutine runs while frames wait (an idle connection
// has none). A full queue closes c, and relay reports false, as for a
// write that failed.
func (c *conn) relay(payload []byte) bool {
	buf := getBuffer()
	*buf = append(appendFrameHeader((*buf)[:0], ws.OpText, len(payload)), payload...)
	c.omu.Lock()
	if c.outBytes+len(*buf) > maxQueuedBytes {
		c.omu.Unlock()
		putBuffer(buf)
		if c.markSlow() {
			c.h.counts.Event(counters.WS, counters.SlowReaderClosed)
			c.nc.Close() // its read goroutine cleans up
		}
		return false
	}
	if c.writing || len(c.out) > 0 {
		c.out = append(c.out, buf)
		c.outBytes += len(*buf)
		c.omu.Unlock()
		return true
	}
	// Nothing waits: write now what the socket takes at once, and queue
	// only the rest, for a writer goroutine of its own.
	c.writing = true
	c.omu.Unlock()
	if n := c.writeNow(*buf); n < len(*buf) {
		*buf = (*buf)[:copy(*buf, (*buf)[n:])]
		c.omu.Lock()
		c.out = append(c.out, buf)
		c.outBytes += len(*buf)
		c.omu.Unlock()
		go c.writeQueued()
		return true
	}
	putBuffer(buf)
	c.omu.Lock()
	if len(c.out) == 0 {
		c.writing = false
		c.omu.Unlock()
		return true
	}
	c.omu.Unlock()
	go c.writeQueued() // frames queued meanwhile
	return true
}

// writeNow writes as much of frame as the socket takes within a
// millisecond and returns how much it wrote.
func (c *conn) writeNow(frame []byte) int {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closing() || c.nc.SetWriteDeadline(time.Now().Add(time.Millisecond)) != nil {
		return len(frame) // dropped, as writeQueued drops after a close
	}
	n, _ := c.nc.Write(frame)
	return n
}

// closing reports whether a close frame went out: nothing may follow it
// (RFC 6455 5.5.1).
func (c *conn) closing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeSent
}

// writeQueued writes the queued frames until none is left, each within
// Config.WriteTimeout; a failed write closes the connection and drops the
// rest.
func (c *conn) writeQueued() {
	var failed bool
	for {
		c.omu.Lock()
		if len(c.out) == 0 {
			c.writing = false
			c.omu.Unlock()
			return
		}
		buf := c.out[0]
		c.out[0] = nil
		c.out = c.out[1:]
		c.outBytes -= len(*buf)
		c.omu.Unlock()
		if !failed {
			c.wmu.Lock()
			err := errClientClosed
			if !c.closing() {
				err = c.nc.SetWriteDeadline(time.Now().Add(c.h.cfg.WriteTimeout))
			}
			if err == nil {
				_, err = c.nc.Write(*buf)
			}
			c.wmu.Unlock()
			if err != nil {
				failed = true
				c.nc.Close()
			}
		}
		putBuffer(buf)
	}
}

// markSlow reports whether c was not already closed for a full queue.
func (c *conn) markSlow() bool {
	c.omu.Lock()
	defer c.omu.Unlock()
	if c.slow {
		return false
	}
	c.slow = true
	return true
}

// sendClose writes a close frame once; later calls do nothing. From then
// on the connection reads for at most closeLinger more, waiting for the
// client's close frame: a client that never answers cannot hold up the
// connection's end, nor the tracker's shutdown.
func (c *conn) sendClose(code ws.StatusCode, reason string) {
	c.mu.Lock()
	if c.closeSent {
		c.mu.Unlock()
		return
	}
	c.closeSent = true
	c.nc.SetReadDeadline(time.Now().Add(closeLinger))
	c.mu.Unlock()

	body := ws.NewCloseFrameBody(code, reason)
	var buf [2 + 125]byte
	frame := append(appendFrameHeader(buf[:0], ws.OpClose, len(body)), body...)
	c.wmu.Lock()
	c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	c.nc.Write(frame)
	c.wmu.Unlock()
}

// extendIdle sets the read deadline for the next frame, unless a close
// frame went out: then the closeLinger deadline stands.
func (c *conn) extendIdle() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeSent {
		return nil
	}
	d := c.h.cfg.IdleTimeout
	if !c.spoke {
		d = c.h.cfg.FirstMessageTimeout
	}
	return c.nc.SetReadDeadline(time.Now().Add(d))
}

// lingerClose ends the connection after a close frame: it stops writing,
// then reads and discards what the client still sends for up to
// closeLinger, so that the kernel does not answer unread data with a reset
// that could destroy the close frame before the client reads it (RFC 6455
// 7.1.1 lets the server close first).
func (c *conn) lingerClose() {
	if tc, ok := c.nc.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
	}
	c.nc.SetReadDeadline(time.Now().Add(closeLinger))
	io.CopyN(io.Discard, c.nc, int64(c.h.cfg.MaxMessageBytes))
	c.nc.Close()
}

// closeLinger is how long a closing connection waits for the client's
// close frame.
const closeLinger = time.Second

// appendFrameHeader appends an unmasked (server-to-client) frame header
// with FIN set (RFC 6455 5.2).
func appendFrameHeader(dst []byte, op ws.OpCode, n int) []byte {
	dst = append(dst, 0x80|byte(op))
	switch {
	case n <= 125:
		return append(dst, byte(n))
	case n <= 0xFFFF:
		return append(dst, 126, byte(n>>8), byte(n))
	}
	return append(dst, 127, byte(uint64(n)>>56), byte(uint64(n)>>48), byte(uint64(n)>>40), byte(uint64(n)>>32),
		byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// closeError is a reason to close the connection with a close frame.
type closeError struct {
	code   ws.StatusCode
	reason string
}

func (e *closeError) Error() string { return fmt.Sprintf("close %d: %s", e.code, e.reason) }

var (
	errMessageTooBig = &closeError{ws.StatusMessageTooBig, "message too big"}
	errBinary        = &closeError{ws.StatusUnsupportedData, "binary messages are not supported"}
	errUnmasked      = &closeError{ws.StatusProtocolError, "client frames must be masked"}
	errReserved      = &closeError{ws.StatusProtocolError, "reserved bits or opcode set"}
	errFragment      = &closeError{ws.StatusProtocolError, "bad fragmentation"}
	errControl       = &closeError{ws.StatusProtocolError, "bad control frame"}
	errUTF8          = &closeError{ws.StatusInvalidFramePayloadData, "text message is not UTF-8"}
	errRate          = &closeError{ws.StatusPolicyViolation, "message rate limit exceeded"}
	errClientClosed  = errors.New("client sent close")
)

// readMessage reads the next text message, answering pings on the way.
// The message is in *buf, a pooled buffer taken only once a data frame
// arrives: a connection waiting for its next message holds none. The
// caller returns *buf to the pool, also after an error. The read deadline
// is the idle timeout: a connection that sends nothing for that long is
// dropped.
func (c *conn) readMessage(buf **[]byte) ([]byte, error) {
	cfg := &c.h.cfg
	var msg []byte
	inMessage := false
	for {
		if err := c.extendIdle(); err != nil {
			return nil, err
		}
		hdr, err := ws.ReadHeader(c.r)
		if err != nil {
			return nil, err
		}
		switch {
		case hdr.Rsv != 0:
			return nil, errReserved
		case !hdr.Masked:
			return nil, errUnmasked
		}
		if hdr.OpCode.IsControl() {
			if err := c.control(hdr); err != nil {
				return nil, err
			}
			continue
		}
		switch hdr.OpCode {
		case ws.OpText:
			if inMessage {
				return nil, errFragment
			}
			inMessage = true
			*buf = getBuffer()
			msg = (**buf)[:0]
		case ws.OpContinuation:
			if !inMessage {
				return nil, errFragment
			}
		case ws.OpBinary:
			return nil, errBinary
		default:
			return nil, errReserved
		}
		if hdr.Length > int64(cfg.MaxMessageBytes-len(msg)) {
			return nil, errMessageTooBig
		}
		n := len(msg)
		msg = append(msg, make([]byte, hdr.Length)...)
		if _, err := io.ReadFull(c.r, msg[n:]); err != nil {
			return nil, err
		}
		ws.Cipher(msg[n:], hdr.Mask, 0)
		**buf = msg
		if hdr.Fin {
			if !utf8.Valid(msg) {
				return nil, errUTF8
			}
			return msg, nil
		}
	}
}

// control handles a control frame: a ping is answered, a pong ignored, a
// close ends the connection. It is a function of its own, kept out of
// line, so that its buffers are not part of the stack frame a connection
// parks in while idle.
//
//go:noinline
func (c *conn) control(hdr ws.Header) error {
	if hdr.Length > 125 || !hdr.Fin {
		return errControl
	}
	var body [125]byte
	payload := body[:hdr.Length]
	if _, err := io.ReadFull(c.r, payload); err != nil {
		return err
	}
	ws.Cipher(payload, hdr.Mask, 0)
	switch hdr.OpCode {
	case ws.OpPing:
		var out [2 + 125]byte
		frame := append(appendFrameHeader(out[:0], ws.OpPong, len(payload)), payload...)
		c.wmu.Lock()
		defer c.wmu.Unlock()
		c.nc.SetWriteDeadline(time.Now().Add(c.h.cfg.WriteTimeout))
		_, err := c.nc.Write(frame)
		return err
	case ws.OpClose:
		return errClientClosed
	case ws.OpPong:
		return nil
	}
	return errReserved
}

// prefixReader returns a reader of the bytes the HTTP server buffered past
// the upgrade request, then of nc. Usually nothing is buffered: a client
// waits for the 101 before it sends a frame.
func prefixReader(buffered []byte, nc net.Conn) io.Reader {
	if len(buffered) == 0 {
		return nc
	}
	return io.MultiReader(bytes.NewReader(buffered), nc)
}

// Buffers for messages and replies: taken while a message is handled, so
// that idle connections hold none.
var bufferPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func getBuffer() *[]byte { return bufferPool.Get().(*[]byte) }

func putBuffer(b *[]byte) {
	// A buffer grown by a rare large message is dropped rather than kept.
	if cap(*b) <= 64<<10 {
		*b = (*b)[:0]
		bufferPool.Put(b)
	}
}
