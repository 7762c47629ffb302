package websocket_test

// Interop of our client (Dial) with servers nobody here wrote: gorilla's,
// coder's and gws's (test-only dependencies), Node's ws and Python's
// websockets (testdata/peers/node_server.mjs and python_server.py; `make
// deps` installs them, and a missing one is a failure, never a skip).
//
// Every server does the same: it echoes each message, answers a text
// "close <code> <reason>" by closing with that code and reason, answers a
// text "ping <data>" with a ping carrying data and, once the pong is in,
// the text "pong <data>", and reports the code and reason of the client's
// close frame for the connection's path. Each is met plain, with
// permessage-deflate in both of our modes, and over TLS with a test
// certificate.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coder "github.com/coder/websocket"
	gorilla "github.com/gorilla/websocket"
	"github.com/lxzan/gws"

	"github.com/wsmachine/wsmachine/websocket"
)

// interopIdle bounds every wait of the client and of the Go servers for
// the other side: a peer that stops answering fails the test instead of
// hanging it.
const interopIdle = 15 * time.Second

// clientModes are the ways our client meets each server.
var clientModes = []struct {
	name        string
	compression websocket.CompressionMode
	tls         bool
}{
	{"plain", websocket.CompressionOff, false},
	{"deflate-no-context-takeover", websocket.CompressionNoContextTakeover, false},
	{"deflate-context-takeover", websocket.CompressionContextTakeover, false},
	{"wss", websocket.CompressionOff, true},
}

// interopServers are the servers, each with its Sec-WebSocket-Extensions
// answer to our two offers: with both no_context_takeover parameters, and
// with none.
var interopServers = []struct {
	name              string
	noContextTakeover string
	contextTakeover   string
	start             func(t *testing.T, deflate, tls bool) *echoServer
}{
	{"gorilla", "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
		"permessage-deflate; server_no_context_takeover; client_no_context_takeover", startGorillaServer},
	{"coder", "permessage-deflate; client_no_context_takeover; server_no_context_takeover",
		"permessage-deflate", startCoderServer},
	// gws, configured with windows of 12 bits for itself and 9 for the
	// client, answers both: we compress within 512 bytes.
	{"gws", "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12; client_max_window_bits=9",
		"permessage-deflate; server_max_window_bits=12; client_max_window_bits=9", startGWSServer},
	{"node-ws", "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
		"permessage-deflate", startNodeServer},
	// websockets limits both windows to 12 bits: ours too, since we
	// offer client_max_window_bits.
	{"python-websockets", "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12; client_max_window_bits=12",
		"permessage-deflate; server_max_window_bits=12; client_max_window_bits=12", startPythonServer},
}

// ourCloses and theirCloses are the codes each side closes with: ours
// are echoed by every server, theirs are what a server typically sends,
// and 1010, a client's complaint that some servers send too, which we
// accept and echo (RFC 6455 §7.4.1).
var (
	ourCloses   = []statusResult{{websocket.StatusOK, ""}, {4001, "client leaves"}}
	theirCloses = []statusResult{{websocket.StatusGoingAway, "server leaves"}, {4002, ""}, {1010, "extension required"}}
)

// TestClientInterop: our client against each server in each mode: the
// echo set, then closes initiated by each side.
// Rows: C1, O1, O3, O6, O10, K4; "Roles": the client.
func TestClientInterop(t *testing.T) {
	t.Parallel()
	for _, srv := range interopServers {
		for _, mode := range clientModes {
			t.Run(srv.name+"/"+mode.name, func(t *testing.T) {
				t.Parallel()
				s := srv.start(t, mode.compression != websocket.CompressionOff, mode.tls)
				wantExt := map[websocket.CompressionMode]string{
					websocket.CompressionNoContextTakeover: srv.noContextTakeover,
					websocket.CompressionContextTakeover:   srv.contextTakeover,
				}[mode.compression]
				t.Run("echo", func(t *testing.T) { checkInteropEchoes(t, s, mode.compression, wantExt) })
				for _, st := range ourCloses {
					t.Run(fmt.Sprintf("close-ours-%d", st.Code), func(t *testing.T) { checkOurClose(t, s, mode.compression, st) })
				}
				for _, st := range theirCloses {
					t.Run(fmt.Sprintf("close-theirs-%d", st.Code), func(t *testing.T) { checkTheirClose(t, s, mode.compression, st) })
				}
			})
		}
	}
}

