package websocket_test

// Receiving (rows O1, O4): what the receive calls and message readers give
// the application, however the client frames and splits its messages.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/wsmachine/wsmachine/websocket"

	"github.com/wsmachine/wsmachine/websocket/internal/wstest"
)

// Valid messages of all shapes are echoed intact (fragmented, empty,
// every length encoding, UTF-8 split across fragments, zero mask key).
// Rows: O1, O4, O3, O6.
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
		{"EmptyText", wstest.FrameBytes(opText, nil), []msg{{opText, nil}}},
		{"EmptyBinary", wstest.FrameBytes(opBinary, nil), []msg{{opBinary, nil}}},
		{"Len125", wstest.FrameBytes(opBinary, big(125)), []msg{{opBinary, big(125)}}},
		{"Len126", wstest.FrameBytes(opBinary, big(126)), []msg{{opBinary, big(126)}}},
		{"Len65535", wstest.FrameBytes(opText, big(65535)), []msg{{opText, big(65535)}}},
		{"Len65536", wstest.FrameBytes(opText, big(65536)), []msg{{opText, big(65536)}}},
		{"OneMiB", wstest.FrameBytes(opBinary, big(1<<20)), []msg{{opBinary, big(1 << 20)}}},
		{"BinaryInvalidUTF8IsFine", wstest.FrameBytes(opBinary, []byte{0xff, 0xfe, 0xc0, 0x80}), []msg{{opBinary, []byte{0xff, 0xfe, 0xc0, 0x80}}}},
		{"ZeroMaskKey", wstest.Frame{Fin: true, Op: opText, Payload: []byte("zero key"), Mask: zeroMask}.Bytes(), []msg{{opText, []byte("zero key")}}},
		{"ThreeFragments", wstest.Concat(wstest.FragBytes(false, opText, []byte("a")), wstest.FragBytes(false, opCont, []byte("b")), wstest.FragBytes(true, opCont, []byte("c"))), []msg{{opText, []byte("abc")}}},
		{"EmptyFragments", wstest.Concat(wstest.FragBytes(false, opBinary, nil), wstest.FragBytes(false, opCont, nil), wstest.FragBytes(true, opCont, nil)), []msg{{opBinary, nil}}},
		{"EmptyFinalFragment", wstest.Concat(wstest.FragBytes(false, opText, []byte("x")), wstest.FragBytes(true, opCont, nil)), []msg{{opText, []byte("x")}}},
		{"UTF8SplitAcrossFragments", wstest.Concat(wstest.FragBytes(false, opText, []byte("\xce")), wstest.FragBytes(true, opCont, []byte("\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"))), []msg{{opText, []byte("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5")}}},
		{"FourByteCharOverFourFragments", wstest.Concat(wstest.FragBytes(false, opText, []byte("\xf0")), wstest.FragBytes(false, opCont, []byte("\x9f")), wstest.FragBytes(false, opCont, []byte("\x98")), wstest.FragBytes(true, opCont, []byte("\x80"))), []msg{{opText, []byte("😀")}}},
		{"UTF8Boundaries", wstest.FrameBytes(opText, []byte("\x00\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf")), []msg{{opText, []byte("\x00\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf")}}},
		{"FragmentedLargeFrames", wstest.Concat(wstest.FragBytes(false, opBinary, big(70000)), wstest.FragBytes(true, opCont, big(300))), []msg{{opBinary, append(big(70000), big(300)...)}}},
		{"TenThousandOneByteFragments", func() []byte {
			b := wstest.FragBytes(false, opText, []byte("x"))
			for range 9998 {
				b = append(b, wstest.FragBytes(false, opCont, []byte("y"))...)
			}
			return append(b, wstest.FragBytes(true, opCont, []byte("z"))...)
		}(), []msg{{opText, []byte("x" + strings.Repeat("y", 9998) + "z")}}},
		{"ManyMessagesOneWrite", wstest.Concat(wstest.FrameBytes(opText, []byte("1")), wstest.FrameBytes(opBinary, []byte("2")), wstest.FrameBytes(opText, []byte("3"))), []msg{{opText, []byte("1")}, {opBinary, []byte("2")}, {opText, []byte("3")}}},
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

