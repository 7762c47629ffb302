package model

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
)

func deflated(msg string, dict []byte, final bool) []byte { return Compress([]byte(msg), dict, final) }

// maskedRSV builds a masked frame (all-zero key) with the RSV bits rsv.
func maskedRSV(fin bool, rsv, op byte, payload []byte) []byte {
	f := masked(fin, op, string(payload))
	f[0] |= rsv << 4
	return f
}

// TestDeflateHeaderChecks: the RSV rows of the frame checks, in order.
func TestDeflateHeaderChecks(t *testing.T) {
	key := []byte{1, 2, 3, 4}
	tests := []struct {
		name      string
		hdr       []byte
		inMessage bool
		deflate   bool
		reason    string // "" for an acceptable header
	}{
		{"RSV1 text, not negotiated", []byte{0xC1, 0x80}, false, false, "reserved bits set without an extension"},
		{"RSV1 text, negotiated", []byte{0xC1, 0x80}, false, true, ""},
		{"RSV1 binary, negotiated", []byte{0xC2, 0x80}, false, true, ""},
		{"RSV2 text, negotiated", []byte{0xA1, 0x80}, false, true, "reserved bits set without an extension"},
		{"RSV3 text, negotiated", []byte{0x91, 0x80}, false, true, "reserved bits set without an extension"},
		{"RSV1+RSV2 text, negotiated", []byte{0xE1, 0x80}, false, true, "reserved bits set without an extension"},
		{"RSV1 ping", []byte{0xC9, 0x80}, false, true, "RSV1 set on a control frame"},
		{"RSV1 close", []byte{0xC8, 0x80}, false, true, "RSV1 set on a control frame"},
		{"RSV1 continuation", []byte{0xC0, 0x80}, true, true, "RSV1 set on a continuation frame"},
		{"RSV1 stray continuation: the RSV1 rule comes first", []byte{0xC0, 0x80}, false, true, "RSV1 set on a continuation frame"},
		{"RSV1 fragmented ping: the RSV1 rule comes first", []byte{0x49, 0x80}, false, true, "RSV1 set on a control frame"},
		{"unmasked comes first", []byte{0xD1, 0x00}, false, true, "unmasked client frame"},
		{"RSV1 on a reserved opcode", []byte{0xC3, 0x80}, false, true, "reserved opcode"},
		{"RSV1 on a reserved control opcode", []byte{0xCF, 0x80}, false, true, "RSV1 set on a control frame"},
		{"RSV1 text inside a message", []byte{0xC1, 0x80}, true, true, "new data message inside a fragmented message"},
	}
	for _, tt := range tests {
		hdr := tt.hdr
		if hdr[1]&0x80 != 0 {
			hdr = append(append([]byte{}, hdr...), key...)
		}
		_, _, code, reason, ok := CheckClientHeaderDeflate(hdr, tt.inMessage, tt.deflate)
		if !ok || reason != tt.reason || (code != 0) != (tt.reason != "") {
			t.Errorf("%s: code %d %q ok=%v, want %q", tt.name, code, reason, ok, tt.reason)
		}
	}
}

