package websocket

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/wsmachine/wsmachine/websocket/internal/core"
	"github.com/wsmachine/wsmachine/websocket/internal/coretest"

	"pgregory.net/rapid"

	"github.com/wsmachine/wsmachine/model"

	"github.com/wsmachine/wsmachine/websocket/internal/wstest"
)

// The property test of STATE_MACHINE.md: a real Conn, reached through a
// real loopback TCP connection and Handler, and the model in model/ are
// given the same events; after each, the frames the server wrote must be
// byte for byte those the model predicts, and the API results, close codes
// and states the same.

// stepTimeout bounds the wait for something the model says must happen.
const stepTimeout = 5 * time.Second

// modelServer accepts connections for the property tests.
type modelServer struct {
	addr  string
	conns chan *Conn
	srv   *http.Server
}

// modelMaxMessageSize is the message size limit of the property tests:
// some of the payloads they draw (up to 200 KiB) go past it.
const modelMaxMessageSize = 150 << 10

// modelHandlers are the servers' settings of permessage-deflate, by path:
// each mode, with the default threshold and a low one.
var modelHandlers = []struct {
	path      string
	mode      CompressionMode
	threshold int
}{
	{"/model", CompressionOff, 0},
	{"/model/nc", CompressionNoContextTakeover, 0},
	{"/model/ct", CompressionContextTakeover, 64},
}

// startModelServer starts a server whose background reader starts at once,
// so that the tests need not wait for it.
func startModelServer(t testing.TB) *modelServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &modelServer{addr: ln.Addr().String(), conns: make(chan *Conn, 1)}
	mux := http.NewServeMux()
	for _, mh := range modelHandlers {
		mux.Handle(mh.path, &Handler{bgDelay: time.Microsecond, MaxMessageSize: modelMaxMessageSize,
			Compression: mh.mode, CompressionThreshold: mh.threshold, Handle: func(c *Conn) {
				c.closeTimeout = time.Hour // the harness fires the close timer itself
				s.conns <- c
			}})
	}
	s.srv = &http.Server{Handler: mux}
	go s.srv.Serve(ln)
	t.Cleanup(func() { s.srv.Close() })
	return s
}

// callResult is what a real API call returned.
type callResult struct {
	call model.Kind
	err  error
	typ  byte
	data []byte
	n    int
}

// fataler is what the harness needs of a *testing.T or *rapid.T.
type fataler interface {
	Fatalf(format string, args ...any)
}

// harness drives one connection and its model.
type harness struct {
	t        fataler
	r        *rapid.T // draws random splits of the client's bytes; nil: none
	m        *model.Conn
	c        *Conn
	nc       net.Conn
	br       *bufio.Reader
	results  chan callResult
	calls    int // real calls started and not returned yet
	writer   io.WriteCloser
	tcpEnded bool
	trace    []string // the events so far, for failure reports

	// With permessage-deflate: the histories of each direction's
	// compressed messages, for context takeover.
	sentHistory, recvHistory []byte
	historyUnknown           bool

	// client: c is a client Conn from Dial, nc the test's end as the
	// server (client_model_test.go); its frames are masked, each with a
	// key other than the last one's.
	client  bool
	lastKey [4]byte
	frames  int  // frames read from the client
	peerEOF bool // the test, as the server, half-closed TCP

	next []byte // a frame read ahead by skipUnfinished, for readFrame

	// The context of the calls that take one (receives drawn so, Ping),
	// and its cancel; a new one after each cancel. ctxReceive: the
	// receive that waits, if any, took it.
	ctx        context.Context
	cancelCtx  context.CancelFunc
	ctxReceive bool
	sent       uint64 // the bytes the peer wrote (sendBytes)
}

// frame builds a frame of the peer of h.c: a client's, masked with key,
// or, if h.c is a client, a server's, unmasked.
func (h *harness) frame(fin bool, rsv, op byte, payload []byte, key [4]byte) []byte {
	if h.client {
		return wstest.ServerFrame(fin, rsv, op, payload)
	}
	return wstest.ClientFrame(fin, rsv, op, payload, key)
}

// fatalf fails with the events that led here: a failure that depends on
// timing may not survive rapid's shrinking.
func (h *harness) fatalf(format string, args ...any) {
	h.t.Fatalf(format+"\nevents:\n  %s", append(args, strings.Join(h.trace, "\n  "))...)
}

func newHarness(t fataler, r *rapid.T, s *modelServer) *harness {
	return newHarnessDeflate(t, r, s, 0, "")
}

// newHarnessDeflate connects to the server of modelHandlers[handler],
// offering permessage-deflate as offer says ("": no offer). The model
// negotiates too, and the server's answer must be the model's.
func newHarnessDeflate(t fataler, r *rapid.T, s *modelServer, handler int, offer string) *harness {
	nc, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	nc.SetDeadline(time.Now().Add(time.Minute))
	mh := modelHandlers[handler]
	req := upgradeRequest(mh.path)
	var offers []string
	if offer != "" {
		offers = []string{offer}
		req = strings.TrimSuffix(req, "\r\n") + "Sec-WebSocket-Extensions: " + offer + "\r\n\r\n"
	}
	io.WriteString(nc, req)
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	deflate, answer := model.Negotiate(model.Compression(mh.mode), offers, mh.threshold)
	if got := resp.Header.Values("Sec-WebSocket-Extensions"); strings.Join(got, ",") != answer {
		t.Fatalf("offer %q to %s: Sec-WebSocket-Extensions %q, model %q", offer, mh.path, got, answer)
	}
	h := &harness{t: t, r: r, m: model.New(), nc: nc, br: br, results: make(chan callResult, 16)}
	h.m.MaxMessageSize = modelMaxMessageSize
	h.m.Deflate = deflate
	h.c = <-s.conns
	h.m.Step(model.Input{Kind: model.Handshake})
	return h
}

