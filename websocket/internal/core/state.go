package core

import (
	"fmt"
	"strconv"
	"unicode/utf8"
)

// State is where a connection is in its lifecycle. STATE_MACHINE.md is the
// specification; step below is the only code that changes a state.
type State uint8

const (
	// StateConnecting: the opening handshake is being checked; AccessOk
	// runs here. Next: open (101 sent) or dropped (refused).
	StateConnecting State = iota
	// StateOpen: data flows both ways. Next: closing (Close called),
	// closed (the client's close frame), dropped (anything fatal).
	StateOpen
	// StateClosing: we sent our close frame and wait for the client's.
	// Nothing more is sent. Next: closed or dropped.
	StateClosing
	// StateClosed: both close frames were exchanged. Terminal.
	StateClosed
	// StateDropped: the connection ended without a valid close frame from
	// the client. Terminal; GetStatus reports StatusDropped.
	StateDropped
)

var stateNames = [...]string{"connecting", "open", "closing", "closed", "dropped"}

// String names the state as STATE_MACHINE.md does.
func (s State) String() string { return stateNames[s] }

// terminal reports whether s is closed or dropped.
func (s State) terminal() bool { return s >= StateClosed }

// Event is something that happens to a connection: a frame arrives, the
// network fails, the application calls a method, a timer fires. The names
// match the Event column of STATE_MACHINE.md.
type Event uint8

const (
	EvAccepted      Event = iota // the 101 response was written
	EvRefused                    // the opening handshake was refused
	EvRecvData                   // a data frame passed checkHeader
	EvRecvPing                   // a ping frame arrived
	EvRecvPong                   // a pong frame arrived
	EvRecvClose                  // a valid close frame arrived (code, reason)
	EvProtocolError              // the client broke RFC 6455 (code, reason)
	EvReadFailed                 // TCP EOF or a read error
	EvWriteFailed                // a write to TCP failed
	EvSend                       // the application sends a data frame
	EvReceive                    // the application receives
	EvClose                      // the application calls Close (code, reason)
	EvCloseTimeout               // no close frame came within the close timeout
	EvPingTimer                  // the ping interval passed with nothing from the client
	EvAbandon                    // a message writer gave up a message partly sent
	EvDrop                       // the server gives the connection up (Handler.Shutdown's deadline)
	EvCancel                     // the context of a call that waits ended
	EvPing                       // the application pings (Conn.Ping)

	// EvNone is no event: the bytes taken change nothing that step
	// decides (see protocol.frame).
	EvNone Event = 255
)

// ReasonAbandoned is the reason of our close frame when a message writer
// gives up a message partly sent (O14): the peer must not take what it
// received of it for the whole message.
const ReasonAbandoned = "message abandoned"

// TCPEffect is what a transition does to TCP: the TCP column of
// STATE_MACHINE.md, one constant per cell. Every effect but TCPNone ends
// the connection and wakes GetStatus (see finish).
type TCPEffect uint8

const (
	// TCPNone: "—", TCP stays as it is.
	TCPNone TCPEffect = iota
	// TCPClose: "close", at once, after our close frame if one was sent;
	// what has already arrived is discarded first.
	TCPClose
	// TCPCloseAfterServer: "close (client: after the server)", the end
	// of the closing handshake: a server closes at once, a client reads
	// until the server's FIN (RFC 6455 §7.1.1; see awaitsServerFIN).
	TCPCloseAfterServer
	// TCPCloseAfterOurs: "close after ours", we failed the connection:
	// half-close after our close frame, drain, close.
	TCPCloseAfterOurs
	// TCPEnd: "end", the connection ends without TCP (a refused
	// handshake: the HTTP connection stays with net/http).
	TCPEnd
)

// AwaitsServerFIN reports whether closing TCP as tcp says waits for the
// server to close first: only a client's end does, after the closing
// handshake.
func (p *Protocol) AwaitsServerFIN(tcp TCPEffect) bool {
	return tcp == TCPCloseAfterServer && p.Client
}

// Effects are what a transition asks its caller to do once the lock is
// released: the frames to send, what happens to TCP, and what the API
// caller gets.
type Effects struct {
	Pong        bool   // answer the ping with a pong, of its payload
	Ping        bool   // send a keepalive ping
	SendClose   bool   // send a close frame with CloseCode, CloseReason
	CloseCode   Status // StatusNotSent: an empty close frame
	CloseReason string
	TCP         TCPEffect
	AwaitClose  bool  // Close may still be writing our close frame: it goes first
	Discard     bool  // RecvData after our close: the payload is dropped unread
	Err         error // nil: the caller may go ahead
}

