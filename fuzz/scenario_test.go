package fuzz

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"time"

	"github.com/wsmachine/wsmachine/model"
	"github.com/wsmachine/wsmachine/websocket"
)

// A scenario is a whole connection: what the client sends and what the
// server's handler calls, in order. Its fields are raw values, as gofuzz
// or rapid fill them; run gives them meaning, biased towards what a real
// client and handler do, so that most scenarios get past their first
// frame, while every field can still reach every rule of RFC 6455.
type scenario struct {
	Steps []action
	// Deflate picks whether the client offers permessage-deflate, and
	// to which server (see compressionOf).
	Deflate uint8
}

// action is one step; Kind selects which, the other fields are its
// arguments (each kind uses some of them).
type action struct {
	Kind   uint8
	Frames []frameSpec // client frames, sent as one byte stream
	Splits []uint16    // where that stream is cut into separate writes
	Text   string
	Data   []byte
	Writes [][]byte // SendMessage: the writes into the message writer
	Pick   uint8    // chooses among variants of the kind
	N      uint32
	Code   uint16
}

// The kinds of action.
type actionKind int

const (
	actFrames actionKind = iota
	actRawBytes
	actEOF
	actSendText
	actSendBinary
	actSendMessage
	actReceive
	actClose
	actPing
	actCancel
)

// kindOf maps Kind, modulo its length, to the kind of action. Client
// frames come up most often: they are where the untrusted input is.
var kindOf = []actionKind{actFrames, actFrames, actFrames, actFrames,
	actRawBytes, actEOF, actSendText, actSendBinary, actSendMessage, actReceive, actReceive, actClose,
	actPing, actCancel}

func (a action) kind() actionKind { return kindOf[int(a.Kind)%len(kindOf)] }

var actionFuncs = map[actionKind]func(s *session, a action){
	actFrames: doFrames, actRawBytes: doRawBytes, actEOF: doClientEOF,
	actSendText: doSendText, actSendBinary: doSendBinary, actSendMessage: doSendMessage,
	actReceive: doReceive, actClose: doClose, actPing: doPing, actCancel: doCancel,
}

// frameSpec is one client frame, possibly broken on purpose.
type frameSpec struct {
	Fin     bool
	Rsv     uint8 // RSV bits set only when Rsv%8 == 7: (Rsv>>3)&7
	Op      uint8 // index into frameOps
	Mask    uint8 // 0: sent unmasked
	Key     [4]byte
	Payload []byte
	Text    string
	Form    uint8 // how the payload and its length are written, see encode
}

// frameOps weights the opcodes: data and continuation first, then control,
// then the reserved ones.
var frameOps = []byte{1, 2, 0, 1, 2, 0, 9, 10, 8, 1, 0, 9, 3, 11, 15, 7}

// encode writes f as bytes on the wire.
func (f frameSpec) encode() []byte {
	op := frameOps[int(f.Op)%len(frameOps)]
	payload := f.Payload
	if op == model.OpText || op == model.OpContinuation && f.Form%2 == 0 {
		payload = []byte(f.Text)
		if f.Form%16 == 15 {
			payload = append(payload, f.Payload...) // may be invalid UTF-8
		}
	}
	control := op >= 8
	switch {
	case control && f.Form == 254:
		payload = bytes.Repeat([]byte{'p'}, 126) // too long for a control frame
	case control && len(payload) > 125:
		payload = payload[:125]
	case !control && f.Form >= 250:
		// Past the 16-bit length form, so that 64-bit lengths and
		// payloads spanning many reads come up.
		payload = bytes.Repeat(append(payload, 'x'), 70000/(len(payload)+1)+1)
	}
	var rsv byte
	if f.Rsv%8 == 7 {
		rsv = f.Rsv >> 3 & 7
	}
	b0 := op | rsv<<4
	if f.Fin || control && f.Form != 253 {
		b0 |= 0x80
	}
	maskBit := byte(0x80)
	if f.Mask == 0 {
		maskBit = 0
	}
	n := uint64(len(payload))
	out := []byte{b0}
	switch {
	case f.Form == 240: // 16-bit form where 7 bits would do (not minimal)
		out = binary.BigEndian.AppendUint16(append(out, maskBit|126), uint16(n))
	case f.Form == 241: // 64-bit form where fewer bits would do
		out = binary.BigEndian.AppendUint64(append(out, maskBit|127), n)
	case f.Form == 242: // the most significant bit set
		out = binary.BigEndian.AppendUint64(append(out, maskBit|127), n|1<<63)
	case f.Form == 243: // declares more than follows: the next frames are payload
		out = binary.BigEndian.AppendUint64(append(out, maskBit|127), n+1<<16)
	case f.Form == 244: // declares a little less: the rest is read as a header
		out = append(out, maskBit|byte(max(n, 1)-1))
	case n < 126:
		out = append(out, maskBit|byte(n))
	case n < 1<<16:
		out = binary.BigEndian.AppendUint16(append(out, maskBit|126), uint16(n))
	default:
		out = binary.BigEndian.AppendUint64(append(out, maskBit|127), n)
	}
	if maskBit == 0 {
		return append(out, payload...)
	}
	out = append(out, f.Key[:]...)
	for i, b := range payload {
		out = append(out, b^f.Key[i%4])
	}
	return out
}

