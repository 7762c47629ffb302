// Package coretest drives the protocol core (package core) in memory,
// without socket, goroutine or clock, and compares it with the model in
// model/ after every input: the property tests and fuzz targets of the
// protocol (core's TestCoreAgreesWithModel and FuzzCoreRapid, and FuzzCore
// here) are built on it. It is a package of its own, not test files of
// core, so that FuzzCore's test binary holds no more than it needs: the
// fuzzing engine's cost per execution grows with the code linked in.
package coretest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/wsmachine/wsmachine/model"
	"github.com/wsmachine/wsmachine/websocket/internal/core"
	"github.com/wsmachine/wsmachine/websocket/internal/wstest"
)

// MaxMessageSize is the limit of the in-memory tests: low, so that
// the messages they draw go past it often.
const MaxMessageSize = 200

// Harness drives a memConn and the model side by side.
type Harness struct {
	t     TB
	m     *model.Conn
	c     *memConn
	trace []model.Input // the inputs so far, for failure reports

	// Reused from step to step: the model's frames and results.
	frames []byte
	want   []model.Result

	lastKey [4]byte // a client's: the last frame's masking key
}

// NewHarness starts a server's connection or, if client, a client's,
// without permessage-deflate (mode 0), with it and no context takeover
// (1), or with the peer's context takeover (2). Our messages leave
// uncompressed: the threshold is above their length.
func NewHarness(t TB, mode int, client bool) *Harness {
	m := model.New()
	if client {
		m = model.NewClient()
	}
	m.MaxMessageSize = MaxMessageSize
	var received *core.History
	if mode > 0 {
		peers := mode == 2 // the peer's compressor keeps its history
		m.Deflate = &model.Deflate{ClientContextTakeover: peers && !client, ServerContextTakeover: peers && client, Threshold: 1 << 20}
		if peers {
			received = core.NewHistory(1 << 15)
		}
	}
	m.Step(model.Input{Kind: model.Handshake})
	return &Harness{t: t, m: m, c: newMemConn(MaxMessageSize, mode > 0, received, client), trace: takeTrace()}
}

func (h *Harness) fatalf(format string, args ...any) {
	var b strings.Builder
	for _, ev := range h.trace {
		fmt.Fprintf(&b, "\n  %s % x n=%d code=%d reason=%q", ev.Kind, ev.Data[:min(len(ev.Data), 64)], ev.N, ev.Code, ev.Reason)
	}
	h.t.Fatalf(format+"\ninputs:%s", append(args, b.String())...)
}

// Step applies ev to both and compares what they did. A receive while
// another waits is left out: the calls take turns (recvMu), which the
// model, one call at a time, does not show.
func (h *Harness) Step(ev model.Input) {
	switch ev.Kind {
	case model.ReceiveMessage, model.ReceiveText, model.ReceiveBinary:
		if h.m.Receiving() {
			return
		}
	}
	h.trace = append(h.trace, ev)
	effects := h.m.Step(ev)
	h.c.input(ev)
	frames, want := h.frames[:0], h.want[:0]
	var tcp *model.TCPClose
	for _, e := range effects {
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
func (h *Harness) masked(f model.Frame, at int) []byte {
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
func (h *Harness) compareResults(ev model.Input, want []model.Result) {
	if len(h.c.results) != len(want) {
		h.fatalf("after %s: %d calls returned %+v, model %d %+v", ev.Kind, len(h.c.results), h.c.results, len(want), want)
	}
	for _, r := range h.c.results {
		i := wstest.IndexOfResult(want, r.Call, ErrKind(r.Err))
		if i < 0 {
			h.fatalf("after %s: %s returned (%v), the model expects no return", ev.Kind, r.Call, r.Err)
		}
		w := want[i]
		want = append(want[:i], want[i+1:]...)
		if got := ErrKind(r.Err); got != w.Err {
			h.fatalf("after %s: %s returned %q (%v), model %q", ev.Kind, r.Call, got, r.Err, w.Err)
		}
		if (w.Err == model.NoErr || w.Err == model.ErrTooLarge) && (r.Type != w.Type || !bytes.Equal(r.Data, w.Data)) {
			h.fatalf("after %s: %s returned type %d %q, model type %d %q", ev.Kind, r.Call, r.Type, wstest.Clip(r.Data), w.Type, wstest.Clip(w.Data))
		}
	}
}

// End applies Close, the end of TCP and the close timeout: every scenario
// ends with the connection ended and no call waiting.
func (h *Harness) End() {
	h.Step(model.Input{Kind: model.CloseCall, Code: 1000})
	h.Step(model.Input{Kind: model.ClientEOF})
	h.Step(model.Input{Kind: model.CloseTimer})
	if !h.c.p.Ended() || h.c.recv != nil || h.c.closing {
		h.fatalf("the connection has not ended, or a call still waits")
	}
	spareTrace.Lock()
	spareTrace.buf = h.trace[:0]
	spareTrace.Unlock()
}

// spareTrace is the last harness's trace, for the next one: the fuzzers
// run scenarios by the ten thousand a second, one after another, and
// growing a new trace each time cost them a third of their time. (A
// sync.Pool loses it at every garbage collection, which comes often.)
var spareTrace struct {
	sync.Mutex
	buf []model.Input
}

// takeTrace returns an empty trace, the spare one if it is there.
func takeTrace() []model.Input {
	spareTrace.Lock()
	defer spareTrace.Unlock()
	buf := spareTrace.buf
	spareTrace.buf = nil
	return buf
}

// ErrKind names err as the model does: the protocol's errors, which the
// websocket package exports as its own.
func ErrKind(err error) model.Err {
	switch {
	case err == nil:
		return model.NoErr
	case err == core.ErrConnClosed:
		return model.ErrConnClosed
	case errors.Is(err, core.ErrConnClosed):
		return model.WrapsErrConnClose
	case err == core.ErrMessageType:
		return model.ErrMessageType
	case err == core.ErrStatusCode:
		return model.ErrStatusCode
	case err == core.ErrTooLarge:
		return model.ErrTooLarge
	case err == core.ErrInvalidUTF8:
		return model.ErrInvalidUTF8
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return model.ErrCanceled
	}
	return model.Err("unexpected error: " + err.Error())
}

// TB is what the harness needs of a *testing.T or *rapid.T.
type TB interface {
	Fatalf(format string, args ...any)
}
