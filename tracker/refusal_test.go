package tracker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"herald/access"
	"herald/bans"
	"herald/httptracker"
	"herald/internal/servetest"
	"herald/swarm"
	"herald/tracker"
	"herald/udptracker"
	"herald/wstracker"
)

// Issue 16: a refusal reads the same over UDP, HTTP and WebSocket. For
// every reason a client can provoke, each protocol that can give it runs
// against a real server of its frontend, and the client reads the
// tracker's one text for the reason. Malformed is the exception by
// design: its text says what is wrong in that protocol's own syntax.
func TestRefusalReadsTheSameOverEveryProtocolIssue16(t *testing.T) {
	hashA, hashB := swarm.InfoHash([]byte("aaaaaaaaaaaaaaaaaaaa")), swarm.InfoHash([]byte("bbbbbbbbbbbbbbbbbbbb"))
	peer1, peer2 := swarm.PeerID([]byte("-HT0001-111111111111")), swarm.PeerID([]byte("-HT0001-222222222222"))
	// fill announces what a refusal needs in place first, and must pass.
	fill := func(t *testing.T, c client, a announce) {
		t.Helper()
		if text := c.announce(t, a); text != "" {
			t.Fatalf("setup announce %+v refused: %q", a, text)
		}
	}
	all := []string{"udp", "http", "ws"}
	rows := []struct {
		reason    tracker.Reason
		protocols []string
		limits    limits
		run       func(t *testing.T, c client, e *env) string
		texts     map[string]string // the texts of Malformed
	}{
		{tracker.NotAllowed, all, limits{}, func(t *testing.T, c client, e *env) string {
			return c.announce(t, announce{hash: e.refusedHash, peer: peer1, port: 1001})
		}, nil},
		{tracker.RateLimited, all, limits{}, func(t *testing.T, c client, e *env) string {
			e.limited.Store(true)
			return c.announce(t, announce{hash: hashA, peer: peer1, port: 1001})
		}, nil},
		{tracker.Banned, all, limits{}, func(t *testing.T, c client, e *env) string {
			fill(t, c, announce{hash: hashA, peer: peer1, port: 1001})
			e.bans.Ban(bans.Ban{Prefix: netip.MustParsePrefix("127.0.0.0/8"), Expires: time.Now().Add(time.Hour), Reason: bans.ReasonManual})
			return c.announce(t, announce{hash: hashA, peer: peer1, port: 1001})
		}, nil},
		{tracker.TorrentLimit, all, limits{torrents: 1}, func(t *testing.T, c client, e *env) string {
			fill(t, c, announce{hash: hashA, peer: peer1, port: 1001})
			return c.announce(t, announce{hash: hashB, peer: peer1, port: 1001})
		}, nil},
		{tracker.PeerLimit, all, limits{peers: 1}, func(t *testing.T, c client, e *env) string {
			fill(t, c, announce{hash: hashA, peer: peer1, port: 1001})
			return c.announce(t, announce{hash: hashA, peer: peer2, port: 1002})
		}, nil},
		{tracker.BadAddress, []string{"udp", "http"}, limits{}, func(t *testing.T, c client, e *env) string {
			return c.announce(t, announce{hash: hashA, peer: peer1, port: 1001, ip: netip.MustParseAddr("239.1.2.3")})
		}, nil},
		{tracker.Malformed, all, limits{}, func(t *testing.T, c client, e *env) string {
			return c.malformed(t)
		}, map[string]string{
			"udp":  "announce shorter than 98 bytes",
			"http": "Your client forgot to send your torrent's info_hash. Please upgrade your client.",
			"ws":   "invalid JSON",
		}},
		{tracker.UnknownKey, all, limits{keys: true}, func(t *testing.T, c client, e *env) string {
			return c.announce(t, announce{hash: hashA, peer: peer1, port: 1001})
		}, nil},
		{tracker.BadConnectionID, []string{"udp"}, limits{}, func(t *testing.T, c client, e *env) string {
			return c.(*udpClient).announceWithID(t, announce{hash: hashA, peer: peer1, port: 1001}, c.(*udpClient).id^1)
		}, nil},
		{tracker.SwarmsPerConn, []string{"ws"}, limits{swarmsPerConn: 1}, func(t *testing.T, c client, e *env) string {
			fill(t, c, announce{hash: hashA, peer: peer1})
			return c.announce(t, announce{hash: hashB, peer: peer1})
		}, nil},
		{tracker.PeerIDInUse, []string{"ws"}, limits{}, func(t *testing.T, c client, e *env) string {
			fill(t, c, announce{hash: hashA, peer: peer1})
			return c.(*wsClient).another(t).announce(t, announce{hash: hashA, peer: peer1})
		}, nil},
		{tracker.UnknownOffer, []string{"ws"}, limits{}, func(t *testing.T, c client, e *env) string {
			a := announce{hash: hashA, peer: peer1}
			return c.(*wsClient).exchange(t, a.ws(`,"to_peer_id":"`+string(peer2[:])+`","offer_id":"ffffffffffffffffffff","answer":{"type":"answer","sdp":"x"}`))
		}, nil},
	}
	// Reasons no client can provoke from outside: Internal is an error the
	// store does not document (TestAsClientError maps it), and OffererGone
	// needs the offerer to leave between relaying an offer and its answer
	// (the wstracker tests time that); UnknownClient needs a trusted proxy
	// in front (httptracker's TestProxyHeaderAndUnknownClient).
	untestable := map[tracker.Reason]bool{tracker.Internal: true, tracker.OffererGone: true, tracker.UnknownClient: true}
	covered := map[tracker.Reason]bool{}
	for _, row := range rows {
		covered[row.reason] = true
		for _, proto := range row.protocols {
			t.Run(row.reason.Label()+"/"+proto, func(t *testing.T) {
				e := &env{refusedHash: swarm.InfoHash([]byte("rrrrrrrrrrrrrrrrrrrr"))}
				c := start(t, proto, e, row.limits)
				want := row.reason.Text()
				if row.texts != nil {
					want = row.texts[proto]
				}
				if got := row.run(t, c, e); got != want {
					t.Fatalf("%s over %s: client reads %q, want %q", row.reason.Label(), proto, got, want)
				}
			})
		}
	}
	for r := range tracker.Reason(tracker.NumReasons) {
		if !covered[r] && !untestable[r] {
			t.Errorf("reason %s has no row", r.Label())
		}
	}
}