// run plays the scenario against a real connection and the model.
func (sc scenario) run(t fataler) {
	handler, offer := compressionOf(sc.Deflate)
	s := newSessionDeflate(t, handler, offer)
	for _, a := range sc.Steps {
		actionFuncs[a.kind()](s, a)
	}
	s.finish()
}

func doFrames(s *session, a action) {
	if s.m.Deflate != nil && a.Pick%4 == 3 {
		doCompressed(s, a)
		return
	}
	var stream []byte
	for _, f := range a.Frames {
		b := f.encode()
		if s.m.Deflate != nil && b[0]&0x70 == 0x40 && (b[0]&0xF == model.OpText || b[0]&0xF == model.OpBinary) {
			// RSV1 alone on a message's first frame: compressed, its
			// payload arbitrary. doCompressed sends those, whole when
			// they fail; in pieces the server may find the failure
			// before the model does (STATE_MACHINE.md).
			b[0] &^= 0x40
		}
		stream = append(stream, b...)
	}
	s.sendSplit(stream, a.Splits, nil)
}

// doRawBytes sends arbitrary bytes, on sessions without permessage-deflate
// only: among them a compressed message could fail while inflating before
// its last frame, where the model judges it (STATE_MACHINE.md).
func doRawBytes(s *session, a action) {
	if s.m.Deflate == nil {
		s.sendSplit(a.Data, a.Splits, nil)
	}
}

// sendSplit sends b in pieces, cut where splits say, one event each, and
// calls after, if not nil, after each piece.
func (s *session) sendSplit(b []byte, splits []uint16, after func()) {
	send := func(piece []byte) {
		s.clientBytes(piece)
		if after != nil {
			after()
		}
	}
	for _, cut := range splits {
		if len(b) <= 1 {
			break
		}
		n := 1 + int(cut)%(len(b)-1)
		send(b[:n])
		b = b[n:]
	}
	if len(b) > 0 {
		send(b)
	}
}

func doClientEOF(s *session, a action) {
	if a.Pick%4 == 0 { // rarely: it ends the scenario's interesting part
		s.clientEOF()
	}
}

func doSendText(s *session, a action) {
	text := []byte(a.Text)
	if a.Pick%8 == 0 {
		text = append(text, a.Data...) // may be invalid UTF-8
	}
	s.step(model.Input{Kind: model.SendText, Data: text}, func() {
		s.start(model.SendText, func() callResult { return callResult{err: s.c.SendText(string(text))} })
	})
}

func doSendBinary(s *session, a action) {
	data := a.Data
	if a.Pick >= 250 {
		data = bytes.Repeat(append(data, 'b'), 70000/(len(data)+1)+1)
	}
	s.step(model.Input{Kind: model.SendBinary, Data: data}, func() {
		s.start(model.SendBinary, func() callResult { return callResult{err: s.c.SendBinary(data)} })
	})
}

// doSendMessage streams a message through a SendMessage writer: open, the
// writes, close, each awaited before the next as a handler would.
func doSendMessage(s *session, a action) {
	typ := []byte{model.OpText, model.OpBinary, model.OpText, model.OpBinary, model.OpText, model.OpBinary, model.OpText, 9}[a.Pick%8]
	s.step(model.Input{Kind: model.SendMessage, Type: typ}, func() {
		s.start(model.SendMessage, func() callResult {
			w, err := s.c.SendMessage(websocket.MessageType(typ))
			s.writer = w
			return callResult{err: err}
		})
	})
	if s.writer == nil {
		return
	}
	text, taken := []byte(a.Text), 0
	for i, p := range a.Writes {
		if typ == model.OpText && (a.Pick>>3)%4 != 0 {
			// Mostly valid text, cut anywhere, characters included.
			end := min(taken+len(p), len(text))
			p, taken = text[taken:end], end
		}
		if a.Pick >= 240 && i == 0 {
			p = bytes.Repeat(append(p, 'w'), 40000/(len(p)+1)+1) // more than the writer's buffer
		}
		s.step(model.Input{Kind: model.WriterWrite, Data: p}, func() {
			s.start(model.WriterWrite, func() callResult {
				n, err := s.writer.Write(p)
				return callResult{err: err, n: n}
			})
		})
	}
	if p := a.Pick % 16; p == 13 || p == 14 { // a binary or a text message given up
		w := s.writer.(websocket.MessageWriter)
		s.step(model.Input{Kind: model.WriterAbandon}, func() {
			s.start(model.WriterAbandon, func() callResult { return callResult{err: w.CloseWithError(errors.New("given up"))} })
		})
	} else {
		s.step(model.Input{Kind: model.WriterClose}, func() {
			s.start(model.WriterClose, func() callResult { return callResult{err: s.writer.Close()} })
		})
	}
	s.writer = nil
}

