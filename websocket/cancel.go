package websocket

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/wsmachine/wsmachine/websocket/internal/core"
)

// Cancellable calls: the Context variants of the receive and send calls
// (STATE_MACHINE.md, "Cancelled calls", event Cancel). A context that
// ends while its call waits, with nothing of the message taken or sent,
// makes the call return an error that wraps the context's; the
// connection goes on as if the call had not been made. A context that
// ends while a frame is partly written cuts the frame: nothing can
// follow it on the wire, not even a close frame, so the connection is
// dropped (WriteFailed, O9; GetStatus gives StatusDropped, 1006).
//
// A receive waits in a read of the socket; its context's end moves the
// read deadline into the past, as Close and a receiver that takes over
// from the background reader do (interruptRead). A send waits in a write;
// its context's end moves the write deadline into the past, while it
// writes, and otherwise stops it before its next frame.

// ReceiveMessageContext is [Conn.ReceiveMessage] with a context that ends
// its wait for the next message: if ctx ends before a frame of that
// message has arrived (or before another receive call's turn ends), it
// returns an error that wraps ctx.Err(), having taken nothing of the
// message, and the connection goes on: the next receive gets the next
// message whole. Once the message has begun to arrive, ctx no longer
// matters: the message is returned, and reads from its reader are
// bounded as without a context (IdleTimeout, MaxMessageSize); so is
// skipping the rest of a compressed message that the previous receive
// left unread, which cannot be interrupted halfway. A ctx that
// has ended already gives that error at once, once the connection is
// known to be open (a connection that is closing or has ended gives the
// error ReceiveMessage would).
func (c *Conn) ReceiveMessageContext(ctx context.Context) (MessageType, io.Reader, error) {
	return c.receiveMessage(ctx)
}

// ReceiveTextContext is [Conn.ReceiveText] with a context that ends its
// wait for the next message, as for [Conn.ReceiveMessageContext].
func (c *Conn) ReceiveTextContext(ctx context.Context, maxLength int) (string, error) {
	return c.receiveText(ctx, maxLength)
}

// ReceiveBinaryContext is [Conn.ReceiveBinary] with a context that ends
// its wait for the next message, as for [Conn.ReceiveMessageContext].
func (c *Conn) ReceiveBinaryContext(ctx context.Context, buf []byte) (int, error) {
	b, err := c.receiveLimited(ctx, Binary, buf[:0:len(buf)], len(buf))
	return len(b), err
}

// SendTextContext is [Conn.SendText] with a context that ends its wait:
// for another sender to finish, or for the peer to take the bytes
// (TCP's flow control). If ctx ends before any byte of the message has
// left, it returns an error that wraps ctx.Err(), nothing of the message
// is sent, and the connection goes on. If it ends with a frame partly
// written, nothing can follow that frame on the wire, not even a close
// frame: the connection is dropped (GetStatus: StatusDropped, 1006),
// and the error wraps both ErrConnClosed and ctx.Err() and says so. A
// compressed message sent in several frames of which some have left is
// given up as a message writer gives one up (StatusInternalServerError,
// 1011), and so is a compressed one, sent or not, under context
// takeover: the compressor's history holds it, which the peer's must
// too.
func (c *Conn) SendTextContext(ctx context.Context, msg string) error {
	if !utf8.ValidString(msg) {
		return errInvalidUTF8
	}
	return c.sendWhole(ctx, core.OpText, unsafe.Slice(unsafe.StringData(msg), len(msg)))
}

// SendBinaryContext is [Conn.SendBinary] with a context that ends its
// wait, as for [Conn.SendTextContext].
func (c *Conn) SendBinaryContext(ctx context.Context, msg []byte) error {
	return c.sendWhole(ctx, core.OpBinary, msg)
}

// SendMessageContext is [Conn.SendMessage] with a context that ends the
// wait for the send side and, until the writer's Close, every wait of
// its writes. When ctx ends, the writer fails as for any other cause
// (see SendMessage: nothing sent yet, the connection goes on and the
// error wraps ctx.Err(); a frame sent already, the connection is closed
// with 1011), except that a frame it cuts drops the connection, as for
// [Conn.SendTextContext].
func (c *Conn) SendMessageContext(ctx context.Context, tp MessageType) (io.WriteCloser, error) {
	return c.sendMessage(ctx, tp)
}

