package model

import (
	"bytes"
	"testing"
)

// unmasked builds a server frame.
func unmasked(fin bool, op byte, payload string) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	return append([]byte{b0, byte(len(payload))}, payload...)
}

func maskedFrameOf(op byte, payload string) Effect {
	return Effect{Frame: &Frame{Fin: true, Op: op, Payload: []byte(payload), Masked: true}}
}

// TestClientModelScenarios pins down where a client Conn differs from a
// server's (STATE_MACHINE.md, "Roles").
func TestClientModelScenarios(t *testing.T) {
	open := Input{Kind: Handshake}
	bytesEv := func(b ...[]byte) Input { return Input{Kind: ServerBytes, Data: bytes.Join(b, nil)} }
	tests := []stepCase{
		{"ping is answered with a masked pong", []Input{open, bytesEv(unmasked(true, OpPing, "hi"))},
			[]Effect{maskedFrameOf(OpPong, "hi")}, Open, "O5"},
		{"sends are masked", []Input{open, {Kind: SendText, Data: []byte("x")}},
			[]Effect{maskedFrameOf(OpText, "x"), result(SendText, NoErr)}, Open, "O3"},
		{"server close is echoed, the server closes TCP first", []Input{open, bytesEv(unmasked(true, OpClose, "\x0f\xa0bye"))},
			[]Effect{maskedFrameOf(OpClose, "\x0f\xa0"), {CloseTCP: &TCPClose{AfterServer: true}}}, Closed, "O6"},
		{"1010 from a server is echoed", []Input{open, bytesEv(unmasked(true, OpClose, "\x03\xf2ext"))},
			[]Effect{maskedFrameOf(OpClose, "\x03\xf2"), {CloseTCP: &TCPClose{AfterServer: true}}}, Closed, "O6"},
		{"1015 from a server is a protocol error", []Input{open, bytesEv(unmasked(true, OpClose, "\x03\xf7"))},
			[]Effect{maskedFrameOf(OpClose, "\x03\xeainvalid close code 1015"), {CloseTCP: &TCPClose{Linger: true}}}, Dropped, "O7"},
		{"a masked server frame is a protocol error", []Input{open, bytesEv(masked(true, OpText, "a"))},
			[]Effect{maskedFrameOf(OpClose, "\x03\xeamasked server frame"), {CloseTCP: &TCPClose{Linger: true}}}, Dropped, "O7"},
		{"a client may close with 1010", []Input{open, {Kind: CloseCall, Code: 1010, Reason: "need x"}},
			[]Effect{maskedFrameOf(OpClose, "\x03\xf2need x")}, Closing, "O10"},
		{"after our close, the server's close: after the server", []Input{open, {Kind: CloseCall, Code: 1000}, bytesEv(unmasked(true, OpClose, ""))},
			[]Effect{{CloseTCP: &TCPClose{AfterServer: true}}, result(CloseCall, NoErr)}, Closed, "K4"},
		{"close timeout closes at once", []Input{open, {Kind: CloseCall, Code: 1000}, {Kind: CloseTimer}},
			[]Effect{{CloseTCP: &TCPClose{}}, result(CloseCall, WrapsErrConnClose)}, Dropped, "K8"},
		{"1006 is still refused", []Input{open, {Kind: CloseCall, Code: 1006}},
			[]Effect{result(CloseCall, ErrStatusCode)}, Open, ""},
	}
	runStepCases(t, NewClient, tests)
}

// TestServerCloseCodes: either end takes from the other every code valid
// on the wire, 1010 too; a server may not send 1010.
func TestServerCloseCodes(t *testing.T) {
	for code := 0; code < 1<<16; code++ {
		c := uint16(code)
		want := c >= 1000 && c <= 1003 || c >= 1007 && c <= 1014 || c >= 3000 && c <= 4999
		if got := NewClient().validFromPeer(c); got != want {
			t.Errorf("client: code %d from the server valid = %v", c, got)
		}
		if got := validFromServer(c); got != (want && c != 1010) {
			t.Errorf("a server may send %d = %v", c, got)
		}
		if got := New().validFromPeer(c); got != want {
			t.Errorf("server: code %d from the client valid = %v", c, got)
		}
	}
}

