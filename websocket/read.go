package websocket

import (
	"errors"
	"io"
	"net"
	"slices"
	"unsafe"
)

// readState is the position of the read side in the client's frame stream;
// guarded by Conn.readMu.
type readState struct {
	h         header // the data frame being read
	remaining uint64 // payload bytes of h not read yet
	keyPos    int    // position in h's masking key
	msgSize   uint64 // the lengths of an uncompressed message's frames so far, added up
	inMessage bool   // a data message started and its last byte is not read yet
	ready     bool   // a message started that no receive call has returned yet
	seq       uint64 // counts the messages started
	discarded uint64 // the last message a receive call skipped unfinished
	msgType   MessageType
	utf8      utf8Validator
	// compressed: the message came with RSV1 (permessage-deflate) and
	// is read through inflate.
	compressed bool
	inflate    inflating
}

// errReaderStale is returned by a message reader whose message was skipped
// by a later receive call before it was read to its end.
var errReaderStale = errors.New("websocket: message skipped by a later receive call before it was read")

// nextFrame reads one frame header (RFC 6455 §5.2) and checks it. A control
// frame is read whole and acted on; for a data frame the header is taken
// in and the payload left for the receiver. Only readMu's holder calls it.
//
// An idle connection waits here, so the path to the poller is kept short:
// the stack a goroutine needs while it waits is what it keeps (see
// rawio_linux.go).
func (c *Conn) nextFrame() error {
	for c.buffered() < 2 || c.buffered() < headerLen((*c.in.buf)[c.in.r+1]) {
		if err := c.fill(); err != nil {
			return c.readFailed(err)
		}
	}
	return c.takeFrame()
}

// takeFrame is nextFrame once the header is in the buffer.
func (c *Conn) takeFrame() error {
	b := (*c.in.buf)[c.in.r:c.in.w]
	n := headerLen(b[1])
	h, minimal := parseHeader(b)
	if pe := checkHeader(h, minimal, checkFlagsOf(c.rd.inMessage, c.deflate != nil, c.client)); pe != nil {
		return c.protocolError(pe)
	}
	if h.op.isControl() {
		// Peek the whole frame before taking any of it, so that an
		// aborted background read leaves the stream intact.
		b, err := c.peek(n + int(h.length))
		if err != nil {
			return c.readFailed(err)
		}
		// Unmasked in place: the frame is ours until consumed.
		payload := b[n:]
		mask(h.key, 0, payload)
		err = c.control(h.op, payload)
		c.consume(n + int(h.length))
		return err
	}
	size := h.length
	compressed := h.rsv&rsvDeflate != 0
	if h.op == opContinuation {
		// With a limit, both terms are below 2^63, so the sum fits;
		// without one, the sum is never compared.
		size += c.rd.msgSize
		compressed = c.rd.compressed
	}
	switch {
	case compressed:
		// Limited by what it inflates to, checked as it inflates
		// (readInflated), whatever its length on the wire: an encoder
		// that emits small stored blocks makes incompressible data
		// longer than itself by more than any fixed margin.
		size = 0
	case c.maxMessageSize >= 0 && size > uint64(c.maxMessageSize):
		return c.protocolError(&protocolError{code: StatusTooLarge, reason: "message too large"})
	}
	c.consume(n)
	c.rd.h, c.rd.remaining, c.rd.keyPos, c.rd.msgSize = h, h.length, 0, size
	if h.op != opContinuation {
		c.rd.inMessage, c.rd.ready = true, true
		c.rd.seq++
		c.rd.msgType = MessageType(h.op)
		c.rd.utf8 = utf8Validator{}
		c.rd.compressed, c.rd.inflate.n = compressed, 0
	}
	return nil
}

// control acts on a control frame (RFC 6455 §5.5).
func (c *Conn) control(op opcode, payload []byte) error {
	switch op {
	case opPing:
		if fx := c.stepLocked(evRecvPing, 0, ""); fx.pong {
			c.writeControl(opPong, payload)
		}
	case opPong:
		c.stepLocked(evRecvPong, 0, "")
	case opClose:
		code, reason, pe := parseClosePayload(payload)
		if pe != nil {
			return c.protocolError(pe)
		}
		c.apply(c.stepLocked(evRecvClose, code, reason))
		return ErrConnClosed
	}
	return nil
}

// protocolError fails the connection for a violation by the client
// (RFC 6455 §7.1.7): close frame with the code, then TCP closed.
func (c *Conn) protocolError(pe *protocolError) error {
	c.apply(c.stepLocked(evProtocolError, pe.code, pe.reason))
	return c.endErr()
}