// interopEcho is a message of the echo set; parts > 0 sends it with
// SendMessage in that many writes.
type interopEcho struct {
	name  string
	tp    websocket.MessageType
	data  []byte
	parts int
}

// interopEchoes: both types, empty, the lengths around the 7-bit and
// 16-bit length forms, 1 MiB of each type (the text compressible), UTF-8,
// and streamed messages (three of the text's writes end inside a
// character).
func interopEchoes() []interopEcho {
	bin := make([]byte, 1<<20)
	r := mrand.NewChaCha8([32]byte{9})
	r.Read(bin)
	const unit = "κόσμε · 日本語 · 𝄞 · 🙂 · wsmachine · " // 56 bytes, characters of 1 to 4
	text := []byte(strings.Repeat(unit, (1<<20)/len(unit)))
	return []interopEcho{
		{"text", websocket.Text, []byte("hello, wsmachine"), 0},
		{"text-utf8", websocket.Text, []byte(unit), 0},
		{"text-empty", websocket.Text, nil, 0},
		{"binary-empty", websocket.Binary, nil, 0},
		{"binary-125", websocket.Binary, bin[:125], 0},
		{"binary-126", websocket.Binary, bin[:126], 0},
		{"binary-65535", websocket.Binary, bin[:65535], 0},
		{"binary-65536", websocket.Binary, bin[:65536], 0},
		{"binary-1MiB", websocket.Binary, bin, 0},
		{"text-1MiB", websocket.Text, text, 0},
		{"text-streamed", websocket.Text, text[:2000*len(unit)], 7},
		{"binary-streamed", websocket.Binary, bin[:300001], 5},
	}
}

