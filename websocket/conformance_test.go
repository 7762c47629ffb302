package websocket_test

// Conformance of the framing layer and the Conn API (issue points 4-11,
// RFC 6455 §5-§7, design.md) through the raw-frame client.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/wsmachine/wsmachine/websocket"
)

func u64(v uint64) *uint64 { return &v }

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
		{name: "UnmaskedText", send: Frame{Fin: true, Op: opText, Payload: []byte("hi"), NoMask: true}.Bytes()},
		{name: "UnmaskedBinary", send: Frame{Fin: true, Op: opBinary, Payload: []byte{1}, NoMask: true}.Bytes()},
		{name: "UnmaskedEmptyText", send: Frame{Fin: true, Op: opText, NoMask: true}.Bytes()},
		{name: "UnmaskedPing", send: Frame{Fin: true, Op: opPing, Payload: []byte("p"), NoMask: true}.Bytes()},
		{name: "UnmaskedClose", send: Frame{Fin: true, Op: opClose, Payload: closePayload(1000, ""), NoMask: true}.Bytes()},
		{name: "UnmaskedContinuation", send: concat(fragBytes(false, opText, []byte("a")), Frame{Fin: true, Op: opCont, Payload: []byte("b"), NoMask: true}.Bytes())},
		{name: "RSV1Text", send: Frame{Fin: true, Rsv: 4, Op: opText, Payload: []byte("x")}.Bytes()},
		{name: "RSV2Text", send: Frame{Fin: true, Rsv: 2, Op: opText, Payload: []byte("x")}.Bytes()},
		{name: "RSV3Text", send: Frame{Fin: true, Rsv: 1, Op: opText, Payload: []byte("x")}.Bytes()},
		{name: "AllRSVBinary", send: Frame{Fin: true, Rsv: 7, Op: opBinary, Payload: []byte("x")}.Bytes()},
		{name: "RSV1Ping", send: Frame{Fin: true, Rsv: 4, Op: opPing}.Bytes()},
		{name: "RSV1Close", send: Frame{Fin: true, Rsv: 4, Op: opClose, Payload: closePayload(1000, "")}.Bytes()},
		{name: "RSV1OnContinuation", send: concat(fragBytes(false, opText, []byte("a")), Frame{Fin: true, Rsv: 4, Op: opCont, Payload: []byte("b")}.Bytes())},
		{name: "FragmentedPing", send: Frame{Fin: false, Op: opPing, Payload: []byte("p")}.Bytes()},
		{name: "FragmentedPong", send: Frame{Fin: false, Op: opPong, Payload: []byte("p")}.Bytes()},
		{name: "FragmentedClose", send: Frame{Fin: false, Op: opClose, Payload: closePayload(1000, "")}.Bytes()},
		{name: "PingLen126", send: frameBytes(opPing, bytes.Repeat([]byte("p"), 126))},
		{name: "PongLen126", send: frameBytes(opPong, bytes.Repeat([]byte("p"), 126))},
		{name: "CloseLen126", send: frameBytes(opClose, closePayload(1000, strings.Repeat("r", 124)))},
		{name: "PingLen16BitForm", send: Frame{Fin: true, Op: opPing, Payload: []byte("p"), LenForm: 16}.Bytes()},
		{name: "ContinuationWithoutStart", send: frameBytes(opCont, []byte("a"))},
		{name: "NonFinalContinuationWithoutStart", send: fragBytes(false, opCont, []byte("a"))},
		{name: "ContinuationAfterFinishedMessage", send: concat(frameBytes(opText, []byte("a")), frameBytes(opCont, []byte("b"))), echo: []string{"a"}},
		{name: "TextInsideFragmentedText", send: concat(fragBytes(false, opText, []byte("a")), frameBytes(opText, []byte("b")))},
		{name: "BinaryInsideFragmentedText", send: concat(fragBytes(false, opText, []byte("a")), frameBytes(opBinary, []byte("b")))},
		{name: "TextInsideFragmentedBinary", send: concat(fragBytes(false, opBinary, []byte("a")), frameBytes(opText, []byte("b")))},
		{name: "NonFinalTextInsideFragmentedText", send: concat(fragBytes(false, opText, []byte("a")), fragBytes(false, opText, []byte("b")))},
		{name: "Length64TopBitSet", send: Frame{Fin: true, Op: opBinary, Payload: []byte("abcde"), LenForm: 64, DeclaredLen: u64(1<<63 | 5)}.Bytes()},
		{name: "Length64AllOnes", send: Frame{Fin: true, Op: opBinary, Payload: []byte("abcde"), LenForm: 64, DeclaredLen: u64(^uint64(0))}.Bytes()},
		{name: "NonMinimal16For0", send: Frame{Fin: true, Op: opText, LenForm: 16}.Bytes(), split: true},
		{name: "NonMinimal16For5", send: Frame{Fin: true, Op: opText, Payload: []byte("hello"), LenForm: 16}.Bytes(), split: true},
		{name: "NonMinimal16For125", send: Frame{Fin: true, Op: opBinary, Payload: make([]byte, 125), LenForm: 16}.Bytes()},
		{name: "NonMinimal64For5", send: Frame{Fin: true, Op: opText, Payload: []byte("hello"), LenForm: 64}.Bytes(), split: true},
		{name: "NonMinimal64For200", send: Frame{Fin: true, Op: opBinary, Payload: make([]byte, 200), LenForm: 64}.Bytes()},
		{name: "NonMinimal64For65535", send: Frame{Fin: true, Op: opBinary, Payload: make([]byte, 65535), LenForm: 64}.Bytes()},
		{name: "NonMinimalContinuation", send: concat(fragBytes(false, opText, []byte("a")), Frame{Fin: true, Op: opCont, Payload: []byte("b"), LenForm: 16}.Bytes())},
		{name: "ClosePayload1Byte", send: frameBytes(opClose, []byte{0x03})},
		{name: "ViolationAfterValidMessages", send: concat(frameBytes(opText, []byte("one")), frameBytes(opText, []byte("two")), Frame{Fin: true, Op: opText, Payload: []byte("3"), NoMask: true}.Bytes()), echo: []string{"one", "two"}},
	}
	for _, op := range []byte{3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF} {
		vs = append(vs, violation{name: fmt.Sprintf("ReservedOpcode%X", op), send: frameBytes(op, []byte("x"))})
	}
	vs = append(vs, violation{name: "ReservedOpcodeInsideFragmentedMessage", send: concat(fragBytes(false, opText, []byte("a")), frameBytes(0x3, nil))})
	for _, code := range []uint16{0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		vs = append(vs, violation{name: fmt.Sprintf("CloseCode%d", code), send: frameBytes(opClose, closePayload(code, ""))})
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
		{name: "InvalidByteFF", send: frameBytes(opText, []byte("abc\xff"))},
		{name: "ContinuationByteAlone", send: frameBytes(opText, []byte("\x80"))},
		{name: "Overlong2Byte", send: frameBytes(opText, []byte("\xc0\xaf"))},
		{name: "Overlong3Byte", send: frameBytes(opText, []byte("\xe0\x80\xaf"))},
		{name: "Overlong4Byte", send: frameBytes(opText, []byte("\xf0\x80\x80\xaf"))},
		{name: "Surrogate", send: frameBytes(opText, []byte("\xed\xa0\x80"))},
		{name: "AboveU10FFFF", send: frameBytes(opText, []byte("\xf4\x90\x80\x80"))},
		{name: "ByteF5", send: frameBytes(opText, []byte("\xf5\x80\x80\x80"))},
		{name: "TruncatedAtFin", send: frameBytes(opText, []byte("a\xe2\x82"))},
		{name: "InvalidAcrossFragments", send: concat(fragBytes(false, opText, []byte("\xce")), frameBytes(opCont, []byte("\xff")))},
		{name: "TruncatedAcrossFragmentsAtFin", send: concat(fragBytes(false, opText, []byte("a")), frameBytes(opCont, []byte("\xe2\x82")))},
		{name: "TruncatedBeforeEmptyFinalFragment", send: concat(fragBytes(false, opText, []byte("\xe2\x82")), frameBytes(opCont, nil))},
		{name: "InvalidAfterValidMessage", send: concat(frameBytes(opText, []byte("fine")), frameBytes(opText, []byte("\xff"))), echo: []string{"fine"}},
		{name: "InvalidInLongMessage", send: frameBytes(opText, append(bytes.Repeat([]byte("a"), 70000), 0xff))},
		{name: "FiveByteSequence", send: frameBytes(opText, []byte("\xf8\x88\x80\x80\x80"))},
		{name: "ByteFE", send: frameBytes(opText, []byte("\xfe"))},
		{name: "MissingContinuationByte", send: frameBytes(opText, []byte("\xe2\x28\xa1"))},
		{name: "InvalidInFragmentedCloseCase", send: concat(fragBytes(false, opText, []byte("ok")), frameBytes(opClose, closePayload(1000, "\xc0\xaf")))},
		{name: "CloseReasonInvalid", send: frameBytes(opClose, closePayload(1000, "bad\xff"))},
		{name: "CloseReasonTruncated", send: frameBytes(opClose, closePayload(1001, "\xe2\x82"))},
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
func TestInvalidUTF8GetsClose1007(t *testing.T) {
	for _, v := range invalidDataViolations() {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			runViolation(t, v, 1007, false)
		})
	}
}

