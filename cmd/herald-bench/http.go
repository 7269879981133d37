package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"herald/bencode"
)

// httpConfig configures the http mode.
type httpConfig struct {
	target      netip.AddrPort
	sources     []netip.Addr
	concurrency int
	keepAlive   bool
	tls         bool // HTTPS, without verifying the certificate
	rate        float64
	timeout     time.Duration
	wl          *workload
}

// httpRunner runs concurrency workers, each with at most one connection and
// one request at a time. Closed loop, a worker sends its next request as
// soon as the last is answered; open loop, a pacer hands out request times
// and latency counts from that time, so queueing behind busy workers shows.
type httpRunner struct {
	cfg     httpConfig
	clk     *clock
	win     *window
	host    string
	workers []*httpWorker
	pacer   counters
	tokens  chan int64
	wg      sync.WaitGroup
}

type httpWorker struct {
	index  int
	src    netip.Addr
	conn   net.Conn
	br     *bufio.Reader
	req    []byte
	body   []byte
	hashes [][20]byte
	stats  counters
}

func newHTTPRunner(cfg httpConfig, clk *clock, win *window) *httpRunner {
	r := &httpRunner{cfg: cfg, clk: clk, win: win, host: cfg.target.String()}
	for i := range cfg.concurrency {
		w := &httpWorker{index: i, br: bufio.NewReaderSize(nil, 4096)}
		if len(cfg.sources) > 0 {
			w.src = cfg.sources[i%len(cfg.sources)]
		}
		r.workers = append(r.workers, w)
	}
	if cfg.rate > 0 {
		r.tokens = make(chan int64, 1<<16)
	}
	return r
}

func (r *httpRunner) start(ctx context.Context) {
	if r.tokens != nil {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.pace(ctx)
		}()
	}
	for _, w := range r.workers {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.work(ctx, w)
		}()
	}
}

func (r *httpRunner) stop() counters {
	r.wg.Wait()
	c := r.pacer
	for _, w := range r.workers {
		c.merge(&w.stats)
	}
	return c
}

func (r *httpRunner) tally() tally {
	var t tally
	t.add(&r.pacer)
	for _, w := range r.workers {
		t.add(&w.stats)
	}
	return t
}

// pace issues request times at the arrivals of a Poisson process of rate
// per second.
func (r *httpRunner) pace(ctx context.Context) {
	defer close(r.tokens)
	arrivals := rand.New(rand.NewPCG(r.cfg.wl.seed, 1<<34))
	sched := newSchedule(r.clk, r.win, 1e9/r.cfg.rate, arrivals)
	defer sched.close()
	for {
		now, ok := sched.wait(ctx, &r.pacer.errors[errBacklog])
		if !ok {
			return
		}
		select {
		case r.tokens <- int64(sched.next):
		default:
			if r.win.in(now) {
				atomic.AddUint64(&r.pacer.errors[errBacklog], 1)
			}
		}
		sched.advance()
	}
}

func (r *httpRunner) work(ctx context.Context, w *httpWorker) {
	rng := rand.New(rand.NewPCG(r.cfg.wl.seed, 1<<32|uint64(w.index)))
	defer func() {
		if w.conn != nil {
			w.conn.Close()
		}
	}()
	for {
		start := r.clk.now()
		if r.tokens != nil {
			t, ok := <-r.tokens
			if !ok {
				return
			}
			start = t
		} else if ctx.Err() != nil {
			return
		}
		kind, action := r.request(w, rng)
		now := r.clk.now()
		if !r.win.in(now) {
			continue
		}
		if kind != errNone {
			atomic.AddUint64(&w.stats.errors[kind], 1)
			if kind == errConnect {
				// Do not spin on a refused dial.
				time.Sleep(10 * time.Millisecond)
			}
			continue
		}
		atomic.AddUint64(&w.stats.valid[action], 1)
		w.stats.latency.record(time.Duration(now - start))
	}
}

