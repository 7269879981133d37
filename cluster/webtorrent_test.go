package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/nats-io/nats-server/v2/server"

	"herald/cluster"
	"herald/internal/servetest"
	"herald/swarm"
	"herald/tracker"
	"herald/wstracker"
)

// webInstance is an instance whose WebSocket tracker spans the cluster.
type webInstance struct {
	*instance
	ws  *wstracker.Handler
	url string
}

func startWebInstance(t testing.TB, name string, urls []string, tweaks ...func(*cluster.Config)) *webInstance {
	t.Helper()
	return startWebInstanceWith(t, name, urls, wstracker.Config{}, tweaks...)
}

// startWebInstanceWith starts a web instance whose WebSocket tracker has
// the settings of wsCfg.
func startWebInstanceWith(t testing.TB, name string, urls []string, wsCfg wstracker.Config, tweaks ...func(*cluster.Config)) *webInstance {
	t.Helper()
	node := newNode(t, name, urls, tweaks...)
	tr, err := tracker.New(tracker.Config{Interval: wstracker.DefaultInterval})
	if err != nil {
		t.Fatal(err)
	}
	wsCfg.Tracker, wsCfg.Cluster, wsCfg.Logger = tr, node, testLogger(t)
	h, err := wstracker.NewHandler(wsCfg)
	if err != nil {
		t.Fatal(err)
	}
	node.ServeWebTorrent(h)
	srv, err := h.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	servetest.Serve(t, srv.Serve, 10*time.Second)
	return &webInstance{instance: runInstance(t, name, node), ws: h, url: "ws://" + srv.Addr().String() + "/announce"}
}

// startWebCluster starts n web instances on one NATS server and waits
// until each has heard from the others.
func startWebCluster(t *testing.T, n int) (*natsCluster, []*webInstance) {
	ns := startNATS(t, 1)
	ins := make([]*webInstance, n)
	for i := range ins {
		ins[i] = startWebInstance(t, string(rune('a'+i)), []string{ns.url(0)})
	}
	for _, in := range ins {
		waitFor(t, 10*time.Second, in.name+" connected", func() error {
			if !in.node.Stats().Connected {
				return errors.New("not yet")
			}
			return nil
		})
	}
	return ns, ins
}

// browser is a WebSocket client speaking the WebTorrent tracker protocol
// with ASCII ids, which JSON carries as they are.
type browser struct {
	t  testing.TB
	nc net.Conn
	id string
}

