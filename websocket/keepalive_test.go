package websocket_test

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/wsmachine/wsmachine/websocket"
)

// Handler.PingInterval and Handler.IdleTimeout, through real TCP. The
// intervals are short; the assertions are about what is sent and when the
// connection ends, with margins wide enough for a loaded machine.

// receiveResult is what a handler waiting in ReceiveMessage got.
type receiveResult struct {
	err     error
	elapsed time.Duration
	status  websocket.Status
}

// startReceiver sets h.Handle to a handler that receives one message, to
// its end, and reports what it got, and GetStatus.
func startReceiver(t *testing.T, h *websocket.Handler) <-chan receiveResult {
	t.Helper()
	done := make(chan receiveResult, 1)
	h.Handle = func(c *websocket.Conn) {
		start := time.Now()
		_, r, err := c.ReceiveMessage()
		if err == nil {
			_, err = io.ReadAll(r)
		}
		elapsed := time.Since(start)
		if err == nil {
			c.Close(websocket.StatusOK, "")
		}
		st, _ := c.GetStatus()
		done <- receiveResult{err, elapsed, st}
	}
	return done
}

// An idle client is pinged every interval; its pongs keep it alive past the
// idle timeout.
// Rows: O13, O2.
func TestPingsKeepAnsweringClientAlive(t *testing.T) {
	t.Parallel()
	// A pong may take up to 850 ms under load (race detector, browsers
	// and peers running alongside) without the test failing.
	h := &websocket.Handler{PingInterval: 150 * time.Millisecond, IdleTimeout: time.Second}
	done := startReceiver(t, h)
	c := dialWS(t, startServer(t, h))
	deadline := time.Now().Add(2500 * time.Millisecond) // more than two idle timeouts
	pings := 0
	for time.Now().Before(deadline) {
		f, err := c.ReadFrameTimeout(ioTimeout)
		if err != nil {
			t.Fatalf("after %d pings: %v", pings, err)
		}
		if f.Op != opPing || len(f.Payload) != 0 {
			t.Fatalf("got %v, want an empty ping", f)
		}
		pings++
		c.Send(opPong, nil)
	}
	if pings < 3 {
		t.Errorf("%d pings in 2.5 s at a 150 ms interval", pings)
	}
	c.SendText("still here")
	if r := recv(t, done, "the receive"); r.err != nil {
		t.Errorf("receive after 2.5 s of pongs returned %v", r.err)
	}
	c.ExpectCloseFrame(1000)
}

// A connection with traffic is not pinged: only silence is.
// Rows: O5, O13.
func TestNoPingsWhileClientSends(t *testing.T) {
	t.Parallel()
	h := &websocket.Handler{PingInterval: 500 * time.Millisecond}
	startReceiver(t, h)
	c := dialWS(t, startServer(t, h))
	defer c.Close()
	for range 25 { // 1.25 s, a frame every 50 ms
		c.Send(opPing, []byte("busy"))
		c.ExpectPong([]byte("busy"))
		time.Sleep(50 * time.Millisecond)
	}
}

// A client that sends nothing, pings unanswered, is dropped after the idle
// timeout: the waiting receive fails, GetStatus says StatusDropped, TCP
// is closed.
// Rows: O8, O13.
func TestIdleTimeoutDropsSilentClient(t *testing.T) {
	for _, ping := range []time.Duration{0, 100 * time.Millisecond} {
		t.Run("ping="+ping.String(), func(t *testing.T) {
			t.Parallel()
			const idle = 300 * time.Millisecond
			h := &websocket.Handler{PingInterval: ping, IdleTimeout: idle}
			done := startReceiver(t, h)
			c := dialWS(t, startServer(t, h))
			defer c.Close()
			r := recv(t, done, "the receive to fail")
			if !errors.Is(r.err, websocket.ErrConnClosed) || r.status != websocket.StatusDropped {
				t.Errorf("receive returned %v, GetStatus %d; want an error wrapping ErrConnClosed and StatusDropped", r.err, r.status)
			}
			if r.elapsed < idle {
				t.Errorf("dropped after %v, before the idle timeout %v", r.elapsed, idle)
			}
			for { // the pings sent meanwhile, then the end of TCP
				f, err := c.ReadFrameTimeout(ioTimeout)
				if err != nil {
					break
				}
				if f.Op != opPing {
					t.Fatalf("got %v before the end, want only pings", f)
				}
			}
		})
	}
}

// No ping after our close frame: while Close waits for the client's
// answer, silence does not make the server ping.
// Rows: K13, O10, K4.
func TestNoPingsWhileClosing(t *testing.T) {
	t.Parallel()
	const interval = 50 * time.Millisecond
	closeErr := make(chan error, 1)
	c := dialWS(t, startServer(t, &websocket.Handler{PingInterval: interval, Handle: func(c *websocket.Conn) {
		closeErr <- c.Close(websocket.StatusOK, "")
	}}))
	c.ExpectCloseFrame(1000)
	c.ExpectNothing(6 * interval)
	c.SendClose(1000, "")
	c.ExpectEOF()
	if err := recv(t, closeErr, "Close"); err != nil {
		t.Errorf("Close returned %v, want nil", err)
	}
}
