package websocket_test

// Negotiated LZ77 windows (RFC 7692 §7.1.2): the server compresses with
// the window a client's server_max_window_bits asks for, and Dial offers
// client_max_window_bits and compresses with the window the server
// answers. What is sent is checked by inflateWithin, a decoder of its own
// that refuses any back-reference further than the window.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wsmachine/wsmachine/websocket"

	"github.com/wsmachine/wsmachine/websocket/internal/wstest"
)

// inflateWithin inflates a raw DEFLATE stream that ends at a sync flush
// (its last four bytes, 00 00 FF FF, left off as on the wire), with dict
// as the history, and fails if a back-reference reaches further back than
// window bytes or before the dictionary: what a decoder whose window is
// that size could not inflate. It follows RFC 1951 §3.2, decoding Huffman
// codes a bit at a time (as zlib's puff does): slow, and independent of
// both flate packages.
func inflateWithin(wire, dict []byte, window int) ([]byte, error) {
	br := &bitReader{b: append(append([]byte{}, wire...), deflateTail...)}
	out := append([]byte{}, dict...)
	for br.pos < len(br.b) {
		final := br.bits(1)
		switch br.bits(2) {
		case 0: // stored: from the next byte boundary
			if br.bit > 0 {
				br.bit, br.pos = 0, br.pos+1
			}
			if br.pos+4 > len(br.b) {
				return nil, errors.New("stored block cut short")
			}
			n := int(br.b[br.pos]) | int(br.b[br.pos+1])<<8
			br.pos += 4
			if br.pos+n > len(br.b) {
				return nil, errors.New("stored block cut short")
			}
			out = append(out, br.b[br.pos:br.pos+n]...)
			br.pos += n
		case 1:
			lit, dist := fixedCodes()
			if err := br.codes(&out, lit, dist, window); err != nil {
				return nil, err
			}
		case 2:
			lit, dist, err := br.dynamicCodes()
			if err != nil {
				return nil, err
			}
			if err := br.codes(&out, lit, dist, window); err != nil {
				return nil, err
			}
		default:
			return nil, errors.New("reserved block type")
		}
		if br.err != nil {
			return nil, br.err
		}
		if final == 1 {
			break
		}
	}
	return out[len(dict):], nil
}

type bitReader struct {
	b        []byte
	pos, bit int
	err      error
}

func (r *bitReader) bits(n int) int {
	v := 0
	for i := 0; i < n; i++ {
		if r.pos >= len(r.b) {
			r.err = errors.New("stream cut short")
			return 0
		}
		v |= int(r.b[r.pos]>>r.bit&1) << i
		if r.bit++; r.bit == 8 {
			r.bit, r.pos = 0, r.pos+1
		}
	}
	return v
}

// huffman is a canonical code: how many codes of each length, and the
// symbols in code order.
type huffman struct {
	count  [16]int
	symbol []int
}

func newHuffman(lengths []int) huffman {
	var h huffman
	for _, l := range lengths {
		h.count[l]++
	}
	h.count[0] = 0
	var offs [16]int
	for l := 1; l < 15; l++ {
		offs[l+1] = offs[l] + h.count[l]
	}
	h.symbol = make([]int, len(lengths))
	for sym, l := range lengths {
		if l != 0 {
			h.symbol[offs[l]] = sym
			offs[l]++
		}
	}
	return h
}

func (r *bitReader) decode(h huffman) int {
	code, first, index := 0, 0, 0
	for l := 1; l <= 15; l++ {
		code |= r.bits(1)
		if count := h.count[l]; code-count < first {
			return h.symbol[index+code-first]
		} else {
			index += count
			first = (first + count) << 1
			code <<= 1
		}
		if r.err != nil {
			return -1
		}
	}
	r.err = errors.New("invalid Huffman code")
	return -1
}

func fixedCodes() (lit, dist huffman) {
	l := make([]int, 288)
	for i := range l {
		switch {
		case i < 144:
			l[i] = 8
		case i < 256:
			l[i] = 9
		case i < 280:
			l[i] = 7
		default:
			l[i] = 8
		}
	}
	d := make([]int, 30)
	for i := range d {
		d[i] = 5
	}
	return newHuffman(l), newHuffman(d)
}

