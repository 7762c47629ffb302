package fuzz

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/wsmachine/wsmachine/model"
	"github.com/wsmachine/wsmachine/websocket"
)

// A session is one real connection, driven from both ends through the
// public API only, and the model given the same events. After each event
// the frames the server wrote must be byte for byte those the model
// predicts, and every call must return what the model says, when it says.

// stepTimeout bounds the wait for anything the model says must happen.
const stepTimeout = 5 * time.Second

// fataler is what a session needs of a *testing.T or *rapid.T.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

// callResult is what a real API call returned.
type callResult struct {
	call model.Kind
	err  error
	typ  byte
	data []byte
	n    int
}

type session struct {
	t        fataler
	m        *model.Conn
	c        *websocket.Conn
	nc       *net.TCPConn
	br       *bufio.Reader
	results  chan callResult
	calls    int // real calls started that have not returned yet
	writer   io.WriteCloser
	tcpEnded bool          // the server closed TCP, and so did we
	ended    chan struct{} // closed when GetStatus returns
	status   websocket.Status
	reason   string
	trace    []string

	// What the server did, for targets that check it against an oracle
	// of their own besides the model.
	frames   [][]byte     // the frames it wrote, in order (a compressed message: inflated, as one)
	returned []callResult // the calls that returned, in order

	// With permessage-deflate: each direction's history of compressed
	// messages, for context takeover; historyUnknown once a broken
	// message may have left the server's history other than ours.
	sentHistory, recvHistory []byte
	historyUnknown           bool

	// client: c is a client Conn from Dial and nc the test's end as the
	// server (FuzzClient): c's frames are masked, each with a key other
	// than the last one's; after the closing handshake c waits for the
	// server's FIN.
	client  bool
	lastKey [4]byte
	keys    int
	peerEOF bool   // the test, as the server, half-closed TCP
	next    []byte // a frame read ahead by skipUnfinished, for readFrame

	// The context of the calls that take one (receives drawn so, Ping),
	// and its cancel; a new one after each cancel. ctxReceive: the
	// receive that waits, if any, took it.
	ctx        context.Context
	cancelCtx  context.CancelFunc
	ctxReceive bool
	sent       uint64 // the bytes the peer wrote
}

// newSession connects a client without compression and waits for the
// server's Conn.
func newSession(t fataler) *session { return newSessionDeflate(t, 0, "") }

