package fuzz

import (
	"bytes"
	"testing"
	"unicode/utf8"

	"github.com/wsmachine/wsmachine/model"
)

// permessage-deflate (RFC 7692) from both ends: the client compresses
// with compress/flate, the server's compressed messages are inflated with
// it, and what comes out is compared with what the model says went in.

// deflateSetups are the handshakes of the compressed sessions: a server
// of handlers and what the client offers. The first declines.
var deflateSetups = []struct {
	handler int
	offer   string
}{
	{0, "permessage-deflate"},
	{1, "permessage-deflate; client_max_window_bits"},
	{2, "permessage-deflate"},
	{2, "permessage-deflate; client_no_context_takeover"},
	{2, "permessage-deflate; server_no_context_takeover; server_max_window_bits=15"},
	{2, "permessage-deflate; server_max_window_bits=10, permessage-deflate; client_max_window_bits=12"},
	{2, "permessage-deflate; client_max_window_bits=9; server_max_window_bits=8"},
}

// maxCompressedFrame is the most compressed payload a server frame carries.
const maxCompressedFrame = 64 << 10

// skipUnfinished reads the frames a compressed message given up (O14) had
// sent, if any: RSV1 and the opcode on the first, continuations after it,
// none with FIN. The frame after them is left for readFrame.
func (s *session) skipUnfinished(ev model.Input, want *model.Frame) {
	s.t.Helper()
	for i := 0; ; i++ {
		f := s.readFrame()
		if f[0]&0x0F >= 8 {
			s.next = f
			return
		}
		wantB0 := model.OpContinuation
		if i == 0 {
			wantB0 = 0x40 | want.Op
		}
		if f[0] != wantB0 {
			s.fatalf("after %s (row %s): frame %d of a compressed message given up is %s, want first byte %#x", ev.Kind, s.m.Row, i, describe(f), wantB0)
		}
	}
}

// readCompressed reads the frames of a compressed message: RSV1 and the
// opcode on the first only, continuations after it, none longer than
// maxCompressedFrame. Inflated (with the history of the server's
// messages under server context takeover) it must be the message the
// model predicts. It returns the message as one frame of its inflated
// payload, with RSV1 set.
func (s *session) readCompressed(ev model.Input, want *model.Frame) []byte {
	s.t.Helper()
	var wire []byte
	for i := 0; ; i++ {
		f := s.readFrame()
		wantB0 := model.OpContinuation
		if i == 0 {
			wantB0 = 0x40 | want.Op
		}
		if f[0]&0x7F != wantB0 {
			s.fatalf("after %s (row %s): frame %d of a compressed message is %s, want first byte %#x", ev.Kind, s.m.Row, i, describe(f), wantB0)
		}
		n := payloadLen(f)
		if n > maxCompressedFrame {
			s.fatalf("after %s: a compressed message's frame of %d bytes", ev.Kind, n)
		}
		wire = append(wire, f[len(f)-n:]...)
		if f[0]&0x80 != 0 {
			break
		}
	}
	var dict []byte
	if s.m.Deflate.ServerContextTakeover {
		dict = s.sentHistory
	}
	got, failure := model.Inflate(wire, dict, -1)
	if failure != "" || !bytes.Equal(got, want.Payload) {
		s.fatalf("after %s: the compressed message inflates to %q (%s), the model predicts %q", ev.Kind, clip(got), failure, clip(want.Payload))
	}
	s.sentHistory = model.AddHistory(s.sentHistory, got)
	f := model.Frame{Fin: true, Op: want.Op, Payload: got}.Bytes()
	f[0] |= 0x40
	return f
}

// payloadLen is the payload length a server frame's header declares.
func payloadLen(f []byte) int {
	switch l := f[1] & 0x7F; l {
	case 126:
		return int(f[2])<<8 | int(f[3])
	case 127:
		n := 0
		for _, b := range f[2:10] {
			n = n<<8 | int(b)
		}
		return n
	default:
		return int(l)
	}
}

