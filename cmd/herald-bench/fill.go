package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"time"

	"herald/swarm"
	"herald/udptracker"
)

// fillPortBase is the first port a fill peer uses; each source address
// carries fillPortsPerAddr peers, so peers never share an address and port.
const (
	fillPortBase     = 1024
	fillPortsPerAddr = 65536 - fillPortBase
)

// fillConfig configures the fill mode.
type fillConfig struct {
	target   netip.AddrPort
	sources  []netip.Addr
	peers    int
	torrents int
	window   int
	timeout  time.Duration
	seed     uint64
}

// fillPeer returns fill peer k's source index, port and torrent. Peers are
// numbered source by source, so every peer has its own address and port;
// consecutive peers go to consecutive torrents, so each torrent gets
// peers/torrents of them.
func fillPeer(k, torrents int) (src int, port uint16, torrent int) {
	return k / fillPortsPerAddr, uint16(fillPortBase + k%fillPortsPerAddr), k % torrents
}

// fillResult is what a fill measured.
type fillResult struct {
	Peers        int           `json:"peers"`
	Torrents     int           `json:"torrents"`
	Held         uint64        `json:"held"`
	Seconds      float64       `json:"seconds"`
	Retries      uint64        `json:"retries"`
	RSSBefore    int64         `json:"rss_before_bytes,omitempty"`
	RSSAfter     int64         `json:"rss_after_bytes,omitempty"`
	RSSPerPeer   float64       `json:"rss_bytes_per_peer,omitempty"`
	ScrapeErrors uint64        `json:"scrape_errors"`
	Steady       *steadyResult `json:"steady,omitempty"`
}

// fillNumWant is the numwant of fill announces. BEP 15 reserves -1 for
// "default", so 0 should mean no peers, but some trackers (herald at the
// time of writing, 2026-11-25) read 0 as the default; 1 keeps replies small
// and valid everywhere.
const fillNumWant = 1

// fill announces every peer once (event started; 3 in 4 are seeders), one
// socket per source address, re-sending any announce the tracker may not
// have stored, then scrapes every torrent to count the peers it holds.
func fill(ctx context.Context, cfg fillConfig) (fillResult, counters, error) {
	res := fillResult{Peers: cfg.peers, Torrents: cfg.torrents}
	hashes := infoHashes(cfg.seed, cfg.torrents)
	start := time.Now()
	total, retries, err := announceAll(ctx, cfg, hashes, udpEventStarted)
	res.Seconds = time.Since(start).Seconds()
	res.Retries = retries
	if err != nil {
		return res, total, err
	}
	held, scrapeErrs, err := countHeld(cfg, hashes)
	res.Held, res.ScrapeErrors = held, scrapeErrs
	return res, total, err
}

// steadyResult is what the re-announces after a fill measured.
type steadyResult struct {
	Seconds     float64 `json:"seconds"`
	PassSeconds float64 `json:"pass_seconds"` // the first pass over every peer
	Passes      int     `json:"passes"`       // whole passes; the last may be cut
	Held        uint64  `json:"held"`
	Retries     uint64  `json:"retries"`
	RSSAfter    int64   `json:"rss_after_bytes,omitempty"`
	RSSPerPeer  float64 `json:"rss_bytes_per_peer,omitempty"`
}

// reannounce announces every fill peer again (event none, as a client
// does every interval), pass after pass, for d: the first pass runs to its
// end however long it takes, a later one stops at d. Then it counts the
// peers the tracker holds. No peer goes longer than one pass without an
// announce, so a tracker whose peer timeout exceeds a pass keeps them all;
// with a timeout of d it has by then expired what it would expire, cleaned
// and reused what the fill left: its steady state with these peers. If a
// pass takes longer than the timeout, peers expire and Held falls short.
func reannounce(ctx context.Context, cfg fillConfig, d time.Duration) (steadyResult, counters, error) {
	var res steadyResult
	var total counters
	hashes := infoHashes(cfg.seed, cfg.torrents)
	start := time.Now()
	cut, cancel := context.WithDeadline(ctx, start.Add(d))
	defer cancel()
	for passCtx := ctx; ; passCtx = cut {
		c, retries, err := announceAll(passCtx, cfg, hashes, udpEventNone)
		total.merge(&c)
		res.Retries += retries
		if err != nil && cut.Err() != nil && ctx.Err() == nil && res.Passes > 0 {
			break // stopped at d
		}
		if err != nil {
			return res, total, fmt.Errorf("re-announce pass %d: %w", res.Passes+1, err)
		}
		res.Passes++
		if res.Passes == 1 {
			res.PassSeconds = time.Since(start).Seconds()
		}
		if cut.Err() != nil {
			break
		}
	}
	res.Seconds = time.Since(start).Seconds()
	held, _, err := countHeld(cfg, hashes)
	res.Held = held
	return res, total, err
}

