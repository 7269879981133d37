package swarm

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"slices"
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

// vec returns the vector that holds (or would hold) key.
func (l *peerList) vec(key []byte) *[]byte {
	if l.big != nil {
		return &l.big.buckets[bucketOf(key)]
	}
	return &l.recs
}

// search finds key in the sorted vector v of records of length rl: the index
// of the record, and whether it is there (else where it would go).
func search(v []byte, key []byte, rl int) (int, bool) {
	n := len(v) / rl
	lo, hi := 0, n
	if rl == recLen4 {
		k := key48(key)
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if key48(v[m*rl:]) < k {
				lo = m + 1
			} else {
				hi = m
			}
		}
		return lo, lo < n && key48(v[lo*rl:]) == k
	}
	kl := rl - 2
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if bytes.Compare(v[m*rl:m*rl+kl], key) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < n && bytes.Equal(v[lo*rl:lo*rl+kl], key)
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

// pick appends up to want random peers of the list to dst, leaving out the
// record self (nil when the requester is not in this list). Peers are taken
// one from each of want equal windows of the list starting at a random
// offset, so picks are distinct and spread over the whole list.
func (l *peerList) pick(dst []byte, want int, self []byte, rl int) []byte {
	n := int(l.total)
	if self != nil {
		n--
	}
	if want <= 0 || n <= 0 {
		return dst
	}
	kl := rl - 2
	if want >= n {
		l.eachVec(func(v *[]byte) {
			for off := 0; off < len(*v); off += rl {
				r := (*v)[off : off+rl]
				if self != nil && &r[0] == &self[0] {
					continue
				}
				dst = append(dst, r[:kl]...)
			}
		})
		return dst
	}
	// Virtual index i in [0, n) skips self: records at or after self's
	// position shift by one.
	selfPos := -1
	var prefix [bigBuckets + 1]int
	if l.big != nil {
		for b := range l.big.buckets {
			prefix[b+1] = prefix[b] + len(l.big.buckets[b])/rl
		}
	}
	if self != nil {
		selfPos = l.position(self, rl, &prefix)
	}
	r := fastRand(rand.Uint64())
	start := r.intn(n)
	// Window k is [k*n/want, (k+1)*n/want), stepped in 32.32 fixed point
	// to spare two divisions per peer; n > want makes every window non-empty.
	step := (uint64(n) << 32) / uint64(want)
	edge := uint64(0)
	out := len(dst)
	dst = slices.Grow(dst, want*kl)[:out+want*kl]
	for range want {
		lo := int(edge >> 32)
		edge += step
		i := start + lo + r.intn(int(edge>>32)-lo)
		if i >= n {
			i -= n
		}
		if selfPos >= 0 && i >= selfPos {
			i++
		}
		var rec []byte
		if l.big == nil {
			rec = l.recs[i*rl : i*rl+kl]
		} else {
			rec = l.at(i, rl, &prefix)[:kl]
		}
		// Fixed-size moves for the two record sizes: copy with a length
		// known only at run time calls memmove, per peer.
		switch kl {
		case PeerLen4:
			*(*[PeerLen4]byte)(dst[out:]) = [PeerLen4]byte(rec)
		case PeerLen6:
			*(*[PeerLen6]byte)(dst[out:]) = [PeerLen6]byte(rec)
		default:
			copy(dst[out:out+kl], rec)
		}
		out += kl
	}
	return dst
}

// at returns the i-th record in list order.
func (l *peerList) at(i, rl int, prefix *[bigBuckets + 1]int) []byte {
	if l.big == nil {
		return l.recs[i*rl : (i+1)*rl]
	}
	lo, hi := 0, bigBuckets
	for lo < hi { // last bucket b with prefix[b] <= i
		m := (lo + hi + 1) / 2
		if prefix[m] <= i {
			lo = m
		} else {
			hi = m - 1
		}
	}
	j := i - prefix[lo]
	return l.big.buckets[lo][j*rl : (j+1)*rl]
}

// position returns the list-order index of record r (which is in the list).
func (l *peerList) position(r []byte, rl int, prefix *[bigBuckets + 1]int) int {
	key := r[:rl-2]
	if l.big == nil {
		i, _ := search(l.recs, key, rl)
		return i
	}
	b := bucketOf(key)
	i, _ := search(l.big.buckets[b], key, rl)
	return prefix[b] + i
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
