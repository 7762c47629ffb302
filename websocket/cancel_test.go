package websocket

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/wsmachine/wsmachine/websocket/internal/core"
)

// serveOne serves handle on a loopback port and returns a raw client
// connection, upgraded, with its reader; the handler's Conn comes on
// the channel.
func serveOne(t *testing.T, handle func(*Conn)) (net.Conn, io.Reader) {
	t.Helper()
	nc, br := dialUpgraded(t, serve(t, handle))
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	return nc, br
}

// maskedText is a client's text frame with a zero masking key.
func maskedText(s string) []byte {
	f := core.AppendHeader(nil, true, core.OpText, len(s))
	f[1] |= 0x80
	return append(append(f, 0, 0, 0, 0), s...)
}

// A receive whose context ends while it waits for a message returns the
// context's error, having taken nothing: the connection goes on, and
// the next receive gets the next message whole, even when a byte of its
// header had come before the context ended. A context that has ended
// already returns at once, even with a message waiting, which the next
// receive then gets.
//
// Rows: O16, O4, O1.
func TestReceiveContextEndsWhileWaiting(t *testing.T) {
	receives := map[string]func(ctx context.Context, c *Conn) (string, error){
		"ReceiveTextContext": func(ctx context.Context, c *Conn) (string, error) {
			return c.ReceiveTextContext(ctx, 100)
		},
		"ReceiveBinaryContext": func(ctx context.Context, c *Conn) (string, error) {
			var buf [100]byte
			n, err := c.ReceiveBinaryContext(ctx, buf[:])
			return string(buf[:n]), err
		},
		"ReceiveMessageContext": func(ctx context.Context, c *Conn) (string, error) {
			_, r, err := c.ReceiveMessageContext(ctx)
			if err != nil {
				return "", err
			}
			b, err := io.ReadAll(r)
			return string(b), err
		},
	}
	for name, receive := range receives {
		t.Run(name, func(t *testing.T) {
			type result struct {
				msg string
				err error
			}
			results := make(chan result, 8)
			step := make(chan struct{})
			nc, _ := serveOne(t, func(c *Conn) {
				defer c.Close(StatusOK, "")
				for range 3 {
					<-step
					ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
					msg, err := receive(ctx, c)
					cancel()
					results <- result{msg, err}
				}
				// An ended context with a message waiting: not taken.
				<-step
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				msg, err := receive(ctx, c)
				results <- result{msg, err}
				msg, err = receive(context.Background(), c)
				results <- result{msg, err}
			})
			frame := maskedText("hello")
			if name == "ReceiveBinaryContext" {
				frame[0] = 0x82
			}
			expect := func(what, msg string, canceled bool) {
				t.Helper()
				r := <-results
				if canceled {
					if !errors.Is(r.err, context.DeadlineExceeded) && !errors.Is(r.err, context.Canceled) || errors.Is(r.err, ErrConnClosed) {
						t.Fatalf("%s: got %q, %v; want the context's error", what, r.msg, r.err)
					}
					return
				}
				if r.err != nil || r.msg != msg {
					t.Fatalf("%s: got %q, %v; want %q", what, r.msg, r.err, msg)
				}
			}
			step <- struct{}{} // nothing comes
			expect("nothing sent", "", true)
			step <- struct{}{} // one byte of the header, then the context ends
			nc.Write(frame[:1])
			expect("one header byte sent", "", true)
			step <- struct{}{}
			nc.Write(frame[1:]) // the rest: the message whole
			expect("the rest", "hello", false)
			nc.Write(frame)
			time.Sleep(20 * time.Millisecond) // it has arrived
			step <- struct{}{}
			expect("ended context, message waiting", "", true)
			expect("next receive", "hello", false)
		})
	}
}

// A receive that waits for its turn behind another receive call gives up
// when its context ends; the other call goes on.
//
// Rows: O16.
func TestReceiveContextEndsWaitingForItsTurn(t *testing.T) {
	done := make(chan error, 2)
	nc, _ := serveOne(t, func(c *Conn) {
		defer c.Close(StatusOK, "")
		first := make(chan error, 1)
		go func() {
			_, err := c.ReceiveText(100)
			first <- err
		}()
		time.Sleep(20 * time.Millisecond) // the first holds the turn
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := c.ReceiveTextContext(ctx, 100)
		done <- err
		done <- <-first
	})
	if err := <-done; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second receive: %v, want the context's error", err)
	}
	nc.Write(maskedText("for the first"))
	if err := <-done; err != nil {
		t.Fatalf("first receive: %v", err)
	}
}

// A send whose context ends while it waits for the send side (another
// sender's message is open) sends nothing and leaves the connection
// usable: the peer gets the other message and the next send, nothing
// of the cancelled one.
//
// Rows: O16, O3.
func TestSendContextEndsWaitingForTheSendSide(t *testing.T) {
	errs := make(chan error, 4)
	nc, br := serveOne(t, func(c *Conn) {
		w, err := c.SendMessage(Text)
		if err != nil {
			errs <- err
			return
		}
		io.WriteString(w, "first")
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		errs <- c.SendTextContext(ctx, "cancelled")
		cancel()
		errs <- w.Close()
		errs <- c.SendTextContext(context.Background(), "second")
		c.Close(StatusOK, "")
	})
	if err := <-errs; !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrConnClosed) {
		t.Fatalf("cancelled send: %v, want the context's error only", err)
	}
	for _, want := range []string{"first", "second"} {
		hdr := make([]byte, 2)
		if _, err := io.ReadFull(br, hdr); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, hdr[1])
		io.ReadFull(br, got)
		if hdr[0] != 0x81 || string(got) != want {
			t.Fatalf("got frame %x %q, want text %q", hdr, got, want)
		}
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	nc.Close()
}