// The server parses its input correctly however the byte stream is split
// into TCP segments.
// Rows: O1, O5, O6.
func TestSplitByteStream(t *testing.T) {
	small := wstest.Concat(
		wstest.FrameBytes(opText, []byte("hello")),
		wstest.FrameBytes(opPing, []byte("p1")),
		wstest.FragBytes(false, opBinary, []byte("ab")),
		wstest.FrameBytes(opPing, nil),
		wstest.FragBytes(true, opCont, []byte("cd")),
		wstest.FrameBytes(opBinary, bytes.Repeat([]byte{7}, 300)),
	)
	bigPayload := bytes.Repeat([]byte("0123456789"), 7000)
	bigFrame := wstest.FrameBytes(opText, bigPayload) // 64-bit length form, 14-byte header
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
			c.WriteChunks(wstest.FrameBytes(opClose, wstest.ClosePayload(1000, "split")), 1)
			c.ExpectClose(1000)
		})
	}
}

// A long mixed stream (fragmented messages, pings, pongs, empty frames, all
// length encodings) split at pseudo-random offsets is parsed correctly.
// Rows: O1, O2, O5.
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
					stream = append(stream, wstest.FragBytes(i == nFrags-1, fop, p)...)
					if rng.IntN(4) == 0 {
						pp := []byte(fmt.Sprint("ping", len(wantPongs)))
						stream = append(stream, wstest.FrameBytes(opPing, pp)...)
						wantPongs = append(wantPongs, pp)
					}
					if rng.IntN(6) == 0 {
						stream = append(stream, wstest.FrameBytes(opPong, []byte("ignored"))...)
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

// ReceiveMessage streams: the first fragment can be read before the client
// sent the rest of the message.
// Rows: O1, O4.
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
			c.Write(wstest.FragBytes(false, byte(tp), []byte("first ")))
			if p := recv(t, first, "the first fragment to reach the handler"); string(p) != "first " {
				t.Fatalf("handler read %q before the message ended, want %q", p, "first ")
			}
			c.Write(wstest.FragBytes(false, opCont, []byte("second ")))
			c.Write(wstest.FragBytes(false, opCont, nil))
			c.Write(wstest.FragBytes(true, opCont, []byte("third")))
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

// The message type is reported by ReceiveMessage.
// Rows: O4.
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

// The message reader returns io.EOF at the end of the message (and again on
// further reads), after exactly the message's bytes.
// Rows: O1, O4.
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
	c.Write(wstest.Concat(wstest.FragBytes(false, opText, []byte("hello ")), wstest.FragBytes(false, opCont, nil), wstest.FragBytes(true, opCont, []byte("world"))))
	r := recv(t, done, "handler")
	if string(r.data) != "hello world" || r.err1 != io.EOF || r.err2 != io.EOF {
		t.Errorf("reader gave %q, %v, then %v; want \"hello world\", io.EOF, io.EOF", r.data, r.err1, r.err2)
	}
	c.SendClose(1000, "")
	c.ExpectClose(1000)
}

// A message not read to the end is skipped by the next ReceiveMessage.
// Rows: O4, O5.
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
	c.Write(wstest.Concat(
		wstest.FragBytes(false, opBinary, []byte("abcdef")),
		wstest.FrameBytes(opPing, []byte("mid")),
		wstest.FragBytes(true, opCont, bytes.Repeat([]byte("z"), 70000)),
		wstest.FrameBytes(opText, []byte("second")),
	))
	c.ExpectPong([]byte("mid"))
	r := recv(t, done, "handler")
	if string(r.first) != "abc" || r.err != nil || r.tp != websocket.Text || string(r.next) != "second" {
		t.Errorf("got first %q, next %v %q, err %v; want abc, Text second, nil", r.first, r.tp, r.next, r.err)
	}
	c.SendClose(1000, "")
	c.ExpectClose(1000)
}

