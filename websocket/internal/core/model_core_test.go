package core

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/wsmachine/wsmachine/model"
	"github.com/wsmachine/wsmachine/websocket/internal/wstest"
)

// The property test of STATE_MACHINE.md in memory: the protocol, driven by
// memConn, and the model in model/ are given the same inputs; after each,
// the frames written must be byte for byte the model's, and the calls'
// results, TCP's end, the state and the peer's close code the same. No
// socket or goroutine is involved, so it runs thousands of scenarios a
// second; model_test.go runs the same comparison through a real Conn and
// TCP for what only sockets show.

// coreMaxMessageSize is the limit of the in-memory tests: low, so that
// the messages they draw go past it often.
const coreMaxMessageSize = 200

// coreHarness drives a memConn and the model side by side.
type coreHarness struct {
	t     fataler
	m     *model.Conn
	c     *memConn
	trace []model.Input // the inputs so far, for failure reports

	// Reused from step to step: the model's frames and results.
	frames []byte
	want   []model.Result

	lastKey [4]byte // a client's: the last frame's masking key
}

// newCoreHarness starts a server's connection or, if client, a client's,
// without permessage-deflate (mode 0), with it and no context takeover
// (1), or with the peer's context takeover (2). Our messages leave
// uncompressed: the threshold is above their length.
func newCoreHarness(t fataler, mode int, client bool) *coreHarness {
	m := model.New()
	if client {
		m = model.NewClient()
	}
	m.MaxMessageSize = coreMaxMessageSize
	var received *History
	if mode > 0 {
		peers := mode == 2 // the peer's compressor keeps its history
		m.Deflate = &model.Deflate{ClientContextTakeover: peers && !client, ServerContextTakeover: peers && client, Threshold: 1 << 20}
		if peers {
			received = NewHistory(1 << 15)
		}
	}
	m.Step(model.Input{Kind: model.Handshake})
	return &coreHarness{t: t, m: m, c: newMemConn(coreMaxMessageSize, mode > 0, received, client), trace: make([]model.Input, 0, 64)}
}

func (h *coreHarness) fatalf(format string, args ...any) {
	var b strings.Builder
	for _, ev := range h.trace {
		fmt.Fprintf(&b, "\n  %s % x n=%d code=%d reason=%q", ev.Kind, ev.Data[:min(len(ev.Data), 64)], ev.N, ev.Code, ev.Reason)
	}
	h.t.Fatalf(format+"\ninputs:%s", append(args, b.String())...)
}

// step applies ev to both and compares what they did. A receive while
// another waits is left out: the calls take turns (recvMu), which the
// model, one call at a time, does not show.
func (h *coreHarness) step(ev model.Input) {
	switch ev.Kind {
	case model.ReceiveMessage, model.ReceiveText, model.ReceiveBinary:
		if h.m.Receiving() {
			return
		}
	}
	h.trace = append(h.trace, ev)
	Effects := h.m.Step(ev)
	h.c.input(ev)
	frames, want := h.frames[:0], h.want[:0]
	var tcp *model.TCPClose
	for _, e := range Effects {
		switch {
		case e.Frame != nil && e.Frame.Masked:
			frames = append(frames, h.masked(*e.Frame, len(frames))...)
		case e.Frame != nil:
			frames = append(frames, e.Frame.Bytes()...)
		case e.CloseTCP != nil:
			tcp = e.CloseTCP
		case e.Result != nil:
			want = append(want, *e.Result)
		}
	}
	if !bytes.Equal(h.c.out, frames) {
		h.fatalf("after %s (row %s): wrote %s, model %s", ev.Kind, h.m.Row, wstest.Describe(h.c.out), wstest.Describe(frames))
	}
	if (tcp == nil) != (h.c.tcp == nil) || tcp != nil && *tcp != *h.c.tcp {
		h.fatalf("after %s (row %s): TCP %+v, model %+v", ev.Kind, h.m.Row, h.c.tcp, tcp)
	}
	h.compareResults(ev, want)
	h.c.out, h.c.tcp, h.c.results = h.c.out[:0], nil, h.c.results[:0]
	h.frames, h.want = frames, want
	if got := h.c.p.Current().String(); got != string(h.m.State) {
		h.fatalf("after %s: state %s, model %s (row %s)", ev.Kind, got, h.m.State, h.m.Row)
	}
	if status, reason := h.c.p.PeerClose(); h.c.p.Ended() && (uint16(status) != h.m.Status || reason != h.m.Reason) {
		h.fatalf("after %s: GetStatus %d %q, model %d %q", ev.Kind, status, reason, h.m.Status, h.m.Reason)
	}
}

// masked is a client's frame f as the model predicts it, masked with the
// key that the frame written at offset at carries (the model does not
// predict keys), which must differ from the last frame's.
func (h *coreHarness) masked(f model.Frame, at int) []byte {
	keyAt := at + len(f.Bytes()) - len(f.Payload)
	if keyAt+4 > len(h.c.out) {
		return f.Bytes() // not written: the comparison reports it
	}
	key := [4]byte(h.c.out[keyAt : keyAt+4])
	if key == h.lastKey {
		h.fatalf("two frames masked with the key % x", key)
	}
	h.lastKey = key
	return f.MaskedBytes(key)
}

