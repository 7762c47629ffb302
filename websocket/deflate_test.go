package websocket_test

// permessage-deflate (RFC 7692) end to end: a raw client that compresses
// and inflates with the standard library's compress/flate (the library
// uses klauspost/compress, so the two sides are independent), against a
// server with Compression set.

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/wsmachine/wsmachine/websocket"

	"github.com/wsmachine/wsmachine/websocket/internal/wstest"
)

var deflateTail = []byte{0x00, 0x00, 0xff, 0xff}

// peerDeflate is a client's side of permessage-deflate. With takeover in
// a direction, that direction's earlier messages are the dictionary.
type peerDeflate struct {
	sendTakeover, recvTakeover bool
	sent, received             []byte
	sendWindow                 int // how much of sent is the dictionary; 0: 32 KiB
}

// lastWindow is the last 32 KiB of h: the LZ77 window.
func lastWindow(h []byte) []byte { return h[max(len(h)-32<<10, 0):] }

// compress returns msg's compressed payload as sent: a sync flush
// without its tail.
func (d *peerDeflate) compress(msg []byte) []byte {
	var buf bytes.Buffer
	var dict []byte
	if d.sendTakeover {
		dict = lastWindow(d.sent)
		if d.sendWindow > 0 {
			dict = d.sent[max(len(d.sent)-d.sendWindow, 0):]
		}
		d.sent = append(d.sent, msg...)
	}
	// Level 6: compress/flate's fastest level ignores a dictionary.
	fw, _ := flate.NewWriterDict(&buf, flate.DefaultCompression, dict)
	fw.Write(msg)
	fw.Flush()
	if !bytes.HasSuffix(buf.Bytes(), deflateTail) {
		panic("sync flush without its tail")
	}
	return buf.Bytes()[:buf.Len()-len(deflateTail)]
}

// inflate returns the message a compressed payload carries.
func (d *peerDeflate) inflate(wire []byte) ([]byte, error) {
	var dict []byte
	if d.recvTakeover {
		dict = lastWindow(d.received)
	}
	fr := flate.NewReaderDict(io.MultiReader(bytes.NewReader(wire), bytes.NewReader(deflateTail)), dict)
	msg, err := io.ReadAll(fr)
	if err == io.ErrUnexpectedEOF { // the stream ends at the flush
		err = nil
	}
	if err == nil && d.recvTakeover {
		d.received = append(d.received, msg...)
	}
	return msg, err
}

const offerDeflate = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"

// dialDeflate opens a connection offering permessage-deflate and checks
// the answer.
func dialDeflate(t *testing.T, ts *testServer, offer, wantAnswer string) *rawClient {
	t.Helper()
	c := dialWS(t, ts, offer)
	if got := c.Resp.Header.Values("Sec-WebSocket-Extensions"); len(got) != 1 || got[0] != wantAnswer {
		t.Fatalf("Sec-WebSocket-Extensions %q, want %q", got, wantAnswer)
	}
	c.deflate = &peerDeflate{
		sendTakeover: !strings.Contains(wantAnswer, "client_no_context_takeover"),
		recvTakeover: !strings.Contains(wantAnswer, "server_no_context_takeover"),
	}
	return c
}

// sendCompressed sends msg compressed, in as many frames as parts asks
// (at most); RSV1 on the first only. It returns the compressed size.
func (c *rawClient) sendCompressed(op byte, msg []byte, parts int) int {
	payload := c.deflate.compress(msg)
	wire := len(payload)
	split := len(payload)/parts + 1
	first := true
	for {
		part := payload
		if split > 0 && len(part) > split {
			part = part[:split]
		}
		payload = payload[len(part):]
		f := wstest.Frame{Fin: len(payload) == 0, Op: opCont, Payload: part}
		if first {
			f.Op, f.Rsv = op, 4
		}
		c.Write(f.Bytes())
		first = false
		if len(payload) == 0 {
			return wire
		}
	}
}

