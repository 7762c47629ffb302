package fuzz

import (
	"bytes"
	"testing"
	"unicode/utf8"

	"github.com/wsmachine/wsmachine/model"
)

// FuzzUTF8Fragments checks the incremental UTF-8 validation, reading and
// writing, wherever the text is cut: received as a fragmented message, sent
// with SendText, and written to a SendMessage writer in pieces. The model
// is followed step by step; unicode/utf8.Valid on the whole text decides
// independently what must come out.
// Rows: O1, O3, O7; "Frame checks" and "Argument checks": UTF-8.
func FuzzUTF8Fragments(f *testing.F) {
	f.Fuzz(func(t *testing.T, text, cuts []byte) {
		valid := utf8.Valid(text)
		pieces := cutAt(text, cuts)
		s := newSession(t)

		// Sent: SendText and a writer fed piece by piece.
		s.step(model.Input{Kind: model.SendText, Data: text}, func() {
			s.start(model.SendText, func() callResult { return callResult{err: s.c.SendText(string(text))} })
		})
		if sent := s.lastReturned(model.SendText); (sent.err == nil) != valid {
			t.Fatalf("SendText(%q) returned %v; utf8.Valid says %v", text, sent.err, valid)
		}
		frames := len(s.frames)
		doSendMessage(s, action{Pick: 0, Writes: pieces}) // Pick 0: text, pieces as they are
		var refused bool
		for _, r := range s.returned {
			refused = refused || (r.call == model.WriterWrite || r.call == model.WriterClose) && r.err != nil
		}
		sent := textPayload(s.frames[frames:])
		if refused == valid || !utf8.Valid(sent) || valid && !bytes.Equal(sent, text) {
			t.Fatalf("writer: refused=%v, sent %q; utf8.Valid(%q) = %v", refused, sent, text, valid)
		}

		// Received: a message in one frame per piece.
		s.receive(model.ReceiveMessage, 0)
		frames = len(s.frames)
		var stream []byte
		for i, p := range pieces {
			op := byte(model.OpContinuation)
			if i == 0 {
				op = model.OpText
			}
			stream = append(stream, clientFrame(i == len(pieces)-1, 0, op, p, [4]byte{0x5a, 0x01, 0xf0, 0x33})...)
		}
		s.sendSplit(stream, nil, nil)
		got := s.lastReturned(model.ReceiveMessage)
		closedWith1007 := len(s.frames) > frames && bytes.HasPrefix(s.frames[frames], []byte{0x88})
		if valid && (got.err != nil || !bytes.Equal(got.data, text)) || !valid && !closedWith1007 {
			t.Fatalf("received %q (%v), frames after it %q; utf8.Valid(%q) = %v", got.data, got.err, s.frames[frames:], text, valid)
		}
		if !valid && !bytes.HasPrefix(s.frames[frames][2:], []byte{0x03, 0xEF}) {
			t.Fatalf("invalid text answered with %s, not close 1007", describe(s.frames[frames]))
		}
		s.finish()
	})
}

// cutAt cuts b into len(cuts)+1 pieces: each cut is the length of the next
// piece, modulo what is left plus one. A cut of 0 gives an empty piece, as
// empty fragments are legal.
func cutAt(b, cuts []byte) [][]byte {
	var pieces [][]byte
	for _, c := range cuts {
		n := int(c) % (len(b) + 1)
		pieces = append(pieces, b[:n])
		b = b[n:]
	}
	return append(pieces, b)
}

// textPayload joins the payloads of a message's frames (unmasked, as the
// server sends them).
func textPayload(frames [][]byte) []byte {
	var out []byte
	for _, f := range frames {
		switch f[1] & 0x7F {
		case 126:
			out = append(out, f[4:]...)
		case 127:
			out = append(out, f[10:]...)
		default:
			out = append(out, f[2:]...)
		}
	}
	return out
}

// lastReturned is the last result of a call of kind, which must exist.
func (s *session) lastReturned(kind model.Kind) callResult {
	for i := len(s.returned) - 1; i >= 0; i-- {
		if s.returned[i].call == kind {
			return s.returned[i]
		}
	}
	s.fatalf("%s has not returned", kind)
	return callResult{}
}
