package cluster

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	"herald/swarm"
)

func TestRecordRoundTrip(t *testing.T) {
	h := swarm.InfoHash{0: 0xaa, 19: 0xbb}
	for _, tc := range []struct {
		name string
		a    swarm.Announce
		len  int
		want Record
	}{
		{"IPv4 leecher started", swarm.Announce{InfoHash: h, Addr: netip.MustParseAddrPort("192.0.2.1:6881"), Left: 5, Event: swarm.EventStarted},
			RecordLen4, Record{h, netip.MustParseAddrPort("192.0.2.1:6881"), swarm.EventStarted, false}},
		{"IPv4-mapped sent as IPv4", swarm.Announce{InfoHash: h, Addr: netip.MustParseAddrPort("[::ffff:192.0.2.1]:1"), Event: swarm.EventCompleted},
			RecordLen4, Record{h, netip.MustParseAddrPort("192.0.2.1:1"), swarm.EventCompleted, true}},
		{"IPv6 seeder stopped", swarm.Announce{InfoHash: h, Addr: netip.MustParseAddrPort("[2001:db8::1]:65535"), Event: swarm.EventStopped},
			RecordLen6, Record{h, netip.MustParseAddrPort("[2001:db8::1]:65535"), swarm.EventStopped, true}},
		{"refresh", swarm.Announce{InfoHash: h, Addr: netip.MustParseAddrPort("10.0.0.1:80"), Left: 1},
			RecordLen4, Record{h, netip.MustParseAddrPort("10.0.0.1:80"), swarm.EventNone, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := AppendRecord([]byte("x"), &tc.a)
			if len(b) != 1+tc.len {
				t.Fatalf("record is %d bytes, want %d", len(b)-1, tc.len)
			}
			got, rest, err := ParseRecord(b[1:])
			if err != nil || len(rest) != 0 || got != tc.want {
				t.Fatalf("ParseRecord = %+v, rest %d, %v; want %+v", got, len(rest), err, tc.want)
			}
			if a := got.Announce(); !a.FromCluster || a.Seeder() != tc.want.Seeder || a.NumWant != 0 {
				t.Fatalf("Announce() = %+v", a)
			}
		})
	}
}

