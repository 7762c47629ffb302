package model

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// masked builds a masked client frame with an all-zero key, so that the
// payload is readable in the tests.
func masked(fin bool, op byte, payload string) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	return append([]byte{b0, 0x80 | byte(len(payload)), 0, 0, 0, 0}, payload...)
}

func frameOf(op byte, payload string) Effect {
	return Effect{Frame: &Frame{Fin: true, Op: op, Payload: []byte(payload)}}
}

func result(call Kind, err Err) Effect { return Effect{Result: &Result{Call: call, Err: err}} }

func TestModelScenarios(t *testing.T) {
	open := Input{Kind: Handshake}
	bytesEv := func(b ...[]byte) Input { return Input{Kind: ClientBytes, Data: bytes.Join(b, nil)} }
	tests := []stepCase{
		{"ping is answered", []Input{open, bytesEv(masked(true, OpPing, "hi"))},
			[]Effect{frameOf(OpPong, "hi")}, Open, "O5"},
		{"client close is echoed", []Input{open, bytesEv(masked(true, OpClose, "\x03\xe8bye"))},
			[]Effect{frameOf(OpClose, "\x03\xe8"), {CloseTCP: &TCPClose{}}}, Closed, "O6"},
		{"1010 is answered with 1000", []Input{open, bytesEv(masked(true, OpClose, "\x03\xf2"))},
			[]Effect{frameOf(OpClose, "\x03\xe8"), {CloseTCP: &TCPClose{}}}, Closed, "O6"},
		{"unmasked frame", []Input{open, bytesEv([]byte{0x81, 0x00})},
			[]Effect{frameOf(OpClose, "\x03\xeaunmasked client frame"), {CloseTCP: &TCPClose{Linger: true}}}, Dropped, "O7"},
		{"data waits for a receive, pings behind it too", []Input{open, bytesEv(masked(true, OpText, "a"), masked(true, OpPing, ""))},
			nil, Open, "O1"},
		{"receive takes the message, then the ping is answered", []Input{open, bytesEv(masked(true, OpText, "a"), masked(true, OpPing, "")), {Kind: ReceiveMessage}},
			[]Effect{{Result: &Result{Call: ReceiveMessage, Type: OpText, Data: []byte("a")}}, frameOf(OpPong, "")}, Open, "O5"},
		{"invalid UTF-8 fails fast", []Input{open, {Kind: ReceiveMessage}, bytesEv(masked(false, OpText, "a\xc0"))},
			[]Effect{frameOf(OpClose, "\x03\xefinvalid UTF-8 in text message"), {CloseTCP: &TCPClose{Linger: true}}, result(ReceiveMessage, WrapsErrConnClose)}, Dropped, "O7"},
		{"close then client close", []Input{open, {Kind: CloseCall, Code: 1000}, bytesEv(masked(true, OpClose, ""))},
			[]Effect{{CloseTCP: &TCPClose{}}, result(CloseCall, NoErr)}, Closed, "K4"},
		{"no pong after our close", []Input{open, {Kind: CloseCall, Code: 1000}, bytesEv(masked(true, OpPing, "x"))},
			nil, Closing, "K2"},
		{"close timeout", []Input{open, {Kind: CloseCall, Code: 1000}, {Kind: CloseTimer}},
			[]Effect{{CloseTCP: &TCPClose{}}, result(CloseCall, WrapsErrConnClose)}, Dropped, "K8"},
		{"send after close", []Input{open, {Kind: CloseCall, Code: 1000}, {Kind: SendText, Data: []byte("x")}},
			[]Effect{result(SendText, ErrConnClosed)}, Closing, "K9"},
		{"invalid close code", []Input{open, {Kind: CloseCall, Code: 1006}},
			[]Effect{result(CloseCall, ErrStatusCode)}, Open, ""},
		{"EOF while a message waits is not seen", []Input{open, bytesEv(masked(false, OpBinary, "a")), {Kind: ClientEOF}},
			nil, Open, "O1"},
		{"EOF is seen by a receive", []Input{open, {Kind: ReceiveText, N: 5}, {Kind: ClientEOF}},
			[]Effect{{CloseTCP: &TCPClose{}}, result(ReceiveText, ErrConnClosed)}, Dropped, "O8"},
		{"a reason of 123 bytes is accepted", []Input{open, {Kind: CloseCall, Code: 1000, Reason: strings.Repeat("r", 123)}},
			[]Effect{frameOf(OpClose, "\x03\xe8"+strings.Repeat("r", 123))}, Closing, "O10"},
		{"a reason of 124 bytes is refused", []Input{open, {Kind: CloseCall, Code: 1000, Reason: strings.Repeat("r", 124)}},
			[]Effect{result(CloseCall, ErrTooLarge)}, Open, ""},
		{"ReceiveText of exactly maxLength", []Input{open, bytesEv(masked(true, OpText, "abc")), {Kind: ReceiveText, N: 3}},
			[]Effect{{Result: &Result{Call: ReceiveText, Data: []byte("abc")}}}, Open, "O4"},
		{"payload split between reads unmasks at the right key position",
			[]Input{open, {Kind: ReceiveMessage}, bytesEv([]byte{0x81, 0x84, 1, 2, 3, 4, 'a' ^ 1}), bytesEv([]byte{'b' ^ 2, 'c' ^ 3, 'd' ^ 4})},
			[]Effect{{Result: &Result{Call: ReceiveMessage, Type: OpText, Data: []byte("abcd")}}}, Open, "O1"},
		{"text ending inside a character", []Input{open, {Kind: ReceiveMessage}, bytesEv(masked(true, OpText, "a\xe2"))},
			[]Effect{frameOf(OpClose, "\x03\xeftext message ends inside a UTF-8 sequence"), {CloseTCP: &TCPClose{Linger: true}}, result(ReceiveMessage, WrapsErrConnClose)}, Dropped, "O7"},
		{"ReceiveText cuts at a character boundary", []Input{open, bytesEv(masked(true, OpText, "aé")), {Kind: ReceiveText, N: 2}},
			[]Effect{{Result: &Result{Call: ReceiveText, Data: []byte("a"), Err: ErrTooLarge}}}, Open, "O4"},
	}
	runStepCases(t, New, tests)
}

