package websocket

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"
)

// errWriterClosed is returned by a message writer used after its Close.
var errWriterClosed = errors.New("websocket: message writer already closed")

// writeBufferSize is the size of a message writer's buffer: a streamed
// message leaves in frames of this size.
const writeBufferSize = 32 << 10

// writeBuffers holds the buffers of message writers between messages, so
// that an idle connection holds none.
var writeBuffers = sync.Pool{New: func() any {
	b := make([]byte, 0, writeBufferSize)
	return &b
}}

// progressWriter writes to the network for the connection's bufio.Writer.
// A write may block for the write timeout without progress; as long as the
// client takes some bytes within each timeout, it goes on. Once Close has
// set a deadline for our close frame, no write goes past it.
type progressWriter struct{ c *Conn }

func (w progressWriter) Write(p []byte) (int, error) {
	c, written := w.c, 0
	for {
		var deadline time.Time
		if c.writeTimeout >= 0 {
			deadline = time.Now().Add(c.writeTimeout)
		}
		c.nc.SetWriteDeadline(deadline)
		// Close may have set its deadline meanwhile: the earlier wins.
		closing := false
		if by := c.closeBy.Load(); by != 0 && (deadline.IsZero() || by < deadline.UnixNano()) {
			c.nc.SetWriteDeadline(time.Unix(0, by))
			closing = true
		}
		n, err := c.nc.Write(p[written:])
		written += n
		var ne net.Error
		if err == nil || n == 0 || closing || !errors.As(err, &ne) || !ne.Timeout() {
			return written, err
		}
		// Timed out after taking some bytes: slow, not stalled.
	}
}

// writeFrame writes one data frame whose payload is head followed by body
// (RFC 6455 §5.2, unmasked as servers send, §5.1). Splitting the payload
// lets a writer send its buffer and the caller's bytes without copying.
func (c *Conn) writeFrame(op opcode, fin bool, head, body []byte) error {
	c.wmu.Lock()
	if c.closeSent {
		c.wmu.Unlock()
		return ErrConnClosed
	}
	if fx := c.stepLocked(evSend, 0, ""); fx.err != nil {
		c.wmu.Unlock()
		return fx.err
	}
	hdr := appendHeader(c.hdrBuf[:0], fin, op, len(head)+len(body))
	c.bw.Write(hdr)
	c.bw.Write(head)
	c.bw.Write(body)
	err := c.bw.Flush()
	c.wmu.Unlock()
	if err != nil {
		return c.writeFailed(err)
	}
	return nil
}

// writeControl writes a pong or our close frame.
func (c *Conn) writeControl(op opcode, payload []byte) {
	c.wmu.Lock()
	err := c.writeControlLocked(op, payload)
	c.wmu.Unlock()
	if err != nil {
		c.writeFailed(err)
	}
}

// writeControlLocked writes a control frame; wmu is held. Nothing is
// written after the close frame, and it is written once (RFC 6455 §5.5.1).
func (c *Conn) writeControlLocked(op opcode, payload []byte) error {
	if c.closeSent {
		return nil
	}
	c.closeSent = op == opClose
	frame := appendHeader(c.ctlBuf[:0], true, op, len(payload))
	frame = append(frame, payload...)
	c.bw.Write(frame)
	return c.bw.Flush()
}

// writeFailed ends the connection after a failed write.
func (c *Conn) writeFailed(err error) error {
	c.apply(c.stepLocked(evWriteFailed, 0, err.Error()))
	return c.endErr()
}

// acquireSend takes the send side for one message.
func (c *Conn) acquireSend() error {
	select {
	case c.sendTok <- struct{}{}:
		return nil
	case <-c.done:
		return ErrConnClosed
	}
}

func (c *Conn) releaseSend() { <-c.sendTok }

// SendText sends msg as one text message. Text that is not valid UTF-8 is
// refused with an error and nothing is sent. Once the connection has
// started closing, it returns ErrConnClosed.
func (c *Conn) SendText(msg string) error {
	if !utf8.ValidString(msg) {
		return errInvalidUTF8
	}
	// The frame is only read from, so the string's bytes need no copy.
	return c.sendWhole(opText, unsafe.Slice(unsafe.StringData(msg), len(msg)))
}

// SendBinary sends msg as one binary message. Once the connection has
// started closing, it returns ErrConnClosed.
func (c *Conn) SendBinary(msg []byte) error {
	return c.sendWhole(opBinary, msg)
}

// sendWhole sends a message as a single frame.
func (c *Conn) sendWhole(op opcode, msg []byte) error {
	if err := c.acquireSend(); err != nil {
		return err
	}
	defer c.releaseSend()
	return c.writeFrame(op, true, nil, msg)
}