// checkInteropEchoes runs the echo set on one connection, then a ping
// from the server and many small messages in a row, and closes. With
// compression it checks the server's answer and that the compressible
// 1 MiB text went compressed both ways.
func checkInteropEchoes(t *testing.T, s *echoServer, mode websocket.CompressionMode, wantExt string) {
	var m meter
	c, resp := dialInterop(t, s, "/echo", mode, &m)
	if got := resp.Header.Values("Sec-WebSocket-Extensions"); mode == websocket.CompressionOff && len(got) > 0 {
		t.Errorf("extensions %q negotiated without an offer", got)
	} else if mode != websocket.CompressionOff && !sameExtension(strings.Join(got, ", "), wantExt) {
		t.Errorf("Sec-WebSocket-Extensions %q, want %q", got, wantExt)
	}
	for _, e := range interopEchoes() {
		read, written := m.read.Load(), m.written.Load()
		if err := sendInterop(c, e); err != nil {
			t.Fatalf("%s: send: %v", e.name, err)
		}
		tp, got, err := receiveInterop(c, e)
		if err != nil || tp != e.tp || !bytes.Equal(got, e.data) {
			t.Fatalf("%s: echo %v of %d bytes %s, %v; want %v of %d bytes %s", e.name, tp, len(got), trunc(got), err, e.tp, len(e.data), trunc(e.data))
		}
		read, written = m.read.Load()-read, m.written.Load()-written
		if mode != websocket.CompressionOff && e.name == "text-1MiB" && (read > int64(len(e.data))/2 || written > int64(len(e.data))/2) {
			t.Errorf("%s: %d bytes sent and %d received on the wire for %d bytes each way: not compressed", e.name, written, read, len(e.data))
		}
	}

	if err := c.SendText("ping are you there"); err != nil {
		t.Fatal(err)
	}
	if got, err := c.ReceiveText(100); err != nil || got != "pong are you there" {
		t.Fatalf("after the server's ping: %q, %v; want its word that the pong came", got, err)
	}

	// With compression, fewer: the Go servers take a compressor from a
	// sync.Pool per message, which the race detector empties on purpose,
	// and a new one costs milliseconds there.
	n := 1000
	if mode != websocket.CompressionOff {
		n = 100
	}
	for i := range n {
		if err := c.SendText("message " + strconv.Itoa(i)); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	for i := range n {
		if got, err := c.ReceiveText(100); err != nil || got != "message "+strconv.Itoa(i) {
			t.Fatalf("echo %d of %d in a row: %q, %v", i, n, got, err)
		}
	}

	if err := c.Close(websocket.StatusOK, ""); err != nil {
		t.Errorf("Close: %v", err)
	}
	if got := s.closes.wait(t, "/echo"); got.Code != websocket.StatusOK {
		t.Errorf("the server saw close %d %q, want 1000", got.Code, got.Reason)
	}
}

// sendInterop sends e whole, or in e.parts writes of SendMessage.
func sendInterop(c *websocket.Conn, e interopEcho) error {
	if e.parts == 0 {
		if e.tp == websocket.Text {
			return c.SendText(string(e.data))
		}
		return c.SendBinary(e.data)
	}
	w, err := c.SendMessage(e.tp)
	if err != nil {
		return err
	}
	size := len(e.data)/e.parts + 1
	for p := e.data; len(p) > 0; p = p[min(size, len(p)):] {
		if _, err := w.Write(p[:min(size, len(p))]); err != nil {
			w.Close()
			return err
		}
	}
	return w.Close()
}

// receiveInterop receives the echo of e: short texts with ReceiveText,
// binary messages up to 64 KiB with ReceiveBinary, the rest with
// ReceiveMessage.
func receiveInterop(c *websocket.Conn, e interopEcho) (websocket.MessageType, []byte, error) {
	switch {
	case e.tp == websocket.Text && len(e.data) < 1<<10:
		s, err := c.ReceiveText(1 << 10)
		return websocket.Text, []byte(s), err
	case e.tp == websocket.Binary && len(e.data) <= 64<<10:
		buf := make([]byte, 64<<10)
		n, err := c.ReceiveBinary(buf)
		return websocket.Binary, buf[:n], err
	}
	tp, r, err := c.ReceiveMessage()
	if err != nil {
		return tp, nil, err
	}
	data, err := io.ReadAll(r)
	return tp, data, err
}

// sameExtension compares two Sec-WebSocket-Extensions values with one
// extension each, parameters in any order.
func sameExtension(a, b string) bool {
	split := func(s string) []string {
		var ps []string
		for p := range strings.SplitSeq(s, ";") {
			ps = append(ps, strings.ToLower(strings.TrimSpace(p)))
		}
		slices.Sort(ps)
		return ps
	}
	return slices.Equal(split(a), split(b))
}

// checkOurClose: our client closes with st; the server sees that code
// and reason and echoes the code, which is what GetStatus reports.
func checkOurClose(t *testing.T, s *echoServer, mode websocket.CompressionMode, st statusResult) {
	path := fmt.Sprintf("/close-ours-%d", st.Code)
	c, _ := dialInterop(t, s, path, mode, nil)
	if err := c.SendText("before closing"); err != nil {
		t.Fatal(err)
	}
	if got, err := c.ReceiveText(100); err != nil || got != "before closing" {
		t.Fatalf("echo: %q, %v", got, err)
	}
	if err := c.Close(st.Code, st.Reason); err != nil {
		t.Errorf("Close(%d, %q): %v", st.Code, st.Reason, err)
	}
	if code, _ := c.GetStatus(); code != st.Code {
		t.Errorf("GetStatus: %d, want the server's echo of %d", code, st.Code)
	}
	if got := s.closes.wait(t, path); got != st {
		t.Errorf("the server saw close %d %q, want %d %q", got.Code, got.Reason, st.Code, st.Reason)
	}
}

// checkTheirClose: the server closes with st; receiving ends with
// ErrConnClosed and GetStatus reports the server's code and reason.
func checkTheirClose(t *testing.T, s *echoServer, mode websocket.CompressionMode, st statusResult) {
	path := fmt.Sprintf("/close-theirs-%d", st.Code)
	c, _ := dialInterop(t, s, path, mode, nil)
	if err := c.SendText(fmt.Sprintf("close %d %s", st.Code, st.Reason)); err != nil {
		t.Fatal(err)
	}
	if tp, _, err := c.ReceiveMessage(); !errors.Is(err, websocket.ErrConnClosed) {
		t.Errorf("receive after the server's close: %v, %v; want ErrConnClosed", tp, err)
	}
	if code, reason := c.GetStatus(); code != st.Code || reason != st.Reason {
		t.Errorf("GetStatus: %d %q, want the server's %d %q", code, reason, st.Code, st.Reason)
	}
	if err := c.SendText("late"); !errors.Is(err, websocket.ErrConnClosed) {
		t.Errorf("send after the server's close: %v", err)
	}
	got := s.closes.wait(t, path)
	t.Logf("the server saw our answer: close %d %q", got.Code, got.Reason)
}

// dialInterop dials path on s with the mode's compression, through m if
// not nil, and closes the connection at the end of the test.
func dialInterop(t *testing.T, s *echoServer, path string, mode websocket.CompressionMode, m *meter) (*websocket.Conn, *http.Response) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	opts := &websocket.DialOptions{
		Compression: mode,
		TLSConfig:   &tls.Config{RootCAs: s.rootCAs},
		Proxy:       func(*http.Request) (*url.URL, error) { return nil, nil }, // loopback, whatever the environment says
		IdleTimeout: interopIdle,
	}
	if m != nil {
		opts.NetDial = m.dial
	}
	c, resp, err := websocket.Dial(ctx, s.url+path, opts)
	if err != nil {
		t.Fatalf("Dial %s: %v (response %v)", s.url+path, err, resp)
	}
	t.Cleanup(func() { c.Close(websocket.StatusGoingAway, "test over") })
	return c, resp
}

