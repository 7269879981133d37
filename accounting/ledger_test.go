package accounting

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"herald/access"
	"herald/swarm"
)

func key(i int) access.Key {
	k, err := access.ParseKey(fmt.Sprintf("member%026d", i))
	if err != nil {
		panic(err)
	}
	return k
}

func ann(torrent, peer byte, up, down uint64, e swarm.Event) *swarm.Announce {
	return &swarm.Announce{InfoHash: swarm.InfoHash{torrent}, PeerID: swarm.PeerID{peer}, Uploaded: up, Downloaded: down, Event: e}
}

func entry(t *testing.T, l *Ledger, k access.Key) Entry {
	t.Helper()
	e, ok := l.Get(k)
	if !ok {
		t.Fatalf("no accounting for %s", k)
	}
	return e
}

// The rules of the package documentation: the first announce of a peer
// is its baseline, later ones add their growth, a figure that went down
// counts whole, a stop counts and forgets.
func TestRecordCountsDeltas(t *testing.T) {
	l := New(time.Hour, 0)
	k := key(1)
	now := time.Unix(1_800_000_000, 0)
	steps := []struct {
		a         *swarm.Announce
		up, down  uint64
		active    int
		why       string
		announces uint64
	}{
		{ann(1, 1, 500, 100, swarm.EventStarted), 0, 0, 1, "first announce: the baseline", 1},
		{ann(1, 1, 800, 100, swarm.EventNone), 300, 0, 1, "growth since the last announce", 2},
		{ann(1, 1, 800, 400, swarm.EventNone), 300, 300, 1, "downloaded grew", 3},
		{ann(2, 1, 50, 0, swarm.EventStarted), 300, 300, 2, "a second torrent: its own baseline", 4},
		{ann(1, 1, 20, 10, swarm.EventStarted), 320, 310, 2, "restarted session: the new figures count whole", 5},
		{ann(1, 2, 1000, 0, swarm.EventNone), 320, 310, 2, "a second peer in the same torrent: baseline", 6},
		{ann(1, 1, 70, 10, swarm.EventStopped), 370, 310, 2, "a stop counts its growth; peer 2 stays", 7},
		{ann(1, 2, 1100, 0, swarm.EventStopped), 470, 310, 1, "the last peer of torrent 1 stops", 8},
		{ann(1, 1, 5, 5, swarm.EventStopped), 470, 310, 1, "a stop of an unknown peer counts no bytes", 9},
	}
	for _, s := range steps {
		l.Record(&k, s.a, now)
		e := entry(t, l, k)
		if e.Uploaded != s.up || e.Downloaded != s.down || e.ActiveTorrents != s.active || e.Announces != s.announces {
			t.Fatalf("%s: %+v, want uploaded %d, downloaded %d, %d active, %d announces", s.why, e, s.up, s.down, s.active, s.announces)
		}
	}
	if l.Peers() != 1 {
		t.Errorf("%d peers remembered, want 1 (torrent 2's)", l.Peers())
	}
	if other, ok := l.Get(key(2)); ok || other.Announces != 0 {
		t.Errorf("a key that never announced has accounting: %+v", other)
	}
}

func TestExpireEndsActivity(t *testing.T) {
	l := New(30*time.Minute, 0)
	k := key(1)
	t0 := time.Unix(1_800_000_000, 0)
	l.Record(&k, ann(1, 1, 0, 0, swarm.EventStarted), t0)
	l.Record(&k, ann(2, 1, 0, 0, swarm.EventStarted), t0.Add(20*time.Minute))
	l.Expire(t0.Add(29 * time.Minute))
	if e := entry(t, l, k); e.ActiveTorrents != 2 {
		t.Fatalf("before the timeout: %d active", e.ActiveTorrents)
	}
	l.Expire(t0.Add(30 * time.Minute))
	if e := entry(t, l, k); e.ActiveTorrents != 1 || l.Peers() != 1 {
		t.Fatalf("after torrent 1's peer timed out: %d active, %d peers", e.ActiveTorrents, l.Peers())
	}
	// Back after expiring: a new baseline, no double count.
	l.Record(&k, ann(1, 1, 900, 0, swarm.EventNone), t0.Add(31*time.Minute))
	if e := entry(t, l, k); e.Uploaded != 0 || e.ActiveTorrents != 2 {
		t.Fatalf("peer back after expiry: %+v", e)
	}
}

