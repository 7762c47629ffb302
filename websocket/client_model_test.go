package websocket

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/wsmachine/wsmachine/websocket/internal/core"

	"pgregory.net/rapid"

	"github.com/wsmachine/wsmachine/model"

	"github.com/wsmachine/wsmachine/websocket/internal/wstest"
)

// The property tests of the client role (STATE_MACHINE.md, "Roles"): a
// client Conn from Dial against a server the test scripts byte by byte,
// side by side with model.NewClient(); and our client against our server,
// each end against a model of its role.

// dialAnswers are Sec-WebSocket-Extensions answers of the scripted
// server: each a list of header values (nil: no header), acceptable or
// not to the client's offer.
var dialAnswers = [][]string{nil, nil, {"permessage-deflate"},
	{"permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
	{"permessage-deflate; server_no_context_takeover"}, {"permessage-deflate; client_no_context_takeover"},
	{"permessage-deflate; server_max_window_bits=10"}, {"permessage-deflate; client_max_window_bits=15"},
	{"permessage-deflate; server_max_window_bits=9; client_max_window_bits=8"}, {"permessage-deflate; client_max_window_bits"},
	{"permessage-deflate; server_no_context_takeover=1"}, {"permessage-deflate; server_max_window_bits=16"},
	{"permessage-deflate, permessage-deflate"}, {"permessage-deflate", "x-other"}, {"x-webkit-deflate-frame"}}

// newClientHarness dials ln with compression mode (and threshold), and
// answers the handshake as a server with answer as
// Sec-WebSocket-Extensions. If the model refuses the answer, Dial must
// fail with a *HandshakeError and newClientHarness returns nil.
func newClientHarness(t fataler, r *rapid.T, ln net.Listener, mode CompressionMode, threshold int, answer []string) *harness {
	type dialed struct {
		c   *Conn
		err error
	}
	done := make(chan dialed, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
		defer cancel()
		c, _, err := Dial(ctx, "ws://"+ln.Addr().String()+"/model", &DialOptions{Compression: mode,
			CompressionThreshold: threshold, MaxMessageSize: modelMaxMessageSize, CloseTimeout: time.Hour})
		done <- dialed{c, err}
	}()
	nc, err := ln.Accept()
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	nc.SetDeadline(time.Now().Add(time.Minute))
	br := bufio.NewReader(nc)
	req, err := http.ReadRequest(br)
	if err != nil {
		t.Fatalf("reading the client's request: %v", err)
	}
	if got, want := req.Header.Get("Sec-WebSocket-Extensions"), model.DialOffer(model.Compression(mode)); got != want {
		t.Fatalf("mode %d: the client offers %q, model %q", mode, got, want)
	}
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		wstest.AcceptKey(req.Header.Get("Sec-WebSocket-Key")) + "\r\n"
	for _, v := range answer {
		resp += "Sec-WebSocket-Extensions: " + v + "\r\n"
	}
	io.WriteString(nc, resp+"\r\n")
	d := <-done
	deflate, ok := model.AcceptAnswer(model.Compression(mode), answer, threshold)
	var he *HandshakeError
	switch {
	case !ok && d.err == nil:
		d.c.Close(StatusOK, "")
		nc.Close()
		t.Fatalf("mode %d, answer %q: Dial succeeded, the model refuses the answer", mode, answer)
	case !ok && !errors.As(d.err, &he):
		nc.Close()
		t.Fatalf("mode %d, answer %q: Dial: %v, want a *HandshakeError", mode, answer, d.err)
	case !ok:
		nc.Close()
		return nil
	case d.err != nil:
		nc.Close()
		t.Fatalf("mode %d, answer %q: Dial: %v, the model accepts the answer", mode, answer, d.err)
	}
	h := &harness{t: t, r: r, m: model.NewClient(), c: d.c, nc: nc, br: br, results: make(chan callResult, 16), client: true}
	h.m.MaxMessageSize = modelMaxMessageSize
	h.m.Deflate = deflate
	h.c.mu.Lock()
	h.c.bgDelay = time.Microsecond // as startModelServer's handlers: the tests need not wait for it
	h.c.mu.Unlock()
	h.m.Step(model.Input{Kind: model.Handshake})
	return h
}

// serverViolations are frames a client must refuse.
var serverViolations = []func(key [4]byte) []byte{
	func(k [4]byte) []byte { return wstest.ClientFrame(true, 0, byte(core.OpText), []byte("hi"), k) },     // masked
	func(k [4]byte) []byte { return wstest.ClientFrame(true, 0, byte(core.OpClose), []byte{3, 232}, k) },  // masked close
	func(k [4]byte) []byte { return wstest.ServerFrame(true, 0, byte(core.OpClose), []byte{0x03, 0xF7}) }, // 1015 from a server
	func(k [4]byte) []byte { return wstest.ServerFrame(true, 4, byte(core.OpText), []byte("x")) },         // RSV1
	func(k [4]byte) []byte { return wstest.ServerFrame(true, 1, byte(core.OpBinary), nil) },               // RSV3
	func(k [4]byte) []byte { return wstest.ServerFrame(true, 0, 3, nil) },                                 // reserved opcode
	func(k [4]byte) []byte { return wstest.ServerFrame(false, 0, byte(core.OpPing), nil) },                // fragmented ping
	func(k [4]byte) []byte { return wstest.ServerFrame(true, 0, byte(core.OpPing), make([]byte, 126)) },   // long ping
	func(k [4]byte) []byte { return wstest.ServerFrame(true, 0, byte(core.OpContinuation), []byte("c")) }, // stray continuation
	func(k [4]byte) []byte { return wstest.ServerFrame(true, 0, byte(core.OpClose), []byte{3}) },          // 1-byte close
	func(k [4]byte) []byte { return []byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1} },                        // top length bit
	func(k [4]byte) []byte { return []byte{0x82, 126, 0, 5} },                                             // non-minimal length
}