// meter counts the bytes that cross the connections it dials: on the
// wire, under TLS if there is TLS.
type meter struct{ read, written atomic.Int64 }

func (m *meter) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &meteredConn{nc, m}, nil
}

type meteredConn struct {
	net.Conn
	m *meter
}

func (c *meteredConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.m.read.Add(int64(n))
	return n, err
}

func (c *meteredConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.m.written.Add(int64(n))
	return n, err
}

// ---------------------------------------------------------------------------
// The servers

// echoServer is a running server: its ws:// or wss:// URL without the
// path, the pool that trusts its certificate, and the close frames its
// clients sent.
type echoServer struct {
	url     string
	rootCAs *x509.CertPool
	closes  *closeLog
}

// closeLog holds, for each path, the code and reason of the client's
// close frame as the server saw it (code -1: the connection ended without
// one; the reason then says how).
type closeLog struct {
	mu  sync.Mutex
	chs map[string]chan statusResult
}

func (l *closeLog) ch(path string) chan statusResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.chs == nil {
		l.chs = map[string]chan statusResult{}
	}
	if l.chs[path] == nil {
		l.chs[path] = make(chan statusResult, 4)
	}
	return l.chs[path]
}

func (l *closeLog) report(path string, code int, reason string) {
	select {
	case l.ch(path) <- statusResult{websocket.Status(code), reason}:
	default: // nobody waits for that many
	}
}

func (l *closeLog) wait(t *testing.T, path string) statusResult {
	t.Helper()
	select {
	case st := <-l.ch(path):
		return st
	case <-time.After(interopIdle):
		t.Fatalf("the server reported no end of %s in %v", path, interopIdle)
		panic("unreachable")
	}
}

