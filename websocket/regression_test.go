package websocket

import (
	"bytes"
	"io"
	"testing"

	"github.com/wsmachine/wsmachine/model"
)

// Counterexamples found by the property tests, kept as named cases. Each
// runs a sequence of the exhaustive check's events against the model.

// runEvents runs the named abstract events against a real Conn and the
// model, times times over.
func runEvents(t *testing.T, times int, names ...string) {
	t.Helper()
	byName := map[string]abstractEvent{}
	for _, e := range abstractEvents {
		byName[e.name] = e
	}
	s := startModelServer(t)
	for range times {
		h := newHarness(t, nil, s)
		for _, name := range names {
			e, ok := byName[name]
			if !ok {
				t.Fatalf("no event %q", name)
			}
			h.trace = append(h.trace, "— "+name)
			e.do(h)
		}
		h.invariants()
		h.finish()
	}
}

// A receive that waits when the client breaks the protocol learns why the
// connection failed (an error wrapping ErrConnClosed that names the
// violation), even if the background reader saw the bad frame first.
// Rows: O7, T2.
func TestWaitingReceiveGetsTheProtocolError(t *testing.T) {
	runEvents(t, 20, "pong", "receive", "lastFragment")
}

// A receive that comes after the client broke the protocol gets the same
// error as one that was waiting (row T2): found by the fuzz harness, which
// cannot know whether its receive started before the bad frame was read.
// Rows: O7, T2.
func TestLateReceiveGetsTheProtocolError(t *testing.T) {
	runEvents(t, 20, "unmasked", "receive")
	runEvents(t, 20, "firstFragment", "unmasked", "receive")
}

// Close with the client's close frame already queued behind an unread
// message: the server's close frame must reach the wire before it closes
// TCP (row K4 used to race with Close writing the frame).
// Rows: O10, K4.
func TestCloseFrameBeforeFINWhenClientCloseIsQueued(t *testing.T) {
	runEvents(t, 50, "firstFragment", "ping", "clientClose", "close")
}

// The client's EOF behind an unread message is seen once Close makes the
// server read on (row K6).
// Rows: O10, K6.
func TestCloseSeesEOFBehindUnreadMessage(t *testing.T) {
	runEvents(t, 20, "binary", "eof", "close")
}

// Close after the client's EOF, which waits behind an unread message: the
// close frame must still reach the client before TCP ends (row K6).
// Rows: O10, K6.
func TestCloseFrameSentWhenEOFWaitsBehindMessage(t *testing.T) {
	runEvents(t, 50, "text", "receive", "text", "eof", "close")
}

// A writer whose buffer is filled exactly keeps the bytes buffered: the
// message leaves as one final frame at Close, as the model says.
// Rows: O3; "Message writers".
func TestWriterKeepsExactlyFullBuffer(t *testing.T) {
	h := newHarness(t, nil, startModelServer(t))
	defer h.finish()
	var w io.WriteCloser
	h.step(model.Input{Kind: model.SendMessage, Type: 2}, func() {
		h.start(model.SendMessage, func() callResult {
			var err error
			w, err = h.c.SendMessage(Binary)
			return callResult{err: err}
		})
	})
	p := bytes.Repeat([]byte{7}, model.WriteBufferSize)
	h.step(model.Input{Kind: model.WriterWrite, Data: p}, func() {
		h.start(model.WriterWrite, func() callResult {
			n, err := w.Write(p)
			return callResult{n: n, err: err}
		})
	})
	h.step(model.Input{Kind: model.WriterClose}, func() {
		h.start(model.WriterClose, func() callResult { return callResult{err: w.Close()} })
	})
}