// readFailed handles an error from the network read side.
func (c *Conn) readFailed(err error) error {
	var ne net.Error
	timeout := errors.As(err, &ne) && ne.Timeout()
	if timeout {
		c.mu.Lock()
		interrupted := c.aborting
		c.mu.Unlock()
		if interrupted {
			// The stream is intact; whoever takes the read side next
			// goes on from here.
			return ErrConnClosed
		}
	}
	reason := ""
	switch {
	case timeout && c.idleTimeout > 0: // beforeNetRead's deadline
		reason = "nothing from the " + c.peer() + " for " + c.idleTimeout.String()
	case err != io.EOF:
		reason = err.Error()
	}
	c.apply(c.stepLocked(evReadFailed, 0, reason))
	return c.endErr()
}

// ReceiveMessage waits for the next data message and returns its type and
// a reader of its payload. The reader streams: it yields the payload as the
// frames arrive, reassembles fragmented messages, and for text checks the
// UTF-8 as it goes, failing the connection with StatusInvalidData at the
// first invalid byte. It returns io.EOF at the end of the message.
//
// Read the message to its end before the next receive call: the reader is
// valid until then, and the next call discards whatever was left unread.
// (Readers are reused: do not keep one past the next receive call.) The
// reader implements io.WriterTo, so io.Copy from it allocates nothing.
// While a message waits unread, control frames behind it are not
// processed. Once the connection has ended or started closing, the error
// is ErrConnClosed, or wraps it saying why the connection failed: every
// receive gets the same error, whether it was waiting when the connection
// failed or came after.
func (c *Conn) ReceiveMessage() (MessageType, io.Reader, error) {
	c.recvMu.Lock()
	defer c.recvMu.Unlock()
	if err := c.acquireRead(); err != nil {
		return 0, nil, err
	}
	defer c.releaseRead()
	if err := c.startMessage(); err != nil {
		return 0, nil, err
	}
	return c.rd.msgType, c.messageReader(), nil
}

// messageReader returns a reader for the message just started. Readers
// alternate between two per connection, so that the reader of the
// previous message, if still used, cannot read this one. A reader whose
// message was not read to its end may still be in use: it is left to
// the garbage collector and replaced.
func (c *Conn) messageReader() *messageReader {
	slot := &c.msgReaders[c.rd.seq&1]
	r := *slot
	if r == nil || !r.ended {
		r = &messageReader{c: c}
		*slot = r
	}
	r.seq, r.ended = c.rd.seq, false
	return r
}

// startMessage skips the rest of the previous message and reads frames
// until a new message starts.
func (c *Conn) startMessage() error {
	if c.rd.inMessage && !c.rd.ready {
		c.rd.discarded = c.rd.seq
		if err := c.discardMessage(); err != nil {
			return err
		}
	}
	for {
		if err := c.allowed(evReceive); err != nil {
			return err // it ended or started closing while we waited (K10, T1, T2)
		}
		if c.rd.ready {
			c.rd.ready = false
			return nil
		}
		if err := c.nextFrame(); err != nil {
			return err
		}
	}
}

