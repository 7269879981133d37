package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"herald/access"
)

func TestHashesDependOnlyOnSeedAndIndex(t *testing.T) {
	small, large := infoHashes(1, 10), infoHashes(1, 1000)
	if !slices.Equal(small, large[:10]) {
		t.Fatal("the first hashes differ with the torrent count: a whitelist of the largest count would not cover smaller runs")
	}
	if infoHash(2, 0) == infoHash(1, 0) {
		t.Fatal("seed does not change the hashes")
	}
}

func TestWriteHashesIsAWhitelist(t *testing.T) {
	var buf bytes.Buffer
	if err := writeHashes(&buf, 1, 100); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&buf)
	i := 0
	for sc.Scan() {
		b, err := hex.DecodeString(sc.Text())
		if err != nil || len(b) != 20 {
			t.Fatalf("line %d %q: not 40 hex digits", i, sc.Text())
		}
		if h := infoHash(1, i); !bytes.Equal(b, h[:]) {
			t.Fatalf("line %d is not torrent %d's hash", i, i)
		}
		i++
	}
	if i != 100 {
		t.Fatalf("%d lines, want 100", i)
	}
}

func TestPopularityHasAquaticsHead(t *testing.T) {
	const torrents = 10000
	p := newPopularity(torrents, 2*torrents)
	rng := rand.New(rand.NewPCG(1, 2))
	counts := make([]int, torrents)
	const draws = 1_000_000
	for range draws {
		counts[p.pick(rng)]++
	}
	head := 0
	for _, c := range counts[:torrents/100] {
		head += c
	}
	// weight(i) = 0.5 + exp(6.5 - 500 i/N): the first 1% carries
	// (1 - e^-5) * 665 * N/500 of about 1.83 N total weight, 72%.
	if share := float64(head) / draws; share < 0.69 || share > 0.75 {
		t.Errorf("first 1%% of torrents got %.3f of picks, want about 0.72", share)
	}
	// The floor: the tail torrents are still picked.
	tail := 0
	for _, c := range counts[torrents/2:] {
		tail += c
	}
	if share := float64(tail) / draws; share < 0.12 || share > 0.15 {
		t.Errorf("second half of torrents got %.3f of picks, want about 0.137", share)
	}
}

func TestScrapeHashesSortedUnique(t *testing.T) {
	w, err := newWorkload(workloadConfig{seed: 1, torrents: 50, peers: 100, mix: "1:1", events: "1:1:1:1", seeders: 0.75, numWant: 30, maxScrape: 74})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	for range 100 {
		h := w.scrapeHashes(rng, nil)
		if len(h) == 0 || len(h) > 74 {
			t.Fatalf("%d hashes", len(h))
		}
		for i := 1; i < len(h); i++ {
			if bytes.Compare(h[i-1][:], h[i][:]) >= 0 {
				t.Fatalf("hashes not strictly increasing at %d", i)
			}
		}
	}
}

func TestWorkloadMix(t *testing.T) {
	w, err := newWorkload(workloadConfig{seed: 1, torrents: 100, peers: 10000, mix: "100:1", events: "0:0:1:0", seeders: 0.75, numWant: 30, maxScrape: 10})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	scrapes := 0
	for range 101000 {
		if w.isScrape(rng) {
			scrapes++
		}
	}
	if scrapes < 800 || scrapes > 1200 {
		t.Errorf("%d scrapes in 101000 requests, want about 1000", scrapes)
	}
	if ev := w.event(rng); ev != udpEventCompleted {
		t.Errorf("event %d with only completed weighted", ev)
	}
	seeders := 0
	for _, p := range w.peers {
		if p.seeder {
			seeders++
		}
		if p.port < 1024 {
			t.Fatalf("peer port %d below 1024", p.port)
		}
	}
	if seeders < 7300 || seeders > 7700 {
		t.Errorf("%d seeders of 10000, want about 7500", seeders)
	}
}

func TestParseWeightsRejects(t *testing.T) {
	for _, s := range []string{"", "1", "1:2:3", "a:1", "-1:2", "0:0"} {
		if _, err := parseWeights(s, 2); err == nil {
			t.Errorf("parseWeights(%q) accepted", s)
		}
	}
}

// With -keys, peers announce with keys herald's access.keys accepts, the
// same ones herald-bench keys prints, spread over the peers.
func TestWorkloadKeys(t *testing.T) {
	w, err := newWorkload(workloadConfig{seed: 1, torrents: 10, peers: 100, mix: "1:0", events: "1:1:1:1", seeders: 0.75, numWant: 30, maxScrape: 10, keys: 7})
	if err != nil {
		t.Fatal(err)
	}
	var file strings.Builder
	if err := writeKeys(&file, 1, 7); err != nil {
		t.Fatal(err)
	}
	keys, bad, err := access.ParseKeys(strings.NewReader(file.String()))
	if err != nil || len(bad) > 0 || len(keys) != 7 {
		t.Fatalf("keys file: %d keys, bad lines %v, %v", len(keys), bad, err)
	}
	used := map[access.Key]bool{}
	for i := range w.peers {
		k, rest, ok := access.KeyFromPath(string(w.udpURLData(i)))
		if !ok || rest != "/announce" || string(w.path(i)) != string(w.udpURLData(i)) {
			t.Fatalf("peer %d: path %q", i, w.path(i))
		}
		if _, listed := keys[k]; !listed {
			t.Fatalf("peer %d: key %s not in the keys file", i, k)
		}
		used[k] = true
	}
	if len(used) != 7 {
		t.Errorf("peers use %d of the 7 keys", len(used))
	}
	plain, _ := newWorkload(workloadConfig{seed: 1, torrents: 10, peers: 100, mix: "1:0", events: "1:1:1:1", seeders: 0.75, numWant: 30, maxScrape: 10})
	if string(plain.path(5)) != "/announce" || plain.udpURLData(5) != nil {
		t.Errorf("without keys: path %q, URL data %q", plain.path(5), plain.udpURLData(5))
	}
}