// newSessionDeflate connects to the server of handlers[handler], offering
// permessage-deflate as offer says (""; no offer). The model negotiates
// too: the 101's answer must be the model's.
func newSessionDeflate(t fataler, handler int, offer string) *session {
	t.Helper()
	path, conns := server.expect(handler)
	nc, err := net.Dial("tcp", server.addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	nc.SetDeadline(time.Now().Add(time.Minute))
	var offers []string
	extensions := ""
	if offer != "" {
		offers = []string{offer}
		extensions = "Sec-WebSocket-Extensions: " + offer + "\r\n"
	}
	fmt.Fprintf(nc, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s\r\n", path, server.addr, extensions)
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		nc.Close()
		t.Fatalf("handshake: %v %v", resp, err)
	}
	h := handlers[handler]
	deflate, answer := model.Negotiate(model.Compression(h.mode), offers, h.threshold)
	if got := strings.Join(resp.Header.Values("Sec-WebSocket-Extensions"), ","); got != answer {
		nc.Close()
		t.Fatalf("offer %q to %s: Sec-WebSocket-Extensions %q, model %q", offer, h.prefix, got, answer)
	}
	s := &session{t: t, m: model.New(), nc: nc.(*net.TCPConn), br: br,
		results: make(chan callResult, 16), ended: make(chan struct{})}
	s.m.MaxMessageSize = maxMessageSize
	s.m.Deflate = deflate
	select {
	case s.c = <-conns:
	case <-time.After(stepTimeout):
		nc.Close()
		t.Fatalf("the handler did not get the connection")
	}
	go func() {
		s.status, s.reason = s.c.GetStatus()
		close(s.ended)
	}()
	s.m.Step(model.Input{Kind: model.Handshake})
	return s
}

// fatalf fails with the events that led here.
func (s *session) fatalf(format string, args ...any) {
	s.t.Helper()
	s.nc.Close() // so that the connection ends and nothing leaks
	s.t.Fatalf(format+"\nevents:\n  %s", append(args, strings.Join(s.trace, "\n  "))...)
}

// start runs a real API call on its own goroutine: it may wait for the client.
func (s *session) start(call model.Kind, f func() callResult) {
	s.calls++
	go func() {
		r := f()
		r.call = call
		s.results <- r
	}()
}

// step applies ev to the model, does the same for real, and checks that
// both did the same.
func (s *session) step(ev model.Input, real func()) {
	s.t.Helper()
	s.trace = append(s.trace, fmt.Sprintf("%s % x type=%d n=%d code=%d reason=%q",
		ev.Kind, ev.Data[:min(len(ev.Data), 48)], ev.Type, ev.N, ev.Code, ev.Reason))
	effects := s.m.Step(ev)
	real()
	s.check(ev, effects)
}

// clientBytes sends b as one event.
func (s *session) clientBytes(b []byte) {
	s.step(model.Input{Kind: model.ClientBytes, Data: b}, func() {
		if !s.tcpEnded {
			s.nc.SetWriteDeadline(time.Now().Add(stepTimeout))
			n, _ := s.nc.Write(b)
			s.sent += uint64(n)
		}
	})
}

// clientEOF ends the client's side of TCP.
func (s *session) clientEOF() {
	s.step(model.Input{Kind: model.ClientEOF}, func() {
		if !s.tcpEnded {
			s.nc.CloseWrite()
			s.peerEOF = true
		}
	})
}

func (s *session) check(ev model.Input, effects []model.Effect) {
	s.t.Helper()
	var want []model.Result
	for _, e := range effects {
		switch {
		case e.Frame != nil && e.Frame.Compressed && !e.Frame.Fin:
			s.skipUnfinished(ev, e.Frame)
		case e.Frame != nil && e.Frame.Compressed:
			s.frames = append(s.frames, s.readCompressed(ev, e.Frame))
		case e.Frame != nil:
			got := s.readFrame()
			if !bytes.Equal(got, e.Frame.Bytes()) {
				s.fatalf("after %s (row %s): server wrote %s, model predicts %s", ev.Kind, s.m.Row, describe(got), describe(e.Frame.Bytes()))
			}
			s.frames = append(s.frames, got)
		case e.CloseTCP != nil:
			s.expectEnd(ev, e.CloseTCP)
		case e.Result != nil:
			want = append(want, *e.Result)
		}
	}
	for len(want) > 0 {
		var r callResult
		select {
		case r = <-s.results:
			s.calls--
		case <-time.After(stepTimeout):
			s.fatalf("after %s: %s did not return within %v (model: %+v)", ev.Kind, want[0].Call, stepTimeout, want)
		}
		i := indexOfCall(want, r.call, errKind(r.err))
		if i < 0 {
			s.fatalf("after %s: %s returned (%v), the model expects no return", ev.Kind, r.call, r.err)
		}
		s.compare(ev, want[i], r)
		s.returned = append(s.returned, r)
		want = append(want[:i], want[i+1:]...)
	}
	select {
	case r := <-s.results:
		s.fatalf("after %s: %s returned (%v), the model expects it to wait", ev.Kind, r.call, r.err)
	default:
	}
	s.checkStatus(ev)
}

// checkStatus compares GetStatus with the model once the model's
// connection has ended, and checks that it waits until then.
func (s *session) checkStatus(ev model.Input) {
	s.t.Helper()
	if !s.m.State.Terminal() {
		select {
		case <-s.ended:
			s.fatalf("after %s: GetStatus returned (%d %q) while the model is %s", ev.Kind, s.status, s.reason, s.m.State)
		default:
		}
		return
	}
	select {
	case <-s.ended:
	case <-time.After(stepTimeout):
		s.fatalf("after %s: the model is %s, but GetStatus does not return", ev.Kind, s.m.State)
	}
	if uint16(s.status) != s.m.Status || s.reason != s.m.Reason {
		s.fatalf("after %s: GetStatus = %d %q, model %d %q", ev.Kind, s.status, s.reason, s.m.Status, s.m.Reason)
	}
}

// indexOfCall returns the index of the model's result for call with the
// error err, or else for call, or -1: two calls of one kind may return
// in one step in either order (Pings, when the connection ends).
func indexOfCall(rs []model.Result, call model.Kind, err model.Err) int {
	for i, r := range rs {
		if r.Call == call && r.Err == err {
			return i
		}
	}
	for i, r := range rs {
		if r.Call == call {
			return i
		}
	}
	return -1
}

// errKind names a real error as the model does. The library's unexported
// errors are known by their messages.
func errKind(err error) model.Err {
	switch {
	case err == nil:
		return model.NoErr
	case err == websocket.ErrConnClosed:
		return model.ErrConnClosed
	case errors.Is(err, websocket.ErrConnClosed):
		return model.WrapsErrConnClose
	case err == websocket.ErrMessageType:
		return model.ErrMessageType
	case err == websocket.ErrStatusCode:
		return model.ErrStatusCode
	case err == websocket.ErrTooLarge:
		return model.ErrTooLarge
	case err.Error() == "websocket: text is not valid UTF-8":
		return model.ErrInvalidUTF8
	case err.Error() == "websocket: message writer already closed":
		return model.ErrWriterClosed
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return model.ErrCanceled
	}
	return model.Err("unexpected error: " + err.Error())
}

func (s *session) compare(ev model.Input, want model.Result, r callResult) {
	s.t.Helper()
	if got := errKind(r.err); got != want.Err {
		s.fatalf("after %s: %s returned error %q (%v), model %q", ev.Kind, r.call, got, r.err, want.Err)
	}
	if want.Err != model.NoErr && want.Err != model.ErrTooLarge {
		return // what a failed receive delivered depends on chunking
	}
	switch r.call {
	case model.ReceiveMessage:
		if r.typ != want.Type || !bytes.Equal(r.data, want.Data) {
			s.fatalf("ReceiveMessage: type %d, %q; model type %d, %q", r.typ, clip(r.data), want.Type, clip(want.Data))
		}
	case model.ReceiveText, model.ReceiveBinary:
		if !bytes.Equal(r.data, want.Data) {
			s.fatalf("%s: %q, model %q", r.call, clip(r.data), clip(want.Data))
		}
	case model.WriterWrite:
		if r.n != want.N {
			s.fatalf("Write took %d bytes, model %d", r.n, want.N)
		}
	}
}

// maxServerFrame bounds what the client accepts: no scenario sends more.
const maxServerFrame = 1 << 24

// readFrame reads one server frame and returns its bytes.
func (s *session) readFrame() []byte {
	s.t.Helper()
	if f := s.next; f != nil {
		s.next = nil
		return f
	}
	if s.tcpEnded {
		s.fatalf("the model predicts a frame after the server closed TCP")
	}
	s.nc.SetReadDeadline(time.Now().Add(stepTimeout))
	frame := make([]byte, 2, 14)
	if _, err := io.ReadFull(s.br, frame); err != nil {
		s.fatalf("reading a server frame: %v", err)
	}
	if frame[1]&0x80 != 0 && !s.client {
		s.fatalf("the server sent a masked frame % x", frame)
	}
	if frame[1]&0x80 == 0 && s.client {
		s.fatalf("the client sent an unmasked frame % x", frame)
	}
	var n uint64
	switch l := frame[1] & 0x7F; l {
	case 126, 127:
		ext := 2 + 6*int(l-126)
		frame = frame[:2+ext]
		if _, err := io.ReadFull(s.br, frame[2:]); err != nil {
			s.fatalf("reading a server frame's length: %v", err)
		}
		if l == 126 {
			n = uint64(binary.BigEndian.Uint16(frame[2:]))
		} else {
			n = binary.BigEndian.Uint64(frame[2:])
		}
	default:
		n = uint64(l)
	}
	if n > maxServerFrame {
		s.fatalf("server frame of %d bytes", n)
	}
	var key [4]byte
	if s.client {
		if _, err := io.ReadFull(s.br, key[:]); err != nil {
			s.fatalf("reading a client frame's key: %v", err)
		}
		if s.keys > 0 && key == s.lastKey {
			s.fatalf("the client masked two frames in a row with the key % x", key)
		}
		s.lastKey, s.keys = key, s.keys+1
		frame[1] &^= 0x80
	}
	frame = append(frame, make([]byte, n)...)
	if _, err := io.ReadFull(s.br, frame[len(frame)-int(n):]); err != nil {
		s.fatalf("reading a server frame's payload: %v", err)
	}
	for i := range int(n) { // a client's frame is compared unmasked, without its key
		frame[len(frame)-int(n)+i] ^= key[i%4]
	}
	return frame
}

// expectEnd checks that the server closed TCP and nothing came before the
// end, then closes the client's side, which ends the server's lingering.
//
// A client Conn that is to wait for the server's FIN (tc.AfterServer)
// must not have closed yet: the test, as the server, closes first.
func (s *session) expectEnd(ev model.Input, tc *model.TCPClose) {
	s.t.Helper()
	var one [1]byte
	if tc.AfterServer && !s.peerEOF {
		s.nc.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		if n, err := s.br.Read(one[:]); !isTimeout(err) {
			s.fatalf("after %s (row %s): the client closed TCP or sent more before the server closed it (read % x, %v)", ev.Kind, s.m.Row, one[:n], err)
		}
		s.nc.CloseWrite()
		s.peerEOF = true
	}
	s.nc.SetReadDeadline(time.Now().Add(stepTimeout))
	if s.client && !tc.Linger && !tc.AfterServer {
		// At once: not after waiting (up to a second) for our FIN.
		s.nc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	}
	if n, err := s.br.Read(one[:]); n > 0 || err == nil || isTimeout(err) {
		s.fatalf("after %s: the server did not close TCP (read % x, %v)", ev.Kind, one[:n], err)
	}
	s.nc.Close()
	s.tcpEnded = true
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// fence makes the server prove it has sent nothing unpredicted: a ping,
// if the model says it is answered, must be answered by the next frame.
// A receive call goes first, if none waits, so that the ping is read at
// once rather than when the background reader wakes up.
func (s *session) fence() {
	if s.tcpEnded || s.m.State != model.Open && s.m.State != model.Closing {
		return
	}
	if s.m.State == model.Open && !s.m.Receiving() {
		s.receive(model.ReceiveMessage, 0)
	}
	s.clientBytes(s.peerFrame(true, 0, model.OpPing, []byte("fence")))
}

// peerFrame builds a frame of the peer of s.c: a client's, masked, or if
// s.c is a client, a server's, unmasked.
func (s *session) peerFrame(fin bool, rsv, op byte, payload []byte) []byte {
	if s.client {
		return serverFrame(fin, rsv, op, payload)
	}
	return clientFrame(fin, rsv, op, payload, [4]byte{1, 2, 3, 4})
}

// serverFrame builds an unmasked frame, as a server sends it.
func serverFrame(fin bool, rsv, op byte, payload []byte) []byte {
	b := clientFrame(fin, rsv, op, payload, [4]byte{})
	b[1] &^= 0x80
	n := len(b) - len(payload)
	return append(b[:n-4], payload...)
}

// finish ends the connection from the client's side and waits until the
// server has let go of everything: the connection ended, every call
// returned.
func (s *session) finish() {
	s.t.Helper()
	s.fence()
	s.nc.Close()
	s.tcpEnded = true
	// A message nobody receives keeps the server from reading on, so it
	// would not see the end of TCP: the owner closes the connection.
	s.start(model.CloseCall, func() callResult { return callResult{err: s.c.Close(websocket.StatusOK, "")} })
	select {
	case <-s.ended:
	case <-time.After(stepTimeout):
		s.fatalf("the connection has not ended %v after the client closed TCP", stepTimeout)
	}
	if s.writer != nil {
		s.writer.Close()
		s.writer = nil
	}
	for ; s.calls > 0; s.calls-- {
		select {
		case <-s.results:
		case <-time.After(stepTimeout):
			s.fatalf("%d API calls still blocked after the connection ended", s.calls)
		}
	}
	if s.cancelCtx != nil {
		s.cancelCtx()
	}
}

// clientFrame builds a client frame, masked with key.
func clientFrame(fin bool, rsv, op byte, payload []byte, key [4]byte) []byte {
	b0 := op | rsv<<4
	if fin {
		b0 |= 0x80
	}
	var out []byte
	switch n := len(payload); {
	case n < 126:
		out = []byte{b0, 0x80 | byte(n)}
	case n < 1<<16:
		out = binary.BigEndian.AppendUint16([]byte{b0, 0x80 | 126}, uint16(n))
	default:
		out = binary.BigEndian.AppendUint64([]byte{b0, 0x80 | 127}, uint64(n))
	}
	out = append(out, key[:]...)
	for i, b := range payload {
		out = append(out, b^key[i%4])
	}
	return out
}

// describe prints a frame briefly.
func describe(frame []byte) string {
	if len(frame) < 2 {
		return fmt.Sprintf("% x", frame)
	}
	return fmt.Sprintf("[fin=%v op=%d len=%d % x…]", frame[0]&0x80 != 0, frame[0]&0xF, len(frame), frame[:min(len(frame), 24)])
}

func clip(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + fmt.Sprintf("…(%d bytes)", len(b))
	}
	return string(b)
}