// request performs one announce or scrape and validates the reply.
func (r *httpRunner) request(w *httpWorker, rng *rand.Rand) (errKind, int) {
	wl := r.cfg.wl
	var (
		action  = kindAnnounce
		numWant = wl.numWant
		hashes  [][20]byte
	)
	if wl.isScrape(rng) {
		action = kindScrape
		hashes = wl.scrapeHashes(rng, w.hashes[:0])
		w.hashes = hashes
		w.req = appendHTTPScrape(w.req[:0], hashes)
	} else {
		pi := rng.IntN(len(wl.peers))
		p := wl.peers[pi]
		ev := wl.event(rng)
		w.req = appendHTTPAnnounce(w.req[:0], wl.path(pi), wl.hashes[p.torrent], peerID(pi), p.port, left(p, ev), ev, numWant)
	}
	w.req = appendHTTPTail(w.req, r.host, r.cfg.keepAlive)

	if w.conn == nil {
		d := net.Dialer{Timeout: r.cfg.timeout}
		if w.src.IsValid() {
			d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(w.src, 0))
		}
		conn, err := d.Dial("tcp", r.host)
		if err != nil {
			return errConnect, action
		}
		if r.cfg.tls {
			tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true})
			_ = tc.SetDeadline(time.Now().Add(r.cfg.timeout))
			if err := tc.Handshake(); err != nil {
				conn.Close()
				return errConnect, action
			}
			conn = tc
		}
		w.conn = conn
		w.br.Reset(conn)
	}
	_ = w.conn.SetDeadline(time.Now().Add(r.cfg.timeout))
	status, body, closing, err := readHTTPResponse(w.conn, w.req, w.br, w.body[:0])
	w.body = body
	if err != nil || closing || !r.cfg.keepAlive {
		if err == nil {
			// The server closes first (HTTP/1.0 style), so its side, not
			// ours, holds TIME_WAIT and the ephemeral ports last.
			_, _ = io.Copy(io.Discard, w.br)
		}
		w.conn.Close()
		w.conn = nil
	}
	switch {
	case errors.Is(err, errMalformedHTTP):
		return errHTTPFormat, action
	case errors.Is(err, os.ErrDeadlineExceeded):
		return errTimeout, action
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE):
		return errReset, action
	case err != nil:
		return errHTTPIO, action
	case status != 200:
		return errStatus, action
	case action == kindScrape:
		return checkHTTPScrape(body, hashes), action
	default:
		return checkHTTPAnnounce(body, numWant), action
	}
}

// appendEscaped percent-encodes every byte outside RFC 3986's unreserved set.
func appendEscaped(dst []byte, b []byte) []byte {
	const hexDigits = "0123456789ABCDEF"
	for _, c := range b {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == '~':
			dst = append(dst, c)
		default:
			dst = append(dst, '%', hexDigits[c>>4], hexDigits[c&15])
		}
	}
	return dst
}

var httpEventNames = [4]string{udpEventNone: "", udpEventCompleted: "completed", udpEventStarted: "started", udpEventStopped: "stopped"}

// appendHTTPAnnounce appends the request line's method and target (BEP 3,
// with BEP 23 compact=1) for the announce path.
func appendHTTPAnnounce(dst, path []byte, hash, id [20]byte, port uint16, left uint64, event uint32, numWant int) []byte {
	dst = append(dst, "GET "...)
	dst = append(dst, path...)
	dst = append(dst, "?info_hash="...)
	dst = appendEscaped(dst, hash[:])
	dst = append(dst, "&peer_id="...)
	dst = appendEscaped(dst, id[:])
	dst = append(dst, "&port="...)
	dst = strconv.AppendUint(dst, uint64(port), 10)
	dst = append(dst, "&uploaded=0&downloaded=0&left="...)
	dst = strconv.AppendUint(dst, left, 10)
	if name := httpEventNames[event]; name != "" {
		dst = append(dst, "&event="...)
		dst = append(dst, name...)
	}
	dst = append(dst, "&numwant="...)
	dst = strconv.AppendInt(dst, int64(numWant), 10)
	return append(dst, "&compact=1"...)
}

func appendHTTPScrape(dst []byte, hashes [][20]byte) []byte {
	dst = append(dst, "GET /scrape"...)
	for i, h := range hashes {
		if i == 0 {
			dst = append(dst, "?info_hash="...)
		} else {
			dst = append(dst, "&info_hash="...)
		}
		dst = appendEscaped(dst, h[:])
	}
	return dst
}

func appendHTTPTail(dst []byte, host string, keepAlive bool) []byte {
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, host...)
	if !keepAlive {
		dst = append(dst, "\r\nConnection: close"...)
	}
	return append(dst, "\r\n\r\n"...)
}

var errMalformedHTTP = errors.New("malformed HTTP response")

