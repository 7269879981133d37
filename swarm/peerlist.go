package swarm

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"slices"
	"unsafe"
)

// A peer record is its packed address (the key: IP then big-endian port)
// followed by one flags byte and one age stamp byte: 8 bytes for IPv4, 20 for
// IPv6, as in opentracker. Records live in sorted byte vectors, so the store
// holds no per-peer heap object and nothing per peer for the GC to scan.
const (
	recLen4 = PeerLen4 + 2
	recLen6 = PeerLen6 + 2
)

// Flags in a record's flags byte: PeerFlags, as snapshots and the cluster
// carry them.
const (
	flagSeeder    = byte(PeerSeeder)
	flagCompleted = byte(PeerCompleted)
	flagSynced    = byte(PeerSynced)
	// flagMark and the origin bits are the store's own, never handed out:
	// the mark says Announce or Restore stored the record since the last
	// ClearMarks, the top four bits are Announce.Origin.
	flagMark    = 1 << 3
	originShift = 4
)

// Above bigThreshold records a list splits into bigBuckets sorted buckets
// chosen by a hash of the key, so that an insert moves at most a bucket's
// tail; it merges back below smallThreshold (hysteresis avoids flapping).
const (
	bigBuckets     = 64
	bigThreshold   = 1024
	smallThreshold = 256
)

// peerList is one address family's peers of one torrent.
type peerList struct {
	recs    []byte   // sorted records, when big == nil
	big     *bigList // bucketed records for large swarms
	seeders uint32
	total   uint32
}

type bigList struct {
	buckets [bigBuckets][]byte
}

func (l *peerList) leechers() uint32 { return l.total - l.seeders }

// bucketOf picks the bucket of a key in a big list.
func bucketOf(key []byte) int {
	var h uint64
	if len(key) == PeerLen4 {
		h = uint64(binary.BigEndian.Uint32(key))<<16 | uint64(binary.BigEndian.Uint16(key[4:]))
	} else {
		h = binary.BigEndian.Uint64(key) ^ binary.BigEndian.Uint64(key[8:])*0x9E3779B97F4A7C15 ^ uint64(binary.BigEndian.Uint16(key[16:]))
	}
	h *= 0x9E3779B97F4A7C15
	return int(h >> (64 - 6))
}

// vec returns the vector that holds (or would hold) key, and its bucket
// (0 in a plain list).
func (l *peerList) vec(key []byte) (*[]byte, int) {
	if l.big != nil {
		b := bucketOf(key)
		return &l.big.buckets[b], b
	}
	return &l.recs, 0
}

// search finds key in the sorted vector v of records of length rl: the index
// of the record, and whether it is there (else where it would go).
func search(v []byte, key []byte, rl int) (int, bool) {
	if rl == recLen4 {
		return search4(v, key48(key))
	}
	n := len(v) / recLen6
	lo, hi := 0, n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if bytes.Compare(v[m*recLen6:m*recLen6+PeerLen6], key) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < n && bytes.Equal(v[lo*recLen6:lo*recLen6+PeerLen6], key)
}

// search4 is search for IPv4 records and the key as key48 gives it. It
// halves the range without a branch on the comparison (half the branches
// of a binary search are mispredicted), narrowing to the last record at or
// below k; each record is read as one 8-byte load.
func search4(v []byte, k uint64) (int, bool) {
	n := len(v) / recLen4
	if n == 0 {
		return 0, false
	}
	// Every index read is below n, records of v: loads through a pointer
	// spare two bounds checks on each (12 instructions of 20 a step).
	p := unsafe.Pointer(unsafe.SliceData(v))
	base := 0
	for n > 1 {
		half := n >> 1
		// Keys are below 2^48, so k-r is negative exactly when r > k:
		// mask is then all ones and base stays.
		mask := int(int64(k-rec48(p, base+half)) >> 63)
		base += half &^ mask
		n -= half
	}
	r := rec48(p, base)
	if r < k {
		return base + 1, false
	}
	return base, r == k
}

// rec48 reads the key of IPv4 record i at p as key48 does.
func rec48(p unsafe.Pointer, i int) uint64 {
	return bits.ReverseBytes64(*(*uint64)(unsafe.Add(p, i*recLen4))) >> 16
}

