package fuzz

import (
	"runtime"
	"testing"

	"github.com/wsmachine/wsmachine/model"
)

// FuzzFrameReader feeds arbitrary bytes to the server as a client's stream,
// cut into writes where cuts say, while the handler receives message after
// message. Whatever the bytes, the server must not panic or hang, must
// deliver the messages and send the close frames the model does, and must
// not allocate more than a small multiple of what it was sent, whatever
// lengths the frames declare.
// Rows: O1, O7; "Frame checks": any bytes.
func FuzzFrameReader(f *testing.F) {
	f.Fuzz(func(t *testing.T, stream, cuts []byte) {
		inputSize := len(stream) + len(cuts)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)

		s := newSession(t)
		s.keepReceiving()
		splits := make([]uint16, len(cuts))
		for i, c := range cuts {
			splits[i] = uint16(c)
		}
		s.sendSplit(stream, splits, s.keepReceiving)
		s.clientEOF()
		s.finish()

		runtime.ReadMemStats(&after)
		if got, limit := after.TotalAlloc-before.TotalAlloc, allocLimit(inputSize); got > limit {
			t.Fatalf("%d bytes allocated for %d bytes of input (limit %d)", got, inputSize, limit)
		}
	})
}

// allocLimit is what a connection may allocate for n bytes of input: the
// buffers of a connection, and a few copies of what arrived (the test's
// io.ReadAll, the model's copy); nothing in proportion to a declared length.
func allocLimit(n int) uint64 { return 4<<20 + 8*uint64(n) }

// keepReceiving starts the next receive call once the last has returned,
// as a handler's receive loop does.
func (s *session) keepReceiving() {
	if s.m.State == model.Open && !s.m.Receiving() {
		s.receive(model.ReceiveMessage, 0)
	}
}
