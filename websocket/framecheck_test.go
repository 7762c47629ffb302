package websocket_test

// STATE_MACHINE.md, "Frame checks": every rule a client's frame must
// pass, through real TCP with the raw client. A frame that breaks one
// fails the connection (row O7): the close frame has the rule's code, TCP
// ends, and the handler learns why.

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/wsmachine/wsmachine/websocket"

	"github.com/wsmachine/wsmachine/websocket/internal/wstest"
)

// checkDropped checks what the echo handler reported for a connection that
// the server failed (protocol error, invalid data, client gone).
func checkDropped(t *testing.T, res echoResult) {
	t.Helper()
	if !errors.Is(res.Err, websocket.ErrConnClosed) {
		t.Errorf("handler's receive ended with %v, want an error wrapping ErrConnClosed", res.Err)
	}
	if res.Status != (statusResult{websocket.StatusDropped, ""}) {
		t.Errorf("GetStatus = %v, want {%d \"\"}", res.Status, websocket.StatusDropped)
	}
}

type violation struct {
	name  string
	send  []byte
	echo  []string // text messages echoed before the failure
	code  uint16
	split bool // also send byte by byte
}

func protocolViolations() []violation {
	vs := []violation{
		{name: "UnmaskedText", send: wstest.Frame{Fin: true, Op: opText, Payload: []byte("hi"), NoMask: true}.Bytes()},
		{name: "UnmaskedBinary", send: wstest.Frame{Fin: true, Op: opBinary, Payload: []byte{1}, NoMask: true}.Bytes()},
		{name: "UnmaskedEmptyText", send: wstest.Frame{Fin: true, Op: opText, NoMask: true}.Bytes()},
		{name: "UnmaskedPing", send: wstest.Frame{Fin: true, Op: opPing, Payload: []byte("p"), NoMask: true}.Bytes()},
		{name: "UnmaskedClose", send: wstest.Frame{Fin: true, Op: opClose, Payload: wstest.ClosePayload(1000, ""), NoMask: true}.Bytes()},
		{name: "UnmaskedContinuation", send: wstest.Concat(wstest.FragBytes(false, opText, []byte("a")), wstest.Frame{Fin: true, Op: opCont, Payload: []byte("b"), NoMask: true}.Bytes())},
		{name: "RSV1Text", send: wstest.Frame{Fin: true, Rsv: 4, Op: opText, Payload: []byte("x")}.Bytes()},
		{name: "RSV2Text", send: wstest.Frame{Fin: true, Rsv: 2, Op: opText, Payload: []byte("x")}.Bytes()},
		{name: "RSV3Text", send: wstest.Frame{Fin: true, Rsv: 1, Op: opText, Payload: []byte("x")}.Bytes()},
		{name: "AllRSVBinary", send: wstest.Frame{Fin: true, Rsv: 7, Op: opBinary, Payload: []byte("x")}.Bytes()},
		{name: "RSV1Ping", send: wstest.Frame{Fin: true, Rsv: 4, Op: opPing}.Bytes()},
		{name: "RSV1Close", send: wstest.Frame{Fin: true, Rsv: 4, Op: opClose, Payload: wstest.ClosePayload(1000, "")}.Bytes()},
		{name: "RSV1OnContinuation", send: wstest.Concat(wstest.FragBytes(false, opText, []byte("a")), wstest.Frame{Fin: true, Rsv: 4, Op: opCont, Payload: []byte("b")}.Bytes())},
		{name: "FragmentedPing", send: wstest.Frame{Fin: false, Op: opPing, Payload: []byte("p")}.Bytes()},
		{name: "FragmentedPong", send: wstest.Frame{Fin: false, Op: opPong, Payload: []byte("p")}.Bytes()},
		{name: "FragmentedClose", send: wstest.Frame{Fin: false, Op: opClose, Payload: wstest.ClosePayload(1000, "")}.Bytes()},
		{name: "PingLen126", send: wstest.FrameBytes(opPing, bytes.Repeat([]byte("p"), 126))},
		{name: "PongLen126", send: wstest.FrameBytes(opPong, bytes.Repeat([]byte("p"), 126))},
		{name: "CloseLen126", send: wstest.FrameBytes(opClose, wstest.ClosePayload(1000, strings.Repeat("r", 124)))},
		{name: "PingLen16BitForm", send: wstest.Frame{Fin: true, Op: opPing, Payload: []byte("p"), LenForm: 16}.Bytes()},
		{name: "ContinuationWithoutStart", send: wstest.FrameBytes(opCont, []byte("a"))},
		{name: "NonFinalContinuationWithoutStart", send: wstest.FragBytes(false, opCont, []byte("a"))},
		{name: "ContinuationAfterFinishedMessage", send: wstest.Concat(wstest.FrameBytes(opText, []byte("a")), wstest.FrameBytes(opCont, []byte("b"))), echo: []string{"a"}},
		{name: "TextInsideFragmentedText", send: wstest.Concat(wstest.FragBytes(false, opText, []byte("a")), wstest.FrameBytes(opText, []byte("b")))},
		{name: "BinaryInsideFragmentedText", send: wstest.Concat(wstest.FragBytes(false, opText, []byte("a")), wstest.FrameBytes(opBinary, []byte("b")))},
		{name: "TextInsideFragmentedBinary", send: wstest.Concat(wstest.FragBytes(false, opBinary, []byte("a")), wstest.FrameBytes(opText, []byte("b")))},
		{name: "NonFinalTextInsideFragmentedText", send: wstest.Concat(wstest.FragBytes(false, opText, []byte("a")), wstest.FragBytes(false, opText, []byte("b")))},
		{name: "Length64TopBitSet", send: wstest.Frame{Fin: true, Op: opBinary, Payload: []byte("abcde"), LenForm: 64, DeclaredLen: u64(1<<63 | 5)}.Bytes()},
		{name: "Length64AllOnes", send: wstest.Frame{Fin: true, Op: opBinary, Payload: []byte("abcde"), LenForm: 64, DeclaredLen: u64(^uint64(0))}.Bytes()},
		{name: "NonMinimal16For0", send: wstest.Frame{Fin: true, Op: opText, LenForm: 16}.Bytes(), split: true},
		{name: "NonMinimal16For5", send: wstest.Frame{Fin: true, Op: opText, Payload: []byte("hello"), LenForm: 16}.Bytes(), split: true},
		{name: "NonMinimal16For125", send: wstest.Frame{Fin: true, Op: opBinary, Payload: make([]byte, 125), LenForm: 16}.Bytes()},
		{name: "NonMinimal64For5", send: wstest.Frame{Fin: true, Op: opText, Payload: []byte("hello"), LenForm: 64}.Bytes(), split: true},
		{name: "NonMinimal64For200", send: wstest.Frame{Fin: true, Op: opBinary, Payload: make([]byte, 200), LenForm: 64}.Bytes()},
		{name: "NonMinimal64For65535", send: wstest.Frame{Fin: true, Op: opBinary, Payload: make([]byte, 65535), LenForm: 64}.Bytes()},
		{name: "NonMinimalContinuation", send: wstest.Concat(wstest.FragBytes(false, opText, []byte("a")), wstest.Frame{Fin: true, Op: opCont, Payload: []byte("b"), LenForm: 16}.Bytes())},
		{name: "ClosePayload1Byte", send: wstest.FrameBytes(opClose, []byte{0x03})},
		{name: "ViolationAfterValidMessages", send: wstest.Concat(wstest.FrameBytes(opText, []byte("one")), wstest.FrameBytes(opText, []byte("two")), wstest.Frame{Fin: true, Op: opText, Payload: []byte("3"), NoMask: true}.Bytes()), echo: []string{"one", "two"}},
	}
	for _, op := range []byte{3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF} {
		vs = append(vs, violation{name: fmt.Sprintf("ReservedOpcode%X", op), send: wstest.FrameBytes(op, []byte("x"))})
	}
	vs = append(vs, violation{name: "ReservedOpcodeInsideFragmentedMessage", send: wstest.Concat(wstest.FragBytes(false, opText, []byte("a")), wstest.FrameBytes(0x3, nil))})
	for _, code := range []uint16{0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		vs = append(vs, violation{name: fmt.Sprintf("CloseCode%d", code), send: wstest.FrameBytes(opClose, wstest.ClosePayload(code, ""))})
	}
	for i := range vs {
		if vs[i].code == 0 {
			vs[i].code = 1002
		}
	}
	return vs
}