// callState is what a Conn keeps for its cancellable calls and Pings,
// made by the first of them: a connection that makes none pays one
// pointer. Fields are guarded by Conn.mu unless they say otherwise.
type callState struct {
	recvWatch, sendWatch uint32 // the number of the latest watch of each side
	recvWaits            bool   // a watched receive waits for its message to start
	recvCanceled         bool   // its context ended and interrupted its read
	sendWatched          bool   // a watched send holds the send side (written by the sender)
	sendWriting          bool   // it is writing a frame
	sendCanceled         bool   // its context ended

	// interruptWrite: the watched send's context ended while it wrote;
	// the write deadline is in the past until it stops writing. Atomic:
	// setWriteDeadline, under wmu, looks at it.
	interruptWrite atomic.Bool

	// sendCtx and stopSend are the watched send's context and the stop
	// of its watch; the sender's own.
	sendCtx  context.Context
	stopSend func() bool

	pings pingWaiters // the Pings waiting for their pong (ping.go)
}

// callsState returns the connection's callState, making it if need be.
func (c *Conn) callsState() *callState {
	if s := c.stats.calls.Load(); s != nil {
		return s
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.stats.calls.Load(); s != nil {
		return s
	}
	s := new(callState)
	c.stats.calls.Store(s)
	return s
}

// writeInterrupted reports whether a watched send's context ended while
// it wrote: no write may wait then.
func (c *Conn) writeInterrupted() bool {
	s := c.stats.calls.Load()
	return s != nil && s.interruptWrite.Load()
}

// Errors inside the library: a read or a write stopped by a context's
// end. The calls turn them into errors that wrap the context's.
var (
	errReadCanceled  = errors.New("websocket: read interrupted by the receive's context")
	errWriteCanceled = errors.New("websocket: write stopped by the send's context")
	// errFrameCut is why the connection is dropped when a send's context
	// ends with a frame partly written (O9).
	errFrameCut = errors.New("the send's context ended with a frame partly written, which no frame may follow: connection dropped (1006)")
)

// canceled is what a call whose context ended gets (event Cancel): an
// error that wraps ctx.Err() while the connection is open (O16), the
// state's error otherwise (K16, T1, T3).
func (c *Conn) canceled(ctx context.Context, call string) error {
	if err := c.allowed(core.EvCancel); err != nil {
		return err
	}
	return fmt.Errorf("websocket: %s cancelled; the connection stays open: %w", call, ctx.Err())
}

// cutBy is the error of a send whose frame its context cut: it wraps
// both ErrConnClosed (through err) and the context's error.
func cutBy(ctx context.Context, err error) error {
	if ctx != nil && ctx.Err() != nil && errors.Is(err, ErrConnClosed) && !errors.Is(err, ctx.Err()) {
		return fmt.Errorf("%w (%w)", err, ctx.Err())
	}
	return err
}

// The receive side.

// lockRecv takes recvMu, the turn among receive calls; ctx, if not nil,
// ends the wait for another receive call. The waiting is done by a
// goroutine, which lets go of the turn at once if the call has given up;
// it ends when the other receive call does, at the latest when the
// connection ends.
func (c *Conn) lockRecv(ctx context.Context) error {
	if ctx == nil || ctx.Done() == nil {
		c.recvMu.Lock()
		return nil
	}
	if ctx.Err() != nil {
		return c.canceled(ctx, "receive")
	}
	if c.recvMu.TryLock() {
		return nil
	}
	var decided atomic.Bool // the first to set it decides: taken, or given up
	locked := make(chan struct{}, 1)
	go func() {
		c.recvMu.Lock()
		if !decided.CompareAndSwap(false, true) {
			c.recvMu.Unlock() // the call gave up
			return
		}
		locked <- struct{}{}
	}()
	select {
	case <-locked:
		return nil
	case <-ctx.Done():
		if decided.CompareAndSwap(false, true) {
			return c.canceled(ctx, "receive")
		}
		<-locked // the goroutine took the turn for us just now
		return nil
	}
}

// startMessageContext is awaitMessage under ctx: its end interrupts the
// wait for the next message, as long as no frame of it has come. Once
// one has, the message is received whole, as without a context.
//
//go:noinline
func (c *Conn) startMessageContext(ctx context.Context) error {
	if ctx.Done() == nil {
		return c.startMessage()
	}
	if ctx.Err() != nil {
		return c.canceled(ctx, "receive")
	}
	// The rest of a compressed message the previous receive left
	// unread is skipped first, unwatched: the decompressor does not
	// survive an interrupted read, and a message cannot be inflated
	// from its middle. (An uncompressed one is skipped under the watch:
	// interrupted, the next receive goes on skipping it.)
	if c.p.Compressed() && c.p.SkipUnfinished() {
		if err := c.discardMessage(); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return c.canceled(ctx, "receive")
		}
	}
	s := c.callsState()
	c.mu.Lock()
	s.recvWatch++
	id := s.recvWatch
	s.recvWaits, s.recvCanceled = true, false
	c.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		c.mu.Lock()
		if s.recvWaits && s.recvWatch == id {
			s.recvCanceled = true
			c.interruptRead()
		}
		c.mu.Unlock()
	})
	err := c.startMessage()
	stop()
	c.mu.Lock()
	canceled := s.recvCanceled
	s.recvWaits, s.recvCanceled = false, false
	if canceled && err == nil && c.aborting {
		// The message came first: its frames are read on.
		c.aborting = false
		c.nc.SetReadDeadline(time.Time{})
	}
	c.mu.Unlock()
	if err == errReadCanceled {
		return c.canceled(ctx, "receive")
	}
	return err
}

