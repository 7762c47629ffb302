package websocket_test

// The closing handshake, from either side (rows O6, O10, K1–K11, T1):
// the peer's close is answered, our Close waits for the peer's answer or
// the close timeout, and calls after the end return ErrConnClosed.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsmachine/wsmachine/websocket"

	"github.com/wsmachine/wsmachine/websocket/internal/wstest"
)

// The client's close is answered (code echoed, 1010 answered with 1000,
// empty close answered with empty close), TCP is closed by the server, and
// GetStatus reports the client's code and reason.
// Rows: O6; "Close codes": valid from a client.
func TestClientCloseAnsweredAndRecorded(t *testing.T) {
	long := strings.Repeat("é", 61) + "x" // 123 bytes
	tests := []struct {
		name       string
		payload    []byte
		wantReply  uint16
		wantStatus statusResult
	}{
		{"Empty", nil, noCode, statusResult{websocket.StatusNotSent, ""}},
		{"1000WithReason", wstest.ClosePayload(1000, "bye"), 1000, statusResult{1000, "bye"}},
		{"1000Reason123Bytes", wstest.ClosePayload(1000, long), 1000, statusResult{1000, long}},
		{"1001", wstest.ClosePayload(1001, ""), 1001, statusResult{1001, ""}},
		{"1002", wstest.ClosePayload(1002, "x"), 1002, statusResult{1002, "x"}},
		{"1003", wstest.ClosePayload(1003, ""), 1003, statusResult{1003, ""}},
		{"1007", wstest.ClosePayload(1007, ""), 1007, statusResult{1007, ""}},
		{"1008", wstest.ClosePayload(1008, ""), 1008, statusResult{1008, ""}},
		{"1009", wstest.ClosePayload(1009, ""), 1009, statusResult{1009, ""}},
		{"1010AnsweredWith1000", wstest.ClosePayload(1010, "need ext"), 1000, statusResult{1010, "need ext"}},
		{"1011", wstest.ClosePayload(1011, ""), 1011, statusResult{1011, ""}},
		{"1012", wstest.ClosePayload(1012, ""), 1012, statusResult{1012, ""}},
		{"1013", wstest.ClosePayload(1013, ""), 1013, statusResult{1013, ""}},
		{"1014", wstest.ClosePayload(1014, ""), 1014, statusResult{1014, ""}},
		{"3000", wstest.ClosePayload(3000, "app"), 3000, statusResult{3000, "app"}},
		{"3999", wstest.ClosePayload(3999, ""), 3999, statusResult{3999, ""}},
		{"4000", wstest.ClosePayload(4000, "private"), 4000, statusResult{4000, "private"}},
		{"4999", wstest.ClosePayload(4999, ""), 4999, statusResult{4999, ""}},
		{"UTF8Reason", wstest.ClosePayload(1000, "tschüß 👋"), 1000, statusResult{1000, "tschüß 👋"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts, results := startEcho(t)
			c := dialWS(t, ts)
			c.Send(opClose, tc.payload)
			if reason := c.ExpectClose(tc.wantReply); reason != "" {
				t.Errorf("server's close reply has reason %q, want none", reason)
			}
			res := recv(t, results, "handler to end")
			if !errors.Is(res.Err, websocket.ErrConnClosed) {
				t.Errorf("receive after the client's close returned %v, want ErrConnClosed", res.Err)
			}
			if res.Status != tc.wantStatus {
				t.Errorf("GetStatus = %v, want %v", res.Status, tc.wantStatus)
			}
		})
	}
}

// Anything the client sends after its close frame is ignored.
// Rows: O6, T1.
func TestDataAfterClientCloseIgnored(t *testing.T) {
	tests := []struct {
		name  string
		after []byte
	}{
		{"TextAndPing", wstest.Concat(wstest.FrameBytes(opText, []byte("ignored")), wstest.FrameBytes(opPing, []byte("ignored")))},
		{"ProtocolViolation", wstest.Frame{Fin: true, Op: opText, Payload: []byte("x"), NoMask: true}.Bytes()},
		{"InvalidUTF8", wstest.FrameBytes(opText, []byte("\xff"))},
		{"SecondClose", wstest.FrameBytes(opClose, wstest.ClosePayload(3000, "again"))},
		{"Garbage", []byte{0xff, 0xff, 0xff, 0xff}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts, results := startEcho(t)
			c := dialWS(t, ts)
			c.Write(wstest.Concat(wstest.FrameBytes(opClose, wstest.ClosePayload(1000, "done")), tc.after))
			c.ExpectClose(1000)
			res := recv(t, results, "handler to end")
			if res.Msgs != 0 {
				t.Errorf("handler echoed %d messages sent after the close frame", res.Msgs)
			}
			if res.Status != (statusResult{websocket.StatusOK, "done"}) {
				t.Errorf("GetStatus = %v, want {1000 done}", res.Status)
			}
		})
	}
}