// TestClientAgreesWithModel is the rapid state-machine test of the client
// role: a client Conn from Dial against a scripted server.
// Rows: every row a random scenario reaches at a client, checked against
// the model, not named one by one.
func TestClientAgreesWithModel(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	rapid.Check(t, func(t *rapid.T) {
		mode := rapid.SampledFrom([]CompressionMode{CompressionOff, CompressionOff, CompressionNoContextTakeover, CompressionContextTakeover}).Draw(t, "mode")
		answer := [][]string(nil)
		if mode != CompressionOff {
			answer = dialAnswers
		}
		h := newClientHarness(t, t, ln, mode, rapid.SampledFrom([]int{0, 64}).Draw(t, "threshold"),
			rapid.SampledFrom(append(answer, nil, []string{"permessage-deflate"})).Draw(t, "answer"))
		if h == nil {
			return
		}
		defer h.finish()
		t.Repeat(withActions(map[string]func(*rapid.T){
			"":                 func(t *rapid.T) { h.invariants() },
			"serverMessage":    h.clientMessage,
			"serverCompressed": h.clientCompressed,
			"serverPing": func(t *rapid.T) {
				h.sendBytes(wstest.ServerFrame(true, 0, byte(core.OpPing), rapid.SliceOfN(rapid.Byte(), 0, 125).Draw(t, "ping")))
			},
			"serverPong": func(t *rapid.T) {
				h.sendBytes(wstest.ServerFrame(true, 0, byte(core.OpPong), []byte("unsolicited")))
			},
			"serverClose": h.clientClose,
			"serverViolation": func(t *rapid.T) {
				if rapid.IntRange(0, 3).Draw(t, "violate") == 0 {
					h.sendBytes(rapid.SampledFrom(serverViolations).Draw(t, "violation")(genKey(t)))
				}
			},
			"serverEOF": func(t *rapid.T) {
				if rapid.IntRange(0, 5).Draw(t, "eof") == 0 {
					h.step(model.Input{Kind: model.ServerEOF}, func() {
						h.nc.(*net.TCPConn).CloseWrite()
						h.peerEOF = true
					})
				}
			},
		}, h.apiActions()))
	})
}

// TestClientModelHandshakeAnswers runs every answer of dialAnswers to
// every offer: Dial fails exactly where the model refuses the answer.
// Rows: C1, C2; "Opening handshake, client".
func TestClientModelHandshakeAnswers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, mode := range []CompressionMode{CompressionOff, CompressionNoContextTakeover, CompressionContextTakeover} {
		for _, answer := range dialAnswers {
			t.Run(fmt.Sprintf("%d/%s", mode, strings.Join(answer, "|")), func(t *testing.T) {
				if h := newClientHarness(t, nil, ln, mode, 0, answer); h != nil {
					h.finish()
				}
			})
		}
	}
}

