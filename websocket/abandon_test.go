package websocket_test

// A message writer that cannot finish its message gives it up, and the
// peer never receives a cut message as a whole one (STATE_MACHINE.md,
// "Message writers"): nothing is sent if nothing of it has left, else the
// connection is closed with 1011 (row O14).

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/wsmachine/wsmachine/websocket"
)

// failingReader yields data, then fails with errSource.
type failingReader struct{ data []byte }

var errSource = errors.New("the source failed")

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, errSource
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// The ways a writer gives up its message, each before any frame has left
// (short) and after one has (long: more than the writer's 64 KiB buffer).
func abandonCases(size int) []struct {
	name  string
	tp    websocket.MessageType
	cause string // what the error says
	// send gives the message up: by a Write or ReadFrom that fails
	// (writeErr), or at Close (writeErr nil) or CloseWithError.
	send func(w io.WriteCloser) (writeErr, closeErr error)
} {
	text := strings.Repeat("é", size/2)
	return []struct {
		name  string
		tp    websocket.MessageType
		cause string
		send  func(w io.WriteCloser) (writeErr, closeErr error)
	}{
		{"Write refuses invalid UTF-8", websocket.Text, "UTF-8", func(w io.WriteCloser) (error, error) {
			w.Write([]byte(text))
			_, err := w.Write([]byte("ok\xff"))
			return err, w.Close()
		}},
		{"Close inside a character", websocket.Text, "UTF-8", func(w io.WriteCloser) (error, error) {
			_, err := w.Write([]byte(text + "\xe2\x82"))
			return err, w.Close()
		}},
		{"io.Copy from a failing source", websocket.Binary, errSource.Error(), func(w io.WriteCloser) (error, error) {
			_, err := io.Copy(w, &failingReader{make([]byte, size)})
			return err, w.Close()
		}},
		{"io.Copy of invalid UTF-8", websocket.Text, "UTF-8", func(w io.WriteCloser) (error, error) {
			_, err := io.Copy(w, strings.NewReader(text+"\xff"))
			return err, w.Close()
		}},
		{"CloseWithError", websocket.Binary, "given up", func(w io.WriteCloser) (error, error) {
			if _, err := w.Write(make([]byte, size)); err != nil {
				return err, nil
			}
			return nil, w.(websocket.MessageWriter).CloseWithError(errors.New("given up"))
		}},
	}
}

// giveUp starts a message of type tp and has send give it up; it returns
// the errors of the failing call and of Close (or CloseWithError).
func giveUp(c *websocket.Conn, tp websocket.MessageType, send func(io.WriteCloser) (error, error)) [2]error {
	w, err := c.SendMessage(tp)
	if err != nil {
		return [2]error{err, err}
	}
	werr, cerr := send(w)
	return [2]error{werr, cerr}
}

// Before any frame of it has left, a message given up sends nothing: the
// failing call and Close return the cause, and the connection goes on.
// Rows: O3; "Message writers".
func TestWriterGivesUpBeforeAnyFrame(t *testing.T) {
	t.Parallel()
	for _, tt := range abandonCases(1000) {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			errs := make(chan [2]error, 1)
			ts := startHandler(t, func(c *websocket.Conn) {
				errs <- giveUp(c, tt.tp, tt.send)
				c.SendText("next")
				c.GetStatus()
			})
			c := dialWS(t, ts)
			defer c.Close()
			c.ExpectText("next") // nothing of the message came before it
			got := recv(t, errs, "the writer's errors")
			if tt.name == "CloseWithError" {
				if got[1] != nil {
					t.Errorf("CloseWithError returned %v, want nil: nothing was sent", got[1])
				}
			} else {
				for _, err := range got {
					if err == nil && tt.name == "Close inside a character" {
						continue // Write took it all: Close gives up
					}
					if err == nil || !strings.Contains(err.Error(), tt.cause) || errors.Is(err, websocket.ErrConnClosed) {
						t.Errorf("errors %v: each must be the cause (%q), the connection open", got, tt.cause)
					}
				}
			}
			c.SendClose(1000, "")
			c.ExpectClose(1000)
		})
	}
}