// TestDeflateReceive: compressed client messages, from RSV1 to what the
// receiver gets or how the connection fails.
func TestDeflateReceive(t *testing.T) {
	bomb := deflated(strings.Repeat("a", 2000), nil, false)
	hello := deflated("hello", nil, false)
	stored4 := Stored([]byte("abcd"), 1) // 25 bytes
	fail := func(code uint16, reason string) []Effect {
		return []Effect{frameOf(OpClose, string([]byte{byte(code >> 8), byte(code)})+reason), {CloseTCP: &TCPClose{Linger: true}}}
	}
	tests := []struct {
		name    string
		deflate *Deflate
		limit   int64
		frames  [][]byte
		want    string // the message received, if none of fail
		fail    []Effect
	}{
		{"compressed text", &Deflate{}, -1, [][]byte{maskedRSV(true, 4, OpText, hello)}, "hello", nil},
		{"compressed in three frames", &Deflate{}, -1, [][]byte{maskedRSV(false, 4, OpText, hello[:2]),
			maskedRSV(false, 0, OpContinuation, hello[2:3]), maskedRSV(true, 0, OpContinuation, hello[3:])}, "hello", nil},
		{"final block instead of a sync flush", &Deflate{}, -1, [][]byte{maskedRSV(true, 4, OpBinary, deflated("fin", nil, true))}, "fin", nil},
		{"plain message with deflate negotiated", &Deflate{}, -1, [][]byte{maskedRSV(true, 0, OpText, []byte("plain"))}, "plain", nil},
		{"empty compressed message", &Deflate{}, -1, [][]byte{maskedRSV(true, 4, OpBinary, nil)}, "", nil},
		{"RSV1 without negotiation", nil, -1, [][]byte{maskedRSV(true, 4, OpText, hello)}, "", fail(1002, "reserved bits set without an extension")},
		{"RSV1 on a continuation", &Deflate{}, -1, [][]byte{maskedRSV(false, 4, OpText, hello[:2]), maskedRSV(true, 4, OpContinuation, hello[2:])},
			"", fail(1002, "RSV1 set on a continuation frame")},
		{"corrupt: block type 3", &Deflate{}, -1, [][]byte{maskedRSV(true, 4, OpBinary, []byte{0xFF, 0x00})}, "", fail(1007, ReasonCorrupt)},
		{"final block, then the first byte of an empty block (RFC 7692 §7.2.3.4)", &Deflate{}, -1,
			[][]byte{maskedRSV(true, 4, OpText, []byte{0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00})}, "Hello", nil},
		{"final block cut short: the tail completes it, but it is corrupt", &Deflate{}, -1,
			[][]byte{maskedRSV(true, 4, OpText, []byte{0xf3, 0x48, 0xcd, 0xc9, 0xc9})}, "", fail(1007, ReasonCorrupt)},
		{"final block, then anything: not part of the message", &Deflate{}, -1,
			[][]byte{maskedRSV(false, 4, OpBinary, deflated("fin", nil, true)), maskedRSV(true, 0, OpContinuation, []byte{0x12, 0x34})}, "fin", nil},
		{"invalid UTF-8 once inflated", &Deflate{}, -1, [][]byte{maskedRSV(true, 4, OpText, deflated("a\xffb", nil, false))}, "", fail(1007, "invalid UTF-8 in text message")},
		{"text ends inside a character", &Deflate{}, -1, [][]byte{maskedRSV(true, 4, OpText, deflated("a\xe2\x82", nil, false))}, "", fail(1007, "text message ends inside a UTF-8 sequence")},
		{"inflates to exactly the limit", &Deflate{}, 2000, [][]byte{maskedRSV(true, 4, OpBinary, bomb)}, strings.Repeat("a", 2000), nil},
		{"inflates past the limit", &Deflate{}, 1999, [][]byte{maskedRSV(true, 4, OpBinary, bomb)}, "", fail(1009, ReasonInflatedLarge)},
		{"invalid UTF-8 before the limit is passed", &Deflate{}, 10, [][]byte{maskedRSV(true, 4, OpText, deflated("abc\xff"+strings.Repeat("a", 100), nil, false))},
			"", fail(1007, "invalid UTF-8 in text message")},
		{"invalid UTF-8 after the limit is passed", &Deflate{}, 10, [][]byte{maskedRSV(true, 4, OpText, deflated(strings.Repeat("a", 100)+"\xff", nil, false))},
			"", fail(1009, ReasonInflatedLarge)},
		{"no wire limit on a compressed message: its frames are awaited", &Deflate{}, 0, [][]byte{header126(0xC2, 3026)}, "", []Effect{}},
		{"compressed frames longer than the limit, inflated within it", &Deflate{}, 4, [][]byte{maskedRSV(false, 4, OpBinary, stored4[:10]),
			maskedRSV(true, 0, OpContinuation, stored4[10:])}, "abcd", nil},
		{"compressed frames longer than the limit, inflated one past it", &Deflate{}, 4, [][]byte{maskedRSV(true, 4, OpBinary, Stored([]byte("abcde"), 1))},
			"", fail(1009, ReasonInflatedLarge)},
		{"inflated within the limit of 0", &Deflate{}, 0, [][]byte{maskedRSV(true, 4, OpBinary, deflated("", nil, false))}, "", nil},
		{"a plain message of 1 byte is too large", &Deflate{}, 0, [][]byte{maskedRSV(true, 0, OpBinary, []byte{0})[:6]}, "", fail(1009, "message too large")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New()
			m.Deflate, m.MaxMessageSize = tt.deflate, tt.limit
			m.Step(Input{Kind: Handshake})
			m.Step(Input{Kind: ReceiveMessage})
			got := m.Step(Input{Kind: ClientBytes, Data: bytes.Join(tt.frames, nil)})
			if tt.fail != nil {
				got = withoutResults(got)
				if !effectsEqual(got, tt.fail) {
					t.Fatalf("got %s, want %s", show(got), show(tt.fail))
				}
				return
			}
			if len(got) != 1 || got[0].Result == nil || string(got[0].Result.Data) != tt.want || got[0].Result.Err != NoErr {
				t.Fatalf("got %s, want the message %q", show(got), tt.want)
			}
		})
	}
}

// header126 is a masked header (zero key) with a 16-bit length and no payload.
func header126(b0 byte, n int) []byte {
	return []byte{b0, 0x80 | 126, byte(n >> 8), byte(n), 0, 0, 0, 0}
}

