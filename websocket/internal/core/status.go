package core

import "errors"

// Status is a close status code (RFC 6455 §7.4): the websocket package's
// Status, which the driver converts to and from at its edge.
type Status uint16

// The close codes the protocol itself sends or records, as the websocket
// package names them.
const (
	StatusOK                  Status = 1000
	StatusProtocolError       Status = 1002
	StatusNotSent             Status = 1005 // a close frame without a code
	StatusDropped             Status = 1006 // no close frame at all
	StatusInvalidData         Status = 1007
	StatusTooLarge            Status = 1009
	StatusInternalServerError Status = 1011
)

// ValidOnWire reports whether code is valid in a close frame, from either
// end, and so what a client may send (RFC 6455 §7.4.1 and the IANA
// registry: 1012–1014 are registered; 1004–1006 and 1015 must never
// appear on the wire).
func (code Status) ValidOnWire() bool {
	return code >= 1000 && code <= 1003 || code >= 1007 && code <= 1014 || code >= 3000 && code <= 4999
}

// ServerMaySend reports whether a server may put code into a close frame:
// the codes a client may send, less 1010 (a client's complaint that the
// server did not negotiate an extension).
func (code Status) ServerMaySend() bool {
	return code != 1010 && code.ValidOnWire()
}

// The errors the protocol answers calls with. The websocket package
// exports the same values (its errors.go documents them), so that
// errors.Is works whichever package made the error.
var (
	ErrConnClosed  = errors.New("websocket: connection closed")
	ErrMessageType = errors.New("websocket: wrong message type")
	ErrStatusCode  = errors.New("websocket: invalid status code")
	ErrTooLarge    = errors.New("websocket: message too large")
	ErrInvalidUTF8 = errors.New("websocket: text is not valid UTF-8")
)