// The ways compressedMessage breaks a message, by fault % len.
const (
	faultNone = iota
	faultFinalBlock
	faultCorrupt
	faultTruncated
	faultAfterFinal // a final block, then a whole message, which is ignored
	faultBomb
	faultRSV1Continuation
	faultRSV1Ping
	faultRSV2
	faultPlain // RSV1 clear: a plain message on a compressing connection
	faultCount
)

// compressedMessage builds the client's frames of msg compressed (the
// history is ours of the messages we sent, under client context
// takeover), cut into fragments after the wire bytes cuts give, with
// the fault. safe says whether the message is sure to be received whole,
// so that it may be sent in pieces: a message that fails once inflated
// goes in one, since the server may find the failure before its last
// frame, the model there (STATE_MACHINE.md).
func (s *session) compressedMessage(msg []byte, text bool, fault int, cuts []byte, at uint16) (stream []byte, safe bool) {
	if fault == faultBomb {
		msg = bytes.Repeat(append(msg, 'z'), maxMessageSize/(len(msg)+1)+1)
	}
	var dict []byte
	if d := s.m.Deflate; d != nil && d.ClientContextTakeover {
		dict = model.LastWindow(s.recvHistory, s.m.RecvWindow())
	}
	wire := model.Compress(msg, dict, fault == faultFinalBlock || fault == faultAfterFinal)
	if fault == faultPlain {
		wire = msg
	}
	pos := int(at) % max(len(wire), 1)
	switch fault {
	case faultCorrupt:
		if len(wire) > 0 {
			wire[pos] ^= byte(at>>8) | 1
		}
	case faultTruncated:
		wire = wire[:pos]
	case faultAfterFinal:
		wire = append(wire, model.Compress(msg, nil, false)...)
	}
	op := model.OpBinary
	if text {
		op = model.OpText
	}
	if fault == faultRSV1Continuation && len(cuts) == 0 {
		cuts = []byte{0}
	}
	key := [4]byte{0xd1, 0x05, 0x7e, 0x42}
	for i := 0; ; i++ {
		n := len(wire)
		if i < len(cuts) {
			n = int(cuts[i]) % (len(wire) + 1)
		}
		rsv := byte(0)
		switch {
		case i == 0 && fault == faultRSV2:
			rsv = 6
		case i == 0 && fault != faultPlain, i == 1 && fault == faultRSV1Continuation:
			rsv = 4
		}
		stream = append(stream, clientFrame(i >= len(cuts), rsv, op, wire[:n], key)...)
		wire, op = wire[n:], model.OpContinuation
		if i == 0 && fault == faultRSV1Ping {
			stream = append(stream, clientFrame(true, 4, model.OpPing, []byte("p"), key)...)
		}
		if i >= len(cuts) {
			break
		}
	}
	// A message behind a final block is ignored (RFC 7692 §7.2.3.4):
	// faultAfterFinal delivers msg too.
	safe = (fault == faultNone || fault == faultFinalBlock || fault == faultAfterFinal || fault == faultPlain) && !s.historyUnknown &&
		len(msg) <= maxMessageSize && (!text || utf8.Valid(msg))
	if safe && fault != faultPlain {
		s.recvHistory = model.AddHistory(s.recvHistory, msg)
	} else if !safe {
		s.historyUnknown = true
	}
	return stream, safe
}

// sendCompressed sends a compressed message built by compressedMessage:
// in pieces where splits say if it is safe, else in one.
func (s *session) sendCompressed(msg []byte, text bool, fault int, cuts []byte, at uint16, splits []uint16, after func()) {
	stream, safe := s.compressedMessage(msg, text, fault, cuts, at)
	if !safe {
		splits = nil
	}
	s.sendSplit(stream, splits, after)
}