func dialBrowser(t testing.TB, url, peerID string) *browser {
	t.Helper()
	nc, _, _, err := ws.Dial(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &browser{t: t, nc: nc, id: peerID}
}

func (b *browser) send(format string, args ...any) {
	b.t.Helper()
	if err := wsutil.WriteClientText(b.nc, fmt.Appendf(nil, format, args...)); err != nil {
		b.t.Fatal(err)
	}
}

// recv reads the next message; a failure reason fails the test.
func (b *browser) recv() map[string]any {
	b.t.Helper()
	b.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	data, err := wsutil.ReadServerText(b.nc)
	if err != nil {
		b.t.Fatalf("%s: read: %v", b.id, err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		b.t.Fatalf("%s: message %q: %v", b.id, data, err)
	}
	if _, ok := m["failure reason"]; ok {
		b.t.Fatalf("%s: %s", b.id, data)
	}
	return m
}

// silent checks that nothing arrives within a while.
func (b *browser) silent() {
	b.t.Helper()
	b.nc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	data, err := wsutil.ReadServerText(b.nc)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		b.t.Fatalf("%s: expected no message, got %q, %v", b.id, data, err)
	}
}

// announce sends an announce of left bytes with offers (one offer id
// each), and reads its reply.
func (b *browser) announce(infoHash string, left int, extra string, offerIDs ...string) map[string]any {
	b.t.Helper()
	var offers []string
	for _, id := range offerIDs {
		offers = append(offers, fmt.Sprintf(`{"offer_id":%q,"offer":{"type":"offer","sdp":"v=0 from %s"}}`, id, b.id))
	}
	b.send(`{"action":"announce","info_hash":%q,"peer_id":%q,"left":%d,"numwant":10,"offers":[%s]%s}`,
		infoHash, b.id, left, strings.Join(offers, ","), extra)
	return b.recv()
}

func (b *browser) answer(infoHash, to, offerID string) {
	b.t.Helper()
	b.send(`{"action":"announce","info_hash":%q,"peer_id":%q,"to_peer_id":%q,"offer_id":%q,"answer":{"type":"answer","sdp":"v=0 from %s"}}`,
		infoHash, b.id, to, offerID, b.id)
}

// scrape returns complete, incomplete and downloaded of infoHash.
func (b *browser) scrape(infoHash string) [3]int {
	b.t.Helper()
	b.send(`{"action":"scrape","info_hash":%q}`, infoHash)
	f := b.recv()["files"].(map[string]any)[infoHash].(map[string]any)
	return [3]int{int(f["complete"].(float64)), int(f["incomplete"].(float64)), int(f["downloaded"].(float64))}
}

// counts waits until a scrape on every instance gives want.
func counts(t *testing.T, infoHash string, want [3]int, ins ...*webInstance) {
	t.Helper()
	for _, in := range ins {
		b := dialBrowser(t, in.url, "scraper-------------")
		servetest.WaitFor(t, 10*time.Second, func() error {
			if got := b.scrape(infoHash); got != want {
				time.Sleep(100 * time.Millisecond) // within the message rate
				return fmt.Errorf("%s: scrape %v, want %v", in.name, got, want)
			}
			return nil
		})
		b.nc.Close()
	}
}

const wsHash = "webtorrent-swarm-001"

// Issue 13 item 1: two browsers on different instances of a three-instance
// cluster meet. The offer goes to the seeder's instance alone, in one
// message; the answer comes back; scrapes and announce replies count the
// whole swarm everywhere; a closed connection and a stopped event take the
// peer out everywhere.
func TestWebTorrentSwarmAcrossInstances(t *testing.T) {
	ns, ins := startWebCluster(t, 3)
	a, b, c := ins[0], ins[1], ins[2]
	// Every message to one node, as a NATS client with the rights to see
	// them all would: the offer and the answer must be one each.
	direct, err := rawClient(t, ns.url(0)).SubscribeSync("herald.ws.node.>")
	if err != nil {
		t.Fatal(err)
	}
	seeder := dialBrowser(t, a.url, "seeder--------------")
	if r := seeder.announce(wsHash, 0, `,"event":"started"`); r["complete"] != 1.0 || r["incomplete"] != 0.0 {
		t.Fatalf("seeder's reply %v", r)
	}
	counts(t, wsHash, [3]int{1, 0, 0}, a, b, c)

	leecher := dialBrowser(t, b.url, "leecher-------------")
	r := leecher.announce(wsHash, 1000, `,"event":"started"`, "offer-1-------------")
	if r["complete"] != 1.0 || r["incomplete"] != 1.0 {
		t.Fatalf("leecher's reply %v: want the seeder on a counted", r)
	}
	offer := seeder.recv()
	if offer["peer_id"] != leecher.id || offer["offer_id"] != "offer-1-------------" || offer["info_hash"] != wsHash ||
		offer["offer"].(map[string]any)["sdp"] != "v=0 from "+leecher.id {
		t.Fatalf("seeder got %v", offer)
	}
	seeder.answer(wsHash, leecher.id, "offer-1-------------")
	answer := leecher.recv()
	if answer["peer_id"] != seeder.id || answer["offer_id"] != "offer-1-------------" ||
		answer["answer"].(map[string]any)["sdp"] != "v=0 from "+seeder.id {
		t.Fatalf("leecher got %v", answer)
	}
	// The same offer cannot be answered twice: a's connection forgot it.
	seeder.send(`{"action":"announce","info_hash":%q,"peer_id":%q,"to_peer_id":%q,"offer_id":"offer-1-------------","answer":{"type":"answer"}}`,
		wsHash, seeder.id, leecher.id)
	seeder.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if data, err := wsutil.ReadServerText(seeder.nc); err != nil || !strings.Contains(string(data), tracker.UnknownOffer.Text()) {
		t.Fatalf("second answer: %q %v, want the unknown-offer failure", data, err)
	}
	leecher.silent()

	sa, sb, sc := a.node.WebTorrentStats(), b.node.WebTorrentStats(), c.node.WebTorrentStats()
	if sb.OffersSent != 1 || sa.OffersIn != 1 || sc.OffersIn != 0 || sa.AnswersSent != 1 || sb.AnswersIn != 1 || sc.AnswersIn != 0 {
		t.Fatalf("relays: a %+v, b %+v, c %+v: want one offer b to a and one answer a to b, nothing to c", sa, sb, sc)
	}
	var kinds []cluster.Kind
	for {
		msg, err := direct.NextMsg(200 * time.Millisecond)
		if err != nil {
			break
		}
		if h, _, err := cluster.ParseHeader(msg.Data); err == nil && (h.Kind == cluster.KindWebOffer || h.Kind == cluster.KindWebAnswer) {
			kinds = append(kinds, h.Kind)
		}
	}
	if !slices.Equal(kinds, []cluster.Kind{cluster.KindWebOffer, cluster.KindWebAnswer}) {
		t.Fatalf("relays to single nodes: kinds %v, want one offer and one answer", kinds)
	}

	leecher.send(`{"action":"announce","info_hash":%q,"peer_id":%q,"left":0,"event":"completed"}`, wsHash, leecher.id)
	leecher.recv()
	counts(t, wsHash, [3]int{2, 0, 1}, a, b, c)

	leecher.nc.Close()
	counts(t, wsHash, [3]int{1, 0, 1}, a, b, c)
	seeder.send(`{"action":"announce","info_hash":%q,"peer_id":%q,"left":0,"event":"stopped"}`, wsHash, seeder.id)
	seeder.recv()
	counts(t, wsHash, [3]int{0, 0, 0}, a, b, c)
	for _, in := range ins {
		if s := in.node.WebTorrentStats(); s.OwnPeers != 0 || s.RemotePeers != 0 {
			t.Errorf("%s: %+v, want no peers left", in.name, s)
		}
	}
}

// An offer picks among the whole swarm: with one peer on each of three
// instances, an announce with two offers reaches both other peers.
func TestWebTorrentOffersReachEveryInstance(t *testing.T) {
	_, ins := startWebCluster(t, 3)
	peers := make([]*browser, 3)
	for i, in := range ins {
		peers[i] = dialBrowser(t, in.url, fmt.Sprintf("peer-%d--------------", i))
		peers[i].announce(wsHash, 1, "")
	}
	counts(t, wsHash, [3]int{0, 3, 0}, ins...)
	peers[0].announce(wsHash, 1, "", "offer-a-------------", "offer-b-------------")
	got := map[string]bool{}
	for _, p := range peers[1:] {
		o := p.recv()
		got[o["offer_id"].(string)] = true
		if o["peer_id"] != peers[0].id {
			t.Fatalf("%s got %v", p.id, o)
		}
		p.answer(wsHash, peers[0].id, o["offer_id"].(string))
	}
	if len(got) != 2 {
		t.Fatalf("offers received: %v, want both, one per peer", got)
	}
	for range 2 {
		if a := peers[0].recv(); !got[a["offer_id"].(string)] {
			t.Fatalf("answer %v", a)
		}
	}
}

// A browser that moves to another instance under its peer id (its old
// connection closed, the new one announcing at once) is one peer
// everywhere, and offers find it on its new instance, whichever of the two
// instances' records arrives first.
func TestWebTorrentPeerMovesBetweenInstances(t *testing.T) {
	_, ins := startWebCluster(t, 3)
	a, b, c := ins[0], ins[1], ins[2]
	mover := dialBrowser(t, a.url, "mover---------------")
	mover.announce(wsHash, 0, "")
	counts(t, wsHash, [3]int{1, 0, 0}, a, b, c)
	mover.nc.Close()
	mover = dialBrowser(t, b.url, "mover---------------")
	mover.announce(wsHash, 0, "")
	counts(t, wsHash, [3]int{1, 0, 0}, a, b, c)

	// Until c has the move, its offers go to a, which no longer has the
	// peer: a browser's next announce brings fresh offers.
	offerer := dialBrowser(t, c.url, "offerer-------------")
	servetest.WaitFor(t, 10*time.Second, func() error {
		offerer.announce(wsHash, 1, "", "offer-1-------------")
		mover.nc.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
		data, err := wsutil.ReadServerText(mover.nc)
		if err != nil {
			return fmt.Errorf("no offer on b: %v", err)
		}
		if !strings.Contains(string(data), `"peer_id":"`+offerer.id+`"`) {
			t.Fatalf("mover got %s", data)
		}
		return nil
	})
	counts(t, wsHash, [3]int{1, 1, 0}, a, b, c)
}

// A node that stops tells the others, who drop its peers at once; a node
// started later learns the peers there are.
func TestWebTorrentInstanceStopAndLateJoiner(t *testing.T) {
	ns, ins := startWebCluster(t, 2)
	a, b := ins[0], ins[1]
	dialBrowser(t, a.url, "on-a----------------").announce(wsHash, 0, "")
	dialBrowser(t, b.url, "on-b----------------").announce(wsHash, 1, "")
	counts(t, wsHash, [3]int{1, 1, 0}, a, b)

	late := startWebInstance(t, "late", []string{ns.url(0)})
	counts(t, wsHash, [3]int{1, 1, 0}, late)

	a.stop()
	counts(t, wsHash, [3]int{0, 1, 0}, b, late)
	if s := b.node.WebTorrentStats(); s.Expired != 0 || s.RemotePeers != 0 {
		t.Errorf("b: %+v, want a's peer gone with a's goodbye, before any expiry", s)
	}
}

// A node cut off from NATS (its server gone, its browsers still connected
// to it) is dropped by the others after three heartbeat periods, with its
// peers; once it is back, its next batch is out of sequence, and the
// others ask for its peers again.
func TestWebTorrentInstanceCutOff(t *testing.T) {
	ns := startNATS(t, 2)
	a := startWebInstance(t, "a", []string{ns.url(1)})
	b := startWebInstance(t, "b", []string{ns.url(0)})
	dialBrowser(t, a.url, "on-a----------------").announce(wsHash, 0, "")
	dialBrowser(t, b.url, "on-b----------------").announce(wsHash, 1, "")
	counts(t, wsHash, [3]int{1, 1, 0}, a, b)

	ns.stop(1)
	counts(t, wsHash, [3]int{0, 1, 0}, b)
	if s := b.node.WebTorrentStats(); s.Expired != 1 {
		t.Errorf("b: %+v, want a expired", s)
	}
	ns.start(1)
	ns.waitRoutes()
	counts(t, wsHash, [3]int{1, 1, 0}, a, b)
	if s := b.node.WebTorrentStats(); s.StatesReceived == 0 {
		t.Errorf("b: %+v, want a's peers back by a state", s)
	}
}

// Issue 13: nothing from the bus is trusted. Records of unknown flags,
// relays with an SDP that is not one JSON object, bodies of the wrong
// length are dropped and counted; an offer for a peer that is not there is
// counted undeliverable.
func TestWebTorrentMessagesValidated(t *testing.T) {
	ns, ins := startWebCluster(t, 1)
	a := ins[0]
	target := dialBrowser(t, a.url, "target--------------")
	target.announce(wsHash, 1, "")
	raw := rawClient(t, ns.url(0))
	subject := ns.webSubject(a.name)
	var h swarm.InfoHash
	copy(h[:], wsHash)
	var to, from swarm.PeerID
	copy(to[:], target.id)
	copy(from[:], "intruder------------")
	relay := func(sdp string) []byte {
		return cluster.AppendWebRelay(cluster.AppendHeader(nil, cluster.Header{Kind: cluster.KindWebOffer, Node: 77}),
			&cluster.WebRelay{InfoHash: h, From: from, To: to, SDP: []byte(sdp)})
	}
	malformedBefore := a.node.Stats().Malformed
	for _, msg := range [][]byte{
		relay(`{"type":"offer"},"action":"scrape"`), // two values: would inject fields
		relay(`"offer"`),
		relay(`{"type":"offer"`),
	} {
		raw.Publish(subject, msg)
	}
	batch := cluster.AppendHeader(nil, cluster.Header{Kind: cluster.KindWebPeers, Node: 77, Seq: 1})
	raw.Publish("herald.ws.peers", append(batch, 0x80)) // a short record
	bad := cluster.AppendWebPeer(batch, &cluster.WebPeer{InfoHash: h, PeerID: from})
	bad[cluster.HeaderLen] = 0x03 // left and seeder
	raw.Publish("herald.ws.peers", bad)
	raw.Publish(subject, relay(`{"type":"offer","sdp":"ok"}`)[:cluster.HeaderLen+79])
	raw.Flush()
	waitFor(t, 5*time.Second, "messages counted", func() error {
		if m, s := a.node.Stats().Malformed-malformedBefore, a.node.WebTorrentStats(); m != 3 || s.Undeliverable != 3 {
			return fmt.Errorf("%d malformed, %d undeliverable; want 3 and 3", m, s.Undeliverable)
		}
		return nil
	})
	target.silent()
	counts(t, wsHash, [3]int{0, 1, 0}, a)

	// A valid offer is delivered.
	raw.Publish(subject, relay(`{"type":"offer","sdp":"ok"}`))
	if o := target.recv(); o["peer_id"] != "intruder------------" {
		t.Fatalf("target got %v", o)
	}
}

// With a shared key, instances relay to each other as without, and an
// offer from a NATS client without the key is dropped and counted, not
// written to the browser.
func TestWebTorrentSharedKey(t *testing.T) {
	ns := startNATS(t, 1)
	keyFile := writeKey(t, strings.Repeat("k", 64))
	keyed := func(c *cluster.Config) { c.SharedKeyFile = keyFile }
	a := startWebInstance(t, "a", []string{ns.url(0)}, keyed)
	b := startWebInstance(t, "b", []string{ns.url(0)}, keyed)
	target := dialBrowser(t, a.url, "target--------------")
	target.announce(wsHash, 0, "")
	raw := rawClient(t, ns.url(0))
	subject := ns.webSubject(a.name)
	counts(t, wsHash, [3]int{1, 0, 0}, b)

	var h swarm.InfoHash
	copy(h[:], wsHash)
	var to swarm.PeerID
	copy(to[:], target.id)
	before := a.node.Stats().Unauthenticated
	raw.Publish(subject, cluster.AppendWebRelay(cluster.AppendHeader(nil, cluster.Header{Kind: cluster.KindWebOffer, Node: 77}),
		&cluster.WebRelay{InfoHash: h, To: to, SDP: []byte(`{"type":"offer"}`)}))
	waitFor(t, 5*time.Second, "the unkeyed offer counted", func() error {
		if n := a.node.Stats().Unauthenticated - before; n != 1 {
			return fmt.Errorf("%d unauthenticated", n)
		}
		return nil
	})
	target.silent()

	offerer := dialBrowser(t, b.url, "offerer-------------")
	offerer.announce(wsHash, 1, "", "offer-1-------------")
	if o := target.recv(); o["peer_id"] != offerer.id {
		t.Fatalf("target got %v", o)
	}
}

// The WebSocket tracker's limits bound the peers other instances report
// as they bound its own: with websocket.max_peers 1, b keeps one of a's two
// peers and counts the other refused (once per record or list it is in).
func TestWebTorrentRemotePeersBounded(t *testing.T) {
	ns := startNATS(t, 1)
	a := startWebInstance(t, "a", []string{ns.url(0)})
	b := startWebInstanceWith(t, "b", []string{ns.url(0)}, wstracker.Config{MaxPeers: 1})
	dialBrowser(t, a.url, "first---------------").announce(wsHash, 1, "")
	dialBrowser(t, a.url, "second--------------").announce(wsHash, 1, "")
	counts(t, wsHash, [3]int{0, 2, 0}, a)
	waitFor(t, 5*time.Second, "b refuses one of a's peers", func() error {
		if s := b.node.WebTorrentStats(); s.Refused == 0 || s.RemotePeers != 1 {
			return fmt.Errorf("b: %+v, want 1 remote peer kept and the other refused", s)
		}
		return nil
	})
	counts(t, wsHash, [3]int{0, 1, 0}, b)
	// Its own budget is apart: a browser of its own still gets in.
	dialBrowser(t, b.url, "own-----------------").announce(wsHash, 1, "")
	counts(t, wsHash, [3]int{0, 2, 0}, b)
}

// webSubject returns the subject of instance name's node, the one of its
// NATS subscriptions addressed to it alone, once it has subscribed.
func (c *natsCluster) webSubject(name string) string {
	c.t.Helper()
	var subject string
	waitFor(c.t, 5*time.Second, "the node subject of "+name, func() error {
		for _, srv := range c.servers {
			if srv == nil {
				continue
			}
			cz, err := srv.Connz(&server.ConnzOptions{Subscriptions: true})
			if err != nil {
				return err
			}
			for _, conn := range cz.Conns {
				for _, sub := range conn.Subs {
					if conn.Name == "herald "+name && strings.HasPrefix(sub, "herald.ws.node.") {
						subject = sub
						return nil
					}
				}
			}
		}
		return errors.New("not subscribed")
	})
	return subject
}
