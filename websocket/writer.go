package websocket

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/wsmachine/wsmachine/websocket/internal/core"

	"github.com/klauspost/compress/flate"
)

// The message writer of SendMessage: a message streamed in frames, and
// given up, never cut short silently, when it cannot be finished.

// errWriterClosed is returned by a message writer used after its Close.
var errWriterClosed = errors.New("websocket: message writer already closed")

// SendMessage starts a message of type tp and returns a writer for its
// payload. The writer streams: the payload leaves in frames as its buffer
// fills, and Close sends the final frame. The writer holds the send side
// from this call until its Close, so other senders wait: always close it.
// The writer is for one goroutine at a time.
// A type other than Text or Binary gives ErrMessageType; once the
// connection has started closing, ErrConnClosed.
//
// A message is never cut short silently: the peer receives it whole or
// learns that it was not. The writer fails, and gives up its message,
// when Write refuses bytes that are not valid UTF-8 (for Text), when the
// source of its ReadFrom (io.Copy) fails or yields invalid UTF-8, when
// Close would end a text message inside a character, and when
// CloseWithError abandons it on purpose. If no frame of the message has
// left yet (the first leaves when the 64 KiB buffer fills, compressed or
// not), nothing of it is sent and the connection stays usable; the
// failing call and Close return the cause. Otherwise the
// connection is closed with StatusInternalServerError (1011, reason
// "message abandoned"), without waiting for the peer's answer, and they
// return an error that wraps both ErrConnClosed and the cause.
//
// The writer is a [MessageWriter]; the type assertion gives its
// CloseWithError.
func (c *Conn) SendMessage(tp MessageType) (io.WriteCloser, error) {
	return c.sendMessage(nil, tp)
}

// sendMessage is SendMessage; ctx, if not nil, may cancel it.
func (c *Conn) sendMessage(ctx context.Context, tp MessageType) (io.WriteCloser, error) {
	if tp != Text && tp != Binary {
		return nil, ErrMessageType
	}
	if err := c.acquireSendContext(ctx); err != nil {
		return nil, err
	}
	if err := c.allowed(core.EvSend); err != nil {
		c.releaseSend()
		return nil, err
	}
	c.w.start(core.Opcode(tp))
	return &c.w, nil
}

// MessageWriter is what the writer from [Conn.SendMessage] is, besides an
// io.WriteCloser: it can give up its message. Its methods, CloseWithError
// too, are for one goroutine at a time, as a bufio.Writer's are: unlike
// io.PipeWriter's, CloseWithError does not interrupt a Write or an
// io.Copy in progress; it ends the message between them.
//
//	w, err := c.SendMessage(websocket.Text)
//	...
//	if err := encode(w, v); err != nil {
//		w.(websocket.MessageWriter).CloseWithError(err) // the peer gets no half message
//		return err
//	}
//	return w.Close()
type MessageWriter interface {
	io.WriteCloser
	// CloseWithError gives up the message and lets other senders go;
	// with a nil err it is Close. If no frame of the message has left
	// yet it sends nothing and returns nil: the connection goes on.
	// Otherwise it closes the connection with 1011 and returns an error
	// wrapping ErrConnClosed and err. After a failed Write or ReadFrom
	// it returns their error, as Close does.
	CloseWithError(err error) error
}

// messageWriter is the writer SendMessage returns; each Conn has one,
// used by one message at a time under sendTok.
type messageWriter struct {
	c      *Conn
	op     core.Opcode // of the next frame: the message type, then continuation
	text   bool
	closed bool
	sent   bool      // a frame of the message has gone to the network
	utf8   core.UTF8 // 4 bytes, here beside the flags: Conn stays in its size class
	failed error     // the message was given up: what the writer's calls return
	// block is pooled while a message is in progress: room for a frame
	// header, then n bytes of buffered payload.
	block *[]byte
	n     int
	// With permessage-deflate, a message that reaches the threshold is
	// compressed (see deflate.go): the payload still goes through
	// block, into fw, whose output waits in out for its frame.
	fw   *flate.Writer // nil: not (yet) compressing
	out  *[]byte       // pooled while compressing, room for a header in front
	outN int
}