// More bytes behind the client's close frame than one read takes are
// discarded before the server closes TCP, so that the close is a FIN, not
// a reset that could destroy the echoed close frame.
// Rows: O6.
func TestBytesAfterClientCloseDoNotResetTheConnection(t *testing.T) {
	t.Parallel()
	ts, results := startEcho(t)
	c := dialWS(t, ts)
	c.Write(wstest.Concat(wstest.FrameBytes(opClose, wstest.ClosePayload(1000, "done")), bytes.Repeat([]byte{0xff}, 64<<10)))
	c.ExpectClose(1000) // and then EOF, not a reset
	if res := recv(t, results, "handler to end"); res.Status != (statusResult{websocket.StatusOK, "done"}) {
		t.Errorf("GetStatus = %v, want {1000 done}", res.Status)
	}
}

// A close frame in the middle of a fragmented message is answered; the
// handler's reader fails with ErrConnClosed instead of returning io.EOF.
// Rows: O6, O1.
func TestCloseDuringFragmentedMessage(t *testing.T) {
	type result struct {
		data []byte
		err  error
	}
	done := make(chan result, 1)
	ts := startHandler(t, func(c *websocket.Conn) {
		_, r, err := c.ReceiveMessage()
		if err != nil {
			done <- result{nil, err}
			return
		}
		data, err := io.ReadAll(r)
		done <- result{data, err}
	})
	c := dialWS(t, ts)
	c.Write(wstest.FragBytes(false, opText, []byte("unfinished")))
	c.SendClose(1000, "")
	c.ExpectClose(1000)
	res := recv(t, done, "the handler's reader to end")
	if !errors.Is(res.err, websocket.ErrConnClosed) {
		t.Errorf("reader of an unfinished message returned %q, %v; want an error wrapping ErrConnClosed", res.data, res.err)
	}
	st := ts.Conns()[0]
	if code, reason := st.GetStatus(); code != websocket.StatusOK || reason != "" {
		t.Errorf("GetStatus = %d %q, want 1000", code, reason)
	}
}

// A client that sends its close frame and closes TCP at once (without
// waiting for the reply) still completed the close handshake from the
// server's point of view: GetStatus reports its code.
// Rows: O6.
func TestClientCloseThenImmediateTCPClose(t *testing.T) {
	for _, mode := range []string{"FIN", "RST"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			ts, results := startEcho(t)
			c := dialWS(t, ts)
			c.SendClose(1000, "gone")
			if mode == "RST" {
				c.conn.SetLinger(0)
			}
			c.Close()
			res := recv(t, results, "handler")
			if res.Status != (statusResult{websocket.StatusOK, "gone"}) {
				t.Errorf("GetStatus = %v, want {1000 gone}", res.Status)
			}
		})
	}
}

// The client's close is answered while the handler holds an open writer;
// Write and Close on that writer afterwards return ErrConnClosed.
// Rows: O6, T1.
func TestClientCloseWhileWriterOpen(t *testing.T) {
	ts, done := startWriterHolder(t)
	c := dialWS(t, ts)
	c.ReadFrame()
	start := time.Now()
	c.SendClose(1001, "")
	for range 100000 {
		f := c.ReadFrame()
		if f.Op == opClose {
			c.checkClose(f, 1001)
			break
		}
		if f.Op != opCont {
			t.Fatalf("unexpected frame %v", f)
		}
	}
	c.ExpectEOF()
	if d := time.Since(start); d > promptly {
		t.Errorf("close answered after %v while a writer was open", d)
	}
	errs := recv(t, done, "the handler to end")
	if !errors.Is(errs[0], websocket.ErrConnClosed) {
		t.Errorf("writer.Write after the connection closed returned %v, want ErrConnClosed", errs[0])
	}
	if !errors.Is(errs[1], websocket.ErrConnClosed) {
		t.Errorf("writer.Close after the connection closed returned %v, want ErrConnClosed", errs[1])
	}
}

