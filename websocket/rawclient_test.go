package websocket_test

// A raw-frame RFC 6455 test client over real TCP (loopback only) and helpers
// to run a websocket.Handler in a test server. Everything here is black-box:
// only the public API of package websocket is used.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"go.uber.org/goleak"

	"github.com/wsmachine/wsmachine/websocket"

	"github.com/wsmachine/wsmachine/websocket/internal/wstest"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(shutdownClientsEnv); spec != "" {
		os.Exit(shutdownClients(spec)) // a child of the Shutdown tests, not a test run
	}
	goleak.VerifyTestMain(m)
}

// Opcodes (RFC 6455 §5.2).
const (
	opCont   byte = 0x0
	opText   byte = 0x1
	opBinary byte = 0x2
	opClose  byte = 0x8
	opPing   byte = 0x9
	opPong   byte = 0xA
)

const (
	// ioTimeout bounds every single network read or write of the client.
	ioTimeout = 5 * time.Second
	// promptly is how long the server may take for something the issue
	// says happens "promptly" (answering a ping, noticing a close).
	promptly = 2 * time.Second
)

// headerHasToken reports whether any of the comma-separated values of the
// header contains tok (case-insensitive).
func headerHasToken(h http.Header, name, tok string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), tok) {
				return true
			}
		}
	}
	return false
}

// ---------------------------------------------------------------------------
// Test server

// testServer runs a websocket.Handler on 127.0.0.1 and keeps count of what
// the handler did.
type testServer struct {
	t    testing.TB
	srv  *httptest.Server
	URL  string // http://127.0.0.1:port
	Addr string // 127.0.0.1:port

	mu     sync.Mutex
	conns  []*websocket.Conn
	active int // ServeHTTP and Handle calls running

	accessCalls atomic.Int32
	handleCalls atomic.Int32
}

// serverOption changes how startServer mounts the handler.
type serverOption func(*serverConfig)

type serverConfig struct {
	middleware func(http.Handler) http.Handler
	httpConfig func(*http.Server)
}

// withHTTPServer changes the http.Server before it starts.
func withHTTPServer(f func(*http.Server)) serverOption {
	return func(c *serverConfig) { c.httpConfig = f }
}

func withMiddleware(mw func(http.Handler) http.Handler) serverOption {
	return func(c *serverConfig) { c.middleware = mw }
}

// startServer starts an HTTP server on 127.0.0.1:0 that serves h for every
// path. Handle and AccessOk are wrapped to count calls (nil ones stay nil).
// At the end of the test it waits (bounded) until all handlers returned,
// closes every Conn that a handler got and stops the server.
func startServer(t testing.TB, h *websocket.Handler, opts ...serverOption) *testServer {
	t.Helper()
	var cfg serverConfig
	for _, o := range opts {
		o(&cfg)
	}
	ts := &testServer{t: t}
	wrapped := new(websocket.Handler)
	*wrapped = *h // every option; the callbacks are wrapped below
	if h.AccessOk != nil {
		wrapped.AccessOk = func(c *websocket.Conn, protocols []string) bool {
			ts.accessCalls.Add(1)
			return h.AccessOk(c, protocols)
		}
	}
	if h.Handle != nil {
		wrapped.Handle = func(c *websocket.Conn) {
			ts.enter(c)
			defer ts.exit()
			ts.handleCalls.Add(1)
			h.Handle(c)
		}
	}
	var handler http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.enter(nil)
		defer ts.exit()
		wrapped.ServeHTTP(w, r)
	})
	if cfg.middleware != nil {
		handler = cfg.middleware(handler)
	}
	srv := httptest.NewUnstartedServer(handler)
	if cfg.httpConfig != nil {
		cfg.httpConfig(srv.Config)
	}
	srv.Start()
	ts.srv = srv
	ts.URL = srv.URL
	ts.Addr = srv.Listener.Addr().String()
	t.Cleanup(ts.shutdown)
	return ts
}

func (ts *testServer) enter(c *websocket.Conn) {
	ts.mu.Lock()
	ts.active++
	if c != nil {
		ts.conns = append(ts.conns, c)
	}
	ts.mu.Unlock()
}

func (ts *testServer) exit() {
	ts.mu.Lock()
	ts.active--
	ts.mu.Unlock()
}