// A protocol violation stops processing: frames after it are not answered.
func TestNothingProcessedAfterProtocolError(t *testing.T) {
	ts, results := startEcho(t)
	c := dialWS(t, ts)
	c.Write(concat(
		Frame{Fin: true, Op: opText, Payload: []byte("bad"), NoMask: true}.Bytes(),
		frameBytes(opText, []byte("after")),
		frameBytes(opPing, []byte("after")),
	))
	c.ExpectClose(1002)
	res := recv(t, results, "handler to end")
	checkDropped(t, res)
	if res.Msgs != 0 {
		t.Errorf("handler echoed %d messages after the protocol error", res.Msgs)
	}
}

// Invalid UTF-8 is detected as soon as it arrives, before the message is
// finished (issue point 6: fail fast).
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
				c.Write(fragBytes(false, op, p))
			}
			c.ExpectClose(1007)
			res := recv(t, results, "handler to end")
			checkDropped(t, res)
		})
	}
}

// The reader returned by ReceiveMessage yields data as frames arrive and
// returns an error wrapping ErrConnClosed (not io.EOF) when invalid UTF-8
// arrives mid-message.
func TestReceiveMessageReaderFailsOnInvalidUTF8(t *testing.T) {
	type result struct {
		data []byte
		err  error
	}
	got := make(chan []byte, 1)
	done := make(chan result, 1)
	ts := startHandler(t, func(c *websocket.Conn) {
		tp, r, err := c.ReceiveMessage()
		if err != nil || tp != websocket.Text {
			done <- result{nil, fmt.Errorf("ReceiveMessage: %v %v", tp, err)}
			return
		}
		buf := make([]byte, 5)
		n, err := io.ReadFull(r, buf)
		got <- buf[:n]
		if err != nil {
			done <- result{nil, err}
			return
		}
		rest, err := io.ReadAll(r)
		done <- result{rest, err}
	})
	c := dialWS(t, ts)
	c.Write(fragBytes(false, opText, []byte("first")))
	if p := recv(t, got, "the first fragment to reach the handler"); string(p) != "first" {
		t.Fatalf("handler read %q, want %q", p, "first")
	}
	c.Write(fragBytes(false, opCont, []byte("\xff")))
	c.ExpectClose(1007)
	res := recv(t, done, "the reader to fail")
	if !errors.Is(res.err, websocket.ErrConnClosed) {
		t.Errorf("reader error %v, want an error wrapping ErrConnClosed", res.err)
	}
	if bytes.Contains(res.data, []byte{0xff}) {
		t.Errorf("reader passed on invalid bytes %q", res.data)
	}
}

// ReceiveMessage streams: the first fragment can be read before the client
// sent the rest of the message.
func TestReceiveMessageStreamsFragments(t *testing.T) {
	for _, tp := range []websocket.MessageType{websocket.Text, websocket.Binary} {
		t.Run(tp.String(), func(t *testing.T) {
			type result struct {
				tp   websocket.MessageType
				data []byte
				err  error
			}
			first := make(chan []byte, 1)
			done := make(chan result, 1)
			ts := startHandler(t, func(c *websocket.Conn) {
				tp, r, err := c.ReceiveMessage()
				if err != nil {
					done <- result{err: err}
					return
				}
				buf := make([]byte, 6)
				n, err := io.ReadFull(r, buf)
				first <- buf[:n]
				if err != nil {
					done <- result{err: err}
					return
				}
				rest, err := io.ReadAll(r)
				done <- result{tp, append(buf, rest...), err}
				c.SendText("done")
				c.ReceiveMessage()
			})
			c := dialWS(t, ts)
			c.Write(fragBytes(false, byte(tp), []byte("first ")))
			if p := recv(t, first, "the first fragment to reach the handler"); string(p) != "first " {
				t.Fatalf("handler read %q before the message ended, want %q", p, "first ")
			}
			c.Write(fragBytes(false, opCont, []byte("second ")))
			c.Write(fragBytes(false, opCont, nil))
			c.Write(fragBytes(true, opCont, []byte("third")))
			res := recv(t, done, "the message to end")
			if res.err != nil || res.tp != tp || string(res.data) != "first second third" {
				t.Fatalf("got %v %q %v, want %v %q <nil>", res.tp, res.data, res.err, tp, "first second third")
			}
			c.ExpectText("done")
			c.SendClose(1000, "")
			c.ExpectClose(1000)
		})
	}
}

// Valid messages of all shapes are echoed intact (fragmented, empty,
// every length encoding, UTF-8 split across fragments, zero mask key).
func TestValidMessagesEchoed(t *testing.T) {
	zeroMask := &[4]byte{}
	big := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('a' + i%26)
		}
		return b
	}
	type msg struct {
		op   byte
		data []byte
	}
	tests := []struct {
		name string
		send []byte
		want []msg
	}{
		{"EmptyText", frameBytes(opText, nil), []msg{{opText, nil}}},
		{"EmptyBinary", frameBytes(opBinary, nil), []msg{{opBinary, nil}}},
		{"Len125", frameBytes(opBinary, big(125)), []msg{{opBinary, big(125)}}},
		{"Len126", frameBytes(opBinary, big(126)), []msg{{opBinary, big(126)}}},
		{"Len65535", frameBytes(opText, big(65535)), []msg{{opText, big(65535)}}},
		{"Len65536", frameBytes(opText, big(65536)), []msg{{opText, big(65536)}}},
		{"OneMiB", frameBytes(opBinary, big(1<<20)), []msg{{opBinary, big(1 << 20)}}},
		{"BinaryInvalidUTF8IsFine", frameBytes(opBinary, []byte{0xff, 0xfe, 0xc0, 0x80}), []msg{{opBinary, []byte{0xff, 0xfe, 0xc0, 0x80}}}},
		{"ZeroMaskKey", Frame{Fin: true, Op: opText, Payload: []byte("zero key"), Mask: zeroMask}.Bytes(), []msg{{opText, []byte("zero key")}}},
		{"ThreeFragments", concat(fragBytes(false, opText, []byte("a")), fragBytes(false, opCont, []byte("b")), fragBytes(true, opCont, []byte("c"))), []msg{{opText, []byte("abc")}}},
		{"EmptyFragments", concat(fragBytes(false, opBinary, nil), fragBytes(false, opCont, nil), fragBytes(true, opCont, nil)), []msg{{opBinary, nil}}},
		{"EmptyFinalFragment", concat(fragBytes(false, opText, []byte("x")), fragBytes(true, opCont, nil)), []msg{{opText, []byte("x")}}},
		{"UTF8SplitAcrossFragments", concat(fragBytes(false, opText, []byte("\xce")), fragBytes(true, opCont, []byte("\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"))), []msg{{opText, []byte("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5")}}},
		{"FourByteCharOverFourFragments", concat(fragBytes(false, opText, []byte("\xf0")), fragBytes(false, opCont, []byte("\x9f")), fragBytes(false, opCont, []byte("\x98")), fragBytes(true, opCont, []byte("\x80"))), []msg{{opText, []byte("😀")}}},
		{"UTF8Boundaries", frameBytes(opText, []byte("\x00\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf")), []msg{{opText, []byte("\x00\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf")}}},
		{"FragmentedLargeFrames", concat(fragBytes(false, opBinary, big(70000)), fragBytes(true, opCont, big(300))), []msg{{opBinary, append(big(70000), big(300)...)}}},
		{"TenThousandOneByteFragments", func() []byte {
			b := fragBytes(false, opText, []byte("x"))
			for range 9998 {
				b = append(b, fragBytes(false, opCont, []byte("y"))...)
			}
			return append(b, fragBytes(true, opCont, []byte("z"))...)
		}(), []msg{{opText, []byte("x" + strings.Repeat("y", 9998) + "z")}}},
		{"ManyMessagesOneWrite", concat(frameBytes(opText, []byte("1")), frameBytes(opBinary, []byte("2")), frameBytes(opText, []byte("3"))), []msg{{opText, []byte("1")}, {opBinary, []byte("2")}, {opText, []byte("3")}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts, results := startEcho(t)
			c := dialWS(t, ts)
			c.Write(tc.send)
			for _, m := range tc.want {
				op, p := c.ReadMessage()
				if op != m.op || !bytes.Equal(p, m.data) {
					t.Fatalf("got op=%#x %s, want op=%#x %s", op, trunc(p), m.op, trunc(m.data))
				}
			}
			c.SendClose(1000, "")
			c.ExpectClose(1000)
			res := recv(t, results, "handler to end")
			if res.Msgs != len(tc.want) {
				t.Errorf("handler echoed %d messages, want %d", res.Msgs, len(tc.want))
			}
		})
	}
}

// skipToCloseFrame reads and skips frames until a close frame, checks its
// code and returns its reason; it does not wait for EOF.
func (c *rawClient) skipToCloseFrame(code uint16) (reason string) {
	c.t.Helper()
	for range 100000 {
		f := c.ReadFrame()
		if f.Op == opClose {
			return c.checkClose(f, code)
		}
	}
	return ""
}

// sendPingsAsync writes n pings (payloads "0", "1", ...) from a goroutine,
// pausing gap after each, and reports the first write error or nil.
func (c *rawClient) sendPingsAsync(n int, gap time.Duration) <-chan error {
	errc := make(chan error, 1)
	go func() {
		for i := range n {
			if err := c.TryWrite(frameBytes(opPing, []byte(fmt.Sprint(i)))); err != nil {
				errc <- err
				return
			}
			time.Sleep(gap)
		}
		errc <- nil
	}()
	return errc
}