// Server-initiated close: the close frame carries the code and message, the
// client's reply ends the handshake, the server closes TCP, Close returns
// nil and GetStatus reports the client's reply.
// Rows: O10, K4; "Close codes": valid from a server.
func TestServerCloseHandshake(t *testing.T) {
	msg123 := strings.Repeat("m", 123)
	tests := []struct {
		code       websocket.Status
		msg        string
		reply      []byte
		wantStatus statusResult
	}{
		{websocket.StatusOK, "", wstest.ClosePayload(1000, ""), statusResult{1000, ""}},
		{websocket.StatusOK, "done", wstest.ClosePayload(1000, "client reason"), statusResult{1000, "client reason"}},
		{websocket.StatusGoingAway, "restart", wstest.ClosePayload(1001, ""), statusResult{1001, ""}},
		{websocket.StatusProtocolError, "", wstest.ClosePayload(1002, ""), statusResult{1002, ""}},
		{websocket.StatusUnsupportedType, "", wstest.ClosePayload(1003, ""), statusResult{1003, ""}},
		{websocket.StatusInvalidData, "", wstest.ClosePayload(1007, ""), statusResult{1007, ""}},
		{websocket.StatusPolicyViolation, "", wstest.ClosePayload(1008, ""), statusResult{1008, ""}},
		{websocket.StatusTooLarge, "", wstest.ClosePayload(1009, ""), statusResult{1009, ""}},
		{websocket.StatusInternalServerError, "oops", wstest.ClosePayload(1011, ""), statusResult{1011, ""}},
		{1012, "", wstest.ClosePayload(1012, ""), statusResult{1012, ""}},
		{1013, "", wstest.ClosePayload(1013, ""), statusResult{1013, ""}},
		{1014, "", wstest.ClosePayload(1014, ""), statusResult{1014, ""}},
		{3000, "", wstest.ClosePayload(3000, ""), statusResult{3000, ""}},
		{4999, "x", wstest.ClosePayload(4999, "y"), statusResult{4999, "y"}},
		{websocket.StatusOK, msg123, wstest.ClosePayload(1000, ""), statusResult{1000, ""}},
		{websocket.StatusOK, "ünïcödé", nil, statusResult{websocket.StatusNotSent, ""}},
		{websocket.StatusNotSent, "", nil, statusResult{websocket.StatusNotSent, ""}},
		{websocket.StatusNotSent, "", wstest.ClosePayload(1000, ""), statusResult{1000, ""}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%d/%d-%s/reply%d", tc.code, len(tc.msg), tc.msg[:min(len(tc.msg), 8)], len(tc.reply)), func(t *testing.T) {
			t.Parallel()
			ts, done := startCloser(t, tc.code, tc.msg)
			c := dialWS(t, ts)
			want := uint16(tc.code)
			if tc.code == websocket.StatusNotSent {
				want = noCode
			}
			if reason := c.ExpectCloseFrame(want); reason != tc.msg {
				t.Errorf("close reason %q, want %q", reason, tc.msg)
			}
			c.Send(opClose, tc.reply)
			c.ExpectEOF()
			res := recv(t, done, "Close to return")
			if res.err != nil {
				t.Errorf("Close returned %v after a clean close handshake, want nil", res.err)
			}
			if res.status != tc.wantStatus {
				t.Errorf("GetStatus = %v, want %v", res.status, tc.wantStatus)
			}
		})
	}
}

// The client replies to the server's close and closes TCP at once: Close
// still returns nil.
// Rows: O10, K4.
func TestServerCloseClientRepliesAndClosesTCP(t *testing.T) {
	ts, done := startCloser(t, websocket.StatusOK, "")
	c := dialWS(t, ts)
	c.ExpectCloseFrame(1000)
	c.SendClose(1001, "bye")
	c.Close()
	res := recv(t, done, "Close")
	if res.err != nil || res.status != (statusResult{1001, "bye"}) {
		t.Errorf("Close = %v, GetStatus = %v; want nil, {1001 bye}", res.err, res.status)
	}
}

// Invalid Close arguments return an error and leave the connection open.
// Rows: O10, K4; "Argument checks": Close.
func TestCloseArgumentErrorsLeaveConnOpen(t *testing.T) {
	var errOther = errors.New("some non-sentinel error")
	tests := []struct {
		name string
		code websocket.Status
		msg  string
		want error
	}{
		{"Code0", 0, "", websocket.ErrStatusCode},
		{"Code999", 999, "", websocket.ErrStatusCode},
		{"Code1004", 1004, "", websocket.ErrStatusCode},
		{"Code1006", websocket.StatusDropped, "", websocket.ErrStatusCode},
		{"Code1010", 1010, "", websocket.ErrStatusCode},
		{"Code1015", 1015, "", websocket.ErrStatusCode},
		{"Code1016", 1016, "", websocket.ErrStatusCode},
		{"Code2000", 2000, "", websocket.ErrStatusCode},
		{"Code2999", 2999, "", websocket.ErrStatusCode},
		{"Code5000", 5000, "", websocket.ErrStatusCode},
		{"Code65535", 65535, "", websocket.ErrStatusCode},
		{"NotSentWithMessage", websocket.StatusNotSent, "x", websocket.ErrStatusCode},
		{"Message124Bytes", websocket.StatusOK, strings.Repeat("m", 124), websocket.ErrTooLarge},
		{"Message1000Bytes", websocket.StatusGoingAway, strings.Repeat("m", 1000), websocket.ErrTooLarge},
		{"MessageInvalidUTF8", websocket.StatusOK, "bad\xff", errOther},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			type result struct{ closeErr, sendErr, finalErr error }
			done := make(chan result, 1)
			ts := startHandler(t, func(c *websocket.Conn) {
				var r result
				r.closeErr = c.Close(tc.code, tc.msg)
				r.sendErr = c.SendText("still open")
				r.finalErr = c.Close(websocket.StatusOK, "final")
				done <- r
			})
			c := dialWS(t, ts)
			c.ExpectText("still open")
			if reason := c.ExpectCloseFrame(1000); reason != "final" {
				t.Errorf("close reason %q, want final", reason)
			}
			c.SendClose(1000, "")
			c.ExpectEOF()
			r := recv(t, done, "handler")
			if tc.want == errOther {
				if r.closeErr == nil || errors.Is(r.closeErr, websocket.ErrConnClosed) || errors.Is(r.closeErr, websocket.ErrStatusCode) || errors.Is(r.closeErr, websocket.ErrTooLarge) {
					t.Errorf("Close(%d, %q) = %v, want a non-sentinel error", tc.code, tc.msg, r.closeErr)
				}
			} else if !errors.Is(r.closeErr, tc.want) {
				t.Errorf("Close(%d, %q) = %v, want %v", tc.code, tc.msg, r.closeErr, tc.want)
			}
			if r.sendErr != nil {
				t.Errorf("send after the refused Close returned %v, want nil", r.sendErr)
			}
			if r.finalErr != nil {
				t.Errorf("the real Close returned %v, want nil", r.finalErr)
			}
		})
	}
}