func invalidDataViolations() []violation {
	return []violation{
		{name: "InvalidByteFF", send: wstest.FrameBytes(opText, []byte("abc\xff"))},
		{name: "ContinuationByteAlone", send: wstest.FrameBytes(opText, []byte("\x80"))},
		{name: "Overlong2Byte", send: wstest.FrameBytes(opText, []byte("\xc0\xaf"))},
		{name: "Overlong3Byte", send: wstest.FrameBytes(opText, []byte("\xe0\x80\xaf"))},
		{name: "Overlong4Byte", send: wstest.FrameBytes(opText, []byte("\xf0\x80\x80\xaf"))},
		{name: "Surrogate", send: wstest.FrameBytes(opText, []byte("\xed\xa0\x80"))},
		{name: "AboveU10FFFF", send: wstest.FrameBytes(opText, []byte("\xf4\x90\x80\x80"))},
		{name: "ByteF5", send: wstest.FrameBytes(opText, []byte("\xf5\x80\x80\x80"))},
		{name: "TruncatedAtFin", send: wstest.FrameBytes(opText, []byte("a\xe2\x82"))},
		{name: "InvalidAcrossFragments", send: wstest.Concat(wstest.FragBytes(false, opText, []byte("\xce")), wstest.FrameBytes(opCont, []byte("\xff")))},
		{name: "TruncatedAcrossFragmentsAtFin", send: wstest.Concat(wstest.FragBytes(false, opText, []byte("a")), wstest.FrameBytes(opCont, []byte("\xe2\x82")))},
		{name: "TruncatedBeforeEmptyFinalFragment", send: wstest.Concat(wstest.FragBytes(false, opText, []byte("\xe2\x82")), wstest.FrameBytes(opCont, nil))},
		{name: "InvalidAfterValidMessage", send: wstest.Concat(wstest.FrameBytes(opText, []byte("fine")), wstest.FrameBytes(opText, []byte("\xff"))), echo: []string{"fine"}},
		{name: "InvalidInLongMessage", send: wstest.FrameBytes(opText, append(bytes.Repeat([]byte("a"), 70000), 0xff))},
		{name: "FiveByteSequence", send: wstest.FrameBytes(opText, []byte("\xf8\x88\x80\x80\x80"))},
		{name: "ByteFE", send: wstest.FrameBytes(opText, []byte("\xfe"))},
		{name: "MissingContinuationByte", send: wstest.FrameBytes(opText, []byte("\xe2\x28\xa1"))},
		{name: "InvalidInFragmentedCloseCase", send: wstest.Concat(wstest.FragBytes(false, opText, []byte("ok")), wstest.FrameBytes(opClose, wstest.ClosePayload(1000, "\xc0\xaf")))},
		{name: "CloseReasonInvalid", send: wstest.FrameBytes(opClose, wstest.ClosePayload(1000, "bad\xff"))},
		{name: "CloseReasonTruncated", send: wstest.FrameBytes(opClose, wstest.ClosePayload(1001, "\xe2\x82"))},
	}
}