// readMsgsAndPongs reads frames until nMsgs data messages and nPongs pongs
// arrived (pongs may come at any point between messages).
func (c *rawClient) readMsgsAndPongs(nMsgs, nPongs int) (msgs [][]byte, ops []byte, pongs [][]byte) {
	c.t.Helper()
	var cur []byte
	var curOp byte
	for range 100000 {
		if len(msgs) == nMsgs && len(pongs) == nPongs {
			return
		}
		f := c.ReadFrame()
		switch f.Op {
		case opPong:
			pongs = append(pongs, f.Payload)
			continue
		case opCont:
			if curOp == 0 {
				c.t.Fatalf("continuation without start from server")
			}
		case opText, opBinary:
			if curOp != 0 {
				c.t.Fatalf("server started a new message inside a fragmented one")
			}
			curOp = f.Op
		default:
			c.t.Fatalf("unexpected frame %v", f)
		}
		cur = append(cur, f.Payload...)
		if f.Fin {
			if curOp == opText && !utf8.Valid(cur) {
				c.t.Fatalf("server sent a text message that is not valid UTF-8: %s", trunc(cur))
			}
			msgs = append(msgs, cur)
			ops = append(ops, curOp)
			cur, curOp = nil, 0
		}
	}
	c.t.Fatalf("too many frames")
	return
}

// The server parses its input correctly however the byte stream is split
// into TCP segments.
func TestSplitByteStream(t *testing.T) {
	small := concat(
		frameBytes(opText, []byte("hello")),
		frameBytes(opPing, []byte("p1")),
		fragBytes(false, opBinary, []byte("ab")),
		frameBytes(opPing, nil),
		fragBytes(true, opCont, []byte("cd")),
		frameBytes(opBinary, bytes.Repeat([]byte{7}, 300)),
	)
	bigPayload := bytes.Repeat([]byte("0123456789"), 7000)
	bigFrame := frameBytes(opText, bigPayload) // 64-bit length form, 14-byte header
	tests := []struct {
		name    string
		stream  []byte
		offsets []int
		chunk   int
	}{
		{name: "ByteByByte", stream: small, chunk: 1},
		{name: "TwoBytes", stream: small, chunk: 2},
		{name: "ThreeBytes", stream: small, chunk: 3},
		{name: "SevenBytes", stream: small, chunk: 7},
		{name: "OneWrite", stream: small, chunk: len(small)},
		{name: "BigFrameHeaderByteByByte", stream: bigFrame, offsets: []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 5000, 40000}},
		{name: "BigFrameSplitInMask", stream: bigFrame, offsets: []int{11, 12, 70000}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts, _ := startEcho(t)
			c := dialWS(t, ts)
			if tc.chunk > 0 {
				c.WriteChunks(tc.stream, tc.chunk)
			} else {
				c.WriteSplit(tc.stream, tc.offsets...)
			}
			if bytes.Equal(tc.stream, bigFrame) {
				c.ExpectText(string(bigPayload))
			} else {
				msgs, ops, pongs := c.readMsgsAndPongs(3, 2)
				want := [][]byte{[]byte("hello"), []byte("abcd"), bytes.Repeat([]byte{7}, 300)}
				wantOps := []byte{opText, opBinary, opBinary}
				for i := range want {
					if ops[i] != wantOps[i] || !bytes.Equal(msgs[i], want[i]) {
						t.Errorf("message %d: op=%#x %s, want op=%#x %s", i, ops[i], trunc(msgs[i]), wantOps[i], trunc(want[i]))
					}
				}
				if string(pongs[0]) != "p1" || len(pongs[1]) != 0 {
					t.Errorf("pongs %q, want [p1 \"\"]", pongs)
				}
			}
			// A close frame split too.
			c.WriteChunks(frameBytes(opClose, closePayload(1000, "split")), 1)
			c.ExpectClose(1000)
		})
	}
}

// Pings in the middle of a fragmented message are answered at once, before
// the message is finished.
func TestPingsInterleavedWithFragmentsAnswered(t *testing.T) {
	ts, results := startEcho(t)
	c := dialWS(t, ts)
	c.Write(fragBytes(false, opText, []byte("one ")))
	c.Send(opPing, []byte("ping-1"))
	c.ExpectPong([]byte("ping-1"))
	c.Write(fragBytes(false, opCont, []byte("two ")))
	c.Send(opPing, nil)
	c.ExpectPong(nil)
	c.Send(opPong, []byte("unsolicited")) // ignored
	c.Send(opPing, bytes.Repeat([]byte{0xAB}, 125))
	c.ExpectPong(bytes.Repeat([]byte{0xAB}, 125))
	c.Write(fragBytes(true, opCont, []byte("three")))
	c.ExpectText("one two three")
	c.SendClose(1000, "")
	c.ExpectClose(1000)
	if res := recv(t, results, "handler to end"); res.Msgs != 1 {
		t.Errorf("handler echoed %d messages, want 1", res.Msgs)
	}
}

// Every ping is answered with a pong carrying its payload.
func TestPingAnsweredWithSamePayload(t *testing.T) {
	for _, p := range [][]byte{nil, []byte("x"), []byte("hello"), {0, 0xff, 0x80, 0xc0}, bytes.Repeat([]byte("z"), 125)} {
		t.Run(fmt.Sprintf("Len%d", len(p)), func(t *testing.T) {
			t.Parallel()
			ts, _ := startEcho(t)
			c := dialWS(t, ts)
			c.Send(opPing, p)
			c.ExpectPong(p)
			// Several pings in one write, each answered in order.
			c.Write(concat(frameBytes(opPing, []byte("a")), frameBytes(opPing, []byte("b")), frameBytes(opPing, p)))
			c.ExpectPong([]byte("a"))
			c.ExpectPong([]byte("b"))
			c.ExpectPong(p)
			c.SendClose(1000, "")
			c.ExpectClose(1000)
		})
	}
}

// Unsolicited pongs are ignored.
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

