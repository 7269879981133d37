package wstracker

import (
	"bytes"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws/wsutil"

	"herald/counters"
	"herald/internal/servetest"
)

// sdp is an offer of typical size: a browser's data-channel offer without
// trickled candidates is about 500 bytes to 1 KB.
var sdp = `{"type":"offer","sdp":"v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n` +
	`a=group:BUNDLE 0\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n` +
	`c=IN IP4 0.0.0.0\r\na=candidate:1 1 udp 2113937151 127.0.0.1 50000 typ host generation 0 network-cost 999\r\n` +
	`a=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdefghijklmn\r\na=ice-options:trickle\r\n` +
	`a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n` +
	`a=setup:actpass\r\na=mid:0\r\na=sctp-port:5000\r\na=max-message-size:262144\r\n"}`

func announceWithOffers(h, p [20]byte, n int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"action":"announce","info_hash":%s,"peer_id":%s,"left":1,"numwant":%d,"offers":[`, bin(h), bin(p), n)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"offer":%s,"offer_id":%s}`, sdp, bin(id(fmt.Sprintf("offer %014d", i))))
	}
	b.WriteString("]}")
	return b.Bytes()
}

func BenchmarkParseRequest(b *testing.B) {
	msg := announceWithOffers(hashA, peerA, 5)
	var r Request
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if err := ParseRequest(msg, 10, 64, &r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendOffer(b *testing.B) {
	var r Request
	if err := ParseRequest(announceWithOffers(hashA, peerA, 1), 10, 64, &r); err != nil {
		b.Fatal(err)
	}
	h, p := r.InfoHash, r.PeerID
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendOffer(buf[:0], &h, &p, &r.Offers[0])
	}
}

// BenchmarkOfferRelay measures offers relayed per second end to end over
// loopback: 4 senders announce with 5 offers each into a swarm of 100
// peers, and every offer is read by the peer it was relayed to. One
// iteration is one announce; the offers/s metric is the throughput.
func BenchmarkOfferRelay(b *testing.B) {
	const receivers, senders, perAnnounce = 100, 4, 5
	// Every client dials from loopback: the per-client cap must not apply.
	s := startServer(b, Config{MessageRate: 1e9, MessageBurst: 1 << 30, Unlimited: func(netip.Addr) bool { return true }})
	var received atomic.Int64
	var readers sync.WaitGroup
	for i := range receivers {
		c := dial(b, s)
		c.send(announce(hashA, id(fmt.Sprintf("-WW0100-recv-%07d", i)), `,"left":1`))
		c.recv()
		c.nc.SetReadDeadline(time.Time{}) // recv set one
		readers.Go(func() {
			for {
				if _, err := wsutil.ReadServerText(c.nc); err != nil {
					return
				}
				received.Add(1)
			}
		})
	}
	clients := make([]*client, senders)
	msgs := make([][]byte, senders)
	for i := range clients {
		clients[i] = dial(b, s)
		msgs[i] = announceWithOffers(hashA, id(fmt.Sprintf("-WW0100-send-%07d", i)), perAnnounce)
	}
	var next atomic.Int64
	b.ResetTimer()
	start := time.Now()
	for i, c := range clients {
		readers.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if err := wsutil.WriteClientText(c.nc, msgs[i]); err != nil {
					b.Error(err)
					return
				}
				// Skip offers relayed to this sender until its own reply.
				for {
					data, err := wsutil.ReadServerText(c.nc)
					if err != nil {
						b.Error(err)
						return
					}
					if bytes.Contains(data, []byte(`"interval"`)) {
						break
					}
					received.Add(1)
				}
			}
			// Offers to this sender keep coming while the others run.
			for {
				if _, err := wsutil.ReadServerText(c.nc); err != nil {
					return
				}
				received.Add(1)
			}
		})
	}
	want := int64(b.N) * perAnnounce
	for deadline := time.Now().Add(time.Minute); received.Load() < want && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if got := received.Load(); got < want {
		b.Fatalf("%d offers received, want %d; tracker relayed %d", got, want, event(s.handler, counters.OfferRelayed))
	}
	b.ReportMetric(float64(want)/elapsed.Seconds(), "offers/s")
	// The counter moves just after the write a receiver may already have read.
	servetest.WaitFor(b, 5*time.Second, func() error {
		if n := event(s.handler, counters.OfferRelayed); n < uint64(want) {
			return fmt.Errorf("%d offers relayed, want %d", n, want)
		}
		return nil
	})
}