// After the server's close frame nothing more is sent: a ping from the
// client while the server waits for its close is not answered.
// Rows: K1, K2, K3, K4.
func TestNothingSentAfterServerCloseFrame(t *testing.T) {
	closeErr := make(chan error, 1)
	ts := startHandler(t, func(c *websocket.Conn) {
		closeErr <- c.Close(websocket.StatusOK, "")
	})
	c := dialWS(t, ts)
	c.ExpectCloseFrame(1000)
	c.Send(opPing, []byte("late"))
	c.Send(opPong, []byte("late pong"))
	c.SendText("late data")
	c.Write(wstest.FragBytes(false, opBinary, []byte("late fragment")))
	c.ExpectNothing(50 * time.Millisecond)
	c.SendClose(1000, "")
	c.ExpectEOF()
	if err := recv(t, closeErr, "Close"); err != nil {
		t.Errorf("Close returned %v, want nil", err)
	}
}

// Data frames the client keeps sending while the server waits for its
// close frame do not disturb the close handshake.
// Rows: K1, K2, K4.
func TestServerCloseWhileClientStillSending(t *testing.T) {
	ts, done := startCloser(t, websocket.StatusOK, "stop")
	c := dialWS(t, ts)
	c.ExpectCloseFrame(1000)
	c.SendText("whole message")
	c.Send(opPing, []byte("late ping"))
	for i := range 20 {
		op := opCont
		if i == 0 {
			op = opText
		}
		c.Write(wstest.FragBytes(false, op, []byte(fmt.Sprintf("chunk %d ", i))))
	}
	c.Write(wstest.FragBytes(true, opCont, []byte("end")))
	c.SendClose(1000, "ok")
	c.ExpectEOF()
	res := recv(t, done, "Close")
	if res.err != nil || res.status != (statusResult{1000, "ok"}) {
		t.Errorf("Close = %v, GetStatus = %v; want nil, {1000 ok}", res.err, res.status)
	}
}

// Sends while the server's Close waits for the client's reply return
// ErrConnClosed and put nothing on the wire.
// Rows: K9, K4.
func TestSendWhileClosingReturnsErrConnClosed(t *testing.T) {
	conns := make(chan *websocket.Conn, 1)
	closeErr := make(chan error, 1)
	ts := startHandler(t, func(c *websocket.Conn) {
		conns <- c
		closeErr <- c.Close(websocket.StatusOK, "closing")
	})
	c := dialWS(t, ts)
	conn := recv(t, conns, "Handle")
	c.ExpectCloseFrame(1000)
	for _, k := range sendKinds {
		if err := k.send(conn); !errors.Is(err, websocket.ErrConnClosed) {
			t.Errorf("%s while closing returned %v, want ErrConnClosed", k.name, err)
		}
	}
	c.ExpectNothing(20 * time.Millisecond)
	c.SendClose(1000, "")
	c.ExpectEOF() // nothing but EOF after the close frame
	if err := recv(t, closeErr, "Close"); err != nil {
		t.Errorf("Close returned %v, want nil", err)
	}
}

// A receive blocked while the server closes returns ErrConnClosed once the
// connection ends.
// Rows: O10, K4.
func TestBlockedReceiveEndsOnServerClose(t *testing.T) {
	recvErr := make(chan error, 1)
	closeErr := make(chan error, 1)
	ts := startHandler(t, func(c *websocket.Conn) {
		go func() {
			_, err := c.ReceiveText(100)
			recvErr <- err
		}()
		time.Sleep(20 * time.Millisecond) // let the receive block
		closeErr <- c.Close(websocket.StatusOK, "")
	})
	c := dialWS(t, ts)
	c.ExpectCloseFrame(1000)
	c.SendClose(1000, "")
	c.ExpectEOF()
	if err := recv(t, closeErr, "Close"); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := recv(t, recvErr, "the blocked receive"); !errors.Is(err, websocket.ErrConnClosed) {
		t.Errorf("blocked receive returned %v, want ErrConnClosed", err)
	}
}

// A protocol error by the client while the server waits for its close
// frame: no second close frame, the connection is dropped, Close reports an
// error wrapping ErrConnClosed.
// Rows: K5.
func TestProtocolErrorWhileServerClosing(t *testing.T) {
	ts, done := startCloser(t, websocket.StatusOK, "")
	c := dialWS(t, ts)
	c.ExpectCloseFrame(1000)
	c.Write(wstest.Frame{Fin: true, Op: opBinary, Payload: []byte("x"), NoMask: true}.Bytes())
	c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	if b, err := c.br.ReadByte(); err == nil {
		t.Fatalf("server sent more after its close frame: %#x", b)
	} else if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("want the TCP connection closed, got %v", err)
	}
	res := recv(t, done, "Close")
	if !errors.Is(res.err, websocket.ErrConnClosed) {
		t.Errorf("Close returned %v, want an error wrapping ErrConnClosed", res.err)
	}
	if res.status != (statusResult{websocket.StatusDropped, ""}) {
		t.Errorf("GetStatus = %v, want {1006 \"\"}", res.status)
	}
}