// shutdown runs after the test's own cleanups (clients are closed first,
// because they were registered later).
func (ts *testServer) shutdown() {
	deadline := time.Now().Add(5 * time.Second)
	for {
		ts.mu.Lock()
		n := ts.active
		ts.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			ts.t.Errorf("%d handler call(s) still running 5 s after the test ended and all clients closed their TCP connections", n)
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	ts.mu.Lock()
	conns := append([]*websocket.Conn(nil), ts.conns...)
	ts.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Close(websocket.StatusGoingAway, "test over") // usually ErrConnClosed by now
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(6 * time.Second):
		ts.t.Errorf("Conn.Close did not return within 6 s at the end of the test")
	}
	ts.srv.Close()
}

// Conns returns the connections that Handle was called with so far.
func (ts *testServer) Conns() []*websocket.Conn {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]*websocket.Conn(nil), ts.conns...)
}

// ---------------------------------------------------------------------------
// Raw TCP / HTTP helpers

// dialTCP opens a loopback TCP connection that is closed at the end of the test.
func dialTCP(t testing.TB, addr string) *net.TCPConn {
	t.Helper()
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("refusing to dial non-loopback address %q", addr)
	}
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	tc := c.(*net.TCPConn)
	tc.SetNoDelay(true)
	t.Cleanup(func() { tc.Close() })
	return tc
}

// httpExchange sends a hand-written HTTP request (header lines joined with
// CRLF, the final empty line is added) and reads one response including its
// body.
type httpExchange struct {
	conn *net.TCPConn
	br   *bufio.Reader
	Resp *http.Response
	Body []byte
}

func doRawHTTP(t testing.TB, addr, method string, lines ...string) *httpExchange {
	t.Helper()
	c := dialTCP(t, addr)
	ex := &httpExchange{conn: c, br: bufio.NewReader(c)}
	req := strings.Join(lines, "\r\n") + "\r\n\r\n"
	c.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatalf("writing request: %v", err)
	}
	ex.Resp, ex.Body = ex.readResponse(t, method)
	return ex
}

func (ex *httpExchange) readResponse(t testing.TB, method string) (*http.Response, []byte) {
	t.Helper()
	ex.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	resp, err := http.ReadResponse(ex.br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading HTTP response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading HTTP response body: %v", err)
	}
	resp.Body.Close()
	return resp, body
}

// ---------------------------------------------------------------------------
// Raw WebSocket client

// rawClient speaks RFC 6455 frames by hand over a TCP connection.
type rawClient struct {
	t    testing.TB
	conn *net.TCPConn
	br   *bufio.Reader
	Resp *http.Response
	Key  string
	// deflate, if set, is the client's side of a negotiated
	// permessage-deflate: server messages with RSV1 are inflated.
	deflate *peerDeflate
}

// handshakeRequest builds an opening handshake request for path with the
// given extra header lines.
func handshakeRequest(host, path, key string, extra ...string) []string {
	lines := []string{
		"GET " + path + " HTTP/1.1",
		"Host: " + host,
		"Upgrade: websocket",
		"Connection: Upgrade",
		"Sec-WebSocket-Key: " + key,
		"Sec-WebSocket-Version: 13",
	}
	return append(lines, extra...)
}

// dialWS does the opening handshake on path "/" and checks the 101 response.
func dialWS(t testing.TB, ts *testServer, extra ...string) *rawClient {
	t.Helper()
	return dialWSPath(t, ts.Addr, "/", extra...)
}

func dialWSPath(t testing.TB, addr, path string, extra ...string) *rawClient {
	t.Helper()
	key := wstest.NewKey()
	return dialWSLines(t, addr, key, handshakeRequest(addr, path, key, extra...))
}

// dialWSLines sends the given request lines (which must carry key) and
// checks for a valid 101 response.
func dialWSLines(t testing.TB, addr, key string, lines []string) *rawClient {
	t.Helper()
	ex := doRawHTTP(t, addr, "GET", lines...)
	c := &rawClient{t: t, conn: ex.conn, br: ex.br, Resp: ex.Resp, Key: key}
	c.checkUpgrade(ex.Body, slices.ContainsFunc(lines, func(l string) bool {
		return strings.HasPrefix(strings.ToLower(l), "sec-websocket-extensions:")
	}))
	return c
}

