//go:build race

package wstracker

// raceEnabled: the race detector changes stack and heap sizes, so memory
// figures mean nothing under it.
const raceEnabled = true