// SendMessage starts a message of type tp and returns a writer for its
// payload. The writer streams: the payload leaves in frames as its buffer
// fills, and Close sends the final frame. The writer holds the send side
// from this call until its Close, so other senders wait: always close it.
// For Text, bytes that are not valid UTF-8 are refused by Write, and Close
// refuses to end the message inside a character (it drops the incomplete
// character and returns an error), so no invalid text reaches the wire.
// A type other than Text or Binary gives ErrMessageType; once the
// connection has started closing, ErrConnClosed.
func (c *Conn) SendMessage(tp MessageType) (io.WriteCloser, error) {
	if tp != Text && tp != Binary {
		return nil, ErrMessageType
	}
	if err := c.acquireSend(); err != nil {
		return nil, err
	}
	if fx := c.stepLocked(evSend, 0, ""); fx.err != nil {
		c.releaseSend()
		return nil, fx.err
	}
	c.w.start(opcode(tp))
	return &c.w, nil
}

// messageWriter is the writer SendMessage returns; each Conn has one,
// used by one message at a time under sendTok.
type messageWriter struct {
	c      *Conn
	op     opcode // of the next frame: the message type, then continuation
	text   bool
	closed bool
	buf    *[]byte // pooled while a message is in progress
	utf8   utf8Validator
}

func (w *messageWriter) start(op opcode) {
	w.op, w.text, w.closed = op, op == opText, false
	w.buf = writeBuffers.Get().(*[]byte)
	w.utf8 = utf8Validator{}
}

// Write adds p to the message; see [Conn.SendMessage].
func (w *messageWriter) Write(p []byte) (int, error) {
	if w.closed {
		return 0, errWriterClosed
	}
	// Even bytes that would only be buffered are refused once the
	// connection has started closing.
	if fx := w.c.stepLocked(evSend, 0, ""); fx.err != nil {
		return 0, fx.err
	}
	var err error
	if w.text {
		if v := w.utf8; v.feed(p) {
			w.utf8 = v
		} else {
			// Take the valid start of p, refuse the rest.
			n := 0
			for n < len(p) && w.utf8.step(p[n]) {
				n++
			}
			p, err = p[:n], errInvalidUTF8
		}
	}
	buf := *w.buf
	if len(buf)+len(p) <= cap(buf) {
		*w.buf = append(buf, p...)
		return len(p), err
	}
	// Send what is buffered and p as one frame, except an incomplete
	// character at the end, which waits for its remaining bytes.
	send := len(buf) + len(p) - w.utf8.pending()
	head, body := buf[:min(send, len(buf))], p[:max(send-len(buf), 0)]
	if ferr := w.frame(false, head, body); ferr != nil {
		return 0, ferr
	}
	var tail [utf8.UTFMax]byte
	n := copy(tail[:], buf[len(head):])
	n += copy(tail[n:], p[len(body):])
	*w.buf = append(buf[:0], tail[:n]...)
	return len(p), err
}

// ReadFrom copies r to the message until io.EOF, reading straight into
// the writer's buffer, so that io.Copy from a received message to a new
// one needs no other buffer.
func (w *messageWriter) ReadFrom(r io.Reader) (n int64, err error) {
	if w.closed {
		return 0, errWriterClosed
	}
	if fx := w.c.stepLocked(evSend, 0, ""); fx.err != nil {
		return 0, fx.err
	}
	for {
		buf := *w.buf
		if len(buf) == cap(buf) {
			if err := w.flush(); err != nil {
				return n, err
			}
			buf = *w.buf
		}
		m, rerr := r.Read(buf[len(buf):cap(buf)])
		if v := w.utf8; w.text {
			if !v.feed(buf[len(buf) : len(buf)+m]) {
				return n, errInvalidUTF8
			}
			w.utf8 = v
		}
		*w.buf = buf[:len(buf)+m]
		n += int64(m)
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

// flush sends the full buffer as a frame, keeping back an incomplete
// character at its end.
func (w *messageWriter) flush() error {
	buf := *w.buf
	send := len(buf) - w.utf8.pending()
	if err := w.frame(false, buf[:send], nil); err != nil {
		return err
	}
	*w.buf = append(buf[:0], buf[send:]...)
	return nil
}

// frame sends one frame of the message.
func (w *messageWriter) frame(fin bool, head, body []byte) error {
	err := w.c.writeFrame(w.op, fin, head, body)
	w.op = opContinuation
	return err
}

// Close sends the final frame of the message and lets other senders go.
func (w *messageWriter) Close() error {
	if w.closed {
		return errWriterClosed
	}
	w.closed = true
	var err error
	buf := *w.buf
	if w.text && !w.utf8.complete() {
		buf, err = buf[:len(buf)-w.utf8.pending()], errInvalidUTF8
	}
	if ferr := w.frame(true, buf, nil); ferr != nil {
		err = ferr
	}
	*w.buf = buf[:0]
	writeBuffers.Put(w.buf)
	w.buf = nil
	w.c.releaseSend()
	return err
}
