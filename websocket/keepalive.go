package websocket

import (
	"time"

	"github.com/wsmachine/wsmachine/websocket/internal/core"
)

// Keepalive: the ping timer (Handler.PingInterval) and the idle timeout
// (Handler.IdleTimeout). Both are measured from the last bytes that came
// from the client, which afterNetRead records.

// beforeNetRead gives a read from the network the idle timeout's
// deadline; readMu is held.
func (c *Conn) beforeNetRead() {
	if c.idleTimeout > 0 {
		c.mu.Lock()
		if !c.aborting { // an interrupt's deadline in the past stays
			c.nc.SetReadDeadline(time.Unix(0, c.lastRead.Load()).Add(c.idleTimeout))
		}
		c.mu.Unlock()
	}
}

// afterNetRead notes when bytes came from the client.
func (c *Conn) afterNetRead(n int) {
	c.stats.wireIn.Add(uint64(n))
	if n > 0 && (c.idleTimeout > 0 || c.pingInterval > 0) {
		c.lastRead.Store(time.Now().UnixNano())
	}
}

// idleFor is how long nothing has come from the client.
func (c *Conn) idleFor() time.Duration {
	return time.Since(time.Unix(0, c.lastRead.Load()))
}

// startPinging arms the ping timer, if pings are on. c.mu is held.
func (c *Conn) startPinging() {
	if c.pingInterval > 0 {
		c.pingTimer = time.AfterFunc(c.pingInterval, c.pingTick)
	}
}

// pingTick sends a ping if nothing came from the client for a whole
// interval (row O13), and arms the timer for the next one. A busy
// connection is not pinged: its traffic shows it is alive.
func (c *Conn) pingTick() {
	next := c.pingInterval
	if idle := c.idleFor(); idle >= c.pingInterval {
		c.apply(c.stepLocked(core.EvPingTimer, 0, ""), nil)
	} else {
		next -= idle
	}
	c.mu.Lock()
	if !c.p.Ended() {
		c.pingTimer.Reset(next)
	}
	c.mu.Unlock()
}