// The client's close is answered (code echoed, 1010 answered with 1000,
// empty close answered with empty close), TCP is closed by the server, and
// GetStatus reports the client's code and reason.
func TestClientCloseAnsweredAndRecorded(t *testing.T) {
	long := strings.Repeat("é", 61) + "x" // 123 bytes
	tests := []struct {
		name       string
		payload    []byte
		wantReply  uint16
		wantStatus statusResult
	}{
		{"Empty", nil, noCode, statusResult{websocket.StatusNotSent, ""}},
		{"1000WithReason", closePayload(1000, "bye"), 1000, statusResult{1000, "bye"}},
		{"1000Reason123Bytes", closePayload(1000, long), 1000, statusResult{1000, long}},
		{"1001", closePayload(1001, ""), 1001, statusResult{1001, ""}},
		{"1002", closePayload(1002, "x"), 1002, statusResult{1002, "x"}},
		{"1003", closePayload(1003, ""), 1003, statusResult{1003, ""}},
		{"1007", closePayload(1007, ""), 1007, statusResult{1007, ""}},
		{"1008", closePayload(1008, ""), 1008, statusResult{1008, ""}},
		{"1009", closePayload(1009, ""), 1009, statusResult{1009, ""}},
		{"1010AnsweredWith1000", closePayload(1010, "need ext"), 1000, statusResult{1010, "need ext"}},
		{"1011", closePayload(1011, ""), 1011, statusResult{1011, ""}},
		{"1012", closePayload(1012, ""), 1012, statusResult{1012, ""}},
		{"1013", closePayload(1013, ""), 1013, statusResult{1013, ""}},
		{"1014", closePayload(1014, ""), 1014, statusResult{1014, ""}},
		{"3000", closePayload(3000, "app"), 3000, statusResult{3000, "app"}},
		{"3999", closePayload(3999, ""), 3999, statusResult{3999, ""}},
		{"4000", closePayload(4000, "private"), 4000, statusResult{4000, "private"}},
		{"4999", closePayload(4999, ""), 4999, statusResult{4999, ""}},
		{"UTF8Reason", closePayload(1000, "tschüß 👋"), 1000, statusResult{1000, "tschüß 👋"}},
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
func TestDataAfterClientCloseIgnored(t *testing.T) {
	tests := []struct {
		name  string
		after []byte
	}{
		{"TextAndPing", concat(frameBytes(opText, []byte("ignored")), frameBytes(opPing, []byte("ignored")))},
		{"ProtocolViolation", Frame{Fin: true, Op: opText, Payload: []byte("x"), NoMask: true}.Bytes()},
		{"InvalidUTF8", frameBytes(opText, []byte("\xff"))},
		{"SecondClose", frameBytes(opClose, closePayload(3000, "again"))},
		{"Garbage", []byte{0xff, 0xff, 0xff, 0xff}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts, results := startEcho(t)
			c := dialWS(t, ts)
			c.Write(concat(frameBytes(opClose, closePayload(1000, "done")), tc.after))
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
func TestBytesAfterClientCloseDoNotResetTheConnection(t *testing.T) {
	t.Parallel()
	ts, results := startEcho(t)
	c := dialWS(t, ts)
	c.Write(concat(frameBytes(opClose, closePayload(1000, "done")), bytes.Repeat([]byte{0xff}, 64<<10)))
	c.ExpectClose(1000) // and then EOF, not a reset
	if res := recv(t, results, "handler to end"); res.Status != (statusResult{websocket.StatusOK, "done"}) {
		t.Errorf("GetStatus = %v, want {1000 done}", res.Status)
	}
}

// A close frame in the middle of a fragmented message is answered; the
// handler's reader fails with ErrConnClosed instead of returning io.EOF.
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
	c.Write(fragBytes(false, opText, []byte("unfinished")))
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

// A TCP drop in the middle of a message makes the reader fail with
// ErrConnClosed (a truncated message never looks complete).
// receivers are the three ways to receive a message, each with the opcode
// it expects.
var receivers = []struct {
	name string
	op   byte
	recv func(*websocket.Conn) ([]byte, error)
}{
	{"ReceiveMessage", opBinary, func(c *websocket.Conn) ([]byte, error) {
		_, r, err := c.ReceiveMessage()
		if err != nil {
			return nil, err
		}
		return io.ReadAll(r)
	}},
	{"ReceiveText", opText, func(c *websocket.Conn) ([]byte, error) {
		s, err := c.ReceiveText(1000)
		return []byte(s), err
	}},
	{"ReceiveBinary", opBinary, func(c *websocket.Conn) ([]byte, error) {
		buf := make([]byte, 1000)
		n, err := c.ReceiveBinary(buf)
		return buf[:max(0, min(n, len(buf)))], err
	}},
}

func TestTCPDropMidMessageReaderFails(t *testing.T) {
	tests := []struct {
		name string
		send func(op byte) []byte
	}{
		{"AfterFirstFragment", func(op byte) []byte { return fragBytes(false, op, []byte("partial")) }},
		{"InsideFramePayload", func(op byte) []byte {
			return Frame{Fin: true, Op: op, Payload: []byte("partial"), DeclaredLen: u64(100)}.Bytes()
		}},
		{"InsideFrameHeader", func(op byte) []byte { return Frame{Fin: true, Op: op, Payload: make([]byte, 300)}.Bytes()[:3] }},
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

// Receives after the connection ended return ErrConnClosed.
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
				c.Write(Frame{Fin: true, Op: opText, NoMask: true}.Bytes())
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

// GetStatus blocks while the connection is open.
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

// Server-initiated close: the close frame carries the code and message, the
// client's reply ends the handshake, the server closes TCP, Close returns
// nil and GetStatus reports the client's reply.
func TestServerCloseHandshake(t *testing.T) {
	msg123 := strings.Repeat("m", 123)
	tests := []struct {
		code       websocket.Status
		msg        string
		reply      []byte
		wantStatus statusResult
	}{
		{websocket.StatusOK, "", closePayload(1000, ""), statusResult{1000, ""}},
		{websocket.StatusOK, "done", closePayload(1000, "client reason"), statusResult{1000, "client reason"}},
		{websocket.StatusGoingAway, "restart", closePayload(1001, ""), statusResult{1001, ""}},
		{websocket.StatusProtocolError, "", closePayload(1002, ""), statusResult{1002, ""}},
		{websocket.StatusUnsupportedType, "", closePayload(1003, ""), statusResult{1003, ""}},
		{websocket.StatusInvalidData, "", closePayload(1007, ""), statusResult{1007, ""}},
		{websocket.StatusPolicyViolation, "", closePayload(1008, ""), statusResult{1008, ""}},
		{websocket.StatusTooLarge, "", closePayload(1009, ""), statusResult{1009, ""}},
		{websocket.StatusInternalServerError, "oops", closePayload(1011, ""), statusResult{1011, ""}},
		{1012, "", closePayload(1012, ""), statusResult{1012, ""}},
		{1013, "", closePayload(1013, ""), statusResult{1013, ""}},
		{1014, "", closePayload(1014, ""), statusResult{1014, ""}},
		{3000, "", closePayload(3000, ""), statusResult{3000, ""}},
		{4999, "x", closePayload(4999, "y"), statusResult{4999, "y"}},
		{websocket.StatusOK, msg123, closePayload(1000, ""), statusResult{1000, ""}},
		{websocket.StatusOK, "ünïcödé", nil, statusResult{websocket.StatusNotSent, ""}},
		{websocket.StatusNotSent, "", nil, statusResult{websocket.StatusNotSent, ""}},
		{websocket.StatusNotSent, "", closePayload(1000, ""), statusResult{1000, ""}},
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

// Close waits about 3 s for the client's close frame, then closes TCP and
// reports an error wrapping ErrConnClosed; the status is dropped.
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

// If the client drops TCP instead of replying, Close returns promptly with
// an error wrapping ErrConnClosed.
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

// Invalid Close arguments return an error and leave the connection open.
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

// A second Close, or Close after the client closed/dropped, returns
// ErrConnClosed.
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
				c.Write(frameBytes(0x3, nil))
				c.ExpectClose(1002)
			}
			if err := recv(t, done, "second Close"); !errors.Is(err, websocket.ErrConnClosed) {
				t.Errorf("second Close returned %v, want ErrConnClosed", err)
			}
		})
	}
}

type sendKind struct {
	name string
	send func(*websocket.Conn) error
}

// sendMessageX returns a send function that sends "x" as one message of
// type tp through SendMessage.
func sendMessageX(tp websocket.MessageType) func(*websocket.Conn) error {
	return func(c *websocket.Conn) error {
		w, err := c.SendMessage(tp)
		if err != nil {
			return err
		}
		if _, err := w.Write([]byte("x")); err != nil {
			w.Close()
			return err
		}
		return w.Close()
	}
}

var sendKinds = []sendKind{
	{"SendText", func(c *websocket.Conn) error { return c.SendText("x") }},
	{"SendBinary", func(c *websocket.Conn) error { return c.SendBinary([]byte("x")) }},
	{"SendMessageText", sendMessageX(websocket.Text)},
	{"SendMessageBinary", sendMessageX(websocket.Binary)},
}

// Every send after the connection ended returns ErrConnClosed.
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
				c.Write(Frame{Fin: true, Rsv: 4, Op: opText}.Bytes())
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

// Sends while the server's Close waits for the client's reply return
// ErrConnClosed and put nothing on the wire.
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

// ReceiveText returns at most maxLength bytes, cut at a character boundary,
// with ErrTooLarge; binary messages give ErrMessageType; the connection
// stays usable for the next message.
func TestReceiveTextLimits(t *testing.T) {
	tests := []struct {
		name    string
		send    []byte
		max     int
		want    string
		wantErr error
	}{
		{"Fits", frameBytes(opText, []byte("hello")), 10, "hello", nil},
		{"ExactlyMax", frameBytes(opText, []byte("0123456789")), 10, "0123456789", nil},
		{"Empty", frameBytes(opText, nil), 0, "", nil},
		{"EmptyWithRoom", frameBytes(opText, nil), 5, "", nil},
		{"TooLong", frameBytes(opText, []byte("hello world!")), 5, "hello", websocket.ErrTooLarge},
		{"MaxZero", frameBytes(opText, []byte("a")), 0, "", websocket.ErrTooLarge},
		{"TooLongFragmented", concat(fragBytes(false, opText, []byte("hello ")), fragBytes(false, opCont, []byte("world")), fragBytes(true, opCont, []byte("!!!"))), 8, "hello wo", websocket.ErrTooLarge},
		{"CutBeforeMultibyte", frameBytes(opText, []byte("ab€")), 4, "ab", websocket.ErrTooLarge},
		{"CutInsideSecondChar", frameBytes(opText, []byte("€€")), 5, "€", websocket.ErrTooLarge},
		{"CutInsideFirstChar", frameBytes(opText, []byte("😀")), 3, "", websocket.ErrTooLarge},
		{"MultibyteFitsExactly", frameBytes(opText, []byte("€")), 3, "€", nil},
		{"MultibyteSplitAcrossFragmentsFits", concat(fragBytes(false, opText, []byte("\xe2\x82")), fragBytes(true, opCont, []byte("\xac"))), 3, "€", nil},
		{"LargeTruncated", frameBytes(opText, bytes.Repeat([]byte("x"), 100000)), 10, "xxxxxxxxxx", websocket.ErrTooLarge},
		{"Binary", frameBytes(opBinary, []byte("bin")), 10, "", websocket.ErrMessageType},
		{"FragmentedBinary", concat(fragBytes(false, opBinary, []byte("b")), fragBytes(true, opCont, []byte("in"))), 10, "", websocket.ErrMessageType},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			type result struct {
				s    string
				err  error
				next string
				nerr error
			}
			done := make(chan result, 1)
			ts := startHandler(t, func(c *websocket.Conn) {
				var r result
				r.s, r.err = c.ReceiveText(tc.max)
				r.next, r.nerr = c.ReceiveText(100)
				done <- r
				c.GetStatus()
			})
			c := dialWS(t, ts)
			c.Write(concat(tc.send, frameBytes(opText, []byte("next"))))
			r := recv(t, done, "ReceiveText")
			if r.s != tc.want || !errors.Is(r.err, tc.wantErr) || (tc.wantErr == nil && r.err != nil) {
				t.Errorf("ReceiveText(%d) = %q, %v; want %q, %v", tc.max, r.s, r.err, tc.want, tc.wantErr)
			}
			if r.next != "next" || r.nerr != nil {
				t.Errorf("next ReceiveText = %q, %v; want \"next\", nil", r.next, r.nerr)
			}
			c.SendClose(1000, "")
			c.ExpectClose(1000)
		})
	}
}

// ReceiveBinary fills buf; a longer message gives (len(buf), ErrTooLarge);
// text gives ErrMessageType; the connection stays usable.
func TestReceiveBinaryLimits(t *testing.T) {
	seq := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i)
		}
		return b
	}
	tests := []struct {
		name    string
		send    []byte
		bufLen  int
		want    []byte
		wantErr error
	}{
		{"Fits", frameBytes(opBinary, seq(5)), 10, seq(5), nil},
		{"ExactlyBuf", frameBytes(opBinary, seq(10)), 10, seq(10), nil},
		{"Empty", frameBytes(opBinary, nil), 10, nil, nil},
		{"EmptyIntoEmptyBuf", frameBytes(opBinary, nil), 0, nil, nil},
		{"OneByteIntoEmptyBuf", frameBytes(opBinary, seq(1)), 0, nil, websocket.ErrTooLarge},
		{"TooLong", frameBytes(opBinary, seq(11)), 10, seq(10), websocket.ErrTooLarge},
		{"TooLongFragmented", concat(fragBytes(false, opBinary, seq(5)), fragBytes(false, opCont, seq(5)), fragBytes(true, opCont, seq(10))), 8, append(seq(5), seq(3)...), websocket.ErrTooLarge},
		{"FragmentedFits", concat(fragBytes(false, opBinary, seq(3)), fragBytes(true, opCont, seq(3))), 6, append(seq(3), seq(3)...), nil},
		{"LargeTruncated", frameBytes(opBinary, seq(100000)), 16, seq(16), websocket.ErrTooLarge},
		{"Text", frameBytes(opText, []byte("text")), 10, nil, websocket.ErrMessageType},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			type result struct {
				n    int
				buf  []byte
				err  error
				next string
				nerr error
			}
			done := make(chan result, 1)
			ts := startHandler(t, func(c *websocket.Conn) {
				var r result
				r.buf = bytes.Repeat([]byte{0xEE}, tc.bufLen+8)[:tc.bufLen]
				r.n, r.err = c.ReceiveBinary(r.buf)
				// The spare capacity after len(buf) must stay untouched.
				if tail := r.buf[tc.bufLen : tc.bufLen+8]; !bytes.Equal(tail, bytes.Repeat([]byte{0xEE}, 8)) {
					r.err = fmt.Errorf("ReceiveBinary wrote beyond len(buf): %x", tail)
				}
				r.next, r.nerr = c.ReceiveText(100)
				done <- r
				c.GetStatus()
			})
			c := dialWS(t, ts)
			c.Write(concat(tc.send, frameBytes(opText, []byte("next"))))
			r := recv(t, done, "ReceiveBinary")
			if r.n < 0 || r.n > len(r.buf) || !bytes.Equal(r.buf[:max(0, min(r.n, len(r.buf)))], tc.want) || r.n != len(tc.want) ||
				!errors.Is(r.err, tc.wantErr) || (tc.wantErr == nil && r.err != nil) {
				t.Errorf("ReceiveBinary(len %d) = %d (%x), %v; want %d (%x), %v", tc.bufLen, r.n, r.buf, r.err, len(tc.want), tc.want, tc.wantErr)
			}
			if r.next != "next" || r.nerr != nil {
				t.Errorf("next ReceiveText = %q, %v; want \"next\", nil", r.next, r.nerr)
			}
			c.SendClose(1000, "")
			c.ExpectClose(1000)
		})
	}
}

