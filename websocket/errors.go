package websocket

import (
	"strconv"

	"github.com/wsmachine/wsmachine/websocket/internal/core"
)

// Errors returned by the methods of [Conn]. They are comparable sentinels;
// some errors wrap one of them with detail, so test with errors.Is.
var (
	// ErrConnClosed is returned by every operation on a connection that
	// has ended or started closing, and wrapped by the errors that end a
	// connection (a protocol violation by the client, a dropped TCP
	// connection, a close handshake that timed out).
	ErrConnClosed = core.ErrConnClosed

	// ErrMessageType is returned when a message of the wrong type was
	// received (ReceiveText got binary data or ReceiveBinary got text), or
	// when SendMessage is asked for a type other than Text or Binary.
	ErrMessageType = core.ErrMessageType

	// ErrStatusCode is returned by Close for a status code that a server
	// must not send.
	ErrStatusCode = core.ErrStatusCode

	// ErrTooLarge is returned when a received message did not fit into the
	// space given for it, or when a close message is longer than 123 bytes.
	ErrTooLarge = core.ErrTooLarge
)

// errInvalidUTF8 is returned when text to be sent is not valid UTF-8.
var errInvalidUTF8 = core.ErrInvalidUTF8

// MessageType is the type of a WebSocket data message.
type MessageType byte

// The two kinds of data message (RFC 6455 §5.6); the values are the
// frame opcodes.
const (
	Text   MessageType = 1 // UTF-8 text
	Binary MessageType = 2 // arbitrary bytes
)

// String returns "Text" or "Binary".
func (tp MessageType) String() string {
	switch tp {
	case Text:
		return "Text"
	case Binary:
		return "Binary"
	}
	return "MessageType(" + strconv.Itoa(int(tp)) + ")"
}

// Status is a close status code (RFC 6455 §7.4).
type Status uint16

// Close status codes. StatusNotSent and StatusDropped never appear in a
// close frame: GetStatus uses them to say that the client's close frame
// carried no code, or that no close frame arrived at all.
const (
	StatusOK                  Status = 1000 // normal closure
	StatusGoingAway           Status = 1001 // server shutting down or page left
	StatusProtocolError       Status = 1002 // the peer broke RFC 6455
	StatusUnsupportedType     Status = 1003 // a message type the endpoint cannot accept
	StatusNotSent             Status = 1005 // a close frame without a status code
	StatusDropped             Status = 1006 // the connection ended without a close frame
	StatusInvalidData         Status = 1007 // e.g. invalid UTF-8 in a text message
	StatusPolicyViolation     Status = 1008 // a message that violates the endpoint's policy
	StatusTooLarge            Status = 1009 // a message too big to process
	StatusInternalServerError Status = 1011 // an unexpected condition on the server
)