// If the client drops TCP instead of replying, Close returns promptly with
// an error wrapping ErrConnClosed.
// Rows: K6.
func TestServerCloseClientDropsTCP(t *testing.T) {
	ts, done := startCloser(t, websocket.StatusOK, "")
	c := dialWS(t, ts)
	c.ExpectCloseFrame(1000)
	start := time.Now()
	c.Close()
	res := recv(t, done, "Close to return")
	if d := time.Since(start); d > promptly {
		t.Errorf("Close returned %v after the client dropped TCP", d)
	}
	if !errors.Is(res.err, websocket.ErrConnClosed) {
		t.Errorf("Close returned %v, want an error wrapping ErrConnClosed", res.err)
	}
	if res.status != (statusResult{websocket.StatusDropped, ""}) {
		t.Errorf("GetStatus = %v, want {1006 \"\"}", res.status)
	}
}

// Close waits about 3 s for the client's close frame, then closes TCP and
// reports an error wrapping ErrConnClosed; the status is dropped.
// Rows: K8, K1, K2.
func TestServerCloseTimesOutWithoutClientClose(t *testing.T) {
	t.Parallel()
	ts, done := startCloser(t, websocket.StatusGoingAway, "bye")
	c := dialWS(t, ts)
	c.ExpectCloseFrame(1001)
	// The client keeps sending data but never a close frame: it is ignored.
	c.SendText("ignored")
	c.Send(opPing, []byte("ignored"))
	c.conn.SetReadDeadline(time.Now().Add(8 * time.Second))
	b, err := c.br.ReadByte()
	if err == nil {
		t.Fatalf("server sent more after its close frame: %#x", b)
	}
	if !errors.Is(err, io.EOF) {
		t.Fatalf("want TCP EOF after the close timeout, got %v", err)
	}
	res := recv(t, done, "Close to return")
	if !errors.Is(res.err, websocket.ErrConnClosed) {
		t.Errorf("Close without the client's reply returned %v, want an error wrapping ErrConnClosed", res.err)
	}
	if res.elapsed < 2500*time.Millisecond || res.elapsed > 6*time.Second {
		t.Errorf("Close returned after %v, want about 3 s", res.elapsed)
	}
	if res.status != (statusResult{websocket.StatusDropped, ""}) {
		t.Errorf("GetStatus = %v, want {1006 \"\"}", res.status)
	}
}

// Handler.CloseTimeout replaces the 3 s default: Close gives up on a client
// that never answers after that long.
// Rows: K8.
func TestCloseTimeoutOption(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	done := make(chan handlerResult, 1)
	ts := startServer(t, &websocket.Handler{CloseTimeout: timeout, Handle: func(c *websocket.Conn) {
		start := time.Now()
		err := c.Close(websocket.StatusGoingAway, "bye")
		elapsed := time.Since(start)
		code, reason := c.GetStatus()
		done <- handlerResult{err, elapsed, statusResult{code, reason}}
	}})
	c := dialWS(t, ts)
	c.ExpectCloseFrame(1001)
	c.ExpectEOF()
	res := recv(t, done, "Close to return")
	if !errors.Is(res.err, websocket.ErrConnClosed) {
		t.Errorf("Close without the client's reply returned %v, want an error wrapping ErrConnClosed", res.err)
	}
	if res.elapsed < timeout || res.elapsed > 2500*time.Millisecond {
		t.Errorf("Close returned after %v, want about %v (not the 3 s default)", res.elapsed, timeout)
	}
	if res.status != (statusResult{websocket.StatusDropped, ""}) {
		t.Errorf("GetStatus = %v, want {1006 \"\"}", res.status)
	}
}

// Close is bounded even when the client stopped reading and a send is
// blocked on a full TCP buffer: the blocked send fails with ErrConnClosed
// and Close returns within the close timeout (plus slack).
// Rows: O10, K8.
func TestCloseBoundedWhenClientDoesNotRead(t *testing.T) {
	t.Parallel()
	sendErr := make(chan error, 1)
	type result struct {
		err     error
		elapsed time.Duration
	}
	closed := make(chan result, 1)
	ts := startHandler(t, func(c *websocket.Conn) {
		go func() {
			big := make([]byte, 1<<20)
			for range 256 {
				if err := c.SendBinary(big); err != nil {
					sendErr <- err
					return
				}
			}
			sendErr <- nil
		}()
		time.Sleep(200 * time.Millisecond) // the send blocks on the full socket
		start := time.Now()
		err := c.Close(websocket.StatusGoingAway, "")
		closed <- result{err, time.Since(start)}
	})
	dialWS(t, ts) // never reads
	var res result
	select {
	case res = <-closed:
	case <-time.After(10 * time.Second):
		t.Fatalf("Close did not return within 10 s while the client does not read")
	}
	if !errors.Is(res.err, websocket.ErrConnClosed) {
		t.Errorf("Close returned %v, want an error wrapping ErrConnClosed", res.err)
	}
	if err := recv(t, sendErr, "the blocked send"); !errors.Is(err, websocket.ErrConnClosed) {
		t.Errorf("blocked send returned %v, want ErrConnClosed", err)
	}
}

