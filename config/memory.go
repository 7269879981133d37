package config

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"strconv"
	"strings"
)

// Memory budget for the default bounds on torrents and peers, so that a
// flood of made-up info hashes or peers cannot take the machine's memory
// unless the operator says so (tracker.max_torrents / max_peers 0). Peers
// get half of the memory at bytesPerPeer, torrents a quarter at
// bytesPerTorrent; both figures are above what docs/benchmarks.md measured
// (IPv6 66 bytes per peer, about 350 bytes per torrent in a flood), so
// both bounds reached together still leave room for the Go heap's
// headroom and a snapshot being written.
const (
	bytesPerPeer    = 80
	bytesPerTorrent = 512
)

// WebSocket gets an eighth of the memory of its own, apart from the
// store's three quarters: half for connections, half for their swarm
// joins. An idle connection measured 3.4 KB (wstracker's memory_test.go),
// and bytesPerWSConn leaves room for its buffers while it works; a swarm
// join measured about 533 B.
const (
	bytesPerWSConn = 8 << 10
	bytesPerWSPeer = 640
)

// wsMaxConnections and wsMaxPeers return the default bounds on WebSocket
// connections and swarm joins, 0 (no bound) when the memory cannot be
// read.
func wsMaxConnections() int { return int(memoryLimit() / 16 / bytesPerWSConn) }
func wsMaxPeers() int       { return int(memoryLimit() / 16 / bytesPerWSPeer) }

// bytesPerLedgerPeer is what a peer the per-key accounting remembers may
// cost: above the 225 to 404 bytes accounting's BenchmarkLedgerMemory
// measured (live heap), five times a stored peer's budget.
const bytesPerLedgerPeer = 512

// LedgerMaxPeers is the bound on the peers the per-key accounting
// remembers: the store's bound maxPeers, but no more than an eighth of the
// memory at bytesPerLedgerPeer. With the store's bound alone, a keyed
// tracker holding as many peers as the store allows would need five times
// the memory the store's budget is sized for. 0 when neither bound is
// known (the ledger's own default then applies).
func LedgerMaxPeers(maxPeers int) int {
	budget := int(memoryLimit() / 8 / bytesPerLedgerPeer)
	switch {
	case budget == 0:
		return maxPeers
	case maxPeers == 0:
		return budget
	}
	return min(maxPeers, budget)
}

// memoryBounds returns default bounds derived from the memory herald may
// use: its cgroup's limit if it has one, else the machine's. They are 0
// (no bound) when neither can be read.
func memoryBounds() (torrents, peers int) {
	mem := memoryLimit()
	return int(mem / 4 / bytesPerTorrent), int(mem / 2 / bytesPerPeer)
}

// memoryLimit is the memory herald may use: its cgroup's limit if it has
// one, else the machine's; 0 when neither can be read.
func memoryLimit() uint64 {
	mem, _ := MemoryLimit()
	return mem
}

// MemoryLimit is the memory the memory-derived defaults are computed
// from, and where that figure comes from ("cgroup memory.max",
// "MemTotal", or "unknown" with 0).
func MemoryLimit() (bytes uint64, from string) {
	if mem := cgroupMemoryMax(); mem != 0 {
		return mem, "cgroup memory.max"
	}
	if mem := memTotal(); mem != 0 {
		return mem, "MemTotal"
	}
	return 0, "unknown"
}

// cgroupMemoryMax reads cgroup v2's memory.max; 0 when unset ("max") or
// unreadable.
func cgroupMemoryMax() uint64 {
	data, err := os.ReadFile("/sys/fs/cgroup/memory.max")
	if err != nil {
		return 0
	}
	v, err := strconv.ParseUint(string(bytes.TrimSpace(data)), 10, 64)
	if err != nil {
		return 0
	}
	return v
}

// memTotal reads MemTotal from /proc/meminfo in bytes; 0 when unreadable.
func memTotal() uint64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	return parseMemTotal(f)
}

func parseMemTotal(r io.Reader) uint64 {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) != 2 || fields[1] != "kB" {
			return 0
		}
		kb, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			return 0
		}
		return kb * 1024
	}
	return 0
}