// checkUpgrade checks the 101 response; extensions may be in it only if
// the request offered some.
func (c *rawClient) checkUpgrade(body []byte, offered bool) {
	c.t.Helper()
	r := c.Resp
	if r.StatusCode != http.StatusSwitchingProtocols {
		c.t.Fatalf("handshake: status %d %q (body %q), want 101", r.StatusCode, r.Status, body)
	}
	if !headerHasToken(r.Header, "Upgrade", "websocket") {
		c.t.Fatalf("handshake: Upgrade header %q lacks websocket", r.Header.Values("Upgrade"))
	}
	if !headerHasToken(r.Header, "Connection", "upgrade") {
		c.t.Fatalf("handshake: Connection header %q lacks upgrade", r.Header.Values("Connection"))
	}
	if got, want := r.Header.Values("Sec-WebSocket-Accept"), wstest.AcceptKey(c.Key); len(got) != 1 || got[0] != want {
		c.t.Fatalf("handshake: Sec-WebSocket-Accept %q, want %q", got, want)
	}
	if r.ProtoMajor != 1 || r.ProtoMinor != 1 {
		c.t.Fatalf("handshake: response protocol %q, want HTTP/1.1", r.Proto)
	}
	if te := r.Header.Values("Transfer-Encoding"); len(te) != 0 {
		c.t.Fatalf("handshake: 101 response with Transfer-Encoding %q", te)
	}
	if cl := r.Header.Get("Content-Length"); cl != "" && cl != "0" {
		c.t.Fatalf("handshake: 101 response with Content-Length %q", cl)
	}
	if v := r.Header.Values("Sec-WebSocket-Extensions"); len(v) != 0 && !offered {
		c.t.Fatalf("handshake: unexpected Sec-WebSocket-Extensions %q (no extension was negotiated)", v)
	}
}

// Write writes b in one call.
func (c *rawClient) Write(b []byte) {
	c.t.Helper()
	if err := c.TryWrite(b); err != nil {
		c.t.Fatalf("client write: %v", err)
	}
}

// TryWrite writes b and returns the error (the server may have closed).
func (c *rawClient) TryWrite(b []byte) error {
	c.conn.SetWriteDeadline(time.Now().Add(ioTimeout))
	_, err := c.conn.Write(b)
	return err
}

// WriteSplit writes b in separate writes, split at the given offsets, with a
// short pause between the writes so that the server sees them separately.
func (c *rawClient) WriteSplit(b []byte, offsets ...int) {
	c.t.Helper()
	prev := 0
	for _, off := range append(offsets, len(b)) {
		if off < prev || off > len(b) {
			c.t.Fatalf("bad split offset %d", off)
		}
		if off == prev {
			continue
		}
		c.Write(b[prev:off])
		prev = off
		if off < len(b) {
			time.Sleep(time.Millisecond)
		}
	}
}

// WriteChunks writes b in pieces of size n.
func (c *rawClient) WriteChunks(b []byte, n int) {
	c.t.Helper()
	var offs []int
	for o := n; o < len(b); o += n {
		offs = append(offs, o)
	}
	c.WriteSplit(b, offs...)
}

// Send writes one final masked frame.
func (c *rawClient) Send(op byte, payload []byte) {
	c.t.Helper()
	c.Write(wstest.FrameBytes(op, payload))
}

func (c *rawClient) SendText(s string) {
	c.t.Helper()
	c.Send(opText, []byte(s))
}

// SendClose sends a close frame with code and reason.
func (c *rawClient) SendClose(code uint16, reason string) {
	c.t.Helper()
	c.Send(opClose, wstest.ClosePayload(code, reason))
}

// Close closes the TCP connection abruptly (no close frame).
func (c *rawClient) Close() { c.conn.Close() }

// RFrame is a frame received from the server.
type RFrame struct {
	Fin     bool
	Rsv1    bool // compressed (permessage-deflate), allowed only with c.deflate
	Op      byte
	Payload []byte
}

func (f RFrame) String() string {
	p := f.Payload
	suffix := ""
	if len(p) > 40 {
		p, suffix = p[:40], fmt.Sprintf("...(%d bytes)", len(f.Payload))
	}
	if f.Op == opClose && len(f.Payload) >= 2 {
		return fmt.Sprintf("close(%d, %q)", binary.BigEndian.Uint16(f.Payload), f.Payload[2:])
	}
	return fmt.Sprintf("{fin=%v op=%#x payload=%q%s}", f.Fin, f.Op, p, suffix)
}

// errStrict marks a server frame that breaks RFC 6455.
var errStrict = errors.New("server frame violates RFC 6455")

