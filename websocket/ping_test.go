package websocket_test

// Pings and pongs from the client (rows O5, O2): every ping is answered
// with its payload, whatever the handler is doing, and pongs are ignored.
// The server's own pings (Handler.PingInterval) are in keepalive_test.go.

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/wsmachine/wsmachine/websocket"

	"github.com/wsmachine/wsmachine/websocket/internal/wstest"
)

// Every ping is answered with a pong carrying its payload.
// Rows: O5.
func TestPingAnsweredWithSamePayload(t *testing.T) {
	for _, p := range [][]byte{nil, []byte("x"), []byte("hello"), {0, 0xff, 0x80, 0xc0}, bytes.Repeat([]byte("z"), 125)} {
		t.Run(fmt.Sprintf("Len%d", len(p)), func(t *testing.T) {
			t.Parallel()
			ts, _ := startEcho(t)
			c := dialWS(t, ts)
			c.Send(opPing, p)
			c.ExpectPong(p)
			// Several pings in one write, each answered in order.
			c.Write(wstest.Concat(wstest.FrameBytes(opPing, []byte("a")), wstest.FrameBytes(opPing, []byte("b")), wstest.FrameBytes(opPing, p)))
			c.ExpectPong([]byte("a"))
			c.ExpectPong([]byte("b"))
			c.ExpectPong(p)
			c.SendClose(1000, "")
			c.ExpectClose(1000)
		})
	}
}

// Many pings in one burst are all answered, in order.
// Rows: O5.
func TestPingBurstAllAnswered(t *testing.T) {
	ts, _ := startEcho(t)
	c := dialWS(t, ts)
	var stream []byte
	for i := range 300 {
		stream = append(stream, wstest.FrameBytes(opPing, []byte(fmt.Sprint(i)))...)
	}
	c.Write(stream)
	for i := range 300 {
		c.ExpectPong([]byte(fmt.Sprint(i)))
	}
	c.SendClose(1000, "")
	c.ExpectClose(1000)
}

// Pings in the middle of a fragmented message are answered at once, before
// the message is finished.
// Rows: O5, O2, O1.
func TestPingsInterleavedWithFragmentsAnswered(t *testing.T) {
	ts, results := startEcho(t)
	c := dialWS(t, ts)
	c.Write(wstest.FragBytes(false, opText, []byte("one ")))
	c.Send(opPing, []byte("ping-1"))
	c.ExpectPong([]byte("ping-1"))
	c.Write(wstest.FragBytes(false, opCont, []byte("two ")))
	c.Send(opPing, nil)
	c.ExpectPong(nil)
	c.Send(opPong, []byte("unsolicited")) // ignored
	c.Send(opPing, bytes.Repeat([]byte{0xAB}, 125))
	c.ExpectPong(bytes.Repeat([]byte{0xAB}, 125))
	c.Write(wstest.FragBytes(true, opCont, []byte("three")))
	c.ExpectText("one two three")
	c.SendClose(1000, "")
	c.ExpectClose(1000)
	if res := recv(t, results, "handler to end"); res.Msgs != 1 {
		t.Errorf("handler echoed %d messages, want 1", res.Msgs)
	}
}

// Unsolicited pongs are ignored.
// Rows: O2.
func TestUnsolicitedPongIgnored(t *testing.T) {
	ts, results := startEcho(t)
	c := dialWS(t, ts)
	c.Send(opPong, nil)
	c.Send(opPong, []byte("unsolicited"))
	c.Send(opPong, bytes.Repeat([]byte("q"), 125))
	c.ExpectNothing(50 * time.Millisecond)
	c.SendText("after pongs")
	c.ExpectText("after pongs") // ReadMessage fails on any pong or ping
	c.SendClose(1000, "")
	c.ExpectClose(1000)
	if res := recv(t, results, "handler to end"); res.Msgs != 1 {
		t.Errorf("handler echoed %d messages, want 1", res.Msgs)
	}
}

// Pings are answered while the handler neither receives nor sends.
// Rows: O5, O6.
func TestPingAnsweredWhileHandlerSleeps(t *testing.T) {
	release := make(chan struct{})
	status := make(chan statusResult, 1)
	ts := startHandler(t, func(c *websocket.Conn) {
		<-release
		code, reason := c.GetStatus()
		status <- statusResult{code, reason}
	})
	defer close(release)
	c := dialWS(t, ts)
	for i := range 3 {
		p := []byte(fmt.Sprintf("idle-%d", i))
		c.Send(opPing, p)
		c.ExpectPong(p)
	}
	// The client's close is answered while the handler still sleeps.
	c.SendClose(1001, "leaving")
	c.ExpectClose(1001)
	release <- struct{}{}
	if st := recv(t, status, "GetStatus"); st != (statusResult{websocket.StatusGoingAway, "leaving"}) {
		t.Errorf("GetStatus = %v, want {1001 leaving}", st)
	}
}

