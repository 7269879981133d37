package cluster_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"herald/cluster"
	"herald/swarm"
)

// changeLog collects the changes a node applied.
type changeLog struct {
	mu  sync.Mutex
	got []cluster.Change
}

func (l *changeLog) apply(c cluster.Change) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, c)
	return nil
}

func (l *changeLog) changes() []cluster.Change {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]cluster.Change(nil), l.got...)
}

// runChanges runs in's admin changes until the test ends and waits until
// it can publish.
func runChanges(t *testing.T, in *instance) *changeLog {
	t.Helper()
	l := &changeLog{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.node.RunChanges(ctx, l.apply) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: RunChanges: %v", in.name, err)
		}
	})
	return l
}

// publishWhenConnected publishes c from in, retrying until its admin
// connection is up.
func publishWhenConnected(t *testing.T, in *instance, c cluster.Change) {
	t.Helper()
	waitFor(t, 5*time.Second, in.name+" publishes a change", func() error { return in.node.PublishChange(c) })
}

// Issue 15 item 3: a change published by one node reaches the others within
// a second, sealed with the shared key, and does not come back to its
// sender.
func TestChangesReachTheOtherNodes(t *testing.T) {
	keyed := func(c *cluster.Config) { c.SharedKeyFile = writeKey(t, strings.Repeat("k", 64)) }
	ns := startNATS(t, 2)
	a := startInstance(t, "a", []string{ns.url(0)}, keyed)
	b := startInstance(t, "b", []string{ns.url(1)}, keyed)
	logA, logB := runChanges(t, a), runChanges(t, b)
	changes := []cluster.Change{
		{Kind: cluster.ListAdd, InfoHashes: []swarm.InfoHash{hashOf("one"), hashOf("two")}},
		{Kind: cluster.KeyAdd, Key: strings.Repeat("Ab1", 10) + "zz"},
		{Kind: cluster.Ban, Prefix: netip.MustParsePrefix("198.51.100.0/24"), Expires: time.Now().Add(time.Hour).Truncate(time.Second)},
		{Kind: cluster.Unban, Prefix: netip.MustParsePrefix("2001:db8::/32")},
	}
	// Until b's interest has reached a's server, a change is lost: warm up
	// with one that is repeated until it arrives.
	warmUp := cluster.Change{Kind: cluster.Unban, Prefix: netip.MustParsePrefix("192.0.2.0/24")}
	waitFor(t, 5*time.Second, "a warm-up change on b", func() error {
		if err := a.node.PublishChange(warmUp); err != nil {
			return err
		}
		if len(logB.changes()) == 0 {
			return fmt.Errorf("none yet")
		}
		return nil
	})
	time.Sleep(100 * time.Millisecond) // repeats in flight land
	before := len(logB.changes())
	start := time.Now()
	for _, c := range changes {
		if err := a.node.PublishChange(c); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, time.Second, "every change on b", func() error {
		if n := len(logB.changes()) - before; n != len(changes) {
			return fmt.Errorf("%d of %d", n, len(changes))
		}
		return nil
	})
	t.Logf("%d changes from a reached b in %v", len(changes), time.Since(start).Round(time.Millisecond))
	for i, got := range logB.changes()[before:] {
		want := changes[i]
		got.Sent = time.Time{}
		if g, w := fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", want); g != w {
			t.Errorf("change %d: b applied %s, want %s", i, g, w)
		}
	}
	if n := len(logA.changes()); n != 0 {
		t.Errorf("a applied %d of its own changes", n)
	}
	if applied, rejected := b.node.ChangeCounts(); applied != uint64(before+len(changes)) || rejected != 0 {
		t.Errorf("b counts %d applied, %d rejected", applied, rejected)
	}
}

// Nothing on the bus is trusted: a NATS client without the shared key, a
// change that does not parse or does not check, or a replay of a sealed
// change after a minute is dropped and counted, never applied.
func TestChangesFromOutsidersAreDropped(t *testing.T) {
	keyed := func(c *cluster.Config) { c.SharedKeyFile = writeKey(t, strings.Repeat("k", 64)) }
	ns := startNATS(t, 1)
	a := startInstance(t, "a", []string{ns.url(0)}, keyed)
	logA := runChanges(t, a)
	publishWhenConnected(t, a, cluster.Change{Kind: cluster.Unban, Prefix: netip.MustParsePrefix("192.0.2.1/32")})
	raw := rawClient(t, ns.url(0))
	sent := time.Now().UTC().Format(time.RFC3339Nano)
	for _, msg := range []string{
		`{"kind":"ban","prefix":"0.0.0.0/0","expires":"2099-01-01T00:00:00Z","sent":"` + sent + `"}`, // no tag
		"garbage",
	} {
		raw.Publish("herald.admin", []byte(msg))
		raw.Publish("herald.admin", append([]byte(msg), make([]byte, 32)...)) // a tag, but not the key's
	}
	// Sealed with the key, as a node sent it two minutes ago: a replay.
	old := []byte(`{"kind":"unban","prefix":"192.0.2.0/24","sent":"` + time.Now().Add(-2*time.Minute).UTC().Format(time.RFC3339) + `"}`)
	tag := hmac.New(sha256.New, []byte(strings.Repeat("k", 64)))
	tag.Write([]byte("herald.admin\x00"))
	tag.Write(old)
	raw.Publish("herald.admin", tag.Sum(old))
	// A sealed change that does not check.
	bad := []byte(`{"kind":"unban","prefix":"192.0.2.1/24","sent":"` + sent + `"}`)
	tag.Reset()
	tag.Write([]byte("herald.admin\x00"))
	tag.Write(bad)
	raw.Publish("herald.admin", tag.Sum(bad))
	raw.Flush()
	waitFor(t, 5*time.Second, "the forgeries counted", func() error {
		if _, rejected := a.node.ChangeCounts(); rejected != 6 {
			return fmt.Errorf("%d rejected", rejected)
		}
		return nil
	})
	if got := logA.changes(); len(got) != 0 {
		t.Errorf("a applied %v", got)
	}
}

