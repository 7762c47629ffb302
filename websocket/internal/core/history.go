package core

// The receiving side of permessage-deflate (RFC 7692), as far as it is
// protocol: what the driver puts behind a compressed message's payload,
// and the History a direction's messages are inflated and compressed
// with. The decompressor itself is the driver's (see Protocol.Inflated).

// InflateEnd is what the receiver puts behind a message's payload: the
// sync flush's tail (00 00 ff ff, which the sender leaves off the wire),
// then an empty final block (BFINAL set, stored, LEN 0). A message that
// ends where a sync flush ends, as RFC 7692 §7.2.1 has it, then ends the
// DEFLATE stream cleanly (io.EOF), whatever decoder reads it; one cut
// inside a block does not, and is corrupt. (Without the final block both
// run out of input, and how much a decoder hands out of a block cut short
// depends on how far it reads ahead.)
var InflateEnd = [9]byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

// History holds the last window bytes of a direction's compressed
// messages, uncompressed: window is that direction's LZ77 window, 32 KiB
// unless negotiated smaller. Its buffer has some room beyond the window
// so that it is shifted only now and then, not for every piece added.
type History struct {
	b      []byte
	window int
}

// NewHistory returns an empty history of a window of that many bytes.
func NewHistory(window int) *History { return &History{window: window} }

// Add appends p, uncompressed bytes of a message, to the history; on a
// nil History (no context takeover) it does nothing.
func (h *History) Add(p []byte) {
	if h == nil || len(p) == 0 {
		return
	}
	if h.b == nil {
		h.b = make([]byte, 0, h.window+h.window/4)
	}
	if len(p) >= h.window {
		h.b = append(h.b[:0], p[len(p)-h.window:]...)
		return
	}
	if len(h.b)+len(p) > cap(h.b) {
		keep := min(len(h.b), h.window-len(p))
		h.b = h.b[:copy(h.b, h.b[len(h.b)-keep:])]
	}
	h.b = append(h.b, p...)
}

// Dict is the history as a DEFLATE dictionary: nil without one.
func (h *History) Dict() []byte {
	if h == nil || len(h.b) == 0 {
		return nil
	}
	return h.b[max(len(h.b)-h.window, 0):]
}