func withoutResults(es []Effect) []Effect {
	var out []Effect
	for _, e := range es {
		if e.Result == nil {
			out = append(out, e)
		}
	}
	return out
}

// TestDeflateClientContext: with client context takeover a compressed
// message may refer back to the client's earlier compressed messages;
// plain messages are not part of that history. Without it, it may not.
func TestDeflateClientContext(t *testing.T) {
	first := "the quick brown fox jumps over the lazy dog"
	second := deflated(first, []byte(first), false) // a back-reference to the first
	tests := []struct {
		name     string
		takeover bool
		before   []byte // the message before the second
		want     string // "" for a failure
	}{
		{"takeover: the history is the first message", true, maskedRSV(true, 4, OpText, deflated(first, nil, false)), first},
		{"takeover: a plain first message is no history", true, maskedRSV(true, 0, OpText, []byte(first)), ""},
		{"no takeover: no history", false, maskedRSV(true, 4, OpText, deflated(first, nil, false)), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New()
			m.Deflate = &Deflate{ClientContextTakeover: tt.takeover}
			m.Step(Input{Kind: Handshake})
			m.Step(Input{Kind: ClientBytes, Data: append(tt.before, maskedRSV(true, 4, OpText, second)...)})
			m.Step(Input{Kind: ReceiveMessage})
			got := m.Step(Input{Kind: ReceiveMessage})
			if tt.want != "" {
				if len(got) != 1 || string(got[0].Result.Data) != tt.want {
					t.Fatalf("got %s, want %q", show(got), tt.want)
				}
				return
			}
			if m.State != Dropped {
				t.Fatalf("got %s in %s, want the connection to fail", show(got), m.State)
			}
		})
	}
}

// TestDeflateSend: which messages go out compressed.
func TestDeflateSend(t *testing.T) {
	long := bytes.Repeat([]byte("x"), WriteBufferSize)
	tests := []struct {
		name    string
		deflate *Deflate
		events  []Input
		want    []string // the frames: op, length, and "z" if compressed
	}{
		{"not negotiated", nil, []Input{{Kind: SendText, Data: make([]byte, 600)}}, []string{"1 600"}},
		{"below the default threshold", &Deflate{}, []Input{{Kind: SendText, Data: make([]byte, 511)}}, []string{"1 511"}},
		{"at the default threshold", &Deflate{}, []Input{{Kind: SendBinary, Data: make([]byte, 512)}}, []string{"2 512 z"}},
		{"threshold 1: everything but empty messages", &Deflate{Threshold: 1}, []Input{{Kind: SendBinary}, {Kind: SendText, Data: []byte("a")}},
			[]string{"2 0", "1 1 z"}},
		{"writer below the threshold", &Deflate{Threshold: 10}, []Input{{Kind: SendMessage, Type: 1}, {Kind: WriterWrite, Data: []byte("abc")}, {Kind: WriterClose}},
			[]string{"1 3"}},
		{"writer at the threshold", &Deflate{Threshold: 3}, []Input{{Kind: SendMessage, Type: 1}, {Kind: WriterWrite, Data: []byte("abc")}, {Kind: WriterClose}},
			[]string{"1 3 z"}},
		{"writer full: compressed whatever the threshold", &Deflate{Threshold: 1 << 30},
			[]Input{{Kind: SendMessage, Type: 2}, {Kind: WriterWrite, Data: long}, {Kind: WriterWrite, Data: []byte("y")}, {Kind: WriterClose}},
			[]string{"2 65537 z"}},
		{"writer exactly full: one plain frame", &Deflate{Threshold: 1 << 30},
			[]Input{{Kind: SendMessage, Type: 2}, {Kind: WriterWrite, Data: long}, {Kind: WriterClose}}, []string{"2 65536"}},
		{"compressed text ending inside a character at Close: given up, compressing had begun (O14)", &Deflate{},
			[]Input{{Kind: SendMessage, Type: 1}, {Kind: WriterWrite, Data: long}, {Kind: WriterWrite, Data: []byte("y\xe2\x82")}, {Kind: WriterClose}},
			[]string{"1 65539 z", "8 19"}}, // whatever of it the compressor sent, then the close
		{"compressed text abandoned below a full buffer: nothing sent", &Deflate{},
			[]Input{{Kind: SendMessage, Type: 1}, {Kind: WriterWrite, Data: []byte("abc")}, {Kind: WriterAbandon}, {Kind: SendText, Data: []byte("next")}},
			[]string{"1 4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New()
			m.Deflate = tt.deflate
			m.Step(Input{Kind: Handshake})
			var got []string
			for _, ev := range tt.events {
				for _, e := range m.Step(ev) {
					if f := e.Frame; f != nil {
						s := string(rune('0'+f.Op)) + " " + strconv.Itoa(len(f.Payload))
						if f.Compressed {
							s += " z"
						}
						got = append(got, s)
					}
				}
			}
			if strings.Join(got, ", ") != strings.Join(tt.want, ", ") {
				t.Errorf("frames %q, want %q", got, tt.want)
			}
		})
	}
}