// ReadFrameTimeout reads one server frame and checks it strictly: no RSV
// bits, known opcode, unmasked, minimal length encoding, control frames
// final and at most 125 bytes, close payload well-formed.
func (c *rawClient) ReadFrameTimeout(d time.Duration) (RFrame, error) {
	c.conn.SetReadDeadline(time.Now().Add(d))
	var hdr [2]byte
	if _, err := io.ReadFull(c.br, hdr[:]); err != nil {
		return RFrame{}, err
	}
	f := RFrame{Fin: hdr[0]&0x80 != 0, Op: hdr[0] & 0x0F}
	if rsv := hdr[0] & 0x70; rsv == 0x40 && c.deflate != nil && (f.Op == opText || f.Op == opBinary) {
		f.Rsv1 = true
	} else if rsv != 0 {
		return f, fmt.Errorf("%w: RSV bits %#x set", errStrict, rsv)
	}
	switch f.Op {
	case opCont, opText, opBinary, opClose, opPing, opPong:
	default:
		return f, fmt.Errorf("%w: reserved opcode %#x", errStrict, f.Op)
	}
	if hdr[1]&0x80 != 0 {
		return f, fmt.Errorf("%w: server frame is masked", errStrict)
	}
	n := uint64(hdr[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			return f, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
		if n < 126 {
			return f, fmt.Errorf("%w: non-minimal 16-bit length %d", errStrict, n)
		}
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			return f, err
		}
		n = binary.BigEndian.Uint64(b[:])
		if n>>63 != 0 {
			return f, fmt.Errorf("%w: 64-bit length with top bit set", errStrict)
		}
		if n <= 0xFFFF {
			return f, fmt.Errorf("%w: non-minimal 64-bit length %d", errStrict, n)
		}
		if n > 64<<20 {
			return f, fmt.Errorf("%w: implausible frame length %d", errStrict, n)
		}
	}
	if f.Op >= 0x8 {
		if !f.Fin {
			return f, fmt.Errorf("%w: fragmented control frame op=%#x", errStrict, f.Op)
		}
		if n > 125 {
			return f, fmt.Errorf("%w: control frame op=%#x with %d bytes", errStrict, f.Op, n)
		}
	}
	f.Payload = make([]byte, n)
	if _, err := io.ReadFull(c.br, f.Payload); err != nil {
		return f, err
	}
	if f.Op == opClose {
		if len(f.Payload) == 1 {
			return f, fmt.Errorf("%w: close frame with 1-byte payload", errStrict)
		}
		if len(f.Payload) >= 2 {
			code := binary.BigEndian.Uint16(f.Payload)
			if !serverSendableCode(code) {
				return f, fmt.Errorf("%w: close code %d must not be sent by a server", errStrict, code)
			}
			if !utf8.Valid(f.Payload[2:]) {
				return f, fmt.Errorf("%w: close reason is not UTF-8", errStrict)
			}
		}
	}
	return f, nil
}

func serverSendableCode(code uint16) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1009,
		code >= 1011 && code <= 1014, code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// ReadFrame reads one frame with the default timeout and fails the test on
// any error.
func (c *rawClient) ReadFrame() RFrame {
	c.t.Helper()
	f, err := c.ReadFrameTimeout(ioTimeout)
	if err != nil {
		c.t.Fatalf("reading server frame: %v", err)
	}
	return f
}

// ReadMessage reads one complete data message; control frames are not
// expected (a close or pong fails the test). Fragmentation is checked.
func (c *rawClient) ReadMessage() (byte, []byte) {
	c.t.Helper()
	op, p, err := c.readMessage(false)
	if err != nil {
		c.t.Fatalf("reading message: %v", err)
	}
	return op, p
}

func (c *rawClient) readMessage(skipPongs bool) (byte, []byte, error) {
	var op byte
	var msg []byte
	compressed := false
	for {
		f, err := c.ReadFrameTimeout(ioTimeout)
		if err != nil {
			return 0, nil, err
		}
		switch f.Op {
		case opPong:
			if skipPongs {
				continue
			}
			return 0, nil, fmt.Errorf("unexpected pong %q", f.Payload)
		case opPing:
			return 0, nil, fmt.Errorf("unexpected ping from server %q", f.Payload)
		case opClose:
			return 0, nil, fmt.Errorf("got %v while expecting a data message", f)
		case opCont:
			if op == 0 {
				return 0, nil, fmt.Errorf("%w: continuation frame without a started message", errStrict)
			}
		default:
			if op != 0 {
				return 0, nil, fmt.Errorf("%w: new data frame op=%#x inside a fragmented message", errStrict, f.Op)
			}
			op, compressed = f.Op, f.Rsv1
		}
		msg = append(msg, f.Payload...)
		if f.Fin && compressed {
			if msg, err = c.deflate.inflate(msg); err != nil {
				return op, msg, fmt.Errorf("%w: compressed message does not inflate: %v", errStrict, err)
			}
		}
		if f.Fin {
			if op == opText && !utf8.Valid(msg) {
				return op, msg, fmt.Errorf("%w: text message is not valid UTF-8: %q", errStrict, msg)
			}
			return op, msg, nil
		}
	}
}

