package websocket_test

// What permessage-deflate costs and saves: the codec (klauspost/compress
// against the standard library), the echo with each Compression mode,
// and the memory an idle compressed connection keeps.

import (
	"bytes"
	stdflate "compress/flate"
	"fmt"
	"io"
	"runtime"
	"testing"

	"github.com/klauspost/compress/flate"

	"github.com/wsmachine/wsmachine/websocket"

	"github.com/wsmachine/wsmachine/websocket/internal/wstest"
)

// deflateWorkloads: chatty JSON, where compression pays, and random
// bytes, where it cannot.
var deflateWorkloads = []struct {
	name string
	msg  []byte
}{
	{"json-1KiB", jsonLike(1<<10, 11)},
	{"json-64KiB", jsonLike(64<<10, 12)},
	{"random-64KiB", randomBytes(64<<10, 13)},
}

// codec is a DEFLATE implementation as the library would use it: a
// writer reset and sync-flushed per message, a reader reset per message.
type codec struct {
	name    string
	writer  func() (io.Writer, func(io.Writer), func() error) // writer, reset, flush
	readerR func(io.Reader) (io.Reader, func(io.Reader))      // reader, reset
}

var codecs = []codec{
	{"klauspost",
		func() (io.Writer, func(io.Writer), func() error) {
			w, _ := flate.NewWriter(nil, flate.BestSpeed)
			return w, w.Reset, w.Flush
		},
		func(r io.Reader) (io.Reader, func(io.Reader)) {
			fr := flate.NewReader(r)
			return fr, func(r io.Reader) { fr.(flate.Resetter).Reset(r, nil) }
		}},
	{"stdlib",
		func() (io.Writer, func(io.Writer), func() error) {
			w, _ := stdflate.NewWriter(nil, stdflate.BestSpeed)
			return w, w.Reset, w.Flush
		},
		func(r io.Reader) (io.Reader, func(io.Reader)) {
			fr := stdflate.NewReader(r)
			return fr, func(r io.Reader) { fr.(stdflate.Resetter).Reset(r, nil) }
		}},
}

// BenchmarkDeflate compresses and inflates each workload with both
// codecs at their fastest level; MB/s is of the uncompressed message,
// ratio is its size over the compressed size.
func BenchmarkDeflate(b *testing.B) {
	for _, cd := range codecs {
		for _, wl := range deflateWorkloads {
			var compressed bytes.Buffer
			w, reset, flush := cd.writer()
			b.Run(cd.name+"/compress/"+wl.name, func(b *testing.B) {
				b.SetBytes(int64(len(wl.msg)))
				b.ReportAllocs()
				for b.Loop() {
					compressed.Reset()
					reset(&compressed)
					w.Write(wl.msg)
					flush()
				}
				b.ReportMetric(float64(len(wl.msg))/float64(compressed.Len()-4), "ratio")
			})
			wire := bytes.Clone(compressed.Bytes())
			src := bytes.NewReader(wire)
			out := make([]byte, len(wl.msg)+1)
			r, resetR := cd.readerR(src)
			b.Run(cd.name+"/inflate/"+wl.name, func(b *testing.B) {
				b.SetBytes(int64(len(wl.msg)))
				b.ReportAllocs()
				for b.Loop() {
					src.Reset(wire)
					resetR(src)
					if n, _ := io.ReadFull(r, out); n != len(wl.msg) {
						b.Fatalf("inflated %d bytes, want %d", n, len(wl.msg))
					}
				}
			})
		}
	}
}

// BenchmarkDeflateWriterSize is what one compressor costs: the memory a
// server pays per message in flight (the pool's), or per connection if
// it kept one for context takeover.
func BenchmarkDeflateWriterSize(b *testing.B) {
	for _, cd := range codecs {
		b.Run(cd.name, func(b *testing.B) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			w, _, _ := cd.writer()
			runtime.ReadMemStats(&after)
			runtime.KeepAlive(w)
			for b.Loop() {
			}
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc), "B/writer")
		})
	}
}

