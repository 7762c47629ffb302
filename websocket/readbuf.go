package websocket

import (
	"io"
	"sync"
)

// The read buffer. A connection waiting for the client's next frame holds
// no buffer: one is taken from a pool when bytes arrive and given back as
// soon as every byte in it has been consumed. On Linux the waiting is done
// by the poller (see rawio_linux.go), so the buffer is taken only once the
// socket has something to read, and a small frame still arrives with one
// read system call; elsewhere a buffer is held while a read waits.

// readBufferSize is the size of a pooled read buffer: a frame header, a
// control frame, or a small message with its header, read at once.
// Payload reads of at least this size bypass it.
const readBufferSize = 4 << 10

var readBuffers = sync.Pool{New: func() any {
	b := make([]byte, readBufferSize)
	return &b
}}

// inbuf holds the bytes read from the network and not consumed yet;
// guarded by Conn.readMu.
type inbuf struct {
	buf  *[]byte // pooled; nil while empty
	r, w int     // the unconsumed bytes are (*buf)[r:w]
}

// buffered returns the number of bytes read and not consumed.
func (c *Conn) buffered() int { return c.in.w - c.in.r }

// peek returns the next n bytes without consuming them, reading from the
// network until they are there. n is at most readBufferSize.
func (c *Conn) peek(n int) ([]byte, error) {
	for c.buffered() < n {
		if err := c.fill(); err != nil {
			return nil, err
		}
	}
	return (*c.in.buf)[c.in.r : c.in.r+n], nil
}

// consume drops the next n buffered bytes.
func (c *Conn) consume(n int) {
	c.in.r += n
	if c.in.r == c.in.w {
		c.releaseInbuf()
	}
}

// releaseInbuf gives the (empty) buffer back to the pool.
func (c *Conn) releaseInbuf() {
	if c.in.buf != nil {
		readBuffers.Put(c.in.buf)
		c.in.buf = nil
	}
	c.in.r, c.in.w = 0, 0
}

// readIn reads up to len(p) bytes: buffered ones first; with none
// buffered, a large p is read into directly, a small one through the
// buffer, so that a frame behind the payload comes with the same read.
func (c *Conn) readIn(p []byte) (int, error) {
	if c.buffered() == 0 {
		if len(p) >= readBufferSize {
			c.beforeNetRead()
			n, err := c.nc.Read(p)
			c.afterNetRead(n)
			return n, err
		}
		if err := c.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, (*c.in.buf)[c.in.r:c.in.w])
	c.consume(n)
	return n, nil
}

// skipIn consumes n bytes, reading them if need be.
func (c *Conn) skipIn(n uint64) (skipped uint64, err error) {
	for skipped < n {
		if c.buffered() == 0 {
			if err := c.fill(); err != nil {
				return skipped, err
			}
		}
		m := int(min(n-skipped, uint64(c.buffered())))
		c.consume(m)
		skipped += uint64(m)
	}
	return skipped, nil
}

// fill reads at least one more byte into the buffer. A read that brings
// bytes succeeds; its error, if any, comes again with the next read.
func (c *Conn) fill() error {
	if c.in.buf != nil && c.in.r > 0 { // room at the end for a whole frame
		b := *c.in.buf
		c.in.w = copy(b, b[c.in.r:c.in.w])
		c.in.r = 0
	}
	c.beforeNetRead()
	var n int
	var err error
	if c.raw != nil {
		n, err = c.fillRaw()
	} else {
		if c.in.buf == nil {
			c.in.buf = readBuffers.Get().(*[]byte)
		}
		for tries := 0; n == 0 && err == nil; tries++ {
			if tries == 100 {
				err = io.ErrNoProgress
				break
			}
			n, err = c.nc.Read((*c.in.buf)[c.in.w:])
		}
	}
	c.afterNetRead(n)
	c.in.w += n
	if c.buffered() == 0 {
		c.releaseInbuf()
	}
	if n > 0 {
		return nil
	}
	return err
}
