package cluster

import (
	"bytes"
	"errors"
	"testing"

	"herald/swarm"
)

func TestWebPeerRoundTrip(t *testing.T) {
	h, id := swarm.InfoHash{0: 1, 19: 2}, swarm.PeerID{0: 3, 19: 4}
	for _, p := range []WebPeer{
		{InfoHash: h, PeerID: id},
		{InfoHash: h, PeerID: id, Seeder: true},
		{InfoHash: h, PeerID: id, Seeder: true, Completed: true},
		{InfoHash: h, PeerID: id, Left: true},
	} {
		b := AppendWebPeer(nil, &p)
		if len(b) != WebPeerLen {
			t.Fatalf("%+v: %d bytes, want %d", p, len(b), WebPeerLen)
		}
		got, rest, err := ParseWebPeer(b)
		if err != nil || got != p || len(rest) != 0 {
			t.Fatalf("%+v: parsed %+v, %d left, %v", p, got, len(rest), err)
		}
	}
	for _, tc := range []struct {
		flags byte
		err   error
	}{
		{0x08, ErrMalformed}, // unknown bit
		{0x03, ErrMalformed}, // left and seeder
		{0x04, ErrMalformed}, // completed leecher
		{0x06, ErrMalformed}, // left and completed
	} {
		b := AppendWebPeer(nil, &WebPeer{InfoHash: h, PeerID: id})
		b[0] = tc.flags
		if _, _, err := ParseWebPeer(b); !errors.Is(err, tc.err) {
			t.Errorf("flags %#x: %v, want %v", tc.flags, err, tc.err)
		}
	}
	if _, _, err := ParseWebPeer(make([]byte, WebPeerLen-1)); !errors.Is(err, ErrShort) {
		t.Errorf("short record: %v", err)
	}
}

func TestWebRelayBounds(t *testing.T) {
	r := WebRelay{OfferID: [20]byte{5}, SDP: []byte(`{"type":"offer"}`)}
	got, err := ParseWebRelay(AppendWebRelay(nil, &r))
	if err != nil || got.OfferID != r.OfferID || !bytes.Equal(got.SDP, r.SDP) {
		t.Fatalf("parsed %+v, %v", got, err)
	}
	if _, err := ParseWebRelay(AppendWebRelay(nil, &WebRelay{})); !errors.Is(err, ErrShort) {
		t.Errorf("relay without SDP: %v, want ErrShort", err)
	}
	big := WebRelay{SDP: make([]byte, MaxRelaySDP+1)}
	if _, err := ParseWebRelay(AppendWebRelay(nil, &big)); !errors.Is(err, ErrMalformed) {
		t.Errorf("SDP over MaxRelaySDP: %v, want ErrMalformed", err)
	}
}

// FuzzParseWebTorrent feeds any bytes to the parsers of the WebTorrent
// messages: none may panic, and whatever parses re-encodes to the same
// bytes.
func FuzzParseWebTorrent(f *testing.F) {
	p := WebPeer{InfoHash: swarm.InfoHash{1}, PeerID: swarm.PeerID{2}, Seeder: true, Completed: true}
	left := WebPeer{InfoHash: swarm.InfoHash{1}, PeerID: swarm.PeerID{2}, Left: true}
	f.Add(AppendWebPeer(AppendWebPeer(AppendHeader(nil, Header{Kind: KindWebPeers, Node: 1, Seq: 1}), &p), &left))
	f.Add(AppendHeader(nil, Header{Kind: KindWebPeers, Node: 1, Seq: 2})) // heartbeat
	f.Add(AppendHeader(nil, Header{Kind: KindWebPeersRequest, Node: 2}))
	f.Add(AppendWebPeer(AppendWebPeersState(AppendHeader(nil, Header{Kind: KindWebPeersState, Node: 3, Seq: 1}),
		WebPeersState{AsOf: 7, Last: true}), &WebPeer{InfoHash: swarm.InfoHash{3}}))
	f.Add(AppendWebRelay(AppendHeader(nil, Header{Kind: KindWebOffer, Node: 4}),
		&WebRelay{OfferID: [20]byte{9}, SDP: []byte(`{"type":"offer","sdp":"v=0"}`)}))
	f.Add(AppendWebRelay(AppendHeader(nil, Header{Kind: KindWebAnswer, Node: 4}),
		&WebRelay{SDP: []byte(`{"type":"answer"}`)}))
	f.Fuzz(func(t *testing.T, msg []byte) {
		h, body, err := ParseHeader(msg)
		if err != nil {
			return
		}
		records := func(b []byte) {
			for len(b) > 0 {
				p, rest, err := ParseWebPeer(b)
				if err != nil {
					return
				}
				if enc := AppendWebPeer(nil, &p); !bytes.Equal(enc, b[:WebPeerLen]) {
					t.Fatalf("record %+v re-encodes to %x, was %x", p, enc, b[:WebPeerLen])
				}
				b = rest
			}
		}
		switch h.Kind {
		case KindWebPeers:
			records(body)
		case KindWebPeersState:
			st, recs, err := ParseWebPeersState(body)
			if err != nil {
				return
			}
			if enc := AppendWebPeersState(nil, st); !bytes.Equal(enc, body[:webStateHeadLen]) {
				t.Fatalf("state head %+v re-encodes to %x, was %x", st, enc, body[:webStateHeadLen])
			}
			records(recs)
		case KindWebOffer, KindWebAnswer:
			r, err := ParseWebRelay(body)
			if err != nil {
				return
			}
			if len(r.SDP) == 0 || len(r.SDP) > MaxRelaySDP {
				t.Fatalf("relay with an SDP of %d bytes parsed", len(r.SDP))
			}
			if enc := AppendWebRelay(nil, &r); !bytes.Equal(enc, body) {
				t.Fatalf("relay %+v re-encodes to %x, was %x", r, enc, body)
			}
		}
	})
}