// FuzzDeflate sends msg compressed, with a fault, in fragments cut after
// the compressed bytes cuts give, on a connection set up as
// deflateSetups[setup] says, receiving throughout; then the server sends
// it back with each send call, and then, to use the context of both
// directions, the client sends it again. Everything must go as the model
// says, and the server's compressed messages must inflate to what it
// was given.
// Rows: O1, O7; "Compressed messages".
func FuzzDeflate(f *testing.F) {
	f.Fuzz(func(t *testing.T, msg []byte, setup, fault byte, at uint16, cuts []byte) {
		if len(cuts) > 8 {
			cuts = cuts[:8] // enough fragments to reach every rule
		}
		d := deflateSetups[int(setup)%len(deflateSetups)]
		s := newSessionDeflate(t, d.handler, d.offer)
		text := utf8.Valid(msg) != (fault >= 128) // mostly valid text, sometimes not
		s.keepReceiving()
		s.sendCompressed(msg, text, int(fault)%faultCount, cuts, at, nil, s.keepReceiving)
		if text {
			doSendText(s, action{Text: string(msg)})
		}
		doSendBinary(s, action{Data: msg})
		doSendMessage(s, action{Pick: 1, Writes: [][]byte{msg, msg}}) // binary
		s.sendCompressed(msg, text, faultNone, cuts, at, []uint16{at}, s.keepReceiving)
		s.finish()
	})
}

// deflateSeeds are FuzzDeflate's hand-made seeds: every fault, in every
// setup, on short text, and the edges besides.
func deflateSeeds() []seed {
	var seeds []seed
	add := func(name string, msg []byte, setup, fault byte, at uint16, cuts []byte) {
		seeds = append(seeds, seed{name, []any{msg, setup, fault, at, cuts}})
	}
	names := []string{"valid", "final-block", "corrupt", "truncated", "after-final", "bomb",
		"rsv1-continuation", "rsv1-ping", "rsv2", "plain"}
	hello := []byte("hello, compressed world")
	for fault, name := range names {
		for setup := range deflateSetups {
			add(name+"-setup-"+string(rune('0'+setup)), hello, byte(setup), byte(fault), 7, []byte{5})
		}
	}
	add("binary", []byte{0, 1, 2, 0xff, 0xfe}, 2, 130, 0, nil)
	add("empty", nil, 2, 0, 0, nil)
	add("invalid-utf8-text", []byte("ab\xffcd"), 2, 130, 0, nil)
	add("text-ends-inside-a-character", []byte("ab\xe2\x82"), 2, 130, 0, nil)
	add("fragments-byte-by-byte", hello, 2, 0, 0, []byte{1, 1, 1, 1, 1, 1, 1, 1})
	add("empty-fragments", hello, 3, 0, 0, []byte{0, 0, 0})
	add("corrupt-first-byte", hello, 2, faultCorrupt, 0xff00, nil)
	add("bomb-binary", []byte{0}, 2, 130+faultBomb, 0, nil)
	add("long-repetitive", bytes.Repeat([]byte("abcdefgh"), 9000), 2, 0, 0, []byte{200, 100})
	add("long-context", bytes.Repeat([]byte("0123456789"), 4000), 4, 0, 0, nil)
	return seeds
}

// doCompressed sends a compressed message from the client in a scenario
// that negotiated permessage-deflate: the text of the action's frames (or
// their payloads, as binary), with a fault chosen by Pick.
func doCompressed(s *session, a action) {
	var msg []byte
	text := a.Pick%2 == 0
	for _, f := range a.Frames {
		if text {
			msg = append(msg, f.Text...)
		} else {
			msg = append(msg, f.Payload...)
		}
	}
	if a.Pick >= 250 {
		msg = bytes.Repeat(append(msg, 'c'), 70000/(len(msg)+1)+1)
	}
	fault := faultNone
	if a.Pick%8 == 1 {
		fault = int(a.Pick>>3) % faultCount
	}
	var cuts []byte
	for _, sp := range a.Splits {
		cuts = append(cuts, byte(sp))
	}
	s.sendCompressed(msg, text, fault, cuts[:min(len(cuts), 2)], a.Code, a.Splits, nil)
}

// compressionOf returns the setup a scenario's Deflate picks: mostly
// none, as before compression came.
func compressionOf(pick uint8) (handler int, offer string) {
	if pick%2 == 0 {
		return 0, ""
	}
	d := deflateSetups[int(pick/2)%len(deflateSetups)]
	return d.handler, d.offer
}
