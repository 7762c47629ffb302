package core

import (
	"encoding/binary"
	"strconv"
	"unicode/utf8"
)

// Opcode is a frame's opcode (RFC 6455 §5.2).
type Opcode byte

const (
	OpContinuation Opcode = 0x0
	OpText         Opcode = 0x1
	OpBinary       Opcode = 0x2
	OpClose        Opcode = 0x8
	OpPing         Opcode = 0x9
	OpPong         Opcode = 0xA
)

// IsControl reports whether op is a control opcode (RFC 6455 §5.5).
func (op Opcode) IsControl() bool { return op&0x8 != 0 }

// MaxControlPayload is the largest payload of a control frame (RFC 6455 §5.5).
const MaxControlPayload = 125

// MaxHeaderLen is the longest frame header: 2 bytes, 8 bytes of extended
// length and a 4-byte masking key (RFC 6455 §5.2).
const MaxHeaderLen = 14

// header is a decoded frame header (RFC 6455 §5.2).
type header struct {
	fin    bool
	rsv    byte // the three RSV bits, in the low bits
	op     Opcode
	masked bool
	length uint64 // payload length as declared, before any check
	key    [4]byte
}

// HeaderLen returns how many bytes the header starting with the two bytes
// b0, b1 occupies.
func HeaderLen(b1 byte) int {
	n := 2
	switch b1 & 0x7F {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&0x80 != 0 {
		n += 4
	}
	return n
}

// parseHeader decodes a complete header from b, which holds at least
// HeaderLen(b[1]) bytes. It also reports whether the length used the
// shortest encoding, as RFC 6455 §5.2 requires.
func parseHeader(b []byte) (h header, minimal bool) {
	h.fin = b[0]&0x80 != 0
	h.rsv = (b[0] >> 4) & 0x7
	h.op = Opcode(b[0] & 0x0F)
	h.masked = b[1]&0x80 != 0
	minimal = true
	i := 2
	switch l := b[1] & 0x7F; l {
	case 126:
		h.length = uint64(binary.BigEndian.Uint16(b[2:4]))
		minimal = h.length >= 126
		i = 4
	case 127:
		h.length = binary.BigEndian.Uint64(b[2:10])
		minimal = h.length > 0xFFFF
		i = 10
	default:
		h.length = uint64(l)
	}
	if h.masked {
		copy(h.key[:], b[i:i+4])
	}
	return h, minimal
}

// AppendHeader appends the header of a frame, unmasked (RFC 6455 §5.2;
// servers never mask, §5.1; a client adds its key, see writeMasked).
func AppendHeader(dst []byte, fin bool, op Opcode, length int) []byte {
	b0 := byte(op)
	if fin {
		b0 |= 0x80
	}
	switch {
	case length <= 125:
		return append(dst, b0, byte(length))
	case length <= 0xFFFF:
		return append(dst, b0, 126, byte(length>>8), byte(length))
	default:
		dst = append(dst, b0, 127)
		return binary.BigEndian.AppendUint64(dst, uint64(length))
	}
}

// protocolError is the verdict on a frame that breaks RFC 6455: the close
// code to send and a short reason for the close frame and the error.
type protocolError struct {
	code   Status
	reason string
}

// rsvDeflate is RSV1 in header.rsv: the message is compressed
// (permessage-deflate, RFC 7692 §6).
const rsvDeflate = 0x4

// checkFlags is what checkHeader needs to know of the stream besides the
// frame itself, as a bit set.
type checkFlags uint8

const (
	checkInMessage  checkFlags = 1 << iota // a fragmented data message is in progress
	checkDeflate                           // permessage-deflate was negotiated
	checkFromServer                        // the frame comes from the server: ours is the client's end
)

// checkFlagsOf returns the flags for a stream in the state given.
func checkFlagsOf(inMessage, deflate, fromServer bool) checkFlags {
	var f checkFlags
	if inMessage {
		f |= checkInMessage
	}
	if deflate {
		f |= checkDeflate
	}
	if fromServer {
		f |= checkFromServer
	}
	return f
}

// checkHeader validates h as a frame received from a client, or from the
// server with checkFromServer, given whether its length was minimally
// encoded (see parseHeader), whether a fragmented data message is in
// progress and whether permessage-deflate was negotiated (RFC 6455
// §5.1–§5.5, RFC 7692 §6). It is a pure function of its inputs. A nil
// result means the frame is acceptable.
func checkHeader(h header, minimal bool, f checkFlags) *protocolError {
	fail := func(reason string) *protocolError {
		return &protocolError{StatusProtocolError, reason}
	}
	switch {
	case !h.masked && f&checkFromServer == 0:
		return fail("unmasked client frame") // §5.1
	case h.masked && f&checkFromServer != 0:
		return fail("masked server frame") // §5.1
	case h.rsv&^rsvDeflate != 0 || h.rsv != 0 && f&checkDeflate == 0:
		return fail("reserved bits set without an extension") // §5.2
	case h.rsv != 0 && h.op.IsControl():
		return fail("RSV1 set on a control frame") // RFC 7692 §6.1
	case h.rsv != 0 && h.op == OpContinuation:
		return fail("RSV1 set on a continuation frame") // RFC 7692 §6.1
	case h.length>>63 != 0:
		return fail("frame length has its top bit set") // §5.2
	case !minimal:
		return fail("frame length not minimally encoded") // §5.2
	}
	switch h.op {
	case OpPing, OpPong, OpClose:
		if !h.fin {
			return fail("fragmented control frame") // §5.5
		}
		if h.length > MaxControlPayload {
			return fail("control frame longer than 125 bytes") // §5.5
		}
		if h.op == OpClose && h.length == 1 {
			return fail("close frame with a 1-byte payload") // §5.5.1
		}
	case OpText, OpBinary:
		if f&checkInMessage != 0 {
			return fail("new data message inside a fragmented message") // §5.4
		}
	case OpContinuation:
		if f&checkInMessage == 0 {
			return fail("continuation frame without a message to continue") // §5.4
		}
	default:
		return fail("reserved opcode") // §5.2
	}
	return nil
}

// parseClosePayload decodes the (unmasked) payload of a close frame from
// the peer (RFC 6455 §5.5.1, §7.4). An empty payload gives StatusNotSent.
// Either end accepts every code valid on the wire: 1010 is a client's
// complaint (§7.4.1), but nothing lets a client fail a server that sends
// it, and peers echo it.
func parseClosePayload(p []byte) (Status, string, *protocolError) {
	switch len(p) {
	case 0:
		return StatusNotSent, "", nil
	case 1:
		return 0, "", &protocolError{StatusProtocolError, "close frame with a 1-byte payload"}
	}
	code := Status(binary.BigEndian.Uint16(p))
	if !code.ValidOnWire() {
		return 0, "", &protocolError{StatusProtocolError, "invalid close code " + strconv.Itoa(int(code))}
	}
	if !utf8.Valid(p[2:]) {
		return 0, "", &protocolError{StatusInvalidData, "close reason is not valid UTF-8"}
	}
	return code, string(p[2:]), nil
}

// AppendClosePayload appends the payload of a close frame: nothing for
// StatusNotSent, else the code and the reason.
func AppendClosePayload(dst []byte, code Status, reason string) []byte {
	if code == StatusNotSent {
		return dst
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(code))
	return append(dst, reason...)
}
