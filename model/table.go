// Package model is the executable specification of a wsmachine
// connection, in either role (a server's Conn from Handler, a client's
// from Dial): a plain, deterministic transcription of STATE_MACHINE.md,
// with no I/O, no goroutines and no timers. Tests drive it side by side
// with the real websocket.Conn and compare what both do.
//
// It shares no code with package websocket, on purpose: a bug in shared
// code would be invisible to the comparison. Everything here is written
// for clarity, not speed.
package model

// State is a connection state, named as in STATE_MACHINE.md.
type State string

// The states.
const (
	Connecting State = "connecting"
	Open       State = "open"
	Closing    State = "closing"
	Closed     State = "closed"
	Dropped    State = "dropped"
)

// Terminal reports whether s is closed or dropped.
func (s State) Terminal() bool { return s == Closed || s == Dropped }

// Role is which end of the connection a Conn is (STATE_MACHINE.md, "Roles").
type Role string

// The roles.
const (
	Server Role = "server" // a Conn from Handler
	Client Role = "client" // a Conn from Dial
)

// Event is an event of the transition table (its Event column), named as
// in STATE_MACHINE.md. Tests do not apply events: they give a Conn Inputs,
// from which Step derives them.
type Event string

// The events of the transition table.
const (
	Accepted      Event = "Accepted"
	Refused       Event = "Refused"
	RecvData      Event = "RecvData"
	RecvPing      Event = "RecvPing"
	RecvPong      Event = "RecvPong"
	RecvClose     Event = "RecvClose"
	ProtocolError Event = "ProtocolError"
	ReadFailed    Event = "ReadFailed"
	WriteFailed   Event = "WriteFailed"
	Send          Event = "Send"
	Receive       Event = "Receive"
	Close         Event = "Close"
	CloseTimeout  Event = "CloseTimeout"
	PingTimer     Event = "PingTimer"
	Abandon       Event = "Abandon"
	Drop          Event = "Drop"
	Cancel        Event = "Cancel"
	Ping          Event = "Ping"
)

// Events lists every event.
var Events = []Event{Accepted, Refused, RecvData, RecvPing, RecvPong, RecvClose,
	ProtocolError, ReadFailed, WriteFailed, Send, Receive, Close, CloseTimeout, PingTimer, Abandon, Drop,
	Cancel, Ping}

// Row is one row of the transition table. Frames, TCP and Caller hold the
// table's canonical cell values (see STATE_MACHINE.md).
type Row struct {
	ID     string
	From   State
	Events []Event // nil: every event
	To     State
	Frames FramesCell
	TCP    TCPCell
	Caller CallerCell
}

// FramesCell is a cell of the table's Frames column: what the connection
// writes.
type FramesCell string

// The cells of the Frames column.
const (
	FramesNone            FramesCell = "—"
	FramesData            FramesCell = "data"
	FramesPong            FramesCell = "pong"
	FramesPing            FramesCell = "ping"
	FramesCloseEcho       FramesCell = "close(echo)"
	FramesCloseError      FramesCell = "close(error)"
	FramesCloseCodeReason FramesCell = "close(code, reason)"
	FramesCloseAbandoned  FramesCell = "close(abandoned)"
)

// TCPCell is a cell of the table's TCP column: what happens to TCP.
type TCPCell string

// The cells of the TCP column.
const (
	TCPNone        TCPCell = "—"
	TCPCloseAtOnce TCPCell = "close" // after our close frame if one was sent
	// TCPCloseAfterServer is the TCP cell of the rows that complete the
	// closing handshake: the server closes TCP at once; the client reads
	// until the server has closed it, then closes its own socket (RFC 6455
	// §7.1.1).
	TCPCloseAfterServer TCPCell = "close (client: after the server)"
	TCPCloseAfterOurs   TCPCell = "close after ours" // half-close after our close frame, drain, close
	TCPEnd              TCPCell = "end"              // the connection ends without TCP
)

// CallerCell is a cell of the table's Caller column: what the API call
// that caused the event returns.
type CallerCell string

// The cells of the Caller column.
const (
	CallerNone               CallerCell = "—"
	CallerNil                CallerCell = "nil"
	CallerErrConnClosed      CallerCell = "ErrConnClosed"
	CallerWrapsErrConnClosed CallerCell = "wraps ErrConnClosed"
	CallerWaits              CallerCell = "waits"
	CallerCloseNil           CallerCell = "Close: nil"                 // what the waiting Close returns
	CallerCloseWraps         CallerCell = "Close: wraps ErrConnClosed" // what the waiting Close returns
	CallerEndError           CallerCell = "end error"                  // the error the connection ended with
	CallerCtxError           CallerCell = "ctx error"                  // an error wrapping the call's ctx.Err()
)

// notYetEvents cannot happen while connecting: no TCP connection, no
// message writer yet.
var notYetEvents = []Event{RecvData, RecvPing, RecvPong, RecvClose, ProtocolError, ReadFailed, WriteFailed, CloseTimeout, PingTimer, Abandon, Drop}

