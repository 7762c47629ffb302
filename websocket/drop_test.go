package websocket_test

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/wsmachine/wsmachine/websocket"

	"github.com/wsmachine/wsmachine/websocket/internal/wstest"
)

// The client's TCP connection ends (FIN, or RST) at every point of a
// connection's life. Whatever the point, a receiver and a sender that are
// busy at that moment return promptly with errors wrapping ErrConnClosed,
// GetStatus reports StatusDropped, and nothing is left running (TestMain's
// goroutine check).

// dropPoints are where the client stops: what it sends, then it drops.
var dropPoints = []struct {
	name      string
	send      []byte
	serverEnd bool // the handler calls Close first: the drop comes during the close handshake
}{
	{name: "MidFrameHeader", send: wstest.Frame{Fin: true, Op: opBinary, Payload: make([]byte, 300)}.Bytes()[:3]},
	{name: "MidPayload", send: wstest.Frame{Fin: true, Op: opBinary, Payload: make([]byte, 300)}.Bytes()[:100]},
	{name: "MidFragmentedMessage", send: wstest.Frame{Op: opText, Payload: []byte("first fragment")}.Bytes()},
	{name: "DuringCloseHandshake", serverEnd: true},
}

func dropClient(nc *net.TCPConn, rst bool) {
	if rst {
		nc.SetLinger(0) // close with RST instead of FIN
	}
	nc.Close()
}

// Rows: O8, K6, T2, T3.
func TestClientDropAtEveryPoint(t *testing.T) {
	for _, p := range dropPoints {
		for _, rst := range []bool{false, true} {
			name := p.name + "/FIN"
			if rst {
				name = p.name + "/RST"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				type outcome struct {
					what string
					err  error
				}
				results := make(chan outcome, 3)
				status := make(chan websocket.Status, 1)
				ready := make(chan struct{})
				ts := startServer(t, &websocket.Handler{Handle: func(c *websocket.Conn) {
					var wg sync.WaitGroup
					wg.Add(2)
					go func() { // a receiver, reading the message to its end
						defer wg.Done()
						_, r, err := c.ReceiveMessage()
						for err == nil {
							_, err = r.Read(make([]byte, 64))
							if errors.Is(err, io.EOF) {
								_, r, err = c.ReceiveMessage()
							}
						}
						results <- outcome{"receive", err}
					}()
					go func() { // a sender, sending until it fails
						defer wg.Done()
						var err error
						for err == nil {
							err = c.SendText("tick")
							time.Sleep(time.Millisecond)
						}
						results <- outcome{"send", err}
					}()
					close(ready)
					if p.serverEnd {
						results <- outcome{"close", c.Close(websocket.StatusGoingAway, "")}
					}
					wg.Wait()
					st, _ := c.GetStatus()
					status <- st
				}})
				c := dialWS(t, ts)
				<-ready
				c.Write(p.send)
				time.Sleep(20 * time.Millisecond) // the server is reading it, the sender sending
				start := time.Now()
				dropClient(c.conn, rst)
				want := 2
				if p.serverEnd {
					want = 3
				}
				for range want {
					o := recv(t, results, "every call to return")
					if !errors.Is(o.err, websocket.ErrConnClosed) {
						t.Errorf("%s returned %v, want an error wrapping ErrConnClosed", o.what, o.err)
					}
				}
				if st := recv(t, status, "GetStatus"); st != websocket.StatusDropped {
					t.Errorf("GetStatus = %d, want StatusDropped", st)
				}
				if d := time.Since(start); d > 2*time.Second {
					t.Errorf("the calls took %v to return after the drop", d)
				}
			})
		}
	}
}

// A client that drops during the opening handshake never reaches Handle,
// and leaves nothing behind.
// Rows: C6: a dropped handshake never reaches the Conn.
func TestClientDropDuringHandshake(t *testing.T) {
	for _, rst := range []bool{false, true} {
		ts := startHandler(t, func(c *websocket.Conn) { t.Error("Handle called for a dropped handshake") })
		c := dialTCP(t, ts.Addr)
		c.Write([]byte("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConn"))
		dropClient(c, rst)
		ts.shutdown()
	}
}

// Many goroutines send, stream, receive and close at once while the client
// drops its connection at a random moment: every call returns, with no
// data race (go test -race), no panic and no deadlock.
// Rows: O8, O9, T3.
func TestConcurrentCallsWhileClientDrops(t *testing.T) {
	for round := range 8 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			t.Parallel()
			r := rand.New(rand.NewPCG(uint64(round), 6455))
			const workers = 12
			done := make(chan string, workers)
			ts := startHandler(t, func(c *websocket.Conn) {
				for w := range workers {
					go func() {
						what := concurrentCall(c, w)
						done <- what
					}()
				}
			})
			c := dialWS(t, ts)
			for range r.IntN(20) {
				c.SendText("from the client")
				time.Sleep(time.Duration(r.IntN(2000)) * time.Microsecond)
			}
			dropClient(c.conn, r.IntN(2) == 0)
			for range workers {
				recv(t, done, "every call to return after the drop")
			}
		})
	}
}

