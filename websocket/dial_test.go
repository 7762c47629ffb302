package websocket_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsmachine/wsmachine/websocket"

	"github.com/wsmachine/wsmachine/websocket/internal/wstest"
)

// wsURL is the ws:// URL of a test server's path.
func wsURL(ts *testServer, path string) string { return "ws://" + ts.Addr + path }

// dial dials with a bounded context and fails the test on error.
func dial(t testing.TB, url string, opts *websocket.DialOptions) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		t.Fatalf("Dial %s: %v (response %v)", url, err, resp)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("Dial %s: response %s", url, resp.Status)
	}
	return c
}

// Our client against our server: every way of sending and receiving,
// both message types, small and large, with and without compression.
// Rows: C1, O1, O3, O4; "Roles": the client.
func TestDialEcho(t *testing.T) {
	t.Parallel()
	for _, mode := range []websocket.CompressionMode{websocket.CompressionOff, websocket.CompressionNoContextTakeover, websocket.CompressionContextTakeover} {
		h, results := echoHandler()
		ts := startServer(t, &websocket.Handler{Compression: mode, MaxMessageSize: 32 << 20, Handle: h})
		c := dial(t, wsURL(ts, "/echo?x=1"), &websocket.DialOptions{Compression: mode, MaxMessageSize: 32 << 20})
		if got := c.ResourceName.String(); got != "/echo?x=1" {
			t.Errorf("ResourceName %q", got)
		}
		for _, msg := range []string{"", "hello", strings.Repeat("κόσμε ", 1000), string(jsonLike(1<<20, 3))} {
			if err := c.SendText(msg); err != nil {
				t.Fatal(err)
			}
			got, err := c.ReceiveText(len(msg))
			if err != nil || got != msg {
				t.Fatalf("mode %d: echo of %d bytes: %d bytes, %v", mode, len(msg), len(got), err)
			}
		}
		big := randomBytes(17<<20, 4) // past the default limit, which MaxMessageSize raised
		if mode != websocket.CompressionOff {
			big = big[:1<<20] // compressing random megabytes under -race is slow
		}
		w, err := c.SendMessage(websocket.Binary)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			io.Copy(w, bytes.NewReader(big))
			w.Close()
		}()
		tp, r, err := c.ReceiveMessage()
		if err != nil || tp != websocket.Binary {
			t.Fatalf("receive: %v %v", tp, err)
		}
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, big) {
			t.Fatalf("mode %d: echo of %d bytes: %d bytes, %v", mode, len(big), len(got), err)
		}
		if err := c.Close(websocket.StatusGoingAway, "done"); err != nil {
			t.Errorf("Close: %v", err)
		}
		if code, _ := c.GetStatus(); code != websocket.StatusGoingAway {
			t.Errorf("client's GetStatus: %d, want the server's echo of 1001", code)
		}
		res := recv(t, results, "the server's handler to end")
		if res.Status.Code != websocket.StatusGoingAway || res.Status.Reason != "done" {
			t.Errorf("server's GetStatus: %+v", res.Status)
		}
	}
}

// The server closes: the client answers, GetStatus reports the server's
// code, and the server (not the client) closes TCP first.
// Rows: O6; "Roles": the client closes TCP after the server.
func TestDialServerCloses(t *testing.T) {
	t.Parallel()
	ts := startHandler(t, func(c *websocket.Conn) {
		c.SendText("bye")
		c.Close(4000, "server leaves")
	})
	c := dial(t, wsURL(ts, "/"), nil)
	if msg, err := c.ReceiveText(10); err != nil || msg != "bye" {
		t.Fatalf("got %q, %v", msg, err)
	}
	if _, _, err := c.ReceiveMessage(); !errors.Is(err, websocket.ErrConnClosed) {
		t.Errorf("receive after the server's close: %v", err)
	}
	if code, reason := c.GetStatus(); code != 4000 || reason != "server leaves" {
		t.Errorf("GetStatus %d %q", code, reason)
	}
	if err := c.SendText("late"); !errors.Is(err, websocket.ErrConnClosed) {
		t.Errorf("send after close: %v", err)
	}
}