// Close called while a SendMessage writer is open: whatever the order, no
// data frame follows the close frame, nothing deadlocks, and the calls
// return nil or ErrConnClosed.
// Rows: O10, K4.
func TestCloseWhileWriterOpen(t *testing.T) {
	type result struct{ write, wclose, close error }
	done := make(chan result, 1)
	ts := startHandler(t, func(c *websocket.Conn) {
		var r result
		w, err := c.SendMessage(websocket.Text)
		if err != nil {
			r.write = err
			done <- r
			return
		}
		w.Write([]byte("abc"))
		closeDone := make(chan error, 1)
		go func() { closeDone <- c.Close(websocket.StatusOK, "bye") }()
		time.Sleep(50 * time.Millisecond)
		_, r.write = w.Write([]byte("def"))
		r.wclose = w.Close()
		select {
		case r.close = <-closeDone:
		case <-time.After(8 * time.Second):
			r.close = errors.New("Close did not return within 8 s")
		}
		done <- r
	})
	c := dialWS(t, ts)
	var data []byte
	for range 100 {
		f := c.ReadFrame()
		if f.Op == opClose {
			c.checkClose(f, 1000)
			break
		}
		data = append(data, f.Payload...)
	}
	c.ExpectNothing(100 * time.Millisecond) // no data frame after the close frame
	c.SendClose(1000, "")
	c.ExpectEOF()
	r := recv(t, done, "handler")
	for name, err := range map[string]error{"Write": r.write, "writer Close": r.wclose, "Close": r.close} {
		if err != nil && !errors.Is(err, websocket.ErrConnClosed) {
			t.Errorf("%s returned %v, want nil or ErrConnClosed", name, err)
		}
	}
	if r.write == nil && r.wclose == nil && string(data) != "abcdef" {
		t.Errorf("writer succeeded but the client got %q before the close frame", data)
	}
}

// Server and client send close frames at the same time: exactly one close
// frame from the server, TCP closed, status is the client's close.
// Rows: O10, O6, K4.
func TestCrossingCloseFrames(t *testing.T) {
	closeErr := make(chan error, 1)
	status := make(chan statusResult, 1)
	ts := startHandler(t, func(c *websocket.Conn) {
		closeErr <- c.Close(websocket.StatusGoingAway, "server")
		code, reason := c.GetStatus()
		status <- statusResult{code, reason}
	})
	c := dialWS(t, ts)
	c.SendClose(1000, "client") // without waiting for the server's close
	f := c.ReadFrame()
	if f.Op != opClose {
		t.Fatalf("got %v, want a close frame", f)
	}
	c.ExpectEOF()
	if err := recv(t, closeErr, "Close"); err != nil && !errors.Is(err, websocket.ErrConnClosed) {
		t.Errorf("Close returned %v, want nil or ErrConnClosed", err)
	}
	if st := recv(t, status, "GetStatus"); st != (statusResult{1000, "client"}) {
		t.Errorf("GetStatus = %v, want {1000 client}", st)
	}
}

// GetStatus blocks while the connection is open.
// Rows: O5, O6.
func TestGetStatusBlocksUntilClosed(t *testing.T) {
	ts, conns, release := startHeldConn(t)
	defer release()
	c := dialWS(t, ts)
	conn := recv(t, conns, "Handle")
	st := getStatusAsync(conn)
	notYet(t, st, 100*time.Millisecond, "GetStatus on an open connection")
	c.Send(opPing, []byte("still open"))
	c.ExpectPong([]byte("still open"))
	notYet(t, st, 20*time.Millisecond, "GetStatus on an open connection")
	c.SendClose(3001, "over")
	c.ExpectClose(3001)
	if got := recv(t, st, "GetStatus"); got != (statusResult{3001, "over"}) {
		t.Errorf("GetStatus = %v, want {3001 over}", got)
	}
}

// A second Close, or Close after the client closed/dropped, returns
// ErrConnClosed.
// Rows: T1, T3.
func TestSecondCloseReturnsErrConnClosed(t *testing.T) {
	for _, how := range []string{"AfterOwnClose", "AfterClientClose", "AfterClientDrop", "AfterProtocolError", "AfterTimedOutClose"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			done := make(chan error, 1)
			ts := startHandler(t, func(c *websocket.Conn) {
				switch how {
				case "AfterOwnClose", "AfterTimedOutClose":
					c.Close(websocket.StatusOK, "")
				default:
					c.GetStatus()
				}
				done <- c.Close(websocket.StatusOK, "again")
			})
			c := dialWS(t, ts)
			switch how {
			case "AfterOwnClose":
				c.ExpectCloseFrame(1000)
				c.SendClose(1000, "")
				c.ExpectEOF()
			case "AfterTimedOutClose":
				c.ExpectCloseFrame(1000)
				c.conn.SetReadDeadline(time.Now().Add(8 * time.Second))
				if _, err := c.br.ReadByte(); !errors.Is(err, io.EOF) {
					t.Fatalf("want EOF after the close timeout, got %v", err)
				}
			case "AfterClientClose":
				c.SendClose(1000, "")
				c.ExpectClose(1000)
			case "AfterClientDrop":
				c.Close()
			case "AfterProtocolError":
				c.Write(wstest.FrameBytes(0x3, nil))
				c.ExpectClose(1002)
			}
			if err := recv(t, done, "second Close"); !errors.Is(err, websocket.ErrConnClosed) {
				t.Errorf("second Close returned %v, want ErrConnClosed", err)
			}
		})
	}
}