// concurrentCall calls one kind of method, by w, until it fails.
func concurrentCall(c *websocket.Conn, w int) string {
	switch w % 6 {
	case 0:
		for c.SendText("text") == nil {
		}
		return "SendText"
	case 1:
		for c.SendBinary(make([]byte, 3000)) == nil {
		}
		return "SendBinary"
	case 2:
		for {
			mw, err := c.SendMessage(websocket.Text)
			if err != nil {
				return "SendMessage"
			}
			_, werr := mw.Write(make([]byte, 40000))
			if cerr := mw.Close(); werr != nil || cerr != nil {
				return "message writer"
			}
		}
	case 3:
		for {
			_, r, err := c.ReceiveMessage()
			if err != nil {
				return "ReceiveMessage"
			}
			io.Copy(io.Discard, r)
		}
	case 4:
		for {
			if _, err := c.ReceiveText(100); err != nil && !errors.Is(err, websocket.ErrTooLarge) {
				return "ReceiveText"
			}
		}
	default:
		time.Sleep(time.Duration(w) * time.Millisecond)
		c.Close(websocket.StatusGoingAway, "")
		c.GetStatus()
		return "Close"
	}
}

// A TCP drop in the middle of a message makes the reader fail with
// ErrConnClosed (a truncated message never looks complete).
// Rows: O8, T2.
func TestTCPDropMidMessageReaderFails(t *testing.T) {
	tests := []struct {
		name string
		send func(op byte) []byte
	}{
		{"AfterFirstFragment", func(op byte) []byte { return wstest.FragBytes(false, op, []byte("partial")) }},
		{"InsideFramePayload", func(op byte) []byte {
			return wstest.Frame{Fin: true, Op: op, Payload: []byte("partial"), DeclaredLen: u64(100)}.Bytes()
		}},
		{"InsideFrameHeader", func(op byte) []byte { return wstest.Frame{Fin: true, Op: op, Payload: make([]byte, 300)}.Bytes()[:3] }},
	}
	for _, tc := range tests {
		for _, rc := range receivers {
			t.Run(tc.name+"/"+rc.name, func(t *testing.T) {
				t.Parallel()
				type result struct {
					data   []byte
					err    error
					status statusResult
				}
				done := make(chan result, 1)
				ts := startHandler(t, func(c *websocket.Conn) {
					var res result
					res.data, res.err = rc.recv(c)
					code, reason := c.GetStatus()
					res.status = statusResult{code, reason}
					done <- res
				})
				c := dialWS(t, ts)
				c.Write(tc.send(rc.op))
				c.Close()
				res := recv(t, done, "the handler's receive to end")
				if !errors.Is(res.err, websocket.ErrConnClosed) {
					t.Errorf("receive of a truncated message returned %q, %v; want an error wrapping ErrConnClosed", res.data, res.err)
				}
				if res.status != (statusResult{websocket.StatusDropped, ""}) {
					t.Errorf("GetStatus = %v, want {1006 \"\"}", res.status)
				}
			})
		}
	}
}

// dropAndCheckSenderLearns drops the client's TCP connection and checks
// that the sending handler started by startReporting learns of it promptly:
// its send fails with ErrConnClosed and the status is dropped.
func dropAndCheckSenderLearns(t *testing.T, c *rawClient, done <-chan handlerResult) {
	t.Helper()
	start := time.Now()
	c.Close()
	res := recv(t, done, "the handler's send to fail")
	if !errors.Is(res.err, websocket.ErrConnClosed) {
		t.Errorf("send after TCP drop returned %v, want ErrConnClosed", res.err)
	}
	if d := time.Since(start); d > promptly+time.Second {
		t.Errorf("sending handler learned of the drop only after %v", d)
	}
	if res.status != (statusResult{websocket.StatusDropped, ""}) {
		t.Errorf("GetStatus = %v, want {1006 \"\"}", res.status)
	}
}

// A handler that only sends learns promptly that the client dropped TCP.
// Rows: O8, O9.
func TestSendingHandlerLearnsOfDroppedTCP(t *testing.T) {
	started := make(chan struct{})
	ts, done := startReporting(t, func(c *websocket.Conn) error {
		close(started)
		return sendUntilClosed(c, 10*time.Second)
	})
	c := dialWS(t, ts)
	recv(t, started, "handler start")
	c.ReadFrame() // one tick
	dropAndCheckSenderLearns(t, c, done)
}

// A handler that only sends learns of a dropped TCP connection even when
// an unread message from the client is pending (the background reader
// cannot see the EOF behind it, the failing writes must report it).
// Rows: O9.
func TestSendingHandlerLearnsOfDropBehindUnreadMessage(t *testing.T) {
	ts, done := startReporting(t, func(c *websocket.Conn) error { return sendUntilClosed(c, 10*time.Second) })
	c := dialWS(t, ts)
	c.SendText("never read")
	c.ReadFrame()
	dropAndCheckSenderLearns(t, c, done)
}