// announceAll announces every fill peer once with event, from one socket
// per source address at once.
func announceAll(ctx context.Context, cfg fillConfig, hashes [][20]byte, event uint32) (counters, uint64, error) {
	need := (cfg.peers + fillPortsPerAddr - 1) / fillPortsPerAddr
	if need > len(cfg.sources) {
		return counters{}, 0, fmt.Errorf("fill: %d peers need %d source addresses (%d ports each), have %d; pass -src", cfg.peers, need, fillPortsPerAddr, len(cfg.sources))
	}
	peerLen := peerLenOf(cfg.target.Addr())
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		total   counters
		retries uint64
		first   error
	)
	for j := range need {
		lo, hi := j*fillPortsPerAddr, min(cfg.peers, (j+1)*fillPortsPerAddr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, r, err := fillFrom(ctx, cfg, cfg.sources[j], lo, hi, hashes, peerLen, event)
			mu.Lock()
			defer mu.Unlock()
			total.merge(&c)
			retries += r
			if err != nil && first == nil {
				first = err
			}
		}()
	}
	wg.Wait()
	return total, retries, first
}

type fillSlot struct {
	busy bool
	seq  uint16
	k    int
	sent time.Time
}

// fillFrom announces peers lo..hi-1 with event from one source address with up to
// cfg.window announces in flight. It is a single goroutine: it sends until
// the window is full, then reads one reply and repeats. An announce is sent
// again after a timeout, an error packet or a reply too short to be an
// accepted announce; a reply that is well formed but invalid otherwise (say,
// too many peers) still means the peer was stored, so it only counts as an
// error.
func fillFrom(ctx context.Context, cfg fillConfig, src netip.Addr, lo, hi int, hashes [][20]byte, peerLen int, event uint32) (counters, uint64, error) {
	var c counters
	var retries uint64
	conn, err := dialUDP(src, cfg.target)
	if err != nil {
		return c, 0, err
	}
	defer conn.Close()
	connID, err := connectSync(conn, cfg.timeout)
	if err != nil {
		return c, 0, fmt.Errorf("fill from %v: %w", src, err)
	}
	connAt := time.Now()
	slots := make([]fillSlot, cfg.window)
	free := make([]int, len(slots))
	for i := range free {
		free[i] = i
	}
	var todo []int // peers to re-send
	next, done := lo, 0
	buf := make([]byte, 0, udpAnnounceLen)
	rbuf := make([]byte, 4096)
	progress := time.Now()
	for done < hi-lo {
		if err := ctx.Err(); err != nil {
			return c, retries, fmt.Errorf("fill from %v: %w", src, err)
		}
		if time.Since(progress) > 10*cfg.timeout {
			return c, retries, fmt.Errorf("fill from %v: no announce accepted for %v (errors %v)", src, 10*cfg.timeout, c.errors)
		}
		if time.Since(connAt) > connIDLifetime {
			if connID, err = connectSync(conn, cfg.timeout); err != nil {
				return c, retries, fmt.Errorf("fill from %v: %w", src, err)
			}
			connAt = time.Now()
		}
		for len(free) > 0 && (next < hi || len(todo) > 0) {
			i := free[len(free)-1]
			free = free[:len(free)-1]
			s := &slots[i]
			var k int
			if len(todo) > 0 {
				k, todo = todo[len(todo)-1], todo[:len(todo)-1]
			} else {
				k, next = next, next+1
			}
			_, port, torrent := fillPeer(k, cfg.torrents)
			s.busy, s.seq, s.k, s.sent = true, s.seq+1, k, time.Now()
			var l uint64
			if k%4 == 0 {
				l = 1 << 29
			}
			buf = udptracker.AppendAnnounceRequest(buf[:0], &udptracker.AnnounceRequest{
				ConnectionID:  connID,
				TransactionID: uint32(s.seq)<<16 | uint32(i),
				InfoHash:      hashes[torrent],
				PeerID:        peerID(k),
				Left:          l,
				Event:         swarm.Event(event),
				NumWant:       fillNumWant,
				Port:          port,
			})
			if _, err := conn.Write(buf); err != nil {
				c.errors[errSend]++ // the sweep below re-sends it
			}
		}
		_ = conn.SetReadDeadline(time.Now().Add(cfg.timeout / 4))
		n, err := conn.Read(rbuf)
		switch {
		case err == nil:
			tid, ok := replyTID(rbuf[:n])
			i := int(tid & 0xffff)
			if !ok || i >= len(slots) || !slots[i].busy || slots[i].seq != uint16(tid>>16) {
				c.errors[errUnmatched]++
				break
			}
			s := &slots[i]
			s.busy = false
			free = append(free, i)
			kind, _ := checkUDPReply(rbuf[:n], udpExpect{action: udpActionAnnounce, numWant: fillNumWant}, peerLen)
			switch kind {
			case errNone:
				c.valid[kindAnnounce]++
				c.latency.record(time.Since(s.sent))
			case errTrackerError, errSize, errAction:
				c.errors[kind]++
				todo = append(todo, s.k)
				retries++
				if kind == errTrackerError {
					connAt = time.Time{} // fetch a new connection id
				}
				continue
			default:
				c.errors[kind]++
			}
			done++
			progress = time.Now()
		case errors.Is(err, os.ErrDeadlineExceeded):
		default:
			c.errors[errRecv]++
		}
		// Re-send whatever waited too long.
		limit := time.Now().Add(-cfg.timeout)
		for i := range slots {
			s := &slots[i]
			if s.busy && s.sent.Before(limit) {
				s.busy = false
				free = append(free, i)
				c.errors[errTimeout]++
				todo = append(todo, s.k)
				retries++
			}
		}
	}
	return c, retries, nil
}

