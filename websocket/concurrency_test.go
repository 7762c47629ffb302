package websocket_test

// Calls from many goroutines at once: messages never interleave on the
// wire (invariant 2), at most one close frame is sent (invariant 1), and
// every call returns.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wsmachine/wsmachine/websocket"

	"github.com/wsmachine/wsmachine/websocket/internal/wstest"
)

// A SendMessage writer holds the send side from the SendMessage call until
// its Close: other senders wait.
// Rows: O3; "Message writers".
func TestSendMessageWriterHoldsSendSide(t *testing.T) {
	type result struct {
		earlyB bool
		errs   []error
	}
	done := make(chan result, 1)
	ts := startHandler(t, func(c *websocket.Conn) {
		var r result
		w, err := c.SendMessage(websocket.Binary)
		if err != nil {
			r.errs = append(r.errs, err)
			done <- r
			return
		}
		bDone := make(chan error, 1)
		go func() { bDone <- c.SendText("B") }()
		cDone := make(chan error, 1)
		go func() {
			w2, err := c.SendMessage(websocket.Text)
			if err == nil {
				w2.Write([]byte("C"))
				err = w2.Close()
			}
			cDone <- err
		}()
		time.Sleep(30 * time.Millisecond) // give B and C a chance to (wrongly) go first
		_, err = w.Write([]byte("A1"))
		r.errs = append(r.errs, err)
		select {
		case <-bDone:
			r.earlyB = true
		case <-cDone:
			r.earlyB = true
		case <-time.After(30 * time.Millisecond):
		}
		_, err = w.Write([]byte("A2"))
		r.errs = append(r.errs, err)
		r.errs = append(r.errs, w.Close())
		if !r.earlyB {
			r.errs = append(r.errs, <-bDone, <-cDone)
		}
		done <- r
		c.GetStatus()
	})
	c := dialWS(t, ts)
	c.ExpectBinary([]byte("A1A2"))
	var rest []string
	for range 2 {
		op, p := c.ReadMessage()
		if op != opText {
			t.Fatalf("got op %#x, want text", op)
		}
		rest = append(rest, string(p))
	}
	if !(rest[0] == "B" && rest[1] == "C") && !(rest[0] == "C" && rest[1] == "B") {
		t.Errorf("messages after the writer: %q, want B and C", rest)
	}
	r := recv(t, done, "handler")
	if r.earlyB {
		t.Errorf("another sender finished while a SendMessage writer was open")
	}
	for i, err := range r.errs {
		if err != nil {
			t.Errorf("call %d: %v", i, err)
		}
	}
	c.SendClose(1000, "")
	c.ExpectClose(1000)
}

