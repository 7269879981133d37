package heraldtest

import "testing"

// TestFreePortNeverTwice: the kernel gives a closed probe's port out again
// soon (2,000 picks repeat one), and a test that picks several ports
// before binding them must not get the same one twice.
func TestFreePortNeverTwice(t *testing.T) {
	seen := map[int]bool{}
	for range 2000 {
		p := FreePort(t, "127.0.0.1")
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
}