// ExpectText reads a message and checks that it is text with content want.
func (c *rawClient) ExpectText(want string) {
	c.t.Helper()
	op, p := c.ReadMessage()
	if op != opText || string(p) != want {
		c.t.Fatalf("got message op=%#x %q, want text %q", op, trunc(p), trunc([]byte(want)))
	}
}

// ExpectBinary reads a message and checks that it is binary with content want.
func (c *rawClient) ExpectBinary(want []byte) {
	c.t.Helper()
	op, p := c.ReadMessage()
	if op != opBinary || !bytes.Equal(p, want) {
		c.t.Fatalf("got message op=%#x %q, want binary %q", op, trunc(p), trunc(want))
	}
}

func trunc(p []byte) string {
	if len(p) > 60 {
		return fmt.Sprintf("%q...(%d bytes)", p[:60], len(p))
	}
	return fmt.Sprintf("%q", p)
}

// ExpectPong reads the next frame and checks it is a pong with payload.
func (c *rawClient) ExpectPong(payload []byte) {
	c.t.Helper()
	f, err := c.ReadFrameTimeout(promptly)
	if err != nil {
		c.t.Fatalf("waiting for pong %q: %v", payload, err)
	}
	if f.Op != opPong || !bytes.Equal(f.Payload, payload) {
		c.t.Fatalf("got %v, want pong %q", f, payload)
	}
}

// noCode asks ExpectClose for a close frame without payload.
const noCode = 0

// ExpectClose reads the next frame, which must be a close frame with the
// given code (noCode: empty payload), then expects the server to close TCP.
// It returns the reason.
func (c *rawClient) ExpectClose(code uint16) string {
	c.t.Helper()
	f, err := c.ReadFrameTimeout(ioTimeout)
	if err != nil {
		c.t.Fatalf("waiting for close frame with code %d: %v", code, err)
	}
	reason := c.checkClose(f, code)
	c.ExpectEOF()
	return reason
}

// ExpectCloseAfterData skips data messages (at most limit frames) until the
// close frame arrives, checks it and expects TCP EOF.
func (c *rawClient) ExpectCloseAfterData(code uint16, limit int) string {
	c.t.Helper()
	for range limit {
		f, err := c.ReadFrameTimeout(ioTimeout)
		if err != nil {
			c.t.Fatalf("waiting for close frame with code %d: %v", code, err)
		}
		if f.Op == opText || f.Op == opBinary || f.Op == opCont {
			continue
		}
		reason := c.checkClose(f, code)
		c.ExpectEOF()
		return reason
	}
	c.t.Fatalf("no close frame within %d frames", limit)
	return ""
}

// ExpectCloseFrame reads the next frame and checks it is a close frame with
// code, but does not wait for EOF.
func (c *rawClient) ExpectCloseFrame(code uint16) string {
	c.t.Helper()
	f, err := c.ReadFrameTimeout(ioTimeout)
	if err != nil {
		c.t.Fatalf("waiting for close frame with code %d: %v", code, err)
	}
	return c.checkClose(f, code)
}

func (c *rawClient) checkClose(f RFrame, code uint16) string {
	c.t.Helper()
	if f.Op != opClose {
		c.t.Fatalf("got %v, want close frame with code %d", f, code)
	}
	if code == noCode {
		if len(f.Payload) != 0 {
			c.t.Fatalf("got %v, want close frame without payload", f)
		}
		return ""
	}
	if len(f.Payload) < 2 {
		c.t.Fatalf("got close frame without code, want code %d", code)
	}
	if got := binary.BigEndian.Uint16(f.Payload); got != code {
		c.t.Fatalf("got %v, want close code %d", f, code)
	}
	return string(f.Payload[2:])
}

// ExpectEOF expects the server to close the TCP connection (orderly FIN)
// without sending anything more; then the client closes its side too, as
// RFC 6455 §7.1.1 expects of a client.
func (c *rawClient) ExpectEOF() {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	b, err := c.br.ReadByte()
	defer c.conn.Close()
	switch {
	case err == nil:
		rest, _ := c.br.Peek(c.br.Buffered())
		c.t.Fatalf("expected TCP EOF after the close frame, got more bytes: %q", append([]byte{b}, rest...))
	case errors.Is(err, io.EOF):
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.t.Fatalf("server did not close the TCP connection within %v after its close frame", ioTimeout)
	case errors.Is(err, syscall.ECONNRESET):
		c.t.Fatalf("server reset the TCP connection instead of closing it orderly: %v", err)
	default:
		c.t.Fatalf("expected TCP EOF, got %v", err)
	}
}