// Every send after the connection ended returns ErrConnClosed.
// Rows: T1, T3.
func TestSendAfterCloseReturnsErrConnClosed(t *testing.T) {
	for _, how := range []string{"ServerClose", "ClientClose", "ClientDrop", "ProtocolError"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			done := make(chan []error, 1)
			ts := startHandler(t, func(c *websocket.Conn) {
				if how == "ServerClose" {
					c.Close(websocket.StatusOK, "")
				} else {
					c.GetStatus()
				}
				var errs []error
				for _, k := range sendKinds {
					errs = append(errs, k.send(c))
				}
				done <- errs
			})
			c := dialWS(t, ts)
			switch how {
			case "ServerClose":
				c.ExpectCloseFrame(1000)
				c.SendClose(1000, "")
				c.ExpectEOF()
			case "ClientClose":
				c.SendClose(1000, "")
				c.ExpectClose(1000)
			case "ClientDrop":
				c.Close()
			case "ProtocolError":
				c.Write(wstest.Frame{Fin: true, Rsv: 4, Op: opText}.Bytes())
				c.ExpectClose(1002)
			}
			for i, err := range recv(t, done, "sends") {
				if !errors.Is(err, websocket.ErrConnClosed) {
					t.Errorf("%s after close returned %v, want ErrConnClosed", sendKinds[i].name, err)
				}
			}
		})
	}
}

// Receives after the connection ended return ErrConnClosed.
// Rows: T1, T2.
func TestReceiveAfterCloseReturnsErrConnClosed(t *testing.T) {
	for _, how := range []string{"ClientClose", "ClientDrop", "ServerClose", "ProtocolError"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			errs := make(chan []error, 1)
			ts := startHandler(t, func(c *websocket.Conn) {
				if how == "ServerClose" {
					c.Close(websocket.StatusOK, "")
				} else {
					c.GetStatus()
				}
				_, _, e1 := c.ReceiveMessage()
				_, e2 := c.ReceiveText(10)
				_, e3 := c.ReceiveBinary(make([]byte, 10))
				errs <- []error{e1, e2, e3}
			})
			c := dialWS(t, ts)
			switch how {
			case "ClientClose":
				c.SendClose(1000, "")
				c.ExpectClose(1000)
			case "ClientDrop":
				c.Close()
			case "ServerClose":
				c.ExpectCloseFrame(1000)
				c.SendClose(1000, "")
				c.ExpectEOF()
			case "ProtocolError":
				c.Write(wstest.Frame{Fin: true, Op: opText, NoMask: true}.Bytes())
				c.ExpectClose(1002)
			}
			for i, err := range recv(t, errs, "receive results") {
				if !errors.Is(err, websocket.ErrConnClosed) {
					t.Errorf("receive %d after close returned %v, want ErrConnClosed", i, err)
				}
			}
		})
	}
}

