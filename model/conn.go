package model

import (
	"strconv"
	"unicode/utf8"
)

// Kind is what happens to a connection: bytes or the end of TCP from the
// peer (the client; for a client Conn, the server), a timer, or a call of
// the websocket.Conn API.
type Kind string

// The events a test can apply to a model Conn.
const (
	Handshake      Kind = "Handshake"      // the opening handshake succeeds
	ClientBytes    Kind = "ClientBytes"    // Data: bytes from the peer, any part of any frames
	ClientEOF      Kind = "ClientEOF"      // the peer ends its side of TCP
	CloseTimer     Kind = "CloseTimer"     // the close timeout fires
	PingTick       Kind = "PingTick"       // the ping timer fires (the interval passed with nothing from the client)
	SendText       Kind = "SendText"       // Data: the text
	SendBinary     Kind = "SendBinary"     // Data
	SendMessage    Kind = "SendMessage"    // Type: opens the message writer
	WriterWrite    Kind = "WriterWrite"    // Data
	WriterClose    Kind = "WriterClose"    // ends the message
	WriterAbandon  Kind = "WriterAbandon"  // CloseWithError with an error: gives up the message
	ReceiveMessage Kind = "ReceiveMessage" // receives a message and reads it to its end
	ReceiveText    Kind = "ReceiveText"    // N: maxLength
	ReceiveBinary  Kind = "ReceiveBinary"  // N: the buffer's length
	CloseCall      Kind = "Close"          // Code, Reason

	// For a client Conn the peer is the server: the same events.
	ServerBytes = ClientBytes
	ServerEOF   = ClientEOF
)

// Event is one step of a test scenario.
type Event struct {
	Kind   Kind
	Data   []byte
	Type   byte // for SendMessage: 1 text, 2 binary
	N      int
	Code   uint16
	Reason string
}

// Err names an error an API call returns, as the tests compare them.
type Err string

// The errors. NoErr is a nil error.
const (
	NoErr             Err = ""
	ErrConnClosed     Err = "ErrConnClosed"       // exactly websocket.ErrConnClosed
	WrapsErrConnClose Err = "wraps ErrConnClosed" // another error for which errors.Is(err, ErrConnClosed)
	ErrMessageType    Err = "ErrMessageType"
	ErrStatusCode     Err = "ErrStatusCode"
	ErrTooLarge       Err = "ErrTooLarge"
	ErrInvalidUTF8    Err = "invalid UTF-8" // text to send is not UTF-8
	ErrWriterClosed   Err = "writer closed" // a message writer used after its Close
)

// Result is what an API call returns. Call is the call's Kind; a call
// that had to wait for the client returns in the effects of a later event.
type Result struct {
	Call Kind
	Err  Err
	Type byte   // ReceiveMessage: the message type
	Data []byte // ReceiveMessage, ReceiveText, ReceiveBinary: the payload returned
	N    int    // WriterWrite: bytes taken; ReceiveBinary: n
}

// Effect is something the connection does: write a frame, return from a
// call, close TCP. Exactly one field is set.
type Effect struct {
	Frame    *Frame
	Result   *Result
	CloseTCP *TCPClose
}

// TCPClose says how the connection ends TCP: Linger for "close after
// ours"; AfterServer for a client Conn in the rows whose TCP cell is
// TCPCloseAfterServer: it waits for the server to close TCP first.
type TCPClose struct{ Linger, AfterServer bool }

// WriteBufferSize is the message writer's buffer: a message written with
// SendMessage leaves in frames of this size.
const WriteBufferSize = 64 << 10

// DefaultMaxMessageSize is the longest data message a client may send
// unless a test sets Conn.MaxMessageSize.
const DefaultMaxMessageSize = 16 << 20

