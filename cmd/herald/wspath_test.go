package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// Issue 14 item 14: public WebTorrent trackers are published without a path
// (wss://tracker.example.org); an upgrade on "/" is answered like one on
// /announce, on the HTTP port and on listen.ws, while a plain GET / on the
// HTTP port keeps its 404 (or the configured redirect).
func TestWebSocketUpgradeOnBareURL(t *testing.T) {
	port, wsPort := freePort(t), freePort(t)
	for wsPort == port { // a port just released may come back
		wsPort = freePort(t)
	}
	h := startHerald(t, port, "-snapshot", "off", "-listen-ws", fmt.Sprintf("127.0.0.1:%d", wsPort))
	hash := strings.Repeat("h", 20)
	for i, url := range []string{
		"ws" + strings.TrimPrefix(h.URL, "http"),
		"ws" + strings.TrimPrefix(h.URL, "http") + "/",
		"ws" + strings.TrimPrefix(h.URL, "http") + "/announce",
		fmt.Sprintf("ws://127.0.0.1:%d", wsPort),
		fmt.Sprintf("ws://127.0.0.1:%d/announce", wsPort),
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, _, _, err := ws.Dial(ctx, url)
		cancel()
		if err != nil {
			t.Errorf("%s: %v", url, err)
			continue
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		wc := &wsConn{t: t, conn: c}
		wc.send(map[string]any{"action": "announce", "info_hash": hash, "peer_id": fmt.Sprintf("%020d", i), "numwant": 5, "left": 10, "event": "started", "offers": []any{}})
		if r := wc.read(); r["interval"] == nil || r["failure reason"] != nil {
			t.Errorf("%s: announce reply %v", url, r)
		}
		c.Close()
	}
	resp, err := http.Get(h.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("plain GET / on the HTTP port: %s, want 404", resp.Status)
	}
}

// Issue 14 item 2: a WebSocket connection upgraded on the HTTP port leaves
// the HTTP connection limit (the WebSocket limits bound it), so silent
// upgraded sockets cannot hold every HTTP slot.
func TestUpgradedConnectionsLeaveHTTPLimit(t *testing.T) {
	h := startHerald(t, freePort(t), "-snapshot", "off", "-http-max-connections", "2")
	for range 3 {
		// An upgraded connection leaves the HTTP limit just after its
		// handshake reply: the next dial may come first, and is retried.
		var c net.Conn
		var err error
		for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if c, _, _, err = ws.Dial(context.Background(), "ws"+strings.TrimPrefix(h.URL, "http")+"/announce"); err == nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	if _, fr := announceReply(t, h.URL, hashOf(1), 7000); fr != "" {
		t.Fatalf("HTTP announce with three WebSocket connections open: %q", fr)
	}
}

// Issue 14 item 6: WebSocket swarms have a memory budget of their own
// (websocket.max_peers), not the store's tracker.max_peers a second time:
// a full store leaves WebSocket announces alone, and the reverse.
func TestWebSocketSwarmsHaveTheirOwnBudget(t *testing.T) {
	h := startHerald(t, freePort(t), "-snapshot", "off", "-max-peers", "1", "-ws-max-peers", "2")
	if _, fr := announceReply(t, h.URL, hashOf(1), 7000); fr != "" {
		t.Fatalf("HTTP announce into an empty store: %q", fr)
	}
	var replies []string
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, _, _, err := ws.Dial(ctx, "ws"+strings.TrimPrefix(h.URL, "http")+"/announce")
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		wc := &wsConn{t: t, conn: c}
		wc.send(map[string]any{"action": "announce", "info_hash": fmt.Sprintf("%020d", i), "peer_id": fmt.Sprintf("%020d", i), "numwant": 5, "left": 10, "event": "started", "offers": []any{}})
		fr, _ := wc.read()["failure reason"].(string)
		replies = append(replies, fr)
	}
	if replies[0] != "" || replies[1] != "" || !strings.Contains(replies[2], "full") {
		t.Fatalf("WebSocket announces with the store full and websocket.max_peers 2: failures %q, want two served and the third refused as full", replies)
	}
}