// countHeld scrapes every fill torrent and returns the sum of seeders and
// leechers: the peers the tracker holds. A scrape is 74 hashes, under
// opentracker's per-packet limit of 75.
func countHeld(cfg fillConfig, hashes [][20]byte) (uint64, uint64, error) {
	const perScrape = 74
	src := netip.Addr{}
	if len(cfg.sources) > 0 {
		src = cfg.sources[0]
	}
	conn, err := dialUDP(src, cfg.target)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close()
	connID, err := connectSync(conn, cfg.timeout)
	if err != nil {
		return 0, 0, fmt.Errorf("count held: %w", err)
	}
	var held, errs uint64
	buf := make([]byte, 0, 16+20*perScrape)
	rbuf := make([]byte, 4096)
	for lo := 0; lo < len(hashes); lo += perScrape {
		batch := hashes[lo:min(len(hashes), lo+perScrape)]
		tid := uint32(lo)
		buf = appendScrapeHeader(buf[:0], connID, tid)
		for _, h := range batch {
			buf = append(buf, h[:]...)
		}
		got := false
		for try := 0; try < 3 && !got; try++ {
			if _, err := conn.Write(buf); err != nil {
				return held, errs, fmt.Errorf("count held: %w", err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(cfg.timeout))
			for {
				n, err := conn.Read(rbuf)
				if err != nil {
					errs++
					break
				}
				if t, ok := replyTID(rbuf[:n]); !ok || t != tid {
					continue
				}
				if kind, _ := checkUDPReply(rbuf[:n], udpExpect{action: udpActionScrape, hashes: uint8(len(batch))}, 0); kind != errNone {
					errs++
					break
				}
				for e := rbuf[udpScrapeHeaderLen:n]; len(e) >= udpScrapeEntryLen; e = e[udpScrapeEntryLen:] {
					held += uint64(binary.BigEndian.Uint32(e[0:])) + uint64(binary.BigEndian.Uint32(e[8:]))
				}
				got = true
				break
			}
		}
		if !got {
			return held, errs, fmt.Errorf("count held: no valid reply to the scrape of torrents %d..%d", lo, lo+len(batch)-1)
		}
	}
	return held, errs, nil
}
