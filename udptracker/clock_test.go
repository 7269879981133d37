package udptracker

import (
	"testing"
	"time"
)

// TestClock: an instant's wall time is time.Now's, and since counts the
// time after it on the monotonic clock.
func TestClock(t *testing.T) {
	before := time.Now()
	i := now()
	after := time.Now()
	if i.wall < before.UnixNano() || i.wall > after.UnixNano() {
		t.Fatalf("now() at %d, between time.Now's %d and %d", i.wall, before.UnixNano(), after.UnixNano())
	}
	if got := i.unix(); got != before.Unix() && got != after.Unix() {
		t.Fatalf("unix() %d, want %d or %d", got, before.Unix(), after.Unix())
	}
	time.Sleep(10 * time.Millisecond)
	if d, max := i.since(), time.Since(before); d < 10*time.Millisecond || d > max {
		t.Fatalf("since() %v after a 10ms sleep, time.Since %v", d, max)
	}
}