// A send whose context ends with a frame partly written cuts the frame:
// nothing may follow it, not even a close frame, so the connection is
// dropped, and the error says so, wrapping ErrConnClosed and the
// context's error. The peer here does not read, so that the socket
// fills inside a frame.
//
// Rows: O9.
func TestSendContextCutsAFrame(t *testing.T) {
	type outcome struct {
		err    error
		status Status
	}
	got := make(chan outcome, 1)
	serveOne(t, func(c *Conn) {
		big := make([]byte, 4<<20)
		for range 64 { // the socket holds a few MiB at most
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			err := c.SendBinaryContext(ctx, big)
			cancel()
			if err != nil {
				status, _ := c.GetStatus()
				got <- outcome{err, status}
				return
			}
		}
		got <- outcome{nil, 0}
	})
	o := <-got
	if !errors.Is(o.err, ErrConnClosed) || !errors.Is(o.err, context.DeadlineExceeded) || !strings.Contains(o.err.Error(), "partly written") {
		t.Fatalf("send: %v; want an error wrapping ErrConnClosed and the context's, saying the frame was cut", o.err)
	}
	if o.status != StatusDropped {
		t.Fatalf("GetStatus: %v, want StatusDropped", o.status)
	}
}

// A message writer whose context ends after a frame of its message has
// left gives the message up (the peer must not take the part it has for
// the whole): the connection is closed with 1011, and the writer's
// error wraps ErrConnClosed and the context's error.
//
// Rows: O14.
func TestSendMessageContextGivesUpTheMessage(t *testing.T) {
	errs := make(chan error, 2)
	nc, br := serveOne(t, func(c *Conn) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		w, err := c.SendMessageContext(ctx, Binary)
		if err != nil {
			errs <- err
			return
		}
		chunk := make([]byte, writeBufferSize)
		w.Write(chunk) // fills the buffer
		w.Write(chunk) // a frame leaves
		cancel()
		w.Write(chunk[:10]) // only buffered
		errs <- w.Close()   // the last frame is not begun
		errs <- w.Close()
	})
	err := <-errs
	if !errors.Is(err, ErrConnClosed) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Close after cancel: %v", err)
	}
	if err := <-errs; err != errWriterClosed {
		t.Fatalf("second Close: %v", err)
	}
	// The peer gets the first frame, then our close frame with 1011.
	var sawClose bool
	for range 4 {
		hdr := make([]byte, 2)
		if _, err := io.ReadFull(br, hdr); err != nil {
			break
		}
		n := int(hdr[1] & 0x7f)
		switch n {
		case 126:
			var ext [2]byte
			io.ReadFull(br, ext[:])
			n = int(ext[0])<<8 | int(ext[1])
		case 127:
			var ext [8]byte
			io.ReadFull(br, ext[:])
			n = int(ext[4])<<24 | int(ext[5])<<16 | int(ext[6])<<8 | int(ext[7])
		}
		payload := make([]byte, n)
		io.ReadFull(br, payload)
		if hdr[0]&0x0f == byte(core.OpClose) {
			if code := Status(payload[0])<<8 | Status(payload[1]); code != StatusInternalServerError {
				t.Fatalf("close code %d, want 1011", code)
			}
			sawClose = true
			break
		}
	}
	if !sawClose {
		t.Fatal("no close frame after the abandoned message")
	}
	nc.Close()
}

// A receive with a context first skips the rest of a compressed message
// that the previous receive left unread, whatever its context: a
// decompressor cannot resume an interrupted read, and a message cannot be
// inflated from its middle. Its context's end is then reported (O16), and
// the connection goes on: the next message arrives whole, not 1007.
//
// Rows: O16, O1.
func TestReceiveContextSkipsACompressedMessageWhole(t *testing.T) {
	results := make(chan string, 4)
	started := make(chan struct{})
	addr := serveWith(t, &Handler{Compression: CompressionNoContextTakeover, Handle: func(c *Conn) {
		defer c.Close(StatusOK, "")
		_, r, err := c.ReceiveMessage()
		if err != nil {
			results <- err.Error()
			return
		}
		var some [10]byte
		io.ReadFull(r, some[:]) // and leave the rest
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		close(started)
		_, err = c.ReceiveTextContext(ctx, 100)
		if errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrConnClosed) {
			results <- "cancelled"
		} else {
			results <- fmt.Sprint("first receive: ", err)
		}
		s, err := c.ReceiveText(100)
		results <- fmt.Sprint(s, " ", err)
	}})
	client, _, err := Dial(context.Background(), "ws://"+addr+"/", &DialOptions{Compression: CompressionNoContextTakeover})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close(StatusOK, "")
	w, err := client.SendMessage(Text)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4000 { // frames leave as the buffer fills; the last waits for Close
		fmt.Fprintf(w, "line %d of a long compressed message, ", i*7919%10007)
	}
	<-started
	time.Sleep(300 * time.Millisecond) // the receive's context ends while it skips
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := client.SendText("next"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"cancelled", "next <nil>"} {
		select {
		case got := <-results:
			if got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no %q", want)
		}
	}
}
