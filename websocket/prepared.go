package websocket

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"unicode/utf8"

	"github.com/wsmachine/wsmachine/websocket/internal/core"
)

// PreparedMessage is a data message encoded once for many connections
// ([Conn.SendPrepared], [Broadcast]). Its wire forms are made as they are
// first needed, and then shared: the plain frame, and, for connections
// that negotiated permessage-deflate without context takeover on our
// side, the compressed frames, once per compressor window size. A server
// connection sends a wire form as it is, with one write; the rest fall
// back correctly: a client's connection masks a copy with a fresh key
// per frame, and one that compresses with context takeover compresses
// the message with its own history, as SendText does.
//
// A PreparedMessage is immutable and safe for concurrent use.
type PreparedMessage struct {
	op      core.Opcode
	payload []byte // the message, copied
	plain   []byte // the unmasked frame, header and payload

	// deflated[bits] is the message compressed with a window of 2^bits
	// bytes (8–15) and no history.
	deflated [16]deflatedForm
}

// deflatedForm is a compressed wire form, made once.
type deflatedForm struct {
	once sync.Once
	data []byte // the compressed payload, as it goes on the wire (no 00 00 FF FF)
	wire []byte // unmasked frames of it: RSV1 on the first, at most 64 KiB of payload each
}

// NewPreparedMessage prepares a message of type tp with a copy of data.
// Text must be valid UTF-8 (it is checked once, here); a type other than
// Text or Binary gives ErrMessageType.
func NewPreparedMessage(tp MessageType, data []byte) (*PreparedMessage, error) {
	if tp != Text && tp != Binary {
		return nil, ErrMessageType
	}
	if tp == Text && !utf8.Valid(data) {
		return nil, errInvalidUTF8
	}
	m := &PreparedMessage{op: core.Opcode(tp), payload: bytes.Clone(data)}
	m.plain = core.AppendHeader(make([]byte, 0, core.MaxHeaderLen+len(data)), true, m.op, len(data))
	m.plain = append(m.plain, data...)
	return m, nil
}

// Type returns the message's type.
func (m *PreparedMessage) Type() MessageType { return MessageType(m.op) }

// Len returns the length of the message's payload.
func (m *PreparedMessage) Len() int { return len(m.payload) }

// compressed returns the message compressed with a window of 2^bits
// bytes, making it the first time.
func (m *PreparedMessage) compressed(bits int) *deflatedForm {
	f := &m.deflated[bits]
	f.once.Do(func() {
		fw := getFlateWriter(bits)
		var out bytes.Buffer
		fw.ResetDict(&out, nil)
		fw.Write(m.payload) // a bytes.Buffer does not fail
		fw.Flush()
		flateWriters[bits].Put(fw)
		f.data = out.Bytes()[:out.Len()-len(deflateTail)]
		op := m.op | rsv1
		for rest := f.data; ; {
			n := min(len(rest), writeBufferSize)
			f.wire = core.AppendHeader(f.wire, n == len(rest), op, n)
			f.wire = append(f.wire, rest[:n]...)
			rest, op = rest[n:], core.OpContinuation
			if len(rest) == 0 {
				break
			}
		}
		f.wire = slices.Clip(f.wire)
	})
	return f
}

// SendPrepared sends a prepared message, as SendText or SendBinary would
// send its payload, and with their errors.
func (c *Conn) SendPrepared(m *PreparedMessage) error {
	return c.sendPrepared(nil, m)
}

// SendPreparedContext is [Conn.SendPrepared] with a context that ends
// its wait, as for [Conn.SendTextContext].
func (c *Conn) SendPreparedContext(ctx context.Context, m *PreparedMessage) error {
	return c.sendPrepared(ctx, m)
}

// sendPrepared sends m; ctx, if not nil, may cancel it.
func (c *Conn) sendPrepared(ctx context.Context, m *PreparedMessage) error {
	z := c.deflate
	compress := z != nil && len(m.payload) >= z.threshold
	if compress && z.sent != nil {
		return c.sendWhole(ctx, m.op, m.payload) // our history goes into it
	}
	if err := c.acquireSendContext(ctx); err != nil {
		return err
	}
	var err error
	switch {
	case c.p.Client && compress:
		err = c.sendMaskedFrames(m.op|rsv1, c.compressedFor(m).data)
	case c.p.Client:
		_, err = c.writeFrame(m.op, true, nil, m.payload)
	case compress:
		err = c.writeFrames(c.compressedFor(m).wire)
	default:
		err = c.writeFrames(m.plain)
	}
	c.releaseSend()
	if err == nil {
		c.sentMessage(len(m.payload))
	}
	return c.sendErr(ctx, err)
}

// compressedFor returns m compressed for this connection's window.
func (c *Conn) compressedFor(m *PreparedMessage) *deflatedForm {
	return m.compressed(c.deflate.sendBits)
}

// sendMaskedFrames sends a compressed payload as a client must: in
// frames of at most 64 KiB, each masked by writeFrame with a key of its
// own. A frame refused or stopped after the first gives the message up,
// as a message writer does.
func (c *Conn) sendMaskedFrames(op core.Opcode, data []byte) error {
	w := &c.w
	w.op, w.sent, w.failed = op, false, nil
	for rest := data; ; {
		n := min(len(rest), writeBufferSize)
		if err := w.frame(n == len(rest), nil, rest[:n]); err == errWriteCanceled {
			return w.stopped()
		} else if err != nil {
			return err
		}
		rest = rest[n:]
		if len(rest) == 0 {
			return nil
		}
	}
}

// writeFrames writes whole frames made beforehand, unmasked as a server
// sends them, with one write: as writeFrame does for one frame.
func (c *Conn) writeFrames(frames []byte) error {
	c.wmu.Lock()
	if c.closeSent {
		c.wmu.Unlock()
		return ErrConnClosed
	}
	if err := c.allowed(core.EvSend); err != nil {
		c.wmu.Unlock()
		return err
	}
	var err error
	if s := c.watchedSend(); s != nil {
		err = c.putWatched(s, frames, nil, nil)
	} else {
		err = c.writeNet(frames, nil)
	}
	c.wmu.Unlock()
	if err == errWriteCanceled {
		return err
	}
	if err != nil {
		return c.writeFailed(err)
	}
	return nil
}