// A server that answers the handshake wrongly fails Dial with a
// HandshakeError carrying the response.
// Rows: C2; "Opening handshake, client".
func TestDialHandshakeChecks(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		respond func(w http.ResponseWriter, r *http.Request)
		want    string
	}{
		{"404", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no such socket", http.StatusNotFound) }, "404"},
		{"wrong accept", rawResponse("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n"), "Sec-WebSocket-Accept"},
		{"no upgrade", rawResponseKey("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n"), "Upgrade"},
		{"no connection", rawResponseKey("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: %s\r\n\r\n"), "Connection"},
		{"subprotocol not offered", rawResponseKey("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\nSec-WebSocket-Protocol: other\r\n\r\n"), "subprotocol"},
		{"extension not offered", rawResponseKey("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"), "extensions"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(tt.respond))
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
			defer cancel()
			c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/", &websocket.DialOptions{Subprotocols: []string{"chat"}})
			var he *websocket.HandshakeError
			if c != nil || !errors.As(err, &he) || resp == nil || he.Response != resp || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Dial: %v, %v, response %v; want a HandshakeError about %s", c, err, resp, tt.want)
			}
			if tt.name == "404" {
				body, _ := io.ReadAll(resp.Body)
				if !strings.Contains(string(body), "no such socket") {
					t.Errorf("body %q", body)
				}
			}
		})
	}
}

// rawResponse answers with the given bytes on the hijacked connection.
func rawResponse(s string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		nc, brw, _ := w.(http.Hijacker).Hijack()
		defer nc.Close()
		brw.WriteString(s)
		brw.Flush()
	}
}

// rawResponseKey is rawResponse with the right accept key put in.
func rawResponseKey(format string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		rawResponse(strings.Replace(format, "%s", wstest.AcceptKey(r.Header.Get("Sec-WebSocket-Key")), 1))(w, r)
	}
}

// The context bounds the handshake: a server that never answers does not
// hold Dial past the deadline, and a cancelled context ends it at once.
// Rows: C2; "Opening handshake, client".
func TestDialContext(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // accepts, never answers
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			defer nc.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err = websocket.Dial(ctx, "ws://"+ln.Addr().String()+"/", nil)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 3*time.Second {
		t.Errorf("Dial to a silent server: %v after %v", err, time.Since(start))
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel2)
	_, _, err = websocket.Dial(ctx2, "ws://"+ln.Addr().String()+"/", nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Dial with a cancelled context: %v", err)
	}
}

// Options reach the server: subprotocols, Origin, extra headers; NetDial
// replaces the dialer; a CONNECT proxy tunnels the connection.
// Rows: C1; "Opening handshake, client".
func TestDialOptions(t *testing.T) {
	t.Parallel()
	seen := make(chan *websocket.Conn, 1)
	var auth atomic.Value
	ts := startServer(t, &websocket.Handler{
		AccessOk: func(c *websocket.Conn, protocols []string) bool {
			c.Protocol = protocols[len(protocols)-1]
			return true
		},
		Handle: func(c *websocket.Conn) { seen <- c },
	}, withMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			auth.Store(r.Header.Get("Authorization"))
			next.ServeHTTP(w, r)
		})
	}))
	dialed := ""
	proxied := make(chan string, 1)
	proxy := startConnectProxy(t, proxied)
	c := dial(t, wsURL(ts, "/"), &websocket.DialOptions{
		Subprotocols: []string{"a", "b"},
		Origin:       "http://" + ts.Addr,
		Header:       http.Header{"Authorization": {"Bearer x"}},
		NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dialed = addr
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
		Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: proxy}),
	})
	defer c.Close(websocket.StatusOK, "")
	sc := recv(t, seen, "the handler")
	if c.Protocol != "b" || sc.Protocol != "b" {
		t.Errorf("Protocol: client %q, server %q", c.Protocol, sc.Protocol)
	}
	if sc.Origin == nil || sc.Origin.Host != ts.Addr {
		t.Errorf("server saw Origin %v", sc.Origin)
	}
	if got := auth.Load(); got != "Bearer x" {
		t.Errorf("server saw Authorization %q", got)
	}
	if dialed != proxy {
		t.Errorf("NetDial dialed %q, want the proxy %q", dialed, proxy)
	}
	if got := recv(t, proxied, "the proxy's CONNECT"); got != ts.Addr {
		t.Errorf("proxy asked for %q, want %q", got, ts.Addr)
	}
}