// ExpectNothing checks that no byte arrives within d (used to check that
// something is ignored; it can only miss a bug, never fail spuriously).
func (c *rawClient) ExpectNothing(d time.Duration) {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(d))
	_, err := c.br.Peek(1)
	if err == nil {
		f, _ := c.ReadFrameTimeout(ioTimeout)
		c.t.Fatalf("expected no frame, got %v", f)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		c.t.Fatalf("expected no frame, got %v", err)
	}
}

// ---------------------------------------------------------------------------
// Small generic helpers

// recv waits (bounded) for a value on ch.
func recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(ioTimeout):
		t.Fatalf("timed out after %v waiting for %s", ioTimeout, what)
		panic("unreachable")
	}
}

// notYet checks that nothing arrives on ch within d.
func notYet[T any](t testing.TB, ch <-chan T, d time.Duration, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("%s happened too early: %v", what, v)
	case <-time.After(d):
	}
}

// statusResult is what GetStatus returned.
type statusResult struct {
	Code   websocket.Status
	Reason string
}

// getStatusAsync calls GetStatus in a goroutine.
func getStatusAsync(c *websocket.Conn) <-chan statusResult {
	ch := make(chan statusResult, 1)
	go func() {
		code, reason := c.GetStatus()
		ch <- statusResult{code, reason}
	}()
	return ch
}

// echoResult is reported by echoHandle when the connection ends.
type echoResult struct {
	Err    error // the error that ended the loop
	Status statusResult
	Msgs   int // messages echoed
}

// echoHandler returns a Handle func that echoes every message until an
// error, then reports the error and GetStatus on the returned channel.
func echoHandler() (func(*websocket.Conn), <-chan echoResult) {
	ch := make(chan echoResult, 16)
	return func(c *websocket.Conn) {
		var res echoResult
		for {
			tp, r, err := c.ReceiveMessage()
			if err != nil {
				res.Err = err
				break
			}
			data, err := io.ReadAll(r)
			if err != nil {
				res.Err = err
				break
			}
			if tp == websocket.Text {
				err = c.SendText(string(data))
			} else {
				err = c.SendBinary(data)
			}
			if err != nil {
				res.Err = err
				break
			}
			res.Msgs++
		}
		code, reason := c.GetStatus()
		res.Status = statusResult{code, reason}
		ch <- res
	}, ch
}

// startEcho starts a server whose handler echoes messages.
func startEcho(t testing.TB) (*testServer, <-chan echoResult) {
	h, ch := echoHandler()
	ts := startServer(t, &websocket.Handler{
		AccessOk: func(*websocket.Conn, []string) bool { return true },
		Handle:   h,
	})
	return ts, ch
}

// allowAll is an AccessOk that accepts everything (and selects nothing).
func allowAll(*websocket.Conn, []string) bool { return true }

// handlerFunc starts a server with AccessOk allowAll and the given Handle.
func startHandler(t testing.TB, handle func(*websocket.Conn)) *testServer {
	return startServer(t, &websocket.Handler{AccessOk: allowAll, Handle: handle})
}

// pollUntil calls f every few milliseconds until it returns true or the
// timeout passes; it reports whether f returned true.
func pollUntil(timeout time.Duration, f func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if f() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sendUntilClosed sends small text messages every 5 ms until a send fails
// or the timeout passes; it returns the error (nil on timeout).
func sendUntilClosed(c *websocket.Conn, timeout time.Duration) error {
	var err error
	pollUntil(timeout, func() bool {
		err = c.SendText("tick")
		return err != nil
	})
	return err
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (*rawClient, net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srvSide := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		srvSide <- c
	}()
	cl := dialTCP(t, ln.Addr().String())
	sc := recv(t, srvSide, "accept")
	if sc == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { sc.Close() })
	return &rawClient{t: t, conn: cl, br: bufio.NewReader(cl)}, sc
}

