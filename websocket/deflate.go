package websocket

import (
	"io"
	"sync"

	"github.com/wsmachine/wsmachine/websocket/internal/core"

	"github.com/klauspost/compress/flate"
)

// permessage-deflate's payload transform (RFC 7692 §7.2): a message is
// compressed with DEFLATE and ends with a sync flush, whose last four
// bytes, 00 00 FF FF, are left off the wire; the receiver puts them back
// before inflating. Only the first frame of a compressed message has RSV1.
//
// The compressor and decompressor are pooled and held only while a
// message is in flight, so an idle connection holds none. With context
// takeover a direction's history is kept instead: the last bytes of its
// compressed messages (the LZ77 window), given to the next message's
// compressor or decompressor as its dictionary.
//
// github.com/klauspost/compress/flate rather than compress/flate: in
// BenchmarkDeflate it compresses and inflates faster, and its fast
// compressor is a fraction of the size (compress/flate's is about
// 1 MiB whatever the level), which matters for a pool per server.

// deflateTail ends a sync flush; the sender drops it, the receiver adds it.
var deflateTail = [4]byte{0x00, 0x00, 0xff, 0xff}

// deflateLevel: compression for chatty traffic, where the speed of the
// fastest level matters more than a few percent of size.
const deflateLevel = flate.BestSpeed

// flateWriters are the compressors, one pool per window size in bits
// (8–15): a compressor never refers back further than its window.
var flateWriters [16]sync.Pool

// getFlateWriter takes a compressor with a window of 2^bits bytes from its
// pool. The whole window's is the fastest level; a smaller one is
// klauspost's only compressor with a window of choice (level 5's matcher,
// slower, but what a client that limits our window asks for).
func getFlateWriter(bits int) *flate.Writer {
	if w, ok := flateWriters[bits].Get().(*flate.Writer); ok {
		return w
	}
	if bits == 15 {
		w, _ := flate.NewWriter(nil, deflateLevel)
		return w
	}
	w, _ := flate.NewWriterWindow(nil, 1<<bits)
	return w
}

// compression is a connection's negotiated permessage-deflate.
type compression struct {
	threshold int // messages shorter than this are sent uncompressed
	sendBits  int // our compressor's window, in bits (8–15)
	// sent and received are the histories kept for context takeover in
	// each direction; nil where the sender resets after each message.
	sent, received *core.History
}

// newCompression returns the state for a negotiated permessage-deflate,
// at the server's end or, if client, at the client's.
func newCompression(p deflateParams, threshold int, client bool) *compression {
	ours, theirs := p.serverNoContextTakeover, p.clientNoContextTakeover
	ourBits, theirBits := p.serverBits(), p.clientBits()
	if client {
		ours, theirs = theirs, ours
		ourBits, theirBits = theirBits, ourBits
	}
	z := &compression{threshold: threshold, sendBits: ourBits}
	if !ours {
		z.sent = core.NewHistory(1 << ourBits)
	}
	if !theirs {
		// The sender's compressor refers back no further than its
		// window, so that much of the history is all it can use.
		z.received = core.NewHistory(1 << theirBits)
	}
	return z
}

// The sending side. A message writer compresses once it knows the message
// reaches the threshold: when its buffer fills, or at Close. The
// compressor's output goes to frameSink, which sends it in frames of
// writeBufferSize, always keeping back the last four bytes: the end of
// the message must not leave before it is known to be deflateTail, which
// is dropped.

// frameSink is where a message writer's compressor writes.
type frameSink struct{ w *messageWriter }

func (s frameSink) Write(p []byte) (int, error) {
	w := s.w
	n := len(p)
	for len(p) > 0 {
		out := (*w.out)[core.MaxHeaderLen:]
		if w.outN == len(out) {
			if err := w.sendCompressed(); err != nil {
				return 0, err
			}
		}
		k := copy(out[w.outN:], p)
		w.outN += k
		p = p[k:]
	}
	return n, nil
}