// Conn is the model of one connection, a server's unless Role is Client.
type Conn struct {
	// Role is the end this Conn is; it changes, as STATE_MACHINE.md's
	// "Roles" says, the frame checks' first row, which close codes are
	// valid from the peer and in Close, masking, the closing of TCP
	// after the closing handshake, and which context takeover applies to
	// which direction.
	Role Role

	// MaxMessageSize is Handler.MaxMessageSize in effect: a data message
	// whose frames declare more, added up, fails the connection with
	// 1009. Negative: no limit.
	MaxMessageSize int64

	// Deflate is the negotiated permessage-deflate; nil: none. Set it
	// before the Handshake event.
	Deflate *Deflate

	State  State
	Status uint16 // what GetStatus returns once the state is terminal
	Reason string
	Row    string // the ID of the last transition-table row applied

	in  []byte // client bytes not taken in yet
	eof bool   // the client ended TCP

	// The data message being read.
	inMessage bool   // its first header was taken in, its end not reached
	msgType   byte   // 1 text, 2 binary
	msgData   []byte // its payload so far
	msgSize   uint64 // the lengths its frames declared so far, added up
	// A compressed message (RSV1 on its first frame) is kept as it is on
	// the wire, and inflated and judged once its last frame is complete.
	msgCompressed bool
	msgWire       []byte
	recvHistory   []byte // the peer's context, with its context takeover
	frame         clientHeader
	remaining     uint64 // payload bytes of frame still to come
	offset        int    // position in frame's payload

	receive *Event // the receive call waiting for the client, if any
	closing bool   // Close waits for the client's close frame
	endErr  Err    // once ended: what receives get

	writer     bool // a SendMessage writer is open
	writerType byte
	writerOp   byte
	writerBuf  []byte
	// With permessage-deflate, once the writer's buffer overflows the
	// message is compressed, and writerBuf holds all of it until Close.
	writerDeflating bool
	// writerFailed: the message was given up, and the writer's calls
	// return this (STATE_MACHINE.md, "Message writers").
	writerFailed Err

	out []Effect
}

// New returns a server connection whose handshake is under way.
func New() *Conn {
	return &Conn{Role: Server, State: Connecting, Status: 1006, MaxMessageSize: DefaultMaxMessageSize}
}

// NewClient returns a client connection (from Dial) whose handshake is
// under way.
func NewClient() *Conn {
	m := New()
	m.Role = Client
	return m
}

func (m *Conn) client() bool { return m.Role == Client }

// RecvContextTakeover reports whether the peer's compressed messages are
// inflated with the history of its earlier ones: client context takeover
// for a server, server context takeover for a client.
func (m *Conn) RecvContextTakeover() bool {
	if m.Deflate == nil {
		return false
	}
	if m.client() {
		return m.Deflate.ServerContextTakeover
	}
	return m.Deflate.ClientContextTakeover
}

// SendContextTakeover reports whether our compressed messages are
// compressed with the history of our earlier ones.
func (m *Conn) SendContextTakeover() bool {
	if m.Deflate == nil {
		return false
	}
	if m.client() {
		return m.Deflate.ClientContextTakeover
	}
	return m.Deflate.ServerContextTakeover
}

// maySend reports whether Close accepts code: a server any valid code
// but 1010, a client any valid code (1005: an empty close frame).
func (m *Conn) maySend(code uint16) bool {
	if m.client() {
		return code == 1005 || validClientCode(code)
	}
	return validServerCode(code)
}

// validFromPeer reports whether a close code from the peer is valid: the
// same codes at either end. 1010 is a client's complaint, but a client
// takes it from a server too (STATE_MACHINE.md, "Roles").
func (m *Conn) validFromPeer(code uint16) bool {
	return validClientCode(code)
}

// Receiving reports whether a receive call waits for a message.
func (m *Conn) Receiving() bool { return m.receive != nil }

// CloseWaiting reports whether Close waits for the client's close frame.
func (m *Conn) CloseWaiting() bool { return m.closing }