// serverCommand is the command a message asks of the server ("close",
// "ping") and its argument, or "" for a message to echo.
func serverCommand(text bool, p []byte) (cmd, arg string) {
	for _, c := range []string{"close", "ping"} {
		if text && bytes.HasPrefix(p, []byte(c+" ")) {
			return c, string(p[len(c)+1:])
		}
	}
	return "", ""
}

// closeArgs parses the argument of "close": a code, a space, a reason.
func closeArgs(arg string) (int, string) {
	code, reason, _ := strings.Cut(arg, " ")
	n, _ := strconv.Atoi(code)
	return n, reason
}

// startGoServer serves the handler that serve makes on 127.0.0.1, over
// TLS if tlsOn. At the end of the test it waits for the handlers to
// return (closing the connections they still hold after 5 s) and stops.
func startGoServer(t *testing.T, tlsOn bool, serve func(*closeLog) http.HandlerFunc) *echoServer {
	s := &echoServer{closes: &closeLog{}}
	h := serve(s.closes)
	var mu sync.Mutex
	active := 0
	var hijacked []net.Conn
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		active++
		mu.Unlock()
		defer func() {
			mu.Lock()
			active--
			mu.Unlock()
		}()
		h(w, r)
	}))
	srv.Config.ConnState = func(nc net.Conn, st http.ConnState) {
		if st == http.StateHijacked {
			mu.Lock()
			hijacked = append(hijacked, nc)
			mu.Unlock()
		}
	}
	srv.EnableHTTP2 = false
	if tlsOn {
		srv.StartTLS()
		s.rootCAs = x509.NewCertPool()
		s.rootCAs.AddCert(srv.Certificate())
		s.url = "wss://" + srv.Listener.Addr().String()
	} else {
		srv.Start()
		s.url = "ws://" + srv.Listener.Addr().String()
	}
	t.Cleanup(func() {
		idle := func() bool { mu.Lock(); defer mu.Unlock(); return active == 0 }
		if !pollUntil(5*time.Second, idle) {
			t.Errorf("server handlers still running 5 s after the test: closing their connections")
			mu.Lock()
			for _, nc := range hijacked {
				nc.Close()
			}
			mu.Unlock()
			if !pollUntil(5*time.Second, idle) {
				t.Errorf("server handlers still running after their connections were closed")
			}
		}
		srv.Close()
	})
	return s
}

// startGorillaServer: gorilla's Upgrader (with compression, gorilla asks
// for no context takeover both ways).
func startGorillaServer(t *testing.T, deflate, tlsOn bool) *echoServer {
	return startGoServer(t, tlsOn, func(closes *closeLog) http.HandlerFunc {
		up := &gorilla.Upgrader{EnableCompression: deflate}
		return func(w http.ResponseWriter, r *http.Request) {
			c, err := up.Upgrade(w, r, nil)
			if err != nil {
				return // Upgrade answered with an error
			}
			defer c.Close()
			c.SetPongHandler(func(data string) error {
				return c.WriteMessage(gorilla.TextMessage, []byte("pong "+data))
			})
			for {
				c.SetReadDeadline(time.Now().Add(interopIdle))
				tp, p, err := c.ReadMessage() // answers a close frame with its code
				if err != nil {
					if ce, ok := errors.AsType[*gorilla.CloseError](err); ok {
						closes.report(r.URL.Path, ce.Code, ce.Text)
					} else {
						closes.report(r.URL.Path, -1, err.Error())
					}
					return
				}
				deadline := time.Now().Add(ioTimeout)
				switch cmd, arg := serverCommand(tp == gorilla.TextMessage, p); cmd {
				case "close":
					code, reason := closeArgs(arg)
					err = c.WriteControl(gorilla.CloseMessage, gorilla.FormatCloseMessage(code, reason), deadline)
				case "ping":
					err = c.WriteControl(gorilla.PingMessage, []byte(arg), deadline)
				default:
					c.SetWriteDeadline(deadline)
					err = c.WriteMessage(tp, p)
				}
				if err != nil {
					closes.report(r.URL.Path, -1, err.Error())
					return
				}
			}
		}
	})
}

