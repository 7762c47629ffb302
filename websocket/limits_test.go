package websocket_test

import (
	"bytes"
	"errors"
	"io"
	"log"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsmachine/wsmachine/websocket"

	"github.com/wsmachine/wsmachine/websocket/internal/wstest"
)

// The limits that bound what a client can make the server hold (message
// size, write progress) and what a failing handler leaves behind. Each
// through real TCP.

// Handler.MaxMessageSize: a data message whose frames declare more than the
// limit, added up, is refused with 1009 at the header of the frame that
// goes past it, before any of its payload arrives; one of exactly the limit
// is delivered.
// Rows: O7, O1; "Frame checks": message too large.
func TestMaxMessageSize(t *testing.T) {
	const limit = 1000
	header := func(f wstest.Frame) []byte { return f.Bytes()[:len(f.Bytes())-len(f.Payload)] }
	tests := []struct {
		name    string
		limit   int64
		stream  []byte
		deliver []byte // nil: refused with 1009
	}{
		{"ExactlyTheLimit", limit, wstest.Frame{Fin: true, Op: opBinary, Payload: make([]byte, limit)}.Bytes(), make([]byte, limit)},
		{"OneOverHeaderOnly", limit, header(wstest.Frame{Fin: true, Op: opBinary, Payload: make([]byte, limit+1)}), nil},
		{"Declared2^63-1", limit, header(wstest.Frame{Fin: true, Op: opBinary, DeclaredLen: u64(1<<63 - 1)}), nil},
		{"FragmentsAddUp", limit, wstest.Concat(wstest.Frame{Op: opText, Payload: make([]byte, 600)}.Bytes(),
			header(wstest.Frame{Fin: true, Op: opCont, Payload: make([]byte, 401)})), nil},
		{"FragmentsExactly", limit, wstest.Concat(wstest.Frame{Op: opBinary, Payload: make([]byte, 600)}.Bytes(),
			wstest.Frame{Fin: true, Op: opCont, Payload: make([]byte, 400)}.Bytes()), make([]byte, limit)},
		{"DefaultIs16MiB", 0, header(wstest.Frame{Fin: true, Op: opBinary, DeclaredLen: u64(16<<20 + 1)}), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := make(chan []byte, 1)
			errs := make(chan error, 1)
			ts := startServer(t, &websocket.Handler{MaxMessageSize: tt.limit, Handle: func(c *websocket.Conn) {
				_, r, err := c.ReceiveMessage()
				if err == nil {
					var data []byte
					data, err = io.ReadAll(r)
					got <- data
				}
				errs <- err
			}})
			c := dialWS(t, ts)
			c.Write(tt.stream)
			if tt.deliver == nil {
				c.ExpectClose(1009)
				if err := recv(t, errs, "the receive to fail"); !errors.Is(err, websocket.ErrConnClosed) {
					t.Errorf("receive of a message over the limit returned %v, want an error wrapping ErrConnClosed", err)
				}
				return
			}
			if data := recv(t, got, "the message"); !bytes.Equal(data, tt.deliver) {
				t.Errorf("delivered %d bytes, want %d", len(data), len(tt.deliver))
			}
			c.SendClose(1000, "")
			c.ExpectClose(1000)
		})
	}
}

