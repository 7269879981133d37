// Package servetest runs a frontend's server for a test: the pattern every
// frontend's tests share (serve until the test ends, then check that the
// server stops cleanly and promptly), and waits for the state it reaches.
package servetest

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Serve runs serve in a goroutine until the test ends. The cleanup cancels
// serve's context and fails the test if serve returns an error or has not
// returned within stop.
func Serve(t testing.TB, serve func(context.Context) error, stop time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(stop):
			t.Errorf("Serve did not return %v after its context ended", stop)
		}
	})
}

// WaitFor calls check until it returns nil, failing the test with check's
// last error if that has not happened within the given time.
func WaitFor(t testing.TB, within time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still after %v: %v", within, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Goroutines counts the goroutines whose stack, as runtime.Stack prints it
// (the state in the first line, "[IO wait]" or "[syscall]", then the
// calls), satisfies match: how a test sees where a loop waits.
func Goroutines(match func(stack string) bool) int {
	buf := make([]byte, 1<<20)
	n := 0
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if match(g) {
			n++
		}
	}
	return n
}
