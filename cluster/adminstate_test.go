package cluster

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"herald/access"
)

// A full message of a state stream, of the longest entries of each kind,
// fits the smallest NATS max_payload in use (64 KiB) with its tag.
func TestStatePartsFitTheSmallestPayload(t *testing.T) {
	var k access.Key
	copy(k[:], strings.Repeat("Zz9", 11))
	long := stateBan{Prefix: netip.MustParsePrefix("ffff:ffff:ffff:ffff::/64"), Expires: time.Date(2026, 12, 7, 16, 0, 0, 123456789, time.UTC), Reason: "bad_connection_id"}
	parts := map[string]statePart{
		"info hashes": {Seq: 2, InfoHashes: make([]string, MaxStateEntries)},
		"keys":        {Seq: 2, Keys: make([]access.Key, MaxStateEntries)},
		"bans":        {Seq: 2, Bans: make([]stateBan, MaxStateEntries)},
	}
	for i := range MaxStateEntries {
		parts["info hashes"].InfoHashes[i] = strings.Repeat("ab", 20)
		parts["keys"].Keys[i] = k
		parts["bans"].Bans[i] = long
	}
	for what, p := range parts {
		p.Seq = 1 << 31
		msg, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(msg)+tagLen > 60<<10 {
			t.Errorf("%d %s: %d bytes, over 60 KiB", MaxStateEntries, what, len(msg)+tagLen)
		}
		if _, err := parseStatePart(msg); err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
}

func TestParseStatePartChecksEveryEntry(t *testing.T) {
	hash := `"` + strings.Repeat("ab", 20) + `"`
	key := `"` + strings.Repeat("k", 32) + `"`
	for _, msg := range []string{
		`{"seq":1,"head":{}}`,
		`{"seq":1,"head":{"list_mode":"whitelist","list_changed":"2026-12-07T16:00:00Z","list_len":3,"has_keys":true,"keys_len":2,"bans_len":1}}`,
		`{"seq":2,"info_hashes":[` + hash + `,` + hash + `]}`,
		`{"seq":3,"keys":[` + key + `]}`,
		`{"seq":4,"bans":[{"prefix":"10.0.0.0/8","expires":"2099-01-01T00:00:00Z"},{"prefix":"192.0.2.7/32","expires":"2099-01-01T00:00:00Z","reason":"rate_limited"}]}`,
	} {
		if _, err := parseStatePart([]byte(msg)); err != nil {
			t.Errorf("%s: %v", msg, err)
		}
	}
	for _, msg := range []string{
		``, `{}`, `{"seq":0,"head":{}}`, `{"seq":2,"head":{}}`, `{"seq":1}`, `{"seq":1,"head":{},"keys":[` + key + `]}`,
		`{"seq":2,"info_hashes":[` + hash + `],"keys":[` + key + `]}`,
		`{"seq":1,"head":{"list_mode":"greylist"}}`,
		`{"seq":1,"head":{"list_len":3}}`,
		`{"seq":1,"head":{"keys_len":3}}`,
		`{"seq":1,"head":{"list_mode":"whitelist","list_len":-1}}`,
		`{"seq":1,"head":{"bans_len":1048577}}`,
		`{"seq":2,"info_hashes":["abc"]}`,
		`{"seq":2,"info_hashes":[` + strings.Repeat(hash+",", MaxStateEntries) + hash + `]}`,
		`{"seq":2,"keys":["short"]}`,
		`{"seq":2,"bans":[{"prefix":"10.0.0.1/8","expires":"2099-01-01T00:00:00Z"}]}`,
		`{"seq":2,"bans":[{"prefix":"10.0.0.0/8"}]}`,
		`{"seq":2,"bans":[{"prefix":"10.0.0.0/8","expires":"2099-01-01T00:00:00Z","reason":"rate_limited"}]}`,
		`{"seq":2,"bans":[{"prefix":"10.0.0.0/8","expires":"2099-01-01T00:00:00Z","extra":1}]}`,
		`{"seq":2,"keys":[` + key + `]} {}`,
	} {
		if p, err := parseStatePart([]byte(msg)); err == nil {
			t.Errorf("%.80s: parsed as %+v", msg, p)
		}
	}
}

// FuzzParseStatePart: whatever arrives in a state stream is refused, or is
// one part within bounds that reads back the same after a round trip; and
// a request for the state (the other message on <prefix>.admin.state)
// reads as one node name or is refused.
func FuzzParseStatePart(f *testing.F) {
	f.Add([]byte(`{"node":"tracker-2"}`))
	f.Add([]byte(`{"seq":1,"head":{"list_mode":"blacklist","list_changed":"2026-12-07T16:00:00Z","list_len":1,"has_keys":true,"keys_len":1,"bans_len":1}}`))
	f.Add([]byte(`{"seq":2,"info_hashes":["` + strings.Repeat("0f", 20) + `"]}`))
	f.Add([]byte(`{"seq":3,"keys":["` + strings.Repeat("Ab9", 10) + `zz"]}`))
	f.Add([]byte(`{"seq":4,"bans":[{"prefix":"2001:db8:1:2::/64","expires":"2099-01-01T00:00:00.5Z","reason":"bad_connection_id"}]}`))
	f.Fuzz(func(t *testing.T, msg []byte) {
		var req stateRequest
		if err := decodeStrict(msg, &req); err == nil {
			again, _ := json.Marshal(req)
			var req2 stateRequest
			if err := decodeStrict(again, &req2); err != nil || req2 != req {
				t.Fatalf("request %s reads back as %+v, %v", again, req2, err)
			}
		}
		p, err := parseStatePart(msg)
		if err != nil {
			return
		}
		if n := len(p.hashes) + len(p.Keys) + len(p.Bans); n > MaxStateEntries || len(p.hashes) != len(p.InfoHashes) {
			t.Fatalf("%d entries, %d hashes of %d", n, len(p.hashes), len(p.InfoHashes))
		}
		again, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		p2, err := parseStatePart(again)
		if err != nil || fmt.Sprintf("%+v", p2.Head) != fmt.Sprintf("%+v", p.Head) || fmt.Sprint(p2.hashes, p2.Keys, p2.Bans) != fmt.Sprint(p.hashes, p.Keys, p.Bans) {
			t.Fatalf("%s reads back as %+v, %v; want %+v", again, p2, err, p)
		}
	})
}
