package model

import "unicode/utf8"

// Opcodes (RFC 6455 §5.2).
const (
	OpContinuation byte = 0x0
	OpText         byte = 0x1
	OpBinary       byte = 0x2
	OpClose        byte = 0x8
	OpPing         byte = 0x9
	OpPong         byte = 0xA
)

// Frame is a frame the connection writes, RSV bits clear: a server's
// unmasked, a client's (Masked) masked with a fresh key per frame, which
// the model does not predict: Bytes gives the frame unmasked, MaskedBytes
// with a given key.
//
// Or, if Compressed, a whole compressed message (permessage-deflate):
// Payload is the message before compression, and the frames that carry it
// are RSV1 and Op on the first, continuations after it, FIN on the last,
// each with at most WriteBufferSize bytes of compressed payload. Which
// bytes the compressor produces is not the model's to predict. A
// Compressed frame without Fin is a compressed message given up (O14):
// any number of its frames, none with FIN, may have left, as the
// compressor filled them.
type Frame struct {
	Fin        bool
	Op         byte
	Payload    []byte
	Compressed bool
	Masked     bool
}

// Bytes encodes the frame as it appears on the wire, with the shortest
// length encoding. A Compressed frame has no predictable encoding.
func (f Frame) Bytes() []byte {
	if f.Compressed {
		panic("model: the bytes of a compressed message are not predictable")
	}
	first := f.Op
	if f.Fin {
		first |= 0x80
	}
	n := len(f.Payload)
	out := []byte{first}
	if n < 126 {
		out = append(out, byte(n))
	} else if n < 65536 {
		out = append(out, 126, byte(n>>8), byte(n))
	} else {
		out = append(out, 127)
		for shift := 56; shift >= 0; shift -= 8 {
			out = append(out, byte(uint64(n)>>shift))
		}
	}
	return append(out, f.Payload...)
}

// MaskedBytes encodes the frame as a client writes it, masked with key
// (RFC 6455 §5.3): Bytes with the mask bit set, the key after the length,
// and the payload masked.
func (f Frame) MaskedBytes(key [4]byte) []byte {
	plain := f.Bytes()
	hdr := len(plain) - len(f.Payload)
	out := append(append(append([]byte{}, plain[:hdr]...), key[:]...), f.Payload...)
	out[1] |= 0x80
	for i := range f.Payload {
		out[hdr+4+i] ^= key[i%4]
	}
	return out
}

// clientHeader is a decoded frame header from the peer (the client, or
// for a client Conn the server).
type clientHeader struct {
	fin     bool
	rsv     byte
	op      byte
	masked  bool
	length  uint64
	key     [4]byte
	minimal bool // the length used its shortest encoding
	size    int  // bytes the header occupies
}

// readHeader decodes the header at the start of b; ok is false while b
// does not hold all of it yet.
func readHeader(b []byte) (h clientHeader, ok bool) {
	if len(b) < 2 {
		return h, false
	}
	h.fin = b[0]>>7 == 1
	h.rsv = b[0] >> 4 & 7
	h.op = b[0] & 15
	h.masked = b[1]>>7 == 1
	lengthBytes := 0
	switch b[1] & 127 {
	case 126:
		lengthBytes = 2
	case 127:
		lengthBytes = 8
	}
	h.size = 2 + lengthBytes
	if h.masked {
		h.size += 4
	}
	if len(b) < h.size {
		return h, false
	}
	if lengthBytes == 0 {
		h.length = uint64(b[1] & 127)
	}
	for i := 0; i < lengthBytes; i++ {
		h.length = h.length<<8 | uint64(b[2+i])
	}
	h.minimal = lengthBytes == 0 || lengthBytes == 2 && h.length > 125 || lengthBytes == 8 && h.length > 65535
	if h.masked {
		copy(h.key[:], b[2+lengthBytes:])
	}
	return h, true
}

func isControl(op byte) bool { return op == OpClose || op == OpPing || op == OpPong }

// rsv1 is RSV1 in clientHeader.rsv: with permessage-deflate, the first
// frame of a compressed message (RFC 7692 §6).
const rsv1 = 4

