package swarm

import (
	"encoding/binary"
	"math/bits"
	"os"
	"unsafe"
)

// A shard keeps its torrents inline in an open-addressed table of slots,
// and the peers of small swarms either inside the slot (up to two IPv4
// peers) or in one block of the shard's arena (both families, each sorted,
// IPv4 first). Neither the table nor the arena holds a Go pointer, so both
// live in regions outside the Go heap: the GC never scans them and GOGC
// never doubles them. Swarms above maxFlat bytes of records move to a Go
// heap torrent with bucketed peer lists, where inserts stay cheap.
//
// Why the regions are safe outside the heap: they hold only bytes and
// integers, so the GC needs nothing from them; the shard's mutex guards
// every access, a region is unmapped only under that mutex after its
// contents were copied to the replacement, and no slice into a region is
// used after the mutex is released (announces copy picked peers out, Dump
// and Range copy under the lock). Inside a locked section, any call that
// may allocate arena space (growFlat, toBig, toFlat) can move every block,
// so views are taken again after it.

// slot is one torrent of a shard's table. Its 56 bytes are the whole cost
// of a torrent of up to two IPv4 peers.
type slot struct {
	hash      InfoHash
	completed uint32
	last      uint32 // store clock seconds of the last announce
	ref       uint32 // kind<<30 | block offset/blockAlign or big index
	n4, n6    uint16 // flat kinds: records per family
	s4, s6    uint16 // flat kinds: seeders per family
	inline    [inlineLen]byte
}

// Slot kinds, in ref's top two bits. An empty slot is all zeros.
const (
	kindEmpty  = 0
	kindInline = 1 // records in slot.inline: IPv4 only, at most two
	kindBlock  = 2 // records in the arena block at (ref&refMask)*blockAlign
	kindBig    = 3 // records in shard.big[ref&refMask]
	refMask    = 1<<30 - 1
)

const (
	inlineLen  = 2 * recLen4
	blockAlign = 16
	// maxFlat is the most record bytes a torrent keeps inline or in a
	// block: an insert moves at most this much. Above it the torrent moves
	// to a big torrent; it comes back below maxFlat/4 (hysteresis).
	maxFlat = 8192
	// Tables are kept at most maxLoadNum/maxLoadDen full and grow by a
	// quarter: linear probing stays short (about 3 slots for a hit, 13 for
	// a miss at the bound) and the average table is about 72% full.
	maxLoadNum, maxLoadDen = 4, 5
	minTableLen            = 8
)

var pageSize = os.Getpagesize()

func (sl *slot) kind() uint32           { return sl.ref >> 30 }
func (sl *slot) index() int             { return int(sl.ref & refMask) }
func (sl *slot) used() int              { return int(sl.n4)*recLen4 + int(sl.n6)*recLen6 }
func (sl *slot) setRef(k uint32, v int) { sl.ref = k<<30 | uint32(v) }

// classSize is the capacity of an arena block holding n record bytes:
// multiples of 16 up to 256, then steps of at most 1/16.
func classSize(n int) int {
	g := blockAlign
	if n > 256 {
		g = 1 << (bits.Len(uint(n-1)) - 4)
	}
	return (n + g - 1) &^ (g - 1)
}

// region is memory for a table or an arena: a shard's first, tiny one
// from the Go heap (a pointer-free object is never scanned), every later
// one from mmap, outside the heap, in whole pages. Growing through
// heap-allocated sizes up to a page would leave tens of kilobytes of
// garbage per shard behind a fill, and GOGC keeps garbage resident.
type region struct {
	b      []byte
	mapped bool
}

// heapRegionMax is the largest region taken from the Go heap.
const heapRegionMax = 512

func newRegion(n int) region {
	if n <= heapRegionMax {
		return region{b: make([]byte, n)}
	}
	n = (n + pageSize - 1) &^ (pageSize - 1)
	return region{b: mapBytes(n), mapped: true}
}

func (r *region) release() {
	if r.mapped {
		unmapBytes(r.b)
	}
	*r = region{}
}

// home returns the table index where a torrent's probe starts. The hash
// mixes all 20 bytes with the store's random seed (wyhash's multiply-fold),
// so clients choosing info hashes cannot pile them onto one probe chain.
func (s *Store) home(h *InfoHash, n int) int {
	a := binary.LittleEndian.Uint64(h[0:])
	b := binary.LittleEndian.Uint64(h[8:])
	c := uint64(binary.LittleEndian.Uint32(h[16:]))
	hi, lo := bits.Mul64(a^s.seed[0], b^s.seed[1])
	hi, lo = bits.Mul64(hi^lo^s.seed[2], c^s.seed[3])
	hi, _ = bits.Mul64(hi^lo, uint64(n))
	return int(hi)
}

// lookup returns h's slot index and true, or the empty slot where h would
// go and false (-1 when the table has no slots).
func (s *Store) lookup(sh *shard, h *InfoHash) (int, bool) {
	n := len(sh.tab)
	if n == 0 {
		return -1, false
	}
	i := s.home(h, n)
	for {
		sl := &sh.tab[i]
		if sl.ref == 0 {
			return i, false
		}
		if sl.hash == *h {
			return i, true
		}
		if i++; i == n {
			i = 0
		}
	}
}