// Once a frame of it has left, a message given up closes the connection
// with 1011 "message abandoned": the peer has the first frames, no FIN,
// then the close frame. The failing call and Close return an error
// wrapping ErrConnClosed and the cause; nobody waits in Close, and the
// peer's answer completes the closing handshake.
// Rows: O14, K4; "Message writers".
func TestWriterGivesUpAfterAFrame(t *testing.T) {
	t.Parallel()
	for _, tt := range abandonCases(100 << 10) {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			errs := make(chan [2]error, 1)
			status := make(chan websocket.Status, 1)
			ts := startHandler(t, func(c *websocket.Conn) {
				errs <- giveUp(c, tt.tp, tt.send)
				code, _ := c.GetStatus()
				status <- code
			})
			c := dialWS(t, ts)
			defer c.Close()
			got := 0
			for {
				f := c.ReadFrame()
				if f.Op == opClose {
					if code := binary.BigEndian.Uint16(f.Payload); code != 1011 || string(f.Payload[2:]) != "message abandoned" {
						t.Errorf("close %d %q, want 1011 \"message abandoned\"", code, f.Payload[2:])
					}
					break
				}
				if f.Fin {
					t.Fatalf("the peer got a final frame of the message given up (%d bytes so far)", got+len(f.Payload))
				}
				got += len(f.Payload)
			}
			if got == 0 {
				t.Errorf("no frame of the message left before the close: the case does not test what it says")
			}
			e := recv(t, errs, "the writer's errors")
			if (e[0] == nil) != (tt.name == "CloseWithError" || tt.name == "Close inside a character") {
				t.Errorf("Write or io.Copy returned %v", e[0])
			}
			for _, err := range e[1:] {
				if !errors.Is(err, websocket.ErrConnClosed) || !strings.Contains(err.Error(), tt.cause) {
					t.Errorf("errors %v: want them to wrap ErrConnClosed and say %q", e, tt.cause)
				}
			}
			if e[0] != nil && e[0].Error() != e[1].Error() {
				t.Errorf("the failing call returned %v, Close %v: want the same error", e[0], e[1])
			}
			c.SendClose(1011, "")
			c.ExpectEOF()
			if code := recv(t, status, "GetStatus"); code != 1011 {
				t.Errorf("GetStatus %d, want the client's answer 1011", code)
			}
		})
	}
}

// A message given up after a frame, by a peer that never answers the
// close: the close timeout ends the connection (K8) though nobody waits
// in Close.
// Rows: O14, K8.
func TestWriterGivesUpPeerSilent(t *testing.T) {
	t.Parallel()
	status := make(chan websocket.Status, 1)
	ts := startServer(t, &websocket.Handler{CloseTimeout: 200 * time.Millisecond, Handle: func(c *websocket.Conn) {
		w, _ := c.SendMessage(websocket.Binary)
		w.Write(make([]byte, 100<<10))
		w.(websocket.MessageWriter).CloseWithError(errors.New("given up"))
		code, _ := c.GetStatus()
		status <- code
	}})
	c := dialWS(t, ts)
	defer c.Close()
	if code := recv(t, status, "GetStatus"); code != websocket.StatusDropped {
		t.Errorf("GetStatus %d, want StatusDropped after the close timeout", code)
	}
}

// The client's side: a Dial connection's writer gives up a message after
// a frame, and the server sees the close with 1011.
// Rows: O14.
func TestDialWriterGivesUp(t *testing.T) {
	t.Parallel()
	frames := make(chan []byte, 16)
	url := rawServer(t, func(nc net.Conn, br *bufio.Reader) {
		for {
			op, p, _, err := readClientFrame(br)
			if err != nil {
				close(frames)
				return
			}
			frames <- append([]byte{op}, p[:min(len(p), 32)]...)
			if op == 8 {
				nc.Write([]byte{0x88, 0x02, 0x03, 0xf3})
			}
		}
	})
	c := dial(t, url, nil)
	w, _ := c.SendMessage(websocket.Text)
	w.Write(bytes.Repeat([]byte("a"), 100<<10))
	if _, err := w.Write([]byte{0xff}); !errors.Is(err, websocket.ErrConnClosed) {
		t.Errorf("Write: %v, want an error wrapping ErrConnClosed", err)
	}
	w.Close()
	var ops []byte
	for f := range frames {
		ops = append(ops, f[0])
		if f[0] == 8 && (binary.BigEndian.Uint16(f[1:]) != 1011 || string(f[3:]) != "message abandoned") {
			t.Errorf("close frame %q, want 1011 \"message abandoned\"", f[1:])
		}
	}
	if !bytes.Equal(ops, []byte{1, 8}) {
		t.Errorf("frames with opcodes %v, want a first text frame, then the close", ops)
	}
	if code, _ := c.GetStatus(); code != 1011 {
		t.Errorf("GetStatus %d, want 1011", code)
	}
}