// sendCompressed sends the compressor's output as a frame of the message,
// but for its last four bytes, which stay for the next.
func (w *messageWriter) sendCompressed() error {
	keep := len(deflateTail)
	if w.outN <= keep {
		return nil
	}
	if err := w.frame(false, (*w.out)[:core.MaxHeaderLen+w.outN-keep], nil); err != nil {
		return err
	}
	out := (*w.out)[core.MaxHeaderLen:]
	w.outN = copy(out, out[w.outN-keep:w.outN])
	return nil
}

// rsv1 is RSV1 in a frame's first byte, as an opcode flag: the first
// frame of a compressed message carries it (RFC 7692 §6).
const rsv1 core.Opcode = 0x40

// startDeflate turns the message into a compressed one: nothing has been
// sent yet. The compressor starts from the history of what was sent, or
// afresh without context takeover.
func (w *messageWriter) startDeflate() {
	w.fw = getFlateWriter(w.c.deflate.sendBits)
	w.fw.ResetDict(frameSink{w}, w.c.deflate.sent.Dict())
	w.out, w.outN = writeBuffers.Get().(*[]byte), 0
	w.op |= rsv1
}

// deflate compresses raw, payload of the message.
func (w *messageWriter) deflate(raw []byte) error {
	if w.fw == nil {
		w.startDeflate()
	}
	w.c.deflate.sent.Add(raw)
	_, err := w.fw.Write(raw)
	return err
}

// deflateBuffered compresses the buffered payload, except an incomplete
// character at its end, which waits for the rest of its bytes (or is
// dropped by Close).
//
// The first time, the compressed bytes leave at once, up to a sync flush:
// from then on a frame of the message has left, as for a message that is
// not compressed once its buffer has filled, so that a message given up
// is cut on the wire exactly when it is being compressed (see
// messageWriter.fail), which the model can tell without compressing.
func (w *messageWriter) deflateBuffered() error {
	send := w.n - w.utf8.Pending()
	if err := w.deflate((*w.block)[core.MaxHeaderLen : core.MaxHeaderLen+send]); err != nil {
		return err
	}
	w.keep(send, nil)
	if !w.sent {
		if err := w.fw.Flush(); err != nil {
			return err
		}
		return w.sendCompressed()
	}
	return nil
}

// deflateMore adds p to a message that is being compressed, through the
// buffer.
func (w *messageWriter) deflateMore(p []byte) error {
	for len(p) > 0 {
		k := copy((*w.block)[core.MaxHeaderLen+w.n:], p)
		w.n += k
		p = p[k:]
		if w.n == writeBufferSize {
			if err := w.deflateBuffered(); err != nil {
				return err
			}
		}
	}
	return nil
}

// finishDeflate ends a compressed message (err: how compressing went so
// far): the flush, and the final frame without deflateTail. The
// compressor and the output buffer go back to their pools.
func (w *messageWriter) finishDeflate(err error) error {
	if err == nil {
		err = w.fw.Flush()
	}
	if err == nil {
		err = w.frame(true, (*w.out)[:core.MaxHeaderLen+w.outN-len(deflateTail)], nil)
	}
	w.stopDeflate()
	return err
}

// stopDeflate gives the compressor and the output buffer back to their
// pools, at the end of a compressed message or when it is given up.
func (w *messageWriter) stopDeflate() {
	// Reset without a dictionary: the pool keeps no history of ours,
	// and the next message sets its own.
	w.fw.ResetDict(io.Discard, nil)
	flateWriters[w.c.deflate.sendBits].Put(w.fw)
	writeBuffers.Put(w.out)
	w.fw, w.out, w.outN = nil, nil, 0
}

// sendDeflated sends msg as one compressed message; the caller holds the
// send side.
func (w *messageWriter) sendDeflated(op core.Opcode, msg []byte) error {
	w.op, w.sent, w.failed = op, false, nil
	err := w.finishDeflate(w.deflate(msg))
	if err == errWriteCanceled {
		return w.stopped()
	}
	return err
}