func TestMaxPeersBoundsMemory(t *testing.T) {
	l := New(time.Hour, 2)
	k := key(1)
	now := time.Unix(1_800_000_000, 0)
	for p := range byte(5) {
		l.Record(&k, ann(1, p, 0, 0, swarm.EventStarted), now)
	}
	if l.Peers() != 2 {
		t.Fatalf("%d peers remembered, bound 2", l.Peers())
	}
	l.Record(&k, ann(1, 4, 1000, 0, swarm.EventNone), now)
	if e := entry(t, l, k); e.Announces != 6 || e.Uploaded != 0 {
		t.Fatalf("beyond the bound: %+v, want 6 announces and no bytes", e)
	}
}

func TestPageWalksAllKeysInOrder(t *testing.T) {
	l := New(time.Hour, 0)
	now := time.Unix(1_800_000_000, 0)
	for _, i := range []int{7, 3, 9, 1, 5} {
		k := key(i)
		l.Record(&k, ann(1, 1, 0, 0, swarm.EventStarted), now)
	}
	var got []access.Key
	for after := ""; ; {
		page := l.Page(after, 2)
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			got = append(got, e.Key)
		}
		after = page[len(page)-1].Key.String()
	}
	want := []access.Key{key(1), key(3), key(5), key(7), key(9)}
	if !slices.Equal(got, want) {
		t.Fatalf("paged %v, want %v", got, want)
	}
}

func TestPendingAndCommit(t *testing.T) {
	l := New(time.Hour, 0)
	a, b := key(1), key(2)
	now := time.Unix(1_800_000_000, 0)
	l.Record(&a, ann(1, 1, 100, 0, swarm.EventStarted), now)
	l.Record(&a, ann(1, 1, 300, 0, swarm.EventNone), now)
	l.Record(&b, ann(1, 2, 0, 0, swarm.EventStarted), now)
	changes := l.Pending()
	if len(changes) != 2 {
		t.Fatalf("%d pending, want 2", len(changes))
	}
	// Not committed (say NATS was down): the next Pending has it all.
	l.Record(&a, ann(1, 1, 350, 0, swarm.EventNone), now)
	changes = l.Pending()
	slices.SortFunc(changes, func(x, y Change) int { return int(x.Key[31]) - int(y.Key[31]) })
	if d := changes[0].Delta; d != (Totals{Announces: 3, Uploaded: 250}) || changes[0].ActiveTorrents != 1 {
		t.Fatalf("key 1 change %+v", changes[0])
	}
	l.Commit(changes)
	if p := l.Pending(); len(p) != 0 {
		t.Fatalf("pending after commit: %+v", p)
	}
	l.Record(&a, ann(1, 1, 400, 0, swarm.EventStopped), now)
	p := l.Pending()
	if len(p) != 1 || p[0].Delta != (Totals{Announces: 1, Uploaded: 50}) || p[0].Uploaded != 300 || p[0].ActiveTorrents != 0 {
		t.Fatalf("after the stop: %+v", p)
	}
	l.Commit(p)
	// A change of activity alone is pending too.
	l.Record(&b, ann(3, 2, 0, 0, swarm.EventNone), now)
	l.Commit(l.Pending())
	l.Expire(now.Add(2 * time.Hour))
	if p := l.Pending(); len(p) != 1 || p[0].Key != b || p[0].ActiveTorrents != 0 || p[0].Delta != (Totals{}) {
		t.Fatalf("after expiry: %+v", p)
	}
}

func TestStateRoundTrip(t *testing.T) {
	l := New(time.Hour, 0)
	now := time.Unix(1_800_000_000, 0)
	for i := range 20 {
		k := key(i)
		for tr := range byte(i % 4) {
			l.Record(&k, ann(tr, byte(i), uint64(i)*1000, 7, swarm.EventStarted), now)
			l.Record(&k, ann(tr, byte(i), uint64(i)*3000, 1<<40, swarm.EventNone), now)
		}
		l.Record(&k, ann(200, 1, 0, 0, swarm.EventStopped), now)
	}
	l.Commit(l.Pending()[:5])
	state := l.AppendState(nil)
	r := New(time.Hour, 0)
	if err := r.Restore(state); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Page("", 100), l.Page("", 100)) || r.Peers() != l.Peers() || len(r.Pending()) != len(l.Pending()) {
		t.Fatalf("restored ledger differs:\n%+v\n%+v", r.Page("", 100), l.Page("", 100))
	}
	// The peers came back too: their next announce counts its growth.
	k := key(5)
	r.Record(&k, ann(0, 5, 15000+1, 1<<40, swarm.EventNone), now)
	if e := entry(t, r, k); e.Uploaded != 10000+1 {
		t.Fatalf("after restore, uploaded %d, want %d", e.Uploaded, 10000+1)
	}
	for cut := range len(state) {
		if err := New(time.Hour, 0).Restore(state[:cut]); !errors.Is(err, ErrState) {
			t.Fatalf("state cut at %d of %d: %v", cut, len(state), err)
		}
	}
	if err := New(time.Hour, 0).Restore((*Ledger)(nil).AppendState(nil)); err != nil {
		t.Fatalf("empty state: %v", err)
	}
}