// duplex is our client and our server over loopback, each side by side
// with a model of its role; the models exchange the frames the real ends
// do: each frame one model writes is fed to the other, as the bytes of
// the peer (a compressed message compressed by the test, with the
// direction's history: the receiver judges what it inflates to).
type duplex struct {
	t       fataler
	m       [2]*model.Conn // 0: server, 1: client
	c       [2]*Conn
	results chan sideResult
	calls   int
	history [2][]byte // of the compressed messages each side sent
	trace   []string
	// tcpClosed: one end has closed TCP. From then on the other end
	// only receives and times out: what a write to a closed socket
	// meets (accepted, or a reset that turns the next read's EOF into
	// an error) depends on timing, not on the state machine.
	tcpClosed bool
	// reset: after tcpClosed, a read met the peer's reset. A socket
	// closed with bytes unread resets the connection, and the reset
	// throws away what the other end had not read yet: which of the
	// queued frames that destroys is timing too, so the scenario ends.
	reset bool
}

type sideResult struct {
	side int
	callResult
}

var sideNames = [2]string{"server", "client"}

func (d *duplex) fatalf(format string, args ...any) {
	d.t.Fatalf(format+"\nevents:\n  %s", append(args, strings.Join(d.trace, "\n  "))...)
}

// deliver feeds side's effects to the other side's model, and that
// model's effects back, until nothing more crosses; it returns the results
// each model predicts.
func (d *duplex) deliver(side int, effects []model.Effect, want *[2][]model.Result) {
	peer := 1 - side
	for _, e := range effects {
		switch {
		case e.Frame != nil:
			f := *e.Frame
			var wire []byte
			switch {
			case f.Compressed:
				var dict []byte
				if d.m[side].SendContextTakeover() {
					dict = model.LastWindow(d.history[side], d.m[peer].RecvWindow())
				}
				wire = wstest.ServerFrame(true, 4, f.Op, model.Compress(f.Payload, dict, false))
				d.history[side] = model.AddHistory(d.history[side], f.Payload)
				if f.Masked {
					wire = wstest.ClientFrame(true, 4, f.Op, model.Compress(f.Payload, dict, false), exhaustiveKey)
				}
			case f.Masked:
				wire = f.MaskedBytes(exhaustiveKey)
			default:
				wire = f.Bytes()
			}
			d.deliver(peer, d.m[peer].Step(model.Input{Kind: model.ClientBytes, Data: wire}), want)
		case e.CloseTCP != nil:
			d.tcpClosed = true
			d.deliver(peer, d.m[peer].Step(model.Input{Kind: model.ClientEOF}), want)
		case e.Result != nil:
			want[side] = append(want[side], *e.Result)
		}
	}
}

// step applies ev to side's model and runs call on the real side, then
// checks that both real ends return, reach the states and end as the
// models say.
func (d *duplex) step(side int, ev model.Input, call func(c *Conn) callResult) {
	if d.reset {
		return
	}
	d.trace = append(d.trace, fmt.Sprintf("%s: %s %q n=%d code=%d reason=%q", sideNames[side], ev.Kind, wstest.Clip(ev.Data), ev.N, ev.Code, ev.Reason))
	var want [2][]model.Result
	d.deliver(side, d.m[side].Step(ev), &want)
	c := d.c[side]
	if ev.Kind == model.CloseTimer {
		call(c) // not an API call: nothing returns
	} else {
		d.calls++
		go func() {
			r := call(c)
			r.call = ev.Kind
			d.results <- sideResult{side, r}
		}()
	}
	for len(want[0])+len(want[1]) > 0 {
		var r sideResult
		select {
		case r = <-d.results:
			d.calls--
		case <-time.After(stepTimeout):
			d.fatalf("after %s's %s: calls did not return within %v (models: %+v)", sideNames[side], ev.Kind, stepTimeout, want)
		}
		i := wstest.IndexOfResult(want[r.side], r.call, errKind(r.err))
		if i < 0 {
			d.fatalf("after %s's %s: the %s's %s returned (%v), its model expects no return", sideNames[side], ev.Kind, sideNames[r.side], r.call, r.err)
		}
		w := want[r.side][i]
		if d.tcpClosed && isReset(r.err) {
			d.reset = true
			return
		}
		if got := errKind(r.err); got != w.Err {
			d.fatalf("after %s's %s: the %s's %s returned %q (%v), model %q", sideNames[side], ev.Kind, sideNames[r.side], r.call, got, r.err, w.Err)
		}
		if w.Err == model.NoErr && (r.typ != w.Type || string(r.data) != string(w.Data)) {
			d.fatalf("the %s's %s: type %d %q, model type %d %q", sideNames[r.side], r.call, r.typ, wstest.Clip(r.data), w.Type, wstest.Clip(w.Data))
		}
		want[r.side] = append(want[r.side][:i], want[r.side][i+1:]...)
	}
	for s := range d.m {
		if d.m[s].Receiving() {
			awaitReader(d, d.c[s])
		}
	}
	// The real ends get there asynchronously: each must reach its
	// model's state, and end if that is terminal.
	for s, m := range d.m {
		deadline := time.Now().Add(stepTimeout)
		for d.c[s].currentState().String() != string(m.State) {
			if d.tcpClosed && d.c[s].endedByReset() {
				d.reset = true // a reader met it: see reset
				return
			}
			if time.Now().After(deadline) {
				d.fatalf("after %s's %s: the %s is %s, its model %s (row %s)", sideNames[side], ev.Kind, sideNames[s], d.c[s].currentState(), m.State, m.Row)
			}
			time.Sleep(50 * time.Microsecond)
		}
		if !m.State.Terminal() {
			continue
		}
		select {
		case <-d.c[s].ended():
		case <-time.After(stepTimeout):
			d.fatalf("the %s's model is %s, its GetStatus does not return", sideNames[s], m.State)
		}
		if st, reason := d.c[s].GetStatus(); uint16(st) != m.Status || reason != m.Reason {
			d.fatalf("the %s's GetStatus = %d %q, model %d %q", sideNames[s], st, reason, m.Status, m.Reason)
		}
	}
	select {
	case r := <-d.results:
		d.fatalf("after %s's %s: the %s's %s returned (%v), its model expects it to wait", sideNames[side], ev.Kind, sideNames[r.side], r.call, r.err)
	default:
	}
}

