package websocket

import (
	"context"
	"encoding/binary"
	"time"

	"github.com/wsmachine/wsmachine/websocket/internal/core"
)

// Ping sends a ping (RFC 6455 §5.5.2) and waits for the pong that answers
// it (§5.5.3), returning the round-trip time: from just before the ping
// was written to when its pong was read. Each Ping's ping carries a
// payload of its own (8 bytes, a count), so that concurrent Pings each
// get their own pong, and pongs that answer none (a keepalive's,
// unsolicited ones) complete none.
//
// The pong is read by whoever reads: a receive call, or, while the
// application does not receive, the background reader (started at once
// if it is not running), so Ping needs no receive loop. But a pong behind a data message that nobody receives
// waits for it (the background reader stops before a message's first
// frame): a Ping then returns when ctx ends.
//
// The last round-trip time is also in [ConnStats].RoundTrip. If ctx ends
// first, Ping returns an error that wraps ctx.Err() and the connection
// goes on (a pong that comes later is ignored); once the connection has
// started closing, ErrConnClosed; if it ends while Ping waits, the error
// it ended with.
func (c *Conn) Ping(ctx context.Context) (time.Duration, error) {
	s := c.callsState()
	answer := make(chan time.Time, 1)
	c.mu.Lock()
	fx := c.p.Step(core.EvPing, 0, "") // O17, C7, K17, T1, T3
	if fx.Err != nil {
		c.mu.Unlock()
		return 0, fx.Err
	}
	id := s.pings.add(answer)
	if c.readers == 0 && !c.bgActive && c.bgTimer != nil {
		// Nobody reads: the background reader starts now rather than
		// after its delay, which would be counted in the round trip.
		c.startBackground(0)
	}
	c.mu.Unlock()
	var payload [8]byte
	binary.BigEndian.PutUint64(payload[:], id)
	start := time.Now()
	c.apply(fx, payload[:])
	select {
	case at := <-answer:
		rtt := at.Sub(start)
		c.stats.roundTrip.Store(int64(rtt))
		return rtt, nil
	case <-ctx.Done():
		c.forgetPing(s, id)
		return 0, c.canceled(ctx, "ping")
	case <-c.ended():
		c.forgetPing(s, id)
		return 0, c.endErr()
	}
}

// forgetPing stops waiting for the pong of ping id.
func (c *Conn) forgetPing(s *callState, id uint64) {
	c.mu.Lock()
	s.pings.take(id)
	c.mu.Unlock()
}

// pongArrived hands a pong to the Ping waiting for its payload, if any.
func (c *Conn) pongArrived(payload []byte) {
	s := c.stats.calls.Load()
	if s == nil || len(payload) != 8 {
		return
	}
	at := time.Now()
	c.mu.Lock()
	answer := s.pings.take(binary.BigEndian.Uint64(payload))
	c.mu.Unlock()
	if answer != nil {
		answer <- at // buffered: never blocks
	}
}

// pingWaiters are the Pings waiting for their pong, by payload; guarded
// by Conn.mu. A handful at most, so a slice.
type pingWaiters struct {
	last    uint64 // the payload of the latest ping
	waiting []pingWaiter
}

type pingWaiter struct {
	id     uint64
	answer chan<- time.Time
}

// add registers a Ping and returns its payload.
func (w *pingWaiters) add(answer chan<- time.Time) uint64 {
	w.last++
	w.waiting = append(w.waiting, pingWaiter{w.last, answer})
	return w.last
}

// take removes the Ping of payload id and returns its channel; nil if
// none waits for it.
func (w *pingWaiters) take(id uint64) chan<- time.Time {
	for i, p := range w.waiting {
		if p.id == id {
			w.waiting = append(w.waiting[:i], w.waiting[i+1:]...)
			return p.answer
		}
	}
	return nil
}