// Many goroutines sending at once: every message arrives intact and in
// order per goroutine; messages never interleave on the wire.
// Rows: O3, O5.
func TestConcurrentSendersNeverInterleave(t *testing.T) {
	const goroutines, perG = 8, 50
	body := func(g, i int) string {
		n := (g*131 + i*977) % 3000
		if i%17 == 0 {
			n = 66000 + g // 64-bit length frames
		}
		return fmt.Sprintf("g%02d m%03d <", g, i) + strings.Repeat(string(rune('a'+g)), n) + ">"
	}
	errs := make(chan error, goroutines*perG)
	ts := startHandler(t, func(c *websocket.Conn) {
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range perG {
					s := body(g, i)
					var err error
					switch g % 4 {
					case 0:
						err = c.SendText(s)
					case 1:
						err = c.SendBinary([]byte(s))
					case 2, 3:
						tp := websocket.Text
						if g%4 == 3 {
							tp = websocket.Binary
						}
						var w io.WriteCloser
						w, err = c.SendMessage(tp)
						if err == nil {
							third := len(s) / 3
							for _, part := range []string{s[:third], s[third : 2*third], s[2*third:]} {
								if _, e := w.Write([]byte(part)); e != nil && err == nil {
									err = e
								}
							}
							if e := w.Close(); e != nil && err == nil {
								err = e
							}
						}
					}
					if err != nil {
						errs <- fmt.Errorf("goroutine %d message %d: %w", g, i, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		c.GetStatus()
	})
	c := dialWS(t, ts)
	// Pings from the client while the server sends: pongs may come between
	// messages or between the frames of one message, never inside a frame.
	const pings = 50
	pingErr := c.sendPingsAsync(pings, time.Millisecond)
	msgs, ops, pongs := c.readMsgsAndPongs(goroutines*perG, pings)
	if err := recv(t, pingErr, "pings written"); err != nil {
		t.Fatalf("writing pings: %v", err)
	}
	for i, p := range pongs {
		if string(p) != fmt.Sprint(i) {
			t.Fatalf("pong %d has payload %q", i, p)
		}
	}
	next := make([]int, goroutines)
	for k := range goroutines * perG {
		op, p := ops[k], msgs[k]
		var g, i int
		if _, err := fmt.Sscanf(string(p), "g%02d m%03d <", &g, &i); err != nil || g < 0 || g >= goroutines {
			t.Fatalf("corrupt message %s", trunc(p))
		}
		if i != next[g] {
			t.Fatalf("goroutine %d: got message %d, want %d", g, i, next[g])
		}
		next[g]++
		wantOp := opText
		if g%2 == 1 {
			wantOp = opBinary
		}
		if op != wantOp || string(p) != body(g, i) {
			t.Fatalf("goroutine %d message %d: op %#x, %s; want op %#x, %d bytes", g, i, op, trunc(p), wantOp, len(body(g, i)))
		}
	}
	for err := range errs {
		t.Errorf("send failed: %v", err)
	}
	c.SendClose(1000, "")
	c.ExpectClose(1000)
}

// Concurrent receivers each get whole messages; none is lost or duplicated.
// Rows: O1, O4, O5.
func TestConcurrentReceiversGetWholeMessages(t *testing.T) {
	const n = 200
	got := make(chan string, n)
	ts := startHandler(t, func(c *websocket.Conn) {
		var wg sync.WaitGroup
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					s, err := c.ReceiveText(1 << 20)
					if err != nil {
						return
					}
					got <- s
				}
			}()
		}
		wg.Wait()
	})
	c := dialWS(t, ts)
	msg := func(i int) string { return fmt.Sprintf("<%03d:%s>", i, strings.Repeat("x", i*37)) }
	var stream []byte
	for i := range n {
		s := msg(i)
		half := len(s) / 2
		stream = append(stream, wstest.FragBytes(false, opText, []byte(s[:half]))...)
		if i%10 == 0 {
			stream = append(stream, wstest.FrameBytes(opPing, []byte("p"))...)
		}
		stream = append(stream, wstest.FragBytes(true, opCont, []byte(s[half:]))...)
	}
	c.WriteChunks(stream, 8192)
	seen := make(map[string]bool)
	for range n {
		s := recv(t, got, "messages")
		if seen[s] {
			t.Fatalf("message received twice: %.20q", s)
		}
		seen[s] = true
	}
	for i := range n {
		if !seen[msg(i)] {
			t.Fatalf("message %d missing or corrupted", i)
		}
	}
	_, _, pongs := c.readMsgsAndPongs(0, n/10)
	if len(pongs) != n/10 {
		t.Errorf("%d pongs, want %d", len(pongs), n/10)
	}
	c.SendClose(1000, "")
	c.ExpectClose(1000)
}