// A reader from ReceiveMessage is valid only until the next receive call:
// afterwards it must not hand out bytes of the next message, and the new
// message stays intact.
// Rows: O4.
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
	c.Write(wstest.Concat(wstest.FrameBytes(opText, []byte("first")), wstest.FrameBytes(opText, []byte("second"))))
	r := recv(t, done, "handler")
	if len(r.stale) != 0 || r.next != "second" || r.err != nil {
		t.Errorf("stale reader gave %q (%v), new reader %q (%v); want nothing from the stale reader and the new message intact", r.stale, r.staleErr, r.next, r.err)
	}
	c.SendClose(1000, "")
	c.ExpectClose(1000)
}

// The reader returned by ReceiveMessage yields data as frames arrive and
// returns an error wrapping ErrConnClosed (not io.EOF) when invalid UTF-8
// arrives mid-message.
// Rows: O7, O4.
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
	c.Write(wstest.FragBytes(false, opText, []byte("first")))
	if p := recv(t, got, "the first fragment to reach the handler"); string(p) != "first" {
		t.Fatalf("handler read %q, want %q", p, "first")
	}
	c.Write(wstest.FragBytes(false, opCont, []byte("\xff")))
	c.ExpectClose(1007)
	res := recv(t, done, "the reader to fail")
	if !errors.Is(res.err, websocket.ErrConnClosed) {
		t.Errorf("reader error %v, want an error wrapping ErrConnClosed", res.err)
	}
	if bytes.Contains(res.data, []byte{0xff}) {
		t.Errorf("reader passed on invalid bytes %q", res.data)
	}
}