// compareResults matches the calls that returned with the model's.
func (h *coreHarness) compareResults(ev model.Input, want []model.Result) {
	if len(h.c.results) != len(want) {
		h.fatalf("after %s: %d calls returned %+v, model %d %+v", ev.Kind, len(h.c.results), h.c.results, len(want), want)
	}
	for _, r := range h.c.results {
		i := wstest.IndexOfCall(want, r.Call)
		if i < 0 {
			h.fatalf("after %s: %s returned (%v), the model expects no return", ev.Kind, r.Call, r.Err)
		}
		w := want[i]
		want = append(want[:i], want[i+1:]...)
		if got := errKind(r.Err); got != w.Err {
			h.fatalf("after %s: %s returned %q (%v), model %q", ev.Kind, r.Call, got, r.Err, w.Err)
		}
		if (w.Err == model.NoErr || w.Err == model.ErrTooLarge) && (r.Type != w.Type || !bytes.Equal(r.Data, w.Data)) {
			h.fatalf("after %s: %s returned type %d %q, model type %d %q", ev.Kind, r.Call, r.Type, wstest.Clip(r.Data), w.Type, wstest.Clip(w.Data))
		}
	}
}

// end applies Close, the end of TCP and the close timeout: every scenario
// ends with the connection ended and no call waiting.
func (h *coreHarness) end() {
	h.step(model.Input{Kind: model.CloseCall, Code: 1000})
	h.step(model.Input{Kind: model.ClientEOF})
	h.step(model.Input{Kind: model.CloseTimer})
	if !h.c.p.Ended() || h.c.recv != nil || h.c.closing {
		h.fatalf("the connection has not ended, or a call still waits")
	}
}

// TestCoreAgreesWithModel runs random scenarios against the protocol in
// memory, the peer's bytes split at random points.
// Rows: C1, O1–O8, O10, O13, K1–K6, K8–K11, K13, T1–T3, and the frame
// checks and compressed messages' rules (write failures, message writers
// and refused handshakes are model_test.go's).
func TestCoreAgreesWithModel(t *testing.T) {
	rapid.Check(t, coreScenario)
}

// coreScenario is one scenario of TestCoreAgreesWithModel and
// FuzzCoreRapid: a role, permessage-deflate or not, up to 40 steps, and
// the end.
func coreScenario(t *rapid.T) {
	mode, client := rapid.IntRange(0, 2).Draw(t, "deflate"), rapid.Bool().Draw(t, "client")
	h := newCoreHarness(t, mode, client)
	for _, ev := range rapid.SliceOfN(genCoreInput(mode > 0, client), 0, 40).Draw(t, "inputs") {
		for _, in := range ev {
			h.step(in)
		}
	}
	h.end()
}

// genCoreInput draws what a test does next: frames from the peer, split
// into pieces that arrive one by one, or an API call or a timer.
func genCoreInput(deflate, client bool) *rapid.Generator[[]model.Input] {
	return rapid.Custom(func(t *rapid.T) []model.Input {
		return coreInput(nil, rapidSource{t}, rapid.IntRange(0, 19).Draw(t, "kind"), deflate, client)
	})
}

// coreSource is where a scenario's choices come from: rapid's generators,
// or a fuzzer's bytes (fuzz_core_test.go).
type coreSource interface {
	intn(label string, n int) int // in [0, n)
	bytes(label string, max int) []byte
}

type rapidSource struct{ t *rapid.T }

func (s rapidSource) intn(label string, n int) int {
	return rapid.IntRange(0, n-1).Draw(s.t, label)
}

func (s rapidSource) bytes(label string, max int) []byte {
	return rapid.SliceOfN(rapid.Byte(), 0, max).Draw(s.t, label)
}

// coreTexts are payloads that exercise the UTF-8 checks: ASCII, valid
// multi-byte characters (split by fragments), and invalid sequences.
var coreTexts = [][]byte{
	[]byte("hello"), []byte("κόσμε"), []byte("\xf0\x9f\x98\x80 ok"), []byte("\xe2\x82"), []byte("\xac"),
	[]byte("\xff"), []byte("\xed\xa0\x80"), []byte("a\xc0\xafb"), nil,
}

// coreLong is the payload of frames too long for a control frame or the
// limit.
var coreLong = bytes.Repeat([]byte{'x'}, coreMaxMessageSize+1)

// coreCodes are close codes, valid and not, for the peer's close frames
// and Close calls.
var coreCodes = []uint16{1000, 1001, 1002, 1005, 1006, 1010, 1011, 1015, 999, 2999, 3000, 4999, 5000, 1004}