func (w *messageWriter) start(op core.Opcode) {
	w.op, w.text, w.closed, w.sent, w.failed = op, op == core.OpText, false, false, nil
	w.block, w.n = writeBuffers.Get().(*[]byte), 0
	w.utf8 = core.UTF8{}
}

// compressing reports whether the message is compressed: once it is
// under way, if it has been decided.
func (w *messageWriter) compressing() bool { return w.fw != nil }

// buffered is the payload waiting to be sent, with the header's room
// in front of it.
func (w *messageWriter) buffered() []byte { return (*w.block)[:core.MaxHeaderLen+w.n] }

// keep makes the buffered payload start with its bytes from, followed
// by more.
func (w *messageWriter) keep(from int, more []byte) {
	payload := (*w.block)[core.MaxHeaderLen:]
	w.n = copy(payload, payload[from:w.n])
	w.n += copy(payload[w.n:], more)
}

// usable is why Write and ReadFrom may not add to the message, if they may
// not: the writer is closed, its message given up, or the connection has
// started closing (even bytes that would only be buffered are refused).
func (w *messageWriter) usable() error {
	switch {
	case w.closed:
		return errWriterClosed
	case w.failed != nil:
		return w.failed
	}
	return w.c.allowed(core.EvSend)
}

// Write adds p to the message; see [Conn.SendMessage].
func (w *messageWriter) Write(p []byte) (int, error) {
	if err := w.usable(); err != nil {
		return 0, err
	}
	n, refused, err := w.write(p)
	w.c.stats.payloadOut.Add(uint64(n))
	if err != nil {
		return n, w.writeErr(err)
	}
	if refused {
		w.fail(errInvalidUTF8)
		err = w.failed
	}
	return n, err
}

// write takes the valid start of p, sending frames as the buffer fills,
// and reports whether it refused the rest.
func (w *messageWriter) write(p []byte) (n int, refused bool, err error) {
	if w.text {
		if v := w.utf8; v.Feed(p) {
			w.utf8 = v
		} else {
			// Take the valid start of p, refuse the rest.
			n := 0
			for n < len(p) && w.utf8.Step(p[n]) {
				n++
			}
			p, refused = p[:n], true
		}
	}
	if w.n+len(p) <= writeBufferSize {
		w.n += copy((*w.block)[core.MaxHeaderLen+w.n:], p)
		return len(p), refused, nil
	}
	if w.c.deflate != nil { // at least a full buffer: over any threshold worth having
		if err := w.deflateMore(p); err != nil {
			return 0, false, err
		}
		return len(p), refused, nil
	}
	// Send what is buffered and p as one frame, except an incomplete
	// character at the end, which waits for its remaining bytes.
	send := w.n + len(p) - w.utf8.Pending()
	head, body := min(send, w.n), p[:max(send-w.n, 0)]
	if err := w.frame(false, (*w.block)[:core.MaxHeaderLen+head], body); err != nil {
		return 0, false, err
	}
	w.keep(head, p[len(body):])
	return len(p), refused, nil
}

// ReadFrom copies r to the message until io.EOF, reading straight into
// the writer's buffer, so that io.Copy from a received message to a new
// one needs no other buffer. If r fails, or yields invalid UTF-8 for
// Text, the message is given up (see [Conn.SendMessage]).
func (w *messageWriter) ReadFrom(r io.Reader) (n int64, err error) {
	if err := w.usable(); err != nil {
		return 0, err
	}
	for {
		if w.n == writeBufferSize {
			if err := w.flush(); err != nil {
				return n, w.writeErr(err)
			}
		}
		space := (*w.block)[core.MaxHeaderLen+w.n:]
		m, rerr := r.Read(space)
		if v := w.utf8; w.text {
			if !v.Feed(space[:m]) {
				w.fail(errInvalidUTF8)
				return n, w.failed
			}
			w.utf8 = v
		}
		w.n += m
		n += int64(m)
		w.c.stats.payloadOut.Add(uint64(m))
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			w.fail(rerr)
			return n, w.failed
		}
	}
}

// flush sends the full buffer as a frame, keeping back an incomplete
// character at its end; with compression, it compresses it.
func (w *messageWriter) flush() error {
	if w.c.deflate != nil {
		return w.deflateBuffered()
	}
	send := w.n - w.utf8.Pending()
	if err := w.frame(false, (*w.block)[:core.MaxHeaderLen+send], nil); err != nil {
		return err
	}
	w.keep(send, nil)
	return nil
}