func BenchmarkRecord(b *testing.B) {
	l := New(time.Hour, 0)
	now := time.Unix(1_800_000_000, 0)
	keys := make([]access.Key, 1000)
	for i := range keys {
		keys[i] = key(i)
		for tr := range byte(4) {
			l.Record(&keys[i], ann(tr, byte(i), 0, 0, swarm.EventStarted), now)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := &keys[i%len(keys)]
		l.Record(k, ann(byte(i%4), byte(i%len(keys)), uint64(i), uint64(i), swarm.EventNone), now)
		i++
	}
}

func FuzzRestore(f *testing.F) {
	l := New(time.Hour, 0)
	k := key(1)
	l.Record(&k, ann(1, 1, 5, 5, swarm.EventStarted), time.Unix(1_800_000_000, 0))
	f.Add(l.AppendState(nil))
	f.Add([]byte{0})
	f.Add([]byte{1, 'x'})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := New(time.Hour, 3)
		if err := r.Restore(data); err != nil {
			if !errors.Is(err, ErrState) {
				t.Fatalf("error %v is not ErrState", err)
			}
			if r.Len() != 0 {
				t.Fatal("a failed restore changed the ledger")
			}
			return
		}
		if r.Peers() > 3 {
			t.Fatalf("%d peers restored, bound 3", r.Peers())
		}
		again := New(time.Hour, 3)
		if err := again.Restore(r.AppendState(nil)); err != nil || !slices.Equal(again.Page("", 1<<20), r.Page("", 1<<20)) {
			t.Fatalf("restored state does not round-trip: %v", err)
		}
	})
}

// Frontends record from every goroutine while the publisher, the
// snapshot and the expiry read and change the ledger (run with -race).
func TestConcurrentUse(t *testing.T) {
	l := New(time.Second, 0)
	now := time.Unix(1_800_000_000, 0)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				k := key(i % 50)
				l.Record(&k, ann(byte(i%7), byte(g), uint64(i)*10, 0, swarm.EventNone), now)
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			l.Commit(l.Pending())
			l.AppendState(nil)
			l.Page("", 10)
			l.Expire(now)
		}
	})
	wg.Wait()
	var announces uint64
	for _, e := range l.Page("", 100) {
		announces += e.Announces
	}
	if announces != 8000 {
		t.Fatalf("%d announces counted, want 8000", announces)
	}
}

// goldenLedger is the ledger whose state testdata/ledger-v3.state holds,
// as written by the ledger before its flat layout (herald 63c67d7).
func goldenLedger() *Ledger {
	l := New(time.Hour, 0)
	now := time.Unix(1_800_000_000, 0)
	for i := range 6 {
		k := key(i)
		for tr := range byte(i % 4) {
			for p := range byte(i%3 + 1) {
				l.Record(&k, ann(tr, 10*byte(i)+p, uint64(i)*1000, 7, swarm.EventStarted), now)
				l.Record(&k, ann(tr, 10*byte(i)+p, uint64(i)*3000+uint64(p), 1<<40, swarm.EventNone), now.Add(time.Duration(p)*time.Second))
			}
		}
		l.Record(&k, ann(200, 1, 0, 0, swarm.EventStopped), now)
	}
	l.Commit(l.Pending()[:3])
	return l
}

// Snapshots written before the flat layout still load, peers included.
func TestRestoresEarlierState(t *testing.T) {
	state, err := os.ReadFile("testdata/ledger-v3.state")
	if err != nil {
		t.Fatal(err)
	}
	r := New(time.Hour, 0)
	if err := r.Restore(state); err != nil {
		t.Fatal(err)
	}
	want := goldenLedger()
	if got := r.Page("", 100); !slices.Equal(got, want.Page("", 100)) || len(got) != 6 || got[2].Announces != 13 || got[2].ActiveTorrents != 2 {
		t.Fatalf("restored %+v\nwant %+v", got, want.Page("", 100))
	}
	if r.Peers() != 14 || len(r.Pending()) != 3 {
		t.Fatalf("restored %d peers and %d pending, want 14 and 3", r.Peers(), len(r.Pending()))
	}
	// Peer 30 of key 3 last said 9000 uploaded in torrent 2.
	k := key(3)
	r.Record(&k, ann(2, 30, 9500, 1<<40, swarm.EventNone), time.Unix(1_800_000_000, 0))
	if e := entry(t, r, k); e.Uploaded != 18000+500 {
		t.Fatalf("after restore, uploaded %d, want %d", e.Uploaded, 18000+500)
	}
}
