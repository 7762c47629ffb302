package fuzz

import (
	"encoding/binary"
	"testing"
	"unicode/utf8"

	"github.com/wsmachine/wsmachine/model"
	"github.com/wsmachine/wsmachine/websocket"
)

// FuzzClosePayload sends the client's close frame with an arbitrary payload
// (code and reason), either first or in answer to the server's Close, and
// checks the server against the model and against RFC 6455 §5.5.1 and §7.4
// read directly: what it answers, and what GetStatus reports.
// Rows: O6, O7, K4; "Close codes".
func FuzzClosePayload(f *testing.F) {
	f.Fuzz(func(t *testing.T, payload []byte, serverFirst bool) {
		payload = payload[:min(len(payload), 125)]
		s := newSession(t)
		if serverFirst {
			s.step(model.Input{Kind: model.CloseCall, Code: 1001, Reason: "going"}, func() {
				s.start(model.CloseCall, func() callResult { return callResult{err: s.c.Close(websocket.StatusGoingAway, "going")} })
			})
		}
		frames := len(s.frames)
		s.clientBytes(clientFrame(true, 0, model.OpClose, payload, [4]byte{0xA1, 0xB2, 0xC3, 0xD4}))
		s.finish()

		want := expectedClose(payload)
		<-s.ended // finish waited for it
		if want.failCode != 0 {
			if s.status != websocket.StatusDropped {
				t.Fatalf("close payload % x: GetStatus = %d, want StatusDropped (a broken close frame)", payload, s.status)
			}
			if !serverFirst && !hasCloseCode(s.frames[frames:], want.failCode) {
				t.Fatalf("close payload % x: answered with %q, want close %d", payload, s.frames[frames:], want.failCode)
			}
			return
		}
		if s.status != want.status || s.reason != want.reason {
			t.Fatalf("close payload % x: GetStatus = %d %q, want %d %q", payload, s.status, s.reason, want.status, want.reason)
		}
		if !serverFirst && !hasCloseCode(s.frames[frames:], want.echo) {
			t.Fatalf("close payload % x: answered with %q, want close %d", payload, s.frames[frames:], want.echo)
		}
	})
}

// closeVerdict is what RFC 6455 makes of a close payload.
type closeVerdict struct {
	failCode uint16 // not 0: the frame is invalid and the connection fails with this code
	status   websocket.Status
	reason   string
	echo     uint16 // the code of the close frame sent in answer; 1005: none
}

func expectedClose(p []byte) closeVerdict {
	if len(p) == 0 {
		return closeVerdict{status: websocket.StatusNotSent, echo: 1005}
	}
	if len(p) == 1 {
		return closeVerdict{failCode: 1002}
	}
	code := binary.BigEndian.Uint16(p)
	// §7.4.1 and the IANA registry: what a client may send. 1004-1006
	// and 1015 are never sent; 1016-2999 are reserved; 5000 and up do
	// not exist.
	allowed := code >= 1000 && code <= 1003 || code >= 1007 && code <= 1014 || code >= 3000 && code <= 4999
	switch {
	case !allowed:
		return closeVerdict{failCode: 1002}
	case !utf8.Valid(p[2:]):
		return closeVerdict{failCode: 1007}
	}
	echo := code
	if code == 1010 { // the client's complaint that we lack an extension: we just close
		echo = 1000
	}
	return closeVerdict{status: websocket.Status(code), reason: string(p[2:]), echo: echo}
}

// hasCloseCode reports whether the first of frames is a close frame with
// code (1005: with no payload).
func hasCloseCode(frames [][]byte, code uint16) bool {
	if len(frames) == 0 || frames[0][0] != 0x88 {
		return false
	}
	p := frames[0][2:]
	if code == 1005 {
		return len(p) == 0
	}
	return len(p) >= 2 && binary.BigEndian.Uint16(p) == code
}