func doReceive(s *session, a action) {
	if s.m.Receiving() {
		return // one receive at a time, as the API serialises them anyway
	}
	kind := []model.Kind{model.ReceiveMessage, model.ReceiveText, model.ReceiveBinary}[a.Pick%3]
	n := int(a.N % 80000)
	if a.Pick%2 == 0 {
		n %= 16
	}
	var ctx context.Context // nil: the call without one
	if a.Pick&4 != 0 {
		ctx = s.callContext()
	}
	s.receiveIn(ctx, kind, n)
}

// receive starts a receive call of the given kind; n is the limit of
// ReceiveText and the buffer of ReceiveBinary.
func (s *session) receive(kind model.Kind, n int) { s.receiveIn(nil, kind, n) }

// receiveIn is receive, with the Context variant of the call unless ctx
// is nil.
func (s *session) receiveIn(ctx context.Context, kind model.Kind, n int) {
	s.ctxReceive = ctx != nil
	s.step(model.Input{Kind: kind, N: n}, func() {
		s.start(kind, func() callResult {
			switch {
			case kind == model.ReceiveText && ctx != nil:
				text, err := s.c.ReceiveTextContext(ctx, n)
				return callResult{err: err, data: []byte(text)}
			case kind == model.ReceiveText:
				text, err := s.c.ReceiveText(n)
				return callResult{err: err, data: []byte(text)}
			case kind == model.ReceiveBinary:
				buf := make([]byte, n)
				var m int
				var err error
				if ctx != nil {
					m, err = s.c.ReceiveBinaryContext(ctx, buf)
				} else {
					m, err = s.c.ReceiveBinary(buf)
				}
				return callResult{err: err, data: buf[:m], n: m}
			}
			var typ websocket.MessageType
			var r io.Reader
			var err error
			if ctx != nil {
				typ, r, err = s.c.ReceiveMessageContext(ctx)
			} else {
				typ, r, err = s.c.ReceiveMessage()
			}
			if err != nil {
				return callResult{err: err}
			}
			data, err := io.ReadAll(r)
			return callResult{err: err, typ: byte(typ), data: data}
		})
	})
}

// callContext returns the context the next call takes.
func (s *session) callContext() context.Context {
	if s.ctx == nil {
		s.ctx, s.cancelCtx = context.WithCancel(context.Background())
	}
	return s.ctx
}

// doPing calls Ping under the session's context and, unless Pick says
// not to, answers its ping with the pong the peer owes. The server must
// first have taken in everything sent before (fence): a pong the fuzzer
// sent earlier with the payload this Ping is about to have must not
// complete it.
func doPing(s *session, a action) {
	if s.m.Pinging() >= 3 {
		return
	}
	s.fence()
	ctx := s.callContext()
	s.step(model.Input{Kind: model.PingCall}, func() {
		s.start(model.PingCall, func() callResult {
			_, err := s.c.Ping(ctx)
			return callResult{err: err}
		})
	})
	if a.Pick%2 == 0 {
		s.clientBytes(s.peerFrame(true, 0, model.OpPong, binary.BigEndian.AppendUint64(nil, s.m.Pinged())))
	}
}

// doCancel ends the context of the calls that wait (see the harness of
// websocket/model_test.go, whose cancel this is): a receive waiting for
// its message's first frame and every Ping. While a receive waits, the
// server must first have read all the peer sent.
func doCancel(s *session, a action) {
	if s.ctx == nil || s.m.Receiving() && !s.ctxReceive {
		return
	}
	receiving := s.m.State == model.Open && s.m.Receiving()
	for deadline := time.Now().Add(stepTimeout); receiving && s.c.Stats().WireBytesReceived < s.sent; time.Sleep(50 * time.Microsecond) {
		if time.Now().After(deadline) {
			s.fatalf("the connection has not read the peer's %d bytes within %v", s.sent, stepTimeout)
		}
	}
	s.step(model.Input{Kind: model.CancelCall}, func() {
		s.cancelCtx()
		s.ctx, s.cancelCtx = nil, nil
	})
}

// closeCodes are the codes a handler passes to Close: every range of RFC
// 6455 §7.4, on both sides of each boundary.
var closeCodes = []uint16{1000, 1001, 1003, 1005, 1011, 1012, 1014, 3000, 4999,
	0, 999, 1002, 1004, 1006, 1007, 1010, 1015, 1016, 2999, 5000, 65535}

func doClose(s *session, a action) {
	if s.m.CloseWaiting() {
		return
	}
	code := closeCodes[int(a.Pick)%len(closeCodes)]
	if a.Pick >= 224 {
		code = a.Code
	}
	reason := a.Text
	if code == 1005 && a.N%4 != 0 {
		reason = ""
	}
	if a.N%16 == 1 {
		reason += string(a.Data) // long or invalid UTF-8
	}
	s.step(model.Input{Kind: model.CloseCall, Code: code, Reason: reason}, func() {
		s.start(model.CloseCall, func() callResult { return callResult{err: s.c.Close(websocket.Status(code), reason)} })
	})
}