// The unread rest of a message that a receive call discards is still
// validated: invalid UTF-8 there gets close 1007.
func TestDiscardedRestStillValidated(t *testing.T) {
	tests := []struct {
		name    string
		receive func(*websocket.Conn)
		send    []byte
	}{
		{"ReceiveTextTruncated", func(c *websocket.Conn) { c.ReceiveText(3) }, frameBytes(opText, []byte("abcdef\xff"))},
		{"ReceiveTextTruncatedFragmented", func(c *websocket.Conn) { c.ReceiveText(3) }, concat(fragBytes(false, opText, []byte("abcdef")), fragBytes(true, opCont, []byte("\xff")))},
		{"ReceiveBinaryGotText", func(c *websocket.Conn) { c.ReceiveBinary(make([]byte, 100)) }, concat(fragBytes(false, opText, []byte("ab")), fragBytes(true, opCont, []byte("\xc0\xaf")))},
		{"ReceiveMessageNotRead", func(c *websocket.Conn) { c.ReceiveMessage() }, concat(fragBytes(false, opText, []byte("ab")), fragBytes(true, opCont, []byte("\xff")))},
		{"ReceiveMessagePartlyRead", func(c *websocket.Conn) {
			_, r, err := c.ReceiveMessage()
			if err == nil {
				r.Read(make([]byte, 2))
			}
		}, concat(fragBytes(false, opText, []byte("ab")), fragBytes(false, opCont, []byte("cd")), fragBytes(true, opCont, []byte("\xed\xa0\x80")))},
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
			c.Write(concat(tc.send, frameBytes(opText, []byte("next"))))
			c.ExpectClose(1007)
			if err := recv(t, done, "next receive"); !errors.Is(err, websocket.ErrConnClosed) {
				t.Errorf("receive after the invalid message returned %v, want ErrConnClosed", err)
			}
		})
	}
}

// A message not read to the end is skipped by the next ReceiveMessage.
func TestReceiveMessagePartlyReadThenNext(t *testing.T) {
	type result struct {
		first []byte
		tp    websocket.MessageType
		next  []byte
		err   error
	}
	done := make(chan result, 1)
	ts := startHandler(t, func(c *websocket.Conn) {
		var r result
		_, rd, err := c.ReceiveMessage()
		if err != nil {
			r.err = err
			done <- r
			return
		}
		buf := make([]byte, 3)
		n, _ := io.ReadFull(rd, buf)
		r.first = buf[:n]
		r.tp, rd, r.err = c.ReceiveMessage()
		if r.err == nil {
			r.next, r.err = io.ReadAll(rd)
		}
		done <- r
		c.GetStatus()
	})
	c := dialWS(t, ts)
	c.Write(concat(
		fragBytes(false, opBinary, []byte("abcdef")),
		frameBytes(opPing, []byte("mid")),
		fragBytes(true, opCont, bytes.Repeat([]byte("z"), 70000)),
		frameBytes(opText, []byte("second")),
	))
	c.ExpectPong([]byte("mid"))
	r := recv(t, done, "handler")
	if string(r.first) != "abc" || r.err != nil || r.tp != websocket.Text || string(r.next) != "second" {
		t.Errorf("got first %q, next %v %q, err %v; want abc, Text second, nil", r.first, r.tp, r.next, r.err)
	}
	c.SendClose(1000, "")
	c.ExpectClose(1000)
}

func TestMessageTypeAndStatusValues(t *testing.T) {
	if websocket.Text != 1 || websocket.Binary != 2 {
		t.Errorf("Text=%d Binary=%d, want 1 and 2", websocket.Text, websocket.Binary)
	}
	if websocket.Text.String() != "Text" || websocket.Binary.String() != "Binary" {
		t.Errorf("String() = %q, %q", websocket.Text.String(), websocket.Binary.String())
	}
	want := map[websocket.Status]uint16{
		websocket.StatusOK: 1000, websocket.StatusGoingAway: 1001, websocket.StatusProtocolError: 1002,
		websocket.StatusUnsupportedType: 1003, websocket.StatusNotSent: 1005, websocket.StatusDropped: 1006,
		websocket.StatusInvalidData: 1007, websocket.StatusPolicyViolation: 1008, websocket.StatusTooLarge: 1009,
		websocket.StatusInternalServerError: 1011,
	}
	if len(want) != 10 {
		t.Errorf("status constants are not distinct")
	}
	for s, v := range want {
		if uint16(s) != v {
			t.Errorf("status %d, want %d", s, v)
		}
	}
	sentinels := []error{websocket.ErrConnClosed, websocket.ErrMessageType, websocket.ErrStatusCode, websocket.ErrTooLarge}
	for i, a := range sentinels {
		for j, b := range sentinels {
			if a == nil || (i != j && errors.Is(a, b)) {
				t.Errorf("sentinel errors %v and %v are not distinct", a, b)
			}
		}
	}
}

// The message type is reported by ReceiveMessage.
func TestReceiveMessageReportsType(t *testing.T) {
	types := make(chan websocket.MessageType, 2)
	ts := startHandler(t, func(c *websocket.Conn) {
		for range 2 {
			tp, r, err := c.ReceiveMessage()
			if err != nil {
				return
			}
			io.Copy(io.Discard, r)
			types <- tp
		}
		c.GetStatus()
	})
	c := dialWS(t, ts)
	c.SendText("t")
	c.Send(opBinary, []byte("b"))
	if tp := recv(t, types, "first message"); tp != websocket.Text {
		t.Errorf("text message reported as %v", tp)
	}
	if tp := recv(t, types, "second message"); tp != websocket.Binary {
		t.Errorf("binary message reported as %v", tp)
	}
	c.SendClose(1000, "")
	c.ExpectClose(1000)
}

// SendText with invalid UTF-8 returns an error, sends nothing and leaves the
// connection usable.
func TestSendTextInvalidUTF8SendsNothing(t *testing.T) {
	bad := []string{"\xff", "abc\xc0\xaf", "\xed\xa0\x80", "a\xe2\x82", "\xf4\x90\x80\x80", "ok\x80"}
	errs := make(chan []error, 1)
	ts := startHandler(t, func(c *websocket.Conn) {
		var e []error
		for _, s := range bad {
			e = append(e, c.SendText(s))
		}
		e = append(e, c.SendText("valid"))
		errs <- e
		c.GetStatus()
	})
	c := dialWS(t, ts)
	c.ExpectText("valid") // the first thing on the wire
	got := recv(t, errs, "sends")
	for i, s := range bad {
		if got[i] == nil || errors.Is(got[i], websocket.ErrConnClosed) {
			t.Errorf("SendText(%q) = %v, want a UTF-8 error", s, got[i])
		}
	}
	if got[len(bad)] != nil {
		t.Errorf("SendText(valid) = %v", got[len(bad)])
	}
	c.SendClose(1000, "")
	c.ExpectClose(1000)
}