// Step applies ev and returns what the server does.
func (m *Conn) Step(ev Event) []Effect {
	m.out = nil
	switch ev.Kind {
	case Handshake:
		m.transition(Accepted)
	case ClientBytes:
		if (m.State == Open || m.State == Closing) && !m.eof {
			m.in = append(m.in, ev.Data...)
		}
	case ClientEOF:
		m.eof = true
	case PingTick:
		if r := m.transition(PingTimer); r.Frames == "ping" {
			m.emit(Frame{Fin: true, Op: OpPing})
		}
	case CloseTimer:
		if m.State == Closing { // Close waits, or the writer gave up (O14)
			m.end(m.transition(CloseTimeout), WrapsErrConnClose)
		}
	case SendText:
		m.sendText(ev)
	case SendBinary:
		m.sendWhole(ev, OpBinary, ev.Data)
	case SendMessage:
		m.sendMessage(ev)
	case WriterWrite:
		m.writerWrite(ev)
	case WriterClose:
		m.writerClose(ev)
	case WriterAbandon:
		m.writerAbandon(ev)
	case ReceiveMessage, ReceiveText, ReceiveBinary:
		m.startReceive(ev)
	case CloseCall:
		m.close(ev)
	}
	m.read()
	return m.out
}

// transition applies the table's row for in and returns it.
func (m *Conn) transition(in Input) Row {
	r := Lookup(m.State, in)
	m.State, m.Row = r.To, r.ID
	return r
}

func (m *Conn) emit(f Frame) {
	f.Masked = m.client()
	m.out = append(m.out, Effect{Frame: &f})
}
func (m *Conn) result(r Result)         { m.out = append(m.out, Effect{Result: &r}) }
func (m *Conn) fail(call Kind, err Err) { m.result(Result{Call: call, Err: err}) }
func (m *Conn) closeTCP(r Row) {
	m.out = append(m.out, Effect{CloseTCP: &TCPClose{Linger: r.TCP == "close after ours",
		AfterServer: m.client() && r.TCP == TCPCloseAfterServer}})
}
func closePayload(code uint16, reason string) []byte {
	if code == 1005 {
		return nil
	}
	return append([]byte{byte(code >> 8), byte(code)}, reason...)
}

// end carries out a row that ends the connection: whoever waits returns.
// endErr is what a receive gets, waiting now or coming later (row T2).
func (m *Conn) end(r Row, endErr Err) {
	m.endErr = endErr
	if r.TCP != "—" {
		m.closeTCP(r)
	}
	if m.receive != nil {
		m.fail(m.receive.Kind, endErr)
		m.receive = nil
	}
	if m.closing {
		err := NoErr
		if r.Caller == "Close: wraps ErrConnClosed" {
			err = WrapsErrConnClose
		}
		m.fail(CloseCall, err)
		m.closing = false
	}
}

// --- sending ---------------------------------------------------------------

func (m *Conn) sendText(ev Event) {
	if !utf8.Valid(ev.Data) {
		m.fail(ev.Kind, ErrInvalidUTF8)
		return
	}
	m.sendWhole(ev, OpText, ev.Data)
}

func (m *Conn) sendWhole(ev Event, op byte, payload []byte) {
	f := Frame{Fin: true, Op: op, Payload: payload}
	f.Compressed = m.Deflate != nil && len(payload) >= m.Deflate.threshold()
	if err := m.sendFrame(f); err != NoErr {
		m.fail(ev.Kind, err)
		return
	}
	m.result(Result{Call: ev.Kind})
}

// sendFrame is the Send row for one data frame.
func (m *Conn) sendFrame(f Frame) Err {
	r := m.transition(Send)
	if r.Caller == "ErrConnClosed" {
		return ErrConnClosed
	}
	m.emit(f)
	return NoErr
}

func (m *Conn) sendMessage(ev Event) {
	if ev.Type != OpText && ev.Type != OpBinary {
		m.fail(ev.Kind, ErrMessageType)
		return
	}
	if r := m.transition(Send); r.Caller == "ErrConnClosed" {
		m.fail(ev.Kind, ErrConnClosed)
		return
	}
	m.writer, m.writerType, m.writerOp, m.writerBuf = true, ev.Type, ev.Type, nil
	m.writerDeflating, m.writerFailed = false, NoErr
	m.result(Result{Call: ev.Kind})
}

// openTail is how many bytes at the end of the writer's text form a
// character that is not complete yet.
func (m *Conn) openTail() int {
	if m.writerType != OpText {
		return 0
	}
	for k := 1; k <= 3 && k <= len(m.writerBuf); k++ {
		if utf8.Valid(m.writerBuf[:len(m.writerBuf)-k]) && !utf8.Valid(m.writerBuf[len(m.writerBuf)-k:]) {
			return k
		}
	}
	return 0
}