// env is what a row's servers share with its run.
type env struct {
	refusedHash swarm.InfoHash // the access list refuses it
	limited     atomic.Bool    // once set, the rate limit refuses everyone
	bans        *bans.Table
}

// limits are the store's (HTTP, UDP) or the WebSocket swarms' bounds;
// with keys, the tracker lists one key and the client sends another in
// its announce URL's path.
type limits struct {
	torrents, peers, swarmsPerConn int
	keys                           bool
}

// wrongKey is the key a client sends in its path with limits.keys.
const wrongKey = "/NotTheKeyTheTrackerLists01234567"

// announce is what a client announces; ip is the address it states.
type announce struct {
	hash swarm.InfoHash
	peer swarm.PeerID
	port uint16
	ip   netip.Addr
}

// client announces over one protocol and returns the refusal text it
// reads, "" for an accepted announce.
type client interface {
	announce(t *testing.T, a announce) string
	malformed(t *testing.T) string
}

func start(t *testing.T, proto string, e *env, lim limits) client {
	t.Helper()
	store, err := swarm.New(swarm.Config{MaxTorrents: lim.torrents, MaxPeers: lim.peers})
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	if e.bans, err = bans.New(bans.Config{Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	rules := tracker.Config{
		Bans:         e.bans,
		Store:        store,
		Allowed:      func(h swarm.InfoHash) bool { return h != e.refusedHash },
		Admit:        func(netip.Addr, time.Time) bool { return !e.limited.Load() },
		AllowIPField: true,
		Logger:       quiet,
	}
	if proto == "ws" {
		rules.Interval = wstracker.DefaultInterval
	}
	prefix := ""
	if lim.keys {
		path := filepath.Join(t.TempDir(), "keys")
		if err := os.WriteFile(path, []byte("TheOneKeyTheTrackerLists01234567\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if rules.Keys, err = access.OpenKeys(path, quiet); err != nil {
			t.Fatal(err)
		}
		prefix = wrongKey
	}
	core, err := tracker.New(rules)
	if err != nil {
		t.Fatal(err)
	}
	switch proto {
	case "udp":
		s, err := udptracker.Listen("127.0.0.1:0", udptracker.Config{Tracker: core, Sockets: 1, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		servetest.Serve(t, s.Serve, 5*time.Second)
		c := dialUDP(t, s.Addr())
		c.urlData = []byte(prefix + "/announce")
		return c
	case "http":
		s, err := httptracker.Listen("127.0.0.1:0", httptracker.Config{Tracker: core, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		servetest.Serve(t, s.Serve, 10*time.Second)
		return &httpClient{base: "http://" + s.Addr().String() + prefix}
	}
	h, err := wstracker.NewHandler(wstracker.Config{
		Tracker: core, MaxTorrents: lim.torrents, MaxPeers: lim.peers, MaxSwarmsPerConn: lim.swarmsPerConn, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := h.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	servetest.Serve(t, s.Serve, 5*time.Second)
	return dialWS(t, s.Addr(), prefix)
}

type udpClient struct {
	conn    *net.UDPConn
	id      uint64
	urlData []byte // sent as BEP 41 URL data
}

func dialUDP(t *testing.T, server netip.AddrPort) *udpClient {
	t.Helper()
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(server))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &udpClient{conn: conn}
	resp, err := udptracker.ParseConnectResponse(c.exchange(t, udptracker.AppendConnectRequest(nil, udptracker.ConnectRequest{TransactionID: 1})))
	if err != nil {
		t.Fatal(err)
	}
	c.id = resp.ConnectionID
	return c
}

func (c *udpClient) exchange(t *testing.T, req []byte) []byte {
	t.Helper()
	if _, err := c.conn.Write(req); err != nil {
		t.Fatal(err)
	}
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2048)
	n, err := c.conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

func (c *udpClient) request(a announce, id uint64) []byte {
	return udptracker.AppendAnnounceRequest(nil, &udptracker.AnnounceRequest{
		ConnectionID: id, TransactionID: 2, InfoHash: a.hash, PeerID: a.peer, Left: 1, NumWant: -1, Port: a.port, IP: a.ip,
		URLData: c.urlData,
	})
}

func (c *udpClient) announceWithID(t *testing.T, a announce, id uint64) string {
	reply := c.exchange(t, c.request(a, id))
	if e, err := udptracker.ParseErrorResponse(reply); err == nil {
		return e.Message
	}
	var r udptracker.AnnounceResponse
	if err := udptracker.ParseAnnounceResponse(reply, &r); err != nil {
		t.Fatalf("reply %x: %v", reply, err)
	}
	return ""
}

func (c *udpClient) announce(t *testing.T, a announce) string { return c.announceWithID(t, a, c.id) }

func (c *udpClient) malformed(t *testing.T) string {
	reply := c.exchange(t, c.request(announce{}, c.id)[:97])
	e, err := udptracker.ParseErrorResponse(reply)
	if err != nil {
		t.Fatalf("reply %x: %v", reply, err)
	}
	return e.Message
}

type httpClient struct{ base string }

func (c *httpClient) get(t *testing.T, query string) string {
	t.Helper()
	resp, err := http.Get(c.base + "/announce?" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, body %q, %v", resp.StatusCode, body, err)
	}
	// A failure is "d14:failure reason<length>:<text>e" (BEP 3).
	rest, ok := strings.CutPrefix(string(body), "d14:failure reason")
	if !ok {
		return ""
	}
	n, text, _ := strings.Cut(rest, ":")
	length, err := strconv.Atoi(n)
	if err != nil || len(text) != length+1 {
		t.Fatalf("failure %q does not decode", body)
	}
	return text[:length]
}

func (c *httpClient) announce(t *testing.T, a announce) string {
	q := fmt.Sprintf("info_hash=%s&peer_id=%s&port=%d&left=1", a.hash[:], a.peer[:], a.port)
	if a.ip.IsValid() {
		q += "&ip=" + a.ip.String()
	}
	return c.get(t, q)
}

func (c *httpClient) malformed(t *testing.T) string { return c.get(t, "port=1") }

type wsClient struct {
	nc     net.Conn
	server netip.AddrPort
	prefix string // of the path, before /announce
}

func dialWS(t *testing.T, server netip.AddrPort, prefix string) *wsClient {
	t.Helper()
	nc, _, _, err := ws.Dial(context.Background(), "ws://"+server.String()+prefix+"/announce")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &wsClient{nc: nc, server: server, prefix: prefix}
}

// another is a second connection to the same server.
func (c *wsClient) another(t *testing.T) *wsClient { return dialWS(t, c.server, c.prefix) }

// exchange sends msg and returns the failure reason of the reply.
func (c *wsClient) exchange(t *testing.T, msg string) string {
	t.Helper()
	if err := wsutil.WriteClientText(c.nc, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	data, err := wsutil.ReadServerText(c.nc)
	if err != nil {
		t.Fatal(err)
	}
	var reply struct {
		Failure string `json:"failure reason"`
	}
	if err := json.Unmarshal(data, &reply); err != nil {
		t.Fatalf("reply %q: %v", data, err)
	}
	return reply.Failure
}

// ws is the announce as a WebTorrent client sends it (its ids are ASCII,
// so each byte is its own character), with extra fields appended.
func (a announce) ws(extra string) string {
	return `{"action":"announce","info_hash":"` + string(a.hash[:]) + `","peer_id":"` + string(a.peer[:]) + `","left":1` + extra + `}`
}

func (c *wsClient) announce(t *testing.T, a announce) string { return c.exchange(t, a.ws("")) }

func (c *wsClient) malformed(t *testing.T) string { return c.exchange(t, `{"action":"announce"`) }
