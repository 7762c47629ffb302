package websocket

import (
	"fmt"
	"strconv"
)

// state is where a connection is in its lifecycle. STATE_MACHINE.md is the
// specification; step below is the only code that changes a state.
type state uint8

const (
	// stateConnecting: the opening handshake is being checked; AccessOk
	// runs here. Next: open (101 sent) or dropped (refused).
	stateConnecting state = iota
	// stateOpen: data flows both ways. Next: closing (Close called),
	// closed (the client's close frame), dropped (anything fatal).
	stateOpen
	// stateClosing: we sent our close frame and wait for the client's.
	// Nothing more is sent. Next: closed or dropped.
	stateClosing
	// stateClosed: both close frames were exchanged. Terminal.
	stateClosed
	// stateDropped: the connection ended without a valid close frame from
	// the client. Terminal; GetStatus reports StatusDropped.
	stateDropped
)

var stateNames = [...]string{"connecting", "open", "closing", "closed", "dropped"}

func (s state) String() string { return stateNames[s] }

// terminal reports whether s is closed or dropped.
func (s state) terminal() bool { return s >= stateClosed }

// event is something that happens to a connection: a frame arrives, the
// network fails, the application calls a method, a timer fires. The names
// match the Event column of STATE_MACHINE.md.
type event uint8

const (
	evAccepted      event = iota // the 101 response was written
	evRefused                    // the opening handshake was refused
	evRecvData                   // a data frame passed checkHeader
	evRecvPing                   // a ping frame arrived
	evRecvPong                   // a pong frame arrived
	evRecvClose                  // a valid close frame arrived (code, reason)
	evProtocolError              // the client broke RFC 6455 (code, reason)
	evReadFailed                 // TCP EOF or a read error
	evWriteFailed                // a write to TCP failed
	evSend                       // the application sends a data frame
	evReceive                    // the application receives
	evClose                      // the application calls Close (code, reason)
	evCloseTimeout               // no close frame came within the close timeout
	evPingTimer                  // the ping interval passed with nothing from the client
	evAbandon                    // a message writer gave up a message partly sent

	// evNone is no event: the bytes taken change nothing that step
	// decides (see protocol.frame).
	evNone event = 255
)

// reasonAbandoned is the reason of our close frame when a message writer
// gives up a message partly sent (O14): the peer must not take what it
// received of it for the whole message.
const reasonAbandoned = "message abandoned"

// tcpEffect is what a transition does to TCP: the TCP column of
// STATE_MACHINE.md, one constant per cell. Every effect but tcpNone ends
// the connection and wakes GetStatus (see finish).
type tcpEffect uint8

const (
	// tcpNone: "—", TCP stays as it is.
	tcpNone tcpEffect = iota
	// tcpClose: "close", at once, after our close frame if one was sent;
	// what has already arrived is discarded first.
	tcpClose
	// tcpCloseAfterServer: "close (client: after the server)", the end
	// of the closing handshake: a server closes at once, a client reads
	// until the server's FIN (RFC 6455 §7.1.1; see awaitsServerFIN).
	tcpCloseAfterServer
	// tcpCloseAfterOurs: "close after ours", we failed the connection:
	// half-close after our close frame, drain, close.
	tcpCloseAfterOurs
	// tcpEnd: "end", the connection ends without TCP (a refused
	// handshake: the HTTP connection stays with net/http).
	tcpEnd
)

// awaitsServerFIN reports whether closing TCP as tcp says waits for the
// server to close first: only a client's end does, after the closing
// handshake.
func (p *protocol) awaitsServerFIN(tcp tcpEffect) bool {
	return tcp == tcpCloseAfterServer && p.client
}