// finish ends the connection from the client side and waits until the
// server has let go of everything.
func (h *harness) finish() {
	// Nothing the model did not predict may have arrived meanwhile.
	if !h.tcpEnded {
		h.nc.SetReadDeadline(time.Now().Add(2 * time.Millisecond))
		var one [1]byte
		if n, _ := h.br.Read(one[:]); n > 0 {
			h.fatalf("the server sent something the model does not predict (% x…)", one[:n])
		}
	}
	h.nc.Close()
	// A message that waits unread keeps the server from reading on, so
	// it would not see the end of TCP: the owner closes the connection.
	h.start(model.CloseCall, func() callResult { return callResult{err: h.c.Close(StatusOK, "")} })
	select {
	case <-h.c.ended():
	case <-time.After(stepTimeout):
		h.fatalf("connection not ended %v after the client closed TCP", stepTimeout)
	}
	if h.writer != nil {
		h.writer.Close()
	}
	for ; h.calls > 0; h.calls-- {
		select {
		case <-h.results:
		case <-time.After(stepTimeout):
			h.fatalf("%d API calls still blocked after the connection ended", h.calls)
		}
	}
	if h.cancelCtx != nil {
		h.cancelCtx()
	}
}

// start runs a real API call in its own goroutine: it may wait for the client.
func (h *harness) start(call model.Kind, f func() callResult) {
	h.calls++
	go func() {
		r := f()
		r.call = call
		h.results <- r
	}()
}

// errKind classifies a real error as the model names errors.
func errKind(err error) model.Err {
	if err == errWriterClosed {
		return model.ErrWriterClosed
	}
	return coretest.ErrKind(err)
}

// step applies ev to the model, does the same for real, and checks that
// both did the same.
func (h *harness) step(ev model.Input, real func()) {
	h.trace = append(h.trace, fmt.Sprintf("%s % x type=%d n=%d code=%d reason=%q", ev.Kind, ev.Data[:min(len(ev.Data), 64)], ev.Type, ev.N, ev.Code, ev.Reason))
	effects := h.m.Step(ev)
	real()
	h.check(ev, effects)
}

func (h *harness) check(ev model.Input, effects []model.Effect) {
	var want []model.Result
	for _, e := range effects {
		switch {
		case e.Frame != nil && e.Frame.Compressed && !e.Frame.Fin:
			h.skipUnfinished(ev, e.Frame)
		case e.Frame != nil && e.Frame.Compressed:
			h.readCompressed(ev, e.Frame)
		case e.Frame != nil:
			got := h.readFrame()
			if !bytes.Equal(got, e.Frame.Bytes()) {
				h.fatalf("after %s (row %s): server wrote %s, model predicts %s", ev.Kind, h.m.Row, wstest.Describe(got), wstest.Describe(e.Frame.Bytes()))
			}
		case e.CloseTCP != nil:
			h.expectEnd(ev, e.CloseTCP)
		case e.Result != nil:
			want = append(want, *e.Result)
		}
	}
	for len(want) > 0 {
		var r callResult
		select {
		case r = <-h.results:
			h.calls--
		case <-time.After(stepTimeout):
			h.fatalf("after %s: %s did not return within %v (model: %+v)", ev.Kind, want[0].Call, stepTimeout, want)
		}
		i := wstest.IndexOfResult(want, r.call, errKind(r.err))
		if i < 0 {
			h.fatalf("after %s: %s returned (%v), the model expects no return", ev.Kind, r.call, r.err)
		}
		h.compareResult(ev, want[i], r)
		want = append(want[:i], want[i+1:]...)
	}
	select {
	case r := <-h.results:
		h.fatalf("after %s: %s returned (%v), the model expects it to wait", ev.Kind, r.call, r.err)
	default:
	}
	if h.m.Receiving() {
		h.awaitReceiver(ev)
	}
	if got := h.c.currentState().String(); got != string(h.m.State) {
		h.fatalf("after %s: state %s, model %s (row %s)", ev.Kind, got, h.m.State, h.m.Row)
	}
}

// awaitReceiver waits until the real receive call the model says waits
// has registered as a reader: only then may the client's next bytes come,
// or the background reader could take them first.
func (h *harness) awaitReceiver(ev model.Input) {
	for deadline := time.Now().Add(stepTimeout); ; time.Sleep(20 * time.Microsecond) {
		// Registered (from then on the background reader cannot take
		// new bytes) and the read side taken: the receive is reading,
		// or about to.
		h.c.mu.Lock()
		registered := h.c.readers > 0
		h.c.mu.Unlock()
		if registered && !h.c.readMu.TryLock() {
			time.Sleep(100 * time.Microsecond) // into its read
			return
		}
		if registered {
			h.c.readMu.Unlock()
		}
		select {
		case r := <-h.results:
			h.fatalf("after %s: %s returned (%v), the model expects it to wait", ev.Kind, r.call, r.err)
		default:
		}
		if time.Now().After(deadline) {
			h.fatalf("after %s: the receive call has not started within %v", ev.Kind, stepTimeout)
		}
	}
}

func (h *harness) compareResult(ev model.Input, want model.Result, r callResult) {
	if got := errKind(r.err); got != want.Err {
		h.fatalf("after %s: %s returned error %q (%v), model %q", ev.Kind, r.call, got, r.err, want.Err)
	}
	if want.Err != model.NoErr && want.Err != model.ErrTooLarge {
		return // what a failed receive delivered depends on chunking
	}
	switch r.call {
	case model.ReceiveMessage:
		if r.typ != want.Type || !bytes.Equal(r.data, want.Data) {
			h.fatalf("ReceiveMessage: type %d, %d bytes; model type %d, %d bytes", r.typ, len(r.data), want.Type, len(want.Data))
		}
	case model.ReceiveText, model.ReceiveBinary:
		if !bytes.Equal(r.data, want.Data) {
			h.fatalf("%s: %q, model %q", r.call, wstest.Clip(r.data), wstest.Clip(want.Data))
		}
	case model.WriterWrite:
		if r.n != want.N {
			h.fatalf("Write took %d bytes, model %d", r.n, want.N)
		}
	}
}