func (m *Conn) writerWrite(ev Event) {
	if !m.writer {
		m.fail(ev.Kind, ErrWriterClosed)
		return
	}
	if m.writerFailed != NoErr {
		m.fail(ev.Kind, m.writerFailed)
		return
	}
	if r := m.transition(Send); r.Caller == "ErrConnClosed" {
		m.fail(ev.Kind, ErrConnClosed)
		return
	}
	p, err := ev.Data, NoErr
	if m.writerType == OpText && !textSoFar(append(append([]byte{}, m.writerBuf...), p...)) {
		// Take the longest start of p that keeps the text valid.
		n := 0
		for n < len(p) && textSoFar(append(append([]byte{}, m.writerBuf...), p[:n+1]...)) {
			n++
		}
		p, err = p[:n], ErrInvalidUTF8
	}
	switch {
	case len(m.writerBuf)+len(p) <= WriteBufferSize || m.writerDeflating:
		m.writerBuf = append(m.writerBuf, p...)
	case m.Deflate != nil:
		// A full buffer is worth compressing, whatever the threshold:
		// the message is compressed, and its frames leave as the
		// compressor fills them, which the model cannot predict.
		m.writerDeflating = true
		m.writerBuf = append(m.writerBuf, p...)
	default:
		// Full: everything buffered and p leave as one frame, but for
		// an incomplete character at the end.
		m.writerBuf = append(m.writerBuf, p...)
		keep := m.openTail()
		if ferr := m.sendFrame(Frame{Op: m.writerOp, Payload: m.writerBuf[:len(m.writerBuf)-keep]}); ferr != NoErr {
			m.fail(ev.Kind, ferr)
			return
		}
		m.writerOp = OpContinuation
		m.writerBuf = append([]byte{}, m.writerBuf[len(m.writerBuf)-keep:]...)
	}
	if err != NoErr { // bytes refused: the message is given up
		m.giveUpMessage(err)
		err = m.writerFailed
	}
	m.result(Result{Call: ev.Kind, N: len(p), Err: err})
}

func (m *Conn) writerClose(ev Event) {
	if !m.writer {
		m.fail(ev.Kind, ErrWriterClosed)
		return
	}
	m.writer = false
	if m.writerFailed == NoErr && m.openTail() > 0 {
		m.giveUpMessage(ErrInvalidUTF8) // it would end inside a character
	}
	if m.writerFailed != NoErr {
		m.fail(ev.Kind, m.writerFailed)
		return
	}
	f := Frame{Fin: true, Op: m.writerOp, Payload: m.writerBuf}
	f.Compressed = m.writerDeflating || m.Deflate != nil && len(m.writerBuf) >= m.Deflate.threshold()
	m.fail(ev.Kind, m.sendFrame(f))
}

// writerAbandon is CloseWithError with an error: nil if the message was
// given up before any of it left, else what giveUpMessage says.
func (m *Conn) writerAbandon(ev Event) {
	if !m.writer {
		m.fail(ev.Kind, ErrWriterClosed)
		return
	}
	m.writer = false
	if m.writerFailed == NoErr && !m.giveUpMessage(NoErr) {
		m.result(Result{Call: ev.Kind})
		return
	}
	m.fail(ev.Kind, m.writerFailed)
}

// ReasonAbandoned is the reason of the close frame of row O14.
const ReasonAbandoned = "message abandoned"

// giveUpMessage gives up the writer's message for cause and reports
// whether the peer had part of it (STATE_MACHINE.md, "Message writers"):
// then the event Abandon closes the connection, and the writer's calls
// return an error wrapping ErrConnClosed; else nothing is sent and they
// return cause.
func (m *Conn) giveUpMessage(cause Err) (cut bool) {
	buf := m.writerBuf
	m.writerBuf = nil
	if m.writerOp != OpContinuation && !m.writerDeflating {
		m.writerFailed = cause
		return false
	}
	m.writerFailed = WrapsErrConnClose
	if m.writerDeflating { // what the compressor has sent of it, if anything
		m.emit(Frame{Op: m.writerType, Payload: buf, Compressed: true})
	}
	if r := m.transition(Abandon); r.Frames == "close(abandoned)" {
		m.emit(Frame{Fin: true, Op: OpClose, Payload: closePayload(1011, ReasonAbandoned)})
		if m.receive != nil { // as at O10: waiting receives return at once
			m.fail(m.receive.Kind, ErrConnClosed)
			m.receive = nil
		}
	}
	return true
}