func TestParseRecordRejects(t *testing.T) {
	good := AppendRecord(nil, &swarm.Announce{Addr: netip.MustParseAddrPort("[2001:db8::1]:1")})
	mapped := bytes.Clone(good)
	copy(mapped[21:], netip.MustParseAddr("::ffff:1.2.3.4").AsSlice())
	unknownFlag := bytes.Clone(good)
	unknownFlag[0] |= 0x04
	for name, tc := range map[string]struct {
		b    []byte
		want error
	}{
		"empty":               {nil, ErrShort},
		"IPv6 cut":            {good[:RecordLen6-1], ErrShort},
		"IPv4-mapped as IPv6": {mapped, ErrMalformed},
		"unknown flag":        {unknownFlag, ErrMalformed},
	} {
		if _, _, err := ParseRecord(tc.b); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	h := Header{Kind: KindSyncChunk, Node: 0x0102030405060708, Seq: 9}
	b := AppendHeader(nil, h)
	if len(b) != HeaderLen {
		t.Fatalf("header is %d bytes", len(b))
	}
	got, body, err := ParseHeader(append(b, 'z'))
	if err != nil || got != h || string(body) != "z" {
		t.Fatalf("ParseHeader = %+v, %q, %v", got, body, err)
	}
	for name, msg := range map[string][]byte{
		"short":        b[:HeaderLen-1],
		"version 1":    append([]byte{1}, b[1:]...),
		"kind 0":       append([]byte{Version, 0}, b[2:]...),
		"unknown kind": append([]byte{Version, 9}, b[2:]...),
	} {
		if _, _, err := ParseHeader(msg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func testTorrent() swarm.TorrentState {
	return swarm.TorrentState{
		InfoHash:  swarm.InfoHash{1, 2, 3},
		Completed: 7,
		Idle:      90 * time.Second,
		Peers: []swarm.PeerState{
			{Addr: netip.MustParseAddrPort("192.0.2.1:6881"), Seeder: true, Completed: true, Synced: true, Age: 300 * time.Second},
			{Addr: netip.MustParseAddrPort("[2001:db8::2]:51413"), Synced: true},
		},
	}
}

func TestTorrentRoundTrip(t *testing.T) {
	ts := testTorrent()
	b := swarm.AppendTorrentState(nil, &ts)
	b = swarm.AppendTorrentState(b, &swarm.TorrentState{InfoHash: swarm.InfoHash{9}, Completed: 1})
	var got swarm.TorrentState
	rest, err := ParseTorrent(b, &got)
	if err != nil || !reflect.DeepEqual(got, ts) {
		t.Fatalf("ParseTorrent = %+v, %v; want %+v", got, err, ts)
	}
	if rest, err = ParseTorrent(rest, &got); err != nil || len(rest) != 0 || got.Completed != 1 || len(got.Peers) != 0 {
		t.Fatalf("second torrent = %+v, rest %d, %v", got, len(rest), err)
	}
	// Every peer of a catch-up is synced, whatever the sender had.
	ts.Peers[1].Synced = false
	b = swarm.AppendTorrentState(nil, &ts)
	if _, err := ParseTorrent(b, &got); err != nil || !got.Peers[1].Synced {
		t.Fatalf("peer not marked synced: %+v, %v", got.Peers[1], err)
	}
	for cut := range len(b) {
		if _, err := ParseTorrent(b[:cut], &got); err == nil {
			t.Errorf("torrent cut to %d bytes accepted", cut)
		}
	}
}

func TestSyncEndRoundTrip(t *testing.T) {
	e := SyncEnd{Torrents: 300, Peers: 1 << 40, Name: "tracker-1-ab12"}
	got, err := ParseSyncEnd(AppendSyncEnd(nil, e))
	if err != nil || got != e {
		t.Fatalf("ParseSyncEnd = %+v, %v", got, err)
	}
}

// FuzzParse feeds any bytes to the parser of each message kind: none may
// panic, and whatever parses re-encodes to the same bytes.
func FuzzParse(f *testing.F) {
	ts := testTorrent()
	f.Add(AppendRecord(AppendHeader(nil, Header{Kind: KindAnnounces, Node: 1, Seq: 1}),
		&swarm.Announce{Addr: netip.MustParseAddrPort("192.0.2.1:6881"), Event: swarm.EventStarted}))
	f.Add(AppendRecord(AppendHeader(nil, Header{Kind: KindAnnounces, Node: 1, Seq: 2}),
		&swarm.Announce{Addr: netip.MustParseAddrPort("[2001:db8::1]:1"), Left: 1, Event: swarm.EventStopped}))
	f.Add(AppendHeader(nil, Header{Kind: KindAnnounces, Node: 2, Seq: 3})) // heartbeat
	f.Add(append(AppendHeader(nil, Header{Kind: KindSyncRequest, Node: 3}), SyncOwn))
	f.Add(swarm.AppendTorrentState(AppendHeader(nil, Header{Kind: KindSyncChunk, Node: 4, Seq: 1}), &ts))
	f.Add(AppendSyncEnd(AppendHeader(nil, Header{Kind: KindSyncEnd, Node: 4, Seq: 2}), SyncEnd{1, 2, "n"}))
	// A torrent with peers followed by one without: the parser reuses
	// ts.Peers, so the second is empty but not nil (CI found this).
	empty := swarm.TorrentState{InfoHash: ts.InfoHash, Completed: 3}
	f.Add(swarm.AppendTorrentState(swarm.AppendTorrentState(AppendHeader(nil, Header{Kind: KindSyncChunk, Node: 4, Seq: 3}), &ts), &empty))
	f.Fuzz(func(t *testing.T, msg []byte) {
		h, body, err := ParseHeader(msg)
		if err != nil {
			return
		}
		if !bytes.Equal(AppendHeader(nil, h), msg[:HeaderLen]) {
			t.Fatalf("header %+v does not re-encode to %x", h, msg[:HeaderLen])
		}
		switch h.Kind {
		case KindAnnounces:
			for len(body) > 0 {
				r, rest, err := ParseRecord(body)
				if err != nil {
					return
				}
				a := r.Announce()
				if enc := AppendRecord(nil, &a); !bytes.Equal(enc, body[:len(body)-len(rest)]) {
					t.Fatalf("record %+v re-encodes to %x, was %x", r, enc, body[:len(body)-len(rest)])
				}
				body = rest
			}
		case KindSyncChunk:
			var ts swarm.TorrentState
			for len(body) > 0 {
				rest, err := ParseTorrent(body, &ts)
				if err != nil {
					return
				}
				// Varints may be padded, so only the values round-trip.
				var again swarm.TorrentState
				// A reused ts keeps an empty, non-nil Peers after a torrent
				// with peers; that is the same state as nil.
				if _, err := ParseTorrent(swarm.AppendTorrentState(nil, &ts), &again); err != nil || !sameTorrent(again, ts) {
					t.Fatalf("torrent %+v round-trips to %+v, %v", ts, again, err)
				}
				body = rest
			}
		case KindSyncEnd:
			if e, err := ParseSyncEnd(body); err == nil {
				if again, err := ParseSyncEnd(AppendSyncEnd(nil, e)); err != nil || again != e {
					t.Fatalf("%+v round-trips to %+v, %v", e, again, err)
				}
			}
		}
	})
}

func sameTorrent(a, b swarm.TorrentState) bool {
	return a.InfoHash == b.InfoHash && a.Completed == b.Completed && a.Idle == b.Idle &&
		slices.Equal(a.Peers, b.Peers)
}
