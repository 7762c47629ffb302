package model

import (
	"bytes"
	"compress/flate"
	"io"
	"sync"
	"unicode/utf8"
)

// permessage-deflate (RFC 7692), as STATE_MACHINE.md's "Compressed
// messages" says. The model inflates with the standard library's
// compress/flate, the library with another implementation: a difference
// between the two decoders shows up as a disagreement.

// Deflate is a negotiated permessage-deflate, as the connection uses it.
type Deflate struct {
	// ServerContextTakeover: our compressor keeps its history from
	// message to message (no server_no_context_takeover), so the
	// client must inflate our messages with the previous ones.
	ServerContextTakeover bool
	// ClientContextTakeover: the client's compressed messages may refer
	// back to its earlier ones (no client_no_context_takeover).
	ClientContextTakeover bool
	// Threshold is Handler.CompressionThreshold: messages this long or
	// longer are sent compressed. 0 means DefaultCompressionThreshold.
	Threshold int
	// ServerWindowBits and ClientWindowBits are the LZ77 windows each
	// side compresses with, in bits (RFC 7692 §7.1.2): 15 unless the
	// negotiation limits them; 0 also means 15. A sender never refers
	// back further than its window, so with context takeover its
	// receiver keeps only that much of its history: a compressed
	// message that refers further back into the earlier ones does not
	// inflate. The model's histories are WindowSize long whatever the
	// windows, and its peers keep to them (see Window).
	ServerWindowBits, ClientWindowBits int
}

// Window is the LZ77 window, in bytes, of the server's compressor or, if
// not server, the client's: how much of the sender's history its next
// compressed message may refer to.
func (d *Deflate) Window(server bool) int {
	bits := d.ClientWindowBits
	if server {
		bits = d.ServerWindowBits
	}
	if bits == 0 {
		bits = 15
	}
	return 1 << bits
}

// RecvWindow is the peer's LZ77 window in bytes: how far back into its
// earlier compressed messages its next one may refer; WindowSize without
// compression.
func (m *Conn) RecvWindow() int {
	if m.Deflate == nil {
		return WindowSize
	}
	return m.Deflate.Window(!m.client())
}

// LastWindow is the last window bytes of a history: the dictionary of a
// sender whose window is that size.
func LastWindow(hist []byte, window int) []byte {
	return hist[max(len(hist)-window, 0):]
}

// DefaultCompressionThreshold is what a CompressionThreshold of 0 means.
const DefaultCompressionThreshold = 512

func (d *Deflate) threshold() int {
	if d.Threshold > 0 {
		return d.Threshold
	}
	return DefaultCompressionThreshold
}

// WindowSize is DEFLATE's window (RFC 1951): with context takeover, the
// last WindowSize inflated bytes of a direction's compressed messages are
// the next one's dictionary.
const WindowSize = 32 << 10

// DeflateTail ends a sync flush: the sender leaves it off the wire, the
// receiver puts it back before inflating (RFC 7692 §7.2.1, §7.2.2).
var DeflateTail = []byte{0x00, 0x00, 0xFF, 0xFF}

// AddHistory returns the history hist followed by p, cut to its last
// WindowSize bytes.
func AddHistory(hist, p []byte) []byte {
	hist = append(append([]byte{}, hist...), p...)
	if len(hist) > WindowSize {
		hist = hist[len(hist)-WindowSize:]
	}
	return hist
}

// Inflation failures, as the close frame's reason gives them.
const (
	ReasonCorrupt       = "invalid compressed data"
	ReasonInflatedLarge = "message too large once inflated"
)

// inflaters are reused decompressors: a new one per message (its window
// is 32 KiB) would cost the fuzzers more than the rest of a scenario.
var inflaters = sync.Pool{New: func() any { return flate.NewReader(bytes.NewReader(nil)) }}

