package websocket

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/wsmachine/wsmachine/websocket/internal/core"
)

// writeBufferSize is the payload size of a message writer's buffer: a
// streamed message leaves in frames of this size.
const writeBufferSize = 64 << 10

// writeBuffers holds the buffers of message writers between messages, so
// that an idle connection holds none. Each has room for the frame header
// in front of the payload, so that a frame leaves in one write.
var writeBuffers = sync.Pool{New: func() any {
	b := make([]byte, core.MaxHeaderLen+writeBufferSize)
	return &b
}}

// writeNet writes a and then b to the network, with one system call where
// it can (writev for two pieces); wmu is held. A write may block for the
// write timeout without progress; as long as the client takes some bytes
// within each timeout, it goes on. Once Close has set a deadline for our
// close frame, no write goes past it.
// The bytes that went are counted even when the write fails, so that a
// cancelled send can tell a frame cut on the wire from one that never
// left (see cancel.go).
func (c *Conn) writeNet(a, b []byte) error {
	var n int
	var err error
	if c.raw != nil {
		n, err = c.writeRaw(a, b)
	} else {
		n, err = c.writeConn(a, b)
	}
	c.stats.wireOut.Add(uint64(n))
	return err
}

// writeConn is writeNet through net.Conn: a small frame is put together
// in a pooled buffer and written at once, a large one in two writes.
func (c *Conn) writeConn(a, b []byte) (int, error) {
	if len(b) > 0 && len(a)+len(b) <= writeBufferSize {
		block := writeBuffers.Get().(*[]byte)
		n, err := c.writeAll(append(append((*block)[:0], a...), b...))
		writeBuffers.Put(block)
		return n, err
	}
	n, err := c.writeAll(a)
	if err != nil {
		return n, err
	}
	m, err := c.writeAll(b)
	return n + m, err
}

// writeAll writes p to net.Conn with the write timeout. Moving the
// deadline costs a timer update (and on some connections, such as
// net.Pipe's, an allocation), so it is moved only when less than half the
// timeout is left; a write that then times out without progress before a
// whole timeout has passed is given the rest of it and goes on.
func (c *Conn) writeAll(p []byte) (written int, err error) {
	start := time.Now()
	for len(p) > 0 {
		closing := c.armWriteDeadline(start)
		n, err := c.nc.Write(p)
		written += n
		if err == nil {
			return written, nil
		}
		var ne net.Error
		if closing || !errors.As(err, &ne) || !ne.Timeout() {
			return written, err
		}
		if n > 0 {
			start = time.Now() // slow, not stalled: the timeout starts again
		} else if time.Since(start) >= c.writeTimeout {
			return written, err
		}
		p = p[n:]
		c.wdl = 0 // the deadline has passed
	}
	return written, nil
}

// armWriteDeadline makes sure that a write starting at start may go
// without progress for the write timeout, or until Close's deadline for
// our close frame if that is earlier, and reports the latter. wmu is held.
func (c *Conn) armWriteDeadline(start time.Time) (closing bool) {
	deadline := c.writeTimeoutFrom(start)
	// Close sets its deadline without telling wdl: once it has, always set.
	if c.closeBy.Load() == 0 {
		if deadline.IsZero() {
			return false // no deadline was ever set: Hijack cleared net/http's
		}
		if d := deadline.UnixNano(); c.wdl >= d-int64(c.writeTimeout/2) && c.wdl <= d {
			return false // the one set leaves at least half the timeout
		}
	}
	if !deadline.IsZero() {
		c.wdl = deadline.UnixNano()
	}
	return c.setWriteDeadline(deadline)
}

// writeTimeoutFrom is when a write that makes no progress from t on times
// out; zero if there is no write timeout.
func (c *Conn) writeTimeoutFrom(t time.Time) time.Time {
	if c.writeTimeout < 0 {
		return time.Time{}
	}
	return t.Add(c.writeTimeout)
}