// compressionModes are the Handler settings compared, with the client's
// offer: it asks for client_no_context_takeover, so that one compressed
// frame can be sent again and again.
var compressionModes = []struct {
	name   string
	mode   websocket.CompressionMode
	offer  string
	answer string
}{
	{"off", websocket.CompressionOff, "", ""},
	{"no-context-takeover", websocket.CompressionNoContextTakeover, "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover",
		"permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
	{"context-takeover", websocket.CompressionContextTakeover, "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover",
		"permessage-deflate; client_no_context_takeover"},
}

// copyEcho echoes through SendMessage and io.Copy, as the harness does.
func copyEcho(c *websocket.Conn) {
	for {
		tp, r, err := c.ReceiveMessage()
		if err != nil {
			return
		}
		w, err := c.SendMessage(tp)
		if err != nil {
			return
		}
		io.Copy(w, r)
		if w.Close() != nil {
			return
		}
	}
}

// BenchmarkDeflateRoundTrip is a round trip over loopback with each mode: the
// client sends one of 16 different messages of the workload, compressed
// beforehand (it asks for client_no_context_takeover, so each frame is
// valid in any order), the server inflates it and compresses its echo.
// wire-B is what an echo costs on the wire, on average; ratio is the
// messages' size over that.
func BenchmarkDeflateRoundTrip(b *testing.B) {
	const variants = 16
	for _, m := range compressionModes {
		for wi, wl := range deflateWorkloads {
			b.Run(m.name+"/"+wl.name, func(b *testing.B) {
				ts := startServer(b, &websocket.Handler{Compression: m.mode, Handle: copyEcho})
				var c *rawClient
				if m.offer == "" {
					c = dialWS(b, ts)
				} else {
					c = dialWS(b, ts, m.offer)
					if got := c.Resp.Header.Get("Sec-WebSocket-Extensions"); got != m.answer {
						b.Fatalf("answer %q, want %q", got, m.answer)
					}
				}
				defer c.Close()
				c.deflate = &peerDeflate{}
				frames := make([][]byte, variants)
				for i := range frames {
					msg := wl.msg
					if i > 0 && wl.name[0] == 'j' {
						msg = jsonLike(len(wl.msg), uint64(100*wi+i))
					} else if i > 0 {
						msg = randomBytes(len(wl.msg), uint64(100*wi+i))
					}
					frames[i] = wstest.FrameBytes(opBinary, msg)
					if m.offer != "" {
						frames[i] = wstest.Frame{Fin: true, Op: opBinary, Rsv: 4, Payload: deflated(msg)}.Bytes()
					}
				}
				wire, msgs := 0, 0
				b.SetBytes(int64(len(wl.msg)))
				b.ReportAllocs()
				for b.Loop() {
					c.Write(frames[msgs%variants])
					msgs++
					for {
						f := c.ReadFrame()
						wire += len(f.Payload)
						if f.Fin {
							break
						}
					}
				}
				b.ReportMetric(float64(wire)/float64(msgs), "wire-B")
				b.ReportMetric(float64(len(wl.msg)*msgs)/float64(wire), "ratio")
			})
		}
	}
}

// What an idle connection keeps with each mode, after a compressed
// message each way: nothing more than without compression when neither
// side takes over context (no compressor, decompressor or history), the
// two 32 KiB histories when both do, and less with smaller windows
// (server_max_window_bits and client_max_window_bits of 12 and 9 offered:
// histories of 4 KiB and 512 bytes). The
// figures are for both ends of each connection, in this process; pools
// are emptied first (two collections), so only what the connections hold
// is counted.
func TestIdleCompressedConnections(t *testing.T) {
	const n = 200
	msg := jsonLike(2<<10, 21)
	heap := func() int64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapInuse)
	}
	perConn := map[string]int64{}
	for _, m := range []struct {
		name   string
		mode   websocket.CompressionMode
		offer  []string
		answer string
		window int // the client's, as answered
	}{
		{"off", websocket.CompressionOff, nil, "", 0}, // once to warm up: the figure is the second run's
		{"off", websocket.CompressionOff, nil, "", 0},
		{"none", websocket.CompressionNoContextTakeover, []string{offerDeflate}, "permessage-deflate; server_no_context_takeover; client_no_context_takeover", 0},
		{"both", websocket.CompressionContextTakeover, []string{offerDeflate}, "permessage-deflate", 0},
		{"12 bits", websocket.CompressionContextTakeover, []string{offerWindows(12)}, "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12", 1 << 12},
		{"9 bits", websocket.CompressionContextTakeover, []string{offerWindows(9)}, "permessage-deflate; server_max_window_bits=9; client_max_window_bits=9", 1 << 9},
	} {
		ts := startServer(t, &websocket.Handler{Compression: m.mode, Handle: copyEcho})
		before := heap()
		clients := make([]*rawClient, n)
		for i := range clients {
			c := dialWS(t, ts, m.offer...)
			if got := c.Resp.Header.Get("Sec-WebSocket-Extensions"); got != m.answer {
				t.Fatalf("%s: answer %q, want %q", m.name, got, m.answer)
			}
			c.deflate = &peerDeflate{sendWindow: m.window}
			if m.answer != "" {
				c.sendCompressed(opText, msg, 1)
			} else {
				c.Write(wstest.FrameBytes(opText, msg))
			}
			if _, got, _, _ := c.readCompressed(); !bytes.Equal(got, msg) {
				t.Fatal("echo differs")
			}
			c.deflate = nil // the client's own history is not the server's cost
			clients[i] = c
		}
		perConn[m.name] = (heap() - before) / n
		for _, c := range clients {
			c.Close()
		}
		ts.shutdown()
	}
	off, none, both := perConn["off"], perConn["none"], perConn["both"]
	t.Logf("heap in use per idle connection, both ends: off %d B, no context takeover %d B, context takeover %d B (windows of 12 bits %d B, of 9 bits %d B)",
		off, none, both, perConn["12 bits"], perConn["9 bits"])
	// The margin is for the noise of measuring heap in a test binary
	// (a few KiB per connection when other tests ran before); what it
	// guards against, a compressor, decompressor or history kept, is
	// 40 KiB or more.
	if none > off+8<<10 {
		t.Errorf("without context takeover an idle connection costs %d B more than without compression", none-off)
	}
	if both > off+100<<10 {
		t.Errorf("with context takeover an idle connection costs %d B more than without compression, want about 80 KiB", both-off)
	}
	// Two histories of 4 KiB (5 KiB buffers), then of 512 bytes.
	if w := perConn["12 bits"]; w > off+20<<10 {
		t.Errorf("with 12-bit windows an idle connection costs %d B more than without compression, want about 10 KiB", w-off)
	}
	if w := perConn["9 bits"]; w > off+10<<10 {
		t.Errorf("with 9-bit windows an idle connection costs %d B more than without compression, want about 1 KiB", w-off)
	}
}

// offerWindows offers permessage-deflate with both windows of bits.
func offerWindows(bits int) string {
	return fmt.Sprintf("Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=%d; client_max_window_bits=%d", bits, bits)
}
