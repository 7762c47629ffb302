package websocket

import (
	"io"
	"time"

	"github.com/wsmachine/wsmachine/websocket/internal/core"
)

// apply carries out the effects of a transition, outside c.mu: the one
// place where they are. payload is that of the ping that fx answers, if
// it does, or of the ping it sends (Ping's; a keepalive's is empty).
func (c *Conn) apply(fx core.Effects, payload []byte) {
	if fx.Pong {
		c.writeControl(core.OpPong, payload)
	}
	if fx.Ping {
		c.writeControl(core.OpPing, payload)
		c.stats.pingsOut.Add(1)
	}
	if fx.SendClose {
		c.wmu.Lock()
		err := c.writeCloseLocked(fx.CloseCode, fx.CloseReason)
		c.wmu.Unlock()
		if err != nil {
			c.writeFailed(err)
		}
	}
	if fx.TCP != core.TCPNone {
		c.finish(fx.TCP, fx.AwaitClose)
	}
}

// writeCloseLocked writes our close frame; wmu is held. The payload is
// put together in a pooled buffer: an array here would escape with the
// write and cost an allocation per connection.
func (c *Conn) writeCloseLocked(code core.Status, reason string) error {
	buf := readBuffers.Get().(*[]byte)
	err := c.writeControlLocked(core.OpClose, core.AppendClosePayload((*buf)[:0], code, reason))
	readBuffers.Put(buf)
	return err
}

// finish closes TCP as tcp says and wakes everybody waiting for the end.
// It runs once, for the transition into closed or dropped. With
// awaitClose, Close may still be writing our close frame (it holds wmu
// from the transition to closing until the frame is out, and its write
// deadline bounds that): the frame must reach the wire before the FIN.
// With tcpCloseAfterOurs, we failed the connection and the client may
// still be sending: the server half-closes first (RFC 6455 §7.1.1) and
// reads what the client still sends, bounded in time and bytes, so that
// closing does not reset the connection under our close frame. Lingering
// reads the network, so it happens only on the read side, which holds
// readMu. Otherwise what has already arrived is discarded, without
// waiting, for the same reason.
//
// With tcpCloseAfterServer at the client's end, the server is to close
// TCP first (RFC 6455 §7.1.1), so that the TIME_WAIT is its: the client
// reads until the server's FIN, bounded as lingering is, and only then
// closes.
func (c *Conn) finish(tcp core.TCPEffect, awaitClose bool) {
	if c.bgTimer != nil {
		c.bgTimer.Stop()
	}
	if c.pingTimer != nil {
		c.pingTimer.Stop()
	}
	c.mu.Lock()
	if c.closeTimer != nil { // set under mu, and never once terminal
		c.closeTimer.Stop()
	}
	c.mu.Unlock()
	if c.nc != nil {
		if awaitClose {
			c.wmu.Lock()
			c.wmu.Unlock()
		}
		if hc, ok := c.nc.(interface{ CloseWrite() error }); tcp == core.TCPCloseAfterOurs && ok && hc.CloseWrite() == nil || c.p.AwaitsServerFIN(tcp) {
			c.nc.SetReadDeadline(time.Now().Add(lingerTimeout))
			io.CopyN(io.Discard, c.nc, lingerMax)
		} else if c.raw != nil {
			// After a clean closing handshake the peer sends nothing
			// more; after anything else (K5–K8, O8, O9) it may have,
			// since the last read, and bytes left unread would turn
			// the close into a reset that destroys what we sent last.
			c.discardArrived(tcp != core.TCPCloseAfterServer)
		}
		c.nc.Close()
	}
	if c.stats.log != nil {
		c.logEnd()
	}
	if c.stats.set != nil { // before the end is announced: whoever sees it sees the place free
		c.stats.set.leave(c)
	}
	c.mu.Lock()
	c.finished = true
	if c.done != nil {
		close(c.done)
	}
	c.mu.Unlock()
}

// closedChan is what ended returns once the connection has ended, if
// nobody asked before.
var closedChan = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