// stepCase is a scenario for a model: the events, and what the last one
// does and where it leaves the connection.
type stepCase struct {
	name      string
	events    []Input
	want      []Effect // of the last event
	wantState State
	wantRow   string
}

// TestModelAbandonedMessage: a writer that gives up a message partly sent
// closes the connection (O14) without waiting in Close; the peer's answer
// (K4) or the close timer (K8) ends it. One that gives up before any of it
// left sends nothing.
// Rows: O3, O14, K4, K8, K11, K14.
func TestModelAbandonedMessage(t *testing.T) {
	open := Input{Kind: Handshake}
	start := Input{Kind: SendMessage, Type: OpBinary}
	overflow := Input{Kind: WriterWrite, Data: make([]byte, WriteBufferSize+1)} // one frame leaves
	abandoned := frameOf(OpClose, "\x03\xf3"+ReasonAbandoned)
	tests := []stepCase{
		{"before any frame: nothing sent, still open", []Input{open, start, {Kind: WriterWrite, Data: []byte("abc")}, {Kind: WriterAbandon}},
			[]Effect{result(WriterAbandon, NoErr)}, Open, "O3"},
		{"after a frame: closed with 1011", []Input{open, start, overflow, {Kind: WriterAbandon}},
			[]Effect{abandoned, result(WriterAbandon, WrapsErrConnClose)}, Closing, "O14"},
		{"a waiting receive returns at once", []Input{open, {Kind: ReceiveMessage}, start, overflow, {Kind: WriterAbandon}},
			[]Effect{abandoned, result(ReceiveMessage, ErrConnClosed), result(WriterAbandon, WrapsErrConnClose)}, Closing, "O14"},
		{"the peer's answer ends it, no Close waits", []Input{open, start, overflow, {Kind: WriterAbandon}, {Kind: ClientBytes, Data: masked(true, OpClose, "\x03\xf3")}},
			[]Effect{{CloseTCP: &TCPClose{}}}, Closed, "K4"},
		{"the close timer ends it", []Input{open, start, overflow, {Kind: WriterAbandon}, {Kind: CloseTimer}},
			[]Effect{{CloseTCP: &TCPClose{}}}, Dropped, "K8"},
		{"Close after it: K11", []Input{open, start, overflow, {Kind: WriterAbandon}, {Kind: CloseCall, Code: 1000}},
			[]Effect{result(CloseCall, ErrConnClosed)}, Closing, "K11"},
		{"while closing: K14", []Input{open, start, overflow, {Kind: CloseCall, Code: 1000}, {Kind: WriterAbandon}},
			[]Effect{result(WriterAbandon, WrapsErrConnClose)}, Closing, "K14"},
		{"the writer is closed after it", []Input{open, start, overflow, {Kind: WriterAbandon}, {Kind: WriterClose}},
			[]Effect{result(WriterClose, ErrWriterClosed)}, Closing, "O14"},
	}
	runStepCases(t, New, tests)
}

