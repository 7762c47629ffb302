package core

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/wsmachine/wsmachine/websocket/internal/wstest"
)

func TestAppendHeaderUsesShortestLength(t *testing.T) {
	tests := []struct {
		length int
		want   []byte
	}{
		{0, []byte{0x82, 0}},
		{125, []byte{0x82, 125}},
		{126, []byte{0x82, 126, 0, 126}},
		{0xFFFF, []byte{0x82, 126, 0xFF, 0xFF}},
		{0x10000, []byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
	}
	for _, tt := range tests {
		got := AppendHeader(nil, true, OpBinary, tt.length)
		if !bytes.Equal(got, tt.want) {
			t.Errorf("length %d: header % x, want % x", tt.length, got, tt.want)
		}
		h, minimal := parseHeader(append(got[:1:1], append([]byte{got[1] | 0x80}, append(got[2:], 1, 2, 3, 4)...)...))
		if !minimal || h.length != uint64(tt.length) || !h.fin || h.op != OpBinary || h.key != [4]byte{1, 2, 3, 4} {
			t.Errorf("length %d: parsed back as %+v minimal=%v", tt.length, h, minimal)
		}
	}
}

// clientHeader builds the header of a masked client frame.
func clientHeader(b0 byte, length uint64, form int) []byte {
	var b []byte
	switch form {
	case 7:
		b = []byte{b0, 0x80 | byte(length)}
	case 16:
		b = binary.BigEndian.AppendUint16([]byte{b0, 0x80 | 126}, uint16(length))
	default:
		b = binary.BigEndian.AppendUint64([]byte{b0, 0x80 | 127}, length)
	}
	return append(b, 9, 8, 7, 6)
}

// Rows: "Frame checks".
func TestCheckHeader(t *testing.T) {
	tests := []struct {
		name      string
		hdr       []byte
		inMessage bool
		wantCode  Status // 0: accepted
		deflate   bool   // permessage-deflate negotiated
	}{
		{"text", clientHeader(0x81, 5, 7), false, 0, false},
		{"binary 126 in 16 bits", clientHeader(0x82, 126, 16), false, 0, false},
		{"binary 65536 in 64 bits", clientHeader(0x82, 65536, 64), false, 0, false},
		{"largest length", clientHeader(0x82, 1<<63-1, 64), false, 0, false},
		{"first fragment", clientHeader(0x01, 5, 7), false, 0, false},
		{"continuation", clientHeader(0x80, 5, 7), true, 0, false},
		{"ping inside message", clientHeader(0x89, 125, 7), true, 0, false},
		{"empty close", clientHeader(0x88, 0, 7), false, 0, false},
		{"unmasked", []byte{0x81, 5}, false, StatusProtocolError, false},
		{"rsv1", clientHeader(0xC1, 5, 7), false, StatusProtocolError, false},
		{"rsv2", clientHeader(0xA1, 5, 7), false, StatusProtocolError, false},
		{"rsv3", clientHeader(0x91, 5, 7), false, StatusProtocolError, false},
		{"opcode 3", clientHeader(0x83, 0, 7), false, StatusProtocolError, false},
		{"opcode 7", clientHeader(0x87, 0, 7), false, StatusProtocolError, false},
		{"opcode 11", clientHeader(0x8B, 0, 7), false, StatusProtocolError, false},
		{"opcode 15", clientHeader(0x8F, 0, 7), false, StatusProtocolError, false},
		{"top length bit", clientHeader(0x82, 1<<63, 64), false, StatusProtocolError, false},
		{"125 in 16 bits", clientHeader(0x82, 125, 16), false, StatusProtocolError, false},
		{"65535 in 64 bits", clientHeader(0x82, 0xFFFF, 64), false, StatusProtocolError, false},
		{"fragmented ping", clientHeader(0x09, 0, 7), false, StatusProtocolError, false},
		{"ping of 126", clientHeader(0x89, 126, 16), false, StatusProtocolError, false},
		{"close of 1 byte", clientHeader(0x88, 1, 7), false, StatusProtocolError, false},
		{"continuation without message", clientHeader(0x80, 5, 7), false, StatusProtocolError, false},
		{"text inside message", clientHeader(0x81, 5, 7), true, StatusProtocolError, false},
		{"rsv1 text, deflate", clientHeader(0xC1, 5, 7), false, 0, true},
		{"rsv1 first fragment, deflate", clientHeader(0x42, 5, 7), false, 0, true},
		{"rsv1 continuation, deflate", clientHeader(0xC0, 5, 7), true, StatusProtocolError, true},
		{"rsv1 ping, deflate", clientHeader(0xC9, 0, 7), false, StatusProtocolError, true},
		{"rsv1 close, deflate", clientHeader(0xC8, 0, 7), false, StatusProtocolError, true},
		{"rsv2, deflate", clientHeader(0xA1, 5, 7), false, StatusProtocolError, true},
		{"rsv1+rsv3, deflate", clientHeader(0xD1, 5, 7), false, StatusProtocolError, true},
		{"plain text, deflate", clientHeader(0x81, 5, 7), false, 0, true},
		{"unmasked rsv1, deflate", []byte{0xC1, 5}, false, StatusProtocolError, true},
		{"binary inside message", clientHeader(0x02, 5, 7), true, StatusProtocolError, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n := HeaderLen(tt.hdr[1]); n != len(tt.hdr) {
				t.Fatalf("HeaderLen %d, want %d", n, len(tt.hdr))
			}
			h, minimal := parseHeader(tt.hdr)
			pe := checkHeader(h, minimal, checkFlagsOf(tt.inMessage, tt.deflate, false))
			switch {
			case tt.wantCode == 0 && pe != nil:
				t.Errorf("refused with %d %q", pe.code, pe.reason)
			case tt.wantCode != 0 && (pe == nil || pe.code != tt.wantCode):
				t.Errorf("got %+v, want code %d", pe, tt.wantCode)
			}
		})
	}
}

