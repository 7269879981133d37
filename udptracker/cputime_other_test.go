//go:build !unix

package udptracker

import "testing"

// reportCPU reports nothing where getrusage is missing.
func reportCPU(*testing.B) (stop func()) { return func() {} }