// runStepCases runs each case on a new model from newConn.
func runStepCases(t *testing.T, newConn func() *Conn, tests []stepCase) {
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newConn()
			var got []Effect
			for _, ev := range tt.events {
				got = m.Step(ev)
			}
			if !effectsEqual(got, tt.want) {
				t.Errorf("effects:\n got  %s\n want %s", show(got), show(tt.want))
			}
			if m.State != tt.wantState || tt.wantRow != "" && m.Row != tt.wantRow {
				t.Errorf("state %s (row %s), want %s (row %s)", m.State, m.Row, tt.wantState, tt.wantRow)
			}
		})
	}
}

// TestModelMessageSizeLimit: a data message is refused with 1009 at the
// header of the frame that takes it past MaxMessageSize, before any of
// that frame's payload has arrived.
func TestModelMessageSizeLimit(t *testing.T) {
	tooLarge := []Effect{frameOf(OpClose, "\x03\xf1message too large"), {CloseTCP: &TCPClose{Linger: true}}}
	header := func(fin bool, op byte, n int) []byte { return masked(fin, op, strings.Repeat("x", n))[:6] }
	tests := []struct {
		name  string
		limit int64
		bytes []byte // sent while no receive waits
		want  []Effect
		state State
	}{
		{"exactly the limit", 10, masked(true, OpBinary, "0123456789"), nil, Open},
		{"one byte over, refused at the header", 10, header(true, OpBinary, 11), tooLarge, Dropped},
		{"fragments add up past it", 10, append(masked(false, OpText, "012345"), header(true, OpContinuation, 5)...), tooLarge, Dropped},
		{"fragments add up to exactly it", 10, append(masked(false, OpText, "012345"), masked(true, OpContinuation, "6789")...), nil, Open},
		{"a new message starts from zero", 10, append(masked(true, OpText, "0123456789"), masked(true, OpText, "0123456789")...), nil, Open},
		{"negative: no limit", -1, masked(true, OpBinary, strings.Repeat("x", 100)), nil, Open},
		{"zero: empty messages only", 0, header(true, OpBinary, 1), tooLarge, Dropped},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New()
			m.MaxMessageSize = tt.limit
			m.Step(Input{Kind: Handshake})
			// A waiting receive reads every message of the stream.
			var got []Effect
			for _, e := range append(m.Step(Input{Kind: ReceiveMessage}), m.Step(Input{Kind: ClientBytes, Data: tt.bytes})...) {
				if e.Result == nil {
					got = append(got, e)
				}
			}
			for m.State == Open && !m.Receiving() && len(m.in) > 0 {
				for _, e := range m.Step(Input{Kind: ReceiveMessage}) {
					if e.Result == nil {
						got = append(got, e)
					}
				}
			}
			if !effectsEqual(got, tt.want) || m.State != tt.state {
				t.Errorf("got %s in %s, want %s in %s", show(got), m.State, show(tt.want), tt.state)
			}
		})
	}
}

func effectsEqual(a, b []Effect) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if show(a[i:i+1]) != show(b[i:i+1]) {
			return false
		}
	}
	return true
}

func show(es []Effect) string {
	s := ""
	for _, e := range es {
		switch {
		case e.Frame != nil:
			masked := ""
			if e.Frame.Masked {
				masked = "masked "
			}
			s += "frame(" + masked + string(rune('0'+e.Frame.Op)) + " " + string(e.Frame.Payload) + ") "
		case e.CloseTCP != nil:
			switch {
			case e.CloseTCP.Linger:
				s += "closeTCP(linger) "
			case e.CloseTCP.AfterServer:
				s += "closeTCP(after the server) "
			default:
				s += "closeTCP "
			}
		case e.Result != nil:
			r := e.Result
			s += string(r.Call) + "→" + string(r.Err) + "[" + string(r.Data) + "] "
		}
	}
	return s
}