// With compression, a message's first frame leaves when compressing
// begins, with its first 64 KiB (compressible JSON here, far less on the
// wire): given up then, the connection is closed. One given up before
// that sends nothing, and the next compressed message still inflates,
// the history of context takeover intact.
// Rows: O14; "Message writers".
func TestWriterGivesUpCompressed(t *testing.T) {
	t.Parallel()
	for _, size := range []int{1000, 70 << 10} {
		t.Run(fmt.Sprintf("%d bytes", size), func(t *testing.T) {
			t.Parallel()
			ts := startServer(t, &websocket.Handler{Compression: websocket.CompressionContextTakeover, Handle: func(c *websocket.Conn) {
				w, _ := c.SendMessage(websocket.Text)
				w.Write(jsonLike(size, 1))
				w.(websocket.MessageWriter).CloseWithError(errors.New("given up"))
				c.SendText(string(jsonLike(2000, 1)))
				c.GetStatus()
			}})
			c := dialDeflate(t, ts, offerDeflate, "permessage-deflate")
			defer c.Close()
			if size < 64<<10 {
				if op, got, _, _ := c.readCompressed(); op != opText || !bytes.Equal(got, jsonLike(2000, 1)) {
					t.Fatalf("got op=%#x %q, want the next message", op, trunc(got))
				}
				c.SendClose(1000, "")
				c.ExpectClose(1000)
				return
			}
			frames := 0
			for {
				f := c.ReadFrame()
				if f.Op == opClose {
					if binary.BigEndian.Uint16(f.Payload) != 1011 {
						t.Errorf("close %x, want 1011", f.Payload)
					}
					break
				}
				if f.Fin || frames == 0 && !f.Rsv1 {
					t.Fatalf("frame %d of the message given up: fin %v, RSV1 %v", frames, f.Fin, f.Rsv1)
				}
				frames++
			}
			if frames == 0 {
				t.Errorf("no frame of the message left before the close")
			}
		})
	}
}

// A writer that gives its message up after Close has sent the close frame
// (Close took the send side between two of the writer's frames): the close
// frame already cut the message, so nothing more is sent, and
// CloseWithError returns an error wrapping ErrConnClosed and the cause;
// the client's answer completes the closing handshake.
// Rows: K14, O10, K4; "Message writers".
func TestWriterGivesUpWhileClosing(t *testing.T) {
	cause := errors.New("given up")
	closeSeen := make(chan struct{})
	type result struct{ abandon, close error }
	done := make(chan result, 1)
	ts := startHandler(t, func(c *websocket.Conn) {
		w, err := c.SendMessage(websocket.Binary)
		if err != nil {
			done <- result{err, err}
			return
		}
		w.Write(make([]byte, 256<<10)) // frames have left
		closeErr := make(chan error, 1)
		go func() { closeErr <- c.Close(websocket.StatusOK, "bye") }()
		<-closeSeen
		abandonErr := w.(websocket.MessageWriter).CloseWithError(cause)
		done <- result{abandonErr, <-closeErr}
	})
	c := dialWS(t, ts)
	c.skipToCloseFrame(1000)
	close(closeSeen)
	c.ExpectNothing(50 * time.Millisecond) // no second close frame
	c.SendClose(1000, "")
	c.ExpectEOF()
	r := recv(t, done, "the handler")
	if !errors.Is(r.abandon, websocket.ErrConnClosed) || !errors.Is(r.abandon, cause) {
		t.Errorf("CloseWithError while closing returned %v, want an error wrapping ErrConnClosed and the cause", r.abandon)
	}
	if r.close != nil {
		t.Errorf("Close returned %v, want nil", r.close)
	}
}
