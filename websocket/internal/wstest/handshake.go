package wstest

import (
	"crypto/sha1"
	"encoding/base64"
	"math/rand/v2"
)

// GUID is the string RFC 6455 §1.3 appends to Sec-WebSocket-Key.
const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// AcceptKey is Sec-WebSocket-Accept for key (RFC 6455 §4.2.2).
func AcceptKey(key string) string {
	h := sha1.Sum([]byte(key + GUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// NewKey is a random Sec-WebSocket-Key: 16 bytes in base64.
func NewKey() string {
	var b [16]byte
	for i := range b {
		b[i] = byte(rand.IntN(256))
	}
	return base64.StdEncoding.EncodeToString(b[:])
}