// Step applies ev to the connection and returns what the driver is to
// do; the driver holds its lifecycle lock (Conn.mu). code and reason are the event's close code and
// reason where it has one. Each case names the row of STATE_MACHINE.md it
// implements.
func (p *Protocol) Step(ev Event, code Status, reason string) (fx Effects) {
	wasTerminal := p.state.terminal()
	defer func() {
		if !wasTerminal && p.state.terminal() {
			p.cause = causeOf(ev, code, reason, p.Peer())
			p.endEv = ev
			if ev == EvProtocolError {
				p.endCode = uint8(code - 1000) // 1002, 1007, 1009, 1010: within a byte
			}
		}
	}()
	switch p.state {
	case StateConnecting:
		switch ev {
		case EvAccepted: // C1
			p.state = StateOpen
		case EvRefused: // C2
			p.state = StateDropped
			fx.TCP = TCPEnd
		case EvSend, EvReceive, EvClose, EvCancel, EvPing: // C3, C4, C5, C7
			fx.Err = ErrConnClosed
		}
		// C6: the rest cannot happen (no TCP connection, no writer yet).
	case StateOpen:
		switch ev {
		case EvRecvData, EvRecvPong, EvSend, EvReceive: // O1, O2, O3, O4
		case EvRecvPing: // O5
			fx.Pong = true
		case EvRecvClose: // O6: answer with the peer's code
			p.state = StateClosed
			p.status, p.reason = code, reason
			fx.SendClose, fx.CloseCode = true, p.replyCode(code)
			fx.TCP = TCPCloseAfterServer
		case EvProtocolError: // O7: fail the connection
			p.state = StateDropped
			fx.SendClose, fx.CloseCode, fx.CloseReason = true, code, reason
			fx.TCP = TCPCloseAfterOurs
		case EvReadFailed, EvWriteFailed, EvDrop: // O8, O9, O15
			p.state = StateDropped
			fx.TCP = TCPClose
		case EvClose: // O10
			p.state = StateClosing
			fx.SendClose, fx.CloseCode, fx.CloseReason = true, code, reason
		case EvAbandon: // O14: what the peer has of the message must not pass for all of it
			p.state = StateClosing
			fx.SendClose, fx.CloseCode, fx.CloseReason = true, StatusInternalServerError, ReasonAbandoned
		case EvCloseTimeout: // O11: cannot happen, no close was sent
		case EvPingTimer, EvPing: // O13, O17: the caller waits for the pong
			fx.Ping = true
		case EvCancel: // O16: the call returns its context's error; nothing else changes
		}
	case StateClosing:
		switch ev {
		case EvRecvData: // K1: not delivered after our close
			fx.Discard = true
		case EvRecvPing, EvRecvPong, EvPingTimer: // K2, K3, K13: nothing after our close
		case EvRecvClose: // K4: the close handshake is complete; Close returns nil
			p.state = StateClosed
			p.status, p.reason = code, reason
			p.closeAnswered = true
			fx.TCP, fx.AwaitClose = TCPCloseAfterServer, true
		case EvProtocolError, EvReadFailed, EvWriteFailed, EvCloseTimeout, EvDrop: // K5–K8, K15
			p.state = StateDropped
			fx.TCP, fx.AwaitClose = TCPClose, true
		case EvSend, EvReceive, EvClose, EvAbandon, EvCancel, EvPing: // K9, K10, K11, K14, K16, K17
			fx.Err = ErrConnClosed
		}
	case StateClosed, StateDropped:
		// T1–T3: terminal; network events and timers are ignored, API
		// calls refused.
		// A receive gets the error the connection ended with (T2; after
		// T1's clean close that is ErrConnClosed), as a receive waiting
		// at the end did: a receive started a moment too late must not
		// learn less.
		fx.Err = ErrConnClosed
		if ev == EvReceive && p.cause != nil {
			fx.Err = p.cause
		}
	}
	return fx
}

// causeOf is the error that ends a connection on event ev: what a receive
// that was waiting for data gets.
func causeOf(ev Event, code Status, reason, peer string) error {
	switch {
	case ev == EvProtocolError:
		return closedBecause(reason + " (sent close " + strconv.Itoa(int(code)) + ")")
	case ev == EvCloseTimeout:
		return closedBecause("no close frame from the " + peer + " in time")
	case (ev == EvReadFailed || ev == EvWriteFailed || ev == EvDrop) && reason != "":
		return closedBecause(reason)
	}
	return ErrConnClosed
}

// closedBecause is ErrConnClosed with the reason. It is a function of its
// own so that causeOf, called on every connection's last transition, stays
// small: a large frame there would grow the goroutine's stack.
func closedBecause(reason string) error {
	return fmt.Errorf("%w: %s", ErrConnClosed, reason)
}