// Sending and receiving at the same time from different goroutines.
// Rows: O1, O3, O4.
func TestFullDuplex(t *testing.T) {
	const n = 200
	type result struct{ recvd, sent int }
	done := make(chan result, 1)
	ts := startHandler(t, func(c *websocket.Conn) {
		var res result
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				if c.SendBinary([]byte(fmt.Sprintf("server %d", i))) != nil {
					return
				}
				res.sent++
			}
		}()
		for range n {
			if _, err := c.ReceiveText(100); err != nil {
				break
			}
			res.recvd++
		}
		wg.Wait()
		done <- res
		c.GetStatus()
	})
	c := dialWS(t, ts)
	var stream []byte
	for i := range n {
		stream = append(stream, wstest.FrameBytes(opText, []byte(fmt.Sprintf("client %d", i)))...)
	}
	writeDone := make(chan struct{})
	go func() {
		defer close(writeDone)
		c.TryWrite(stream)
	}()
	for i := range n {
		op, p := c.ReadMessage()
		if op != opBinary || string(p) != fmt.Sprintf("server %d", i) {
			t.Fatalf("message %d: op %#x %q", i, op, p)
		}
	}
	<-writeDone
	if res := recv(t, done, "handler"); res != (result{n, n}) {
		t.Errorf("handler received %d and sent %d, want %d each", res.recvd, res.sent, n)
	}
	c.SendClose(1000, "")
	c.ExpectClose(1000)
}

// GetStatus may be called from many goroutines; all get the same answer.
// Rows: O6.
func TestGetStatusConcurrentCallers(t *testing.T) {
	ts, conns, release := startHeldConn(t)
	defer release()
	c := dialWS(t, ts)
	conn := recv(t, conns, "Handle")
	var chans []<-chan statusResult
	for range 5 {
		chans = append(chans, getStatusAsync(conn))
	}
	c.SendClose(4321, "all")
	c.ExpectClose(4321)
	for _, ch := range chans {
		if st := recv(t, ch, "GetStatus"); st != (statusResult{4321, "all"}) {
			t.Errorf("GetStatus = %v", st)
		}
	}
}

// Two goroutines calling Close at once: one close frame on the wire, one
// call returns nil, the other ErrConnClosed.
// Rows: O10, K11, K4.
func TestConcurrentCloseSendsOneCloseFrame(t *testing.T) {
	errs := make(chan error, 2)
	ts := startHandler(t, func(c *websocket.Conn) {
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() { defer wg.Done(); errs <- c.Close(websocket.StatusOK, "") }()
		}
		wg.Wait()
	})
	c := dialWS(t, ts)
	c.ExpectCloseFrame(1000)
	c.SendClose(1000, "")
	c.ExpectEOF() // a second close frame would show up here
	e1, e2 := recv(t, errs, "Close"), recv(t, errs, "Close")
	if e1 != nil {
		e1, e2 = e2, e1
	}
	if e1 != nil || !errors.Is(e2, websocket.ErrConnClosed) {
		t.Errorf("concurrent Close calls returned %v and %v, want nil and ErrConnClosed", e1, e2)
	}
}

