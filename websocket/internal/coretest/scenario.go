package coretest

import (
	"bytes"
	"encoding/binary"
	"strings"

	"github.com/wsmachine/wsmachine/model"
	"github.com/wsmachine/wsmachine/websocket/internal/wstest"
)

// Source is where a scenario's choices come from: rapid's generators,
// or a fuzzer's bytes (fuzz_test.go).
type Source interface {
	Intn(label string, n int) int // in [0, n)
	Bytes(label string, max int) []byte
}

// coreTexts are payloads that exercise the UTF-8 checks: ASCII, valid
// multi-byte characters (split by fragments), and invalid sequences.
var coreTexts = [][]byte{
	[]byte("hello"), []byte("κόσμε"), []byte("\xf0\x9f\x98\x80 ok"), []byte("\xe2\x82"), []byte("\xac"),
	[]byte("\xff"), []byte("\xed\xa0\x80"), []byte("a\xc0\xafb"), nil,
}

// coreLong is the payload of frames too long for a control frame or the
// limit.
var coreLong = bytes.Repeat([]byte{'x'}, MaxMessageSize+1)

// coreCodes are close codes, valid and not, for the peer's close frames
// and Close calls.
var coreCodes = []uint16{1000, 1001, 1002, 1005, 1006, 1010, 1011, 1015, 999, 2999, 3000, 4999, 5000, 1004}

// Kinds is how many kinds of step Inputs draws from.
const Kinds = 24

// Inputs appends to dst one step of a scenario, drawn from s; kind is
// in [0, Kinds). deflate: permessage-deflate was negotiated; client: the
// connection is a client's, its peer a server.
func Inputs(dst []model.Input, s Source, kind int, deflate, client bool) []model.Input {
	switch kind {
	case 0, 1, 2, 3, 4, 5, 6, 7: // frames from the peer
		var stream []byte
		for range 1 + s.Intn("frames", 3) {
			stream = coreFrame(stream, s, deflate, client)
		}
		return coreSplit(dst, s, stream)
	case 8:
		return coreSplit(dst, s, s.Bytes("raw", 40))
	case 9:
		return append(dst, model.Input{Kind: model.ClientEOF})
	case 10:
		return append(dst, model.Input{Kind: model.SendText, Data: coreTexts[s.Intn("text", len(coreTexts))]})
	case 11:
		return append(dst, model.Input{Kind: model.SendBinary, Data: s.Bytes("binary", 20)})
	case 12, 13:
		return append(dst, model.Input{Kind: model.ReceiveMessage})
	case 14:
		return append(dst, model.Input{Kind: model.ReceiveText, N: s.Intn("n", 12)})
	case 15:
		return append(dst, model.Input{Kind: model.ReceiveBinary, N: s.Intn("n", 12)})
	case 16, 17:
		reason := []string{"", "bye", "\xff", strings.Repeat("r", 124)}[s.Intn("reason", 4)]
		return append(dst, model.Input{Kind: model.CloseCall, Code: coreCodes[s.Intn("code", len(coreCodes))], Reason: reason})
	case 18:
		return append(dst, model.Input{Kind: model.CloseTimer})
	case 20:
		return append(dst, model.Input{Kind: model.DropCall})
	case 21:
		return append(dst, model.Input{Kind: model.PingCall})
	case 22:
		return append(dst, model.Input{Kind: model.CancelCall})
	case 23: // the pong to one of the first Pings, as the peer answers it
		key := [4]byte{byte(s.Intn("key", 256)), 0x5a, 0xc3, 0x0f}
		payload := binary.BigEndian.AppendUint64(nil, uint64(1+s.Intn("ping", 3)))
		pong := wstest.Frame{Fin: true, Op: 10, Payload: payload, NoMask: client, Mask: &key}
		return coreSplit(dst, s, pong.AppendTo(nil))
	}
	return append(dst, model.Input{Kind: model.PingTick})
}

// coreFrame appends to dst one frame of the peer (a client's, masked, or,
// for a client, a server's): mostly a valid one (data that starts or
// continues a message, ping, pong, close; with deflate, half the messages
// compressed: stored blocks, cut short or not, or any bytes), one in eight
// broken (reserved bits or opcode, masked the wrong way, a control frame
// fragmented or too long) or too long for the limit.
func coreFrame(dst []byte, s Source, deflate, client bool) []byte {
	op := []byte{0, 0, 1, 2, 8, 9, 10}[s.Intn("op", 7)]
	fin := op >= 8 || s.Intn("fin", 3) != 0
	var payload []byte
	switch {
	case op == 8 && s.Intn("close", 4) != 0:
		code := coreCodes[s.Intn("code", len(coreCodes))]
		payload = wstest.ClosePayload(code, string(coreTexts[s.Intn("reason", len(coreTexts))]))
	case op == 1 || op == 0 && s.Intn("text", 2) == 0:
		payload = coreTexts[s.Intn("text", len(coreTexts))]
	default:
		payload = s.Bytes("payload", 20)
	}
	rsv, key, masked := byte(0), [4]byte{byte(s.Intn("key", 256)), 0x5a, 0xc3, 0x0f}, !client
	if deflate && (op == 1 || op == 2) && s.Intn("compressed", 2) == 1 {
		rsv = 4
		switch s.Intn("deflated", 4) {
		case 0:
			payload = s.Bytes("deflated", 12)
		case 1:
			payload = model.Stored(coreLong[:MaxMessageSize+1], 64)
		default:
			payload = model.Stored(payload, 1+s.Intn("block", 8))
			payload = payload[:len(payload)-min(s.Intn("cut", 3), len(payload))]
		}
	}
	if s.Intn("broken", 8) == 0 {
		switch s.Intn("how", 6) {
		case 0:
			rsv = byte(1 + s.Intn("bits", 7))
		case 1:
			op = []byte{3, 7, 11, 15}[s.Intn("reserved", 4)]
		case 2:
			masked = !masked
		case 3:
			fin = false
		case 4:
			payload = coreLong[:126+s.Intn("length", 8)]
		case 5:
			payload = coreLong[:MaxMessageSize+s.Intn("over", 2)]
		}
	}
	return wstest.Frame{Fin: fin, Rsv: rsv, Op: op, Payload: payload, NoMask: !masked, Mask: &key}.AppendTo(dst)
}

// coreSplit cuts the peer's bytes into at most four pieces that arrive
// one by one. (Choice 0, all a fuzzer's exhausted bytes give, is not to
// cut.)
func coreSplit(out []model.Input, s Source, b []byte) []model.Input {
	for cuts := 0; len(b) > 0; cuts++ {
		n := len(b)
		if cuts < 3 && s.Intn("split", 3) == 1 {
			n = 1 + s.Intn("at", len(b))
		}
		out = append(out, model.Input{Kind: model.ClientBytes, Data: b[:n]})
		b = b[n:]
	}
	return out
}