// readCompressed reads a data message, reporting whether it came
// compressed and its size on the wire.
func (c *rawClient) readCompressed() (op byte, msg []byte, compressed bool, wire int) {
	c.t.Helper()
	for {
		f := c.ReadFrame()
		if f.Op != opCont {
			op, compressed = f.Op, f.Rsv1
		}
		msg = append(msg, f.Payload...)
		wire += len(f.Payload)
		if f.Fin {
			break
		}
	}
	if compressed {
		var err error
		if msg, err = c.deflate.inflate(msg); err != nil {
			c.t.Fatalf("server message does not inflate: %v", err)
		}
	}
	return op, msg, compressed, wire
}

// jsonLike is n bytes of chat-like JSON, different each call.
func jsonLike(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	words := []string{"hello", "world", "message", "room", "user", "typing", "online", "the", "a", "quick"}
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, `{"type":"message","id":%d,"user":"user%d","room":"lobby","text":"%s %s %s"}`,
			i, r.IntN(50), words[r.IntN(len(words))], words[r.IntN(len(words))], words[r.IntN(len(words))])
	}
	return b.Bytes()[:n]
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// Rows: C1; "Compressed messages": negotiation.
func TestDeflateNegotiation(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		mode   websocket.CompressionMode
		offers []string
		want   string // "": declined
	}{
		{"off", websocket.CompressionOff, []string{offerDeflate}, ""},
		{"no context takeover", websocket.CompressionNoContextTakeover, []string{offerDeflate},
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
		{"context takeover", websocket.CompressionContextTakeover, []string{offerDeflate}, "permessage-deflate"},
		{"client asks for no context takeover", websocket.CompressionContextTakeover,
			[]string{"Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover"}, "permessage-deflate; client_no_context_takeover"},
		{"first acceptable offer", websocket.CompressionContextTakeover,
			[]string{"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=7, permessage-deflate; server_max_window_bits=15"},
			"permessage-deflate; server_max_window_bits=15"},
		{"server window limited, as offered", websocket.CompressionContextTakeover,
			[]string{"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=9, permessage-deflate; server_max_window_bits=15"},
			"permessage-deflate; server_max_window_bits=9"},
		{"client window declared, answered", websocket.CompressionContextTakeover,
			[]string{"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=10"},
			"permessage-deflate; client_max_window_bits=10"},
		{"malformed offer declined, not a 500", websocket.CompressionContextTakeover,
			[]string{"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=99"}, ""},
		{"duplicate parameter declined", websocket.CompressionContextTakeover,
			[]string{"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; server_no_context_takeover"}, ""},
		{"unknown extension ignored", websocket.CompressionContextTakeover,
			[]string{"Sec-WebSocket-Extensions: x-unknown; a=1", "Sec-WebSocket-Extensions: permessage-deflate"}, "permessage-deflate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, _ := echoHandler()
			ts := startServer(t, &websocket.Handler{Compression: tt.mode, Handle: h})
			c := dialWS(t, ts, tt.offers...)
			defer c.Close()
			got := c.Resp.Header.Values("Sec-WebSocket-Extensions")
			if tt.want == "" && len(got) != 0 || tt.want != "" && (len(got) != 1 || got[0] != tt.want) {
				t.Fatalf("Sec-WebSocket-Extensions %q, want %q", got, tt.want)
			}
			c.SendText("still a working connection")
			c.ExpectText("still a working connection")
		})
	}
}

