package swarm

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

func codecSample() TorrentState {
	return TorrentState{InfoHash: hashN(7), Completed: 300, Idle: 90 * time.Second, Peers: []PeerState{
		{Addr: netip.MustParseAddrPort("[2001:db8::1]:6881"), Seeder: true, Age: time.Minute},
		{Addr: netip.MustParseAddrPort("10.0.0.1:51413"), Completed: true, Synced: true, Age: 0},
		{Addr: netip.MustParseAddrPort("[::ffff:10.0.0.2]:1"), Seeder: true, Completed: true, Age: 44 * time.Minute},
	}}
}

// The encoding snapshots and catch-ups share: IPv4 peers first (a mapped
// address is IPv4), flags as the store keeps them, and a parse gives back
// what was appended.
func TestTorrentStateRoundTrip(t *testing.T) {
	ts := codecSample()
	b := AppendTorrentState([]byte("x"), &ts)
	var got TorrentState
	rest, err := ParseTorrentState(append(b[1:], "tail"...), &got)
	if err != nil || string(rest) != "tail" {
		t.Fatalf("parse: %v, rest %q", err, rest)
	}
	want := TorrentState{InfoHash: ts.InfoHash, Completed: 300, Idle: 90 * time.Second, Peers: []PeerState{
		{Addr: netip.MustParseAddrPort("10.0.0.1:51413"), Completed: true, Synced: true},
		{Addr: netip.MustParseAddrPort("10.0.0.2:1"), Seeder: true, Completed: true, Age: 44 * time.Minute},
		{Addr: netip.MustParseAddrPort("[2001:db8::1]:6881"), Seeder: true, Age: time.Minute},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parsed %+v\nwant %+v", got, want)
	}
	for _, bad := range [][]byte{
		b[1:40],                              // truncated
		append(b[1:len(b)-1:len(b)-1], 0x80), // the last age cut in the middle
	} {
		if _, err := ParseTorrentState(bad, &got); !errors.Is(err, ErrBadState) {
			t.Errorf("parse of %x: err %v, want ErrBadState", bad, err)
		}
	}
	flags := bytes.Clone(b[1:])
	flags[20+5+4+2] = 0x80 // the first peer's flags byte
	if _, err := ParseTorrentState(flags, &got); !errors.Is(err, ErrBadState) {
		t.Errorf("unknown flag bit: err %v, want ErrBadState", err)
	}
}

// A store's records carry the same flag bits as the encoding: what Dump
// reads from them and Restore writes back are PeerFlags.
func TestStoreKeepsPeerFlags(t *testing.T) {
	s := newStore(t, Config{})
	ts := codecSample()
	if n, err := s.Restore(&ts); n != 3 || err != nil {
		t.Fatalf("restored %d, %v", n, err)
	}
	s.Dump(func(got *TorrentState) error {
		for _, p := range got.Peers {
			for _, q := range ts.Peers {
				if q.Addr.Addr().Unmap() == p.Addr.Addr() && q.Flags() != p.Flags() {
					t.Errorf("%v: flags %08b after a restore, want %08b", p.Addr, p.Flags(), q.Flags())
				}
			}
		}
		return nil
	})
}

// FuzzTorrentState: whatever parses re-encodes to bytes that parse to the
// same state and encode to themselves.
func FuzzTorrentState(f *testing.F) {
	ts := codecSample()
	f.Add(AppendTorrentState(nil, &ts))
	f.Add(AppendTorrentState(nil, &TorrentState{Completed: 1}))
	f.Fuzz(func(t *testing.T, b []byte) {
		var first, second TorrentState
		if _, err := ParseTorrentState(b, &first); err != nil {
			return
		}
		enc := AppendTorrentState(nil, &first)
		rest, err := ParseTorrentState(enc, &second)
		if err != nil || len(rest) != 0 {
			t.Fatalf("re-encoded state does not parse whole: %v, %d bytes left", err, len(rest))
		}
		if !reflect.DeepEqual(first, second) {
			t.Fatalf("round trip changed the state:\n%+v\n%+v", first, second)
		}
		if again := AppendTorrentState(nil, &second); !bytes.Equal(again, enc) {
			t.Fatalf("encoding not stable: %x then %x", enc, again)
		}
	})
}
