package websocket

import (
	"bytes"
	"io"
	"testing"

	"github.com/wsmachine/wsmachine/websocket/internal/core"
)

// plainWriter has Write only, as most writers.
type plainWriter struct{ buf bytes.Buffer }

func (w *plainWriter) Write(p []byte) (int, error) { return w.buf.Write(p) }

// maskedFrame is a client frame with the key 1 2 3 4.
func maskedFrame(fin bool, op core.Opcode, payload string) []byte {
	key := [4]byte{1, 2, 3, 4}
	b := core.AppendHeader(nil, fin, op, len(payload))
	b[1] |= 0x80
	b = append(append(b, key[:]...), payload...)
	core.Mask(key, 0, b[len(b)-len(payload):])
	return b
}

// io.Copy from a message reader to a writer that is not a message
// writer goes through WriteTo: the whole message, across its fragments,
// and no allocation per message.
// Rows: O4.
func TestCopyMessageToPlainWriter(t *testing.T) {
	c, client := pipeConn(t, defaultWriteTimeout)
	message := append(maskedFrame(false, core.OpBinary, "hello, "), maskedFrame(true, core.OpContinuation, "world")...)
	const runs = 100
	go func() {
		for range runs + 3 { // two, then AllocsPerRun's warm-up and runs
			if _, err := client.Write(message); err != nil {
				return
			}
		}
	}()
	dst := &plainWriter{}
	copyOne := func() {
		dst.buf.Reset()
		_, r, err := c.ReceiveMessage()
		if err != nil {
			t.Fatal(err)
		}
		if n, err := io.Copy(dst, r); err != nil || n != 12 || dst.buf.String() != "hello, world" {
			t.Fatalf("io.Copy gave %d bytes %q, %v; want the 12 bytes of the message", n, dst.buf.String(), err)
		}
	}
	copyOne()
	copyOne() // the buffers are in their pools now
	// Without the race detector only (make bench-smoke runs it so).
	if allocs := testing.AllocsPerRun(runs, copyOne); allocs > 0 && !raceEnabled {
		t.Errorf("%.1f allocations per message copied", allocs)
	}
}