// TestNegotiate: the negotiation rows of STATE_MACHINE.md.
func TestNegotiate(t *testing.T) {
	const both = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
	tests := []struct {
		mode   Compression
		offers []string
		want   string // the response; "" declined
		server bool   // server context takeover, if accepted
		client bool   // client context takeover, if accepted
	}{
		{CompressionOff, []string{"permessage-deflate"}, "", false, false},
		{CompressionNoContextTakeover, nil, "", false, false},
		{CompressionNoContextTakeover, []string{"permessage-deflate"}, both, false, false},
		{CompressionNoContextTakeover, []string{"permessage-deflate; client_max_window_bits"}, both, false, false},
		{CompressionNoContextTakeover, []string{"permessage-deflate; server_max_window_bits=15"}, both + "; server_max_window_bits=15", false, false},
		{CompressionContextTakeover, []string{"permessage-deflate"}, "permessage-deflate", true, true},
		{CompressionContextTakeover, []string{"permessage-deflate; client_no_context_takeover"}, "permessage-deflate; client_no_context_takeover", true, false},
		{CompressionContextTakeover, []string{"permessage-deflate; server_no_context_takeover"}, "permessage-deflate; server_no_context_takeover", false, true},
		{CompressionContextTakeover, []string{`permessage-deflate; server_max_window_bits="15"`}, "permessage-deflate; server_max_window_bits=15", true, true},
		{CompressionContextTakeover, []string{"permessage-deflate; server_max_window_bits=10"}, "permessage-deflate; server_max_window_bits=10", true, true},
		{CompressionContextTakeover, []string{"permessage-deflate; server_max_window_bits=7, permessage-deflate; client_no_context_takeover"},
			"permessage-deflate; client_no_context_takeover", true, false},
		{CompressionContextTakeover, []string{"permessage-deflate; client_max_window_bits=9; server_max_window_bits=8"},
			"permessage-deflate; server_max_window_bits=8; client_max_window_bits=9", true, true},
		{CompressionNoContextTakeover, []string{"permessage-deflate; client_max_window_bits=15"}, both, false, false},
		{CompressionContextTakeover, []string{"x-webkit-deflate-frame", "permessage-deflate; client_max_window_bits=08"}, "", false, false},
		{CompressionContextTakeover, []string{"permessage-deflate; client_no_context_takeover; client_no_context_takeover"}, "", false, false},
		{CompressionContextTakeover, []string{"permessage-deflate; server_no_context_takeover=1"}, "", false, false},
		{CompressionContextTakeover, []string{"permessage-deflate; unknown"}, "", false, false},
		{CompressionContextTakeover, []string{"permessage-deflate; client_max_window_bits=16", "permessage-deflate"}, "permessage-deflate", true, true},
	}
	for _, tt := range tests {
		d, resp := Negotiate(tt.mode, tt.offers, 0)
		if resp != tt.want || (d != nil) != (tt.want != "") || d != nil && (d.ServerContextTakeover != tt.server || d.ClientContextTakeover != tt.client) {
			t.Errorf("mode %d, %q: %+v %q, want %q server=%v client=%v", tt.mode, tt.offers, d, resp, tt.want, tt.server, tt.client)
		}
	}
}

// TestNegotiateWindows: the window rows of STATE_MACHINE.md's
// "Compressed messages": a limit on the server's window is honoured and
// answered as offered; one the client declares on its own is answered,
// below 15, and binds it.
func TestNegotiateWindows(t *testing.T) {
	for _, tt := range []struct {
		offer                  string
		serverBits, clientBits int
	}{
		{"permessage-deflate", 15, 15},
		{"permessage-deflate; client_max_window_bits", 15, 15},
		{"permessage-deflate; server_max_window_bits=8", 8, 15},
		{"permessage-deflate; server_max_window_bits=12", 12, 15},
		{"permessage-deflate; client_max_window_bits=9", 15, 9},
		{"permessage-deflate; server_max_window_bits=15; client_max_window_bits=15", 15, 15},
	} {
		d, _ := Negotiate(CompressionContextTakeover, []string{tt.offer}, 0)
		if d == nil || d.ServerWindowBits != tt.serverBits || d.ClientWindowBits != tt.clientBits {
			t.Errorf("%q: %+v, want windows %d and %d bits", tt.offer, d, tt.serverBits, tt.clientBits)
			continue
		}
		if d.Window(true) != 1<<tt.serverBits || d.Window(false) != 1<<tt.clientBits {
			t.Errorf("%q: windows %d and %d bytes", tt.offer, d.Window(true), d.Window(false))
		}
	}
}
