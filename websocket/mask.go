package websocket

import "encoding/binary"

// mask XORs b with the masking key, starting at position pos of the key
// (RFC 6455 §5.3), and returns the key position after b. Unmasking is the
// same operation.
func mask(key [4]byte, pos int, b []byte) int {
	// Bytes one by one until the key lines up, then eight at a time.
	for len(b) > 0 && pos&3 != 0 {
		b[0] ^= key[pos&3]
		b = b[1:]
		pos++
	}
	k32 := binary.LittleEndian.Uint32(key[:])
	k64 := uint64(k32) | uint64(k32)<<32
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k64)
		b = b[8:]
	}
	for i := range b {
		b[i] ^= key[(pos+i)&3]
	}
	return (pos + len(b)) & 3
}