// replyCode is the code of the close frame that answers the peer's close
// (RFC 6455 §5.5.1: echo it, as far as we may send it).
func (p *Protocol) replyCode(code Status) Status {
	if code == StatusNotSent || p.maySend(code) {
		return code
	}
	return StatusOK
}

// maySend reports whether we may put code into a close frame: a server
// any valid code but 1010, a client any valid code.
func (p *Protocol) maySend(code Status) bool {
	if p.Client {
		return code.ValidOnWire()
	}
	return code.ServerMaySend()
}

// CloseArgs checks Close's arguments; an error leaves the connection as
// it is.
func (p *Protocol) CloseArgs(code Status, message string) error {
	switch {
	case code == StatusNotSent && message != "" || code != StatusNotSent && !p.maySend(code):
		return ErrStatusCode
	case len(message) > MaxControlPayload-2:
		return ErrTooLarge
	case !utf8.ValidString(message):
		return ErrInvalidUTF8
	}
	return nil
}

// Peer names the other end, for errors.
func (p *Protocol) Peer() string {
	if p.Client {
		return "server"
	}
	return "client"
}

// The questions the drivers ask of the state, each answered here, by Step
// where it is an event of the table, so that no other file reads or
// writes the state (TestOnlyStateGoTouchesState). The Conn's versions
// (websocket/state.go) take c.mu.

// Current returns the state, for tests and errors.
func (p *Protocol) Current() State { return p.state }

// Open reports whether the connection is open: whether Close is to take
// O10 (the driver sets its deadline for our close frame before the
// transition, so that a sender blocked in a write lets go of the write
// side).
func (p *Protocol) Open() bool { return p.state == StateOpen }

// PeerClose returns the peer's close code and reason: StatusDropped until
// a close frame arrives, StatusNotSent for one without a code.
func (p *Protocol) PeerClose() (Status, string) {
	if p.status == 0 { // no close frame came: 0 is no code on the wire
		return StatusDropped, ""
	}
	return p.status, p.reason
}

// DataVerdict is what the reader does with a data frame's payload, as
// the row of RecvData says.
type DataVerdict uint8

const (
	DeliverData DataVerdict = iota // O1: to the receiver
	DiscardData                    // K1: dropped unread after our close
	DataEnded                      // T1, T3: the connection has ended
)

// RecvData steps RecvData before the reader takes payload of the current
// data message: the state may have changed since its header came (Close
// from another goroutine).
func (p *Protocol) RecvData() DataVerdict { return VerdictOf(p.Step(EvRecvData, 0, "")) }

// VerdictOf is what RecvData's effects say of the payload.
func VerdictOf(fx Effects) DataVerdict {
	switch {
	case fx.Err != nil:
		return DataEnded
	case fx.Discard:
		return DiscardData
	}
	return DeliverData
}

// EndErr is what a call that was waiting gets when it finds the
// connection no longer open: why it ended, or ErrConnClosed while
// closing.
func (p *Protocol) EndErr() error {
	if p.cause != nil {
		return p.cause
	}
	return ErrConnClosed
}

// CloseResult is what Close returns once the connection has ended after
// it: nil if the peer answered (K4), else that it did not (K5–K8).
func (p *Protocol) CloseResult() error {
	if p.closeAnswered {
		return nil
	}
	return fmt.Errorf("%w: no close frame from the %s", ErrConnClosed, p.Peer())
}

// Answered reports whether the peer answered our close frame (K4): the
// closing handshake was ours.
func (p *Protocol) Answered() bool { return p.closeAnswered }

// Ending says how the connection ended: the event that took it into
// closed or dropped (EvNone while it has not), and for a violation of
// the peer's (EvProtocolError) the code we failed it with.
func (p *Protocol) Ending() (Event, Status) {
	if !p.state.terminal() {
		return EvNone, 0
	}
	if p.endEv == EvProtocolError {
		return p.endEv, Status(p.endCode) + 1000
	}
	return p.endEv, 0
}

// Ended reports whether the connection has ended (closed or dropped): no
// timer is armed any more, and no byte is read.
func (p *Protocol) Ended() bool { return p.state.terminal() }

// BackgroundNeed says whether the background reader is to run while
// nobody reads, and how soon: while open and no message waits for a
// receive call, after a short delay, to answer pings (O5) and learn of
// the peer's close (O6) or a drop (O8); while closing at once, to take in
// the peer's close frame (K4); never once ended.
func (p *Protocol) BackgroundNeed(inMessage bool) (run, now bool) {
	switch p.state {
	case StateClosing:
		return true, true
	case StateOpen:
		return !inMessage, false
	}
	return false, false
}