// --- closing ---------------------------------------------------------------

func (m *Conn) close(ev Event) {
	if ev.Code == 1005 && ev.Reason != "" || !m.maySend(ev.Code) {
		m.fail(ev.Kind, ErrStatusCode)
		return
	}
	if len(ev.Reason) > 123 {
		m.fail(ev.Kind, ErrTooLarge)
		return
	}
	if !utf8.ValidString(ev.Reason) {
		m.fail(ev.Kind, ErrInvalidUTF8)
		return
	}
	r := m.transition(Close)
	if r.Caller == "ErrConnClosed" {
		m.fail(ev.Kind, ErrConnClosed)
		return
	}
	m.emit(Frame{Fin: true, Op: OpClose, Payload: closePayload(ev.Code, ev.Reason)})
	m.closing = true
	if m.receive != nil { // O10: waiting receives return at once
		m.fail(m.receive.Kind, ErrConnClosed)
		m.receive = nil
	}
}

// --- receiving -------------------------------------------------------------

func (m *Conn) startReceive(ev Event) {
	switch r := m.transition(Receive); r.Caller {
	case "ErrConnClosed":
		m.fail(ev.Kind, ErrConnClosed)
		return
	case "end error":
		m.fail(ev.Kind, m.endErr)
		return
	}
	e := ev
	m.receive = &e
}

// finishReceive returns the complete message to the waiting receive call.
func (m *Conn) finishReceive() {
	ev, data := m.receive, m.msgData
	m.receive = nil
	res := Result{Call: ev.Kind}
	wantType := map[Kind]byte{ReceiveText: OpText, ReceiveBinary: OpBinary}[ev.Kind]
	if ev.Kind == ReceiveMessage {
		res.Type, res.Data = m.msgType, data
	} else if m.msgType != wantType {
		res.Err = ErrMessageType
	} else if len(data) <= ev.N {
		res.Data, res.N = data, len(data)
	} else {
		// Too long: the first N bytes, for text cut back to a
		// character boundary.
		cut := ev.N
		for ev.Kind == ReceiveText && cut > 0 && !utf8.Valid(data[:cut]) {
			cut--
		}
		res.Data, res.N, res.Err = data[:cut], cut, ErrTooLarge
	}
	m.result(res)
}

// read takes in client bytes as the server's reader does: frame by frame,
// acting on control frames, stopping at the first frame of a data message
// until a receive call takes it; while closing, data is discarded.
func (m *Conn) read() {
	for m.State == Open || m.State == Closing {
		if m.inMessage {
			if m.State == Open && m.receive == nil {
				return // the message waits for a receive call
			}
			if m.remaining > 0 {
				if len(m.in) == 0 {
					m.needMore()
					return
				}
				n := min(m.remaining, uint64(len(m.in)))
				chunk := unmask(m.in[:n], m.frame.key, m.offset)
				m.in, m.remaining, m.offset = m.in[n:], m.remaining-n, m.offset+int(n)
				if m.State == Open && m.msgCompressed {
					m.msgWire = append(m.msgWire, chunk...)
				} else if m.State == Open {
					m.msgData = append(m.msgData, chunk...)
					if m.msgType == OpText && !textSoFar(m.msgData) {
						m.protocolError(1007, "invalid UTF-8 in text message")
						return
					}
				}
				continue
			}
			if m.frame.fin {
				if m.State == Open && m.msgCompressed && !m.inflateMessage() {
					return
				}
				if m.State == Open && m.msgType == OpText && !utf8.Valid(m.msgData) {
					m.protocolError(1007, "text message ends inside a UTF-8 sequence")
					return
				}
				m.inMessage = false
				if m.State == Open {
					m.finishReceive()
				}
				continue
			}
		}
		if !m.nextFrame() {
			return
		}
	}
}