// readCanceled reports whether an interrupted read was a receive's whose
// context ended; c.mu is held.
func (c *Conn) readCanceled() bool {
	s := c.stats.calls.Load()
	return s != nil && s.recvCanceled
}

// The send side.

// acquireSendContext is acquireSend under ctx: waiting for another
// sender ends with ctx. Once it has the send side, the send is watched
// until releaseSend.
func (c *Conn) acquireSendContext(ctx context.Context) error {
	if ctx == nil || ctx.Done() == nil {
		return c.acquireSend()
	}
	if ctx.Err() != nil {
		return c.canceled(ctx, "send")
	}
	select {
	case c.sendTok <- struct{}{}:
	case <-c.ended():
		return ErrConnClosed
	case <-ctx.Done():
		return c.canceled(ctx, "send")
	}
	c.watchSend(ctx)
	return nil
}

// watchSend makes ctx's end stop the send that holds the send side: a
// frame being written is interrupted, the next one is not begun.
func (c *Conn) watchSend(ctx context.Context) {
	s := c.callsState()
	c.mu.Lock()
	s.sendWatch++
	id := s.sendWatch
	s.sendWatched, s.sendCanceled, s.sendCtx = true, false, ctx
	c.mu.Unlock()
	s.stopSend = context.AfterFunc(ctx, func() {
		c.mu.Lock()
		if s.sendWatched && s.sendWatch == id {
			s.sendCanceled = true
			if s.sendWriting {
				s.interruptWrite.Store(true)
				c.nc.SetWriteDeadline(aLongTimeAgo)
			}
		}
		c.mu.Unlock()
	})
}

// unwatchSend ends the watch of the send that lets go of the send side.
func (c *Conn) unwatchSend(s *callState) {
	s.stopSend()
	c.mu.Lock()
	s.sendWatched, s.sendCanceled, s.sendCtx, s.stopSend = false, false, nil, nil
	c.mu.Unlock()
}

// sendWatch returns the callState if the send holding the send side is
// watched: only that sender asks.
func (c *Conn) watchedSend() *callState {
	if s := c.stats.calls.Load(); s != nil && s.sendWatched {
		return s
	}
	return nil
}

// putWatched is putFrame for a watched send; wmu is held. A frame is not
// begun once the context has ended (errWriteCanceled); one that it
// interrupts before any byte went is not on the wire either; one it cuts
// is errFrameCut, which fails the connection.
func (c *Conn) putWatched(s *callState, hdr, room, body []byte) error {
	c.mu.Lock()
	// The context's own word first: its AfterFunc runs on a goroutine
	// of its own, maybe not yet.
	if s.sendCanceled || s.sendCtx.Err() != nil {
		c.mu.Unlock()
		return errWriteCanceled
	}
	s.sendWriting = true
	c.mu.Unlock()
	before := c.stats.wireOut.Load()
	err := c.putFrame(hdr, room, body)
	c.mu.Lock()
	s.sendWriting = false
	interrupted := s.interruptWrite.Swap(false)
	c.mu.Unlock()
	if interrupted { // the deadline in the past is no one else's
		c.wdl = 0
		c.setWriteDeadline(time.Time{})
	}
	if err != nil && interrupted {
		if c.stats.wireOut.Load() == before {
			return errWriteCanceled
		}
		return errFrameCut
	}
	return err
}
