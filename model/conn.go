package model

// Kind is what a test does to a connection: bytes or the end of TCP from
// the peer (the client; for a client Conn, the server), a timer, or a call
// of the websocket.Conn API.
type Kind string

// The kinds of Input a test can apply to a model Conn.
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
	DropCall       Kind = "Drop"           // the server gives the connection up (Handler.Shutdown's deadline)
	PingCall       Kind = "Ping"           // Ping: sends a ping with the next count as its payload, waits for its pong
	CancelCall     Kind = "Cancel"         // the context of the calls that wait ends: a receive's that waits for a message, every Ping's

	// For a client Conn the peer is the server: the same inputs.
	ServerBytes = ClientBytes
	ServerEOF   = ClientEOF
)

// Input is one step of a test scenario. It is not the table's Event: Step
// derives those from it (bytes from the peer, for one, may be several
// frames, each an event, or part of one, none yet).
type Input struct {
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
	ErrCanceled       Err = "ctx error"     // an error wrapping the call's ctx.Err() (O16)
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

	receive *Input   // the receive call waiting for the client, if any
	pinged  uint64   // the Pings so far: the payload of the next is one more
	pings   []uint64 // the payloads of the Pings waiting for their pong
	closing bool     // Close waits for the client's close frame
	endErr  Err      // once ended: what receives get

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

// Step applies the input ev and returns what the connection does.
func (m *Conn) Step(ev Input) []Effect {
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
		if r := m.transition(PingTimer); r.Frames == FramesPing {
			m.emit(Frame{Fin: true, Op: OpPing})
		}
	case CloseTimer:
		if m.State == Closing { // Close waits, or the writer gave up (O14)
			m.end(m.transition(CloseTimeout), WrapsErrConnClose)
		}
	case DropCall:
		if r := m.transition(Drop); r.To == Dropped && r.TCP != TCPNone { // O15, K15
			m.end(r, WrapsErrConnClose)
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
	case PingCall:
		m.ping()
	case CancelCall:
		m.cancel()
	}
	m.read()
	return m.out
}

// transition applies the table's row for ev and returns it.
func (m *Conn) transition(ev Event) Row {
	r := Lookup(m.State, ev)
	m.State, m.Row = r.To, r.ID
	return r
}

func (m *Conn) emit(f Frame) {
	f.Masked = m.client()
	m.out = append(m.out, Effect{Frame: &f})
}
func (m *Conn) result(r Result)         { m.out = append(m.out, Effect{Result: &r}) }
func (m *Conn) fail(call Kind, err Err) { m.result(Result{Call: call, Err: err}) }