// Inflate inflates a compressed message's payload (its frames' payloads
// joined, without DeflateTail) with dict as the history, reading at most
// limit+1 bytes of output (limit negative: no limit). It returns what came
// out before the decoder stopped, and ReasonCorrupt if the data is
// corrupt. A final block ends the message: what follows it is not part
// of it (RFC 7692 §7.2.3.4), whether the tail or more of the frames.
func Inflate(wire, dict []byte, limit int64) (out []byte, failure string) {
	// Behind the tail, an empty final block: a message that ends where a
	// sync flush ends then ends the stream (io.EOF); one cut inside a
	// block runs out of input (io.ErrUnexpectedEOF), and is corrupt.
	// An empty payload is an empty message: the final block alone.
	end := append(append([]byte{}, DeflateTail...), 0x01, 0x00, 0x00, 0xff, 0xff)
	if len(wire) == 0 {
		end = end[len(DeflateTail):]
	}
	in := bytes.NewReader(append(append([]byte{}, wire...), end...))
	fr := inflaters.Get().(io.ReadCloser)
	defer inflaters.Put(fr)
	fr.(flate.Resetter).Reset(in, dict)
	var r io.Reader = fr
	if limit >= 0 {
		r = io.LimitReader(r, limit+1)
	}
	out, err := io.ReadAll(r)
	consumed := in.Size() - int64(in.Len())
	switch {
	case limit >= 0 && int64(len(out)) > limit:
		return out, "" // the caller sees it is too large
	case err == nil && consumed > int64(len(wire)) && consumed < int64(len(wire)+len(end)):
		// A final block that ends inside what was put behind the
		// wire began in the client's bytes: it was cut. (The decoder
		// reads no byte that holds no bit of the block it decodes.)
		return out, ReasonCorrupt
	case err == nil:
		// The end (io.EOF, which ReadAll swallows): the final block
		// behind the tail, or the client's own final block, whatever
		// follows it.
		return out, ""
	}
	return out, ReasonCorrupt
}

// judgeCompressed decides a compressed message once all of its frames
// have arrived, in the order of STATE_MACHINE.md's inflation rows: what
// inflated before the decoder stopped is checked first, byte by byte, as
// the reader checks it as it comes out.
func judgeCompressed(wire, dict []byte, text bool, limit int64) (out []byte, code uint16, reason string) {
	out, failure := Inflate(wire, dict, limit)
	checked := out
	if limit >= 0 && int64(len(out)) > limit {
		checked = out[:limit]
	}
	switch {
	case text && !textSoFar(checked):
		return nil, 1007, "invalid UTF-8 in text message"
	case len(checked) < len(out):
		return nil, 1009, ReasonInflatedLarge
	case failure != "":
		return nil, 1007, failure
	case text && !utf8.Valid(out):
		return nil, 1007, "text message ends inside a UTF-8 sequence"
	}
	return out, 0, ""
}

// Compress is a client's compressor, for tests: msg compressed with dict
// as the history, ending with a sync flush whose last four bytes are left
// off; with final, ending with a final block instead.
//
// The history is given by compressing dict first and dropping its output
// up to a sync flush, which leaves the compressor's window as a
// dictionary would: writers are reused that way, as a new one costs
// about 1 MiB.
func Compress(msg, dict []byte, final bool) []byte {
	var b bytes.Buffer
	w := compressors.Get().(*flate.Writer)
	defer compressors.Put(w)
	w.Reset(&b)
	w.Write(dict)
	w.Flush()
	start := b.Len()
	w.Write(msg)
	if final {
		w.Close()
		return b.Bytes()[start:]
	}
	w.Flush()
	return bytes.TrimSuffix(b.Bytes()[start:], DeflateTail)
}

// Stored is a client's compressor that does not compress, for tests: msg
// in stored blocks of at most blockSize bytes (RFC 1951 §3.2.4), ending
// with a sync flush whose last four bytes are left off. Every block costs
// 5 bytes more than its data, so the payload is longer than msg by more
// than any fixed margin as blockSize shrinks, as zlib's is for random
// data with a small memLevel (2 KiB blocks at memLevel 5).
func Stored(msg []byte, blockSize int) []byte {
	var b []byte
	for len(msg) > 0 {
		n := min(len(msg), blockSize, 0xFFFF)
		b = append(b, 0x00, byte(n), byte(n>>8), ^byte(n), ^byte(n>>8))
		b, msg = append(b, msg[:n]...), msg[n:]
	}
	return append(b, 0x00) // the sync flush's empty block, less its tail
}

var compressors = sync.Pool{New: func() any {
	w, _ := flate.NewWriter(nil, 2) // the fastest level that uses a window (BestSpeed does not)
	return w
}}