// Pings are answered while the handler only sends; the handler's next send
// after the client's close returns ErrConnClosed.
// Rows: O5, O3, O6, T1.
func TestPingAnsweredWhileHandlerOnlySends(t *testing.T) {
	ts, done := startReporting(t, func(c *websocket.Conn) error { return sendUntilClosed(c, 10*time.Second) })
	c := dialWS(t, ts)
	for i := range 3 {
		p := []byte(fmt.Sprintf("busy-%d", i))
		c.Send(opPing, p)
		deadline := time.Now().Add(promptly)
		for {
			f, err := c.ReadFrameTimeout(promptly)
			if err != nil {
				t.Fatalf("waiting for pong %q: %v", p, err)
			}
			if f.Op == opPong {
				if !bytes.Equal(f.Payload, p) {
					t.Fatalf("pong %q, want %q", f.Payload, p)
				}
				break
			}
			if f.Op != opText || string(f.Payload) != "tick" {
				t.Fatalf("unexpected frame %v", f)
			}
			if time.Now().After(deadline) {
				t.Fatalf("no pong for %q within %v while the handler sends", p, promptly)
			}
		}
	}
	start := time.Now()
	c.SendClose(1000, "enough")
	c.ExpectCloseAfterData(1000, 100000)
	res := recv(t, done, "the handler's send to fail")
	if !errors.Is(res.err, websocket.ErrConnClosed) {
		t.Errorf("send after the client's close returned %v, want ErrConnClosed", res.err)
	}
	if d := time.Since(start); d > promptly+time.Second {
		t.Errorf("sending handler learned of the close only after %v", d)
	}
	if res.status != (statusResult{websocket.StatusOK, "enough"}) {
		t.Errorf("GetStatus = %v, want {1000 enough}", res.status)
	}
}

// A ping is answered while the handler holds an open SendMessage writer
// (control frames may be interleaved with a fragmented message).
// Rows: O5, O3.
func TestPingAnsweredWhileWriterOpen(t *testing.T) {
	ts, done := startWriterHolder(t)
	c := dialWS(t, ts)
	c.ReadFrame() // the message has started
	c.Send(opPing, []byte("writer open"))
	deadline := time.Now().Add(promptly)
	for {
		f, err := c.ReadFrameTimeout(promptly)
		if err != nil {
			t.Fatalf("no pong while a SendMessage writer is open: %v", err)
		}
		if f.Op == opPong {
			if string(f.Payload) != "writer open" {
				t.Fatalf("pong %q", f.Payload)
			}
			break
		}
		if f.Op != opCont {
			t.Fatalf("unexpected frame %v", f)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pong within %v while a SendMessage writer is open", promptly)
		}
	}
	c.SendClose(1000, "")
	c.skipToCloseFrame(1000)
	c.ExpectEOF()
	recv(t, done, "the handler to end")
}

// Pings arriving while the server writes large frames are answered between
// frames, never inside one.
// Rows: O5, O3.
func TestPongsNotInsideLargeFrames(t *testing.T) {
	const msgs, pings = 3, 20
	big := bytes.Repeat([]byte("L"), 4<<20)
	ts := startHandler(t, func(c *websocket.Conn) {
		for range msgs {
			if c.SendBinary(big) != nil {
				return
			}
		}
		c.GetStatus()
	})
	c := dialWS(t, ts)
	pingErr := c.sendPingsAsync(pings, 2*time.Millisecond)
	got, _, pongs := c.readMsgsAndPongs(msgs, pings)
	if err := recv(t, pingErr, "pings written"); err != nil {
		t.Fatal(err)
	}
	for i, m := range got {
		if !bytes.Equal(m, big) {
			t.Errorf("message %d corrupted (%d bytes)", i, len(m))
		}
	}
	for i, p := range pongs {
		if string(p) != fmt.Sprint(i) {
			t.Errorf("pong %d = %q", i, p)
		}
	}
	c.SendClose(1000, "")
	c.ExpectClose(1000)
}
