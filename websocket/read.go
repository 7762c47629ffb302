package websocket

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"unsafe"

	"github.com/wsmachine/wsmachine/websocket/internal/core"
)

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
	for c.buffered() < 2 || c.buffered() < core.HeaderLen((*c.in.buf)[c.in.r+1]) {
		if err := c.fill(); err != nil {
			return c.readFailed(err)
		}
	}
	return c.takeFrame()
}

// takeFrame is nextFrame once the header is in the buffer: the protocol
// takes the frame, of a control frame all of it, which is peeked whole
// before any of it is consumed, so that an aborted background read leaves
// the stream intact.
func (c *Conn) takeFrame() error {
	for {
		n, need, in := c.p.Frame((*c.in.buf)[c.in.r:c.in.w])
		if in.Ev != core.EvNone {
			err := c.take(&in) // before consume: a pong's payload is in the buffer
			c.consume(n)
			return err
		}
		if _, err := c.peek(need); err != nil {
			return c.readFailed(err)
		}
	}
}

// take steps what the peer's bytes amount to and carries out its effects:
// the one path from the bytes read to the state machine. It returns what
// the reader gets: nil to go on, ErrConnClosed after the peer's close
// frame, why the connection failed after a violation.
func (c *Conn) take(in *core.Input) error {
	switch in.Ev {
	case core.EvNone, core.EvRecvData: // RecvData is stepped as its payload is taken (recvData)
		return nil
	}
	c.apply(c.stepLocked(in.Ev, in.Code, in.Reason), in.Payload)
	switch in.Ev {
	case core.EvRecvPong:
		c.stats.pongsIn.Add(1)
		c.pongArrived(in.Payload)
	case core.EvRecvClose:
		return ErrConnClosed
	case core.EvProtocolError:
		return c.endErr()
	}
	return nil
}

// readFailed handles an error from the network read side.
func (c *Conn) readFailed(err error) error {
	var ne net.Error
	timeout := errors.As(err, &ne) && ne.Timeout()
	if timeout {
		c.mu.Lock()
		interrupted := c.aborting
		canceled := interrupted && c.readCanceled()
		c.mu.Unlock()
		if interrupted {
			// The stream is intact; whoever takes the read side next
			// goes on from here.
			if canceled {
				return errReadCanceled
			}
			return ErrConnClosed
		}
	}
	reason := ""
	switch {
	case timeout && c.idleTimeout > 0: // beforeNetRead's deadline
		c.stats.idleTimedOut.Store(true)
		reason = "nothing from the " + c.p.Peer() + " for " + c.idleTimeout.String()
	case err != io.EOF:
		reason = err.Error()
	}
	c.apply(c.stepLocked(core.EvReadFailed, 0, reason), nil)
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
	// Written out rather than receiveMessage(nil): a frame less between
	// the receive call and the network (see nextFrame on stack depth).
	c.recvMu.Lock()
	defer c.recvMu.Unlock()
	if err := c.acquireRead(); err != nil {
		return 0, nil, err
	}
	defer c.releaseRead()
	if err := c.startMessage(); err != nil {
		return 0, nil, err
	}
	return MessageType(c.p.MessageOp()), c.messageReader(), nil
}

// receiveMessage is ReceiveMessageContext.
func (c *Conn) receiveMessage(ctx context.Context) (MessageType, io.Reader, error) {
	if err := c.lockRecv(ctx); err != nil {
		return 0, nil, err
	}
	defer c.recvMu.Unlock()
	if err := c.acquireRead(); err != nil {
		return 0, nil, err
	}
	defer c.releaseRead()
	if err := c.startMessageContext(ctx); err != nil {
		return 0, nil, err
	}
	return MessageType(c.p.MessageOp()), c.messageReader(), nil
}

// messageReader returns a reader for the message just started. Readers
// alternate between two per connection, so that the reader of the
// previous message, if still used, cannot read this one. A reader whose
// message was not read to its end may still be in use: it is left to
// the garbage collector and replaced.
func (c *Conn) messageReader() *messageReader {
	slot := &c.msgReaders[c.p.Seq()&1]
	r := *slot
	if r == nil || !r.ended {
		r = &messageReader{c: c}
		*slot = r
	}
	r.seq, r.ended = c.p.Seq(), false
	return r
}

