package core

import "encoding/binary"

// Mask XORs b with the masking key, starting at position pos of the key
// (RFC 6455 §5.3), and returns the key position after b. Unmasking is the
// same operation.
func Mask(key [4]byte, pos int, b []byte) int {
	// Bytes one by one until the key lines up, then 64 and 8 at a time:
	// the key repeated to a word, XORed a word at a time. The 64-byte
	// loop is unrolled so that the compiler checks the bounds once.
	for len(b) > 0 && pos&3 != 0 {
		b[0] ^= key[pos&3]
		b = b[1:]
		pos++
	}
	k32 := binary.LittleEndian.Uint32(key[:])
	k := uint64(k32) | uint64(k32)<<32
	le := binary.LittleEndian
	for len(b) >= 64 {
		w := b[:64:64]
		le.PutUint64(w[0:], le.Uint64(w[0:])^k)
		le.PutUint64(w[8:], le.Uint64(w[8:])^k)
		le.PutUint64(w[16:], le.Uint64(w[16:])^k)
		le.PutUint64(w[24:], le.Uint64(w[24:])^k)
		le.PutUint64(w[32:], le.Uint64(w[32:])^k)
		le.PutUint64(w[40:], le.Uint64(w[40:])^k)
		le.PutUint64(w[48:], le.Uint64(w[48:])^k)
		le.PutUint64(w[56:], le.Uint64(w[56:])^k)
		b = b[64:]
	}
	for len(b) >= 8 {
		le.PutUint64(b, le.Uint64(b)^k)
		b = b[8:]
	}
	for i := range b {
		b[i] ^= key[(pos+i)&3]
	}
	return (pos + len(b)) & 3
}
