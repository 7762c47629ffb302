//go:build race

package websocket

// raceEnabled: under the race detector sync.Pool drops some of what it
// is given, on purpose, so allocation counts say nothing.
const raceEnabled = true