// isReset reports whether err is the peer's TCP reset.
func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset by peer")
}

// endedByReset reports whether c ended because the peer reset TCP.
func (c *Conn) endedByReset() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return isReset(c.p.EndErr())
}

// awaitReader waits until a receive call holds c's read side, so that
// what the peer sends next reaches it rather than the background reader.
func awaitReader(d *duplex, c *Conn) {
	for deadline := time.Now().Add(stepTimeout); ; time.Sleep(20 * time.Microsecond) {
		c.mu.Lock()
		registered := c.readers > 0
		c.mu.Unlock()
		if registered && !c.readMu.TryLock() {
			time.Sleep(100 * time.Microsecond)
			return
		}
		if registered {
			c.readMu.Unlock()
		}
		if time.Now().After(deadline) {
			d.fatalf("a receive call has not started within %v", stepTimeout)
		}
	}
}

// finish ends both connections and waits for every call to return.
func (d *duplex) finish() {
	for s := range d.c {
		c := d.c[s]
		d.calls++
		go func() { d.results <- sideResult{s, callResult{err: c.Close(StatusOK, "")}} }()
	}
	deadline := time.Now().Add(stepTimeout)
	for s := range d.c {
		for {
			select {
			case <-d.c[s].ended():
			default:
				if time.Now().After(deadline) {
					d.fatalf("the %s has not ended", sideNames[s])
				}
				// A message nobody reads keeps the close frame behind
				// it unread: the close timer ends it.
				d.c[s].apply(d.c[s].stepLocked(core.EvCloseTimeout, 0, ""), nil)
				time.Sleep(time.Millisecond)
				continue
			}
			break
		}
	}
	for ; d.calls > 0; d.calls-- {
		select {
		case <-d.results:
		case <-time.After(stepTimeout):
			d.fatalf("%d API calls still blocked after both ends ended", d.calls)
		}
	}
}

func realReceive(kind model.Kind, n int) func(c *Conn) callResult {
	return func(c *Conn) callResult {
		switch kind {
		case model.ReceiveText:
			s, err := c.ReceiveText(n)
			return callResult{err: err, data: []byte(s)}
		case model.ReceiveBinary:
			buf := make([]byte, n)
			m, err := c.ReceiveBinary(buf)
			return callResult{err: err, data: buf[:m], n: m}
		}
		tp, r, err := c.ReceiveMessage()
		if err != nil {
			return callResult{err: err}
		}
		data, err := io.ReadAll(r)
		return callResult{err: err, typ: byte(tp), data: data}
	}
}