// startConnectProxy runs a minimal HTTP CONNECT proxy on loopback and
// reports each CONNECT target.
func startConnectProxy(t *testing.T, targets chan<- string) string {
	return startRedirectingProxy(t, "", targets)
}

// rawServer accepts one connection on loopback, answers its handshake with
// 101 and hands the connection to serve.
func rawServer(t *testing.T, serve func(nc net.Conn, br *bufio.Reader)) string {
	return rawServerExtensions(t, "", serve)
}

// rawServerExtensions is rawServer answering with extensions as
// Sec-WebSocket-Extensions, if not "".
func rawServerExtensions(t *testing.T, extensions string, serve func(nc net.Conn, br *bufio.Reader)) string {
	return rawServerRequest(t, extensions, func(nc net.Conn, br *bufio.Reader, _ *http.Request) { serve(nc, br) })
}

// rawServerRequest is rawServerExtensions handing serve the client's
// request too.
func rawServerRequest(t *testing.T, extensions string, serve func(nc net.Conn, br *bufio.Reader, req *http.Request)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		br := bufio.NewReader(nc)
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if extensions != "" {
			extensions = "Sec-WebSocket-Extensions: " + extensions + "\r\n"
		}
		fmt.Fprintf(nc, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n",
			wstest.AcceptKey(req.Header.Get("Sec-WebSocket-Key")), extensions)
		serve(nc, br, req)
	}()
	return "ws://" + ln.Addr().String() + "/"
}