// startMessage skips the rest of the previous message and reads frames
// until a new message starts (startMessageContext: under a context).
func (c *Conn) startMessage() error {
	if c.p.SkipUnfinished() {
		if err := c.discardMessage(); err != nil {
			return err
		}
	}
	for {
		if err := c.allowed(core.EvReceive); err != nil {
			return err // it ended or started closing while we waited (K10, T1, T2)
		}
		if c.p.TakeReady() {
			c.stats.msgsIn.Add(1)
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
func (c *Conn) readPayload(p []byte) (n int, err error) {
	if c.p.Compressed() && c.p.InMessage() {
		n, err = c.readInflated(p)
	} else {
		n, err = c.readWire(p, false)
	}
	c.stats.payloadIn.Add(uint64(n))
	return n, err
}

// readWire reads payload of the current message into p as it is on the
// wire, unmasked. For a message that is inflated (deflated true) the text
// is checked after inflating, and the end of its frames is io.EOF to the
// decompressor, not yet the end of the message.
func (c *Conn) readWire(p []byte, deflated bool) (int, error) {
	for step := c.p.Next(); step != core.WirePayload; step = c.p.Next() {
		if step == core.WireEnd {
			if !c.p.InMessage() || deflated {
				return 0, io.EOF
			}
			return 0, c.endMessage()
		}
		if c.recvData() != core.DeliverData { // K1, T1, T3: not for the receiver
			return 0, c.endErr()
		}
		if err := c.nextFrame(); err != nil {
			return 0, err
		}
	}
	if c.recvData() != core.DeliverData {
		return 0, c.endErr()
	}
	n, err := c.readIn(p[:c.p.Wanted(len(p))])
	return c.tookPayload(p[:n], deflated, err)
}

// tookPayload hands payload just read to the protocol, and carries out
// what it says. A function of its own, so that the protocol's answer is
// not in readWire's frame, which is on the stack while a receiver waits
// for payload (see nextFrame on stack depth).
//
//go:noinline
func (c *Conn) tookPayload(b []byte, deflated bool, err error) (int, error) {
	bad, end := c.p.Payload(b, deflated)
	if bad != nil {
		return 0, c.take(bad)
	}
	if err != nil {
		return len(b), c.readFailed(err)
	}
	if end {
		return len(b), c.endMessage()
	}
	return len(b), nil
}

// endMessage finishes a message whose last byte has been read: io.EOF,
// or the connection's error for a text ending inside a character.
func (c *Conn) endMessage() error {
	if bad := c.p.EndMessage(); bad != nil {
		return c.take(bad)
	}
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
	if current, skipped := c.p.Reader(r.seq); !current {
		if skipped {
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
	buf := (*block)[core.MaxHeaderLen:]
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
	return c.receiveText(nil, maxLength)
}

// receiveText is ReceiveText; ctx, if not nil, may cancel its wait.
func (c *Conn) receiveText(ctx context.Context, maxLength int) (string, error) {
	b, err := c.receiveLimited(ctx, Text, nil, max(maxLength, 0))
	if err == ErrTooLarge {
		b = b[:len(b)-core.OpenTail(b)]
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
	b, err := c.receiveLimited(nil, Binary, buf[:0:len(buf)], len(buf))
	return len(b), err
}

// receiveLimited appends a message of type want to buf, growing it up to
// limit bytes. A longer message leaves buf holding its first limit bytes,
// is discarded, and gives ErrTooLarge.
func (c *Conn) receiveLimited(ctx context.Context, want MessageType, buf []byte, limit int) ([]byte, error) {
	if err := c.lockRecv(ctx); err != nil {
		return buf, err
	}
	defer c.recvMu.Unlock()
	if err := c.acquireRead(); err != nil {
		return buf, err
	}
	defer c.releaseRead()
	var err error
	if ctx != nil {
		err = c.startMessageContext(ctx)
	} else {
		err = c.startMessage()
	}
	if err != nil {
		return buf, err
	}
	if MessageType(c.p.MessageOp()) != want {
		if err := c.discardMessage(); err != nil {
			return buf, err
		}
		return buf, ErrMessageType
	}
	for len(buf) < limit {
		if len(buf) == cap(buf) {
			// Grow by what the current frame announces, within limit.
			grow := int(min(uint64(limit-len(buf)), max(c.p.Remaining(), 512)))
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
