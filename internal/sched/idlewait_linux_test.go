package sched

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"herald/internal/servetest"
)

// TestIdleMean: a new IdleWait is idle; a run of short waits makes it
// busy, and a run of long ones idle again; one wait of the other kind
// does not switch it.
func TestIdleMean(t *testing.T) {
	r, _ := pipe(t)
	iw := newTestIdleWait(t, r)
	if !iw.Idle() {
		t.Fatal("a new IdleWait is not idle")
	}
	waits := 0
	for ; iw.Idle(); waits++ {
		iw.Waited(int64(10 * time.Microsecond))
	}
	if waits < 2 {
		t.Fatalf("one short wait made a new IdleWait busy")
	}
	for range 32 {
		iw.Waited(int64(10 * time.Microsecond))
	}
	iw.Waited(int64(time.Second / 100)) // one wait past sysmon's 10 ms
	if iw.Idle() {
		t.Fatal("one long wait among short ones made it idle")
	}
	for range 32 {
		iw.Waited(int64(2 * IdleAfter))
	}
	if !iw.Idle() {
		t.Fatalf("still busy after 32 waits of twice IdleAfter")
	}
}

// TestWaitParksUntilReadable: Wait parks the goroutine in the netpoller
// (not in a system call) while fd has nothing to read, returns once it
// has, and returns at once when fd is already readable, again and again.
func TestWaitParksUntilReadable(t *testing.T) {
	r, w := pipe(t)
	iw := newTestIdleWait(t, r)
	done := make(chan struct{})
	for round := range 3 {
		go func() {
			iw.Wait()
			done <- struct{}{}
		}()
		awaitParked(t)
		select {
		case <-done:
			t.Fatalf("round %d: Wait returned with nothing to read", round)
		case <-time.After(20 * time.Millisecond):
		}
		if _, err := w.Write([]byte{1}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: Wait still parked 5 s after a write", round)
		}
		// Still readable: the next Wait returns at once.
		go func() {
			iw.Wait()
			done <- struct{}{}
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: Wait parked with a byte to read", round)
		}
		if _, err := r.Read(make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWaitAllocatesNothing: a Wait that finds fd readable allocates
// nothing.
func TestWaitAllocatesNothing(t *testing.T) {
	r, w := pipe(t)
	iw := newTestIdleWait(t, r)
	if _, err := w.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	if allocs := testing.AllocsPerRun(100, iw.Wait); allocs != 0 {
		t.Fatalf("%.1f allocations per Wait, want 0", allocs)
	}
}

func pipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

func newTestIdleWait(t *testing.T, f *os.File) *IdleWait {
	t.Helper()
	iw, err := NewIdleWait(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { iw.Close() })
	return iw
}

// awaitParked waits until a goroutine is in IdleWait.Wait, parked in the
// netpoller.
func awaitParked(t *testing.T) {
	t.Helper()
	servetest.WaitFor(t, 5*time.Second, func() error {
		if servetest.Goroutines(func(g string) bool {
			return strings.Contains(g, "(*IdleWait).Wait") && strings.Contains(g, "[IO wait")
		}) == 0 {
			return errors.New("no goroutine parked in IdleWait.Wait")
		}
		return nil
	})
}
