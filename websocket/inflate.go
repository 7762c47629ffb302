package websocket

import (
	"bytes"
	"io"
	"sync"

	"github.com/wsmachine/wsmachine/websocket/internal/core"

	"github.com/klauspost/compress/flate"
)

// The receiving side of permessage-deflate (see deflate.go): a compressed
// message is read through a pooled decompressor, taken at its first read
// and given back once the message has ended, whole or not.

// flateReaders are the decompressors.
var flateReaders = sync.Pool{New: func() any { return flate.NewReader(noBytes) }}

// noBytes is what a pooled decompressor is set to read from: nothing, and
// no connection that it would keep alive. It is never read.
var noBytes = bytes.NewReader(nil)

// deflatedPayload reads the payload of the compressed message being
// received as it is on the wire, then inflateEnd: what the decompressor
// reads. It implements io.ByteReader, which the decompressor reads by,
// so that it does not wrap it in a bufio.Reader of its own. readMu is
// held.
type deflatedPayload struct {
	c       *Conn
	tail    int   // bytes of core.InflateEnd served; the wire part has ended once positive
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
	n := copy(p, core.InflateEnd[d.tail:])
	d.tail += n
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// ReadByte takes a buffered byte directly; anything else goes through Read.
func (d *deflatedPayload) ReadByte() (byte, error) {
	c := d.c
	if d.tail == 0 && c.p.Remaining() > 0 && c.buffered() > 0 {
		b := c.p.UnmaskByte((*c.in.buf)[c.in.r])
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
// received (readMu); how much it inflated is the protocol's
// (core.Protocol.Inflated counts it).
type inflating struct {
	fr  io.ReadCloser // the pooled decompressor; nil until the first read
	src deflatedPayload
}

// readInflated reads inflated payload of the current compressed message
// into p. MaxMessageSize applies to what it inflates to, and is checked
// as it inflates: a small message that would inflate to gigabytes (a
// decompression bomb) fails the connection with StatusTooLarge once it
// passes the limit, and the rest is never inflated. Text is checked as
// it comes out.
func (c *Conn) readInflated(p []byte) (int, error) {
	z := &c.inflate
	if z.fr == nil {
		z.src = deflatedPayload{c: c}
		z.fr = flateReaders.Get().(io.ReadCloser)
		z.fr.(flate.Resetter).Reset(&z.src, c.deflate.received.Dict())
	}
	p = c.p.InflateRoom(p)
	n, err := z.fr.Read(p)
	var bad *core.Input
	if z.src.wireErr == nil { // else the connection failed or ended under the decompressor
		bad = c.p.Inflated(p[:n], err)
		if bad == nil {
			c.deflate.received.Add(p[:n])
			if err == nil {
				return n, nil // more to come: the decompressor stays
			}
			bad = c.p.InflatedEnd(z.src.tail)
		}
	}
	// The message has ended, whole or not: here, and only here, the
	// decompressor goes back to its pool, before the verdict is acted on.
	c.stopInflating()
	switch {
	case z.src.wireErr != nil:
		return 0, z.src.wireErr
	case bad != nil:
		return 0, c.take(bad)
	case z.src.tail == 0: // the peer's final block: the rest of its frames is not the message's
		if err := c.skipAfterFinal(); err != io.EOF {
			return 0, err
		}
	}
	return n, c.endMessage()
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
	z := &c.inflate
	if z.fr != nil {
		z.fr.(flate.Resetter).Reset(noBytes, nil)
		flateReaders.Put(z.fr)
		z.fr = nil
	}
	z.src.c = nil
}