// deflateModes are the server's compression modes with the answer each
// gives to offerDeflate.
var deflateModes = []struct {
	name   string
	mode   websocket.CompressionMode
	answer string
}{
	{"no context takeover", websocket.CompressionNoContextTakeover, "permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
	{"context takeover", websocket.CompressionContextTakeover, "permessage-deflate"},
}

// Messages at or above the threshold travel compressed both ways, below
// it plain; both directions keep their history with context takeover.
// Rows: O1, O3; "Compressed messages".
func TestDeflateEcho(t *testing.T) {
	t.Parallel()
	for _, mode := range deflateModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			h, _ := echoHandler()
			ts := startServer(t, &websocket.Handler{Compression: mode.mode, CompressionThreshold: 100, Handle: h})
			c := dialDeflate(t, ts, offerDeflate, mode.answer)
			defer c.Close()
			for i, tt := range []struct {
				name     string
				op       byte
				msg      []byte
				send     string // "compressed", "plain", or "fragments" (compressed, in 3 frames)
				wantComp bool   // the echo comes compressed
			}{
				{"short text", opText, []byte("hi"), "compressed", false},
				{"short text, plain", opText, []byte("hello"), "plain", false},
				{"empty binary", opBinary, nil, "compressed", false},
				{"1 KiB JSON", opText, jsonLike(1<<10, 1), "compressed", true},
				{"1 KiB JSON, plain", opText, jsonLike(1<<10, 2), "plain", true},
				{"200 KiB JSON in fragments", opText, jsonLike(200<<10, 3), "fragments", true},
				{"100 KiB random", opBinary, randomBytes(100<<10, 4), "compressed", true},
				{"1 MiB JSON", opText, jsonLike(1<<20, 5), "compressed", true},
				{"κόσμε repeated", opText, bytes.Repeat([]byte("κόσμε "), 1000), "fragments", true},
			} {
				switch tt.send {
				case "plain":
					c.Write(wstest.FrameBytes(tt.op, tt.msg))
				case "fragments":
					c.sendCompressed(tt.op, tt.msg, 3)
				default:
					c.sendCompressed(tt.op, tt.msg, 1)
				}
				op, got, compressed, wire := c.readCompressed()
				if op != tt.op || !bytes.Equal(got, tt.msg) {
					t.Fatalf("%d %s: echo op=%#x %d bytes %q, want op=%#x %d bytes", i, tt.name, op, len(got), trunc(got), tt.op, len(tt.msg))
				}
				if compressed != tt.wantComp {
					t.Errorf("%s: echo compressed=%v, want %v", tt.name, compressed, tt.wantComp)
				}
				if tt.name == "1 MiB JSON" && wire > len(tt.msg)/3 {
					t.Errorf("%s: %d bytes on the wire", tt.name, wire)
				}
			}
		})
	}
}

// With context takeover, a message like the one before costs a fraction
// of the first on the wire, in both directions; without, the same.
// Rows: O1, O3; "Compressed messages": context takeover.
func TestDeflateContextTakeoverUsesHistory(t *testing.T) {
	t.Parallel()
	msg := jsonLike(2<<10, 7)
	for _, tt := range []struct {
		mode     websocket.CompressionMode
		answer   string
		takeover bool
	}{
		{websocket.CompressionNoContextTakeover, "permessage-deflate; server_no_context_takeover; client_no_context_takeover", false},
		{websocket.CompressionContextTakeover, "permessage-deflate", true},
	} {
		h, _ := echoHandler()
		ts := startServer(t, &websocket.Handler{Compression: tt.mode, Handle: h})
		c := dialDeflate(t, ts, offerDeflate, tt.answer)
		var sent, echoed [2]int
		for i := range 2 {
			sent[i] = c.sendCompressed(opText, msg, 1)
			_, got, _, wire := c.readCompressed()
			if !bytes.Equal(got, msg) {
				t.Fatalf("mode %d: echo %d differs", tt.mode, i)
			}
			echoed[i] = wire
		}
		c.Close()
		t.Logf("mode %d: 2 KiB JSON twice: client sent %v, server sent %v bytes", tt.mode, sent, echoed)
		if shrank := echoed[1] < echoed[0]/4; shrank != tt.takeover {
			t.Errorf("mode %d: the server sent %d then %d bytes; history used: %v, want %v", tt.mode, echoed[0], echoed[1], shrank, tt.takeover)
		}
	}
}