// inflateMessage judges the compressed message whose frames have all
// arrived; false if it failed the connection. Its inflated bytes become
// msgData and, with client context takeover, part of the history.
func (m *Conn) inflateMessage() bool {
	var dict []byte
	if m.RecvContextTakeover() {
		dict = m.recvHistory
	}
	out, code, reason := judgeCompressed(m.msgWire, dict, m.msgType == OpText, m.MaxMessageSize)
	if code != 0 {
		m.protocolError(code, reason)
		return false
	}
	m.msgData, m.msgWire = out, nil
	if m.RecvContextTakeover() {
		m.recvHistory = AddHistory(m.recvHistory, out)
	}
	return true
}

// needMore is reached when the reader waits for bytes: at the end of TCP
// the connection is dropped.
func (m *Conn) needMore() {
	if m.eof {
		r := m.transition(ReadFailed)
		m.end(r, ErrConnClosed)
	}
}

// nextFrame takes in the next frame header, and a control frame whole.
// It returns false if the reader stops.
func (m *Conn) nextFrame() bool {
	h, ok := readHeader(m.in)
	if !ok {
		m.needMore()
		return false
	}
	if code, reason := violation(h, m.inMessage, m.Deflate != nil, m.client()); code != 0 {
		m.protocolError(code, reason)
		return false
	}
	if isControl(h.op) {
		if uint64(len(m.in)) < uint64(h.size)+h.length {
			m.needMore()
			return false
		}
		payload := unmask(m.in[h.size:h.size+int(h.length)], h.key, 0)
		m.in = m.in[h.size+int(h.length):]
		return m.control(h.op, payload)
	}
	compressed := m.msgCompressed
	if h.op != OpContinuation {
		m.msgSize, compressed = 0, h.rsv == rsv1
	}
	// A compressed message is limited by what it inflates to alone.
	if m.MaxMessageSize >= 0 && !compressed && m.msgSize+h.length > uint64(m.MaxMessageSize) {
		m.protocolError(1009, "message too large")
		return false
	}
	m.msgSize += h.length
	m.in = m.in[h.size:]
	m.frame, m.remaining, m.offset = h, h.length, 0
	if h.op != OpContinuation {
		m.inMessage, m.msgType, m.msgData = true, h.op, nil
		m.msgCompressed, m.msgWire = compressed, nil
	}
	m.transition(RecvData)
	return true
}

// control acts on a control frame; false if the reader stops.
func (m *Conn) control(op byte, payload []byte) bool {
	switch op {
	case OpPing:
		if r := m.transition(RecvPing); r.Frames == "pong" {
			m.emit(Frame{Fin: true, Op: OpPong, Payload: payload})
		}
	case OpPong:
		m.transition(RecvPong)
	case OpClose:
		code, reason := uint16(1005), ""
		if len(payload) >= 2 {
			code, reason = uint16(payload[0])<<8|uint16(payload[1]), string(payload[2:])
			if !m.validFromPeer(code) {
				m.protocolError(1002, "invalid close code "+strconv.Itoa(int(code)))
				return false
			}
			if !utf8.ValidString(reason) {
				m.protocolError(1007, "close reason is not valid UTF-8")
				return false
			}
		}
		r := m.transition(RecvClose)
		m.Status, m.Reason = code, reason
		if r.Frames == "close(echo)" {
			reply := code // echoed, as far as we may send it
			if reply != 1005 && !m.maySend(reply) {
				reply = 1000
			}
			m.emit(Frame{Fin: true, Op: OpClose, Payload: closePayload(reply, "")})
		}
		m.end(r, ErrConnClosed)
		return false
	}
	return true
}

// protocolError fails the connection (RFC 6455 §7.1.7).
func (m *Conn) protocolError(code uint16, reason string) {
	r := m.transition(ProtocolError)
	if r.Frames == "close(error)" {
		m.emit(Frame{Fin: true, Op: OpClose, Payload: closePayload(code, reason)})
	}
	m.end(r, WrapsErrConnClose)
}