// The Conn stays usable after Handle returns; its owner closes it.
// Rows: O3, O4, O5, O10, K4.
func TestConnUsableAfterHandleReturns(t *testing.T) {
	conns := make(chan *websocket.Conn, 1)
	returned := make(chan struct{})
	ts := startHandler(t, func(c *websocket.Conn) {
		conns <- c
		close(returned)
	})
	c := dialWS(t, ts)
	conn := recv(t, conns, "Handle")
	recv(t, returned, "Handle to return")
	if err := conn.SendText("after handle"); err != nil {
		t.Fatalf("SendText after Handle returned: %v", err)
	}
	c.ExpectText("after handle")
	c.Send(opPing, []byte("p"))
	c.ExpectPong([]byte("p"))
	c.SendText("to owner")
	if s, err := conn.ReceiveText(100); s != "to owner" || err != nil {
		t.Fatalf("ReceiveText after Handle returned: %q %v", s, err)
	}
	closeErr := make(chan error, 1)
	go func() { closeErr <- conn.Close(websocket.StatusOK, "owner") }()
	if r := c.ExpectCloseFrame(1000); r != "owner" {
		t.Errorf("reason %q", r)
	}
	c.SendClose(1000, "")
	c.ExpectEOF()
	if err := recv(t, closeErr, "Close"); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// Receives while the server's Close waits for the client's answer return
// ErrConnClosed at once, and a message the client sent after the server's
// close frame is not handed out: it is discarded.
// Rows: K10, K1, K4.
func TestReceiveWhileClosingReturnsErrConnClosed(t *testing.T) {
	conns := make(chan *websocket.Conn, 1)
	closeErr := make(chan error, 1)
	ts := startHandler(t, func(c *websocket.Conn) {
		conns <- c
		closeErr <- c.Close(websocket.StatusOK, "closing")
	})
	c := dialWS(t, ts)
	conn := recv(t, conns, "Handle")
	c.ExpectCloseFrame(1000)
	c.SendText("after the server's close")
	time.Sleep(20 * time.Millisecond) // let the text arrive before the receives
	_, _, e1 := conn.ReceiveMessage()
	_, e2 := conn.ReceiveText(100)
	_, e3 := conn.ReceiveBinary(make([]byte, 100))
	for i, err := range []error{e1, e2, e3} {
		if !errors.Is(err, websocket.ErrConnClosed) {
			t.Errorf("receive %d while closing returned %v, want ErrConnClosed", i, err)
		}
	}
	c.SendClose(1000, "")
	c.ExpectEOF()
	if err := recv(t, closeErr, "Close"); err != nil {
		t.Errorf("Close returned %v, want nil", err)
	}
}

// Close after the client reset TCP behind a message the handler has not
// read: nobody reads past that message, so the reset is not seen until
// Close writes its close frame, and that write fails (K7; should the write
// pass, the reader Close starts meets the reset: K6). Close returns at
// once with an error wrapping ErrConnClosed, and the connection is
// dropped. (Close's error says "no close frame" either way, so the test
// cannot tell the two rows apart.)
// Rows: K7, K6.
func TestCloseFrameWriteFailsAfterReset(t *testing.T) {
	t.Parallel()
	goOn := make(chan struct{})
	done := make(chan handlerResult, 1)
	ts := startHandler(t, func(c *websocket.Conn) {
		<-goOn
		start := time.Now()
		err := c.Close(websocket.StatusGoingAway, "")
		elapsed := time.Since(start)
		code, reason := c.GetStatus()
		done <- handlerResult{err, elapsed, statusResult{code, reason}}
	})
	c := dialWS(t, ts)
	c.SendText("never read")
	time.Sleep(50 * time.Millisecond) // the message arrives: the reader stops before it
	c.conn.SetLinger(0)
	c.Close() // RST
	time.Sleep(100 * time.Millisecond)
	close(goOn)
	r := recv(t, done, "Close to return")
	if !errors.Is(r.err, websocket.ErrConnClosed) || r.err == websocket.ErrConnClosed {
		t.Errorf("Close returned %v, want an error wrapping ErrConnClosed", r.err)
	}
	if r.elapsed > promptly {
		t.Errorf("Close returned after %v", r.elapsed)
	}
	if r.status != (statusResult{websocket.StatusDropped, ""}) {
		t.Errorf("GetStatus = %v, want {1006 \"\"}", r.status)
	}
}

// The close timeout runs only after a close frame was sent: a connection
// that stays open far longer than Handler.CloseTimeout, a Close refused for
// its arguments included, is not ended by it.
// Rows: O11; "Argument checks".
func TestCloseTimeoutNotRunningWhileOpen(t *testing.T) {
	t.Parallel()
	const closeTimeout = 100 * time.Millisecond
	refused := make(chan error, 1)
	ts := startServer(t, &websocket.Handler{CloseTimeout: closeTimeout, Handle: func(c *websocket.Conn) {
		refused <- c.Close(1004, "") // refused before the state machine: nothing sent
		for {
			s, err := c.ReceiveText(100)
			if err != nil {
				return
			}
			if c.SendText(s) != nil {
				return
			}
		}
	}})
	c := dialWS(t, ts)
	if err := recv(t, refused, "the refused Close"); !errors.Is(err, websocket.ErrStatusCode) {
		t.Fatalf("Close(1004) returned %v, want ErrStatusCode", err)
	}
	time.Sleep(5 * closeTimeout)
	c.SendText("still open")
	c.ExpectText("still open")
	c.SendClose(1000, "")
	c.ExpectClose(1000)
}

// A client that breaks the protocol while we are closing (K5) is dropped
// at once, but without a reset: bytes it sent after its last frame that
// we read, after our last read of the socket, are read and dropped
// before the close, or they would turn it into a reset that destroys
// what we sent last (our close frame, here with 256 KiB before it, still
// on its way when the client starts reading).
// Rows: K5.
func TestViolationWhileClosingIsNotAReset(t *testing.T) {
	t.Parallel()
	closeNow := make(chan struct{})
	status := make(chan websocket.Status, 1)
	big := make([]byte, 256<<10)
	ts := startHandler(t, func(c *websocket.Conn) {
		c.SendBinary(big)
		<-closeNow
		c.Close(websocket.StatusOK, "")
		code, _ := c.GetStatus()
		status <- code
	})
	c := dialWS(t, ts)
	defer c.Close()
	// A message the handler never receives, then an invalid close frame:
	// the background reader takes them in and stops at the message.
	c.Write(wstest.Concat(wstest.FrameBytes(opBinary, []byte("unread")), wstest.FrameBytes(opClose, []byte{0x00, 0x9a})))
	time.Sleep(100 * time.Millisecond)
	// More frames, which nobody reads until Close makes the reader go on.
	c.Write(wstest.FrameBytes(opText, []byte("after the close frame")))
	time.Sleep(100 * time.Millisecond)
	close(closeNow)
	if code := recv(t, status, "the end of the connection"); code != websocket.StatusDropped {
		t.Fatalf("GetStatus %d, want StatusDropped (K5)", code)
	}
	c.ExpectBinary(big)
	c.ExpectCloseFrame(1000)
	c.ExpectEOF()
}