func runViolation(t *testing.T, v violation, code uint16, split bool) {
	ts, results := startEcho(t)
	c := dialWS(t, ts)
	if split {
		c.WriteChunks(v.send, 1)
	} else {
		c.Write(v.send)
	}
	for _, e := range v.echo {
		c.ExpectText(e)
	}
	c.ExpectClose(code)
	res := recv(t, results, "handler to end")
	checkDropped(t, res)
	if res.Msgs != len(v.echo) {
		t.Errorf("handler echoed %d messages, want %d", res.Msgs, len(v.echo))
	}
}

// Every protocol violation by the client gets close 1002 and TCP close.
// Rows: O7; "Frame checks": every rule with code 1002.
func TestProtocolViolationsGetClose1002(t *testing.T) {
	for _, v := range protocolViolations() {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			runViolation(t, v, v.code, false)
		})
		if v.split {
			t.Run(v.name+"/ByteByByte", func(t *testing.T) {
				t.Parallel()
				runViolation(t, v, v.code, true)
			})
		}
	}
}

// Invalid UTF-8 in a text message or close reason gets close 1007.
// Rows: O7; "Frame checks": invalid UTF-8 in a text message or close
// reason.
func TestInvalidUTF8GetsClose1007(t *testing.T) {
	for _, v := range invalidDataViolations() {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			runViolation(t, v, 1007, false)
		})
	}
}

// A protocol violation stops processing: frames after it are not answered.
// Rows: O7, T3.
func TestNothingProcessedAfterProtocolError(t *testing.T) {
	ts, results := startEcho(t)
	c := dialWS(t, ts)
	c.Write(wstest.Concat(
		wstest.Frame{Fin: true, Op: opText, Payload: []byte("bad"), NoMask: true}.Bytes(),
		wstest.FrameBytes(opText, []byte("after")),
		wstest.FrameBytes(opPing, []byte("after")),
	))
	c.ExpectClose(1002)
	res := recv(t, results, "handler to end")
	checkDropped(t, res)
	if res.Msgs != 0 {
		t.Errorf("handler echoed %d messages after the protocol error", res.Msgs)
	}
}

// A long ping payload in the 16-bit form is still refused; a 125-byte
// close frame is fine. (Boundary of the control-frame length rule.)
// Rows: O5, O6; "Frame checks": control frames of 125 bytes pass.
func TestControlFrameLengthBoundary(t *testing.T) {
	ts, results := startEcho(t)
	c := dialWS(t, ts)
	reason := strings.Repeat("r", 123)
	c.Send(opPing, bytes.Repeat([]byte{1}, 125))
	c.ExpectPong(bytes.Repeat([]byte{1}, 125))
	c.Send(opClose, wstest.ClosePayload(3333, reason)) // 125 bytes
	c.ExpectClose(3333)
	res := recv(t, results, "handler")
	if res.Status != (statusResult{3333, reason}) {
		t.Errorf("GetStatus = %v", res.Status)
	}
}