// setWriteDeadline sets deadline (zero: none) on the connection, or
// Close's deadline for our close frame if that is earlier, and reports the
// latter. Close may set its deadline at any time: looking at it after
// setting ours makes the earlier one win, whatever the order.
func (c *Conn) setWriteDeadline(deadline time.Time) (closing bool) {
	c.nc.SetWriteDeadline(deadline)
	if c.writeInterrupted() { // a send's context ended: no wait at all (cancel.go)
		c.nc.SetWriteDeadline(aLongTimeAgo)
		return true
	}
	if by := c.closeBy.Load(); by != 0 && (deadline.IsZero() || by < deadline.UnixNano()) {
		c.nc.SetWriteDeadline(time.Unix(0, by))
		return true
	}
	return false
}

// writeFrame writes one data frame (RFC 6455 §5.2, unmasked as servers
// send, §5.1) whose payload is a buffered part followed by body. The
// buffered part is room[maxHeaderLen:], and the header goes into the room
// before it; with room nil there is no buffered part. Either way the
// payload is not copied. tried reports whether it went to the network:
// not if it was refused (the connection closing or ended).
func (c *Conn) writeFrame(op core.Opcode, fin bool, room, body []byte) (tried bool, err error) {
	c.wmu.Lock()
	if c.closeSent {
		c.wmu.Unlock()
		return false, ErrConnClosed
	}
	if err := c.allowed(core.EvSend); err != nil {
		c.wmu.Unlock()
		return false, err
	}
	size := len(body)
	if room != nil {
		size += len(room) - core.MaxHeaderLen
	}
	hdr := core.AppendHeader(c.hdrBuf[:0], fin, op, size)
	// putFrame written out: a frame less on the path of every message
	// (see nextFrame on stack depth).
	if s := c.watchedSend(); s != nil {
		err = c.putWatched(s, hdr, room, body)
	} else if c.p.Client {
		err = c.writeMasked(hdr, room, body)
	} else if room != nil {
		start := core.MaxHeaderLen - len(hdr)
		copy(room[start:], hdr)
		err = c.writeNet(room[start:], body)
	} else {
		err = c.writeNet(hdr, body)
	}
	c.wmu.Unlock()
	if err == errWriteCanceled {
		return false, err
	}
	if err != nil {
		return true, c.writeFailed(err)
	}
	return true, nil
}

// putFrame writes a data frame: its header hdr, then the payload, a
// buffered part (room after its header's room, or none) followed by
// body; wmu is held.
func (c *Conn) putFrame(hdr, room, body []byte) error {
	if c.p.Client {
		return c.writeMasked(hdr, room, body)
	}
	if room != nil {
		start := core.MaxHeaderLen - len(hdr)
		copy(room[start:], hdr)
		return c.writeNet(room[start:], body)
	}
	return c.writeNet(hdr, body)
}

// writeControl writes a pong or our close frame.
func (c *Conn) writeControl(op core.Opcode, payload []byte) {
	c.wmu.Lock()
	err := c.writeControlLocked(op, payload)
	c.wmu.Unlock()
	if err != nil {
		c.writeFailed(err)
	}
}

// writeControlLocked writes a control frame; wmu is held. Nothing is
// written after the close frame, and it is written once (RFC 6455 §5.5.1).
func (c *Conn) writeControlLocked(op core.Opcode, payload []byte) error {
	if c.closeSent {
		return nil
	}
	c.closeSent = op == core.OpClose
	hdr := core.AppendHeader(c.hdrBuf[:0], true, op, len(payload))
	if c.p.Client {
		return c.writeMasked(hdr, nil, payload)
	}
	return c.writeNet(hdr, payload)
}