// key48 reads a 6-byte IPv4 key as a number that sorts like the bytes.
func key48(b []byte) uint64 {
	_ = b[5]
	return uint64(binary.BigEndian.Uint32(b))<<16 | uint64(binary.BigEndian.Uint16(b[4:]))
}

// insertAt opens room for one record at index i of *v and returns it.
func insertAt(v *[]byte, i, rl int) []byte {
	s := *v
	n := len(s)
	if n+rl > cap(s) {
		// Grow by a quarter (at least one record), not Go's doubling: most
		// swarms are small and stay put, so slack is memory wasted per peer.
		c := n + rl + max(rl, n/4)
		c = (c + 15) &^ 15
		ns := make([]byte, n, c)
		copy(ns, s)
		s = ns
	}
	s = s[:n+rl]
	copy(s[(i+1)*rl:], s[i*rl:n])
	*v = s
	return s[i*rl : (i+1)*rl]
}

// removeAt deletes record i of *v, shrinking storage when mostly empty.
func removeAt(v *[]byte, i, rl int) {
	s := *v
	n := len(s)
	copy(s[i*rl:], s[(i+1)*rl:])
	s = s[:n-rl]
	*v = shrink(s)
}

// shrink gives back storage when less than a quarter of it is used.
func shrink(s []byte) []byte {
	if len(s) == 0 {
		return nil
	}
	if cap(s) > 64 && len(s) < cap(s)/4 {
		ns := make([]byte, len(s), (len(s)+len(s)/4+15)&^15)
		copy(ns, s)
		return ns
	}
	return s
}

// split turns a plain list into a bucketed one.
func (l *peerList) split(rl int) {
	b := new(bigList)
	for off := 0; off < len(l.recs); off += rl {
		r := l.recs[off : off+rl]
		v := &b.buckets[bucketOf(r[:rl-2])]
		*v = append(*v, r...) // records arrive sorted, so each bucket stays sorted
	}
	l.recs = nil
	l.big = b
}

// merge turns a bucketed list back into a plain sorted one.
func (l *peerList) merge(rl int) {
	out := make([]byte, 0, (int(l.total)*rl+rl+15)&^15)
	for _, v := range l.big.buckets {
		for off := 0; off < len(v); off += rl {
			k := v[off : off+rl-2]
			i, _ := search(out, k, rl)
			copy(insertAt(&out, i, rl), v[off:off+rl])
		}
	}
	l.big = nil
	l.recs = out
}

// eachVec calls fn for every vector of the list.
func (l *peerList) eachVec(fn func(v *[]byte)) {
	if l.big == nil {
		fn(&l.recs)
		return
	}
	for i := range l.big.buckets {
		fn(&l.big.buckets[i])
	}
}

// place is where a record sits in a peerList: its vector (the bucket of a
// bucketed list, 0 for a plain one) and its index there; i < 0 is no record.
// findRec and addRec return the requester's place, so pick leaves it out
// without searching for it again.
type place struct{ b, i int }

// nowhere is the place of a requester that is not in the list.
var nowhere = place{i: -1}

// pick appends up to want random peers of the list to dst, leaving out the
// record at self. Peers are taken one from each of want equal windows of
// the list starting at a random offset, so picks are distinct and spread
// over the whole list.
func (l *peerList) pick(dst []byte, want int, self place, rl int) []byte {
	n := int(l.total)
	if self.i >= 0 {
		n--
	}
	if want <= 0 || n <= 0 {
		return dst
	}
	if want >= n {
		return l.all(dst, self, rl)
	}
	if l.big != nil {
		return l.pickBig(dst, want, n, self, rl)
	}
	// Virtual index i in [0, n) skips self: records at or after self's
	// index shift by one. Without self, selfPos n shifts none.
	selfPos := n
	if self.i >= 0 {
		selfPos = self.i
	}
	r := fastRand(rand.Uint64())
	start := r.intn(n)
	out := len(dst)
	dst = slices.Grow(dst, want*(rl-2))
	buf := dst[:cap(dst)]
	if rl == recLen4 {
		out = sample[[recLen4]byte](buf, out, l.recs, n, want, start, selfPos, r)
	} else {
		out = sample[[recLen6]byte](buf, out, l.recs, n, want, start, selfPos, r)
	}
	return dst[:out]
}

// record is a whole IPv4 or IPv6 record as an array: sample and copyPeers
// are instantiated for each, so that the record length is a constant in
// their loops.
type record interface{ [recLen4]byte | [recLen6]byte }

