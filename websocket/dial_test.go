package websocket_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsmachine/wsmachine/websocket"
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
		big := randomBytes(17<<20, 4)
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
			t.Fatalf("mode %d: 17 MiB echo: %d bytes, %v", mode, len(got), err)
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
		rawResponse(strings.Replace(format, "%s", acceptKey(r.Header.Get("Sec-WebSocket-Key")), 1))(w, r)
	}
}

// The context bounds the handshake: a server that never answers does not
// hold Dial past the deadline, and a cancelled context ends it at once.
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
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		targets <- r.Host
		up, err := net.Dial("tcp", r.Host)
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