// SendMessage rejects types other than Text and Binary.
func TestSendMessageWrongTypeIsErrMessageType(t *testing.T) {
	errs := make(chan []error, 1)
	ts := startHandler(t, func(c *websocket.Conn) {
		var e []error
		for _, tp := range []websocket.MessageType{0, 3, 8, 9, 10, 255} {
			w, err := c.SendMessage(tp)
			if w != nil && err == nil {
				w.Close()
			}
			e = append(e, err)
		}
		e = append(e, c.SendText("after"))
		errs <- e
		c.GetStatus()
	})
	c := dialWS(t, ts)
	c.ExpectText("after")
	got := recv(t, errs, "SendMessage calls")
	for i, err := range got[:len(got)-1] {
		if !errors.Is(err, websocket.ErrMessageType) {
			t.Errorf("SendMessage #%d returned %v, want ErrMessageType", i, err)
		}
	}
	if got[len(got)-1] != nil {
		t.Errorf("SendText after wrong types: %v", got[len(got)-1])
	}
	c.SendClose(1000, "")
	c.ExpectClose(1000)
}

// SendMessage's writer streams: a large first Write puts non-final frames
// of the right type on the wire before Close; Close sends the final frame.
// (Small writes may be buffered; 256 KiB is more than any write buffer.)
func TestSendMessageWriterStreams(t *testing.T) {
	part1 := bytes.Repeat([]byte("0123456789abcdef"), 16384) // 256 KiB
	for _, tp := range []websocket.MessageType{websocket.Text, websocket.Binary} {
		t.Run(tp.String(), func(t *testing.T) {
			goOn := make(chan struct{})
			errs := make(chan error, 4)
			ts := startHandler(t, func(c *websocket.Conn) {
				w, err := c.SendMessage(tp)
				if err != nil {
					errs <- err
					return
				}
				_, err = w.Write(part1)
				errs <- err
				select {
				case <-goOn:
				case <-time.After(ioTimeout):
				}
				_, err = w.Write([]byte("part2"))
				errs <- err
				errs <- w.Close()
				c.GetStatus()
			})
			c := dialWS(t, ts)
			var got []byte
			for i := 0; len(got) < len(part1)/2; i++ {
				f, err := c.ReadFrameTimeout(promptly)
				if err != nil {
					t.Fatalf("only %d of %d bytes on the wire after the writer's first Write (before Close): %v", len(got), len(part1), err)
				}
				wantOp := opCont
				if i == 0 {
					wantOp = byte(tp)
				}
				if f.Fin || f.Op != wantOp {
					t.Fatalf("frame %d before Close: %v, want non-final op=%d", i, f, wantOp)
				}
				got = append(got, f.Payload...)
			}
			close(goOn)
			for range 1000 {
				f := c.ReadFrame()
				if f.Op != opCont {
					t.Fatalf("frame %v inside the message, want continuation", f)
				}
				got = append(got, f.Payload...)
				if f.Fin {
					break
				}
			}
			if want := append(append([]byte(nil), part1...), "part2"...); !bytes.Equal(got, want) {
				t.Errorf("message %s, want %s", trunc(got), trunc(want))
			}
			for i := range 3 {
				if err := recv(t, errs, "writer calls"); err != nil {
					t.Errorf("writer call %d: %v", i, err)
				}
			}
			c.SendClose(1000, "")
			c.ExpectClose(1000)
		})
	}
}

// Empty messages via SendMessage and SendText/SendBinary.
func TestSendEmptyMessages(t *testing.T) {
	ts := startHandler(t, func(c *websocket.Conn) {
		for _, tp := range []websocket.MessageType{websocket.Text, websocket.Binary} {
			if w, err := c.SendMessage(tp); err == nil {
				w.Close()
			}
		}
		c.SendText("")
		c.SendBinary(nil)
		c.GetStatus()
	})
	c := dialWS(t, ts)
	c.ExpectText("")
	c.ExpectBinary(nil)
	c.ExpectText("")
	c.ExpectBinary(nil)
	c.SendClose(1000, "")
	c.ExpectClose(1000)
}

// A text writer sends only valid UTF-8, and never a cut message as a whole
// one: a character may be split across writes, but bytes that cannot be
// valid, or a message that would end inside a character, give the message
// up. Nothing of these short messages has left, so nothing is sent, Write
// (or Close) and Close return the error, and the connection goes on.
// Rows: O3; "Message writers".
func TestSendMessageTextWriterUTF8(t *testing.T) {
	tests := []struct {
		name     string
		writes   []string
		want     string // the message; "": none, the writer gave it up
		wantWErr bool   // a Write fails (else only Close, if want is "")
	}{
		{name: "CharSplitAcrossWrites", writes: []string{"a\xe2\x82", "\xac b"}, want: "a€ b"},
		{name: "FourByteCharOverThreeWrites", writes: []string{"\xf0\x9f", "\x98", "\x80!"}, want: "😀!"},
		{name: "ByteByByte", writes: []string{"\xce", "\xba", "\xe1", "\xbd", "\xb9"}, want: "\xce\xba\xe1\xbd\xb9"},
		{name: "InvalidByte", writes: []string{"ab\xff"}, wantWErr: true},
		{name: "InvalidAfterValidWrite", writes: []string{"ok ", "\xc3\x28"}, wantWErr: true},
		{name: "Surrogate", writes: []string{"x", "\xed\xa0\x80"}, wantWErr: true},
		{name: "InvalidContinuationAcrossWrites", writes: []string{"ab\xe2", "\x28"}, wantWErr: true},
		{name: "WritesAfterTheRefusalFailToo", writes: []string{"ab\xff", "cd"}, wantWErr: true},
		{name: "IncompleteAtClose", writes: []string{"ab\xe2\x82"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			type result struct {
				wErrs       []error
				cErr, after error
			}
			done := make(chan result, 1)
			ts := startHandler(t, func(c *websocket.Conn) {
				var r result
				w, err := c.SendMessage(websocket.Text)
				if err != nil {
					r.cErr = err
					done <- r
					return
				}
				for _, s := range tc.writes {
					_, err := w.Write([]byte(s))
					r.wErrs = append(r.wErrs, err)
				}
				r.cErr = w.Close()
				r.after = c.SendText("after")
				done <- r
				c.GetStatus()
			})
			c := dialWS(t, ts)
			if tc.want != "" {
				c.ExpectText(tc.want)
			}
			c.ExpectText("after") // nothing of a message given up came before it
			r := recv(t, done, "writer")
			failed := slices.IndexFunc(r.wErrs, func(err error) bool { return err != nil })
			if tc.wantWErr != (failed >= 0) {
				t.Errorf("Write errors %v, want one: %v", r.wErrs, tc.wantWErr)
			}
			if failed >= 0 {
				for _, err := range r.wErrs[failed:] {
					if err == nil || !strings.Contains(err.Error(), "UTF-8") || errors.Is(err, websocket.ErrConnClosed) {
						t.Errorf("Write errors %v: from the refusal on, each must be the UTF-8 error", r.wErrs)
					}
				}
			}
			switch {
			case tc.want == "" && (r.cErr == nil || !strings.Contains(r.cErr.Error(), "UTF-8") || errors.Is(r.cErr, websocket.ErrConnClosed)):
				t.Errorf("Close returned %v, want the UTF-8 error, the connection open", r.cErr)
			case tc.want != "" && r.cErr != nil:
				t.Errorf("Close returned %v", r.cErr)
			}
			if r.after != nil {
				t.Errorf("SendText after the writer: %v", r.after)
			}
			c.SendClose(1000, "")
			c.ExpectClose(1000)
		})
	}
}

// A SendMessage writer holds the send side from the SendMessage call until
// its Close: other senders wait.
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
		stream = append(stream, fragBytes(false, opText, []byte(s[:half]))...)
		if i%10 == 0 {
			stream = append(stream, frameBytes(opPing, []byte("p"))...)
		}
		stream = append(stream, fragBytes(true, opCont, []byte(s[half:]))...)
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

// Close racing with senders: sends either succeed or return ErrConnClosed;
// nothing is sent after the close frame.
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

// A long ping payload in the 16-bit form is still refused; a 125-byte
// close frame is fine. (Boundary of the control-frame length rule.)
func TestControlFrameLengthBoundary(t *testing.T) {
	ts, results := startEcho(t)
	c := dialWS(t, ts)
	reason := strings.Repeat("r", 123)
	c.Send(opPing, bytes.Repeat([]byte{1}, 125))
	c.ExpectPong(bytes.Repeat([]byte{1}, 125))
	c.Send(opClose, closePayload(3333, reason)) // 125 bytes
	c.ExpectClose(3333)
	res := recv(t, results, "handler")
	if res.Status != (statusResult{3333, reason}) {
		t.Errorf("GetStatus = %v", res.Status)
	}
}