// sample writes want peers of recs (records of type R) to buf from out, one
// from each of want equal windows of the n virtual indexes from start
// (records at or after selfPos shifted by one), and returns the new end.
// The loop is a leaf function of its own and reads and writes through
// pointers, checked once before it, so that its state stays in registers:
// with slices, bounds checks and spills made it 65 instructions a peer,
// against 33 (callgrind, 2026-12-07).
func sample[R record](buf []byte, out int, recs []byte, n, want, start, selfPos int, r fastRand) int {
	rl := int(unsafe.Sizeof(*new(R)))
	// The largest index read is n-1, shifted to n when selfPos is below
	// n; out grows by want peers.
	top := n
	if selfPos < n {
		top++
	}
	// edge reaches (start+n)<<32, so n below 2^31 keeps it from wrapping
	// (a swarm of 2^31 peers would be 16 GiB of records).
	if top*rl > len(recs) || out < 0 || out+want*(rl-2) > len(buf) || start < 0 || start >= n || uint64(n) >= 1<<31 {
		panic("swarm: sample out of range")
	}
	// The pointers are advanced by integer offsets, never past the last
	// element (a pointer past an allocation is invalid for the GC).
	src, dst := unsafe.Pointer(unsafe.SliceData(recs)), unsafe.Pointer(unsafe.SliceData(buf))
	// Window k is [k*n/want, (k+1)*n/want), stepped in 32.32 fixed point
	// to spare two divisions per peer; n > want makes every window
	// non-empty. start rides in edge's integer part.
	step := (uint64(n) << 32) / uint64(want)
	edge := uint64(start) << 32
	x := uint64(r)
	for k := want; k > 0; k-- {
		lo := edge >> 32
		edge += step
		// fastRand.intn written out, so that its state stays in a register.
		x += 0xa0761d6478bd642f
		hi, lw := bits.Mul64(x, x^0xe7037ed1a0b428db)
		i := int(lo + ((hi^lw)>>32*(edge>>32-lo))>>32)
		if i >= n {
			i -= n
		}
		if i >= selfPos {
			i++
		}
		movePeer(unsafe.Add(dst, out), unsafe.Add(src, i*rl), rl)
		out += rl - 2
	}
	return out
}

// movePeer copies the peer (rl-2 bytes) of the record of length rl at src
// to dst as integer loads and stores, exactly its bytes (rl is a constant
// in sample's and copyPeers' instances, so the test folds away; an array
// copy between pointers of a size not a power of two calls memmove). The
// loads and stores may be unaligned (a peer is 6 or 18 bytes), as amd64
// and arm64 allow.
func movePeer(dst, src unsafe.Pointer, rl int) {
	if rl == recLen4 {
		a, b := *(*uint32)(src), *(*uint16)(unsafe.Add(src, 4))
		*(*uint32)(dst), *(*uint16)(unsafe.Add(dst, 4)) = a, b
		return
	}
	a, b, c := *(*uint64)(src), *(*uint64)(unsafe.Add(src, 8)), *(*uint16)(unsafe.Add(src, 16))
	*(*uint64)(dst), *(*uint64)(unsafe.Add(dst, 8)), *(*uint16)(unsafe.Add(dst, 16)) = a, b, c
}

// all appends every peer of the list but the one at self to dst.
func (l *peerList) all(dst []byte, self place, rl int) []byte {
	if l.big == nil {
		return appendPeers(dst, l.recs, self.i, rl)
	}
	for b := range l.big.buckets {
		skip := -1
		if b == self.b {
			skip = self.i
		}
		dst = appendPeers(dst, l.big.buckets[b], skip, rl)
	}
	return dst
}

// appendPeers appends the peers of the records in v (of length rl) to
// dst, but not record skip (-1: none).
func appendPeers(dst, v []byte, skip, rl int) []byte {
	n := len(v) / rl
	if skip >= 0 {
		n--
	}
	out := len(dst)
	dst = slices.Grow(dst, n*(rl-2))
	buf := dst[:cap(dst)]
	if rl == recLen4 {
		return dst[:copyPeers[[recLen4]byte](buf, out, v, skip)]
	}
	return dst[:copyPeers[[recLen6]byte](buf, out, v, skip)]
}