// Invalid UTF-8 is detected as soon as it arrives, before the message is
// finished (fail fast).
// Rows: O7; "Frame checks": invalid UTF-8 found at its first byte.
func TestInvalidUTF8FailsFastBeforeMessageEnds(t *testing.T) {
	tests := []struct {
		name  string
		frags [][]byte // all sent with FIN=0; the message is never finished
	}{
		{"InFirstFragment", [][]byte{[]byte("hello\xff")}},
		{"OverlongInFirstFragment", [][]byte{[]byte("\xc0\x80 and more")}},
		{"InLaterFragment", [][]byte{[]byte("ok "), []byte("fine "), []byte("\xc3\x28")}},
		{"AcrossFragmentBoundary", [][]byte{[]byte("x\xe2"), []byte("\x28")}},
		{"SurrogateAcrossThreeFragments", [][]byte{[]byte("\xed"), []byte("\xa0"), []byte("\x80")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts, results := startEcho(t)
			c := dialWS(t, ts)
			for i, p := range tc.frags {
				op := opCont
				if i == 0 {
					op = opText
				}
				c.Write(wstest.FragBytes(false, op, p))
			}
			c.ExpectClose(1007)
			res := recv(t, results, "handler to end")
			checkDropped(t, res)
		})
	}
}

// Fail-fast also inside a frame: the server answers 1007 when only the
// first bytes of a long text frame (containing invalid UTF-8) have arrived.
// Rows: O7; "Frame checks": invalid UTF-8 found at its first byte.
func TestInvalidUTF8FailsFastInsidePartialFrame(t *testing.T) {
	ts, results := startEcho(t)
	c := dialWS(t, ts)
	full := wstest.Frame{Fin: true, Op: opText, Payload: append([]byte("abc\xff"), make([]byte, 996)...)}.Bytes()
	c.Write(full[:8+10]) // 2+2 header bytes, 4 mask bytes, 10 of 1000 payload bytes
	c.ExpectClose(1007)
	checkDropped(t, recv(t, results, "handler"))
}

// The unread rest of a message that a receive call discards is still
// validated: invalid UTF-8 there gets close 1007.
// Rows: O4, O7, T2.
func TestDiscardedRestStillValidated(t *testing.T) {
	tests := []struct {
		name    string
		receive func(*websocket.Conn)
		send    []byte
	}{
		{"ReceiveTextTruncated", func(c *websocket.Conn) { c.ReceiveText(3) }, wstest.FrameBytes(opText, []byte("abcdef\xff"))},
		{"ReceiveTextTruncatedFragmented", func(c *websocket.Conn) { c.ReceiveText(3) }, wstest.Concat(wstest.FragBytes(false, opText, []byte("abcdef")), wstest.FragBytes(true, opCont, []byte("\xff")))},
		{"ReceiveBinaryGotText", func(c *websocket.Conn) { c.ReceiveBinary(make([]byte, 100)) }, wstest.Concat(wstest.FragBytes(false, opText, []byte("ab")), wstest.FragBytes(true, opCont, []byte("\xc0\xaf")))},
		{"ReceiveMessageNotRead", func(c *websocket.Conn) { c.ReceiveMessage() }, wstest.Concat(wstest.FragBytes(false, opText, []byte("ab")), wstest.FragBytes(true, opCont, []byte("\xff")))},
		{"ReceiveMessagePartlyRead", func(c *websocket.Conn) {
			_, r, err := c.ReceiveMessage()
			if err == nil {
				r.Read(make([]byte, 2))
			}
		}, wstest.Concat(wstest.FragBytes(false, opText, []byte("ab")), wstest.FragBytes(false, opCont, []byte("cd")), wstest.FragBytes(true, opCont, []byte("\xed\xa0\x80")))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			done := make(chan error, 1)
			ts := startHandler(t, func(c *websocket.Conn) {
				tc.receive(c)
				_, err := c.ReceiveText(100) // discards the rest
				done <- err
			})
			c := dialWS(t, ts)
			c.Write(wstest.Concat(tc.send, wstest.FrameBytes(opText, []byte("next"))))
			c.ExpectClose(1007)
			if err := recv(t, done, "next receive"); !errors.Is(err, websocket.ErrConnClosed) {
				t.Errorf("receive after the invalid message returned %v, want ErrConnClosed", err)
			}
		})
	}
}
