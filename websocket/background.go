package websocket

import (
	"time"

	"github.com/wsmachine/wsmachine/websocket/internal/core"
)

// Who reads from the network: a receiver (a receive call or a message
// reader) takes the read side with acquireRead and gives it back with
// releaseRead; while nobody does, the background reader reads, so that
// pings are answered and the peer's close frame is seen.

// aLongTimeAgo is a read deadline that makes a blocked read return at once.
var aLongTimeAgo = time.Unix(1, 0)

// acquireRead takes the read side for a receiver, stopping the background
// reader if it holds it. It fails once the connection has left the open
// state (rows K10, T1, T2), without waiting for the read side.
func (c *Conn) acquireRead() error {
	c.mu.Lock()
	if err := c.stepErr(core.EvReceive); err != nil {
		c.mu.Unlock()
		return err
	}
	c.readers++
	if c.bgActive {
		c.interruptRead()
	}
	c.mu.Unlock()
	c.readMu.Lock()
	c.resumeRead()
	return nil
}

// interruptRead makes the read in progress, if any, return at once: the
// background reader's when a receiver wants the read side, a receiver's
// when Close is called. c.mu is held.
func (c *Conn) interruptRead() {
	if !c.aborting {
		c.aborting = true
		c.nc.SetReadDeadline(aLongTimeAgo)
	}
}

// resumeRead undoes interruptRead for the next holder of readMu, which
// calls it: the interrupted reader has let go of the read side.
func (c *Conn) resumeRead() {
	c.mu.Lock()
	if c.aborting {
		c.aborting = false
		c.nc.SetReadDeadline(time.Time{})
	}
	c.mu.Unlock()
}

// releaseRead gives the read side back.
func (c *Conn) releaseRead() {
	inMessage := c.p.InMessage()
	c.readMu.Unlock()
	c.mu.Lock()
	c.readers--
	c.armBackground(inMessage)
	c.mu.Unlock()
}

// armBackground starts the background reader soon if nobody reads and
// somebody must: while open and no message waits to be received, after a
// short delay (a receive loop never needs it); while closing, at once, to
// take in the client's close frame. c.mu is held.
//
// A receive loop releases the read side for every message; rather than
// move the timer each time, releases are counted, and a timer that finds
// a release after it was armed waits once more (see background).
func (c *Conn) armBackground(inMessage bool) {
	c.releases++
	if c.readers > 0 || c.bgTimer == nil {
		return
	}
	switch run, now := c.p.BackgroundNeed(inMessage); {
	case run && now:
		c.startBackground(0)
	case run && !c.bgArmed:
		c.startBackground(c.bgDelay)
	}
}

// startBackground sets the background reader's timer. c.mu is held.
func (c *Conn) startBackground(after time.Duration) {
	c.bgTimer.Reset(after)
	c.bgArmed, c.bgReleases = true, c.releases
}

// background reads while no receiver does: it answers pings and takes in
// the client's close frame or the end of TCP, so that senders learn of it.
// In the open state it stops at the first frame of a data message, which
// waits for a receive call; while closing it discards data.
func (c *Conn) background() {
	c.mu.Lock()
	c.bgArmed = false
	run, now := c.p.BackgroundNeed(false)
	if c.readers > 0 || c.bgActive || !run {
		c.mu.Unlock()
		return
	}
	if !now && c.releases != c.bgReleases {
		c.startBackground(c.bgDelay) // the read side was in use meanwhile
		c.mu.Unlock()
		return
	}
	c.bgActive = true
	c.mu.Unlock()

	c.readMu.Lock()
	c.mu.Lock()
	if c.readers > 0 {
		// A receiver came while we waited for the read side: its
		// interrupt was meant for us, and the read side is its now.
		c.bgActive = false
		c.mu.Unlock()
		c.readMu.Unlock()
		return
	}
	c.mu.Unlock()
	c.resumeRead()
	for {
		if c.p.InMessage() {
			if c.recvData() != core.DiscardData {
				break // O1: the message waits for a receive call; or the end came
			}
			if c.discardClosing() != nil { // K1
				break
			}
			continue
		}
		if c.nextFrame() != nil {
			break
		}
	}
	// A receiver that interrupted us may have come and gone already: if
	// nobody reads now, arm again.
	c.mu.Lock()
	c.bgActive = false
	c.armBackground(c.p.InMessage())
	c.mu.Unlock()
	c.readMu.Unlock()
}

// discardClosing skips the data of the message in progress once we have
// sent our close frame: it is not delivered any more.
func (c *Conn) discardClosing() error {
	if c.p.Remaining() > 0 {
		n, err := c.skipIn(c.p.Remaining())
		c.p.Skip(n)
		if err != nil {
			return c.readFailed(err)
		}
	}
	if c.p.Next() == core.WireEnd {
		c.p.DropMessage()
		c.stopInflating() // if it was compressed and partly read
		return nil
	}
	return c.nextFrame()
}
