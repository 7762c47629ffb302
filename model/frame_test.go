package model

import (
	"bytes"
	"testing"
)

// TestFrameBytesLengthForms checks the three length encodings at their
// boundaries (RFC 6455 §5.2).
func TestFrameBytesLengthForms(t *testing.T) {
	tests := []struct {
		n    int
		head []byte
	}{
		{0, []byte{0x82, 0}},
		{125, []byte{0x82, 125}},
		{126, []byte{0x82, 126, 0, 126}},
		{65535, []byte{0x82, 126, 0xFF, 0xFF}},
		{65536, []byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
	}
	for _, tt := range tests {
		b := Frame{Fin: true, Op: OpBinary, Payload: make([]byte, tt.n)}.Bytes()
		if !bytes.Equal(b[:len(tt.head)], tt.head) || len(b) != len(tt.head)+tt.n {
			t.Errorf("%d bytes: header % x, want % x", tt.n, b[:len(tt.head)], tt.head)
		}
	}
}

// TestMinimalLengthEncoding checks which client length encodings are
// refused as not minimal.
func TestMinimalLengthEncoding(t *testing.T) {
	key := []byte{1, 2, 3, 4}
	tests := []struct {
		name string
		hdr  []byte
		bad  bool
	}{
		{"125 in 7 bits", []byte{0x82, 0x80 | 125}, false},
		{"125 in 16 bits", []byte{0x82, 0x80 | 126, 0, 125}, true},
		{"126 in 16 bits", []byte{0x82, 0x80 | 126, 0, 126}, false},
		{"65535 in 64 bits", []byte{0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF}, true},
		{"65536 in 64 bits", []byte{0x82, 0x80 | 127, 0, 0, 0, 0, 0, 1, 0, 0}, false},
	}
	for _, tt := range tests {
		_, _, code, reason, ok := CheckClientHeader(append(tt.hdr, key...), false)
		if !ok || (code != 0) != tt.bad {
			t.Errorf("%s: code %d %q ok=%v, want refused=%v", tt.name, code, reason, ok, tt.bad)
		}
	}
}

// TestClientHeaderBoundaries checks the header rules at their limits.
func TestClientHeaderBoundaries(t *testing.T) {
	key := []byte{1, 2, 3, 4}
	tests := []struct {
		name string
		hdr  []byte
		bad  bool
	}{
		{"ping of 125 bytes", []byte{0x89, 0x80 | 125}, false},
		{"ping of 126 bytes", []byte{0x89, 0x80 | 126, 0, 126}, true},
		{"length 2^63-1", []byte{0x82, 0x80 | 127, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, false},
		{"length 2^63", []byte{0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 0}, true},
	}
	for _, tt := range tests {
		_, _, code, reason, ok := CheckClientHeader(append(tt.hdr, key...), false)
		if !ok || (code != 0) != tt.bad {
			t.Errorf("%s: code %d %q ok=%v, want refused=%v", tt.name, code, reason, ok, tt.bad)
		}
	}
}

func TestValidClientCodeBoundaries(t *testing.T) {
	for code, want := range map[uint16]bool{999: false, 1000: true, 1003: true, 1004: false, 1006: false,
		1007: true, 1014: true, 1015: false, 2999: false, 3000: true, 4999: true, 5000: false} {
		if validClientCode(code) != want {
			t.Errorf("validClientCode(%d) = %v", code, !want)
		}
	}
}