// SendText and SendBinary compress from the threshold on; a message
// writer decides at Close, or once its buffer is full.
// Rows: O3; "Compressed messages": the threshold.
func TestDeflateThreshold(t *testing.T) {
	t.Parallel()
	const threshold = 300
	big := jsonLike(200<<10, 9)
	ts := startServer(t, &websocket.Handler{Compression: websocket.CompressionNoContextTakeover, CompressionThreshold: threshold,
		Handle: func(c *websocket.Conn) {
			c.SendText(string(big[:threshold-1]))
			c.SendBinary(big[:threshold])
			w, _ := c.SendMessage(websocket.Text)
			w.Write(big[:100])
			w.Write(big[100 : threshold-1])
			w.Close()
			w, _ = c.SendMessage(websocket.Text)
			w.Write(big[:threshold])
			w.Close()
			w, _ = c.SendMessage(websocket.Binary)
			for p := big; len(p) > 0; p = p[min(len(p), 1000):] {
				w.Write(p[:min(len(p), 1000)])
			}
			w.Close()
			w, _ = c.SendMessage(websocket.Binary)
			io.Copy(w, bytes.NewReader(big))
			w.Close()
			c.Close(websocket.StatusOK, "")
		}})
	c := dialDeflate(t, ts, offerDeflate, "permessage-deflate; server_no_context_takeover; client_no_context_takeover")
	defer c.Close()
	for _, want := range []struct {
		size       int
		compressed bool
	}{{threshold - 1, false}, {threshold, true}, {threshold - 1, false}, {threshold, true}, {len(big), true}, {len(big), true}} {
		_, got, compressed, wire := c.readCompressed()
		if !bytes.Equal(got, big[:want.size]) || compressed != want.compressed {
			t.Errorf("got %d bytes (wire %d), compressed %v; want %d bytes, compressed %v", len(got), wire, compressed, want.size, want.compressed)
		}
	}
	c.ExpectCloseFrame(1000)
}

// deflated is payload compressed for sending with no context.
func deflated(msg []byte) []byte { return (&peerDeflate{}).compress(msg) }

// A frame that breaks permessage-deflate's rules fails the connection
// with the right code.
// Rows: O7; "Frame checks": RSV1 and compressed data.
func TestDeflateViolations(t *testing.T) {
	t.Parallel()
	const limit = 64 << 10
	bomb := deflated(make([]byte, 1<<20)) // 1 MiB of zeros
	corrupt := []byte{0xff, 0xff, 0xff, 0xff, 0xff}
	frames := func(fs ...wstest.Frame) []byte {
		var b []byte
		for _, f := range fs {
			b = append(b, f.Bytes()...)
		}
		return b
	}
	for _, tt := range []struct {
		name string
		wire []byte
		code uint16
	}{
		{"RSV1 on a continuation", frames(wstest.Frame{Op: opText, Rsv: 4, Payload: deflated([]byte("ab"))}, wstest.Frame{Fin: true, Op: opCont, Rsv: 4}), 1002},
		{"RSV1 on a ping", frames(wstest.Frame{Fin: true, Op: opPing, Rsv: 4}), 1002},
		{"RSV1 on a close", frames(wstest.Frame{Fin: true, Op: opClose, Rsv: 4}), 1002},
		{"RSV2 on text", frames(wstest.Frame{Fin: true, Op: opText, Rsv: 2, Payload: []byte("x")}), 1002},
		{"RSV1 and RSV3", frames(wstest.Frame{Fin: true, Op: opText, Rsv: 5, Payload: deflated([]byte("x"))}), 1002},
		{"corrupt compressed data", frames(wstest.Frame{Fin: true, Op: opBinary, Rsv: 4, Payload: corrupt}), 1007},
		{"invalid UTF-8 once inflated", frames(wstest.Frame{Fin: true, Op: opText, Rsv: 4, Payload: deflated([]byte("ab\xffcd"))}), 1007},
		{"text ends inside a character", frames(wstest.Frame{Fin: true, Op: opText, Rsv: 4, Payload: deflated([]byte("ab\xce"))}), 1007},
		{"1 KiB inflating past the limit", frames(wstest.Frame{Fin: true, Op: opBinary, Rsv: 4, Payload: bomb}), 1009},
		{"compressed data cut inside a block", frames(wstest.Frame{Fin: true, Op: opBinary, Rsv: 4, Payload: deflated(jsonLike(4<<10, 8))[:300]}), 1007},
		// The tail the receiver adds completes the block ("Hellh"),
		// but a final block that ends in the tail was cut.
		{"compressed data cut inside a final block", frames(wstest.Frame{Fin: true, Op: opText, Rsv: 4, Payload: helloFinalBlock[:5]}), 1007},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, _ := echoHandler()
			ts := startServer(t, &websocket.Handler{Compression: websocket.CompressionContextTakeover, MaxMessageSize: limit, Handle: h})
			c := dialDeflate(t, ts, offerDeflate, "permessage-deflate")
			defer c.Close()
			c.Write(tt.wire)
			c.ExpectClose(tt.code)
		})
	}
	if len(bomb) > 1100 {
		t.Errorf("the bomb is %d bytes, not about 1 KiB", len(bomb))
	}
}

