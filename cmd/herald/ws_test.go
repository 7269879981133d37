package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// Issue 9, wired: a WebTorrent client's announce over ws:// on the HTTP port
// is answered, and a second peer's offer reaches the first.
func TestWebSocketTrackerOnHTTPPort(t *testing.T) {
	h := startHerald(t, freePort(t), "-snapshot", "off")
	url := "ws" + strings.TrimPrefix(h.URL, "http") + "/announce"
	dial := func() *wsConn {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, _, _, err := ws.Dial(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		return &wsConn{t: t, conn: c}
	}
	hash := strings.Repeat("h", 20)
	a, b := dial(), dial()
	a.send(map[string]any{"action": "announce", "info_hash": hash, "peer_id": strings.Repeat("a", 20), "numwant": 5, "left": 10, "event": "started", "offers": []any{}})
	if r := a.read(); r["interval"] == nil || r["failure reason"] != nil {
		t.Fatalf("announce reply %v", r)
	}
	b.send(map[string]any{"action": "announce", "info_hash": hash, "peer_id": strings.Repeat("b", 20), "numwant": 5, "left": 10, "event": "started",
		"offers": []any{map[string]any{"offer_id": strings.Repeat("o", 20), "offer": map[string]any{"type": "offer", "sdp": "v=0"}}}})
	b.read()
	if r := a.read(); r["offer_id"] != strings.Repeat("o", 20) || r["peer_id"] != strings.Repeat("b", 20) {
		t.Fatalf("the first peer got %v, want b's offer", r)
	}
}

type wsConn struct {
	t    *testing.T
	conn interface {
		Read([]byte) (int, error)
		Write([]byte) (int, error)
	}
}

func (c *wsConn) send(msg map[string]any) {
	b, _ := json.Marshal(msg)
	if err := wsutil.WriteClientText(c.conn, b); err != nil {
		c.t.Fatal(err)
	}
}

func (c *wsConn) read() map[string]any {
	b, err := wsutil.ReadServerText(c.conn)
	if err != nil {
		c.t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatalf("%q: %v", b, err)
	}
	return m
}
