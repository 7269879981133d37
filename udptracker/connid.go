package udptracker

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"math/bits"
	"net/netip"
	"sync/atomic"
	"time"
)

// Connection ids are stateless (BEP 15 lets a tracker make them any way it
// likes): an id is a SipHash-2-4 MAC over the client's address, port and
// the current time slot, under a random per-process key. Nothing is kept
// per client, an id cannot be forged without the key, and it is worth
// nothing from another address or port (unlike opentracker's, which depend
// on the IP alone and never expire).
//
// The two low bits of an id name the slot's parity and the key's
// generation, so checking one costs exactly one MAC: an id from the
// current or previous slot, under the current or previous key, is valid;
// anything older fails the MAC. An id is therefore good for one to two
// slots: BEP 15 asks clients to use one for at most a minute and trackers
// to accept it for two.
const (
	connIDSlot = time.Minute
	// minKeyRotation keeps the previous key alive for an id's whole life:
	// were keys rotated twice within two slots, the generation bit would
	// point an id at the wrong key.
	minKeyRotation = 2 * connIDSlot
)

// connIDs issues and checks connection ids. It is safe for concurrent use.
type connIDs struct {
	keys atomic.Pointer[keyRing]
}

type keyRing struct {
	gen       uint64
	cur, prev sipKey
}

type sipKey struct{ k0, k1 uint64 }

func newSipKey() sipKey {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand documents it panics or succeeds)
	return sipKey{binary.LittleEndian.Uint64(b[:]), binary.LittleEndian.Uint64(b[8:])}
}

func newConnIDs() *connIDs {
	c := new(connIDs)
	// A distinct previous key, so that an id with its generation bit
	// flipped is checked under a key nobody was issued ids with.
	c.keys.Store(&keyRing{cur: newSipKey(), prev: newSipKey()})
	return c
}

// rotate draws a new key; ids made under the one it replaces stay valid.
// Only one goroutine (the server's) calls it.
func (c *connIDs) rotate() {
	old := c.keys.Load()
	c.keys.Store(&keyRing{gen: old.gen + 1, cur: newSipKey(), prev: old.cur})
}

// slotOf is the time slot of a Unix time in seconds.
func slotOf(unix int64) uint64 { return uint64(unix) / uint64(connIDSlot/time.Second) }

// issue returns the connection id for addr at Unix time now (seconds).
func (c *connIDs) issue(addr netip.AddrPort, now int64) uint64 {
	ring := c.keys.Load()
	slot := slotOf(now)
	return connIDMAC(ring.cur, addr, slot)&^3 | (ring.gen&1)<<1 | slot&1
}

// valid reports whether id was issued to addr in the current or previous
// slot, under the current or previous key.
func (c *connIDs) valid(id uint64, addr netip.AddrPort, now int64) bool {
	ring := c.keys.Load()
	slot := slotOf(now)
	if id&1 != slot&1 {
		slot--
	}
	key := ring.cur
	if (id>>1)&1 != ring.gen&1 {
		key = ring.prev
	}
	want := connIDMAC(key, addr, slot)&^3 | id&3
	return subtle.ConstantTimeEq(int32(want), int32(id))&subtle.ConstantTimeEq(int32(want>>32), int32(id>>32)) == 1
}

// connIDMAC is SipHash-2-4 of the 24 bytes address(16, IPv4 as mapped) ‖
// slot(8, little-endian), one 64-bit word each. The port is left out on
// purpose: libtorrent keeps one connection id per tracker for the whole
// process and announces with it from every socket it has, so an id bound to
// the port fails its announces (found by the e2e tests). A forger still has
// to receive at the address, which is what stops spoofing.
func connIDMAC(k sipKey, addr netip.AddrPort, slot uint64) uint64 {
	a := addr.Addr().As16()
	return sipHash24(k,
		binary.LittleEndian.Uint64(a[:8]),
		binary.LittleEndian.Uint64(a[8:]),
		slot)
}

// sipHash24 is SipHash-2-4 (Aumasson and Bernstein, 2012) of a 24-byte
// message given as three little-endian words; written out for that length
// so it takes no slice and allocates nothing.
func sipHash24(k sipKey, m0, m1, m2 uint64) uint64 {
	v0 := k.k0 ^ 0x736f6d6570736575
	v1 := k.k1 ^ 0x646f72616e646f6d
	v2 := k.k0 ^ 0x6c7967656e657261
	v3 := k.k1 ^ 0x7465646279746573
	round := func() {
		v0 += v1
		v1 = bits.RotateLeft64(v1, 13)
		v1 ^= v0
		v0 = bits.RotateLeft64(v0, 32)
		v2 += v3
		v3 = bits.RotateLeft64(v3, 16)
		v3 ^= v2
		v0 += v3
		v3 = bits.RotateLeft64(v3, 21)
		v3 ^= v0
		v2 += v1
		v1 = bits.RotateLeft64(v1, 17)
		v1 ^= v2
		v2 = bits.RotateLeft64(v2, 32)
	}
	for _, m := range [...]uint64{m0, m1, m2, 24 << 56} { // the last block is only the length
		v3 ^= m
		round()
		round()
		v0 ^= m
	}
	v2 ^= 0xff
	round()
	round()
	round()
	round()
	return v0 ^ v1 ^ v2 ^ v3
}