func TestMaskedBytes(t *testing.T) {
	f := Frame{Fin: true, Op: OpText, Payload: []byte("abcde")}
	key := [4]byte{1, 2, 3, 4}
	want := []byte{0x81, 0x85, 1, 2, 3, 4, 'a' ^ 1, 'b' ^ 2, 'c' ^ 3, 'd' ^ 4, 'e' ^ 1}
	if got := f.MaskedBytes(key); !bytes.Equal(got, want) {
		t.Errorf("MaskedBytes = % x, want % x", got, want)
	}
}

// TestAcceptAnswer: the client's checks of the server's answer to its
// permessage-deflate offer.
func TestAcceptAnswer(t *testing.T) {
	nc, ct, off := CompressionNoContextTakeover, CompressionContextTakeover, CompressionOff
	tests := []struct {
		mode   Compression
		answer []string
		ok     bool
		sct    bool // server context takeover, if ok and compressing
		cct    bool
	}{
		{off, nil, true, false, false},
		{off, []string{"permessage-deflate"}, false, false, false},
		{ct, nil, true, false, false},
		{ct, []string{"permessage-deflate"}, true, true, true},
		{ct, []string{"permessage-deflate; server_no_context_takeover"}, true, false, true},
		{ct, []string{"permessage-deflate; client_no_context_takeover"}, true, true, false},
		{ct, []string{"permessage-deflate; server_max_window_bits=10"}, true, true, true},
		{ct, []string{"permessage-deflate; server_max_window_bits=16"}, false, false, false},
		{ct, []string{"permessage-deflate; server_max_window_bits=010"}, false, false, false},
		{ct, []string{"permessage-deflate; client_max_window_bits=15"}, true, true, true},
		{ct, []string{"permessage-deflate; client_max_window_bits=9"}, true, true, true},
		{ct, []string{"permessage-deflate; client_max_window_bits"}, false, false, false},
		{ct, []string{"permessage-deflate; client_max_window_bits=7"}, false, false, false},
		{nc, []string{"permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=8"}, true, false, false},
		{ct, []string{"permessage-deflate; server_no_context_takeover=1"}, false, false, false},
		{ct, []string{"permessage-deflate; client_no_context_takeover; client_no_context_takeover"}, false, false, false},
		{ct, []string{"permessage-deflate, permessage-deflate"}, false, false, false},
		{ct, []string{"permessage-deflate", "permessage-deflate"}, false, false, false},
		{ct, []string{"x-webkit-deflate-frame"}, false, false, false},
		{nc, []string{"permessage-deflate; server_no_context_takeover; client_no_context_takeover"}, true, false, false},
		{nc, []string{"permessage-deflate; client_no_context_takeover; server_no_context_takeover"}, true, false, false},
		{nc, []string{"permessage-deflate; server_no_context_takeover"}, false, false, false},
		{nc, []string{"permessage-deflate"}, false, false, false},
	}
	for _, tt := range tests {
		d, ok := AcceptAnswer(tt.mode, tt.answer, 0)
		if ok != tt.ok {
			t.Errorf("mode %d, answer %q: ok %v", tt.mode, tt.answer, ok)
			continue
		}
		if ok && tt.answer != nil && (d == nil || d.ServerContextTakeover != tt.sct || d.ClientContextTakeover != tt.cct) {
			t.Errorf("mode %d, answer %q: %+v", tt.mode, tt.answer, d)
		}
	}
}

// TestAcceptAnswerWindows: the client compresses with the window the
// server answers in client_max_window_bits (it offered the parameter,
// STATE_MACHINE.md's "Opening handshake, client"), and keeps as much of
// the server's history as server_max_window_bits says.
func TestAcceptAnswerWindows(t *testing.T) {
	if got := DialOffer(CompressionContextTakeover); got != "permessage-deflate; client_max_window_bits" {
		t.Errorf("offer %q", got)
	}
	for _, tt := range []struct {
		answer                 string
		serverBits, clientBits int
	}{
		{"permessage-deflate", 15, 15},
		{"permessage-deflate; client_max_window_bits=9", 15, 9},
		{"permessage-deflate; server_max_window_bits=10; client_max_window_bits=12", 10, 12},
	} {
		d, ok := AcceptAnswer(CompressionContextTakeover, []string{tt.answer}, 0)
		if !ok || d.ServerWindowBits != tt.serverBits || d.ClientWindowBits != tt.clientBits {
			t.Errorf("%q: %+v, %v; want windows %d and %d bits", tt.answer, d, ok, tt.serverBits, tt.clientBits)
		}
	}
}