// writeMasked writes a client's frame (RFC 6455 §5.3): the header hdr,
// then the payload, a buffered part followed by body as for writeFrame,
// masked with a fresh key. The buffered part is ours and is masked in
// place; body is the caller's and is masked in pooled copies.
func (c *Conn) writeMasked(hdr, room, body []byte) error {
	key := c.nextMaskKey()
	hdr[1] |= 0x80
	hdr = append(hdr, key[:]...) // within hdrBuf: core.MaxHeaderLen has room for the key
	pos := 0
	if room != nil || len(body) == 0 {
		if room != nil {
			pos = core.Mask(key, 0, room[core.MaxHeaderLen:])
			start := core.MaxHeaderLen - len(hdr)
			copy(room[start:], hdr)
			hdr = room[start:]
		}
		if len(body) == 0 {
			return c.writeNet(hdr, nil)
		}
		if err := c.writeNet(hdr, nil); err != nil {
			return err
		}
		hdr = nil
	}
	block := writeBuffers.Get().(*[]byte)
	defer writeBuffers.Put(block)
	for len(body) > 0 {
		buf := (*block)[core.MaxHeaderLen:]
		n := copy(buf, body)
		body = body[n:]
		pos = core.Mask(key, pos, buf[:n])
		start := core.MaxHeaderLen - len(hdr)
		copy((*block)[start:], hdr)
		if err := c.writeNet((*block)[start:core.MaxHeaderLen+n], nil); err != nil {
			return err
		}
		hdr = nil
	}
	return nil
}

// nextMaskKey returns a masking key for the next frame, from a batch read
// from crypto/rand (RFC 6455 §5.3: "a strong source of entropy"); wmu is
// held.
func (c *Conn) nextMaskKey() (key [4]byte) {
	if c.maskKeys == nil || int(c.maskPos) == len(c.maskKeys) {
		if c.maskKeys == nil {
			c.maskKeys = new([64]byte)
		}
		rand.Read(c.maskKeys[:])
		c.maskPos = 0
	}
	copy(key[:], c.maskKeys[c.maskPos:])
	c.maskPos += uint8(len(key))
	return key
}

// writeFailed ends the connection after a failed write.
func (c *Conn) writeFailed(err error) error {
	c.apply(c.stepLocked(core.EvWriteFailed, 0, err.Error()), nil)
	return c.endErr()
}

// acquireSend takes the send side for one message.
func (c *Conn) acquireSend() error {
	select {
	case c.sendTok <- struct{}{}:
		return nil
	default: // another sender has it: wait, unless the connection ends
	}
	select {
	case c.sendTok <- struct{}{}:
		return nil
	case <-c.ended():
		return ErrConnClosed
	}
}

// releaseSend gives the send side back, ending the watch of a send with
// a context.
func (c *Conn) releaseSend() {
	if s := c.watchedSend(); s != nil {
		c.unwatchSend(s)
	}
	<-c.sendTok
}

// SendText sends msg as one text message. Text that is not valid UTF-8 is
// refused with an error and nothing is sent. Once the connection has
// started closing, it returns ErrConnClosed.
func (c *Conn) SendText(msg string) error {
	if !utf8.ValidString(msg) {
		return errInvalidUTF8
	}
	// The frame is only read from, so the string's bytes need no copy.
	return c.sendWhole(nil, core.OpText, unsafe.Slice(unsafe.StringData(msg), len(msg)))
}

// SendBinary sends msg as one binary message. Once the connection has
// started closing, it returns ErrConnClosed.
func (c *Conn) SendBinary(msg []byte) error {
	return c.sendWhole(nil, core.OpBinary, msg)
}

// sendWhole sends a message as a single frame (compressed, in frames of
// at most 64 KiB); ctx, if not nil, may cancel it.
func (c *Conn) sendWhole(ctx context.Context, op core.Opcode, msg []byte) error {
	if err := c.acquireSendContext(ctx); err != nil {
		return err
	}
	var err error
	if c.deflate != nil && len(msg) >= c.deflate.threshold {
		err = c.w.sendDeflated(op, msg)
	} else {
		_, err = c.writeFrame(op, true, nil, msg)
	}
	c.releaseSend()
	if err == nil {
		c.sentMessage(len(msg))
	}
	return c.sendErr(ctx, err)
}

// sendErr is what a send returns for err: a write its context stopped
// becomes the context's error (O16), a frame it cut says so too (O9).
func (c *Conn) sendErr(ctx context.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case err == errWriteCanceled:
		return c.canceled(ctx, "send")
	}
	return cutBy(ctx, err)
}