func (r *bitReader) dynamicCodes() (lit, dist huffman, err error) {
	nlen, ndist, ncode := r.bits(5)+257, r.bits(5)+1, r.bits(4)+4
	order := []int{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
	cl := make([]int, 19)
	for i := 0; i < ncode; i++ {
		cl[order[i]] = r.bits(3)
	}
	clh := newHuffman(cl)
	lengths := make([]int, 0, nlen+ndist)
	for len(lengths) < nlen+ndist && r.err == nil {
		sym := r.decode(clh)
		switch {
		case sym < 0:
		case sym < 16:
			lengths = append(lengths, sym)
		case sym == 16 && len(lengths) > 0:
			for n := 3 + r.bits(2); n > 0; n-- {
				lengths = append(lengths, lengths[len(lengths)-1])
			}
		case sym == 17:
			lengths = append(lengths, make([]int, 3+r.bits(3))...)
		case sym == 18:
			lengths = append(lengths, make([]int, 11+r.bits(7))...)
		default:
			return lit, dist, errors.New("repeat with no length before it")
		}
	}
	if r.err != nil || len(lengths) != nlen+ndist {
		return lit, dist, errors.New("invalid code lengths")
	}
	return newHuffman(lengths[:nlen]), newHuffman(lengths[nlen:]), nil
}

var (
	lengthBase  = []int{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra = []int{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase    = []int{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra   = []int{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
)

// codes decodes a compressed block's symbols into out, refusing a
// distance beyond window.
func (r *bitReader) codes(out *[]byte, lit, dist huffman, window int) error {
	for r.err == nil {
		sym := r.decode(lit)
		switch {
		case sym < 0:
		case sym < 256:
			*out = append(*out, byte(sym))
		case sym == 256:
			return nil
		case sym-257 < len(lengthBase):
			n := lengthBase[sym-257] + r.bits(lengthExtra[sym-257])
			ds := r.decode(dist)
			if ds < 0 || ds >= len(distBase) {
				return errors.New("invalid distance code")
			}
			d := distBase[ds] + r.bits(distExtra[ds])
			if d > window {
				return fmt.Errorf("back-reference %d bytes back, beyond the %d-byte window", d, window)
			}
			if d > len(*out) {
				return fmt.Errorf("back-reference %d bytes back, before the history", d)
			}
			for range n {
				*out = append(*out, (*out)[len(*out)-d])
			}
		default:
			return errors.New("invalid length code")
		}
	}
	return r.err
}

// windowMessages are messages that repeat bytes from further back than
// any window below 15 bits, within each and across them: the second is
// the first again.
func windowMessages() [][]byte {
	var m []byte
	for i := range 4 {
		m = append(m, randomBytes(600, uint64(i))...)
		m = append(m, jsonLike(2000, uint64(i))...)
		m = append(m, randomBytes(600, 0)...) // the start again, 2.6 KiB and more later
	}
	return [][]byte{m, m, jsonLike(3000, 7)}
}

// The decoder above refuses what a whole window's compressor writes for
// a window of 512 bytes, and takes it for 32 KiB: the tests below would
// notice a compressor that refers back too far.
func TestInflateWithinRefusesFarReferences(t *testing.T) {
	msgs := windowMessages()
	wire := (&peerDeflate{}).compress(msgs[0])
	if got, err := inflateWithin(wire, nil, 32<<10); err != nil || !bytes.Equal(got, msgs[0]) {
		t.Fatalf("whole window: %v, equal %v", err, bytes.Equal(got, msgs[0]))
	}
	if _, err := inflateWithin(wire, nil, 512); err == nil || !strings.Contains(err.Error(), "beyond") {
		t.Fatalf("512-byte window: %v, want a back-reference beyond it", err)
	}
}

// A client's server_max_window_bits of 8 to 15 is honoured: the answer
// repeats it, and with context takeover each compressed echo inflates
// with only that much of the previous ones as history and never refers
// back further (the Autobahn suite's 13.3.x and 13.5.x).
//
// Rows: C1, O3; STATE_MACHINE.md "Compressed messages" (negotiation: a limit on
// the server's window; sending with that window and history).
func TestServerWindowBits(t *testing.T) {
	t.Parallel()
	ts := startServer(t, &websocket.Handler{Compression: websocket.CompressionContextTakeover, Handle: copyEcho})
	msgs := windowMessages()
	for bits := 8; bits <= 15; bits++ {
		t.Run(fmt.Sprint(bits), func(t *testing.T) {
			window := 1 << bits
			c := dialWS(t, ts, fmt.Sprintf("Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=%d", bits))
			defer c.Close()
			c.deflate = &peerDeflate{} // reads RSV1; the frames are inflated here
			want := fmt.Sprintf("permessage-deflate; server_max_window_bits=%d", bits)
			if got := c.Resp.Header.Values("Sec-WebSocket-Extensions"); len(got) != 1 || got[0] != want {
				t.Fatalf("Sec-WebSocket-Extensions %q, want %q", got, want)
			}
			var history []byte
			for i, msg := range msgs {
				c.Write(wstest.FrameBytes(opBinary, msg))
				f := c.ReadFrame()
				if !f.Rsv1 || !f.Fin {
					t.Fatalf("message %d: echo not compressed in one frame (RSV1 %v, FIN %v)", i, f.Rsv1, f.Fin)
				}
				dict := history[max(len(history)-window, 0):]
				got, err := inflateWithin(f.Payload, dict, window)
				if err != nil || !bytes.Equal(got, msg) {
					t.Fatalf("message %d: %v (inflates to what was sent: %v)", i, err, bytes.Equal(got, msg))
				}
				history = append(history, msg...)
			}
		})
	}
}

// A client that declares its window in client_max_window_bits has it
// answered, and the server inflates its messages with only that much of
// the earlier ones as history: all the client may refer to.
//
// Rows: C1, O1; STATE_MACHINE.md "Compressed messages" (negotiation: a client's
// own window; receiving with that history).
func TestServerClientWindowBits(t *testing.T) {
	t.Parallel()
	ts := startServer(t, &websocket.Handler{Compression: websocket.CompressionContextTakeover, Handle: copyEcho})
	c := dialDeflate(t, ts, "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=9",
		"permessage-deflate; client_max_window_bits=9")
	defer c.Close()
	c.deflate.sendWindow = 1 << 9
	for i, msg := range windowMessages() {
		c.sendCompressed(opBinary, msg, 2)
		if _, got, compressed, _ := c.readCompressed(); !compressed || !bytes.Equal(got, msg) {
			t.Fatalf("message %d: echo compressed %v, equal %v", i, compressed, bytes.Equal(got, msg))
		}
	}
}

// Dial offers client_max_window_bits, as browsers do, in either mode,
// and compresses with the window the server answers: a server that
// limits the client's window (the Autobahn suite's answers
// client_max_window_bits=9) gets compressed messages that never refer
// back further, and the server's server_max_window_bits is taken too.
//
// Rows: C1, O3; STATE_MACHINE.md "Opening handshake, client" (the offer and an
// acceptable answer).
func TestDialClientWindowBits(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		mode   websocket.CompressionMode
		offer  string
		answer string
		window int // the client's, as answered
	}{
		{websocket.CompressionContextTakeover, "permessage-deflate; client_max_window_bits",
			"permessage-deflate; client_max_window_bits=9", 1 << 9},
		{websocket.CompressionContextTakeover, "permessage-deflate; client_max_window_bits",
			"permessage-deflate; server_max_window_bits=12; client_max_window_bits=10", 1 << 10},
		{websocket.CompressionNoContextTakeover, "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits",
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=8", 1 << 8},
	} {
		t.Run(tt.answer, func(t *testing.T) {
			t.Parallel()
			window := tt.window
			takeover := tt.mode == websocket.CompressionContextTakeover
			type got struct {
				offer   string
				msg     []byte
				rsv1    bool
				inflErr error
			}
			frames := make(chan got, 8)
			msgs := windowMessages()
			url := rawServerRequest(t, tt.answer, func(nc net.Conn, br *bufio.Reader, req *http.Request) {
				offer := strings.Join(req.Header.Values("Sec-WebSocket-Extensions"), ", ")
				var history []byte
				for range msgs {
					first, err := br.Peek(1)
					if err != nil {
						return
					}
					rsv1 := first[0]&0x40 != 0 // before the buffer is read on
					_, payload, _, err := readClientFrame(br)
					if err != nil {
						return
					}
					var dict []byte
					if takeover {
						dict = history[max(len(history)-window, 0):]
					}
					msg, err := inflateWithin(payload, dict, window)
					history = append(history, msg...)
					frames <- got{offer, msg, rsv1, err}
				}
			})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Compression: tt.mode, CloseTimeout: time.Second})
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer c.Close(websocket.StatusOK, "")
			for i, msg := range msgs {
				if err := c.SendBinary(msg); err != nil {
					t.Fatal(err)
				}
				f := recv(t, frames, "a message")
				if f.offer != tt.offer {
					t.Errorf("offer %q, want %q", f.offer, tt.offer)
				}
				if !f.rsv1 || f.inflErr != nil || !bytes.Equal(f.msg, msg) {
					t.Fatalf("message %d: compressed %v, %v (inflates to what was sent: %v)", i, f.rsv1, f.inflErr, bytes.Equal(f.msg, msg))
				}
			}
		})
	}
}