func TestTextSoFar(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"", true}, {"abc", true}, {"\xe2\x82", true}, {"a\xf0\x9d", true}, {"\xe0\x80", false},
		{"\xed\xa0", false}, {"\xf4\x90", false}, {"\xff", false}, {"\x80", false}, {"\xc0", false},
		{"\xe2\x82\xac\xe2", true}, {"\xe0", true}, {"\xf0", true}, {"\xf4", true}, {"\xed", true}, {"\xc2", true},
		{"\xe0\xa0", true}, {"\xf4\x8f", true}, {"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80", false},
	}
	for _, tt := range tests {
		if got := textSoFar([]byte(tt.s)); got != tt.want {
			t.Errorf("textSoFar(%q) = %v", tt.s, got)
		}
	}
}

// TestModelWriterFrames pins down the message writer's framing: bytes are
// buffered up to WriteBufferSize, and a text message never leaves an
// incomplete character at the end of a non-final frame.
func TestModelWriterFrames(t *testing.T) {
	full := bytes.Repeat([]byte("a"), WriteBufferSize)
	tests := []struct {
		name         string
		typ          byte
		writes       [][]byte
		wantFrames   []string // payload lengths and fin of the frames, in order
		wantN        []int    // bytes each Write took
		wantCloseErr Err
	}{
		{"exactly full stays buffered", OpBinary, [][]byte{full}, []string{"65536 fin"}, []int{65536}, NoErr},
		{"one byte more sends a frame", OpBinary, [][]byte{full, []byte("b")}, []string{"65537", "0 fin"}, []int{65536, 1}, NoErr},
		{"binary holds nothing back", OpBinary, [][]byte{full[:WriteBufferSize-1], []byte{0xE2, 0x82}}, []string{"65537", "0 fin"}, []int{65535, 2}, NoErr},
		// Close gives up a message that would end inside a character;
		// part of it has left, so the connection is closed (O14).
		{"text holds back 1 byte, Close gives up", OpText, [][]byte{full, []byte("\xe2")}, []string{"65536", "19 fin"}, []int{65536, 1}, WrapsErrConnClose},
		{"text holds back 2 bytes, Close gives up", OpText, [][]byte{full, []byte("\xe2\x82")}, []string{"65536", "19 fin"}, []int{65536, 2}, WrapsErrConnClose},
		{"text holds back 3 bytes, Close gives up", OpText, [][]byte{full, []byte("\xf0\x9d\x84")}, []string{"65536", "19 fin"}, []int{65536, 3}, WrapsErrConnClose},
		{"text completes across frames", OpText, [][]byte{full, []byte("\xe2\x82"), []byte("\xac")}, []string{"65536", "3 fin"}, []int{65536, 2, 1}, NoErr},
		{"invalid text before any frame: nothing is sent", OpText, [][]byte{[]byte("ab\xffcd")}, nil, []int{2}, ErrInvalidUTF8},
		{"buffered text ending inside a character: nothing is sent", OpText, [][]byte{[]byte("ab\xe2")}, nil, []int{3}, ErrInvalidUTF8},
		{"invalid text after a frame: the connection is closed", OpText, [][]byte{full, []byte("b"), []byte("c\xff")},
			[]string{"65537", "19 fin"}, []int{65536, 1, 1}, WrapsErrConnClose},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New()
			m.Step(Input{Kind: Handshake})
			var frames []string
			collect := func(es []Effect) []Effect {
				var rest []Effect
				for _, e := range es {
					if e.Frame != nil {
						s := strconv.Itoa(len(e.Frame.Payload))
						if e.Frame.Fin {
							s += " fin"
						}
						frames = append(frames, s)
					} else {
						rest = append(rest, e)
					}
				}
				return rest
			}
			collect(m.Step(Input{Kind: SendMessage, Type: tt.typ}))
			for i, w := range tt.writes {
				res := collect(m.Step(Input{Kind: WriterWrite, Data: w}))
				if len(res) != 1 || res[0].Result.N != tt.wantN[i] {
					t.Fatalf("write %d: %s, want N=%d", i, show(res), tt.wantN[i])
				}
			}
			res := collect(m.Step(Input{Kind: WriterClose}))
			if len(res) != 1 || res[0].Result.Err != tt.wantCloseErr {
				t.Fatalf("close: %s, want %q", show(res), tt.wantCloseErr)
			}
			if strings.Join(frames, ", ") != strings.Join(tt.wantFrames, ", ") {
				t.Errorf("frames %v, want %v", frames, tt.wantFrames)
			}
		})
	}
}