// effects are what a transition asks its caller to do once the lock is
// released: the frames to send, what happens to TCP, and what the API
// caller gets.
type effects struct {
	pong        bool   // answer the ping with a pong, of its payload
	ping        bool   // send a keepalive ping
	sendClose   bool   // send a close frame with closeCode, closeReason
	closeCode   Status // StatusNotSent: an empty close frame
	closeReason string
	tcp         tcpEffect
	awaitClose  bool  // Close may still be writing our close frame: it goes first
	discard     bool  // RecvData after our close: the payload is dropped unread
	err         error // nil: the caller may go ahead
}

// step applies ev to the connection and returns what the driver is to
// do; Conn.mu is held. code and reason are the event's close code and
// reason where it has one. Each case names the row of STATE_MACHINE.md it
// implements.
func (p *protocol) step(ev event, code Status, reason string) (fx effects) {
	wasTerminal := p.state.terminal()
	defer func() {
		if !wasTerminal && p.state.terminal() {
			p.cause = causeOf(ev, code, reason, p.peer())
		}
	}()
	switch p.state {
	case stateConnecting:
		switch ev {
		case evAccepted: // C1
			p.state = stateOpen
		case evRefused: // C2
			p.state = stateDropped
			fx.tcp = tcpEnd
		case evSend, evReceive, evClose: // C3, C4, C5
			fx.err = ErrConnClosed
		}
		// C6: the rest cannot happen (no TCP connection, no writer yet).
	case stateOpen:
		switch ev {
		case evRecvData, evRecvPong, evSend, evReceive: // O1, O2, O3, O4
		case evRecvPing: // O5
			fx.pong = true
		case evRecvClose: // O6: answer with the peer's code
			p.state = stateClosed
			p.status, p.reason = code, reason
			fx.sendClose, fx.closeCode = true, p.replyCode(code)
			fx.tcp = tcpCloseAfterServer
		case evProtocolError: // O7: fail the connection
			p.state = stateDropped
			fx.sendClose, fx.closeCode, fx.closeReason = true, code, reason
			fx.tcp = tcpCloseAfterOurs
		case evReadFailed, evWriteFailed: // O8, O9
			p.state = stateDropped
			fx.tcp = tcpClose
		case evClose: // O10
			p.state = stateClosing
			fx.sendClose, fx.closeCode, fx.closeReason = true, code, reason
		case evAbandon: // O14: what the peer has of the message must not pass for all of it
			p.state = stateClosing
			fx.sendClose, fx.closeCode, fx.closeReason = true, StatusInternalServerError, reasonAbandoned
		case evCloseTimeout: // O11: cannot happen, no close was sent
		case evPingTimer: // O13
			fx.ping = true
		}
	case stateClosing:
		switch ev {
		case evRecvData: // K1: not delivered after our close
			fx.discard = true
		case evRecvPing, evRecvPong, evPingTimer: // K2, K3, K13: nothing after our close
		case evRecvClose: // K4: the close handshake is complete; Close returns nil
			p.state = stateClosed
			p.status, p.reason = code, reason
			p.closeAnswered = true
			fx.tcp, fx.awaitClose = tcpCloseAfterServer, true
		case evProtocolError, evReadFailed, evWriteFailed, evCloseTimeout: // K5–K8
			p.state = stateDropped
			fx.tcp, fx.awaitClose = tcpClose, true
		case evSend, evReceive, evClose, evAbandon: // K9, K10, K11, K14
			fx.err = ErrConnClosed
		}
	case stateClosed, stateDropped:
		// T1–T3: terminal; network events and timers are ignored, API
		// calls refused.
		// A receive gets the error the connection ended with (T2; after
		// T1's clean close that is ErrConnClosed), as a receive waiting
		// at the end did: a receive started a moment too late must not
		// learn less.
		fx.err = ErrConnClosed
		if ev == evReceive && p.cause != nil {
			fx.err = p.cause
		}
	}
	return fx
}