// Helper sanity: our own frame encoder produces what RFC 6455 §5.7 shows.
func TestRawClientEncoderMatchesRFCExamples(t *testing.T) {
	key := &[4]byte{0x37, 0xfa, 0x21, 0x3d}
	got := Frame{Fin: true, Op: opText, Payload: []byte("Hello"), Mask: key}.Bytes()
	want := []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}
	if !bytes.Equal(got, want) {
		t.Errorf("masked Hello = %x, want %x", got, want)
	}
	got = Frame{Fin: true, Op: opBinary, Payload: make([]byte, 256), NoMask: true}.Bytes()
	if !bytes.Equal(got[:4], []byte{0x82, 0x7E, 0x01, 0x00}) {
		t.Errorf("256-byte header = %x", got[:4])
	}
	got = Frame{Fin: true, Op: opBinary, Payload: make([]byte, 65536), NoMask: true}.Bytes()
	if !bytes.Equal(got[:10], []byte{0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0}) {
		t.Errorf("64KiB header = %x", got[:10])
	}
	if binary.BigEndian.Uint16(closePayload(1000, "")) != 1000 || !utf8.ValidString("ok") {
		t.Errorf("closePayload broken")
	}
}

// startWriterHolder starts a handler that opens a SendMessage writer, puts
// 256 KiB on the wire and then keeps the writer open until the connection
// has ended (GetStatus returns). Then it calls Write and Close on the writer
// and reports both errors.
func startWriterHolder(t *testing.T) (*testServer, <-chan [2]error) {
	done := make(chan [2]error, 1)
	ts := startHandler(t, func(c *websocket.Conn) {
		w, err := c.SendMessage(websocket.Binary)
		if err != nil {
			done <- [2]error{err, err}
			return
		}
		w.Write(make([]byte, 256<<10))
		c.GetStatus()
		_, werr := w.Write([]byte("more"))
		done <- [2]error{werr, w.Close()}
	})
	return ts, done
}

// A ping is answered while the handler holds an open SendMessage writer
// (control frames may be interleaved with a fragmented message).
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

// The client's close is answered while the handler holds an open writer;
// Write and Close on that writer afterwards return ErrConnClosed.
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

// Two goroutines calling Close at once: one close frame on the wire, one
// call returns nil, the other ErrConnClosed.
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

// Server and client send close frames at the same time: exactly one close
// frame from the server, TCP closed, status is the client's close.
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

// GetStatus may be called from many goroutines; all get the same answer.
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

// The Conn stays usable after Handle returns; its owner closes it.
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

// A receive blocked while the server closes returns ErrConnClosed once the
// connection ends.
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

// After the server's close frame nothing more is sent: a ping from the
// client while the server waits for its close is not answered.
func TestNothingSentAfterServerCloseFrame(t *testing.T) {
	closeErr := make(chan error, 1)
	ts := startHandler(t, func(c *websocket.Conn) {
		closeErr <- c.Close(websocket.StatusOK, "")
	})
	c := dialWS(t, ts)
	c.ExpectCloseFrame(1000)
	c.Send(opPing, []byte("late"))
	c.SendText("late data")
	c.Write(fragBytes(false, opBinary, []byte("late fragment")))
	c.ExpectNothing(50 * time.Millisecond)
	c.SendClose(1000, "")
	c.ExpectEOF()
	if err := recv(t, closeErr, "Close"); err != nil {
		t.Errorf("Close returned %v, want nil", err)
	}
}

// Data frames the client keeps sending while the server waits for its
// close frame do not disturb the close handshake.
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
		c.Write(fragBytes(false, op, []byte(fmt.Sprintf("chunk %d ", i))))
	}
	c.Write(fragBytes(true, opCont, []byte("end")))
	c.SendClose(1000, "ok")
	c.ExpectEOF()
	res := recv(t, done, "Close")
	if res.err != nil || res.status != (statusResult{1000, "ok"}) {
		t.Errorf("Close = %v, GetStatus = %v; want nil, {1000 ok}", res.err, res.status)
	}
}

// Many pings in one burst are all answered, in order.
func TestPingBurstAllAnswered(t *testing.T) {
	ts, _ := startEcho(t)
	c := dialWS(t, ts)
	var stream []byte
	for i := range 300 {
		stream = append(stream, frameBytes(opPing, []byte(fmt.Sprint(i)))...)
	}
	c.Write(stream)
	for i := range 300 {
		c.ExpectPong([]byte(fmt.Sprint(i)))
	}
	c.SendClose(1000, "")
	c.ExpectClose(1000)
}

// With no message size limit, a huge declared frame length is streamed,
// not allocated up front: the handler reads the first bytes, then the
// client drops TCP.
func TestHugeDeclaredLengthIsStreamed(t *testing.T) {
	first := make(chan []byte, 1)
	done := make(chan error, 1)
	ts := startServer(t, &websocket.Handler{MaxMessageSize: -1, Handle: func(c *websocket.Conn) {
		_, r, err := c.ReceiveMessage()
		if err != nil {
			first <- nil
			done <- err
			return
		}
		buf := make([]byte, 10)
		n, _ := io.ReadFull(r, buf)
		first <- buf[:n]
		_, err = io.Copy(io.Discard, r)
		done <- err
	}})
	c := dialWS(t, ts)
	c.Write(Frame{Fin: true, Op: opBinary, Payload: []byte("0123456789abcdef"), DeclaredLen: u64(1 << 40)}.Bytes())
	if p := recv(t, first, "the first bytes of a 1 TiB frame"); string(p) != "0123456789" {
		t.Errorf("handler read %q, want 0123456789", p)
	}
	c.Close()
	if err := recv(t, done, "the reader to fail"); !errors.Is(err, websocket.ErrConnClosed) {
		t.Errorf("reader of a truncated 1 TiB frame returned %v, want ErrConnClosed", err)
	}
}

// Sending and receiving at the same time from different goroutines.
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
		stream = append(stream, frameBytes(opText, []byte(fmt.Sprintf("client %d", i)))...)
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

// Close is bounded even when the client stopped reading and a send is
// blocked on a full TCP buffer: the blocked send fails with ErrConnClosed
// and Close returns within the close timeout (plus slack).
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

// The message reader returns io.EOF at the end of the message (and again on
// further reads), after exactly the message's bytes.
func TestReceiveMessageReaderEOF(t *testing.T) {
	type result struct {
		data       []byte
		err1, err2 error
	}
	done := make(chan result, 1)
	ts := startHandler(t, func(c *websocket.Conn) {
		var r result
		_, rd, err := c.ReceiveMessage()
		if err != nil {
			r.err1 = err
			done <- r
			return
		}
		buf := make([]byte, 4)
		for range 100 {
			n, err := rd.Read(buf)
			r.data = append(r.data, buf[:n]...)
			if err != nil {
				r.err1 = err
				break
			}
		}
		_, r.err2 = rd.Read(buf)
		done <- r
		c.GetStatus()
	})
	c := dialWS(t, ts)
	c.Write(concat(fragBytes(false, opText, []byte("hello ")), fragBytes(false, opCont, nil), fragBytes(true, opCont, []byte("world"))))
	r := recv(t, done, "handler")
	if string(r.data) != "hello world" || r.err1 != io.EOF || r.err2 != io.EOF {
		t.Errorf("reader gave %q, %v, then %v; want \"hello world\", io.EOF, io.EOF", r.data, r.err1, r.err2)
	}
	c.SendClose(1000, "")
	c.ExpectClose(1000)
}

// A client that sends its close frame and closes TCP at once (without
// waiting for the reply) still completed the close handshake from the
// server's point of view: GetStatus reports its code.
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

// The client replies to the server's close and closes TCP at once: Close
// still returns nil.
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

// Fail-fast also inside a frame: the server answers 1007 when only the
// first bytes of a long text frame (containing invalid UTF-8) have arrived.
func TestInvalidUTF8FailsFastInsidePartialFrame(t *testing.T) {
	ts, results := startEcho(t)
	c := dialWS(t, ts)
	full := Frame{Fin: true, Op: opText, Payload: append([]byte("abc\xff"), make([]byte, 996)...)}.Bytes()
	c.Write(full[:8+10]) // 2+2 header bytes, 4 mask bytes, 10 of 1000 payload bytes
	c.ExpectClose(1007)
	checkDropped(t, recv(t, results, "handler"))
}

// A long text written through a text writer in odd-sized chunks (splitting
// characters everywhere, crossing any internal buffer boundary) arrives
// intact.
func TestSendMessageTextWriterLongMultibyte(t *testing.T) {
	text := strings.Repeat("€😀aé", 40000) // 400 KB
	errs := make(chan error, 1)
	ts := startHandler(t, func(c *websocket.Conn) {
		w, err := c.SendMessage(websocket.Text)
		if err != nil {
			errs <- err
			return
		}
		for off := 0; off < len(text); off += 777 {
			if _, err := w.Write([]byte(text[off:min(off+777, len(text))])); err != nil {
				w.Close()
				errs <- err
				return
			}
		}
		errs <- w.Close()
		c.GetStatus()
	})
	c := dialWS(t, ts)
	c.ExpectText(text)
	if err := recv(t, errs, "writer"); err != nil {
		t.Errorf("writer: %v", err)
	}
	c.SendClose(1000, "")
	c.ExpectClose(1000)
}