// Table is the transition table of STATE_MACHINE.md, row by row.
var Table = []Row{
	{"C1", Connecting, []Event{Accepted}, Open, FramesNone, TCPNone, CallerNone},
	{"C2", Connecting, []Event{Refused}, Dropped, FramesNone, TCPEnd, CallerNone},
	{"C3", Connecting, []Event{Send}, Connecting, FramesNone, TCPNone, CallerErrConnClosed},
	{"C4", Connecting, []Event{Receive}, Connecting, FramesNone, TCPNone, CallerErrConnClosed},
	{"C5", Connecting, []Event{Close}, Connecting, FramesNone, TCPNone, CallerErrConnClosed},
	{"C6", Connecting, notYetEvents, Connecting, FramesNone, TCPNone, CallerNone},
	{"C7", Connecting, []Event{Cancel, Ping}, Connecting, FramesNone, TCPNone, CallerErrConnClosed},
	{"O1", Open, []Event{RecvData}, Open, FramesNone, TCPNone, CallerNone},
	{"O2", Open, []Event{RecvPong}, Open, FramesNone, TCPNone, CallerNone},
	{"O3", Open, []Event{Send}, Open, FramesData, TCPNone, CallerNil},
	{"O4", Open, []Event{Receive}, Open, FramesNone, TCPNone, CallerNone},
	{"O5", Open, []Event{RecvPing}, Open, FramesPong, TCPNone, CallerNone},
	{"O6", Open, []Event{RecvClose}, Closed, FramesCloseEcho, TCPCloseAfterServer, CallerErrConnClosed},
	{"O7", Open, []Event{ProtocolError}, Dropped, FramesCloseError, TCPCloseAfterOurs, CallerWrapsErrConnClosed},
	{"O8", Open, []Event{ReadFailed}, Dropped, FramesNone, TCPCloseAtOnce, CallerErrConnClosed},
	{"O9", Open, []Event{WriteFailed}, Dropped, FramesNone, TCPCloseAtOnce, CallerWrapsErrConnClosed},
	{"O10", Open, []Event{Close}, Closing, FramesCloseCodeReason, TCPNone, CallerWaits},
	{"O11", Open, []Event{CloseTimeout}, Open, FramesNone, TCPNone, CallerNone},
	{"O12", Open, []Event{Accepted, Refused}, Open, FramesNone, TCPNone, CallerNone},
	{"O13", Open, []Event{PingTimer}, Open, FramesPing, TCPNone, CallerNone},
	{"O14", Open, []Event{Abandon}, Closing, FramesCloseAbandoned, TCPNone, CallerWrapsErrConnClosed},
	{"O15", Open, []Event{Drop}, Dropped, FramesNone, TCPCloseAtOnce, CallerWrapsErrConnClosed},
	{"O16", Open, []Event{Cancel}, Open, FramesNone, TCPNone, CallerCtxError},
	{"O17", Open, []Event{Ping}, Open, FramesPing, TCPNone, CallerWaits},
	{"K1", Closing, []Event{RecvData}, Closing, FramesNone, TCPNone, CallerNone},
	{"K2", Closing, []Event{RecvPing}, Closing, FramesNone, TCPNone, CallerNone},
	{"K3", Closing, []Event{RecvPong}, Closing, FramesNone, TCPNone, CallerNone},
	{"K4", Closing, []Event{RecvClose}, Closed, FramesNone, TCPCloseAfterServer, CallerCloseNil},
	{"K5", Closing, []Event{ProtocolError}, Dropped, FramesNone, TCPCloseAtOnce, CallerCloseWraps},
	{"K6", Closing, []Event{ReadFailed}, Dropped, FramesNone, TCPCloseAtOnce, CallerCloseWraps},
	{"K7", Closing, []Event{WriteFailed}, Dropped, FramesNone, TCPCloseAtOnce, CallerCloseWraps},
	{"K8", Closing, []Event{CloseTimeout}, Dropped, FramesNone, TCPCloseAtOnce, CallerCloseWraps},
	{"K9", Closing, []Event{Send}, Closing, FramesNone, TCPNone, CallerErrConnClosed},
	{"K10", Closing, []Event{Receive}, Closing, FramesNone, TCPNone, CallerErrConnClosed},
	{"K11", Closing, []Event{Close}, Closing, FramesNone, TCPNone, CallerErrConnClosed},
	{"K12", Closing, []Event{Accepted, Refused}, Closing, FramesNone, TCPNone, CallerNone},
	{"K13", Closing, []Event{PingTimer}, Closing, FramesNone, TCPNone, CallerNone},
	{"K14", Closing, []Event{Abandon}, Closing, FramesNone, TCPNone, CallerErrConnClosed},
	{"K15", Closing, []Event{Drop}, Dropped, FramesNone, TCPCloseAtOnce, CallerCloseWraps},
	{"K16", Closing, []Event{Cancel}, Closing, FramesNone, TCPNone, CallerErrConnClosed},
	{"K17", Closing, []Event{Ping}, Closing, FramesNone, TCPNone, CallerErrConnClosed},
	{"T1", Closed, nil, Closed, FramesNone, TCPNone, CallerErrConnClosed},
	{"T2", Dropped, []Event{Receive}, Dropped, FramesNone, TCPNone, CallerEndError},
	{"T3", Dropped, []Event{Accepted, Refused, RecvData, RecvPing, RecvPong, RecvClose, ProtocolError,
		ReadFailed, WriteFailed, Send, Close, CloseTimeout, PingTimer, Abandon, Drop, Cancel, Ping}, Dropped, FramesNone, TCPNone, CallerErrConnClosed},
}

// Lookup returns the row for an event in a state. Every pair has exactly
// one row; the tests check that.
func Lookup(from State, ev Event) Row {
	for _, r := range Table {
		if r.From != from {
			continue
		}
		if r.Events == nil {
			return r
		}
		for _, x := range r.Events {
			if x == ev {
				return r
			}
		}
	}
	panic("model: no row for " + string(from) + " × " + string(ev))
}
