package main

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// infoHash returns torrent i's info hash: SHA-1 of the seed and the index.
// It depends on nothing else, so every run with the same seed uses the same
// hashes whatever -torrents says, and one whitelist of the largest count
// covers every workload.
func infoHash(seed uint64, i int) [20]byte {
	var in [16]byte
	binary.LittleEndian.PutUint64(in[:8], seed)
	binary.LittleEndian.PutUint64(in[8:], uint64(i))
	return sha1.Sum(in[:])
}

// accessKey is the workload's access key number i (herald's access.keys):
// 32 characters of [A-Za-z0-9] from the hash of the seed and i.
func accessKey(seed uint64, i int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	var in [17]byte
	binary.LittleEndian.PutUint64(in[:8], seed)
	binary.LittleEndian.PutUint64(in[8:16], uint64(i))
	in[16] = 'k'
	sum := sha256.Sum256(in[:])
	var k [32]byte
	for j, b := range sum {
		k[j] = alphabet[int(b)%len(alphabet)]
	}
	return string(k[:])
}

// writeKeys writes keys 0..n-1 as a keys file, one a line.
func writeKeys(w io.Writer, seed uint64, n int) error {
	for i := range n {
		if _, err := io.WriteString(w, accessKey(seed, i)+"\n"); err != nil {
			return fmt.Errorf("write keys: %w", err)
		}
	}
	return nil
}

// infoHashes returns the hashes of torrents 0..n-1.
func infoHashes(seed uint64, n int) [][20]byte {
	hashes := make([][20]byte, n)
	for i := range hashes {
		hashes[i] = infoHash(seed, i)
	}
	return hashes
}

// writeHashes writes torrents 0..n-1 as an opentracker whitelist: one
// 40-digit hex hash per line.
func writeHashes(w io.Writer, seed uint64, n int) error {
	line := make([]byte, 41)
	line[40] = '\n'
	for i := range n {
		h := infoHash(seed, i)
		hex.Encode(line, h[:])
		if _, err := w.Write(line); err != nil {
			return fmt.Errorf("write hashes: %w", err)
		}
	}
	return nil
}

// popularity picks torrents with aquatic's 2024 load-test weights (peers.md
// §4.1): weight(i) = torrents/peers + exp(6.5 - 500*i/torrents), a steep
// exponential head over a flat floor, so about 70% of announces go to the
// first 1% of torrents. Sampling uses Vose's alias method: O(1) per pick.
type popularity struct {
	prob  []float64
	alias []uint32
}

func newPopularity(torrents, peers int) *popularity {
	n := torrents
	weights := make([]float64, n)
	var sum float64
	floor := float64(torrents) / float64(peers)
	for i := range weights {
		weights[i] = floor + math.Exp(6.5-500*float64(i)/float64(n))
		sum += weights[i]
	}
	p := &popularity{prob: make([]float64, n), alias: make([]uint32, n)}
	small := make([]uint32, 0, n)
	large := make([]uint32, 0, n)
	for i, w := range weights {
		weights[i] = w * float64(n) / sum
		if weights[i] < 1 {
			small = append(small, uint32(i))
		} else {
			large = append(large, uint32(i))
		}
	}
	for len(small) > 0 && len(large) > 0 {
		s, l := small[len(small)-1], large[len(large)-1]
		small = small[:len(small)-1]
		p.prob[s] = weights[s]
		p.alias[s] = l
		weights[l] -= 1 - weights[s]
		if weights[l] < 1 {
			large = large[:len(large)-1]
			small = append(small, l)
		}
	}
	// Whatever is left has weight 1 up to rounding.
	for _, i := range large {
		p.prob[i] = 1
	}
	for _, i := range small {
		p.prob[i] = 1
	}
	return p
}

func (p *popularity) pick(rng *rand.Rand) int {
	i := rng.IntN(len(p.prob))
	if rng.Float64() < p.prob[i] {
		return i
	}
	return int(p.alias[i])
}

// peer is one simulated client: the torrent it announces, its port, and
// whether it is a seeder. Its address is the source address of the socket it
// is assigned to, plus port.
type peer struct {
	torrent uint32
	port    uint16
	seeder  bool
}

// workload is the request mix shared by the UDP and HTTP modes.
type workload struct {
	seed       uint64
	hashes     [][20]byte
	pop        *popularity
	peers      []peer
	announce   int // weight of announces
	scrape     int // weight of scrapes
	events     [4]int
	eventTotal int
	numWant    int
	maxScrape  int
	// paths are the announce paths, /KEY/announce, one per access key;
	// peer i uses path i mod len(paths). Without keys, one: /announce.
	paths [][]byte
}

// path is the announce path of peer i.
func (w *workload) path(i int) []byte { return w.paths[i%len(w.paths)] }