// copyPeers writes the peers of the records in v to buf from out, but not
// record skip, as sample does, and returns the new end.
func copyPeers[R record](buf []byte, out int, v []byte, skip int) int {
	rl := int(unsafe.Sizeof(*new(R)))
	n := len(v) / rl
	kept := n
	if skip >= 0 && skip < n {
		kept--
	}
	if out < 0 || out+kept*(rl-2) > len(buf) {
		panic("swarm: copyPeers out of range")
	}
	src, dst := unsafe.Pointer(unsafe.SliceData(v)), unsafe.Pointer(unsafe.SliceData(buf))
	for i := range n {
		if i == skip {
			continue
		}
		movePeer(unsafe.Add(dst, out), unsafe.Add(src, i*rl), rl)
		out += rl - 2
	}
	return out
}

// pickBig is pick for a bucketed list: list order is bucket 0's records,
// then bucket 1's, and so on.
func (l *peerList) pickBig(dst []byte, want, n int, self place, rl int) []byte {
	// Byte offsets in list order where each bucket starts: no division
	// per bucket, and a pick's byte position compares with them directly.
	var start [bigBuckets + 1]int
	for b := range l.big.buckets {
		start[b+1] = start[b] + len(l.big.buckets[b])
	}
	selfPos := n
	if self.i >= 0 {
		selfPos = (start[self.b] + self.i*rl) / rl
	}
	r := fastRand(rand.Uint64())
	first := r.intn(n)
	out := len(dst)
	dst = slices.Grow(dst, want*(rl-2))
	buf := dst[:cap(dst)]
	if rl == recLen4 {
		out = sampleBig[[recLen4]byte](buf, out, &l.big.buckets, &start, n, want, first, selfPos, r)
	} else {
		out = sampleBig[[recLen6]byte](buf, out, &l.big.buckets, &start, n, want, first, selfPos, r)
	}
	return dst[:out]
}

// sampleBig is sample for a bucketed list whose buckets begin at the byte
// offsets start in list order. Picks come in increasing list order but for
// one wrap to the front, so a cursor walks the buckets instead of a search
// per peer.
func sampleBig[R record](buf []byte, out int, buckets *[bigBuckets][]byte, start *[bigBuckets + 1]int, n, want, first, selfPos int, r fastRand) int {
	rl := int(unsafe.Sizeof(*new(R)))
	top := n
	if selfPos < n {
		top++
	}
	if top*rl > start[bigBuckets] || out < 0 || out+want*(rl-2) > len(buf) || first < 0 || first >= n || uint64(n) >= 1<<31 {
		panic("swarm: sampleBig out of range")
	}
	dst := unsafe.Pointer(unsafe.SliceData(buf))
	step := (uint64(n) << 32) / uint64(want)
	edge := uint64(first) << 32
	x := uint64(r)
	b := 0
	for k := want; k > 0; k-- {
		lo := edge >> 32
		edge += step
		x += 0xa0761d6478bd642f
		hi, lw := bits.Mul64(x, x^0xe7037ed1a0b428db)
		i := int(lo + ((hi^lw)>>32*(edge>>32-lo))>>32)
		if i >= n {
			i -= n
		}
		if i >= selfPos {
			i++
		}
		pos := i * rl
		if pos < start[b] {
			b = 0
		}
		for pos >= start[b+1] {
			b++
		}
		// pos is below start[b+1], the end of bucket b's records.
		movePeer(unsafe.Add(dst, out), unsafe.Add(unsafe.Pointer(unsafe.SliceData(buckets[b])), pos-start[b]), rl)
		out += rl - 2
	}
	return out
}

// fastRand is wyrand, seeded once per pick from math/rand: picking peers
// needs many cheap, unpredictable-enough numbers (up to 2 per peer), not a
// cryptographic stream, and the global source costs several times more.
type fastRand uint64

func (r *fastRand) next() uint64 {
	*r += 0xa0761d6478bd642f
	hi, lo := bits.Mul64(uint64(*r), uint64(*r)^0xe7037ed1a0b428db)
	return hi ^ lo
}

// intn returns a number in [0, n) for 0 < n < 2^32 (Lemire's reduction;
// the bias is below 2^-32 here, harmless for peer picking).
func (r *fastRand) intn(n int) int {
	return int((r.next() >> 32) * uint64(n) >> 32)
}