// Handler.WriteTimeout: a client that stops reading fails the connection
// once a write has made no progress for that long; every sender, blocked
// or not, returns an error wrapping ErrConnClosed, and GetStatus reports
// StatusDropped. Meanwhile memory stays bounded: the library sends from the
// caller's buffer and queues nothing. (Not parallel, so that the process's
// allocation count is this test's.)
// Rows: O9, T3.
func TestWriteTimeoutReleasesSenders(t *testing.T) {
	const senders = 3
	errs := make(chan error, senders)
	status := make(chan websocket.Status, 1)
	var before runtime.MemStats
	ts := startServer(t, &websocket.Handler{WriteTimeout: 300 * time.Millisecond, Handle: func(c *websocket.Conn) {
		msg := make([]byte, 1<<20)
		runtime.ReadMemStats(&before)
		for range senders {
			go func() {
				for {
					if err := c.SendBinary(msg); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		st, _ := c.GetStatus()
		status <- st
	}})
	c := dialWS(t, ts)
	defer c.Close()
	// The client never reads: the kernel's buffers fill, then the writes
	// stall.
	for range senders {
		if err := recv(t, errs, "a blocked sender to be released"); !errors.Is(err, websocket.ErrConnClosed) {
			t.Errorf("send to a client that does not read returned %v, want an error wrapping ErrConnClosed", err)
		}
	}
	if st := recv(t, status, "GetStatus"); st != websocket.StatusDropped {
		t.Errorf("GetStatus = %d, want StatusDropped", st)
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	t.Logf("allocated while stalled: %d bytes", after.TotalAlloc-before.TotalAlloc)
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 1<<20 {
		t.Errorf("%d bytes allocated while %d senders of 1 MiB messages were stalled, want less than one message", grown, senders)
	}
}

// A client that reads slowly but steadily is not cut off, however long the
// whole message takes: the timeout is for a write without progress. The
// reads here come every 5 ms, but the server's socket holds megabytes, and
// the poller wakes a writer only when a good part of that is free again:
// far more than a 100 ms timeout apart.
// Rows: O3.
func TestWriteTimeoutSparesSlowReader(t *testing.T) {
	t.Parallel()
	const size = 4 << 20
	sent, read := make(chan error, 1), make(chan struct{})
	ts := startServer(t, &websocket.Handler{WriteTimeout: 100 * time.Millisecond, Handle: func(c *websocket.Conn) {
		if _, err := c.ReceiveText(16); err != nil { // the client is reading
			sent <- err
			return
		}
		sent <- c.SendBinary(bytes.Repeat([]byte{'s'}, size))
		<-read // returning would start the close, whose own timeout is not under test
	}})
	c := dialWS(t, ts)
	defer c.Close()
	defer close(read)
	c.conn.SetReadBuffer(64 << 10) // over loopback's 64 KiB segments: no TCP-level stalls
	c.SendText("go")
	got := 0
	buf := make([]byte, 16<<10)
	for got < size { // the frame's header and payload, 16 KiB every 5 ms
		c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
		n, err := c.br.Read(buf)
		if err != nil {
			t.Fatalf("after %d bytes: %v; the send returned %v", got, err, recv(t, sent, "the send to return"))
		}
		got += n
		time.Sleep(5 * time.Millisecond)
	}
	if err := recv(t, sent, "the send to return"); err != nil {
		t.Errorf("send to a slow reader returned %v", err)
	}
}

// A panic in Handle closes the connection with 1011 and is logged to the
// http.Server's ErrorLog; the server goes on.
// Rows: O10.
func TestPanicInHandleCloses1011(t *testing.T) {
	t.Parallel()
	var logged bytes.Buffer
	var mu sync.Mutex
	ts := startServer(t, &websocket.Handler{Handle: func(c *websocket.Conn) {
		panic("handler bug")
	}}, withHTTPServer(func(s *http.Server) {
		s.ErrorLog = log.New(writerFunc(func(p []byte) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			return logged.Write(p)
		}), "", 0)
	}))
	c := dialWS(t, ts)
	c.ExpectCloseFrame(1011)
	c.SendClose(1011, "")
	c.ExpectEOF()
	if !pollUntil(ioTimeout, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(logged.String(), "handler bug")
	}) {
		mu.Lock()
		t.Errorf("ErrorLog got %q, want the panic", logged.String())
		mu.Unlock()
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// A frame that declares megabytes (within the size limit) and then stalls
// holds its connection only until the idle timeout: nothing is allocated
// for the declared length, and the waiting receive fails.
// Rows: O8.
func TestDeclaredPayloadThatNeverComes(t *testing.T) {
	t.Parallel()
	const idle = 300 * time.Millisecond
	h := &websocket.Handler{IdleTimeout: idle}
	done := startReceiver(t, h)
	c := dialWS(t, startServer(t, h))
	defer c.Close()
	c.Write(wstest.Frame{Fin: true, Op: opBinary, Payload: []byte("0123456789"), DeclaredLen: u64(8 << 20)}.Bytes())
	r := recv(t, done, "the receive to fail")
	if !errors.Is(r.err, websocket.ErrConnClosed) || r.status != websocket.StatusDropped {
		t.Errorf("receive returned %v, GetStatus %d; want an error wrapping ErrConnClosed and StatusDropped", r.err, r.status)
	}
}