// udpURLData is the BEP 41 URL data of peer i's UDP announces: its path
// with a key, nothing without keys (as clients send for udp://host:port).
func (w *workload) udpURLData(i int) []byte {
	if len(w.paths) == 1 && string(w.paths[0]) == "/announce" {
		return nil
	}
	return w.path(i)
}

// eventOrder is the order of the -events weights; values are BEP 15's.
var eventOrder = [4]uint32{udpEventStarted, udpEventNone, udpEventCompleted, udpEventStopped}

type workloadConfig struct {
	seed      uint64
	torrents  int
	peers     int
	mix       string // "announce:scrape"
	events    string // "started:none:completed:stopped"
	seeders   float64
	numWant   int
	maxScrape int
	keys      int // access keys the peers announce with; 0 for none
}

func newWorkload(c workloadConfig) (*workload, error) {
	if c.torrents < 1 || c.peers < 1 {
		return nil, fmt.Errorf("workload: need at least one torrent and one peer, have %d and %d", c.torrents, c.peers)
	}
	if c.maxScrape < 1 || c.maxScrape > 74 {
		return nil, fmt.Errorf("workload: scrape size %d: want 1..74", c.maxScrape)
	}
	mix, err := parseWeights(c.mix, 2)
	if err != nil {
		return nil, fmt.Errorf("workload: -mix: %w", err)
	}
	ev, err := parseWeights(c.events, 4)
	if err != nil {
		return nil, fmt.Errorf("workload: -events: %w", err)
	}
	w := &workload{
		seed:      c.seed,
		hashes:    infoHashes(c.seed, c.torrents),
		pop:       newPopularity(c.torrents, c.peers),
		peers:     make([]peer, c.peers),
		announce:  mix[0],
		scrape:    mix[1],
		numWant:   c.numWant,
		maxScrape: c.maxScrape,
	}
	copy(w.events[:], ev)
	w.eventTotal = ev[0] + ev[1] + ev[2] + ev[3]
	w.paths = [][]byte{[]byte("/announce")}
	if c.keys > 0 {
		w.paths = make([][]byte, c.keys)
		for i := range w.paths {
			w.paths[i] = []byte("/" + accessKey(c.seed, i) + "/announce")
		}
	}
	rng := rand.New(rand.NewPCG(c.seed, 0x7065657273)) // "peers"
	for i := range w.peers {
		w.peers[i] = peer{
			torrent: uint32(w.pop.pick(rng)),
			port:    uint16(1024 + rng.IntN(65536-1024)),
			seeder:  rng.Float64() < c.seeders,
		}
	}
	return w, nil
}

// parseWeights parses n colon-separated non-negative integers, not all zero.
func parseWeights(s string, n int) ([]int, error) {
	parts := strings.Split(s, ":")
	if len(parts) != n {
		return nil, fmt.Errorf("%q: want %d colon-separated weights", s, n)
	}
	out := make([]int, n)
	total := 0
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("%q: weight %q is not a non-negative integer", s, p)
		}
		out[i] = v
		total += v
	}
	if total == 0 {
		return nil, fmt.Errorf("%q: all weights are zero", s)
	}
	return out, nil
}

// isScrape decides whether the next request is a scrape.
func (w *workload) isScrape(rng *rand.Rand) bool {
	return rng.IntN(w.announce+w.scrape) >= w.announce
}

// event draws an announce event (BEP 15 numbering).
func (w *workload) event(rng *rand.Rand) uint32 {
	r := rng.IntN(w.eventTotal)
	for i, wt := range w.events {
		if r < wt {
			return eventOrder[i]
		}
		r -= wt
	}
	return udpEventNone
}

// scrapeHashes draws 1..maxScrape torrents by popularity and returns their
// hashes sorted and without repeats, appended to dst. opentracker writes a
// scrape's "files" in request order and repeats duplicates; asking in order
// keeps its reply canonical bencoding, which the strict decoder requires.
func (w *workload) scrapeHashes(rng *rand.Rand, dst [][20]byte) [][20]byte {
	n := 1 + rng.IntN(w.maxScrape)
	for range n {
		dst = append(dst, w.hashes[w.pop.pick(rng)])
	}
	slices.SortFunc(dst, func(a, b [20]byte) int { return bytes.Compare(a[:], b[:]) })
	return slices.Compact(dst)
}

// left is what a peer reports as bytes left: 0 for seeders and for a
// completed event, otherwise a fixed half of a 1 GiB torrent.
func left(p peer, event uint32) uint64 {
	if p.seeder || event == udpEventCompleted {
		return 0
	}
	return 1 << 29
}

// peerID is a fixed-format peer id ("-HB0100-" and twelve digits of the
// peer's index), so a tracker log can tell the generator's peers apart.
func peerID(i int) [20]byte {
	var id [20]byte
	copy(id[:], "-HB0100-")
	v := uint64(i)
	for j := 19; j >= 8; j-- {
		id[j] = byte('0' + v%10)
		v /= 10
	}
	return id
}
