package websocket_test

// Sending (row O3, "Argument checks", "Message writers"): SendText,
// SendBinary and SendMessage's writers put whole, valid messages on the
// wire. Writers that give a message up are in abandon_test.go.

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wsmachine/wsmachine/websocket"
)

// Empty messages via SendMessage and SendText/SendBinary.
// Rows: O3.
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

// Send calls do not retain the caller's buffer (io.Writer contract): a
// buffer changed after the call does not change what goes on the wire.
// Rows: O3.
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

// SendText with invalid UTF-8 returns an error, sends nothing and leaves the
// connection usable.
// Rows: O3; "Argument checks": SendText.
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
// Rows: O3; "Argument checks": SendMessage.
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
// Rows: O3; "Message writers".
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

// A long text written through a text writer in odd-sized chunks (splitting
// characters everywhere, crossing any internal buffer boundary) arrives
// intact.
// Rows: O3.
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
