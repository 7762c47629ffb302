package core

import (
	"bytes"
	"encoding/binary"
	"testing"

	"pgregory.net/rapid"

	"github.com/wsmachine/wsmachine/model"
	"github.com/wsmachine/wsmachine/websocket/internal/wstest"
)

// genLength draws a payload length near every boundary of the three
// length encodings (RFC 6455 §5.2).
func genLength(t *rapid.T) uint64 {
	return rapid.OneOf(
		rapid.Uint64Range(0, 127),
		rapid.Uint64Range(120, 130),
		rapid.Uint64Range(65530, 65540),
		rapid.SampledFrom([]uint64{1 << 16, 1<<32 - 1, 1 << 32, 1<<63 - 1, 1 << 63, 1<<64 - 1}),
		rapid.Uint64(),
	).Draw(t, "length")
}

// TestServerHeaderRoundTrip: every header the server writes decodes to
// what was encoded, and matches the model's encoding byte for byte.
func TestServerHeaderRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		fin := rapid.Bool().Draw(t, "fin")
		op := Opcode(rapid.SampledFrom([]byte{0, 1, 2, 8, 9, 10}).Draw(t, "op"))
		n := int(rapid.OneOf(rapid.IntRange(0, 130), rapid.IntRange(65530, 65540), rapid.IntRange(0, 1<<20)).Draw(t, "n"))
		hdr := AppendHeader(nil, fin, op, n)
		if want := (model.Frame{Fin: fin, Op: byte(op), Payload: make([]byte, n)}).Bytes()[:len(hdr)]; !bytes.Equal(hdr, want) {
			t.Fatalf("header % x, model % x", hdr, want)
		}
		if HeaderLen(hdr[1]) != len(hdr) {
			t.Fatalf("HeaderLen %d for a %d-byte header", HeaderLen(hdr[1]), len(hdr))
		}
		h, minimal := parseHeader(hdr)
		if h.fin != fin || h.op != op || h.length != uint64(n) || h.masked || h.rsv != 0 || !minimal {
			t.Fatalf("decoded %+v minimal=%v from % x", h, minimal, hdr)
		}
	})
}

// TestClientHeaderVerdictAgreesWithModel: for any header bytes, the
// server's parser and checks accept exactly what the model accepts, with
// the same close code and reason.
// Rows: "Frame checks", against the model.
func TestClientHeaderVerdictAgreesWithModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var b []byte
		if rapid.Bool().Draw(t, "structured") {
			b0 := rapid.Byte().Draw(t, "b0")
			form := rapid.IntRange(0, 2).Draw(t, "form")
			masked := rapid.IntRange(0, 5).Draw(t, "masked") > 0
			length := genLength(t)
			var b1 byte
			if masked {
				b1 = 0x80
			}
			switch form {
			case 0:
				b = []byte{b0, b1 | byte(length&0x7F)}
			case 1:
				b = []byte{b0, b1 | 126, byte(length >> 8), byte(length)}
			default:
				b = []byte{b0, b1 | 127}
				for s := 56; s >= 0; s -= 8 {
					b = append(b, byte(length>>s))
				}
			}
			b = append(b, 1, 2, 3, 4)
		} else {
			b = rapid.SliceOfN(rapid.Byte(), 2, MaxHeaderLen).Draw(t, "raw")
		}
		inMessage := rapid.Bool().Draw(t, "inMessage")
		size, length, code, reason, ok := model.CheckClientHeader(b, inMessage)
		headerVerdictAgrees(t, b, inMessage, false, false, size, length, code, reason, ok)
	})
}

// headerVerdictAgrees checks checkHeader's verdict on the header bytes b
// against the model's: whether the header is complete, its size and
// length, and the close code and reason of a refusal.
func headerVerdictAgrees(t *rapid.T, b []byte, inMessage, deflate, fromServer bool,
	size int, length uint64, code uint16, reason string, complete bool) {
	n := HeaderLen(b[1])
	if complete != (n <= len(b)) {
		t.Fatalf("% x: model complete=%v, HeaderLen %d", b, complete, n)
	}
	if !complete {
		return
	}
	h, minimal := parseHeader(b)
	pe := checkHeader(h, minimal, checkFlagsOf(inMessage, deflate, fromServer))
	if n != size || h.length != length {
		t.Fatalf("% x: size %d length %d, model %d %d", b, n, h.length, size, length)
	}
	switch {
	case pe == nil && code != 0:
		t.Fatalf("% x inMessage=%v deflate=%v: accepted, model refuses with %d %q", b, inMessage, deflate, code, reason)
	case pe != nil && (uint16(pe.code) != code || pe.reason != reason):
		t.Fatalf("% x inMessage=%v deflate=%v: refused with %d %q, model %d %q", b, inMessage, deflate, pe.code, pe.reason, code, reason)
	}
}

// TestServerHeaderVerdictAgreesWithModel: for any header bytes, a
// client's checks (checkHeader with fromServer) accept exactly what the
// model's client role accepts, with the same close code and reason, with
// permessage-deflate or without.
// Rows: "Frame checks" at a client, against the model.
func TestServerHeaderVerdictAgreesWithModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		b := rapid.SliceOfN(rapid.Byte(), 2, MaxHeaderLen).Draw(t, "raw")
		inMessage, deflate := rapid.Bool().Draw(t, "inMessage"), rapid.Bool().Draw(t, "deflate")
		size, length, code, reason, ok := model.CheckServerHeader(b, inMessage, deflate)
		headerVerdictAgrees(t, b, inMessage, deflate, true, size, length, code, reason, ok)
	})
}

// TestServerClosePayloadAgreesWithModel: every close code from a server
// is accepted by a client exactly when the model's client role accepts it.
// Rows: "Close codes" at a client, against the model.
func TestServerClosePayloadAgreesWithModel(t *testing.T) {
	for code := 0; code < 1<<16; code++ {
		p := binary.BigEndian.AppendUint16(nil, uint16(code))
		_, _, pe := parseClosePayload(p)
		m := model.NewClient()
		m.Step(model.Input{Kind: model.Handshake})
		m.Step(model.Input{Kind: model.ServerBytes, Data: wstest.ServerFrame(true, 0, byte(OpClose), p)})
		if (pe == nil) != (m.State == model.Closed) {
			t.Errorf("close code %d from the server: parseClosePayload %v, model %s (row %s)", code, pe, m.State, m.Row)
		}
	}
}