// TestClientServerAgreeWithModel runs our client against our server over
// loopback, with random calls on both ends, each end against a model of
// its role.
// Rows: every row a random scenario reaches at either end, checked against
// the model, not named one by one.
func TestClientServerAgreeWithModel(t *testing.T) {
	s := startModelServer(t)
	rapid.Check(t, func(t *rapid.T) {
		handler := rapid.IntRange(0, len(modelHandlers)-1).Draw(t, "handler")
		mode := rapid.SampledFrom([]CompressionMode{CompressionOff, CompressionNoContextTakeover, CompressionContextTakeover}).Draw(t, "clientMode")
		threshold := rapid.SampledFrom([]int{0, 16}).Draw(t, "clientThreshold")
		mh := modelHandlers[handler]
		ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
		defer cancel()
		cc, resp, err := Dial(ctx, "ws://"+s.addr+mh.path, &DialOptions{Compression: mode, CompressionThreshold: threshold,
			MaxMessageSize: modelMaxMessageSize, CloseTimeout: time.Hour})
		if err != nil {
			t.Fatalf("Dial %s: %v", mh.path, err)
		}
		d := &duplex{t: t, m: [2]*model.Conn{model.New(), model.NewClient()}, c: [2]*Conn{<-s.conns, cc}, results: make(chan sideResult, 16)}
		var offers []string
		if offer := model.DialOffer(model.Compression(mode)); offer != "" {
			offers = []string{offer}
		}
		sd, answer := model.Negotiate(model.Compression(mh.mode), offers, mh.threshold)
		got := resp.Header.Values("Sec-WebSocket-Extensions")
		if strings.Join(got, ",") != answer {
			t.Fatalf("client mode %d to %s: Sec-WebSocket-Extensions %q, model %q", mode, mh.path, got, answer)
		}
		cd, ok := model.AcceptAnswer(model.Compression(mode), got, threshold)
		if !ok {
			t.Fatalf("client mode %d: the model refuses %q, Dial accepted it", mode, got)
		}
		d.m[0].Deflate, d.m[1].Deflate = sd, cd
		for s := range d.m {
			d.m[s].MaxMessageSize = modelMaxMessageSize
			d.m[s].Step(model.Input{Kind: model.Handshake})
			d.c[s].mu.Lock()
			d.c[s].bgDelay = time.Microsecond
			d.c[s].mu.Unlock()
		}
		defer d.finish()
		side := func(t *rapid.T) int { return rapid.IntRange(0, 1).Draw(t, "side") }
		t.Repeat(map[string]func(*rapid.T){
			"sendText": func(t *rapid.T) {
				if d.tcpClosed {
					return
				}
				s, msg := side(t), genPayload(t, true, "text")
				msg = msg[:min(len(msg), 70000)]
				if !utf8.Valid(msg) {
					msg = []byte(strings.ToValidUTF8(string(msg), "?"))
				}
				d.step(s, model.Input{Kind: model.SendText, Data: msg}, func(c *Conn) callResult { return callResult{err: c.SendText(string(msg))} })
			},
			"sendBinary": func(t *rapid.T) {
				if d.tcpClosed {
					return
				}
				s, msg := side(t), genPayload(t, false, "binary")
				msg = msg[:min(len(msg), 70000)]
				d.step(s, model.Input{Kind: model.SendBinary, Data: msg}, func(c *Conn) callResult { return callResult{err: c.SendBinary(msg)} })
			},
			"receive": func(t *rapid.T) {
				s := side(t)
				kind := rapid.SampledFrom([]model.Kind{model.ReceiveMessage, model.ReceiveText, model.ReceiveBinary}).Draw(t, "receive")
				n := rapid.IntRange(0, 70000).Draw(t, "limit")
				if !d.m[s].Receiving() {
					d.step(s, model.Input{Kind: kind, N: n}, realReceive(kind, n))
				}
			},
			"close": func(t *rapid.T) {
				if d.tcpClosed {
					return
				}
				s := side(t)
				code := rapid.SampledFrom([]uint16{1000, 1001, 1005, 1010, 1011, 3000, 4999, 1006}).Draw(t, "closeCode")
				reason := ""
				if code != 1005 {
					reason = rapid.StringN(0, 10, 100).Draw(t, "closeReason")
				}
				if !d.m[s].CloseWaiting() {
					d.step(s, model.Input{Kind: model.CloseCall, Code: code, Reason: reason}, func(c *Conn) callResult {
						return callResult{err: c.Close(Status(code), reason)}
					})
				}
			},
			"closeTimer": func(t *rapid.T) {
				s := side(t)
				if d.m[s].State == model.Closing {
					d.step(s, model.Input{Kind: model.CloseTimer}, func(c *Conn) callResult {
						c.apply(c.stepLocked(core.EvCloseTimeout, 0, ""), nil)
						return callResult{}
					})
				}
			},
		})
	})
}