// A reader from ReceiveMessage is valid only until the next receive call:
// afterwards it must not hand out bytes of the next message, and the new
// message stays intact.
func TestStaleReaderDoesNotStealNextMessage(t *testing.T) {
	type result struct {
		stale    []byte
		staleErr error
		next     string
		err      error
	}
	done := make(chan result, 1)
	ts := startHandler(t, func(c *websocket.Conn) {
		var r result
		_, r1, err := c.ReceiveMessage()
		if err != nil {
			r.err = err
			done <- r
			return
		}
		_, r2, err := c.ReceiveMessage()
		if err != nil {
			r.err = err
			done <- r
			return
		}
		r.stale, r.staleErr = io.ReadAll(io.LimitReader(r1, 100))
		b, err := io.ReadAll(r2)
		r.next, r.err = string(b), err
		done <- r
		c.GetStatus()
	})
	c := dialWS(t, ts)
	c.Write(concat(frameBytes(opText, []byte("first")), frameBytes(opText, []byte("second"))))
	r := recv(t, done, "handler")
	if len(r.stale) != 0 || r.next != "second" || r.err != nil {
		t.Errorf("stale reader gave %q (%v), new reader %q (%v); want nothing from the stale reader and the new message intact", r.stale, r.staleErr, r.next, r.err)
	}
	c.SendClose(1000, "")
	c.ExpectClose(1000)
}

// A protocol error by the client while the server is in the middle of
// sending: the close 1002 frame is not put inside a data frame, no data
// frame follows it, and the sender gets ErrConnClosed.
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
			c.Write(Frame{Fin: true, Op: opText, Payload: []byte("x"), NoMask: true}.Bytes())
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

// A long mixed stream (fragmented messages, pings, pongs, empty frames, all
// length encodings) split at pseudo-random offsets is parsed correctly.
func TestRandomlySplitMixedStream(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint("Seed", seed), func(t *testing.T) {
			t.Parallel()
			rng := mrand.New(mrand.NewPCG(seed, 42))
			var stream []byte
			var wantMsgs [][]byte
			var wantOps []byte
			var wantPongs [][]byte
			sizes := []int{0, 1, 5, 125, 126, 127, 300, 65535, 65536, 70000}
			for range 40 {
				op := opBinary
				if rng.IntN(2) == 0 {
					op = opText
				}
				nFrags := 1 + rng.IntN(4)
				var msg []byte
				for i := range nFrags {
					n := sizes[rng.IntN(len(sizes))]
					if rng.IntN(3) > 0 {
						n = rng.IntN(200)
					}
					p := bytes.Repeat([]byte{byte('a' + rng.IntN(26))}, n)
					msg = append(msg, p...)
					fop := opCont
					if i == 0 {
						fop = op
					}
					stream = append(stream, fragBytes(i == nFrags-1, fop, p)...)
					if rng.IntN(4) == 0 {
						pp := []byte(fmt.Sprint("ping", len(wantPongs)))
						stream = append(stream, frameBytes(opPing, pp)...)
						wantPongs = append(wantPongs, pp)
					}
					if rng.IntN(6) == 0 {
						stream = append(stream, frameBytes(opPong, []byte("ignored"))...)
					}
				}
				wantMsgs = append(wantMsgs, msg)
				wantOps = append(wantOps, op)
			}
			var offs []int
			for off := 0; off < len(stream); {
				off += 1 + rng.IntN(3000)
				if off < len(stream) {
					offs = append(offs, off)
				}
			}
			ts, _ := startEcho(t)
			c := dialWS(t, ts)
			writeDone := make(chan error, 1)
			go func() {
				prev := 0
				for _, off := range append(offs, len(stream)) {
					if err := c.TryWrite(stream[prev:off]); err != nil {
						writeDone <- err
						return
					}
					prev = off
				}
				writeDone <- nil
			}()
			msgs, ops, pongs := c.readMsgsAndPongs(len(wantMsgs), len(wantPongs))
			if err := recv(t, writeDone, "stream written"); err != nil {
				t.Fatalf("writing: %v", err)
			}
			for i := range wantMsgs {
				if ops[i] != wantOps[i] || !bytes.Equal(msgs[i], wantMsgs[i]) {
					t.Fatalf("message %d: op %#x %s, want op %#x %s", i, ops[i], trunc(msgs[i]), wantOps[i], trunc(wantMsgs[i]))
				}
			}
			for i := range wantPongs {
				if !bytes.Equal(pongs[i], wantPongs[i]) {
					t.Fatalf("pong %d = %q, want %q", i, pongs[i], wantPongs[i])
				}
			}
			c.SendClose(1000, "")
			c.ExpectClose(1000)
		})
	}
}

// A protocol error or invalid data in the middle of a message makes every
// kind of receive fail with an error wrapping ErrConnClosed.
func TestReceiveFailsWithErrConnClosedOnViolationMidMessage(t *testing.T) {
	violations := []struct {
		name string
		code uint16
		send func(op byte) []byte
	}{
		{"RSVOnSecondFragment", 1002, func(op byte) []byte {
			return concat(fragBytes(false, op, []byte("a")), Frame{Fin: true, Rsv: 2, Op: opCont, Payload: []byte("b")}.Bytes())
		}},
		{"NewMessageInsideFragmented", 1002, func(op byte) []byte {
			return concat(fragBytes(false, op, []byte("a")), frameBytes(op, []byte("b")))
		}},
		{"UnmaskedSecondFragment", 1002, func(op byte) []byte {
			return concat(fragBytes(false, op, []byte("a")), Frame{Fin: true, Op: opCont, Payload: []byte("b"), NoMask: true}.Bytes())
		}},
	}
	for _, v := range violations {
		for _, rc := range receivers {
			t.Run(v.name+"/"+rc.name, func(t *testing.T) {
				t.Parallel()
				type result struct {
					data []byte
					err  error
				}
				done := make(chan result, 1)
				ts := startHandler(t, func(c *websocket.Conn) {
					var r result
					r.data, r.err = rc.recv(c)
					done <- r
					c.GetStatus()
				})
				c := dialWS(t, ts)
				c.Write(v.send(rc.op))
				c.ExpectClose(v.code)
				if r := recv(t, done, "receive"); !errors.Is(r.err, websocket.ErrConnClosed) {
					t.Errorf("receive returned %q, %v; want an error wrapping ErrConnClosed", r.data, r.err)
				}
			})
		}
	}
}

// A protocol error by the client while the server waits for its close
// frame: no second close frame, the connection is dropped, Close reports an
// error wrapping ErrConnClosed.
func TestProtocolErrorWhileServerClosing(t *testing.T) {
	ts, done := startCloser(t, websocket.StatusOK, "")
	c := dialWS(t, ts)
	c.ExpectCloseFrame(1000)
	c.Write(Frame{Fin: true, Op: opBinary, Payload: []byte("x"), NoMask: true}.Bytes())
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

// Send calls do not retain the caller's buffer (io.Writer contract): a
// buffer changed after the call does not change what goes on the wire.
func TestSendDoesNotRetainBuffer(t *testing.T) {
	ts := startHandler(t, func(c *websocket.Conn) {
		buf := []byte("AAAA")
		c.SendBinary(buf)
		copy(buf, "BBBB")
		c.SendBinary(buf)
		for _, tp := range []websocket.MessageType{websocket.Binary, websocket.Text} {
			w, err := c.SendMessage(tp)
			if err != nil {
				return
			}
			p := []byte("writer-data")
			w.Write(p)
			copy(p, "XXXXXXXXXXX")
			w.Write([]byte("+tail"))
			w.Close()
		}
		c.GetStatus()
	})
	c := dialWS(t, ts)
	c.ExpectBinary([]byte("AAAA"))
	c.ExpectBinary([]byte("BBBB"))
	c.ExpectBinary([]byte("writer-data+tail"))
	c.ExpectText("writer-data+tail")
	c.SendClose(1000, "")
	c.ExpectClose(1000)
}

// Pings arriving while the server writes large frames are answered between
// frames, never inside one.
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

// A handler that only sends learns of a dropped TCP connection even when
// an unread message from the client is pending (the background reader
// cannot see the EOF behind it, the failing writes must report it).
func TestSendingHandlerLearnsOfDropBehindUnreadMessage(t *testing.T) {
	ts, done := startReporting(t, func(c *websocket.Conn) error { return sendUntilClosed(c, 10*time.Second) })
	c := dialWS(t, ts)
	c.SendText("never read")
	c.ReadFrame()
	dropAndCheckSenderLearns(t, c, done)
}

// Races between the server's Close and what the client does at the same
// moment: whatever wins, the client always gets exactly one well-formed
// close frame before the TCP connection ends.
func TestCloseRacesAlwaysDeliverCloseFrame(t *testing.T) {
	clientActs := []struct {
		name  string
		bytes []byte
		codes []uint16 // acceptable close codes from the server
	}{
		{"ProtocolError", Frame{Fin: true, Op: opText, Payload: []byte("x"), NoMask: true}.Bytes(), []uint16{1000, 1002}},
		{"InvalidUTF8", frameBytes(opText, []byte("\xff")), []uint16{1000, 1007}},
		{"ClientClose", frameBytes(opClose, closePayload(1001, "")), []uint16{1000, 1001}},
		{"Data", frameBytes(opText, []byte("data")), []uint16{1000}},
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
					c.TryWrite(frameBytes(opClose, closePayload(1000, "")))
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

// ReceiveText does not allocate maxLength bytes up front.
func TestReceiveTextDoesNotPreallocateMaxLength(t *testing.T) {
	done := make(chan uint64, 1)
	ts := startHandler(t, func(c *websocket.Conn) {
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		c.ReceiveText(1 << 30)
		runtime.ReadMemStats(&m1)
		done <- m1.TotalAlloc - m0.TotalAlloc
		c.GetStatus()
	})
	c := dialWS(t, ts)
	c.SendText("small")
	if n := recv(t, done, "ReceiveText"); n > 64<<20 {
		t.Errorf("ReceiveText(1 GiB) of a 5-byte message allocated %d bytes", n)
	}
	c.SendClose(1000, "")
	c.ExpectClose(1000)
}
