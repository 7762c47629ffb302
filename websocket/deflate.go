package websocket

import (
	"bytes"
	"io"
	"sync"

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

// inflateEnd is what the receiver puts behind a message's payload:
// deflateTail, then an empty final block (BFINAL set, stored, LEN 0). A
// message that ends where a sync flush ends, as RFC 7692 §7.2.1 has it,
// then ends the DEFLATE stream cleanly (io.EOF), whatever decoder reads
// it; one cut inside a block does not, and is corrupt. (Without the final
// block both run out of input, and how much a decoder hands out of a
// block cut short depends on how far it reads ahead.)
var inflateEnd = [9]byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

// deflateLevel: compression for chatty traffic, where the speed of the
// fastest level matters more than a few percent of size.
const deflateLevel = flate.BestSpeed

var (
	// flateWriters are the compressors, one pool per window size in bits
	// (8–15): a compressor never refers back further than its window.
	flateWriters [16]sync.Pool
	flateReaders = sync.Pool{New: func() any { return flate.NewReader(noBytes) }}
)

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

// noBytes is what a pooled decompressor is set to read from: nothing, and
// no connection that it would keep alive. It is never read.
var noBytes = bytes.NewReader(nil)

// compression is a connection's negotiated permessage-deflate.
type compression struct {
	threshold int // messages shorter than this are sent uncompressed
	sendBits  int // our compressor's window, in bits (8–15)
	// sent and received are the histories kept for context takeover in
	// each direction; nil where the sender resets after each message.
	sent, received *history
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
		z.sent = &history{window: 1 << ourBits}
	}
	if !theirs {
		// The sender's compressor refers back no further than its
		// window, so that much of the history is all it can use.
		z.received = &history{window: 1 << theirBits}
	}
	return z
}

// history holds the last window bytes of a direction's compressed
// messages, uncompressed: window is that direction's LZ77 window, 32 KiB
// unless negotiated smaller. Its buffer has some room beyond the window
// so that it is shifted only now and then, not for every piece added.
type history struct {
	b      []byte
	window int
}

