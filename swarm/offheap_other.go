//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package swarm

// Without mmap the regions live on the Go heap: pointer-free, so never
// scanned, but subject to GOGC's headroom.
func mapBytes(n int) []byte { return make([]byte, n) }

func unmapBytes([]byte) {}
