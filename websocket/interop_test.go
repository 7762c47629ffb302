package websocket_test

// Interoperability with an independent client implementation:
// github.com/gorilla/websocket v1.5.3 (test-only dependency).

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	gws "github.com/gorilla/websocket"

	"github.com/wsmachine/wsmachine/websocket"
)

// dialGorilla connects a gorilla client to ts (loopback) and closes it at
// the end of the test.
func dialGorilla(t *testing.T, ts *testServer, path string, d *gws.Dialer, hdr http.Header) *gws.Conn {
	t.Helper()
	if d == nil {
		d = &gws.Dialer{}
	}
	d.HandshakeTimeout = ioTimeout
	c, resp, err := d.Dial("ws://"+ts.Addr+path, hdr)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("gorilla dial: %v (status %d)", err, status)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// streamEcho echoes with SendMessage writers (io.Copy from the reader), so
// both the streaming reader and writer are used.
func streamEcho() (func(*websocket.Conn), <-chan echoResult) {
	ch := make(chan echoResult, 4)
	return func(c *websocket.Conn) {
		var res echoResult
		for {
			tp, r, err := c.ReceiveMessage()
			if err != nil {
				res.Err = err
				break
			}
			w, err := c.SendMessage(tp)
			if err != nil {
				res.Err = err
				break
			}
			_, err = io.Copy(w, r)
			if cerr := w.Close(); err == nil {
				err = cerr
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

// Rows: O1, O3, O4.
func TestInteropGorillaEcho(t *testing.T) {
	mib := make([]byte, 1<<20)
	for i := range mib {
		mib[i] = byte(i * 7)
	}
	textMiB := strings.Repeat("äöü€😀 abc ", (1<<20)/24)
	msgs := []struct {
		name string
		tp   int
		data []byte
	}{
		{"EmptyText", gws.TextMessage, nil},
		{"EmptyBinary", gws.BinaryMessage, nil},
		{"ShortText", gws.TextMessage, []byte("hello, wsmachine")},
		{"UnicodeText", gws.TextMessage, []byte("κόσμε 😀 ∑")},
		{"ShortBinary", gws.BinaryMessage, []byte{0, 1, 2, 0xff, 0xfe}},
		{"Len125", gws.BinaryMessage, mib[:125]},
		{"Len126", gws.BinaryMessage, mib[:126]},
		{"Len65535", gws.BinaryMessage, mib[:65535]},
		{"Len65536", gws.BinaryMessage, mib[:65536]},
		{"OneMiBBinary", gws.BinaryMessage, mib},
		{"OneMiBText", gws.TextMessage, []byte(textMiB)},
	}
	for _, echoName := range []string{"SendTextBinary", "SendMessageWriter"} {
		t.Run(echoName, func(t *testing.T) {
			t.Parallel()
			var h func(*websocket.Conn)
			var results <-chan echoResult
			if echoName == "SendTextBinary" {
				h, results = echoHandler()
			} else {
				h, results = streamEcho()
			}
			ts := startHandler(t, h)
			c := dialGorilla(t, ts, "/echo", nil, nil)
			for _, m := range msgs {
				c.SetWriteDeadline(time.Now().Add(ioTimeout))
				if err := c.WriteMessage(m.tp, m.data); err != nil {
					t.Fatalf("%s: write: %v", m.name, err)
				}
				c.SetReadDeadline(time.Now().Add(ioTimeout))
				tp, p, err := c.ReadMessage()
				if err != nil {
					t.Fatalf("%s: read: %v", m.name, err)
				}
				if tp != m.tp || !bytes.Equal(p, m.data) {
					t.Fatalf("%s: echo type %d %s, want type %d %s", m.name, tp, trunc(p), m.tp, trunc(m.data))
				}
			}
			closeGorilla(t, c, gws.CloseNormalClosure, "done")
			res := recv(t, results, "handler to end")
			if res.Msgs != len(msgs) {
				t.Errorf("handler echoed %d messages, want %d", res.Msgs, len(msgs))
			}
			if res.Status != (statusResult{websocket.StatusOK, "done"}) {
				t.Errorf("GetStatus = %v, want {1000 done}", res.Status)
			}
		})
	}
}

// closeGorilla sends a close frame from the gorilla client and expects the
// server's echo of the code, then the end of the connection.
func closeGorilla(t *testing.T, c *gws.Conn, code int, reason string) {
	t.Helper()
	if err := c.WriteControl(gws.CloseMessage, gws.FormatCloseMessage(code, reason), time.Now().Add(ioTimeout)); err != nil {
		t.Fatalf("writing close: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(ioTimeout))
	_, _, err := c.ReadMessage()
	var ce *gws.CloseError
	if !errors.As(err, &ce) {
		t.Fatalf("after sending close %d: got %v, want the server's close frame", code, err)
	}
	want := code
	if code == gws.CloseMandatoryExtension {
		want = gws.CloseNormalClosure
	}
	if ce.Code != want {
		t.Errorf("server answered close %d with %d, want %d", code, ce.Code, want)
	}
	c.Close() // as a client does once the close handshake is done
}

// Messages written by gorilla's NextWriter with a small write buffer arrive
// as many fragments; the server reassembles them.
// Rows: O1.
func TestInteropGorillaFragmentedWrites(t *testing.T) {
	h, results := echoHandler()
	ts := startHandler(t, h)
	d := &gws.Dialer{WriteBufferSize: 512, ReadBufferSize: 512}
	c := dialGorilla(t, ts, "/", d, nil)
	var want bytes.Buffer
	for _, tp := range []int{gws.TextMessage, gws.BinaryMessage} {
		want.Reset()
		w, err := c.NextWriter(tp)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 300 {
			chunk := []byte(strings.Repeat(string(rune('α'+i%20)), i%50+1))
			want.Write(chunk)
			if _, err := w.Write(chunk); err != nil {
				t.Fatalf("write: %v", err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(ioTimeout))
		gotTp, p, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if gotTp != tp || !bytes.Equal(p, want.Bytes()) {
			t.Fatalf("echo type %d %s, want type %d %s", gotTp, trunc(p), tp, trunc(want.Bytes()))
		}
	}
	closeGorilla(t, c, gws.CloseGoingAway, "")
	if res := recv(t, results, "handler"); res.Msgs != 2 {
		t.Errorf("handler echoed %d messages, want 2", res.Msgs)
	}
}

// Gorilla's pings are answered with pongs carrying the same data, also
// while the handler only sleeps.
// Rows: O5.
func TestInteropGorillaPingPong(t *testing.T) {
	for _, mode := range []string{"Echoing", "Sleeping"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			var h func(*websocket.Conn)
			release := make(chan struct{})
			if mode == "Echoing" {
				h, _ = echoHandler()
			} else {
				h = func(c *websocket.Conn) {
					<-release
					c.GetStatus()
				}
			}
			ts := startHandler(t, h)
			c := dialGorilla(t, ts, "/", nil, nil)
			pongs := make(chan string, 10)
			c.SetPongHandler(func(s string) error { pongs <- s; return nil })
			// Gorilla handles control frames inside its read calls: read in
			// the background until the connection ends.
			readDone := make(chan error, 1)
			go func() {
				for {
					c.SetReadDeadline(time.Now().Add(ioTimeout))
					if _, _, err := c.ReadMessage(); err != nil {
						readDone <- err
						return
					}
				}
			}()
			for _, p := range []string{"", "ping", strings.Repeat("x", 125)} {
				if err := c.WriteControl(gws.PingMessage, []byte(p), time.Now().Add(ioTimeout)); err != nil {
					t.Fatalf("ping: %v", err)
				}
				if got := recv(t, pongs, "pong"); got != p {
					t.Errorf("pong %q, want %q", got, p)
				}
			}
			if err := c.WriteControl(gws.PongMessage, []byte("unsolicited"), time.Now().Add(ioTimeout)); err != nil {
				t.Fatal(err)
			}
			if err := c.WriteControl(gws.CloseMessage, gws.FormatCloseMessage(4001, "bye"), time.Now().Add(ioTimeout)); err != nil {
				t.Fatal(err)
			}
			err := recv(t, readDone, "reader to end")
			var ce *gws.CloseError
			if !errors.As(err, &ce) || ce.Code != 4001 {
				t.Errorf("reader ended with %v, want close 4001", err)
			}
			close(release)
		})
	}
}

// The server's close codes reach gorilla, gorilla's reply completes the
// handshake, Close returns nil and GetStatus reports the reply.
// Rows: O10, K4.
func TestInteropGorillaServerClose(t *testing.T) {
	tests := []struct {
		code   websocket.Status
		reason string
	}{
		{websocket.StatusOK, ""},
		{websocket.StatusGoingAway, "server restart"},
		{websocket.StatusPolicyViolation, "policy"},
		{websocket.StatusTooLarge, ""},
		{websocket.StatusInternalServerError, "oops"},
		{4000, "app-specific"},
	}
	for _, tc := range tests {
		t.Run(statusName(int(tc.code)), func(t *testing.T) {
			t.Parallel()
			type result struct {
				err    error
				status statusResult
			}
			done := make(chan result, 1)
			ts := startHandler(t, func(c *websocket.Conn) {
				c.SendText("before close")
				err := c.Close(tc.code, tc.reason)
				code, reason := c.GetStatus()
				done <- result{err, statusResult{code, reason}}
			})
			c := dialGorilla(t, ts, "/", nil, nil)
			c.SetReadDeadline(time.Now().Add(ioTimeout))
			tp, p, err := c.ReadMessage()
			if err != nil || tp != gws.TextMessage || string(p) != "before close" {
				t.Fatalf("first message %d %q %v", tp, p, err)
			}
			_, _, err = c.ReadMessage() // gorilla's default close handler replies with the same code
			var ce *gws.CloseError
			if !errors.As(err, &ce) || ce.Code != int(tc.code) || ce.Text != tc.reason {
				t.Fatalf("got %v, want close %d %q", err, tc.code, tc.reason)
			}
			c.Close()
			res := recv(t, done, "Close to return")
			if res.err != nil {
				t.Errorf("Close returned %v, want nil", res.err)
			}
			if res.status != (statusResult{tc.code, ""}) {
				t.Errorf("GetStatus = %v, want {%d \"\"}", res.status, tc.code)
			}
		})
	}
}

// Close codes sent by gorilla are echoed and recorded.
// Rows: O6.
func TestInteropGorillaClientClose(t *testing.T) {
	tests := []struct {
		code       int
		reason     string
		wantStatus statusResult
	}{
		{gws.CloseNormalClosure, "bye", statusResult{1000, "bye"}},
		{gws.CloseGoingAway, "", statusResult{1001, ""}},
		{gws.CloseMandatoryExtension, "ext", statusResult{1010, "ext"}},
		{gws.CloseTryAgainLater, "", statusResult{1013, ""}},
		{3000, "three thousand", statusResult{3000, "three thousand"}},
		{4999, "", statusResult{4999, ""}},
	}
	for _, tc := range tests {
		t.Run(statusName(tc.code), func(t *testing.T) {
			t.Parallel()
			h, results := echoHandler()
			ts := startHandler(t, h)
			c := dialGorilla(t, ts, "/", nil, nil)
			closeGorilla(t, c, tc.code, tc.reason)
			if res := recv(t, results, "handler"); res.Status != tc.wantStatus {
				t.Errorf("GetStatus = %v, want %v", res.Status, tc.wantStatus)
			}
		})
	}
	t.Run("NoStatus", func(t *testing.T) {
		t.Parallel()
		h, results := echoHandler()
		ts := startHandler(t, h)
		c := dialGorilla(t, ts, "/", nil, nil)
		// FormatCloseMessage(1005) gives an empty close frame.
		if err := c.WriteControl(gws.CloseMessage, gws.FormatCloseMessage(gws.CloseNoStatusReceived, ""), time.Now().Add(ioTimeout)); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(ioTimeout))
		_, _, err := c.ReadMessage()
		var ce *gws.CloseError
		if !errors.As(err, &ce) || ce.Code != gws.CloseNoStatusReceived {
			t.Errorf("got %v, want an empty close frame (1005)", err)
		}
		c.Close()
		if res := recv(t, results, "handler"); res.Status != (statusResult{websocket.StatusNotSent, ""}) {
			t.Errorf("GetStatus = %v, want {1005 \"\"}", res.Status)
		}
	})
}

func statusName(code int) string { return fmt.Sprintf("Code%d", code) }

// Subprotocol negotiation and Origin checks work with gorilla's dialer.
// Rows: C1, C2.
func TestInteropGorillaHandshake(t *testing.T) {
	t.Run("Subprotocol", func(t *testing.T) {
		got := make(chan []string, 1)
		h, _ := echoHandler()
		ts := startServer(t, &websocket.Handler{
			ServerName: "wsmachine",
			AccessOk: func(c *websocket.Conn, protocols []string) bool {
				got <- protocols
				c.Protocol = protocols[len(protocols)-1]
				return true
			},
			Handle: h,
		})
		d := &gws.Dialer{Subprotocols: []string{"v1.chat", "v2.chat"}}
		d.HandshakeTimeout = ioTimeout
		c, resp, err := d.Dial("ws://"+ts.Addr+"/chat?room=1", nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer c.Close()
		if p := recv(t, got, "AccessOk"); strings.Join(p, ",") != "v1.chat,v2.chat" {
			t.Errorf("AccessOk got %q", p)
		}
		if c.Subprotocol() != "v2.chat" {
			t.Errorf("negotiated %q, want v2.chat", c.Subprotocol())
		}
		if resp.Header.Get("Server") != "wsmachine" {
			t.Errorf("Server header %q", resp.Header.Get("Server"))
		}
		closeGorilla(t, c, gws.CloseNormalClosure, "")
	})
	t.Run("CrossOriginRefused", func(t *testing.T) {
		h, _ := echoHandler()
		ts := startServer(t, &websocket.Handler{Handle: h})
		d := &gws.Dialer{HandshakeTimeout: ioTimeout}
		_, resp, err := d.Dial("ws://"+ts.Addr+"/", http.Header{"Origin": {"http://evil.example"}})
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			status := 0
			if resp != nil {
				status = resp.StatusCode
			}
			t.Fatalf("cross-origin dial: err %v status %d, want 403", err, status)
		}
		c := dialGorilla(t, ts, "/", nil, http.Header{"Origin": {"http://" + ts.Addr}})
		closeGorilla(t, c, gws.CloseNormalClosure, "")
	})
}

// Many gorilla clients at once, each echoing messages concurrently.
// Rows: O1, O3.
func TestInteropGorillaManyClients(t *testing.T) {
	const clients, msgs = 20, 20
	h, results := streamEcho()
	ts := startHandler(t, h)
	errs := make(chan error, clients)
	for i := range clients {
		go func() {
			errs <- func() error {
				d := &gws.Dialer{HandshakeTimeout: ioTimeout}
				c, _, err := d.Dial("ws://"+ts.Addr+"/", nil)
				if err != nil {
					return err
				}
				defer c.Close()
				for j := range msgs {
					want := fmt.Sprintf("client %d message %d %s", i, j, strings.Repeat("x", j*100))
					c.SetWriteDeadline(time.Now().Add(ioTimeout))
					if err := c.WriteMessage(gws.TextMessage, []byte(want)); err != nil {
						return err
					}
					c.SetReadDeadline(time.Now().Add(ioTimeout))
					_, p, err := c.ReadMessage()
					if err != nil {
						return err
					}
					if string(p) != want {
						return fmt.Errorf("client %d got %.40q, want %.40q", i, p, want)
					}
				}
				c.WriteControl(gws.CloseMessage, gws.FormatCloseMessage(1000, ""), time.Now().Add(ioTimeout))
				c.SetReadDeadline(time.Now().Add(ioTimeout))
				_, _, err = c.ReadMessage()
				if !gws.IsCloseError(err, 1000) {
					return fmt.Errorf("client %d: want close 1000, got %v", i, err)
				}
				return nil
			}()
		}()
	}
	for range clients {
		if err := recv(t, errs, "client"); err != nil {
			t.Error(err)
		}
	}
	for range clients {
		if res := recv(t, results, "handler"); res.Msgs != msgs || res.Status.Code != websocket.StatusOK {
			t.Errorf("handler: %d messages, status %v", res.Msgs, res.Status)
		}
	}
}

// A gorilla client that offers permessage-deflate gets no extension and
// sends uncompressed frames that the server accepts.
// Rows: C1; "Compressed messages": CompressionOff.
func TestInteropGorillaCompressionOfferedNotNegotiated(t *testing.T) {
	h, _ := echoHandler()
	ts := startHandler(t, h)
	d := &gws.Dialer{EnableCompression: true, HandshakeTimeout: ioTimeout}
	c, resp, err := d.Dial("ws://"+ts.Addr+"/", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	if v := resp.Header.Get("Sec-WebSocket-Extensions"); v != "" {
		t.Errorf("server negotiated %q", v)
	}
	msg := strings.Repeat("compressible ", 1000)
	c.SetWriteDeadline(time.Now().Add(ioTimeout))
	if err := c.WriteMessage(gws.TextMessage, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(ioTimeout))
	if _, p, err := c.ReadMessage(); err != nil || string(p) != msg {
		t.Fatalf("echo: %v (%d bytes)", err, len(p))
	}
	closeGorilla(t, c, gws.CloseNormalClosure, "")
}
