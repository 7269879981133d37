package cluster

import (
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"herald/swarm"
)

// records returns the records of every sealed batch, oldest first, and the
// batch numbers.
func drain(t *testing.T, o *outbox) (recs []Record, seqs []uint32) {
	t.Helper()
	for {
		b, ok := o.Next()
		if !ok {
			return recs, seqs
		}
		h, body, err := ParseHeader(b.buf)
		if err != nil || h.Kind != KindAnnounces || h.Node != o.node {
			t.Fatalf("batch header %+v, %v", h, err)
		}
		seqs = append(seqs, h.Seq)
		n := 0
		for len(body) > 0 {
			var r Record
			if r, body, err = ParseRecord(body); err != nil {
				t.Fatal(err)
			}
			recs = append(recs, r)
			n++
		}
		if n != b.records {
			t.Fatalf("batch says %d records, holds %d", b.records, n)
		}
		o.Done(b)
	}
}

// The republish rule: a plain refresh with the seeder state last published
// is not sent again within the window; every event and every seeder change
// is.
func TestOutboxRepublishRule(t *testing.T) {
	o := newOutbox(1, 1<<10, 1<<20)
	o.republish.Store(int64(time.Hour))
	h := swarm.InfoHash{7}
	addr := netip.MustParseAddrPort("192.0.2.1:6881")
	steps := []struct {
		event  swarm.Event
		left   uint64
		sent   bool
		reason string
	}{
		{swarm.EventStarted, 1, true, "a new peer"},
		{swarm.EventNone, 1, false, "a refresh within the window"},
		{swarm.EventStarted, 1, true, "started again"},
		{swarm.EventNone, 0, true, "became a seeder without completed"},
		{swarm.EventNone, 0, false, "a seeder's refresh"},
		{swarm.EventCompleted, 0, true, "completed"},
		{swarm.EventStopped, 0, true, "stopped"},
		{swarm.EventNone, 0, true, "a refresh after stopped"},
	}
	for _, s := range steps {
		before := o.suppressed.Load()
		o.Add(&swarm.Announce{InfoHash: h, Addr: addr, Event: s.event, Left: s.left})
		o.Seal(false)
		recs, _ := drain(t, o)
		if sent := len(recs) == 1; sent != s.sent || sent == (o.suppressed.Load() > before) {
			t.Errorf("%s: sent %v, want %v (suppressed count %d)", s.reason, sent, s.sent, o.suppressed.Load())
		}
	}
	// Outside the window the refresh goes again, so remote copies never
	// age past the window.
	o.clock.Add(int64(time.Hour))
	o.Add(&swarm.Announce{InfoHash: h, Addr: addr, Left: 0})
	o.Seal(false)
	if recs, _ := drain(t, o); len(recs) != 1 {
		t.Errorf("refresh after the window not sent")
	}
}

// A full buffer drops the oldest batches, counts their announces, and the
// batch numbers show the gap to the receivers.
func TestOutboxDropsOldest(t *testing.T) {
	const batch = 1 << 10
	o := newOutbox(1, batch, 4*batch)
	perBatch := (batch - HeaderLen) / RecordLen4
	total := 10 * perBatch
	for i := range total {
		o.Add(&swarm.Announce{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 1), Event: swarm.EventStarted})
	}
	o.Seal(false)
	recs, seqs := drain(t, o)
	if len(seqs) != 4 || seqs[0] != 7 || seqs[3] != 10 {
		t.Fatalf("batches left %v, want the newest four, 7 to 10", seqs)
	}
	if got := uint64(total - len(recs)); o.dropped.Load() != got || got != uint64(6*perBatch) {
		t.Fatalf("dropped %d, kept %d of %d", o.dropped.Load(), len(recs), total)
	}
	if last := recs[len(recs)-1].Addr.Addr().As4(); int(last[2])<<8|int(last[3]) != total-1 {
		t.Fatalf("newest announce not kept: %v", recs[len(recs)-1])
	}
}

// Nothing but a heartbeat when idle, and none while batches wait.
func TestOutboxHeartbeat(t *testing.T) {
	o := newOutbox(1, 1<<10, 1<<20)
	o.Seal(false)
	if o.Queued() != 0 {
		t.Fatal("an empty batch sealed without a heartbeat")
	}
	o.Seal(true)
	o.Seal(true)
	if recs, seqs := drain(t, o); len(recs) != 0 || len(seqs) != 1 || seqs[0] != 1 {
		t.Fatalf("heartbeats %v with %d records, want one, number 1", seqs, len(recs))
	}
}

func TestOutboxAddDoesNotAllocate(t *testing.T) {
	o := newOutbox(1, 1<<12, 1<<14) // small: the ring wraps and drops
	o.republish.Store(int64(time.Hour))
	a := swarm.Announce{InfoHash: swarm.InfoHash{1}, Addr: netip.MustParseAddrPort("[2001:db8::1]:1"), Event: swarm.EventStarted}
	for range 1000 { // fill every buffer once
		o.Add(&a)
	}
	i := 0
	if n := testing.AllocsPerRun(10000, func() {
		i++
		a.Addr = netip.AddrPortFrom(a.Addr.Addr(), uint16(i))
		o.Add(&a)
	}); n != 0 {
		t.Fatalf("Add allocates %v times per call", n)
	}
}

// BenchmarkSinkAnnounced is the sink's own share of an announce: encode,
// the recently-sent table, one lock, with the ring wrapping (nothing
// publishes here). Serial, then from every core at once.
func BenchmarkSinkAnnounced(b *testing.B) {
	n, err := New(Config{URLs: []string{"nats://127.0.0.1:1"}}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	n.out.republish.Store(0) // every announce is sent
	a := swarm.Announce{InfoHash: swarm.InfoHash{1}, Addr: netip.MustParseAddrPort("192.0.2.1:1"), Left: 1}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			a.Addr = netip.AddrPortFrom(a.Addr.Addr(), uint16(i))
			n.Announced(a)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			a := a
			for i := 0; pb.Next(); i++ {
				a.Addr = netip.AddrPortFrom(a.Addr.Addr(), uint16(i))
				n.Announced(a)
			}
		})
	})
}