// readFrame reads one server frame and returns its bytes.
func (h *harness) readFrame() []byte {
	if f := h.next; f != nil {
		h.next = nil
		return f
	}
	h.nc.SetReadDeadline(time.Now().Add(stepTimeout))
	hdr := make([]byte, 2, 10)
	if _, err := io.ReadFull(h.br, hdr); err != nil {
		h.fatalf("reading a server frame: %v", err)
	}
	var n uint64
	switch l := hdr[1] & 0x7F; l {
	case 126:
		hdr = hdr[:4]
		io.ReadFull(h.br, hdr[2:])
		n = uint64(binary.BigEndian.Uint16(hdr[2:]))
	case 127:
		hdr = hdr[:10]
		io.ReadFull(h.br, hdr[2:])
		n = binary.BigEndian.Uint64(hdr[2:])
	default:
		n = uint64(l)
	}
	if n > 1<<24 {
		h.fatalf("server frame of %d bytes", n)
	}
	if h.client {
		if hdr[1]&0x80 == 0 {
			h.fatalf("the client sent an unmasked frame %s", wstest.Describe(hdr))
		}
		hdr[1] &^= 0x80
		var key [4]byte
		if _, err := io.ReadFull(h.br, key[:]); err != nil {
			h.fatalf("reading a client frame's key: %v", err)
		}
		if h.frames > 0 && key == h.lastKey {
			h.fatalf("the client masked two frames in a row with the key % x", key)
		}
		h.lastKey = key
		h.frames++
		frame := append(hdr, make([]byte, n)...)
		if _, err := io.ReadFull(h.br, frame[len(hdr):]); err != nil {
			h.fatalf("reading a client frame's payload: %v", err)
		}
		core.Mask(key, 0, frame[len(hdr):])
		return frame // unmasked, without the key: as model.Frame.Bytes gives it
	}
	frame := append(hdr, make([]byte, n)...)
	if _, err := io.ReadFull(h.br, frame[len(hdr):]); err != nil {
		h.fatalf("reading a server frame's payload: %v", err)
	}
	return frame
}

// skipUnfinished reads the frames a compressed message given up (O14) had
// sent, if any: RSV1 and the opcode on the first, continuations after it,
// none with FIN. The frame after them is left for readFrame.
func (h *harness) skipUnfinished(ev model.Input, want *model.Frame) {
	for i := 0; ; i++ {
		f := h.readFrame()
		if f[0]&0x0F >= 8 {
			h.next = f
			return
		}
		wantB0 := byte(model.OpContinuation)
		if i == 0 {
			wantB0 = 0x40 | want.Op
		}
		if f[0] != wantB0 {
			h.fatalf("after %s (row %s): frame %d of a compressed message given up is %s, want first byte %#x", ev.Kind, h.m.Row, i, wstest.Describe(f), wantB0)
		}
	}
}

// maxCompressedFrame is the most compressed payload a server frame carries.
const maxCompressedFrame = 64 << 10

// readCompressed reads the frames of a compressed message and checks them
// against want, the message the model predicts: RSV1 and the opcode on
// the first frame only, continuations after it, none longer than
// maxCompressedFrame; inflated (with our history of the server's messages
// under server context takeover), the payload the model predicts.
func (h *harness) readCompressed(ev model.Input, want *model.Frame) {
	got := h.inflateMessage(ev, h.readFrame(), want.Op)
	if !bytes.Equal(got, want.Payload) {
		h.fatalf("after %s: compressed message inflates to %q, model predicts %q", ev.Kind, wstest.Clip(got), wstest.Clip(want.Payload))
	}
}

// inflateMessage reads the rest of the compressed message whose first
// frame is first, checks its frames, and returns it inflated.
func (h *harness) inflateMessage(ev model.Input, first []byte, op byte) []byte {
	var wire []byte
	for i := 0; ; i++ {
		f := first
		if i > 0 {
			f = h.readFrame()
		}
		wantB0 := byte(model.OpContinuation)
		if i == 0 {
			wantB0 = 0x40 | op
		}
		if f[0]&0x7F != wantB0 {
			h.fatalf("after %s (row %s): frame %d of a compressed message is %s (first byte %#x, want %#x)", ev.Kind, h.m.Row, i, wstest.Describe(f), f[0]&0x7F, wantB0)
		}
		payload := f[len(f)-framePayloadLen(f):]
		if len(payload) > maxCompressedFrame {
			h.fatalf("a compressed message's frame of %d bytes", len(payload))
		}
		wire = append(wire, payload...)
		if f[0]&0x80 != 0 {
			break
		}
	}
	var dict []byte
	if h.m.SendContextTakeover() {
		dict = h.sentHistory
	}
	got, failure := model.Inflate(wire, dict, -1)
	if failure != "" {
		h.fatalf("after %s: compressed message does not inflate: %s", ev.Kind, failure)
	}
	h.sentHistory = model.AddHistory(h.sentHistory, got)
	return got
}

// framePayloadLen is the payload length in a server frame's header.
func framePayloadLen(f []byte) int {
	switch l := f[1] & 0x7F; l {
	case 126:
		return int(binary.BigEndian.Uint16(f[2:]))
	case 127:
		return int(binary.BigEndian.Uint64(f[2:]))
	default:
		return int(l)
	}
}

