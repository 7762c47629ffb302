package websocket_test

// Receiving compressed messages, at both ends: the limit is what a message
// inflates to, whatever its length on the wire; a message may end with a
// final DEFLATE block of its own (RFC 7692 §7.2.3.4).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/wsmachine/wsmachine/model"
	"github.com/wsmachine/wsmachine/websocket"

	"github.com/wsmachine/wsmachine/websocket/internal/wstest"
)

// compressedFrames cuts a compressed payload into parts frames (RSV1 on
// the first), masked if masked.
func compressedFrames(op byte, payload []byte, parts int, masked bool) []byte {
	var b []byte
	size := len(payload)/parts + 1
	for i := 0; ; i++ {
		part := payload[:min(size, len(payload))]
		payload = payload[len(part):]
		f := wstest.Frame{Fin: len(payload) == 0, Op: opCont, Payload: part, NoMask: !masked}
		if i == 0 {
			f.Op, f.Rsv = op, 4
		}
		b = append(b, f.Bytes()...)
		if len(payload) == 0 {
			return b
		}
	}
}

// The payload of `Hello` as RFC 7692 §7.2.3.4 compresses it: one final
// fixed-Huffman block, then the first byte (BFINAL 0, BTYPE 00) of the
// empty stored block that the receiver's tail completes.
var helloFinalBlock = []byte{0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00}

// deflateLimitCases are compressed messages at a MaxMessageSize of
// limitTestSize: incompressible data in stored blocks of 128 bytes (4 %
// longer on the wire, as zlib's output for random data is longer than
// its input with a small memLevel), the same in a real encoder's 64 KiB
// stored blocks, and compressible data, each at the limit (delivered)
// and one byte over it (1009).
const limitTestSize = 64 << 10

func deflateLimitCases() []struct {
	name    string
	msg     []byte
	payload []byte
} {
	var cases []struct {
		name    string
		msg     []byte
		payload []byte
	}
	for _, size := range []int{limitTestSize, limitTestSize + 1} {
		random, json := randomBytes(size, uint64(size)), jsonLike(size, uint64(size))
		for _, c := range []struct {
			name    string
			msg     []byte
			payload []byte
		}{
			{"random in 128-byte stored blocks", random, model.Stored(random, 128)},
			{"random, compressed", random, deflated(random)},
			{"JSON, compressed", json, deflated(json)},
		} {
			c.name = fmt.Sprintf("%s, %d bytes", c.name, size)
			cases = append(cases, c)
		}
	}
	return cases
}

// A compressed message is delivered if it inflates to at most
// MaxMessageSize bytes, however long its frames are, and refused with
// 1009 if it inflates to one byte more; in one frame or in seven. The
// server's side.
// Rows: O1, O7.
func TestDeflateLimitIsInflatedSize(t *testing.T) {
	t.Parallel()
	for _, tt := range deflateLimitCases() {
		for _, parts := range []int{1, 7} {
			t.Run(fmt.Sprintf("%s in %d frames", tt.name, parts), func(t *testing.T) {
				t.Parallel()
				if len(tt.msg) == limitTestSize && parts == 1 && len(tt.payload) > limitTestSize+limitTestSize/1024+1024 {
					t.Logf("%d bytes on the wire: past the bound compressed frames once had", len(tt.payload))
				}
				h, _ := echoHandler()
				ts := startServer(t, &websocket.Handler{Compression: websocket.CompressionNoContextTakeover, MaxMessageSize: limitTestSize, Handle: h})
				c := dialDeflate(t, ts, offerDeflate, "permessage-deflate; server_no_context_takeover; client_no_context_takeover")
				defer c.Close()
				c.Write(compressedFrames(opBinary, tt.payload, parts, true))
				if len(tt.msg) > limitTestSize {
					c.ExpectClose(1009)
					return
				}
				if op, got, _, _ := c.readCompressed(); op != opBinary || !bytes.Equal(got, tt.msg) {
					t.Fatalf("echo op=%#x, %d bytes; want the %d bytes sent", op, len(got), len(tt.msg))
				}
				c.SendText("still open")
				c.ExpectText("still open")
			})
		}
	}
}

// The same at the client's end: Dial with MaxMessageSize receives what
// inflates to at most the limit and fails with 1009 past it.
// Rows: O1, O7.
func TestDialDeflateLimitIsInflatedSize(t *testing.T) {
	t.Parallel()
	for _, tt := range deflateLimitCases() {
		for _, parts := range []int{1, 7} {
			t.Run(fmt.Sprintf("%s in %d frames", tt.name, parts), func(t *testing.T) {
				t.Parallel()
				answer := make(chan []byte, 1)
				url := rawServerExtensions(t, "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
					func(nc net.Conn, br *bufio.Reader) {
						nc.Write(compressedFrames(opBinary, tt.payload, parts, false))
						_, p, _, _ := readClientFrame(br) // the client's close frame
						answer <- p
					})
				c := dial(t, url, &websocket.DialOptions{Compression: websocket.CompressionNoContextTakeover, MaxMessageSize: limitTestSize})
				_, r, err := c.ReceiveMessage()
				var got []byte
				if err == nil {
					got, err = io.ReadAll(r)
				}
				if len(tt.msg) > limitTestSize {
					if !errors.Is(err, websocket.ErrConnClosed) {
						t.Errorf("receive: %v, want an error wrapping ErrConnClosed", err)
					}
					if p := recv(t, answer, "the client's close frame"); len(p) < 2 || binary.BigEndian.Uint16(p) != 1009 {
						t.Errorf("the client closed with %x, want 1009", p)
					}
					return
				}
				if err != nil || !bytes.Equal(got, tt.msg) {
					t.Fatalf("received %d bytes, %v; want the %d bytes sent", len(got), err, len(tt.msg))
				}
				c.Close(websocket.StatusOK, "")
				if p := recv(t, answer, "the client's close frame"); len(p) < 2 || binary.BigEndian.Uint16(p) != 1000 {
					t.Errorf("the client closed with %x, want 1000", p)
				}
			})
		}
	}
}