// violation returns the close code and reason for a header that breaks
// RFC 6455 (or RFC 7692 if deflate was negotiated), in the order of
// STATE_MACHINE.md's frame checks, or code 0; fromServer: the frame came
// from the server to a client Conn.
func violation(h clientHeader, inMessage, deflate, fromServer bool) (uint16, string) {
	rules := []struct {
		broken bool
		reason string
	}{
		{!h.masked && !fromServer, "unmasked client frame"},
		{h.masked && fromServer, "masked server frame"},
		{h.rsv != 0 && (!deflate || h.rsv != rsv1), "reserved bits set without an extension"},
		{h.rsv == rsv1 && h.op >= 8, "RSV1 set on a control frame"}, // reserved control opcodes too (RFC 6455 §5.5)
		{h.rsv == rsv1 && h.op == OpContinuation, "RSV1 set on a continuation frame"},
		{h.length >= 1<<63, "frame length has its top bit set"},
		{!h.minimal, "frame length not minimally encoded"},
		{isControl(h.op) && !h.fin, "fragmented control frame"},
		{isControl(h.op) && h.length > 125, "control frame longer than 125 bytes"},
		{h.op == OpClose && h.length == 1, "close frame with a 1-byte payload"},
		{(h.op == OpText || h.op == OpBinary) && inMessage, "new data message inside a fragmented message"},
		{h.op == OpContinuation && !inMessage, "continuation frame without a message to continue"},
		{!isControl(h.op) && h.op > OpBinary, "reserved opcode"},
	}
	for _, r := range rules {
		if r.broken {
			return 1002, r.reason
		}
	}
	return 0, ""
}

// unmask returns a copy of payload with the masking key removed; offset is
// the payload's position in its frame.
func unmask(payload []byte, key [4]byte, offset int) []byte {
	out := make([]byte, len(payload))
	for i, b := range payload {
		out[i] = b ^ key[(offset+i)%4]
	}
	return out
}

// validClientCode reports whether a client may put code in a close frame.
func validClientCode(code uint16) bool {
	return code >= 1000 && code <= 1003 || code >= 1007 && code <= 1014 || code >= 3000 && code <= 4999
}

// validFromServer reports whether a server may put code in a close frame:
// 1010 is a client's complaint (RFC 6455 §7.4.1).
func validFromServer(code uint16) bool { return code != 1010 && validClientCode(code) }

// validServerCode reports whether a server's Close accepts code (1005 is
// an empty close frame).
func validServerCode(code uint16) bool { return code == 1005 || validFromServer(code) }

// textSoFar reports whether b is valid UTF-8, or valid UTF-8 followed by
// the start of a character that more bytes can still complete.
func textSoFar(b []byte) bool {
	if utf8.Valid(b) {
		return true
	}
	for k := 1; k <= 3 && k <= len(b); k++ {
		if utf8.Valid(b[:len(b)-k]) && completable(b[len(b)-k:]) {
			return true
		}
	}
	return false
}

// completable reports whether some continuation bytes turn the start of a
// character into a whole valid one. Only the second byte of a character
// has a range that depends on the first, so it is tried in full.
func completable(start []byte) bool {
	for second := 0x80; second <= 0xBF; second++ {
		try := append([]byte{}, start...)
		if len(try) == 1 {
			try = append(try, byte(second))
		}
		for len(try) < 4 {
			if r, size := utf8.DecodeRune(try); r != utf8.RuneError && size == len(try) {
				return true
			}
			try = append(try, 0x80)
		}
		if r, size := utf8.DecodeRune(try); r != utf8.RuneError && size == 4 {
			return true
		}
	}
	return false
}

// CheckClientHeader decodes the frame header at the start of b as the
// server's reader does and judges it: ok is false while b does not hold
// the whole header; code is 0 for an acceptable header, else the close code
// and reason of the protocol error. For comparing codecs in tests.
func CheckClientHeader(b []byte, inMessage bool) (size int, length uint64, code uint16, reason string, ok bool) {
	return CheckClientHeaderDeflate(b, inMessage, false)
}

// CheckClientHeaderDeflate is CheckClientHeader on a connection that
// negotiated permessage-deflate if deflate.
func CheckClientHeaderDeflate(b []byte, inMessage, deflate bool) (size int, length uint64, code uint16, reason string, ok bool) {
	return checkHeader(b, inMessage, deflate, false)
}

// CheckServerHeader is CheckClientHeaderDeflate for a frame from the
// server, as a client Conn's reader judges it.
func CheckServerHeader(b []byte, inMessage, deflate bool) (size int, length uint64, code uint16, reason string, ok bool) {
	return checkHeader(b, inMessage, deflate, true)
}

func checkHeader(b []byte, inMessage, deflate, fromServer bool) (size int, length uint64, code uint16, reason string, ok bool) {
	h, ok := readHeader(b)
	if !ok {
		return 0, 0, 0, "", false
	}
	code, reason = violation(h, inMessage, deflate, fromServer)
	return h.size, h.length, code, reason, true
}