func TestParseChangeChecksEveryField(t *testing.T) {
	sent := `,"sent":"2026-01-01T00:00:00Z"`
	hash := `"` + strings.Repeat("ab", 20) + `"`
	good := []string{
		`{"kind":"list_add","info_hashes":[` + hash + `]` + sent + `}`,
		`{"kind":"list_remove","info_hashes":[` + hash + `,` + hash + `]}`,
		`{"kind":"key_add","key":"` + strings.Repeat("a", 32) + `"}`,
		`{"kind":"ban","prefix":"10.0.0.0/8","expires":"2099-01-01T00:00:00Z"}`,
		`{"kind":"unban","prefix":"2001:db8::/32"}`,
		`{"kind":"ban","prefix":"192.0.2.7/32","expires":"2099-01-01T00:00:00.123456789Z","reason":"rate_limited"}`,
		`{"kind":"ban","prefix":"2001:db8:1:2::/64","expires":"2099-01-01T00:00:00Z","reason":"bad_connection_id"}`,
	}
	for _, msg := range good {
		if _, err := cluster.ParseChange([]byte(msg)); err != nil {
			t.Errorf("%s: %v", msg, err)
		}
	}
	bad := []string{
		``, `null`, `[]`, `{}`,
		`{"kind":"drop_all"}`,
		`{"kind":"list_add"}`,
		`{"kind":"list_add","info_hashes":["abc"]}`,
		`{"kind":"list_add","info_hashes":[` + hash + `],"key":"` + strings.Repeat("a", 32) + `"}`,
		`{"kind":"list_add","info_hashes":[` + strings.Repeat(hash+",", cluster.MaxChangeHashes) + hash + `]}`,
		`{"kind":"key_add","key":"short"}`,
		`{"kind":"key_add","key":"` + strings.Repeat("a", 31) + `!"}`,
		`{"kind":"ban","prefix":"10.0.0.1/8","expires":"2099-01-01T00:00:00Z"}`,
		`{"kind":"ban","prefix":"10.0.0.0/8"}`,
		`{"kind":"unban","prefix":"10.0.0.0/8","expires":"2099-01-01T00:00:00Z"}`,
		`{"kind":"unban","prefix":"10.0.0.0/8","extra":1}`,
		`{"kind":"unban","prefix":"10.0.0.0/8"} {}`,
		// An earned ban is of one address (IPv4) or /64 (IPv6), for a
		// reason a client earns bans for; no other kind has a reason.
		`{"kind":"ban","prefix":"192.0.2.0/24","expires":"2099-01-01T00:00:00Z","reason":"rate_limited"}`,
		`{"kind":"ban","prefix":"2001:db8::/48","expires":"2099-01-01T00:00:00Z","reason":"rate_limited"}`,
		`{"kind":"ban","prefix":"2001:db8::1/128","expires":"2099-01-01T00:00:00Z","reason":"rate_limited"}`,
		`{"kind":"ban","prefix":"192.0.2.7/32","expires":"2099-01-01T00:00:00Z","reason":"manual"}`,
		`{"kind":"ban","prefix":"192.0.2.7/32","expires":"2099-01-01T00:00:00Z","reason":"flood"}`,
		`{"kind":"ban","prefix":"192.0.2.7/32","reason":"rate_limited"}`,
		`{"kind":"unban","prefix":"192.0.2.7/32","reason":"rate_limited"}`,
		`{"kind":"key_add","key":"` + strings.Repeat("a", 32) + `","reason":"rate_limited"}`,
	}
	for _, msg := range bad {
		if c, err := cluster.ParseChange([]byte(msg)); err == nil {
			t.Errorf("%.80s: parsed as %+v", msg, c)
		}
	}
}

// FuzzParseChange: whatever arrives on the bus either is refused or is a
// valid change that reads back the same after a round trip.
func FuzzParseChange(f *testing.F) {
	f.Add([]byte(`{"kind":"list_add","info_hashes":["` + strings.Repeat("ab", 20) + `"],"sent":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"kind":"key_remove","key":"` + strings.Repeat("Z9", 16) + `"}`))
	f.Add([]byte(`{"kind":"ban","prefix":"::ffff:10.0.0.0/104","expires":"2099-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"kind":"unban","prefix":"fe80::/10"}`))
	f.Add([]byte(`{"kind":"ban","prefix":"2001:db8:1:2::/64","expires":"2099-01-01T00:00:00.5Z","reason":"bad_connection_id","sent":"2026-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, msg []byte) {
		c, err := cluster.ParseChange(msg)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("parsed %+v fails Validate: %v", c, err)
		}
		again, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := cluster.ParseChange(again)
		if err != nil || fmt.Sprintf("%+v", c2) != fmt.Sprintf("%+v", c) {
			t.Fatalf("%s reads back as %+v, %v; want %+v", again, c2, err, c)
		}
	})
}
