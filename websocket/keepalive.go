package websocket

import "time"

// Keepalive: the ping timer (Handler.PingInterval) and the idle timeout
// (Handler.IdleTimeout). Both are measured from the last bytes that came
// from the client, which netReader records.

// netReader is what the connection's bufio.Reader reads from: first the
// bytes net/http had buffered beyond the handshake request, then the
// network. It notes when bytes arrive, and gives each read from the
// network the idle timeout's deadline.
type netReader struct {
	c       *Conn
	pending []byte // left over from net/http's reader; nil once read
}

func (r *netReader) Read(p []byte) (int, error) {
	if len(r.pending) > 0 {
		n := copy(p, r.pending)
		r.pending = r.pending[n:]
		if len(r.pending) == 0 {
			r.pending = nil // lets net/http's buffer go
		}
		return n, nil
	}
	c := r.c
	if c.idleTimeout > 0 {
		c.mu.Lock()
		if !c.aborting { // an interrupt's deadline in the past stays
			c.nc.SetReadDeadline(time.Unix(0, c.lastRead.Load()).Add(c.idleTimeout))
		}
		c.mu.Unlock()
	}
	n, err := c.nc.Read(p)
	if n > 0 {
		c.lastRead.Store(time.Now().UnixNano())
	}
	return n, err
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
		c.apply(c.stepLocked(evPingTimer, 0, ""))
	} else {
		next -= idle
	}
	c.mu.Lock()
	if !c.state.terminal() {
		c.pingTimer.Reset(next)
	}
	c.mu.Unlock()
}