// The raw client's frame parser is strict: it rejects server frames that
// break RFC 6455 (so that the tests through the raw client catch such frames).
func TestRawClientParserIsStrict(t *testing.T) {
	bad := []struct {
		name  string
		bytes []byte
	}{
		{"Masked", wstest.Frame{Fin: true, Op: opText, Payload: []byte("x")}.Bytes()},
		{"RSV1", wstest.Frame{Fin: true, Rsv: 4, Op: opText, NoMask: true}.Bytes()},
		{"ReservedOpcode", wstest.Frame{Fin: true, Op: 0x3, NoMask: true}.Bytes()},
		{"NonMinimal16", wstest.Frame{Fin: true, Op: opText, Payload: []byte("x"), NoMask: true, LenForm: 16}.Bytes()},
		{"NonMinimal64", wstest.Frame{Fin: true, Op: opText, Payload: []byte("x"), NoMask: true, LenForm: 64}.Bytes()},
		{"FragmentedPing", wstest.Frame{Op: opPing, NoMask: true}.Bytes()},
		{"LongPong", wstest.Frame{Fin: true, Op: opPong, Payload: make([]byte, 126), NoMask: true}.Bytes()},
		{"Close1Byte", wstest.Frame{Fin: true, Op: opClose, Payload: []byte{3}, NoMask: true}.Bytes()},
		{"Close1005", wstest.Frame{Fin: true, Op: opClose, Payload: wstest.ClosePayload(1005, ""), NoMask: true}.Bytes()},
		{"Close1010", wstest.Frame{Fin: true, Op: opClose, Payload: wstest.ClosePayload(1010, ""), NoMask: true}.Bytes()},
		{"CloseBadReason", wstest.Frame{Fin: true, Op: opClose, Payload: wstest.ClosePayload(1000, "\xff"), NoMask: true}.Bytes()},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			c, sc := tcpPair(t)
			sc.SetWriteDeadline(time.Now().Add(ioTimeout))
			if _, err := sc.Write(b.bytes); err != nil {
				t.Fatal(err)
			}
			if _, err := c.ReadFrameTimeout(ioTimeout); !errors.Is(err, errStrict) {
				t.Errorf("parser returned %v, want a strictness error", err)
			}
		})
	}
	t.Run("GoodFrame", func(t *testing.T) {
		c, sc := tcpPair(t)
		sc.Write(wstest.Frame{Fin: true, Op: opText, Payload: []byte("ok"), NoMask: true}.Bytes())
		if f, err := c.ReadFrameTimeout(ioTimeout); err != nil || string(f.Payload) != "ok" {
			t.Errorf("good frame: %v %v", f, err)
		}
	})
}

// handlerResult is reported by the handler that startReporting installs.
type handlerResult struct {
	err     error         // returned by the handler's action
	elapsed time.Duration // how long the action took
	status  statusResult  // GetStatus after the action returned
}

// startReporting starts a server whose handler runs action, then reports
// its error, how long it took and GetStatus.
func startReporting(t testing.TB, action func(*websocket.Conn) error) (*testServer, <-chan handlerResult) {
	done := make(chan handlerResult, 1)
	ts := startHandler(t, func(c *websocket.Conn) {
		start := time.Now()
		err := action(c)
		elapsed := time.Since(start)
		code, reason := c.GetStatus()
		done <- handlerResult{err, elapsed, statusResult{code, reason}}
	})
	return ts, done
}

// startCloser starts a server whose handler calls Close(code, reason) at
// once, then reports as startReporting does.
func startCloser(t testing.TB, code websocket.Status, reason string) (*testServer, <-chan handlerResult) {
	return startReporting(t, func(c *websocket.Conn) error { return c.Close(code, reason) })
}

// startHeldConn starts a server whose handler hands its Conn over on conns
// and then blocks until release is called.
func startHeldConn(t testing.TB) (ts *testServer, conns <-chan *websocket.Conn, release func()) {
	ch := make(chan *websocket.Conn, 1)
	rel := make(chan struct{})
	ts = startHandler(t, func(c *websocket.Conn) {
		ch <- c
		<-rel
	})
	return ts, ch, func() { close(rel) }
}

// Helper sanity: our own frame encoder produces what RFC 6455 §5.7 shows.
func TestRawClientEncoderMatchesRFCExamples(t *testing.T) {
	key := &[4]byte{0x37, 0xfa, 0x21, 0x3d}
	got := wstest.Frame{Fin: true, Op: opText, Payload: []byte("Hello"), Mask: key}.Bytes()
	want := []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}
	if !bytes.Equal(got, want) {
		t.Errorf("masked Hello = %x, want %x", got, want)
	}
	got = wstest.Frame{Fin: true, Op: opBinary, Payload: make([]byte, 256), NoMask: true}.Bytes()
	if !bytes.Equal(got[:4], []byte{0x82, 0x7E, 0x01, 0x00}) {
		t.Errorf("256-byte header = %x", got[:4])
	}
	got = wstest.Frame{Fin: true, Op: opBinary, Payload: make([]byte, 65536), NoMask: true}.Bytes()
	if !bytes.Equal(got[:10], []byte{0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0}) {
		t.Errorf("64KiB header = %x", got[:10])
	}
	if binary.BigEndian.Uint16(wstest.ClosePayload(1000, "")) != 1000 || !utf8.ValidString("ok") {
		t.Errorf("closePayload broken")
	}
}

func u64(v uint64) *uint64 { return &v }