// frame sends one frame of the message.
func (w *messageWriter) frame(fin bool, room, body []byte) error {
	tried, err := w.c.writeFrame(w.op, fin, room, body)
	w.op = core.OpContinuation
	w.sent = w.sent || tried
	return err
}

// Close sends the final frame of the message and lets other senders go.
// A text message that would end inside a character is given up instead
// (see [Conn.SendMessage]), and so is one whose Write or ReadFrom failed:
// Close returns their error.
func (w *messageWriter) Close() error {
	if w.closed {
		return errWriterClosed
	}
	w.closed = true
	defer w.c.releaseSend()
	if w.failed == nil && w.text && !w.utf8.Complete() {
		w.fail(errInvalidUTF8)
	}
	if w.failed != nil {
		return w.failed
	}
	var err error
	if z := w.c.deflate; z != nil && (w.compressing() || w.n >= z.threshold) {
		err = w.finishDeflate(w.deflate((*w.block)[core.MaxHeaderLen : core.MaxHeaderLen+w.n]))
	} else {
		err = w.frame(true, w.buffered(), nil)
	}
	w.release()
	if err != nil {
		return w.writeErr(err)
	}
	if err == nil {
		w.c.stats.msgsOut.Add(1)
	}
	return err
}

// CloseWithError gives up the message; see [MessageWriter].
func (w *messageWriter) CloseWithError(err error) error {
	if err == nil {
		return w.Close()
	}
	if w.closed {
		return errWriterClosed
	}
	w.closed = true
	defer w.c.releaseSend()
	if w.failed != nil {
		return w.failed
	}
	if w.fail(err) {
		return w.failed
	}
	return nil
}

// fail gives up the message for cause and records what the writer's
// calls return from then on; it reports whether the message was cut on
// the wire. If no frame of it has left, nothing of it is sent and the
// connection goes on. Otherwise the peer has part of it: the connection
// is closed (O14) so that the peer does not take that part for the
// message. (A message being compressed has sent its first frame when
// compressing began, see deflateBuffered: its bytes are in the history
// of context takeover, which the peer must have too.)
func (w *messageWriter) fail(cause error) (cut bool) {
	cut = w.sent || w.inSentHistory()
	w.release()
	if !cut {
		w.failed = cause
		return false
	}
	if err := w.c.abandonMessage(); err != nil { // K14, T1, T3: closing or ended already
		w.failed = fmt.Errorf("%w: message given up: %w", err, cause)
		return true
	}
	w.failed = fmt.Errorf("%w: %s after part of it was sent (close %d): %w",
		ErrConnClosed, core.ReasonAbandoned, StatusInternalServerError, cause)
	return true
}

// inSentHistory reports whether the message went into the history of
// context takeover, which the peer must then have too, although no frame
// of it may have left (a send whose context ended before its first).
// Without context takeover, a message of which nothing has left leaves
// nothing behind.
func (w *messageWriter) inSentHistory() bool {
	z := w.c.deflate
	return z != nil && z.sent != nil && (w.compressing() || w.op&rsv1 != 0)
}

// writeErr is what the writer's call returns when sending a frame
// failed with err: see stopped for a send its context stopped. Not
// inlined: it keeps that case out of the frames of the calls on every
// message's path (see nextFrame on stack depth).
//
//go:noinline
func (w *messageWriter) writeErr(err error) error {
	if err == errWriteCanceled {
		return w.stopped()
	}
	return err
}

// stopped gives up the message whose write its send's context stopped
// (cancel.go) and returns what the writer's calls return from then on:
// the context's error, wrapped in ErrConnClosed's if a frame of the
// message had left and the connection is closed for it (O14).
func (w *messageWriter) stopped() error {
	ctx := w.c.stats.calls.Load().sendCtx
	if !w.fail(fmt.Errorf("websocket: send cancelled: %w", ctx.Err())) {
		w.failed = w.c.canceled(ctx, "send")
	}
	return w.failed
}

// release gives the message's buffers back to their pools.
func (w *messageWriter) release() {
	if w.fw != nil {
		w.stopDeflate()
	}
	if w.block != nil {
		writeBuffers.Put(w.block)
		w.block, w.n = nil, 0
	}
}
