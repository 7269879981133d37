// Package sched holds what herald's blocking I/O loops (udptracker's
// readers, httptracker's event loops) need from Go's scheduler: a yield
// that starts no other thread, and a way to wait in the runtime's
// netpoller, holding no P, when their traffic is sparse.
//
// Those loops wait in the kernel in a blocking system call that holds
// their thread and their P, which makes a busy tracker cheap (no pass
// through the scheduler per request) and costs two things the scheduler
// exacts from a goroutine that never parks: sysmon's preemption tick,
// which Yield keeps away, and, once a wait outlasts 10 ms, sysmon taking
// the P back and polling every 20 µs for a millisecond, which IdleWait
// keeps away.
package sched

import (
	"time"
	_ "unsafe" // for go:linkname
)

// Yield is runtime.Gosched without the wake-up: the goroutine goes to the
// tail of its own P's run queue, not the global one, and the runtime does
// not call wakep. Gosched's wakep found the spare P idle (cmd/herald keeps
// one P more than the loops that block) and started its thread at every
// yield, which spun, often took the loop over to itself, and slept again:
// two futex calls and two thread switches per yield (docs/benchmarks.md,
// issue 18, session 7). A loop yields only to move its P's scheduling
// tick on, which a pass through the scheduler on the same thread does.
// The runtime keeps goyield for linkname users (go.dev/issue/67401).
//
//go:linkname Yield runtime.goyield
func Yield()

// YieldEvery is how often a loop that blocks in the kernel passes through
// the scheduler: well under sysmon's 10 ms preemption tick, after which
// sysmon would take the P back from the system call and poll every 20 µs
// for a millisecond. 8 ms, measured, left too little margin on a busy
// machine: a loop whose core was taken for a moment missed the tick, and
// sysmon's polling cost more than the yields saved (docs/benchmarks.md,
// "Single-datagram reads").
const YieldEvery = 4 * time.Millisecond