// readHTTPResponse writes req and reads one response: its status, its body
// (appended to body) and whether the server will close the connection. The
// body must carry a Content-Length, or end at the close.
func readHTTPResponse(conn io.Writer, req []byte, br *bufio.Reader, body []byte) (int, []byte, bool, error) {
	if _, err := conn.Write(req); err != nil {
		return 0, body, true, err
	}
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, body, true, err
	}
	status, http10, err := parseStatusLine(line)
	if err != nil {
		return 0, body, true, err
	}
	closing := http10
	length := -1
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return 0, body, true, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, body, true, fmt.Errorf("%w: header line %q", errMalformedHTTP, line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			n, err := strconv.Atoi(string(value))
			if err != nil || n < 0 || n > 1<<20 {
				return 0, body, true, fmt.Errorf("%w: Content-Length %q", errMalformedHTTP, value)
			}
			length = n
		case bytes.EqualFold(name, []byte("Connection")):
			closing = bytes.EqualFold(value, []byte("close"))
		}
	}
	if length < 0 {
		b, err := io.ReadAll(io.LimitReader(br, 1<<20))
		return status, append(body, b...), true, err
	}
	start := len(body)
	body = append(body, make([]byte, length)...)
	if _, err := io.ReadFull(br, body[start:]); err != nil {
		return 0, body, true, err
	}
	return status, body, closing, nil
}

// parseStatusLine returns the status code and whether the version is
// HTTP/1.0 (which closes by default).
func parseStatusLine(line []byte) (int, bool, error) {
	line = bytes.TrimRight(line, "\r\n")
	version, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok || len(rest) < 3 || !bytes.HasPrefix(version, []byte("HTTP/1.")) {
		return 0, false, fmt.Errorf("%w: status line %q", errMalformedHTTP, line)
	}
	code, err := strconv.Atoi(string(rest[:3]))
	if err != nil || code < 100 || code > 999 {
		return 0, false, fmt.Errorf("%w: status line %q", errMalformedHTTP, line)
	}
	return code, string(version) == "HTTP/1.0", nil
}

// checkHTTPAnnounce validates a compact announce reply (BEP 3, BEP 23, BEP
// 7): a dictionary with a positive interval and peers strings of whole
// 6-byte (peers) and 18-byte (peers6) records, no more in all than numWant
// nor than the swarm's complete+incomplete when those are given. A reply
// with "failure reason" is an error.
func checkHTTPAnnounce(body []byte, numWant int) errKind {
	v, err := bencode.Decode(body)
	if err != nil {
		return errBencode
	}
	d, ok := v.(map[string]any)
	if !ok {
		return errBencode
	}
	if _, ok := d["failure reason"]; ok {
		return errFailure
	}
	interval, ok := d["interval"].(int64)
	if !ok {
		return errMissingKey
	}
	if interval <= 0 {
		return errInterval
	}
	peers4, has4 := d["peers"]
	peers6, has6 := d["peers6"]
	if !has4 && !has6 {
		return errMissingKey
	}
	total := 0
	for _, p := range []struct {
		v   any
		has bool
		len int
	}{{peers4, has4, 6}, {peers6, has6, 18}} {
		if !p.has {
			continue
		}
		s, ok := p.v.(string)
		if !ok || len(s)%p.len != 0 {
			return errSize
		}
		total += len(s) / p.len
	}
	if total > numWant {
		return errPeerCount
	}
	complete, okC := d["complete"].(int64)
	incomplete, okI := d["incomplete"].(int64)
	if okC && okI && int64(total) > complete+incomplete {
		return errPeerCount
	}
	return errNone
}

// checkHTTPScrape validates a scrape reply (BEP 48): a "files" dictionary
// keyed by requested 20-byte hashes, each a dictionary of complete,
// downloaded and incomplete integers.
func checkHTTPScrape(body []byte, hashes [][20]byte) errKind {
	v, err := bencode.Decode(body)
	if err != nil {
		return errBencode
	}
	d, ok := v.(map[string]any)
	if !ok {
		return errBencode
	}
	if _, ok := d["failure reason"]; ok {
		return errFailure
	}
	files, ok := d["files"].(map[string]any)
	if !ok {
		return errMissingKey
	}
	if len(files) > len(hashes) {
		return errSize
	}
	for k, f := range files {
		if !requested(k, hashes) {
			return errSize
		}
		fd, ok := f.(map[string]any)
		if !ok {
			return errMissingKey
		}
		for _, key := range []string{"complete", "downloaded", "incomplete"} {
			if _, ok := fd[key].(int64); !ok {
				return errMissingKey
			}
		}
	}
	return errNone
}

func requested(k string, hashes [][20]byte) bool {
	for _, h := range hashes {
		if string(h[:]) == k {
			return true
		}
	}
	return false
}
