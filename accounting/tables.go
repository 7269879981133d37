package accounting

import (
	"encoding/binary"
	"math/bits"

	"herald/access"
	"herald/swarm"
)

// peerTable is a shard's peers: an open-addressing hash table with linear
// probing whose slots hold each peer whole, one cache line each, so that
// finding a peer's baseline and updating it is one hash and, at the
// table's load (3/8 to 3/4), one or two adjacent cache lines. (A Go map
// would need a lookup and a second assignment to update a value, and its
// control bytes sit apart from its slots.) Deletion shifts the following
// slots back: there are no tombstones.
type peerTable struct {
	slots []peerSlot // a power of two of them; nil until the first peer
	n     int
	seed  [3]uint64
}

// peerSlot is one peer of a key in a torrent, with its last announce: 64
// bytes.
type peerSlot struct {
	hash swarm.InfoHash
	id   swarm.PeerID
	// acct is the index of the key's account in its shard plus one; 0
	// marks an empty slot.
	acct                 uint32
	seen                 uint32 // Unix seconds (until 2106)
	uploaded, downloaded uint64
}

// mum is wyhash's mixing step: the halves of a 128-bit product, folded.
func mum(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// hashOf is where the probe for a peer starts, before the mask. It
// leaves out the key's account: the probe's first cache line can then be
// loaded while the key's index is still being looked up, and a peer id
// in a torrent seldom comes with two keys.
func (t *peerTable) hashOf(h *swarm.InfoHash, id *swarm.PeerID) int {
	le := binary.LittleEndian
	x := mum(le.Uint64(h[0:])^t.seed[0], le.Uint64(h[8:])^0xa0761d6478bd642f)
	x ^= mum(uint64(le.Uint32(h[16:]))|uint64(le.Uint32(id[0:]))<<32^t.seed[1], le.Uint64(id[4:])^0xe7037ed1a0b428db)
	x ^= mum(le.Uint64(id[12:])^t.seed[2], 0x8ebc6af09c88c6e3)
	return int(x ^ x>>32)
}

// find returns the index of the slot of peer id of account acct in
// torrent h, and true; or, when there is none, the index of the empty
// slot where it would go and false. The table must not be empty.
func (t *peerTable) find(acct uint32, h *swarm.InfoHash, id *swarm.PeerID) (int, bool) {
	mask := len(t.slots) - 1
	for i := t.hashOf(h, id) & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.acct == 0 {
			return i, false
		}
		if s.acct == acct && same20((*[20]byte)(&s.hash), (*[20]byte)(h)) && same20((*[20]byte)(&s.id), (*[20]byte)(id)) {
			return i, true
		}
	}
}

// same20 is a == b, without the call to memequal that == makes (as
// keyTable.find compares keys).
func same20(a, b *[20]byte) bool {
	le := binary.LittleEndian
	return le.Uint64(a[0:]) == le.Uint64(b[0:]) && le.Uint64(a[8:]) == le.Uint64(b[8:]) && le.Uint32(a[16:]) == le.Uint32(b[16:])
}

// lookup is find on a table that may have no slots yet.
func (t *peerTable) lookup(acct uint32, h *swarm.InfoHash, id *swarm.PeerID) (int, bool) {
	if t.slots == nil {
		return -1, false
	}
	return t.find(acct, h, id)
}

// insert adds a peer that is not in the table.
func (t *peerTable) insert(s peerSlot) {
	if (t.n+1)*4 > len(t.slots)*3 {
		t.grow()
	}
	i, _ := t.find(s.acct, &s.hash, &s.id)
	t.slots[i] = s
	t.n++
}

func (t *peerTable) grow() {
	old := t.slots
	t.slots = make([]peerSlot, max(2*len(old), 16))
	mask := len(t.slots) - 1
	for _, s := range old {
		if s.acct == 0 {
			continue
		}
		i := t.hashOf(&s.hash, &s.id) & mask
		for t.slots[i].acct != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = s
	}
}

// remove empties slot i, moving back the slots after it that probing
// would no longer reach.
func (t *peerTable) remove(i int) {
	mask := len(t.slots) - 1
	for j := (i + 1) & mask; t.slots[j].acct != 0; j = (j + 1) & mask {
		// The slot at j may fill the hole at i if its probe starts at or
		// before i, that is outside (i, j] cyclically.
		s := &t.slots[j]
		if home := t.hashOf(&s.hash, &s.id) & mask; (j-home)&mask >= (j-i)&mask {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = peerSlot{}
	t.n--
}

// removeIf removes the peers for which gone is true and calls gone at
// least once for each peer.
func (t *peerTable) removeIf(gone func(*peerSlot) bool) {
	for i := 0; i < len(t.slots); {
		if s := &t.slots[i]; s.acct != 0 && gone(s) {
			// remove moves only slots from after i to i or beyond it: look
			// at i again.
			t.remove(i)
			continue
		}
		i++
	}
}

// keyTable is a shard's keys with their sums, an open-addressing hash
// table like peerTable with 64-byte slots, to which keys are only added.
type keyTable struct {
	slots []keySlot // a power of two of them; nil until the first key
	n     int
	seed  uint64
}

// keySlot is a key, its sums and its index in the shard.
type keySlot struct {
	key   access.Key
	total Totals
	// active is the number of torrents the key has a remembered peer in.
	active int32
	// idx is the key's index in its shard plus one; 0 marks an empty slot.
	idx uint32
}

func (t *keyTable) hashOf(k *access.Key) int {
	le := binary.LittleEndian
	x := mum(le.Uint64(k[0:])^t.seed, le.Uint64(k[8:])^0xa0761d6478bd642f)
	x ^= mum(le.Uint64(k[16:])^t.seed, le.Uint64(k[24:])^0xe7037ed1a0b428db)
	return int(x ^ x>>32)
}

// find returns k's slot, or nil.
func (t *keyTable) find(k *access.Key) *keySlot {
	if t.slots == nil {
		return nil
	}
	mask := len(t.slots) - 1
	for i := t.hashOf(k) & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.idx == 0 {
			return nil
		}
		if le := binary.LittleEndian; le.Uint64(s.key[0:]) == le.Uint64(k[0:]) && le.Uint64(s.key[8:]) == le.Uint64(k[8:]) &&
			le.Uint64(s.key[16:]) == le.Uint64(k[16:]) && le.Uint64(s.key[24:]) == le.Uint64(k[24:]) {
			return s
		}
	}
}

// add adds k, which is not in the table, with index idx, and returns its
// slot, valid until the next add.
func (t *keyTable) add(k *access.Key, idx uint32) *keySlot {
	if (t.n+1)*4 > len(t.slots)*3 {
		old := t.slots
		t.slots = make([]keySlot, max(2*len(old), 16))
		for _, s := range old {
			if s.idx != 0 {
				*t.free(&s.key) = s
			}
		}
	}
	s := t.free(k)
	*s = keySlot{key: *k, idx: idx + 1}
	t.n++
	return s
}

// free returns the empty slot where k would go.
func (t *keyTable) free(k *access.Key) *keySlot {
	mask := len(t.slots) - 1
	i := t.hashOf(k) & mask
	for t.slots[i].idx != 0 {
		i = (i + 1) & mask
	}
	return &t.slots[i]
}