// readClientFrame reads one frame from a client: it must be masked; the
// payload is returned unmasked, with the key.
func readClientFrame(br *bufio.Reader) (op byte, payload []byte, key [4]byte, err error) {
	var hdr [2]byte
	if _, err = io.ReadFull(br, hdr[:]); err != nil {
		return
	}
	if hdr[1]&0x80 == 0 {
		return 0, nil, key, errors.New("unmasked client frame")
	}
	n := uint64(hdr[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		io.ReadFull(br, b[:])
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		io.ReadFull(br, b[:])
		n = binary.BigEndian.Uint64(b[:])
	}
	io.ReadFull(br, key[:])
	payload = make([]byte, n)
	if _, err = io.ReadFull(br, payload); err != nil {
		return
	}
	for i := range payload {
		payload[i] ^= key[i%4]
	}
	return hdr[0] & 0x0F, payload, key, nil
}

// Every frame the client sends is masked, each with a key of its own
// (RFC 6455 §5.3), control frames too.
// Rows: O3, O5; "Roles": a client masks its frames.
func TestDialMasksFrames(t *testing.T) {
	t.Parallel()
	type got struct {
		op      byte
		payload []byte
		key     [4]byte
	}
	frames := make(chan got, 16)
	url := rawServer(t, func(nc net.Conn, br *bufio.Reader) {
		for range 5 {
			op, p, key, err := readClientFrame(br)
			if err != nil {
				t.Error(err)
				return
			}
			frames <- got{op, p, key}
		}
		nc.Write([]byte{0x88, 0x02, 0x03, 0xe8}) // close 1000
		readClientFrame(br)                      // its answer
	})
	c := dial(t, url, nil)
	big := randomBytes(70000, 5)
	c.SendText("one")
	c.SendText("one")
	c.SendBinary(big)
	w, _ := c.SendMessage(websocket.Text)
	w.Write([]byte("streamed"))
	w.Close()
	c.Close(websocket.StatusOK, "")
	keys := map[[4]byte]bool{}
	for i, want := range []got{{1, []byte("one"), [4]byte{}}, {1, []byte("one"), [4]byte{}}, {2, big, [4]byte{}}, {1, []byte("streamed"), [4]byte{}}, {8, []byte{0x03, 0xe8}, [4]byte{}}} {
		f := recv(t, frames, "a frame")
		if f.op != want.op || !bytes.Equal(f.payload, want.payload) {
			t.Errorf("frame %d: op %d, %d bytes; want op %d, %d bytes", i, f.op, len(f.payload), want.op, len(want.payload))
		}
		keys[f.key] = true
	}
	if len(keys) != 5 {
		t.Errorf("5 frames used %d different keys", len(keys))
	}
}

// A masked frame from the server fails the connection with 1002.
// Rows: O7; "Frame checks": at a client, masked.
func TestDialRefusesMaskedServerFrames(t *testing.T) {
	t.Parallel()
	answer := make(chan []byte, 1)
	url := rawServer(t, func(nc net.Conn, br *bufio.Reader) {
		nc.Write([]byte{0x81, 0x81, 1, 2, 3, 4, 'x' ^ 1}) // masked "x"
		_, p, _, _ := readClientFrame(br)
		answer <- p
	})
	c := dial(t, url, nil)
	if _, _, err := c.ReceiveMessage(); !errors.Is(err, websocket.ErrConnClosed) || !strings.Contains(err.Error(), "masked server frame") {
		t.Errorf("receive: %v", err)
	}
	if p := recv(t, answer, "the client's close frame"); len(p) < 2 || binary.BigEndian.Uint16(p) != 1002 {
		t.Errorf("the client closed with %x, want 1002", p)
	}
	if code, _ := c.GetStatus(); code != websocket.StatusDropped {
		t.Errorf("GetStatus %d", code)
	}
}

// Close codes from the server: 1010, a client's complaint, is still
// accepted and echoed (RFC 6455 §7.4.1 says who sends it, not that a
// client fails a server that does); codes invalid on the wire fail the
// connection with 1002.
// Rows: O6, O7.
func TestDialServerCloseCodes(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		code       uint16
		wantAnswer uint16 // the code of the client's close frame
		wantStatus websocket.Status
	}{
		{1010, 1010, 1010},
		{1000, 1000, 1000},
		{4000, 4000, 4000},
		{1004, 1002, websocket.StatusDropped},
		{1005, 1002, websocket.StatusDropped},
		{1006, 1002, websocket.StatusDropped},
		{1015, 1002, websocket.StatusDropped},
		{999, 1002, websocket.StatusDropped},
		{1016, 1002, websocket.StatusDropped},
		{2999, 1002, websocket.StatusDropped},
		{5000, 1002, websocket.StatusDropped},
	} {
		t.Run(strconv.Itoa(int(tt.code)), func(t *testing.T) {
			t.Parallel()
			answer := make(chan []byte, 1)
			url := rawServer(t, func(nc net.Conn, br *bufio.Reader) {
				nc.Write(append([]byte{0x88, 0x05, byte(tt.code >> 8), byte(tt.code)}, "ext"...))
				_, p, _, _ := readClientFrame(br)
				answer <- p
			})
			c := dial(t, url, nil)
			if _, _, err := c.ReceiveMessage(); !errors.Is(err, websocket.ErrConnClosed) {
				t.Errorf("receive: %v", err)
			}
			if p := recv(t, answer, "the client's close frame"); len(p) < 2 || binary.BigEndian.Uint16(p) != tt.wantAnswer {
				t.Errorf("the client answered %x, want code %d", p, tt.wantAnswer)
			}
			if code, _ := c.GetStatus(); code != tt.wantStatus {
				t.Errorf("GetStatus %d, want %d", code, tt.wantStatus)
			}
		})
	}
}

