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

// Input is an event of the transition table, named as in STATE_MACHINE.md.
type Input string

// The events of the transition table.
const (
	Accepted      Input = "Accepted"
	Refused       Input = "Refused"
	RecvData      Input = "RecvData"
	RecvPing      Input = "RecvPing"
	RecvPong      Input = "RecvPong"
	RecvClose     Input = "RecvClose"
	ProtocolError Input = "ProtocolError"
	ReadFailed    Input = "ReadFailed"
	WriteFailed   Input = "WriteFailed"
	Send          Input = "Send"
	Receive       Input = "Receive"
	Close         Input = "Close"
	CloseTimeout  Input = "CloseTimeout"
	PingTimer     Input = "PingTimer"
	Abandon       Input = "Abandon"
)

// Inputs lists every event.
var Inputs = []Input{Accepted, Refused, RecvData, RecvPing, RecvPong, RecvClose,
	ProtocolError, ReadFailed, WriteFailed, Send, Receive, Close, CloseTimeout, PingTimer, Abandon}

// Row is one row of the transition table. Frames, TCP and Caller hold the
// table's canonical cell values (see STATE_MACHINE.md).
type Row struct {
	ID     string
	From   State
	Inputs []Input // nil: every input
	To     State
	Frames string // "—", "data", "pong", "close(echo)", "close(error)", "close(code, reason)", "close(abandoned)"
	TCP    string // "—", "close", TCPCloseAfterServer, "close after ours", "end"
	Caller string // "—", "nil", "ErrConnClosed", "wraps ErrConnClosed", "waits", "Close: nil", "Close: wraps ErrConnClosed"
}

// TCPCloseAfterServer is the TCP cell of the rows that complete the
// closing handshake: the server closes TCP at once; the client reads until
// the server has closed it, then closes its own socket (RFC 6455 §7.1.1).
const TCPCloseAfterServer = "close (client: after the server)"

// notYetInputs cannot happen while connecting: no TCP connection, no
// message writer yet.
var notYetInputs = []Input{RecvData, RecvPing, RecvPong, RecvClose, ProtocolError, ReadFailed, WriteFailed, CloseTimeout, PingTimer, Abandon}

// Table is the transition table of STATE_MACHINE.md, row by row.
var Table = []Row{
	{"C1", Connecting, []Input{Accepted}, Open, "—", "—", "—"},
	{"C2", Connecting, []Input{Refused}, Dropped, "—", "end", "—"},
	{"C3", Connecting, []Input{Send}, Connecting, "—", "—", "ErrConnClosed"},
	{"C4", Connecting, []Input{Receive}, Connecting, "—", "—", "ErrConnClosed"},
	{"C5", Connecting, []Input{Close}, Connecting, "—", "—", "ErrConnClosed"},
	{"C6", Connecting, notYetInputs, Connecting, "—", "—", "—"},
	{"O1", Open, []Input{RecvData}, Open, "—", "—", "—"},
	{"O2", Open, []Input{RecvPong}, Open, "—", "—", "—"},
	{"O3", Open, []Input{Send}, Open, "data", "—", "nil"},
	{"O4", Open, []Input{Receive}, Open, "—", "—", "—"},
	{"O5", Open, []Input{RecvPing}, Open, "pong", "—", "—"},
	{"O6", Open, []Input{RecvClose}, Closed, "close(echo)", TCPCloseAfterServer, "ErrConnClosed"},
	{"O7", Open, []Input{ProtocolError}, Dropped, "close(error)", "close after ours", "wraps ErrConnClosed"},
	{"O8", Open, []Input{ReadFailed}, Dropped, "—", "close", "ErrConnClosed"},
	{"O9", Open, []Input{WriteFailed}, Dropped, "—", "close", "wraps ErrConnClosed"},
	{"O10", Open, []Input{Close}, Closing, "close(code, reason)", "—", "waits"},
	{"O11", Open, []Input{CloseTimeout}, Open, "—", "—", "—"},
	{"O12", Open, []Input{Accepted, Refused}, Open, "—", "—", "—"},
	{"O13", Open, []Input{PingTimer}, Open, "ping", "—", "—"},
	{"O14", Open, []Input{Abandon}, Closing, "close(abandoned)", "—", "wraps ErrConnClosed"},
	{"K1", Closing, []Input{RecvData}, Closing, "—", "—", "—"},
	{"K2", Closing, []Input{RecvPing}, Closing, "—", "—", "—"},
	{"K3", Closing, []Input{RecvPong}, Closing, "—", "—", "—"},
	{"K4", Closing, []Input{RecvClose}, Closed, "—", TCPCloseAfterServer, "Close: nil"},
	{"K5", Closing, []Input{ProtocolError}, Dropped, "—", "close", "Close: wraps ErrConnClosed"},
	{"K6", Closing, []Input{ReadFailed}, Dropped, "—", "close", "Close: wraps ErrConnClosed"},
	{"K7", Closing, []Input{WriteFailed}, Dropped, "—", "close", "Close: wraps ErrConnClosed"},
	{"K8", Closing, []Input{CloseTimeout}, Dropped, "—", "close", "Close: wraps ErrConnClosed"},
	{"K9", Closing, []Input{Send}, Closing, "—", "—", "ErrConnClosed"},
	{"K10", Closing, []Input{Receive}, Closing, "—", "—", "ErrConnClosed"},
	{"K11", Closing, []Input{Close}, Closing, "—", "—", "ErrConnClosed"},
	{"K12", Closing, []Input{Accepted, Refused}, Closing, "—", "—", "—"},
	{"K13", Closing, []Input{PingTimer}, Closing, "—", "—", "—"},
	{"K14", Closing, []Input{Abandon}, Closing, "—", "—", "ErrConnClosed"},
	{"T1", Closed, nil, Closed, "—", "—", "ErrConnClosed"},
	{"T2", Dropped, []Input{Receive}, Dropped, "—", "—", "end error"},
	{"T3", Dropped, []Input{Accepted, Refused, RecvData, RecvPing, RecvPong, RecvClose, ProtocolError,
		ReadFailed, WriteFailed, Send, Close, CloseTimeout, PingTimer, Abandon}, Dropped, "—", "—", "ErrConnClosed"},
}

// Lookup returns the row for an input in a state. Every pair has exactly
// one row; the tests check that.
func Lookup(from State, in Input) Row {
	for _, r := range Table {
		if r.From != from {
			continue
		}
		if r.Inputs == nil {
			return r
		}
		for _, x := range r.Inputs {
			if x == in {
				return r
			}
		}
	}
	panic("model: no row for " + string(from) + " × " + string(in))
}