// discardMessage reads the rest of the current message, still checking it.
func (c *Conn) discardMessage() error {
	var buf [512]byte
	for {
		_, err := c.readPayload(buf[:])
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// readPayload reads payload of the current message into p (readMu held),
// inflated if it is compressed.
func (c *Conn) readPayload(p []byte) (int, error) {
	if c.rd.compressed && c.rd.inMessage {
		return c.readInflated(p)
	}
	return c.readWire(p, false)
}

// readWire reads payload of the current message into p as it is on the
// wire, unmasked. For a message that is inflated (deflated true) the text
// is checked after inflating, and the end of its frames is io.EOF to the
// decompressor, not yet the end of the message.
func (c *Conn) readWire(p []byte, deflated bool) (int, error) {
	for c.rd.remaining == 0 {
		if !c.rd.inMessage {
			return 0, io.EOF
		}
		if c.rd.h.fin {
			if deflated {
				return 0, io.EOF
			}
			return 0, c.endMessage()
		}
		if c.recvData() != deliverData { // K1, T1, T3: not for the receiver
			return 0, c.endErr()
		}
		if err := c.nextFrame(); err != nil {
			return 0, err
		}
	}
	if c.recvData() != deliverData {
		return 0, c.endErr()
	}
	if uint64(len(p)) > c.rd.remaining {
		p = p[:c.rd.remaining]
	}
	n, err := c.readIn(p)
	if c.rd.h.masked {
		c.rd.keyPos = mask(c.rd.h.key, c.rd.keyPos, p[:n])
	}
	c.rd.remaining -= uint64(n)
	if !deflated && c.rd.msgType == Text && !c.rd.utf8.feed(p[:n]) {
		return 0, c.protocolError(&protocolError{StatusInvalidData, "invalid UTF-8 in text message"})
	}
	if err != nil {
		return n, c.readFailed(err)
	}
	if c.rd.remaining == 0 && c.rd.h.fin && !deflated {
		return n, c.endMessage()
	}
	return n, nil
}

// endMessage finishes a message whose last byte has been read.
func (c *Conn) endMessage() error {
	if c.rd.msgType == Text && !c.rd.utf8.complete() {
		return c.protocolError(&protocolError{StatusInvalidData, "text message ends inside a UTF-8 sequence"})
	}
	c.rd.inMessage = false
	return io.EOF
}

// messageReader is the reader ReceiveMessage returns; seq ties it to the
// message it was returned for. Fields are guarded by readMu.
type messageReader struct {
	c     *Conn
	seq   uint64
	ended bool // it returned io.EOF at the end of its message
}

// Read reads payload of the message; see [Conn.ReceiveMessage].
func (r *messageReader) Read(p []byte) (int, error) {
	c := r.c
	if err := c.acquireRead(); err != nil {
		return 0, err
	}
	defer c.releaseRead()
	if r.seq != c.rd.seq || !c.rd.inMessage {
		if r.seq == c.rd.discarded {
			return 0, errReaderStale
		}
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	n, err := c.readPayload(p)
	r.ended = err == io.EOF
	return n, err
}

// WriteTo writes the rest of the message to w; io.Copy uses it. To a
// writer from SendMessage it hands over to that writer's ReadFrom, which
// reads straight into the writer's buffer; for any other writer it
// borrows a pooled buffer for the copy.
func (r *messageReader) WriteTo(w io.Writer) (n int64, err error) {
	if mw, ok := w.(*messageWriter); ok {
		return mw.ReadFrom(r)
	}
	return r.copyTo(w)
}

// copyTo is WriteTo to a writer other than a message writer. It is a
// function of its own so that WriteTo, on the path of every echoed
// message, stays small (see nextFrame on stack depth).
func (r *messageReader) copyTo(w io.Writer) (n int64, err error) {
	block := writeBuffers.Get().(*[]byte)
	defer writeBuffers.Put(block)
	buf := (*block)[maxHeaderLen:]
	for {
		m, rerr := r.Read(buf)
		if m > 0 {
			k, werr := w.Write(buf[:m])
			n += int64(k)
			if werr == nil && k < m {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				return n, werr
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

// ReceiveText receives a text message of at most maxLength bytes. A binary
// message is discarded and ErrMessageType returned. A longer text is cut to
// at most maxLength bytes at a character boundary, the rest discarded, and
// returned with ErrTooLarge. In both cases the connection stays usable.
func (c *Conn) ReceiveText(maxLength int) (string, error) {
	b, err := c.receiveLimited(Text, nil, max(maxLength, 0))
	if err == ErrTooLarge {
		b = b[:len(b)-openTail(b)]
	}
	if len(b) == 0 {
		return "", err
	}
	// b was made for this call and is not kept: the string may have it.
	return unsafe.String(&b[0], len(b)), err
}

// ReceiveBinary receives a binary message into buf and returns its length.
// A text message is discarded and ErrMessageType returned. A longer message
// fills buf, the rest is discarded, and ErrTooLarge is returned. In both
// cases the connection stays usable.
func (c *Conn) ReceiveBinary(buf []byte) (n int, err error) {
	b, err := c.receiveLimited(Binary, buf[:0:len(buf)], len(buf))
	return len(b), err
}

// receiveLimited appends a message of type want to buf, growing it up to
// limit bytes. A longer message leaves buf holding its first limit bytes,
// is discarded, and gives ErrTooLarge.
func (c *Conn) receiveLimited(want MessageType, buf []byte, limit int) ([]byte, error) {
	c.recvMu.Lock()
	defer c.recvMu.Unlock()
	if err := c.acquireRead(); err != nil {
		return buf, err
	}
	defer c.releaseRead()
	if err := c.startMessage(); err != nil {
		return buf, err
	}
	if c.rd.msgType != want {
		if err := c.discardMessage(); err != nil {
			return buf, err
		}
		return buf, ErrMessageType
	}
	for len(buf) < limit {
		if len(buf) == cap(buf) {
			// Grow by what the current frame announces, within limit.
			grow := int(min(uint64(limit-len(buf)), max(c.rd.remaining, 512)))
			buf = slices.Grow(buf, grow)
		}
		m, err := c.readPayload(buf[len(buf):min(cap(buf), limit)])
		buf = buf[:len(buf)+m]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
	// buf is full: the message fits only if nothing but empty frames remain.
	var one [1]byte
	m, err := c.readPayload(one[:])
	if m == 0 && err == io.EOF {
		return buf, nil
	}
	if err != nil && err != io.EOF {
		return buf, err
	}
	if err := c.discardMessage(); err != nil {
		return buf, err
	}
	return buf, ErrTooLarge
}