// causeOf is the error that ends a connection on event ev: what a receive
// that was waiting for data gets.
func causeOf(ev event, code Status, reason, peer string) error {
	switch {
	case ev == evProtocolError:
		return closedBecause(reason + " (sent close " + strconv.Itoa(int(code)) + ")")
	case ev == evCloseTimeout:
		return closedBecause("no close frame from the " + peer + " in time")
	case (ev == evReadFailed || ev == evWriteFailed) && reason != "":
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
func (p *protocol) replyCode(code Status) Status {
	if code == StatusNotSent || p.maySend(code) {
		return code
	}
	return StatusOK
}

// maySend reports whether we may put code into a close frame: a server
// any valid code but 1010, a client any valid code.
func (p *protocol) maySend(code Status) bool {
	if p.client {
		return code.validOnWire()
	}
	return code.serverMaySend()
}

// peer names the other end, for errors.
func (p *protocol) peer() string {
	if p.client {
		return "server"
	}
	return "client"
}

// The questions the rest of the package asks of the state, each answered
// here, by step where it is an event of the table, so that no other file
// reads or writes the state (TestOnlyStateGoTouchesState). The Conn's
// versions take c.mu.

// current returns the state, for tests and errors.
func (p *protocol) current() state { return p.state }

// currentState is current under c.mu.
func (c *Conn) currentState() state {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.p.current()
}

// dataVerdict is what the reader does with a data frame's payload, as
// the row of RecvData says.
type dataVerdict uint8

const (
	deliverData dataVerdict = iota // O1: to the receiver
	discardData                    // K1: dropped unread after our close
	dataEnded                      // T1, T3: the connection has ended
)

// recvData steps RecvData before the reader takes payload of the current
// data message: the state may have changed since its header came (Close
// from another goroutine).
func (p *protocol) recvData() dataVerdict { return verdictOf(p.step(evRecvData, 0, "")) }

// verdictOf is what RecvData's effects say of the payload.
func verdictOf(fx effects) dataVerdict {
	switch {
	case fx.err != nil:
		return dataEnded
	case fx.discard:
		return discardData
	}
	return deliverData
}

// recvData is the protocol's under c.mu, with step called here, not
// through protocol.recvData, so that the reader's stack is a frame less
// deep. Never inlined, as stepErr.
//
//go:noinline
func (c *Conn) recvData() dataVerdict {
	c.mu.Lock()
	v := verdictOf(c.p.step(evRecvData, 0, ""))
	c.mu.Unlock()
	return v
}

// endErr is what a call that was waiting gets when it finds the
// connection no longer open: why it ended, or ErrConnClosed while
// closing.
func (p *protocol) endErr() error {
	if p.cause != nil {
		return p.cause
	}
	return ErrConnClosed
}

// endErr is the protocol's under c.mu.
func (c *Conn) endErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.p.endErr()
}

// closeResult is what Close returns once the connection has ended after
// it: nil if the peer answered (K4), else that it did not (K5–K8).
func (p *protocol) closeResult() error {
	if p.closeAnswered {
		return nil
	}
	return fmt.Errorf("%w: no close frame from the %s", ErrConnClosed, p.peer())
}

// closeResult is the protocol's under c.mu.
func (c *Conn) closeResult() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.p.closeResult()
}

// isOpen reports whether the connection is open: whether Close is to take
// O10 (its deadline for our close frame is set before the transition, so
// that a sender blocked in a write lets go of the write side).
func (c *Conn) isOpen() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.p.state == stateOpen
}

// ended reports whether the connection has ended (closed or dropped): no
// timer is armed any more, and no byte is read.
func (p *protocol) ended() bool { return p.state.terminal() }

// backgroundNeed says whether the background reader is to run while
// nobody reads, and how soon: while open and no message waits for a
// receive call, after a short delay, to answer pings (O5) and learn of
// the peer's close (O6) or a drop (O8); while closing at once, to take in
// the peer's close frame (K4); never once ended.
func (p *protocol) backgroundNeed(inMessage bool) (run, now bool) {
	switch p.state {
	case stateClosing:
		return true, true
	case stateOpen:
		return !inMessage, false
	}
	return false, false
}
