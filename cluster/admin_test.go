package cluster_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"herald/bans"
	"herald/cluster"
	"herald/swarm"
)

// changeLog is a node's admin side for the tests (cluster.Admin): it
// collects the changes and states a node applied, and hands out state.
type changeLog struct {
	mu     sync.Mutex
	got    []cluster.Change
	states []cluster.State
	state  cluster.State // what State returns
}

func (l *changeLog) Apply(c cluster.Change) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, c)
	return nil
}

func (l *changeLog) State() cluster.State {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state
}

func (l *changeLog) ApplyState(st cluster.State) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.states = append(l.states, st)
	return nil
}

func (l *changeLog) applied() []cluster.State {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]cluster.State(nil), l.states...)
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
	return runAdmin(t, in, &changeLog{})
}

// runAdmin is runChanges with l, which may hold a state to hand out.
func runAdmin(t *testing.T, in *instance, l *changeLog) *changeLog {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.node.RunChanges(ctx, l) }()
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

// bigState is an admin state of n info hashes, keys and bans, with bans
// of both kinds: enough messages of MaxStateEntries for acknowledgements.
func bigState(n int, changed time.Time) cluster.State {
	st := cluster.State{ListMode: "whitelist", ListChanged: changed, HasKeys: true, KeysChanged: changed.Add(-time.Hour)}
	for i := range n {
		st.List = append(st.List, hashOf(fmt.Sprint("state", changed.UnixNano(), i)))
	}
	for i := range n / 10 {
		var k [32]byte
		copy(k[:], fmt.Sprintf("%032d", i))
		st.Keys = append(st.Keys, k)
	}
	for i := range n / 20 {
		b := bans.Ban{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 32), Expires: changed.Add(time.Hour), Reason: bans.ReasonRateLimited}
		if i%2 == 0 {
			b.Prefix, b.Reason = netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0xd, 0xb8, byte(i >> 8), byte(i)}), 48), bans.ReasonManual
		}
		st.Bans = append(st.Bans, b)
	}
	return st
}

func sameState(got, want cluster.State) error {
	if g, w := fmt.Sprint(got.ListMode, got.ListChanged.UTC(), got.HasKeys, got.KeysChanged.UTC(), len(got.List), len(got.Keys), len(got.Bans)),
		fmt.Sprint(want.ListMode, want.ListChanged.UTC(), want.HasKeys, want.KeysChanged.UTC(), len(want.List), len(want.Keys), len(want.Bans)); g != w {
		return fmt.Errorf("state %s, want %s", g, w)
	}
	if !slices.Equal(got.List, want.List) || !slices.Equal(got.Keys, want.Keys) {
		return fmt.Errorf("list or keys differ")
	}
	for i, b := range got.Bans {
		if w := want.Bans[i]; b.Prefix != w.Prefix || !b.Expires.Equal(w.Expires) || b.Reason != w.Reason {
			return fmt.Errorf("ban %d: %+v, want %+v", i, b, w)
		}
	}
	return nil
}

// Issue 15 (cluster catch-up): a node that connects takes the admin state
// (access list, keys, bans) of a node that has it, sealed with the shared
// key, streamed in messages of at most MaxStateEntries with
// acknowledgements (9,000 info hashes: 18 messages of them); and it takes
// it again each time it reconnects, so that what changed while it was
// away reaches it.
func TestAdminStateTakenOnConnectAndReconnect(t *testing.T) {
	keyed := func(c *cluster.Config) { c.SharedKeyFile = writeKey(t, strings.Repeat("k", 64)) }
	ns := startNATS(t, 2)
	a := startInstance(t, "a", []string{ns.url(0)}, keyed)
	first := bigState(9000, time.Now().Add(-time.Minute).Truncate(time.Second))
	la := runAdmin(t, a, &changeLog{state: first})
	// b's request must find a's answering subscription on b's server.
	waitFor(t, 10*time.Second, "a answering admin state requests on b's server", func() error {
		if !ns.servers[1].GlobalAccount().SubscriptionInterest("herald.admin.state") {
			return fmt.Errorf("no interest yet")
		}
		return nil
	})
	b := startInstance(t, "b", []string{ns.url(1)}, keyed)
	lb := runChanges(t, b)
	waitFor(t, 10*time.Second, "b takes a's state", func() error {
		if got := lb.applied(); len(got) != 1 {
			return fmt.Errorf("%d states applied", len(got))
		}
		return sameState(lb.applied()[0], first)
	})

	// b is cut off; a's state changes meanwhile; b comes back.
	ns.stop(1)
	second := bigState(1000, time.Now().Truncate(time.Second))
	la.mu.Lock()
	la.state = second
	la.mu.Unlock()
	ns.start(1)
	ns.waitRoutes()
	waitFor(t, 15*time.Second, "b takes a's new state after reconnecting", func() error {
		got := lb.applied()
		if len(got) < 2 {
			return fmt.Errorf("%d states applied", len(got))
		}
		return sameState(got[len(got)-1], second)
	})
	if sa, sb := a.node.Stats(), b.node.Stats(); sa.AdminServed < 2 || sb.AdminCatchUps < 2 || sb.Unauthenticated != 0 || sb.Malformed != 0 {
		t.Errorf("a served %d, b took %d states (unauthenticated %d, malformed %d)", sa.AdminServed, sb.AdminCatchUps, sb.Unauthenticated, sb.Malformed)
	}
	if len(la.applied()) != 0 {
		t.Errorf("a, first with no one to ask, applied %d states", len(la.applied()))
	}
}

// BenchmarkAdminStateCatchUp is what a node that connects waits for to
// take an admin state of a million info hashes, 100,000 keys and 50,000
// bans from another node through one embedded NATS server: the stream,
// every entry's checks, and handing it over (ApplyState here only keeps
// it; herald's then rewrites the files).
func BenchmarkAdminStateCatchUp(b *testing.B) {
	ns := startNATS(b, 1)
	a := startInstance(b, "a", []string{ns.url(0)})
	st := bigState(1_000_000, time.Now())
	la := &changeLog{state: st}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go a.node.RunChanges(ctx, la)
	waitFor(b, 10*time.Second, "a answering", func() error {
		if !ns.servers[0].GlobalAccount().SubscriptionInterest("herald.admin.state") {
			return fmt.Errorf("no interest yet")
		}
		return nil
	})
	b.ResetTimer()
	for i := range b.N {
		in := startInstance(b, fmt.Sprint("b", i), []string{ns.url(0)}, func(c *cluster.Config) { c.SyncTimeout = time.Minute })
		l := &changeLog{}
		ictx, icancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { in.node.RunChanges(ictx, l); close(done) }()
		waitFor(b, 5*time.Minute, "b takes the state", func() error {
			if len(l.applied()) == 0 {
				return fmt.Errorf("not yet")
			}
			return nil
		})
		b.StopTimer()
		if err := sameState(l.applied()[0], st); err != nil {
			b.Fatal(err)
		}
		icancel()
		<-done
		in.stop()
		b.StartTimer()
	}
	b.ReportMetric(float64(len(st.List)+len(st.Keys)+len(st.Bans)), "entries/op")
}
