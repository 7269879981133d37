package udptracker

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"
)

// The 24-byte entry of the reference implementation's vectors_sip64 table
// (key 00..0f, message 00..17).
func TestSipHash24ReferenceVector(t *testing.T) {
	var key, msg [24]byte
	for i := range msg {
		key[i%16], msg[i] = byte(i%16), byte(i)
	}
	k := sipKey{binary.LittleEndian.Uint64(key[:]), binary.LittleEndian.Uint64(key[8:])}
	got := sipHash24(k, binary.LittleEndian.Uint64(msg[:]), binary.LittleEndian.Uint64(msg[8:]), binary.LittleEndian.Uint64(msg[16:]))
	if want := uint64(0xb8ad50c6f649af94); got != want {
		t.Fatalf("SipHash-2-4 = %#x, want %#x", got, want)
	}
}

func TestConnIDLifetime(t *testing.T) {
	ids := newConnIDs(NewConnIDSecret(), time.Hour)
	client := netip.MustParseAddrPort("192.0.2.7:6881")
	const t0 = 1_700_000_040 // 0 s into a slot
	id := ids.issue(client, t0)
	for _, tc := range []struct {
		name  string
		addr  netip.AddrPort
		at    int64
		valid bool
	}{
		{"same slot", client, t0 + 59, true},
		{"next slot", client, t0 + 60, true},
		{"end of next slot", client, t0 + 119, true},
		{"two slots later", client, t0 + 120, false},
		{"an hour later", client, t0 + 3600, false},
		{"before it was issued", client, t0 - 1, false},
		{"other port, same address (libtorrent shares ids across sockets)", netip.MustParseAddrPort("192.0.2.7:6882"), t0, true},
		{"other address", netip.MustParseAddrPort("192.0.2.8:6881"), t0, false},
		{"IPv6 address", netip.MustParseAddrPort("[2001:db8::7]:6881"), t0, false},
	} {
		if got := ids.valid(id, tc.addr, tc.at); got != tc.valid {
			t.Errorf("%s: valid = %v, want %v", tc.name, got, tc.valid)
		}
	}
	for bit := range 64 {
		if ids.valid(id^1<<bit, client, t0) {
			t.Errorf("id with bit %d flipped accepted", bit)
		}
	}
}

func TestConnIDSurvivesOneRotation(t *testing.T) {
	ids := newConnIDs(NewConnIDSecret(), time.Hour)
	client := netip.MustParseAddrPort("[2001:db8::1]:51413")
	boundary := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC).Unix()
	id := ids.issue(client, boundary-30)
	if !ids.valid(id, client, boundary+30) {
		t.Fatal("id issued just before a key rotation rejected after it")
	}
	fresh := ids.issue(client, boundary+30)
	if fresh == id {
		t.Fatal("new key issued the same id")
	}
	if !ids.valid(fresh, client, boundary+30) {
		t.Fatal("id under the new key rejected")
	}
}

// Issue 14 item 17: a restarted process given the saved secret accepts the
// ids the old one issued; a new secret does not.
func TestConnIDSecretCarriesIDsOverARestart(t *testing.T) {
	secret := NewConnIDSecret()
	client := netip.MustParseAddrPort("192.0.2.7:6881")
	const t0 = 1_700_000_040
	id := newConnIDs(secret, time.Hour).issue(client, t0)
	if !newConnIDs(secret, time.Hour).valid(id, client, t0+61) {
		t.Fatal("id rejected by a process with the same secret")
	}
	if newConnIDs(NewConnIDSecret(), time.Hour).valid(id, client, t0+61) {
		t.Fatal("id accepted under another secret")
	}
}

func TestConnIDKeysDifferPerProcess(t *testing.T) {
	client := netip.MustParseAddrPort("192.0.2.7:6881")
	if newConnIDs(NewConnIDSecret(), time.Hour).issue(client, 0) == newConnIDs(NewConnIDSecret(), time.Hour).issue(client, 0) {
		t.Fatal("two secrets issued the same id: secrets are not random")
	}
}

func BenchmarkConnID(b *testing.B) {
	ids := newConnIDs(NewConnIDSecret(), time.Hour)
	client := netip.MustParseAddrPort("[::ffff:192.0.2.7]:6881")
	now := time.Now().Unix()
	b.Run("issue", func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b)()
		var sink uint64
		for b.Loop() {
			sink += ids.issue(client, now)
		}
		_ = sink
	})
	b.Run("valid", func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b)()
		id := ids.issue(client, now)
		for b.Loop() {
			if !ids.valid(id, client, now) {
				b.Fatal("rejected")
			}
		}
	})
}
