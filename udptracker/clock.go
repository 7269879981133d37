package udptracker

import (
	"time"
	_ "unsafe" // for go:linkname
)

// The reader's clock. time.Now reads two clocks (the wall clock and the
// monotonic one, each a vDSO call) and builds a Time; a reader needs the
// wall clock once per batch, for the handler's seconds and to compare
// with the kernel's receive times, and otherwise only how much time
// passed. So the end of each read is an instant read from both clocks,
// and every other moment of the batch (the next read's start, the start
// of the send) one monotonic reading added to it.

// timeNow is the runtime's clock read behind time.Now: Unix seconds and
// nanoseconds, and the monotonic clock in nanoseconds (runtime.nanotime).
//
//go:linkname timeNow time.now
func timeNow() (sec int64, nsec int32, mono int64)

// nanotime is the runtime's monotonic clock, one vDSO call.
//
//go:linkname nanotime runtime.nanotime
func nanotime() int64

// instant is a moment in both clocks: Unix nanoseconds and the runtime's
// monotonic nanoseconds.
type instant struct{ wall, mono int64 }

// now reads both clocks.
func now() instant {
	sec, nsec, mono := timeNow()
	return instant{sec*int64(time.Second) + int64(nsec), mono}
}

// since is how long ago i was, by the monotonic clock alone.
func (i instant) since() time.Duration { return time.Duration(nanotime() - i.mono) }

// unix is i in Unix seconds.
func (i instant) unix() int64 { return i.wall / int64(time.Second) }