// coreInput appends to dst one step of a scenario, drawn from s; kind is
// in [0, 20). deflate: permessage-deflate was negotiated; client: the
// connection is a client's, its peer a server.
func coreInput(dst []model.Input, s coreSource, kind int, deflate, client bool) []model.Input {
	switch kind {
	case 0, 1, 2, 3, 4, 5, 6, 7: // frames from the peer
		var stream []byte
		for range 1 + s.intn("frames", 3) {
			stream = coreFrame(stream, s, deflate, client)
		}
		return coreSplit(dst, s, stream)
	case 8:
		return coreSplit(dst, s, s.bytes("raw", 40))
	case 9:
		return append(dst, model.Input{Kind: model.ClientEOF})
	case 10:
		return append(dst, model.Input{Kind: model.SendText, Data: coreTexts[s.intn("text", len(coreTexts))]})
	case 11:
		return append(dst, model.Input{Kind: model.SendBinary, Data: s.bytes("binary", 20)})
	case 12, 13:
		return append(dst, model.Input{Kind: model.ReceiveMessage})
	case 14:
		return append(dst, model.Input{Kind: model.ReceiveText, N: s.intn("n", 12)})
	case 15:
		return append(dst, model.Input{Kind: model.ReceiveBinary, N: s.intn("n", 12)})
	case 16, 17:
		reason := []string{"", "bye", "\xff", strings.Repeat("r", 124)}[s.intn("reason", 4)]
		return append(dst, model.Input{Kind: model.CloseCall, Code: coreCodes[s.intn("code", len(coreCodes))], Reason: reason})
	case 18:
		return append(dst, model.Input{Kind: model.CloseTimer})
	}
	return append(dst, model.Input{Kind: model.PingTick})
}

// coreFrame appends to dst one frame of the peer (a client's, masked, or,
// for a client, a server's): mostly a valid one (data that starts or
// continues a message, ping, pong, close; with deflate, half the messages
// compressed: stored blocks, cut short or not, or any bytes), one in eight
// broken (reserved bits or opcode, masked the wrong way, a control frame
// fragmented or too long) or too long for the limit.
func coreFrame(dst []byte, s coreSource, deflate, client bool) []byte {
	op := []byte{0, 0, 1, 2, 8, 9, 10}[s.intn("op", 7)]
	fin := op >= 8 || s.intn("fin", 3) != 0
	var payload []byte
	switch {
	case op == 8 && s.intn("close", 4) != 0:
		code := coreCodes[s.intn("code", len(coreCodes))]
		payload = wstest.ClosePayload(code, string(coreTexts[s.intn("reason", len(coreTexts))]))
	case op == 1 || op == 0 && s.intn("text", 2) == 0:
		payload = coreTexts[s.intn("text", len(coreTexts))]
	default:
		payload = s.bytes("payload", 20)
	}
	rsv, key, masked := byte(0), [4]byte{byte(s.intn("key", 256)), 0x5a, 0xc3, 0x0f}, !client
	if deflate && (op == 1 || op == 2) && s.intn("compressed", 2) == 1 {
		rsv = 4
		switch s.intn("deflated", 4) {
		case 0:
			payload = s.bytes("deflated", 12)
		case 1:
			payload = model.Stored(coreLong[:coreMaxMessageSize+1], 64)
		default:
			payload = model.Stored(payload, 1+s.intn("block", 8))
			payload = payload[:len(payload)-min(s.intn("cut", 3), len(payload))]
		}
	}
	if s.intn("broken", 8) == 0 {
		switch s.intn("how", 6) {
		case 0:
			rsv = byte(1 + s.intn("bits", 7))
		case 1:
			op = []byte{3, 7, 11, 15}[s.intn("reserved", 4)]
		case 2:
			masked = !masked
		case 3:
			fin = false
		case 4:
			payload = coreLong[:126+s.intn("length", 8)]
		case 5:
			payload = coreLong[:coreMaxMessageSize+s.intn("over", 2)]
		}
	}
	return wstest.Frame{Fin: fin, Rsv: rsv, Op: op, Payload: payload, NoMask: !masked, Mask: &key}.AppendTo(dst)
}

// coreSplit cuts the peer's bytes into at most four pieces that arrive
// one by one. (Choice 0, all a fuzzer's exhausted bytes give, is not to
// cut.)
func coreSplit(out []model.Input, s coreSource, b []byte) []model.Input {
	for cuts := 0; len(b) > 0; cuts++ {
		n := len(b)
		if cuts < 3 && s.intn("split", 3) == 1 {
			n = 1 + s.intn("at", len(b))
		}
		out = append(out, model.Input{Kind: model.ClientBytes, Data: b[:n]})
		b = b[n:]
	}
	return out
}

// errKind names err as the model does.
func errKind(err error) model.Err {
	switch {
	case err == nil:
		return model.NoErr
	case err == ErrConnClosed:
		return model.ErrConnClosed
	case errors.Is(err, ErrConnClosed):
		return model.WrapsErrConnClose
	case err == ErrMessageType:
		return model.ErrMessageType
	case err == ErrStatusCode:
		return model.ErrStatusCode
	case err == ErrTooLarge:
		return model.ErrTooLarge
	case err == ErrInvalidUTF8:
		return model.ErrInvalidUTF8
	}
	return model.Err("unexpected error: " + err.Error())
}

// fataler is what the harness needs of a *testing.T or *rapid.T.
type fataler interface {
	Fatalf(format string, args ...any)
}