// Close racing with senders: sends either succeed or return ErrConnClosed;
// nothing is sent after the close frame.
// Rows: O3, O10, K9, K4.
func TestCloseRacingWithSenders(t *testing.T) {
	errs := make(chan error, 1000)
	closeErr := make(chan error, 1)
	ts := startHandler(t, func(c *websocket.Conn) {
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 200 {
					var err error
					if g%2 == 0 {
						err = c.SendText("data")
					} else {
						err = sendKinds[2].send(c)
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		time.Sleep(5 * time.Millisecond)
		closeErr <- c.Close(websocket.StatusOK, "racing")
		wg.Wait()
		close(errs)
	})
	c := dialWS(t, ts)
	if reason := c.skipToCloseFrame(1000); reason != "racing" {
		t.Errorf("close reason %q", reason)
	}
	c.SendClose(1000, "")
	c.ExpectEOF()
	if err := recv(t, closeErr, "Close"); err != nil {
		t.Errorf("Close returned %v", err)
	}
	for err := range errs {
		if !errors.Is(err, websocket.ErrConnClosed) {
			t.Errorf("send racing with Close returned %v, want nil or ErrConnClosed", err)
		}
	}
}

// Races between the server's Close and what the client does at the same
// moment: whatever wins, the client always gets exactly one well-formed
// close frame before the TCP connection ends.
// Rows: O10, O6, O7, K4, K5.
func TestCloseRacesAlwaysDeliverCloseFrame(t *testing.T) {
	clientActs := []struct {
		name  string
		bytes []byte
		codes []uint16 // acceptable close codes from the server
	}{
		{"ProtocolError", wstest.Frame{Fin: true, Op: opText, Payload: []byte("x"), NoMask: true}.Bytes(), []uint16{1000, 1002}},
		{"InvalidUTF8", wstest.FrameBytes(opText, []byte("\xff")), []uint16{1000, 1007}},
		{"ClientClose", wstest.FrameBytes(opClose, wstest.ClosePayload(1001, "")), []uint16{1000, 1001}},
		{"Data", wstest.FrameBytes(opText, []byte("data")), []uint16{1000}},
	}
	for _, act := range clientActs {
		t.Run(act.name, func(t *testing.T) {
			t.Parallel()
			ts := startHandler(t, func(c *websocket.Conn) {
				c.Close(websocket.StatusOK, "")
			})
			for i := range 25 {
				c := dialWS(t, ts)
				c.Write(act.bytes) // at about the time the handler calls Close
				f, err := c.ReadFrameTimeout(ioTimeout)
				if err != nil {
					t.Fatalf("iteration %d: want a close frame, got %v", i, err)
				}
				if f.Op != opClose || len(f.Payload) < 2 {
					t.Fatalf("iteration %d: got %v, want a close frame with a code", i, f)
				}
				code := binary.BigEndian.Uint16(f.Payload)
				ok := false
				for _, want := range act.codes {
					ok = ok || code == want
				}
				if !ok {
					t.Fatalf("iteration %d: close code %d, want one of %v", i, code, act.codes)
				}
				if code == 1000 {
					// The server's Close won: complete its close handshake
					// (the server may already have dropped the connection).
					c.TryWrite(wstest.FrameBytes(opClose, wstest.ClosePayload(1000, "")))
				}
				c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
				if b, err := c.br.ReadByte(); err == nil {
					t.Fatalf("iteration %d: more bytes after the close frame: %#x", i, b)
				} else if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
					t.Fatalf("iteration %d: want the connection to end, got %v", i, err)
				}
				c.Close()
			}
		})
	}
}

// A protocol error by the client while the server is in the middle of
// sending: the close 1002 frame is not put inside a data frame, no data
// frame follows it, and the sender gets ErrConnClosed.
// Rows: O7, O3, T3.
func TestProtocolErrorWhileServerSending(t *testing.T) {
	for _, mode := range []string{"SendBinaryLoop", "WriterStreaming"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			sendErr := make(chan error, 1)
			ts := startHandler(t, func(c *websocket.Conn) {
				chunk := bytes.Repeat([]byte("s"), 200<<10)
				var err error
				switch mode {
				case "SendBinaryLoop":
					for i := 0; i < 500 && err == nil; i++ {
						err = c.SendBinary(chunk)
					}
				case "WriterStreaming":
					var w io.WriteCloser
					w, err = c.SendMessage(websocket.Binary)
					for i := 0; i < 500 && err == nil; i++ {
						_, err = w.Write(chunk)
					}
					if w != nil {
						if cerr := w.Close(); err == nil {
							err = cerr
						}
					}
				}
				sendErr <- err
				c.GetStatus()
			})
			c := dialWS(t, ts)
			c.ReadFrame() // the server is sending
			c.Write(wstest.Frame{Fin: true, Op: opText, Payload: []byte("x"), NoMask: true}.Bytes())
			for range 100000 {
				f := c.ReadFrame() // strict: a close frame inside a data frame breaks parsing
				if f.Op == opClose {
					c.checkClose(f, 1002)
					break
				}
				if f.Op != opBinary && f.Op != opCont {
					t.Fatalf("unexpected frame %v", f)
				}
			}
			c.ExpectEOF()
			if err := recv(t, sendErr, "the sender to fail"); !errors.Is(err, websocket.ErrConnClosed) {
				t.Errorf("sender returned %v, want ErrConnClosed", err)
			}
		})
	}
}