// receivers are the three ways to receive a message, each with the opcode
// it expects.
var receivers = []struct {
	name string
	op   byte
	recv func(*websocket.Conn) ([]byte, error)
}{
	{"ReceiveMessage", opBinary, func(c *websocket.Conn) ([]byte, error) {
		_, r, err := c.ReceiveMessage()
		if err != nil {
			return nil, err
		}
		return io.ReadAll(r)
	}},
	{"ReceiveText", opText, func(c *websocket.Conn) ([]byte, error) {
		s, err := c.ReceiveText(1000)
		return []byte(s), err
	}},
	{"ReceiveBinary", opBinary, func(c *websocket.Conn) ([]byte, error) {
		buf := make([]byte, 1000)
		n, err := c.ReceiveBinary(buf)
		return buf[:max(0, min(n, len(buf)))], err
	}},
}

type sendKind struct {
	name string
	send func(*websocket.Conn) error
}

// sendMessageX returns a send function that sends "x" as one message of
// type tp through SendMessage.
func sendMessageX(tp websocket.MessageType) func(*websocket.Conn) error {
	return func(c *websocket.Conn) error {
		w, err := c.SendMessage(tp)
		if err != nil {
			return err
		}
		if _, err := w.Write([]byte("x")); err != nil {
			w.Close()
			return err
		}
		return w.Close()
	}
}

var sendKinds = []sendKind{
	{"SendText", func(c *websocket.Conn) error { return c.SendText("x") }},
	{"SendBinary", func(c *websocket.Conn) error { return c.SendBinary([]byte("x")) }},
	{"SendMessageText", sendMessageX(websocket.Text)},
	{"SendMessageBinary", sendMessageX(websocket.Binary)},
}

// skipToCloseFrame reads and skips frames until a close frame, checks its
// code and returns its reason; it does not wait for EOF.
func (c *rawClient) skipToCloseFrame(code uint16) (reason string) {
	c.t.Helper()
	for range 100000 {
		f := c.ReadFrame()
		if f.Op == opClose {
			return c.checkClose(f, code)
		}
	}
	return ""
}

// sendPingsAsync writes n pings (payloads "0", "1", ...) from a goroutine,
// pausing gap after each, and reports the first write error or nil.
func (c *rawClient) sendPingsAsync(n int, gap time.Duration) <-chan error {
	errc := make(chan error, 1)
	go func() {
		for i := range n {
			if err := c.TryWrite(wstest.FrameBytes(opPing, []byte(fmt.Sprint(i)))); err != nil {
				errc <- err
				return
			}
			time.Sleep(gap)
		}
		errc <- nil
	}()
	return errc
}

// readMsgsAndPongs reads frames until nMsgs data messages and nPongs pongs
// arrived (pongs may come at any point between messages).
func (c *rawClient) readMsgsAndPongs(nMsgs, nPongs int) (msgs [][]byte, ops []byte, pongs [][]byte) {
	c.t.Helper()
	var cur []byte
	var curOp byte
	for range 100000 {
		if len(msgs) == nMsgs && len(pongs) == nPongs {
			return
		}
		f := c.ReadFrame()
		switch f.Op {
		case opPong:
			pongs = append(pongs, f.Payload)
			continue
		case opCont:
			if curOp == 0 {
				c.t.Fatalf("continuation without start from server")
			}
		case opText, opBinary:
			if curOp != 0 {
				c.t.Fatalf("server started a new message inside a fragmented one")
			}
			curOp = f.Op
		default:
			c.t.Fatalf("unexpected frame %v", f)
		}
		cur = append(cur, f.Payload...)
		if f.Fin {
			if curOp == opText && !utf8.Valid(cur) {
				c.t.Fatalf("server sent a text message that is not valid UTF-8: %s", trunc(cur))
			}
			msgs = append(msgs, cur)
			ops = append(ops, curOp)
			cur, curOp = nil, 0
		}
	}
	c.t.Fatalf("too many frames")
	return
}

// startWriterHolder starts a handler that opens a SendMessage writer, puts
// 256 KiB on the wire and then keeps the writer open until the connection
// has ended (GetStatus returns). Then it calls Write and Close on the writer
// and reports both errors.
func startWriterHolder(t *testing.T) (*testServer, <-chan [2]error) {
	done := make(chan [2]error, 1)
	ts := startHandler(t, func(c *websocket.Conn) {
		w, err := c.SendMessage(websocket.Binary)
		if err != nil {
			done <- [2]error{err, err}
			return
		}
		w.Write(make([]byte, 256<<10))
		c.GetStatus()
		_, werr := w.Write([]byte("more"))
		done <- [2]error{werr, w.Close()}
	})
	return ts, done
}
