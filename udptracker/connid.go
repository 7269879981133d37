package udptracker

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"math/bits"
	"net/netip"
	"sync/atomic"
	"time"
)

// Connection ids are stateless (BEP 15 lets a tracker make them any way it
// likes): an id is a SipHash-2-4 MAC over the client's address and the
// current time slot, under a key of the current key generation. Nothing is
// kept per client, an id cannot be forged without the key, and it is worth
// nothing from another address (unlike opentracker's, which depend on the
// IP alone and never expire).
//
// A generation lasts Config.KeyRotation, counted from the Unix epoch, and
// its key is derived from Config.ConnIDSecret and its number. So the keys
// need no state beyond the secret: a herald restarted with the secret it
// saved in its snapshot accepts the ids it issued before, and sockets and
// listeners of one process agree without sharing anything.
//
// The two low bits of an id name the slot's parity and the generation's,
// so checking one costs exactly one MAC: an id from the current or previous
// slot, under the current or previous generation's key, is valid; anything
// older fails the MAC. An id is therefore good for one to two slots: BEP 15
// asks clients to use one for at most a minute and trackers to accept it
// for two.
const (
	connIDSlot = time.Minute
	// minKeyRotation keeps the previous key alive for an id's whole life:
	// were generations shorter than two slots, the generation bit would
	// point an id at the wrong key.
	minKeyRotation = 2 * connIDSlot
	// ConnIDSecretLen is the length of a random connection-id secret.
	ConnIDSecretLen = 32
)

// connIDs issues and checks connection ids. It is safe for concurrent use.
type connIDs struct {
	secret  []byte
	genSecs int64
	keys    atomic.Pointer[keyRing]
}

// keyRing holds the keys of generation gen, which runs over the Unix
// seconds [from, until), and of the one before it.
type keyRing struct {
	gen         uint64
	from, until int64
	cur, prev   sipKey
}

type sipKey struct{ k0, k1 uint64 }

// NewConnIDSecret returns a random secret for Config.ConnIDSecret.
func NewConnIDSecret() []byte {
	b := make([]byte, ConnIDSecretLen)
	rand.Read(b) // never fails (crypto/rand documents it panics or succeeds)
	return b
}

func newConnIDs(secret []byte, rotation time.Duration) *connIDs {
	c := &connIDs{secret: secret, genSecs: int64(rotation / time.Second)}
	c.keys.Store(&keyRing{}) // empty: the first use derives the keys
	return c
}

// ring returns the key ring for Unix time now (seconds). Crossing into a
// new generation derives its keys; sockets that race to do it derive the
// same ones.
func (c *connIDs) ring(now int64) *keyRing {
	r := c.keys.Load()
	if now >= r.from && now < r.until {
		return r
	}
	gen := uint64(now / c.genSecs)
	r = &keyRing{gen: gen, from: int64(gen) * c.genSecs, until: int64(gen+1) * c.genSecs,
		cur: c.key(gen), prev: c.key(gen - 1)}
	c.keys.Store(r)
	return r
}

// key derives generation gen's key: HMAC-SHA-256 of the generation number
// under the secret, its first 16 bytes.
func (c *connIDs) key(gen uint64) sipKey {
	m := hmac.New(sha256.New, c.secret)
	m.Write(binary.BigEndian.AppendUint64([]byte("herald udp connection id key "), gen))
	sum := m.Sum(nil)
	return sipKey{binary.LittleEndian.Uint64(sum), binary.LittleEndian.Uint64(sum[8:])}
}

// slotOf is the time slot of a Unix time in seconds.
func slotOf(unix int64) uint64 { return uint64(unix) / uint64(connIDSlot/time.Second) }

// issue returns the connection id for addr at Unix time now (seconds).
func (c *connIDs) issue(addr netip.AddrPort, now int64) uint64 {
	ring := c.ring(now)
	slot := slotOf(now)
	return connIDMAC(ring.cur, addr, slot)&^3 | (ring.gen&1)<<1 | slot&1
}

// valid reports whether id was issued to addr in the current or previous
// slot, under the current or previous generation's key.
func (c *connIDs) valid(id uint64, addr netip.AddrPort, now int64) bool {
	ring := c.ring(now)
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