// A message that ends with a final DEFLATE block instead of a sync flush
// (RFC 7692 §7.2.3.4) is delivered, and what follows the final block in
// its frames, and the tail the receiver adds, is ignored; the connection
// goes on, with the history of context takeover intact. A message cut
// inside a block is still corrupt (TestDeflateViolations). The server's
// side.
// Rows: O1.
func TestDeflateFinalBlock(t *testing.T) {
	t.Parallel()
	for _, mode := range deflateModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			h, _ := echoHandler()
			ts := startServer(t, &websocket.Handler{Compression: mode.mode, Handle: h})
			c := dialDeflate(t, ts, offerDeflate, mode.answer)
			defer c.Close()
			for _, tt := range finalBlockCases() {
				c.Write(compressedFrames(opText, tt.payload, tt.parts, true))
				if c.deflate.sendTakeover {
					c.deflate.sent = append(c.deflate.sent, tt.msg...)
				}
				if op, got, _, _ := c.readCompressed(); op != opText || string(got) != tt.msg {
					t.Fatalf("%s: echo op=%#x %q, want %q", tt.name, op, got, tt.msg)
				}
				// The next message, compressed as usual, may refer back
				// to this one under context takeover.
				next := []byte(tt.msg + " again, " + tt.msg)
				c.sendCompressed(opText, next, 1)
				if op, got, _, _ := c.readCompressed(); op != opText || !bytes.Equal(got, next) {
					t.Fatalf("%s: the next message echoed op=%#x %q, want %q", tt.name, op, got, next)
				}
			}
		})
	}
}

// finalBlockCases are messages that end with a final block: the RFC's
// example, in one frame and cut in two; a final block and nothing after
// it; a final block with more behind it in the frames.
func finalBlockCases() []struct {
	name    string
	msg     string
	payload []byte
	parts   int
} {
	return []struct {
		name    string
		msg     string
		payload []byte
		parts   int
	}{
		{"RFC 7692 §7.2.3.4's Hello", "Hello", helloFinalBlock, 1},
		{"Hello in two frames", "Hello", helloFinalBlock, 2},
		{"Hello's final block alone", "Hello", helloFinalBlock[:7], 1},
		{"a final block, then a whole compressed message", "Hello", append(append([]byte{}, helloFinalBlock[:7]...), deflated([]byte("ignored"))...), 1},
		{"a final stored block ending a longer message", "done and done", finalBlock([]byte("done and done")), 3},
	}
}

// The same at the client's end, with context takeover in both directions
// and without.
// Rows: O1.
func TestDialDeflateFinalBlock(t *testing.T) {
	t.Parallel()
	for _, mode := range deflateModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			takeover := mode.mode == websocket.CompressionContextTakeover
			cases := finalBlockCases()
			url := rawServerExtensions(t, mode.answer, func(nc net.Conn, br *bufio.Reader) {
				peer := &peerDeflate{sendTakeover: takeover}
				for _, tt := range cases {
					nc.Write(compressedFrames(opText, tt.payload, tt.parts, false))
					if takeover {
						peer.sent = append(peer.sent, tt.msg...)
					}
					next := peer.compress([]byte(tt.msg + " again, " + tt.msg))
					nc.Write(compressedFrames(opText, next, 1, false))
				}
				readClientFrame(br) // the client's close frame
				nc.Write([]byte{0x88, 0x02, 0x03, 0xe8})
			})
			c := dial(t, url, &websocket.DialOptions{Compression: mode.mode})
			for _, tt := range cases {
				for _, want := range []string{tt.msg, tt.msg + " again, " + tt.msg} {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					got, err := receiveTextBefore(ctx, c)
					cancel()
					if err != nil || got != want {
						t.Fatalf("%s: received %q, %v; want %q", tt.name, got, err, want)
					}
				}
			}
			if err := c.Close(websocket.StatusOK, ""); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}

// A final block cut short is corrupt at the client's end too, though the
// tail the receiver adds completes it.
// Rows: O7.
func TestDialDeflateCutFinalBlock(t *testing.T) {
	t.Parallel()
	answer := make(chan []byte, 1)
	url := rawServerExtensions(t, "permessage-deflate", func(nc net.Conn, br *bufio.Reader) {
		nc.Write(compressedFrames(opText, helloFinalBlock[:5], 1, false))
		_, p, _, _ := readClientFrame(br)
		answer <- p
	})
	c := dial(t, url, &websocket.DialOptions{Compression: websocket.CompressionContextTakeover})
	if msg, err := c.ReceiveText(100); !errors.Is(err, websocket.ErrConnClosed) {
		t.Errorf("received %q, %v; want an error wrapping ErrConnClosed", msg, err)
	}
	if p := recv(t, answer, "the client's close frame"); len(p) < 2 || binary.BigEndian.Uint16(p) != 1007 {
		t.Errorf("the client closed with %x, want 1007", p)
	}
}

// receiveTextBefore is ReceiveText with the connection closed when ctx
// ends, so that a test cannot hang on a message that never comes.
func receiveTextBefore(ctx context.Context, c *websocket.Conn) (string, error) {
	stop := context.AfterFunc(ctx, func() { c.Close(websocket.StatusOK, "") })
	defer stop()
	return c.ReceiveText(1 << 20)
}