// A protocol error or invalid data in the middle of a message makes every
// kind of receive fail with an error wrapping ErrConnClosed.
// Rows: O7, O4.
func TestReceiveFailsWithErrConnClosedOnViolationMidMessage(t *testing.T) {
	violations := []struct {
		name string
		code uint16
		send func(op byte) []byte
	}{
		{"RSVOnSecondFragment", 1002, func(op byte) []byte {
			return wstest.Concat(wstest.FragBytes(false, op, []byte("a")), wstest.Frame{Fin: true, Rsv: 2, Op: opCont, Payload: []byte("b")}.Bytes())
		}},
		{"NewMessageInsideFragmented", 1002, func(op byte) []byte {
			return wstest.Concat(wstest.FragBytes(false, op, []byte("a")), wstest.FrameBytes(op, []byte("b")))
		}},
		{"UnmaskedSecondFragment", 1002, func(op byte) []byte {
			return wstest.Concat(wstest.FragBytes(false, op, []byte("a")), wstest.Frame{Fin: true, Op: opCont, Payload: []byte("b"), NoMask: true}.Bytes())
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

// ReceiveText returns at most maxLength bytes, cut at a character boundary,
// with ErrTooLarge; binary messages give ErrMessageType; the connection
// stays usable for the next message.
// Rows: O4.
func TestReceiveTextLimits(t *testing.T) {
	tests := []struct {
		name    string
		send    []byte
		max     int
		want    string
		wantErr error
	}{
		{"Fits", wstest.FrameBytes(opText, []byte("hello")), 10, "hello", nil},
		{"ExactlyMax", wstest.FrameBytes(opText, []byte("0123456789")), 10, "0123456789", nil},
		{"Empty", wstest.FrameBytes(opText, nil), 0, "", nil},
		{"EmptyWithRoom", wstest.FrameBytes(opText, nil), 5, "", nil},
		{"TooLong", wstest.FrameBytes(opText, []byte("hello world!")), 5, "hello", websocket.ErrTooLarge},
		{"MaxZero", wstest.FrameBytes(opText, []byte("a")), 0, "", websocket.ErrTooLarge},
		{"TooLongFragmented", wstest.Concat(wstest.FragBytes(false, opText, []byte("hello ")), wstest.FragBytes(false, opCont, []byte("world")), wstest.FragBytes(true, opCont, []byte("!!!"))), 8, "hello wo", websocket.ErrTooLarge},
		{"CutBeforeMultibyte", wstest.FrameBytes(opText, []byte("ab€")), 4, "ab", websocket.ErrTooLarge},
		{"CutInsideSecondChar", wstest.FrameBytes(opText, []byte("€€")), 5, "€", websocket.ErrTooLarge},
		{"CutInsideFirstChar", wstest.FrameBytes(opText, []byte("😀")), 3, "", websocket.ErrTooLarge},
		{"MultibyteFitsExactly", wstest.FrameBytes(opText, []byte("€")), 3, "€", nil},
		{"MultibyteSplitAcrossFragmentsFits", wstest.Concat(wstest.FragBytes(false, opText, []byte("\xe2\x82")), wstest.FragBytes(true, opCont, []byte("\xac"))), 3, "€", nil},
		{"LargeTruncated", wstest.FrameBytes(opText, bytes.Repeat([]byte("x"), 100000)), 10, "xxxxxxxxxx", websocket.ErrTooLarge},
		{"Binary", wstest.FrameBytes(opBinary, []byte("bin")), 10, "", websocket.ErrMessageType},
		{"FragmentedBinary", wstest.Concat(wstest.FragBytes(false, opBinary, []byte("b")), wstest.FragBytes(true, opCont, []byte("in"))), 10, "", websocket.ErrMessageType},
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
			c.Write(wstest.Concat(tc.send, wstest.FrameBytes(opText, []byte("next"))))
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
// Rows: O4.
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
		{"Fits", wstest.FrameBytes(opBinary, seq(5)), 10, seq(5), nil},
		{"ExactlyBuf", wstest.FrameBytes(opBinary, seq(10)), 10, seq(10), nil},
		{"Empty", wstest.FrameBytes(opBinary, nil), 10, nil, nil},
		{"EmptyIntoEmptyBuf", wstest.FrameBytes(opBinary, nil), 0, nil, nil},
		{"OneByteIntoEmptyBuf", wstest.FrameBytes(opBinary, seq(1)), 0, nil, websocket.ErrTooLarge},
		{"TooLong", wstest.FrameBytes(opBinary, seq(11)), 10, seq(10), websocket.ErrTooLarge},
		{"TooLongFragmented", wstest.Concat(wstest.FragBytes(false, opBinary, seq(5)), wstest.FragBytes(false, opCont, seq(5)), wstest.FragBytes(true, opCont, seq(10))), 8, append(seq(5), seq(3)...), websocket.ErrTooLarge},
		{"FragmentedFits", wstest.Concat(wstest.FragBytes(false, opBinary, seq(3)), wstest.FragBytes(true, opCont, seq(3))), 6, append(seq(3), seq(3)...), nil},
		{"LargeTruncated", wstest.FrameBytes(opBinary, seq(100000)), 16, seq(16), websocket.ErrTooLarge},
		{"Text", wstest.FrameBytes(opText, []byte("text")), 10, nil, websocket.ErrMessageType},
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
			c.Write(wstest.Concat(tc.send, wstest.FrameBytes(opText, []byte("next"))))
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

// ReceiveText does not allocate maxLength bytes up front.
// Rows: O4.
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

// With no message size limit, a huge declared frame length is streamed,
// not allocated up front: the handler reads the first bytes, then the
// client drops TCP.
// Rows: O1, O8.
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
	c.Write(wstest.Frame{Fin: true, Op: opBinary, Payload: []byte("0123456789abcdef"), DeclaredLen: u64(1 << 40)}.Bytes())
	if p := recv(t, first, "the first bytes of a 1 TiB frame"); string(p) != "0123456789" {
		t.Errorf("handler read %q, want 0123456789", p)
	}
	c.Close()
	if err := recv(t, done, "the reader to fail"); !errors.Is(err, websocket.ErrConnClosed) {
		t.Errorf("reader of a truncated 1 TiB frame returned %v, want ErrConnClosed", err)
	}
}
