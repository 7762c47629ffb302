package wstest

import (
	"encoding/binary"
	"math/rand/v2"
)

// Frame is a client frame to encode; zero values give a minimal, masked,
// non-final frame, so most callers set Fin.
type Frame struct {
	Fin     bool
	Rsv     byte // the three RSV bits as a number 0..7 (RSV1 = 4)
	Op      byte
	Payload []byte
	NoMask  bool     // send unmasked (a protocol violation for a client)
	Mask    *[4]byte // masking key; nil picks a random one
	LenForm int      // 0: minimal; 7, 16 or 64: force that length encoding
	// DeclaredLen, if non-nil, is written as payload length instead of
	// len(Payload) (the Payload bytes are still appended as they are).
	DeclaredLen *uint64
}

// Bytes encodes the frame exactly as described.
func (f Frame) Bytes() []byte { return f.AppendTo(nil) }

// AppendTo appends the frame, encoded as Bytes does, to b.
func (f Frame) AppendTo(b []byte) []byte {
	b0 := f.Op & 0x0F
	if f.Fin {
		b0 |= 0x80
	}
	b0 |= (f.Rsv & 7) << 4
	b = append(b, b0)
	var maskBit byte
	if !f.NoMask {
		maskBit = 0x80
	}
	n := uint64(len(f.Payload))
	if f.DeclaredLen != nil {
		n = *f.DeclaredLen
	}
	form := f.LenForm
	if form == 0 {
		switch {
		case n <= 125:
			form = 7
		case n <= 0xFFFF:
			form = 16
		default:
			form = 64
		}
	}
	switch form {
	case 7:
		b = append(b, maskBit|byte(n))
	case 16:
		b = append(b, maskBit|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	case 64:
		b = append(b, maskBit|127)
		b = binary.BigEndian.AppendUint64(b, n)
	default:
		panic("bad LenForm")
	}
	if f.NoMask {
		return append(b, f.Payload...)
	}
	var key [4]byte
	if f.Mask != nil {
		key = *f.Mask
	} else {
		binary.BigEndian.PutUint32(key[:], rand.Uint32())
	}
	b = append(b, key[:]...)
	for i, p := range f.Payload {
		b = append(b, p^key[i%4])
	}
	return b
}

// FrameBytes returns a final, masked frame.
func FrameBytes(op byte, payload []byte) []byte {
	return Frame{Fin: true, Op: op, Payload: payload}.Bytes()
}

// FragBytes returns a masked frame with the given FIN bit.
func FragBytes(fin bool, op byte, payload []byte) []byte {
	return Frame{Fin: fin, Op: op, Payload: payload}.Bytes()
}

// ClientFrame builds a client frame, masked with key, its length in the
// minimal encoding.
func ClientFrame(fin bool, rsv, op byte, payload []byte, key [4]byte) []byte {
	return Frame{Fin: fin, Rsv: rsv, Op: op, Payload: payload, Mask: &key}.Bytes()
}

// ServerFrame builds an unmasked frame, as a server sends it.
func ServerFrame(fin bool, rsv, op byte, payload []byte) []byte {
	return Frame{Fin: fin, Rsv: rsv, Op: op, Payload: payload, NoMask: true}.Bytes()
}

// ClosePayload is the payload of a close frame: code, then reason.
func ClosePayload(code uint16, reason string) []byte {
	p := binary.BigEndian.AppendUint16(nil, code)
	return append(p, reason...)
}

// Concat joins byte slices into a new one.
func Concat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}
