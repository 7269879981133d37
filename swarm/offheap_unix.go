//go:build linux || darwin || freebsd || netbsd || openbsd

package swarm

import (
	"fmt"
	"syscall"
)

// mapBytes returns n zeroed bytes of anonymous private memory outside the
// Go heap (n a multiple of the page size). The kernel backs pages only once
// they are touched, and unmapBytes hands them back at once: no GC headroom,
// no scavenger delay. See region for why this is safe.
func mapBytes(n int) []byte {
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		// As the Go runtime does when the heap cannot grow: there is no
		// state to save and no caller could do better.
		panic(fmt.Sprintf("swarm: mmap %d bytes: %v", n, err))
	}
	return b
}

func unmapBytes(b []byte) {
	if err := syscall.Munmap(b); err != nil {
		panic(fmt.Sprintf("swarm: munmap %d bytes: %v", len(b), err))
	}
}