// ended returns a channel that is closed once the connection has ended
// and TCP is closed. It is made when first needed: most connections end
// without anybody waiting for it.
func (c *Conn) ended() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		if c.finished {
			return closedChan
		}
		c.done = make(chan struct{})
	}
	return c.done
}

// Close starts the closing handshake (RFC 6455 §7.1.2): it sends a close
// frame with code and message, waits for the client's close frame (at most
// 3 seconds), closes TCP and frees the connection. It returns nil if the
// client answered, an error wrapping ErrConnClosed if it did not.
//
// The code must be one a server may send (1000–1003, 1007–1009,
// 1011–1014, 3000–4999; a client may also send 1010), or StatusNotSent
// for a close frame without code and message; otherwise Close returns
// ErrStatusCode. A message longer than
// 123 bytes gives ErrTooLarge, one that is not valid UTF-8 an error; in
// these cases the connection stays open. Close on a connection that has
// started closing or has ended returns ErrConnClosed.
func (c *Conn) Close(code Status, message string) error {
	if err := c.p.CloseArgs(core.Status(code), message); err != nil {
		return err
	}
	deadline, err := c.startClosing(core.EvClose, code, message)
	if err != nil {
		return err
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-c.ended():
	case <-timer.C:
		c.apply(c.stepLocked(core.EvCloseTimeout, 0, ""), nil)
		<-c.ended()
	}
	return c.closeResult()
}

// startClosing takes the transition into closing, for Close (O10) or for
// a message given up partly sent (O14), and sends our close frame. It
// returns the close timeout's deadline, or the row's error.
func (c *Conn) startClosing(ev core.Event, code Status, message string) (time.Time, error) {
	// A sender blocked on a client that does not read must not hold the
	// close frame back for longer than the close timeout. (After the end
	// there is nobody to unblock, and no socket to set a deadline on.)
	deadline := time.Now().Add(c.closeTimeout)
	if c.nc != nil && c.isOpen() && c.closeBy.CompareAndSwap(0, deadline.UnixNano()) {
		c.nc.SetWriteDeadline(deadline)
	}
	// The send side is taken before the state changes, so that while the
	// state is closing our close frame is on the wire or about to be: the
	// reader waits for it before it may close TCP (see finish).
	c.wmu.Lock()
	c.mu.Lock()
	fx := c.p.Step(ev, core.Status(code), message)
	if fx.Err == nil && c.readers > 0 {
		c.interruptRead() // receivers waiting for data return ErrConnClosed now
	}
	c.mu.Unlock()
	if fx.Err != nil {
		c.wmu.Unlock()
		return deadline, fx.Err
	}
	err := c.writeCloseLocked(fx.CloseCode, fx.CloseReason)
	c.wmu.Unlock()
	if err != nil {
		c.writeFailed(err)
	}
	c.kickReader()
	return deadline, nil
}

// abandonMessage closes the connection for a message writer that gave up
// its message after part of it was sent (O14): our close frame with 1011,
// and, as nobody waits in Close, the close timeout on a timer (K8). It
// returns the row's error: nil, or ErrConnClosed once closing or ended.
func (c *Conn) abandonMessage() error {
	return c.closeInBackground(core.EvAbandon, 0, "")
}

// kickReader makes sure somebody reads the client's close frame: the
// background reader starts now unless a receiver holds the read side (its
// release starts it then).
func (c *Conn) kickReader() {
	c.mu.Lock()
	if c.bgTimer != nil && c.readers == 0 {
		c.startBackground(0)
	}
	c.mu.Unlock()
}

// GetStatus waits until the connection has ended and returns the close
// code and reason the client sent: StatusNotSent if its close frame carried
// no code, StatusDropped if no valid close frame arrived (TCP dropped, the
// client broke the protocol, or it did not answer our close in time).
func (c *Conn) GetStatus() (Status, string) {
	<-c.ended()
	c.mu.Lock()
	defer c.mu.Unlock()
	code, reason := c.p.PeerClose()
	return Status(code), reason
}
