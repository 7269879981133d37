package tracker

import (
	"fmt"
	"testing"

	"herald/swarm"
)

// Every reason has a distinct label and a text that fits every protocol's
// failure encoding: ASCII (BEP 15 error packets, see udptracker/doc.go),
// nothing a JSON or bencoded string would need to escape.
func TestReasonsLabelledAndWorded(t *testing.T) {
	labels := map[string]Reason{}
	for r := range Reason(NumReasons) {
		l, text := r.Label(), r.Text()
		if l == "" || text == "" {
			t.Fatalf("reason %d: label %q, text %q", r, l, text)
		}
		if other, dup := labels[l]; dup {
			t.Fatalf("reasons %d and %d share the label %q", other, r, l)
		}
		labels[l] = r
		for _, c := range []byte(text) {
			if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
				t.Fatalf("%s: text %q has byte %#x", l, text, c)
			}
		}
		if e := r.Err(); e.Reason != r || e.Error() != text {
			t.Fatalf("%s: Err() = %+v", l, e)
		}
	}
}

func TestAsClientError(t *testing.T) {
	malformed := NewMalformed("port is not a number")
	for _, tc := range []struct {
		err      error
		want     *ClientError
		internal bool
	}{
		{malformed, malformed, false},
		{NotAllowed.Err(), NotAllowed.Err(), false},
		{swarm.ErrTorrentLimit, TorrentLimit.Err(), false},
		{fmt.Errorf("shard 3: %w", swarm.ErrPeerLimit), PeerLimit.Err(), false},
		{swarm.ErrInvalidAddr, BadAddress.Err(), false},
		{fmt.Errorf("disk on fire"), Internal.Err(), true},
	} {
		got, internal := AsClientError(tc.err)
		if got != tc.want || internal != tc.internal {
			t.Errorf("AsClientError(%v) = %v, %v; want %v, %v", tc.err, got, internal, tc.want, tc.internal)
		}
	}
}

func TestRefusingAllocatesNothing(t *testing.T) {
	var sink *ClientError
	if n := testing.AllocsPerRun(100, func() { sink, _ = AsClientError(swarm.ErrPeerLimit) }); n != 0 {
		t.Fatalf("AsClientError allocates %v per call", n)
	}
	_ = sink
}