// insertSlot adds an inline torrent with no peers for h (not in the table)
// and returns its slot, growing the table first when it would pass the load
// bound.
func (s *Store) insertSlot(sh *shard, h *InfoHash) *slot {
	if (sh.count+1)*maxLoadDen > len(sh.tab)*maxLoadNum {
		s.resize(sh, max(minTableLen, len(sh.tab)+len(sh.tab)/4, (sh.count+1)*maxLoadDen/maxLoadNum+1))
	}
	i, _ := s.lookup(sh, h)
	sl := &sh.tab[i]
	*sl = slot{hash: *h, ref: kindInline << 30}
	sh.count++
	return sl
}

// deleteSlot empties slot i and moves later slots of its probe chain back
// into the hole (no tombstones, so lookups never walk over dead slots).
func (s *Store) deleteSlot(sh *shard, i int) {
	n := len(sh.tab)
	j := i
	for {
		sh.tab[i] = slot{}
		for {
			if j++; j == n {
				j = 0
			}
			if sh.tab[j].ref == 0 {
				sh.count--
				return
			}
			// Slot j may move to the hole at i unless its home lies
			// cyclically in (i, j]: then i is before its chain starts.
			k := s.home(&sh.tab[j].hash, n)
			if i <= j && (i < k && k <= j) || i > j && (i < k || k <= j) {
				continue
			}
			break
		}
		sh.tab[i] = sh.tab[j]
		i = j
	}
}

// resize moves the table to one of at least n slots (rounded up to fill
// its pages); n 0 frees the table.
func (s *Store) resize(sh *shard, n int) {
	old, oldMem := sh.tab, sh.tabMem
	sh.tab, sh.tabMem = nil, region{}
	if n > 0 {
		const size = int(unsafe.Sizeof(slot{}))
		sh.tabMem = newRegion(n * size)
		sh.tab = unsafe.Slice((*slot)(unsafe.Pointer(unsafe.SliceData(sh.tabMem.b))), len(sh.tabMem.b)/size)
		for k := range old {
			if old[k].ref == 0 {
				continue
			}
			i, _ := s.lookup(sh, &old[k].hash)
			sh.tab[i] = old[k]
		}
	}
	oldMem.release()
}

// arena holds the blocks of a shard's flat torrents. Blocks are bump
// allocated; a block that moves or shrinks leaves dead bytes behind, and
// when the arena is full it is rebuilt: live blocks are copied to a new
// region sized for them plus an eighth, so dead bytes never exceed about
// an eighth of the live ones for long.
type arena struct {
	mem  region
	top  int // bytes handed out, dead ones included
	live int // bytes in live blocks
}

// alloc returns the offset of a new block of size bytes (a class size). It
// may rebuild the arena, moving every block.
func (sh *shard) alloc(size int) int {
	a := &sh.arena
	if a.top+size > len(a.mem.b) {
		sh.rebuildArena(size)
	}
	off := a.top
	a.top += size
	a.live += size
	return off
}

// rebuildArena copies the live blocks into a new region with room for need
// more bytes and slack.
func (sh *shard) rebuildArena(need int) {
	live := sh.arena.live
	nm := newRegion(live + need + max(live/8, 256))
	top := 0
	for i := range sh.tab {
		sl := &sh.tab[i]
		if sl.kind() != kindBlock {
			continue
		}
		size := classSize(sl.used())
		off := sl.index() * blockAlign
		copy(nm.b[top:top+size], sh.arena.mem.b[off:off+size])
		sl.setRef(kindBlock, top/blockAlign)
		top += size
	}
	sh.arena.mem.release()
	sh.arena = arena{mem: nm, top: top, live: top}
}

// flat returns the storage of an inline or block torrent holding used
// record bytes: IPv4 records from 0, IPv6 records after them.
func (sh *shard) flat(sl *slot, used int) []byte {
	if sl.kind() == kindInline {
		return sl.inline[:]
	}
	off := sl.index() * blockAlign
	return sh.arena.mem.b[off : off+classSize(used)]
}

// growFlat makes room for need record bytes in a flat torrent now holding
// used, moving its records to a bigger block if they do not fit.
func (sh *shard) growFlat(sl *slot, used, need int) {
	switch {
	case sl.kind() == kindInline && need <= inlineLen:
		return
	case sl.kind() == kindBlock && classSize(need) == classSize(used):
		return
	}
	off := sh.alloc(classSize(need))
	copy(sh.arena.mem.b[off:], sh.flat(sl, used)[:used])
	if sl.kind() == kindBlock {
		sh.arena.live -= classSize(used)
	}
	sl.setRef(kindBlock, off/blockAlign)
}

// shrinkFlat gives back storage after a flat torrent went from used record
// bytes to fewer: back inline when they fit, else the block's tail is dead.
func (sh *shard) shrinkFlat(sl *slot, used int) {
	if sl.kind() != kindBlock {
		return
	}
	now := sl.used()
	if sl.n6 == 0 && now <= inlineLen {
		off := sl.index() * blockAlign
		copy(sl.inline[:], sh.arena.mem.b[off:off+now])
		sh.arena.live -= classSize(used)
		sl.setRef(kindInline, 0)
		return
	}
	sh.arena.live -= classSize(used) - classSize(now)
}

// dropFlat frees a flat torrent's block (the torrent is going away or big).
func (sh *shard) dropFlat(sl *slot) {
	if sl.kind() == kindBlock {
		sh.arena.live -= classSize(sl.used())
	}
}

// compactArena rebuilds the arena when dead bytes outweigh live ones, and
// frees it when nothing is live; Clean calls it.
func (sh *shard) compactArena() {
	a := &sh.arena
	switch {
	case a.live == 0:
		a.mem.release()
		*a = arena{}
	case a.top-a.live > a.live:
		sh.rebuildArena(0)
	}
}