// startCoderServer: coder's Accept (with compression, its context
// takeover mode, which follows the client's no_context_takeover).
func startCoderServer(t *testing.T, deflate, tlsOn bool) *echoServer {
	return startGoServer(t, tlsOn, func(closes *closeLog) http.HandlerFunc {
		mode := coder.CompressionDisabled
		if deflate {
			mode = coder.CompressionContextTakeover
		}
		return func(w http.ResponseWriter, r *http.Request) {
			c, err := coder.Accept(w, r, &coder.AcceptOptions{CompressionMode: mode})
			if err != nil {
				return
			}
			c.SetReadLimit(32 << 20)
			ctx, cancel := context.WithTimeout(context.Background(), 2*interopIdle)
			defer cancel()
			var pings sync.WaitGroup
			defer pings.Wait()
			defer c.CloseNow()
			for {
				tp, p, err := c.Read(ctx) // answers a close frame with its code
				if err != nil {
					if ce, ok := errors.AsType[coder.CloseError](err); ok {
						closes.report(r.URL.Path, int(ce.Code), ce.Reason)
					} else {
						closes.report(r.URL.Path, -1, err.Error())
					}
					return
				}
				switch cmd, arg := serverCommand(tp == coder.MessageText, p); cmd {
				case "close":
					code, reason := closeArgs(arg)
					// Close reads up to the client's close frame, and
					// does not say what it held.
					err := c.Close(coder.StatusCode(code), reason)
					closes.report(r.URL.Path, -1, fmt.Sprintf("coder's Close: %v", err))
					return
				case "ping":
					// Ping waits for the pong, which Read takes in.
					pings.Go(func() {
						if c.Ping(ctx) == nil {
							c.Write(ctx, coder.MessageText, []byte("pong "+arg))
						}
					})
				default:
					if err := c.Write(ctx, tp, p); err != nil {
						closes.report(r.URL.Path, -1, err.Error())
						return
					}
				}
			}
		}
	})
}

// startGWSServer: gws's Upgrader and ReadLoop (with compression, context
// takeover as far as the client allows, a window of 12 bits for its own
// messages and one of 9 for the client's, which it answers in
// client_max_window_bits: our Dial offers it, as RFC 7692 §7.1.2.2 requires
// of an answer with it).
func startGWSServer(t *testing.T, deflate, tlsOn bool) *echoServer {
	return startGoServer(t, tlsOn, func(closes *closeLog) http.HandlerFunc {
		up := gws.NewUpgrader(gwsEcho{closes}, &gws.ServerOption{
			ReadMaxPayloadSize:  32 << 20,
			WriteMaxPayloadSize: 32 << 20,
			PermessageDeflate: gws.PermessageDeflate{
				Enabled:               deflate,
				ServerContextTakeover: true,
				ClientContextTakeover: true,
				ServerMaxWindowBits:   12,
				ClientMaxWindowBits:   9,
			},
		})
		return func(w http.ResponseWriter, r *http.Request) {
			c, err := up.Upgrade(w, r)
			if err != nil {
				return
			}
			c.Session().Store("path", r.URL.Path)
			c.SetDeadline(time.Now().Add(2 * interopIdle))
			c.ReadLoop()
		}
	})
}

// gwsEcho is the echo server's gws event handler.
type gwsEcho struct{ closes *closeLog }

func (gwsEcho) OnOpen(*gws.Conn) {}

func (h gwsEcho) OnClose(c *gws.Conn, err error) {
	path, _ := c.Session().Load("path")
	if ce, ok := errors.AsType[*gws.CloseError](err); ok {
		h.closes.report(path.(string), int(ce.Code), string(ce.Reason))
	} else {
		h.closes.report(path.(string), -1, fmt.Sprint(err))
	}
}

func (gwsEcho) OnPing(c *gws.Conn, p []byte) { c.WritePong(p) }