// Rows: "Frame checks": close payloads; "Close codes".
func TestParseClosePayload(t *testing.T) {
	code := func(c uint16, reason string) []byte {
		return append(binary.BigEndian.AppendUint16(nil, c), reason...)
	}
	tests := []struct {
		name       string
		payload    []byte
		wantStatus Status
		wantErr    Status // 0: valid
	}{
		{"empty", nil, StatusNotSent, 0},
		{"one byte", []byte{3}, 0, StatusProtocolError},
		{"1000", code(1000, ""), 1000, 0},
		{"1003 with reason", code(1003, "nope"), 1003, 0},
		{"999", code(999, ""), 0, StatusProtocolError},
		{"0", code(0, ""), 0, StatusProtocolError},
		{"1004", code(1004, ""), 0, StatusProtocolError},
		{"1005", code(1005, ""), 0, StatusProtocolError},
		{"1006", code(1006, ""), 0, StatusProtocolError},
		{"1007", code(1007, ""), 1007, 0},
		{"1010", code(1010, ""), 1010, 0},
		{"1011", code(1011, ""), 1011, 0},
		{"1012", code(1012, ""), 1012, 0},
		{"1014", code(1014, ""), 1014, 0},
		{"1015", code(1015, ""), 0, StatusProtocolError},
		{"1016", code(1016, ""), 0, StatusProtocolError},
		{"2999", code(2999, ""), 0, StatusProtocolError},
		{"3000", code(3000, ""), 3000, 0},
		{"4999", code(4999, ""), 4999, 0},
		{"5000", code(5000, ""), 0, StatusProtocolError},
		{"65535", code(65535, ""), 0, StatusProtocolError},
		{"UTF-8 reason", code(1000, "héllo €"), 1000, 0},
		{"invalid UTF-8 reason", code(1000, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"), 0, StatusInvalidData},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, reason, pe := parseClosePayload(tt.payload)
			if tt.wantErr != 0 {
				if pe == nil || pe.code != tt.wantErr {
					t.Fatalf("got %d %q %+v, want error code %d", st, reason, pe, tt.wantErr)
				}
				return
			}
			if pe != nil || st != tt.wantStatus {
				t.Fatalf("got %d %+v, want %d", st, pe, tt.wantStatus)
			}
			if len(tt.payload) > 2 && reason != string(tt.payload[2:]) {
				t.Errorf("reason %q", reason)
			}
		})
	}
}

// Rows: "Close codes".
func TestServerMaySend(t *testing.T) {
	for code := Status(0); code < 6000; code++ {
		want := code >= 1000 && code <= 1003 || code >= 1007 && code <= 1009 ||
			code >= 1011 && code <= 1014 || code >= 3000 && code <= 4999
		if code.ServerMaySend() != want {
			t.Errorf("serverMaySend(%d) = %v", code, !want)
		}
	}
}

// BenchmarkHeader encodes and decodes a frame header of each length form.
func BenchmarkHeader(b *testing.B) {
	for _, n := range []int{16, 1024, 65536} {
		var buf [MaxHeaderLen]byte
		b.Run("encode-"+wstest.SizeName(n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				AppendHeader(buf[:0], true, OpBinary, n)
			}
		})
		wire := append(AppendHeader(nil, true, OpBinary, n), 1, 2, 3, 4)
		wire[1] |= 0x80 // masked, as a client sends it
		b.Run("decode-"+wstest.SizeName(n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				h, minimal := parseHeader(wire)
				if checkHeader(h, minimal, 0) != nil {
					b.Fatal("valid header refused")
				}
			}
		})
	}
}

// At the client's end the rules on masking are the other way round; close
// codes are checked as at a server's: 1010 is a client's code, but a
// client takes it from a server (RFC 6455 §5.1, §7.4.1).
// Rows: "Frame checks" and "Roles": masking at a client.
func TestServerFrameChecks(t *testing.T) {
	unmasked := func(b0, b1 byte) []byte { return []byte{b0, b1} }
	for _, tt := range []struct {
		name     string
		hdr      []byte
		wantCode Status
	}{
		{"unmasked text", unmasked(0x81, 5), 0},
		{"unmasked ping", unmasked(0x89, 0), 0},
		{"masked text", clientHeader(0x81, 5, 7), StatusProtocolError},
		{"masked close", clientHeader(0x88, 2, 7), StatusProtocolError},
		{"rsv1 without deflate", unmasked(0xC1, 5), StatusProtocolError},
	} {
		h, minimal := parseHeader(tt.hdr)
		pe := checkHeader(h, minimal, checkFromServer)
		if tt.wantCode == 0 && pe != nil || tt.wantCode != 0 && (pe == nil || pe.code != tt.wantCode) {
			t.Errorf("%s: got %+v, want code %d", tt.name, pe, tt.wantCode)
		}
	}
	for _, tt := range []struct {
		code uint16
		ok   bool
	}{{1000, true}, {1001, true}, {1009, true}, {1010, true}, {1011, true}, {3000, true}, {1005, false}, {1015, false}, {2999, false}, {5000, false}} {
		_, _, pe := parseClosePayload(binary.BigEndian.AppendUint16(nil, tt.code))
		if (pe == nil) != tt.ok {
			t.Errorf("close %d from the server: error %+v, want accepted %v", tt.code, pe, tt.ok)
		}
	}
}