func (h *history) add(p []byte) {
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

// dict is the history as a DEFLATE dictionary: nil without one.
func (h *history) dict() []byte {
	if h == nil || len(h.b) == 0 {
		return nil
	}
	return h.b[max(len(h.b)-h.window, 0):]
}

// deflatedPayload reads the payload of the compressed message being
// received as it is on the wire, then inflateEnd: what the decompressor
// reads. It implements io.ByteReader, which the decompressor reads by,
// so that it does not wrap it in a bufio.Reader of its own. readMu is
// held.
type deflatedPayload struct {
	c       *Conn
	tail    int   // bytes of inflateEnd served; the wire part has ended once positive
	wireErr error // why the wire part failed: the connection's error, not a DEFLATE one
	some    bool  // the wire part had a byte: an empty one is an empty message
}

func (d *deflatedPayload) Read(p []byte) (int, error) {
	if d.wireErr != nil {
		return 0, d.wireErr
	}
	if d.tail == 0 {
		n, err := d.c.readWire(p, true)
		switch {
		case err == nil:
			d.some = d.some || n > 0
			return n, nil
		case err != io.EOF:
			d.wireErr = err
			return n, err
		case n > 0:
			d.some = true
			d.tail = -1 // the wire part ends here; the tail comes next
			return n, nil
		case !d.some:
			// No payload at all: an empty message (RFC 7692 §7.2.3.6
			// sends 0x00, but an empty payload is what some do), for
			// which the final block alone is a whole stream.
			d.tail = len(deflateTail)
		}
	}
	d.tail = max(d.tail, 0)
	n := copy(p, inflateEnd[d.tail:])
	d.tail += n
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// ReadByte takes a buffered byte directly; anything else goes through Read.
func (d *deflatedPayload) ReadByte() (byte, error) {
	c := d.c
	if d.tail == 0 && c.rd.remaining > 0 && c.buffered() > 0 {
		b := (*c.in.buf)[c.in.r] ^ c.rd.h.key[c.rd.keyPos&3]
		c.rd.keyPos++
		c.rd.remaining--
		c.consume(1)
		d.some = true
		return b, nil
	}
	var one [1]byte
	for {
		n, err := d.Read(one[:])
		if n == 1 {
			return one[0], nil
		}
		if err != nil {
			return 0, err
		}
	}
}

// inflating is the read side's state while a compressed message is
// received (readMu).
type inflating struct {
	fr  io.ReadCloser // the pooled decompressor; nil until the first read
	src deflatedPayload
	n   int64 // bytes inflated so far
}

// readInflated reads inflated payload of the current compressed message
// into p. MaxMessageSize applies to what it inflates to, and is checked
// as it inflates: a small message that would inflate to gigabytes (a
// decompression bomb) fails the connection with StatusTooLarge once it
// passes the limit, and the rest is never inflated. Text is checked as
// it comes out.
func (c *Conn) readInflated(p []byte) (int, error) {
	z := &c.rd.inflate
	if z.fr == nil {
		z.src = deflatedPayload{c: c}
		z.fr = flateReaders.Get().(io.ReadCloser)
		z.fr.(flate.Resetter).Reset(&z.src, c.deflate.received.dict())
	}
	if c.maxMessageSize >= 0 && int64(len(p)) > c.maxMessageSize-z.n {
		p = p[:c.maxMessageSize-z.n+1] // one byte past the limit tells it is passed
	}
	n, err := z.fr.Read(p)
	// Of what came out, the bytes within the limit are judged first: an
	// invalid character before the limit is what the client did wrong.
	within := n
	if c.maxMessageSize >= 0 && z.n+int64(n) > c.maxMessageSize {
		within = int(c.maxMessageSize - z.n)
	}
	z.n += int64(n)
	if z.src.wireErr != nil { // the connection failed or ended under the decompressor
		c.stopInflating()
		return 0, z.src.wireErr
	}
	if c.rd.msgType == Text && !c.rd.utf8.feed(p[:within]) {
		c.stopInflating()
		return 0, c.protocolError(&protocolError{StatusInvalidData, "invalid UTF-8 in text message"})
	}
	if within < n {
		c.stopInflating()
		return 0, c.protocolError(&protocolError{StatusTooLarge, "message too large once inflated"})
	}
	c.deflate.received.add(p[:n])
	switch err {
	case nil:
		return n, nil
	case io.EOF:
		// The decompressor stops at a final block: normally the one of
		// inflateEnd, else the peer's (RFC 7692 §7.2.3.4), after which
		// the rest of its frames, usually the first byte of the empty
		// block that deflateTail completes, is not part of the message.
		// The message ends where its frames end. A decoder reads no
		// byte that holds no bit of the block it decodes, so a final
		// block that ends inside inflateEnd's bytes began in the peer's:
		// the message was cut inside that block, and is corrupt.
		c.stopInflating()
		switch tail := z.src.tail; {
		case tail == 0:
			if err := c.skipAfterFinal(); err != io.EOF {
				return 0, err
			}
		case tail < len(inflateEnd):
			return 0, c.protocolError(&protocolError{StatusInvalidData, "invalid compressed data"})
		}
		return n, c.endMessage()
	default: // corrupt, or cut inside a block (io.ErrUnexpectedEOF): see inflateEnd
		c.stopInflating()
		return 0, c.protocolError(&protocolError{StatusInvalidData, "invalid compressed data"})
	}
}

// skipAfterFinal reads and drops what is left of a compressed message's
// frames after the peer's final DEFLATE block, up to io.EOF at their end.
// A function of its own, so that its buffer is not in readInflated's
// frame (see nextFrame on stack depth).
//
//go:noinline
func (c *Conn) skipAfterFinal() error {
	var buf [256]byte
	for {
		if _, err := c.readWire(buf[:], true); err != nil {
			return err
		}
	}
}

// stopInflating gives the decompressor back to the pool.
func (c *Conn) stopInflating() {
	z := &c.rd.inflate
	if z.fr != nil {
		z.fr.(flate.Resetter).Reset(noBytes, nil)
		flateReaders.Put(z.fr)
		z.fr = nil
	}
	z.src.c = nil
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
		out := (*w.out)[maxHeaderLen:]
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
	if err := w.frame(false, (*w.out)[:maxHeaderLen+w.outN-keep], nil); err != nil {
		return err
	}
	out := (*w.out)[maxHeaderLen:]
	w.outN = copy(out, out[w.outN-keep:w.outN])
	return nil
}

// rsv1 is RSV1 in a frame's first byte, as an opcode flag: the first
// frame of a compressed message carries it (RFC 7692 §6).
const rsv1 opcode = 0x40

// startDeflate turns the message into a compressed one: nothing has been
// sent yet. The compressor starts from the history of what was sent, or
// afresh without context takeover.
func (w *messageWriter) startDeflate() {
	w.fw = getFlateWriter(w.c.deflate.sendBits)
	w.fw.ResetDict(frameSink{w}, w.c.deflate.sent.dict())
	w.out, w.outN = writeBuffers.Get().(*[]byte), 0
	w.op |= rsv1
}

// deflate compresses raw, payload of the message.
func (w *messageWriter) deflate(raw []byte) error {
	if w.fw == nil {
		w.startDeflate()
	}
	w.c.deflate.sent.add(raw)
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
	send := w.n - w.utf8.pending()
	if err := w.deflate((*w.block)[maxHeaderLen : maxHeaderLen+send]); err != nil {
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
		k := copy((*w.block)[maxHeaderLen+w.n:], p)
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
		err = w.frame(true, (*w.out)[:maxHeaderLen+w.outN-len(deflateTail)], nil)
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
func (w *messageWriter) sendDeflated(op opcode, msg []byte) error {
	w.op = op
	return w.finishDeflate(w.deflate(msg))
}