func (gwsEcho) OnPong(c *gws.Conn, p []byte) { c.WriteString("pong " + string(p)) }

func (gwsEcho) OnMessage(c *gws.Conn, m *gws.Message) {
	defer m.Close()
	switch cmd, arg := serverCommand(m.Opcode == gws.OpcodeText, m.Bytes()); cmd {
	case "close":
		code, reason := closeArgs(arg)
		c.WriteClose(uint16(code), []byte(reason)) // and closes TCP at once
	case "ping":
		c.WritePing([]byte(arg))
	default:
		c.WriteMessage(m.Opcode, m.Bytes())
	}
}

// startNodeServer: Node's ws (node_server.mjs).
func startNodeServer(t *testing.T, deflate, tlsOn bool) *echoServer {
	const install = nodeInstall
	requireNodeWS(t)
	return startScriptServer(t, install, "node", "node_server.mjs", deflate, tlsOn)
}

// startPythonServer: Python's websockets (python_server.py).
func startPythonServer(t *testing.T, deflate, tlsOn bool) *echoServer {
	const install = "install Debian's python3 and python3-websockets (make deps)"
	if out, err := exec.Command(debianPython, "-c", "import websockets").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import websockets (%v: %s): %s", debianPython, err, bytes.TrimSpace(out), install)
	}
	return startScriptServer(t, install, debianPython, "python_server.py", deflate, tlsOn)
}

// startScriptServer runs a server script of testdata/peers with name (the
// interpreter) and waits for the port it prints. Its "closed <path>
// <code> <reason>" lines go to the closeLog. At the end of the test its
// standard input is closed, which ends it (or, after 5 s, it is killed).
func startScriptServer(t *testing.T, install, name, script string, deflate, tlsOn bool) *echoServer {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found (%v): %s", name, err, install)
	}
	s := &echoServer{closes: &closeLog{}}
	args, scheme := []string{script}, "ws"
	if deflate {
		args = append(args, "--deflate")
	}
	if tlsOn {
		var cert, key string
		cert, key, s.rootCAs = writeTestCertificate(t)
		args, scheme = append(args, "--tls", cert, key), "wss"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = filepath.Join("testdata", "peers")
	cmd.WaitDelay = 2 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err1 := cmd.StdinPipe()
	stdout, err2 := cmd.StdoutPipe()
	if err := errors.Join(err1, err2, cmd.Start()); err != nil {
		cancel()
		t.Fatalf("%s %s: %v", name, script, err)
	}

	port := make(chan string, 1)
	done := make(chan struct{})
	var other []string // lines that are not the port or a close, read after done
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if p, ok := strings.CutPrefix(line, "port "); ok {
				select {
				case port <- p:
				default:
				}
			} else if f := strings.SplitN(line, " ", 4); len(f) >= 3 && f[0] == "closed" {
				code, err := strconv.Atoi(f[2])
				if err != nil {
					code = -1
				}
				s.closes.report(f[1], code, strings.Join(f[3:], ""))
			} else {
				other = append(other, line)
			}
		}
	}()
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Errorf("%s %s did not end 5 s after its input did: killing it", name, script)
			cancel()
			<-done
		}
		err := cmd.Wait()
		cancel()
		if len(other) > 0 || err != nil || t.Failed() {
			t.Logf("%s %s: %v; its other output: %q; its stderr: %s", name, script, err, other, stderr.Bytes())
		}
	})
	select {
	case p := <-port:
		s.url = scheme + "://127.0.0.1:" + p
	case <-done:
		t.Fatalf("%s %s ended before listening (%s)", name, script, install)
	case <-time.After(2 * ioTimeout):
		t.Fatalf("%s %s printed no port in %v", name, script, 2*ioTimeout)
	}
	return s
}

// writeTestCertificate writes a self-signed certificate for 127.0.0.1
// and its key (PEM) into a temporary directory, and returns their paths
// and a pool that trusts the certificate.
func writeTestCertificate(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "wsmachine test server"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