// A compressed message with no payload at all is an empty message, as
// some clients send it (RFC 7692 §7.2.3.6 sends one 0x00 byte).
// Rows: O1; "Compressed messages": a message with no payload.
func TestDeflateEmptyPayload(t *testing.T) {
	t.Parallel()
	h, _ := echoHandler()
	ts := startServer(t, &websocket.Handler{Compression: websocket.CompressionContextTakeover, Handle: h})
	c := dialDeflate(t, ts, offerDeflate, "permessage-deflate")
	defer c.Close()
	for _, payload := range [][]byte{nil, {0x00}, {0x02, 0x00}} {
		c.Write(wstest.Frame{Fin: true, Op: opText, Rsv: 4, Payload: payload}.Bytes())
		if op, msg, _, _ := c.readCompressed(); op != opText || len(msg) != 0 {
			t.Errorf("payload % x: echo op=%#x %q, want an empty text", payload, op, msg)
		}
	}
}

// finalBlock is msg compressed as a complete DEFLATE stream: its last
// block is final.
func finalBlock(msg []byte) []byte {
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, flate.BestSpeed)
	fw.Write(msg)
	fw.Close()
	return buf.Bytes()
}

// A compressed message of a megabyte that inflates to 1 GiB is refused
// with 1009 at the 16 MiB default limit; the server inflates no more than
// that and allocates a small fraction of it. (A 1 KiB message cannot
// inflate to 1 GiB: DEFLATE expands at most about 1032 to 1; the 1 KiB
// bomb is in TestDeflateViolations.)
// Rows: O7; "Frame checks": too large once inflated.
func TestDeflateBombRefused(t *testing.T) {
	// Sync-flushed pieces of DEFLATE end on a byte boundary, so 1024
	// copies of a flushed MiB of zeros are a valid stream of 1 GiB.
	mib := append(deflated(make([]byte, 1<<20)), deflateTail...)
	bomb := bytes.Repeat(mib, 1024)
	bomb = bomb[:len(bomb)-len(deflateTail)]
	wire := wstest.Frame{Fin: true, Op: opBinary, Rsv: 4, Payload: bomb}.Bytes()
	t.Logf("%d bytes on the wire inflate to 1 GiB", len(bomb))

	got := make(chan error, 1)
	var inflated int64
	ts := startServer(t, &websocket.Handler{Compression: websocket.CompressionNoContextTakeover, Handle: func(c *websocket.Conn) {
		_, r, err := c.ReceiveMessage()
		if err == nil {
			inflated, err = io.Copy(io.Discard, r)
		}
		got <- err
	}})
	c := dialDeflate(t, ts, offerDeflate, "permessage-deflate; server_no_context_takeover; client_no_context_takeover")
	defer c.Close()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	c.Write(wire)
	err := recv(t, got, "the receive to fail")
	runtime.ReadMemStats(&after)
	if !errors.Is(err, websocket.ErrConnClosed) {
		t.Errorf("receive returned %v, want an error wrapping ErrConnClosed", err)
	}
	if inflated > 16<<20 {
		t.Errorf("the application got %d bytes, past the limit", inflated)
	}
	c.ExpectClose(1009)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("refusing it allocated %d bytes in the process (client and server)", alloc)
	if alloc > 8<<20 {
		t.Errorf("refusing the bomb allocated %d bytes", alloc)
	}
}