// wss: TLS with a test certificate; a client that does not trust it
// fails in the TLS handshake.
// Rows: C1.
func TestDialTLS(t *testing.T) {
	t.Parallel()
	h, _ := echoHandler()
	srv := httptest.NewUnstartedServer(&websocket.Handler{Handle: h})
	srv.EnableHTTP2 = false
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusting client's handshake error below
	srv.StartTLS()
	t.Cleanup(srv.Close)
	url := "wss" + strings.TrimPrefix(srv.URL, "https") + "/"
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	c := dial(t, url, &websocket.DialOptions{TLSConfig: &tls.Config{RootCAs: pool}})
	for _, msg := range []string{"over TLS", strings.Repeat("x", 100<<10)} {
		c.SendText(msg)
		if got, err := c.ReceiveText(len(msg)); err != nil || got != msg {
			t.Fatalf("echo over TLS: %d bytes, %v", len(got), err)
		}
	}
	if err := c.Close(websocket.StatusOK, ""); err != nil {
		t.Errorf("Close: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if _, _, err := websocket.Dial(ctx, url, nil); err == nil || !strings.Contains(err.Error(), "TLS") {
		t.Errorf("Dial without trusting the certificate: %v", err)
	}
}

// The server's response header is read up to 64 KiB, not without bound.
// Rows: C2; "Opening handshake, client".
func TestDialBoundsResponseHeader(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(rawResponse("HTTP/1.1 101 Switching Protocols\r\nX-Endless: " + strings.Repeat("a", 1<<20) + "\r\n\r\n")))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/", nil)
	if c != nil || err == nil || !strings.Contains(err.Error(), "reading the handshake response") {
		t.Errorf("Dial: %v, %v; want the response refused", c, err)
	}
}

// Without DialOptions.Proxy, the proxy comes from HTTP_PROXY (and the
// other variables http.ProxyFromEnvironment reads). The environment is
// read once per process, and never for loopback hosts, so the test runs
// itself again in a child process with HTTP_PROXY set, dialing a name
// that the proxy sends to the test server.
// Rows: C1.
func TestDialProxyFromEnvironment(t *testing.T) {
	if os.Getenv("WSMACHINE_PROXY_CHILD") == "" {
		t.Parallel()
		cmd := exec.Command(os.Args[0], "-test.run=^TestDialProxyFromEnvironment$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "WSMACHINE_PROXY_CHILD=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestDialProxyFromEnvironment") {
			t.Fatalf("child: %v\n%s", err, out)
		}
		return
	}
	h, _ := echoHandler()
	ts := startServer(t, &websocket.Handler{Handle: h})
	targets := make(chan string, 1)
	proxy := startRedirectingProxy(t, ts.Addr, targets)
	os.Setenv("HTTP_PROXY", "http://"+proxy)
	os.Setenv("NO_PROXY", "")
	c := dial(t, "ws://ws.example.test:8080/", nil)
	if got := recv(t, targets, "the CONNECT"); got != "ws.example.test:8080" {
		t.Errorf("the proxy was asked for %q", got)
	}
	c.SendText("through the proxy")
	if got, err := c.ReceiveText(100); err != nil || got != "through the proxy" {
		t.Errorf("echo: %q, %v", got, err)
	}
	c.Close(websocket.StatusOK, "")
}

// startRedirectingProxy is a CONNECT proxy that tunnels every request to
// addr, whatever it asks for (to what it asks for if addr is ""), and
// reports what it asked for.
func startRedirectingProxy(t *testing.T, addr string, targets chan<- string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		targets <- r.Host
		to := addr
		if to == "" {
			to = r.Host
		}
		up, err := net.Dial("tcp", to)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusOK)
		nc, brw, _ := w.(http.Hijacker).Hijack()
		brw.Flush()
		go func() { io.Copy(up, brw); up.Close() }()
		io.Copy(nc, up)
		nc.Close()
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}