// expectEnd checks that the server ended TCP, then closes the client side
// (which ends the server's lingering). A client Conn that is to wait for
// the server's FIN (tc.AfterServer) must not have closed yet: the test,
// as the server, closes first, and the client then closes.
func (h *harness) expectEnd(ev model.Input, tc *model.TCPClose) {
	if tc.AfterServer && !h.peerEOF {
		h.nc.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		var one [1]byte
		if n, err := h.br.Read(one[:]); !isTimeout(err) {
			h.fatalf("after %s (row %s): the client closed TCP or sent more before the server closed it (read %d bytes, %v)", ev.Kind, h.m.Row, n, err)
		}
		select {
		case <-h.c.ended():
			h.fatalf("after %s (row %s): the client ended before the server closed TCP", ev.Kind, h.m.Row)
		default:
		}
		h.nc.(*net.TCPConn).CloseWrite()
		h.peerEOF = true
	}
	h.nc.SetReadDeadline(time.Now().Add(stepTimeout))
	if h.client && !tc.Linger && !tc.AfterServer {
		// At once: not after waiting (up to a second) for our FIN.
		h.nc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	}
	var one [1]byte
	if n, err := h.br.Read(one[:]); n > 0 || err == nil || isTimeout(err) {
		h.fatalf("after %s: server did not close TCP (read %d bytes, %v)", ev.Kind, n, err)
	}
	h.nc.Close()
	h.tcpEnded = true
	select {
	case <-h.c.ended():
	case <-time.After(stepTimeout):
		h.fatalf("after %s: TCP closed but the connection has not ended", ev.Kind)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// invariants are checked after every step.
func (h *harness) invariants() {
	if h.m.State.Terminal() {
		select {
		case <-h.c.ended():
		case <-time.After(stepTimeout):
			h.fatalf("model is %s, but GetStatus does not return", h.m.State)
		}
		st, reason := h.c.GetStatus()
		if uint16(st) != h.m.Status || reason != h.m.Reason {
			h.fatalf("GetStatus = %d %q, model %d %q", st, reason, h.m.Status, h.m.Reason)
		}
		return
	}
	select {
	case <-h.c.ended():
		h.fatalf("GetStatus returns while the model is %s", h.m.State)
	default:
	}
}

func genKey(t *rapid.T) [4]byte {
	var k [4]byte
	binary.BigEndian.PutUint32(k[:], rapid.Uint32().Draw(t, "key"))
	return k
}

// genPayload draws a payload: mostly small, sometimes up to ~200 KiB.
func genPayload(t *rapid.T, text bool, label string) []byte {
	size := rapid.OneOf(rapid.IntRange(0, 20), rapid.IntRange(0, 300), rapid.IntRange(60000, 70000),
		rapid.IntRange(0, 200<<10)).Draw(t, label+"Size")
	if size > 300 {
		// Large payloads are drawn as a seed, not byte by byte.
		r := rand.New(rand.NewPCG(rapid.Uint64().Draw(t, label+"Seed"), 1))
		b := make([]byte, size)
		for i := range b {
			if text {
				b[i] = byte('a' + r.IntN(26))
			} else {
				b[i] = byte(r.Uint32())
			}
		}
		return b
	}
	if text {
		s := rapid.StringOfN(rapid.RuneFrom([]rune("aé€𝄞 z")), 0, size, -1).Draw(t, label)
		return []byte(s)
	}
	return rapid.SliceOfN(rapid.Byte(), size, size).Draw(t, label)
}

// genInvalidUTF8 draws text with an invalid sequence somewhere.
func genInvalidUTF8(t *rapid.T) []byte {
	bad := rapid.SampledFrom([]string{"\xff", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82", "\x80", "\xce"}).Draw(t, "bad")
	return []byte(rapid.StringN(0, 10, -1).Draw(t, "before") + bad + rapid.StringN(0, 10, -1).Draw(t, "after"))
}

// sendBytes writes b to the server in random pieces, one model event each.
func (h *harness) sendBytes(b []byte) {
	for len(b) > 0 {
		n := len(b)
		if h.r != nil && rapid.Bool().Draw(h.r, "split") {
			n = rapid.IntRange(1, len(b)).Draw(h.r, "piece")
		}
		piece := b[:n]
		b = b[n:]
		h.step(model.Input{Kind: model.ClientBytes, Data: piece}, func() {
			if !h.tcpEnded {
				h.nc.SetWriteDeadline(time.Now().Add(stepTimeout))
				n, _ := h.nc.Write(piece)
				h.sent += uint64(n)
			}
		})
	}
}

// clientMessage draws a data message, fragmented at random points with
// pings between the fragments, possibly with invalid UTF-8.
func (h *harness) clientMessage(t *rapid.T) {
	text := rapid.Bool().Draw(t, "text")
	var payload []byte
	if text && rapid.IntRange(0, 9).Draw(t, "invalid") == 0 {
		payload = genInvalidUTF8(t)
	} else {
		payload = genPayload(t, text, "payload")
	}
	op := byte(core.OpBinary)
	if text {
		op = byte(core.OpText)
	}
	var stream []byte
	frags := rapid.IntRange(1, 4).Draw(t, "fragments")
	for i := 0; i < frags; i++ {
		n := len(payload)
		if i < frags-1 {
			n = rapid.IntRange(0, len(payload)).Draw(t, "fragment")
		}
		stream = append(stream, h.frame(i == frags-1, 0, op, payload[:n], genKey(t))...)
		payload = payload[n:]
		op = byte(core.OpContinuation)
		if i < frags-1 && rapid.Bool().Draw(t, "pingBetween") {
			stream = append(stream, h.frame(true, 0, byte(core.OpPing), rapid.SliceOfN(rapid.Byte(), 0, 10).Draw(t, "ping"), genKey(t))...)
		}
	}
	h.sendBytes(stream)
}

// sendWhole writes b to the server as one model event.
func (h *harness) sendWhole(b []byte) {
	r := h.r
	h.r = nil // no splits
	h.sendBytes(b)
	h.r = r
}

// compressedFaults are the ways clientCompressed breaks a compressed
// message; "" sends it as it should be.
var compressedFaults = []string{"", "", "", "finalBlock", "corrupt", "truncated", "afterFinal",
	"bomb", "rsv1Continuation", "rsv1Ping", "rsv2"}

// clientCompressed sends a compressed message (RSV1), compressed with
// our history of the compressed messages we sent under client context
// takeover: fragmented, with pings between the fragments, or broken in
// one of compressedFaults' ways. A message that fails once inflated goes
// in one piece, with nothing between its frames: the server may find the
// failure before the last frame, the model finds it there (see
// STATE_MACHINE.md).
func (h *harness) clientCompressed(t *rapid.T) {
	text := rapid.Bool().Draw(t, "text")
	fault := rapid.SampledFrom(compressedFaults).Draw(t, "fault")
	var payload []byte
	switch {
	case fault == "bomb":
		payload = bytes.Repeat([]byte("a"), modelMaxMessageSize+1+rapid.IntRange(0, 64<<10).Draw(t, "bombExtra"))
	case text && rapid.IntRange(0, 9).Draw(t, "invalid") == 0:
		payload = genInvalidUTF8(t)
	default:
		// Up to 70,000 bytes: past a frame of 64 KiB, and quick to
		// compress under the race detector.
		payload = genPayload(t, text, "payload")
		payload = payload[:min(len(payload), 70000)]
	}
	var dict []byte
	if h.m.RecvContextTakeover() {
		// A peer refers back no further than its negotiated window.
		dict = model.LastWindow(h.recvHistory, h.m.RecvWindow())
	}
	wire := model.Compress(payload, dict, fault == "finalBlock" || fault == "afterFinal")
	switch fault {
	case "corrupt":
		i := rapid.IntRange(0, len(wire)-1).Draw(t, "corruptAt")
		wire[i] ^= rapid.ByteRange(1, 255).Draw(t, "corruptBits")
	case "truncated":
		wire = wire[:rapid.IntRange(0, len(wire)-1).Draw(t, "truncateAt")]
	case "afterFinal":
		wire = append(wire, model.Compress([]byte("more"), nil, false)...)
	}
	op := byte(core.OpBinary)
	if text {
		op = byte(core.OpText)
	}
	safe := (fault == "" || fault == "finalBlock") && len(payload) <= modelMaxMessageSize && (!text || utf8.Valid(payload))
	frags := rapid.IntRange(1, 3).Draw(t, "fragments")
	if fault == "rsv1Continuation" {
		frags = max(frags, 2)
	}
	var stream []byte
	for i := 0; i < frags; i++ {
		n := len(wire)
		if i < frags-1 {
			n = rapid.IntRange(0, len(wire)).Draw(t, "fragment")
		}
		rsv := byte(0)
		switch {
		case i == 0 && fault == "rsv2":
			rsv = 6
		case i == 0 || i == 1 && fault == "rsv1Continuation":
			rsv = 4
		}
		stream = append(stream, h.frame(i == frags-1, rsv, op, wire[:n], genKey(t))...)
		wire = wire[n:]
		op = byte(core.OpContinuation)
		if fault == "rsv1Ping" && i == 0 {
			stream = append(stream, h.frame(true, 4, byte(core.OpPing), []byte("p"), genKey(t))...)
		} else if safe && i < frags-1 && rapid.Bool().Draw(t, "pingBetween") {
			stream = append(stream, h.frame(true, 0, byte(core.OpPing), rapid.SliceOfN(rapid.Byte(), 0, 10).Draw(t, "ping"), genKey(t))...)
		}
	}
	if safe && !h.historyUnknown {
		h.sendBytes(stream)
		h.recvHistory = model.AddHistory(h.recvHistory, payload)
	} else {
		// A broken message the server takes may leave a history we do
		// not know: from now on we cannot tell which messages inflate.
		h.sendWhole(stream)
		h.historyUnknown = true
	}
}

// deflateOffers are what clients offer in Sec-WebSocket-Extensions: each
// parameter, and offers the server must decline.
var deflateOffers = []string{"", "permessage-deflate", "permessage-deflate; client_max_window_bits",
	"permessage-deflate; client_no_context_takeover", "permessage-deflate; server_no_context_takeover",
	"permessage-deflate; server_max_window_bits=15; client_max_window_bits=15",
	"permessage-deflate; server_max_window_bits=9, permessage-deflate; client_no_context_takeover",
	"permessage-deflate; server_max_window_bits=8; client_max_window_bits=9",
	"permessage-deflate; unknown_parameter", "x-webkit-deflate-frame"}

// clientViolations are frames that break RFC 6455.
var clientViolations = []func(key [4]byte) []byte{
	func(k [4]byte) []byte { return []byte{0x81, 0x02, 'h', 'i'} },                                           // unmasked
	func(k [4]byte) []byte { return wstest.ClientFrame(true, 4, byte(core.OpText), []byte("x"), k) },         // RSV1
	func(k [4]byte) []byte { return wstest.ClientFrame(true, 1, byte(core.OpBinary), nil, k) },               // RSV3
	func(k [4]byte) []byte { return wstest.ClientFrame(true, 0, 3, nil, k) },                                 // reserved opcode
	func(k [4]byte) []byte { return wstest.ClientFrame(true, 0, 0xB, nil, k) },                               // reserved control opcode
	func(k [4]byte) []byte { return wstest.ClientFrame(false, 0, byte(core.OpPing), nil, k) },                // fragmented ping
	func(k [4]byte) []byte { return wstest.ClientFrame(true, 0, byte(core.OpPing), make([]byte, 126), k) },   // long ping
	func(k [4]byte) []byte { return wstest.ClientFrame(true, 0, byte(core.OpContinuation), []byte("c"), k) }, // stray continuation
	func(k [4]byte) []byte { return wstest.ClientFrame(true, 0, byte(core.OpClose), []byte{3}, k) },          // 1-byte close
	func(k [4]byte) []byte {
		return append(wstest.ClientFrame(false, 0, byte(core.OpText), []byte("a"), k), wstest.ClientFrame(true, 0, byte(core.OpText), []byte("b"), k)...)
	}, // new message inside a fragmented one
	func(k [4]byte) []byte { return append([]byte{0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1}, k[:]...) }, // top length bit
	func(k [4]byte) []byte { return append([]byte{0x82, 0x80 | 126, 0, 5}, k[:]...) },                      // non-minimal length
}

func (h *harness) clientClose(t *rapid.T) {
	var payload []byte
	switch rapid.IntRange(0, 3).Draw(t, "closeKind") {
	case 0: // empty
	case 1:
		code := rapid.SampledFrom([]uint16{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1014, 3000, 4000, 4999}).Draw(t, "code")
		payload = binary.BigEndian.AppendUint16(nil, code)
		payload = append(payload, rapid.StringN(0, 20, 100).Draw(t, "reason")...)
	case 2:
		payload = binary.BigEndian.AppendUint16(nil, rapid.Uint16().Draw(t, "anyCode"))
	case 3:
		payload = append([]byte{0x03, 0xE8}, genInvalidUTF8(t)...)
	}
	if len(payload) > 125 {
		payload = payload[:125]
	}
	h.sendBytes(h.frame(true, 0, byte(core.OpClose), payload, genKey(t)))
}

func (h *harness) sendText(t *rapid.T) {
	msg := genPayload(t, true, "text")
	if rapid.IntRange(0, 5).Draw(t, "invalidText") == 0 {
		msg = genInvalidUTF8(t)
	}
	h.step(model.Input{Kind: model.SendText, Data: msg}, func() {
		h.start(model.SendText, func() callResult { return callResult{err: h.c.SendText(string(msg))} })
	})
}

func (h *harness) sendBinary(t *rapid.T) {
	msg := genPayload(t, false, "binary")
	h.step(model.Input{Kind: model.SendBinary, Data: msg}, func() {
		h.start(model.SendBinary, func() callResult { return callResult{err: h.c.SendBinary(msg)} })
	})
}

// sendMessage streams a message through a SendMessage writer.
func (h *harness) sendMessage(t *rapid.T) {
	tp := rapid.SampledFrom([]byte{1, 2, 1, 2, 9}).Draw(t, "writerType")
	h.step(model.Input{Kind: model.SendMessage, Type: tp}, func() {
		h.start(model.SendMessage, func() callResult {
			w, err := h.c.SendMessage(MessageType(tp))
			h.writer = w
			return callResult{err: err}
		})
	})
	if h.writer == nil {
		return
	}
	writes := rapid.IntRange(0, 4).Draw(t, "writes")
	for i := 0; i < writes; i++ {
		p := genPayload(t, tp == 1, "write")
		switch rapid.IntRange(0, 9).Draw(t, "writeKind") {
		case 0:
			if len(p) > 0 {
				p = p[:len(p)-1] // may cut a character in two
			}
		case 1:
			p = genInvalidUTF8(t)
		}
		h.step(model.Input{Kind: model.WriterWrite, Data: p}, func() {
			h.start(model.WriterWrite, func() callResult {
				n, err := h.writer.Write(p)
				return callResult{err: err, n: n}
			})
		})
	}
	if rapid.IntRange(0, 4).Draw(t, "abandon") == 0 {
		w := h.writer.(MessageWriter)
		h.step(model.Input{Kind: model.WriterAbandon}, func() {
			h.start(model.WriterAbandon, func() callResult { return callResult{err: w.CloseWithError(errors.New("given up"))} })
		})
	} else {
		h.step(model.Input{Kind: model.WriterClose}, func() {
			h.start(model.WriterClose, func() callResult { return callResult{err: h.writer.Close()} })
		})
	}
	h.writer = nil
}

func (h *harness) receive(t *rapid.T) {
	kind := rapid.SampledFrom([]model.Kind{model.ReceiveMessage, model.ReceiveText, model.ReceiveBinary}).Draw(t, "receive")
	n := rapid.OneOf(rapid.IntRange(0, 10), rapid.IntRange(0, 70000)).Draw(t, "limit")
	var ctx context.Context // nil: the call without a context
	if rapid.Bool().Draw(t, "withContext") {
		ctx = h.callContext()
	}
	h.ctxReceive = ctx != nil
	h.step(model.Input{Kind: kind, N: n}, func() {
		h.start(kind, func() callResult {
			switch {
			case kind == model.ReceiveText && ctx != nil:
				s, err := h.c.ReceiveTextContext(ctx, n)
				return callResult{err: err, data: []byte(s)}
			case kind == model.ReceiveText:
				s, err := h.c.ReceiveText(n)
				return callResult{err: err, data: []byte(s)}
			case kind == model.ReceiveBinary:
				buf := make([]byte, n)
				var m int
				var err error
				if ctx != nil {
					m, err = h.c.ReceiveBinaryContext(ctx, buf)
				} else {
					m, err = h.c.ReceiveBinary(buf)
				}
				return callResult{err: err, data: buf[:m], n: m}
			}
			var tp MessageType
			var r io.Reader
			var err error
			if ctx != nil {
				tp, r, err = h.c.ReceiveMessageContext(ctx)
			} else {
				tp, r, err = h.c.ReceiveMessage()
			}
			if err != nil {
				return callResult{err: err}
			}
			data, err := io.ReadAll(r)
			return callResult{err: err, typ: byte(tp), data: data}
		})
	})
}

// callContext returns the context the next call takes.
func (h *harness) callContext() context.Context {
	if h.ctx == nil {
		h.ctx, h.cancelCtx = context.WithCancel(context.Background())
	}
	return h.ctx
}

// ping is a Ping call under the harness's context: the model predicts
// its ping's payload (the count of Pings), and when it returns.
func (h *harness) ping() {
	ctx := h.callContext()
	h.step(model.Input{Kind: model.PingCall}, func() {
		h.start(model.PingCall, func() callResult {
			_, err := h.c.Ping(ctx)
			return callResult{err: err}
		})
	})
}

// pong answers one of the Pings sent so far, as the peer does, or again.
// Never one to come: the Conn takes the peer's bytes in on a goroutine of
// its own, so a pong sent before its Ping might reach it after.
func (h *harness) pong(t *rapid.T) {
	if h.m.Pinged() == 0 {
		return
	}
	id := uint64(rapid.IntRange(1, int(h.m.Pinged())).Draw(t, "pingAnswered"))
	h.sendBytes(h.frame(true, 0, byte(core.OpPong), binary.BigEndian.AppendUint64(nil, id), genKey(t)))
}

// cancel ends the context of the calls that wait: a receive that waits
// for the first frame of its message and the Pings return its error. A
// receive without a context is never cancelled, so nothing is while one
// waits. While a receive waits, the Conn must first have read every byte
// the peer sent (it reads all it gets then): what the model decides with
// them (a message begun or not) it must know too.
func (h *harness) cancel() {
	if h.ctx == nil || h.m.Receiving() && !h.ctxReceive {
		return
	}
	receiving := h.m.State == model.Open && h.m.Receiving()
	for deadline := time.Now().Add(stepTimeout); receiving && h.c.stats.wireIn.Load() < h.sent; time.Sleep(50 * time.Microsecond) {
		if time.Now().After(deadline) {
			h.fatalf("the connection has not read the peer's %d bytes within %v", h.sent, stepTimeout)
		}
	}
	h.step(model.Input{Kind: model.CancelCall}, func() {
		h.cancelCtx()
		h.ctx, h.cancelCtx = nil, nil
	})
}

func (h *harness) close(t *rapid.T) {
	code := rapid.SampledFrom([]uint16{1000, 1001, 1003, 1005, 1011, 1014, 3000, 4999, 999, 1004, 1006, 1010, 1015, 5000}).Draw(t, "closeCode")
	reason := ""
	if code != 1005 || rapid.IntRange(0, 4).Draw(t, "reasonWith1005") == 0 {
		reason = rapid.StringN(0, 10, 200).Draw(t, "closeReason")
	}
	h.step(model.Input{Kind: model.CloseCall, Code: code, Reason: reason}, func() {
		h.start(model.CloseCall, func() callResult { return callResult{err: h.c.Close(Status(code), reason)} })
	})
}

// concurrentSends sends several messages from as many goroutines; the
// model takes them in the order they reached the wire.
func (h *harness) concurrentSends(t *rapid.T) {
	msgs := rapid.SliceOfN(rapid.StringN(1, 40, -1), 2, 5).Draw(t, "concurrent")
	if h.m.State != model.Open {
		return
	}
	for _, s := range msgs {
		s := s
		h.start(model.SendText, func() callResult { return callResult{err: h.c.SendText(s)} })
	}
	pending := append([]string(nil), msgs...)
	var results []model.Effect
	ev := model.Input{Kind: "concurrent SendText"}
	for range msgs {
		got := h.readFrame()
		compressed := got[0]&0x40 != 0
		var inflated []byte
		if compressed {
			inflated = h.inflateMessage(ev, got, model.OpText)
		}
		i := -1
		for j, s := range pending {
			if !compressed && bytes.Equal(got, model.Frame{Fin: true, Op: model.OpText, Payload: []byte(s)}.Bytes()) ||
				compressed && bytes.Equal(inflated, []byte(s)) {
				i = j
				break
			}
		}
		if i < 0 {
			t.Fatalf("concurrent sends: unexpected frame %s", wstest.Describe(got))
		}
		for _, e := range h.m.Step(model.Input{Kind: model.SendText, Data: []byte(pending[i])}) {
			if e.Frame == nil { // the frame is read already
				results = append(results, e)
			} else if e.Frame.Compressed != compressed {
				t.Fatalf("concurrent sends: %q compressed=%v, model %v", pending[i], compressed, e.Frame.Compressed)
			}
		}
		pending = append(pending[:i], pending[i+1:]...)
	}
	h.check(ev, results)
}

// TestConnAgreesWithModel is the rapid state-machine test.
// Rows: every row a random scenario reaches, checked against the model, not
// named one by one.
func TestConnAgreesWithModel(t *testing.T) {
	s := startModelServer(t)
	rapid.Check(t, func(t *rapid.T) {
		handler := rapid.IntRange(0, len(modelHandlers)-1).Draw(t, "handler")
		h := newHarnessDeflate(t, t, s, handler, rapid.SampledFrom(deflateOffers).Draw(t, "offer"))
		defer h.finish()
		t.Repeat(withActions(map[string]func(*rapid.T){
			"": func(t *rapid.T) { h.invariants() },
			"clientMessage": func(t *rapid.T) {
				h.clientMessage(t)
			},
			"clientCompressed": h.clientCompressed,
			"clientPing": func(t *rapid.T) {
				h.sendBytes(wstest.ClientFrame(true, 0, byte(core.OpPing), rapid.SliceOfN(rapid.Byte(), 0, 125).Draw(t, "ping"), genKey(t)))
			},
			"clientPong": func(t *rapid.T) {
				h.sendBytes(wstest.ClientFrame(true, 0, byte(core.OpPong), []byte("unsolicited"), genKey(t)))
			},
			"clientPongToPing": h.pong,
			"clientClose":      h.clientClose,
			"clientViolation": func(t *rapid.T) {
				if rapid.IntRange(0, 3).Draw(t, "violate") == 0 {
					h.sendBytes(rapid.SampledFrom(clientViolations).Draw(t, "violation")(genKey(t)))
				}
			},
			"clientEOF": func(t *rapid.T) {
				if rapid.IntRange(0, 5).Draw(t, "eof") == 0 {
					h.step(model.Input{Kind: model.ClientEOF}, func() { h.nc.(*net.TCPConn).CloseWrite() })
				}
			},
		}, h.apiActions()))
	})
}

// apiActions are the rapid actions that call the Conn's API and fire its
// timers: the same at either end; the tests add what the peer does.
func (h *harness) apiActions() map[string]func(*rapid.T) {
	return map[string]func(*rapid.T){
		"sendText":    h.sendText,
		"sendBinary":  h.sendBinary,
		"sendMessage": h.sendMessage,
		"receive": func(t *rapid.T) {
			if !h.m.Receiving() {
				h.receive(t)
			}
		},
		"close": func(t *rapid.T) {
			if !h.m.CloseWaiting() {
				h.close(t)
			}
		},
		"closeTimer": func(t *rapid.T) {
			if h.m.State == model.Closing {
				h.step(model.Input{Kind: model.CloseTimer}, func() { h.c.apply(h.c.stepLocked(core.EvCloseTimeout, 0, ""), nil) })
			}
		},
		"pingTimer": func(t *rapid.T) {
			h.step(model.Input{Kind: model.PingTick}, func() { h.c.apply(h.c.stepLocked(core.EvPingTimer, 0, ""), nil) })
		},
		"drop": func(t *rapid.T) {
			h.step(model.Input{Kind: model.DropCall}, func() { h.c.drop("the server shut down") })
		},
		"ping": func(t *rapid.T) {
			if h.m.Pinging() < 3 {
				h.ping()
			}
		},
		"cancel":          func(t *rapid.T) { h.cancel() },
		"concurrentSends": h.concurrentSends,
	}
}

// withActions is peer's actions and more's together.
func withActions(peer, more map[string]func(*rapid.T)) map[string]func(*rapid.T) {
	maps.Copy(peer, more)
	return peer
}

// exhaustiveDepth is the length of the event sequences of
// TestConnAgreesWithModelExhaustively; make proptest raises it.
var exhaustiveDepth = flag.Int("exhaustive.depth", 3, "length of the event sequences enumerated against the model")

// abstractEvent is one kind of event of the exhaustive check.
type abstractEvent struct {
	name string
	do   func(h *harness)
}

var exhaustiveKey = [4]byte{0x11, 0x22, 0x33, 0x44}

func clientBytes(b []byte) func(h *harness) { return func(h *harness) { h.sendBytes(b) } }

func apiCall(ev model.Input, call func(c *Conn) callResult) func(h *harness) {
	return func(h *harness) {
		if ev.Kind == model.ReceiveMessage && h.m.Receiving() || ev.Kind == model.CloseCall && h.m.CloseWaiting() {
			return // the previous call of this kind still waits
		}
		h.step(ev, func() { h.start(ev.Kind, func() callResult { return call(h.c) }) })
	}
}

var abstractEvents = []abstractEvent{
	{"text", clientBytes(wstest.ClientFrame(true, 0, byte(core.OpText), []byte("hé"), exhaustiveKey))},
	{"binary", clientBytes(wstest.ClientFrame(true, 0, byte(core.OpBinary), []byte{0, 1, 2}, exhaustiveKey))},
	{"firstFragment", clientBytes(wstest.ClientFrame(false, 0, byte(core.OpText), []byte("\xe2\x82"), exhaustiveKey))},
	{"lastFragment", clientBytes(wstest.ClientFrame(true, 0, byte(core.OpContinuation), []byte("\xac!"), exhaustiveKey))},
	{"ping", clientBytes(wstest.ClientFrame(true, 0, byte(core.OpPing), []byte("p"), exhaustiveKey))},
	{"pong", clientBytes(wstest.ClientFrame(true, 0, byte(core.OpPong), nil, exhaustiveKey))},
	{"clientClose", clientBytes(wstest.ClientFrame(true, 0, byte(core.OpClose), []byte{0x0F, 0xA0, 'b', 'y', 'e'}, exhaustiveKey))},
	{"unmasked", clientBytes([]byte{0x82, 0x01, 0x00})},
	{"invalidUTF8", clientBytes(wstest.ClientFrame(true, 0, byte(core.OpText), []byte("a\xff"), exhaustiveKey))},
	{"eof", func(h *harness) {
		h.step(model.Input{Kind: model.ClientEOF}, func() { h.nc.(*net.TCPConn).CloseWrite() })
	}},
	{"sendText", apiCall(model.Input{Kind: model.SendText, Data: []byte("out")}, func(c *Conn) callResult {
		return callResult{err: c.SendText("out")}
	})},
	{"receive", apiCall(model.Input{Kind: model.ReceiveMessage}, func(c *Conn) callResult {
		tp, r, err := c.ReceiveMessage()
		if err != nil {
			return callResult{err: err}
		}
		data, err := io.ReadAll(r)
		return callResult{err: err, typ: byte(tp), data: data}
	})},
	{"close", apiCall(model.Input{Kind: model.CloseCall, Code: 1001, Reason: "away"}, func(c *Conn) callResult {
		return callResult{err: c.Close(StatusGoingAway, "away")}
	})},
	{"closeTimer", func(h *harness) {
		if h.m.State == model.Closing {
			h.step(model.Input{Kind: model.CloseTimer}, func() { h.c.apply(h.c.stepLocked(core.EvCloseTimeout, 0, ""), nil) })
		}
	}},
}

// TestConnAgreesWithModelExhaustively runs every sequence of
// exhaustiveDepth abstract events against the model and a real Conn.
// Rows: every row a sequence of events reaches, checked against the model,
// not named one by one.
func TestConnAgreesWithModelExhaustively(t *testing.T) {
	depth := *exhaustiveDepth
	if testing.Short() {
		depth = min(depth, 2)
	}
	s := startModelServer(t)
	seq := make([]int, depth)
	count := 0
	for {
		h := newHarness(t, nil, s)
		for i, e := range seq {
			h.trace = append(h.trace, "— "+abstractEvents[e].name)
			abstractEvents[e].do(h)
			if i == len(seq)-1 || h.m.State.Terminal() && h.tcpEnded {
				h.invariants()
			}
		}
		h.invariants()
		h.finish()
		count++
		// Next sequence, like an odometer.
		i := depth - 1
		for i >= 0 && seq[i] == len(abstractEvents)-1 {
			seq[i] = 0
			i--
		}
		if i < 0 {
			break
		}
		seq[i]++
	}
	t.Logf("%d sequences of %d events over %d event kinds agree with the model", count, depth, len(abstractEvents))
}

// TestModelCompressedEdges runs compressed messages at the edges of the
// inflation rules against the model, one connection each.
// Rows: O1, O7; "Compressed messages".
func TestModelCompressedEdges(t *testing.T) {
	s := startModelServer(t)
	a := func(n int) []byte { return bytes.Repeat([]byte("a"), n) }
	join := func(b ...[]byte) []byte { return bytes.Join(b, nil) }
	tests := []struct {
		name string
		text bool
		msg  []byte
	}{
		{"inflates to exactly the limit", false, a(modelMaxMessageSize)},
		{"inflates to one byte past the limit", false, a(modelMaxMessageSize + 1)},
		{"text inflates to exactly the limit", true, a(modelMaxMessageSize)},
		{"invalid text early, inflates past the limit", true, join(a(10), []byte{0xff}, a(modelMaxMessageSize))},
		{"invalid text past the limit", true, join(a(modelMaxMessageSize+1), []byte{0xff})},
		{"invalid text just before the limit, inflates past it", true, join(a(modelMaxMessageSize-10), []byte{0xff}, a(100))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarnessDeflate(t, nil, s, 1, "permessage-deflate")
			defer h.finish()
			op := byte(core.OpBinary)
			if tt.text {
				op = byte(core.OpText)
			}
			h.step(model.Input{Kind: model.ReceiveMessage}, func() {
				h.start(model.ReceiveMessage, func() callResult {
					tp, r, err := h.c.ReceiveMessage()
					if err != nil {
						return callResult{err: err}
					}
					data, err := io.ReadAll(r)
					return callResult{err: err, typ: byte(tp), data: data}
				})
			})
			h.sendWhole(wstest.ClientFrame(true, 4, op, model.Compress(tt.msg, nil, false), exhaustiveKey))
		})
	}
}

// The model frames streamed messages as the library does.
func TestModelConstantsMatch(t *testing.T) {
	if writeBufferSize != model.WriteBufferSize {
		t.Errorf("writeBufferSize %d, model.WriteBufferSize %d", writeBufferSize, model.WriteBufferSize)
	}
	if defaultMaxMessageSize != model.DefaultMaxMessageSize {
		t.Errorf("defaultMaxMessageSize %d, model.DefaultMaxMessageSize %d", defaultMaxMessageSize, model.DefaultMaxMessageSize)
	}
}
