package websocket

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/wsmachine/wsmachine/websocket/internal/core"
)

// connSet is a Handler's connections, for Shutdown and MaxConnections:
// each handshake is counted in before it is checked further (admit), and
// counted out exactly once, when its connection ends however it ends
// (leave, from finish; a refused handshake ends too, C2). The open ones
// are kept for Shutdown. Its zero value is an empty set.
//
// Lock order: mu is taken on its own, or, by Handler.Stats, before the
// counters' atomics only; no lock of a Conn is held while it is taken,
// and no Conn method runs under it.
type connSet struct {
	mu       sync.Mutex
	n        int                // handshakes admitted and connections not ended yet
	open     map[*Conn]struct{} // the open ones among them
	shutdown bool               // Shutdown was called: no more handshakes
	empty    chan struct{}      // closed once shutting down and n is 0; nil before Shutdown
	// stats are the counts but Open, and the totals of the connections
	// that have ended (Handler.Stats adds the open ones').
	stats HandlerStats
}

// connections returns the Handler's connection set, made at its first use.
func (h *Handler) connections() *connSet {
	if p := atomic.LoadPointer(&h.conns); p != nil {
		return (*connSet)(p)
	}
	atomic.CompareAndSwapPointer(&h.conns, nil, unsafe.Pointer(new(connSet)))
	return (*connSet)(atomic.LoadPointer(&h.conns))
}

// Why a handshake is refused before the upgrade, with 503 and Retry-After.
const (
	reasonShuttingDown   = "server shutting down"
	reasonTooManyClients = "too many connections"
	// retryAfter is the Retry-After of those refusals (see
	// Handler.refuse), in seconds: the client may try again at once
	// elsewhere, or here after a moment.
	retryAfter = "1"
)

// admit counts c in as a handshake of the set's Handler, unless the
// Handler is shutting down or holds max connections already (max 0: no
// limit); it returns the reason for refusing it, or "".
func (s *connSet) admit(c *Conn, max int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.shutdown:
		s.stats.Refused.ShuttingDown++
		return reasonShuttingDown
	case max > 0 && s.n >= max:
		s.stats.Refused.Limit++
		return reasonTooManyClients
	}
	s.n++
	c.stats.set = s
	return ""
}

// refusedFor is the counter of a refusal after admit's checks.
type refusedFor uint8

const (
	refusedNotWebSocket refusedFor = iota
	refusedOrigin
	refusedAccessOk
	refusedFailed
)

// refused counts a handshake refused for why.
func (s *connSet) refused(why refusedFor) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &s.stats.Refused
	*[...]*uint64{&r.NotWebSocket, &r.Origin, &r.AccessOk, &r.Failed}[why]++
}

// opened records c, admitted, as open. It reports whether Shutdown has
// started meanwhile and so missed it: c is then to be closed as Shutdown
// closes the others.
func (s *connSet) opened(c *Conn) (missed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open == nil {
		s.open = make(map[*Conn]struct{})
	}
	s.open[c] = struct{}{}
	s.stats.Accepted++
	return s.shutdown
}

// leave counts c out: its connection has ended (or its handshake
// failed, and it never opened).
func (s *connSet) leave(c *Conn) {
	end := endingOf(c)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, opened := s.open[c]; opened {
		delete(s.open, c)
		end.count(&s.stats)
		s.stats.ConnStats.add(c.stats.snapshot())
	}
	s.n--
	if s.n == 0 && s.empty != nil {
		close(s.empty)
	}
}

// startShutdown refuses handshakes from now on and returns the open
// connections and a channel closed once every admitted one has ended.
func (s *connSet) startShutdown() ([]*Conn, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.empty == nil {
		s.empty = make(chan struct{})
		if s.n == 0 {
			close(s.empty)
		}
	}
	s.shutdown = true
	return s.openConns(), s.empty
}

// openConns lists the open connections; mu is held.
func (s *connSet) openConns() []*Conn {
	conns := make([]*Conn, 0, len(s.open))
	for c := range s.open {
		conns = append(conns, c)
	}
	return conns
}

// stillOpen lists the connections open now.
func (s *connSet) stillOpen() []*Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.openConns()
}

// Shutdown shuts the Handler's WebSockets down gracefully. From the moment
// it is called, new handshakes are refused with 503 Service Unavailable
// (and Retry-After). Every open connection of the Handler starts its
// closing handshake at once with StatusGoingAway (1001), as [Conn.Close]
// would (row O10): a message being sent is not cut inside a frame, and a
// message writer that has sent part of its message fails with an error
// wrapping ErrConnClosed; a receive waiting returns ErrConnClosed. A
// connection whose client does not answer within the Handler's
// CloseTimeout is dropped, as after Close (K8).
//
// Shutdown returns nil once every connection has ended and its TCP
// connection is closed, handshakes that were in progress included. If ctx
// is done first, it drops the open connections left (rows O15, K15: TCP
// closed, GetStatus reports StatusDropped, waiting calls return an error
// wrapping ErrConnClosed) and returns ctx's error; a handshake still in
// progress then (AccessOk running) is closed with 1001 once it opens, as
// usual but without anyone waiting for it.
//
// net/http's Server.Shutdown does not know hijacked connections, and
// waits for plain HTTP ones: run both, with one deadline.
//
//	go srv.Shutdown(ctx)   // no new connections; HTTP requests finish
//	err := h.Shutdown(ctx) // the WebSockets close with 1001
//
// Shutdown may be called more than once; each call waits as the first.
func (h *Handler) Shutdown(ctx context.Context) error {
	start := time.Now()
	conns, empty := h.connections().startShutdown()
	h.logDebug("websocket: shutting down", "open", len(conns))
	eachConn(conns, func(c *Conn) { c.closeInBackground(core.EvClose, StatusGoingAway, "") })
	select {
	case <-empty:
		h.logDebug("websocket: shut down", "took", time.Since(start))
		return nil
	case <-ctx.Done():
	}
	left := h.connections().stillOpen()
	eachConn(left, func(c *Conn) { c.drop("the server shut down") })
	h.logDebug("websocket: shut down", "took", time.Since(start), "dropped", len(left), "err", ctx.Err())
	return ctx.Err()
}

// logDebug logs at Debug to the Handler's Logger, if it has one.
func (h *Handler) logDebug(msg string, args ...any) {
	if h.Logger != nil {
		h.Logger.Debug(msg, args...)
	}
}

// shutdownWorkers bounds how many connections Shutdown works on at once:
// closing is a write, which a client that does not read can hold up for
// the close timeout; the others go on meanwhile.
const shutdownWorkers = 32

// eachConn calls f for each connection, on up to shutdownWorkers
// goroutines, and returns when all calls have.
func eachConn(conns []*Conn, f func(*Conn)) {
	var wg sync.WaitGroup
	next := make(chan *Conn)
	for range min(len(conns), shutdownWorkers) {
		wg.Go(func() {
			for c := range next {
				f(c)
			}
		})
	}
	for _, c := range conns {
		next <- c
	}
	close(next)
	wg.Wait()
}

// closeInBackground starts the closing handshake for an event of the
// application's that nobody waits on (Shutdown's close, O10; a message
// given up, O14): our close frame, and a timer that ends the connection
// if the peer's close frame does not come within the close timeout (K8).
// It returns the row's error: nil, or ErrConnClosed once closing or ended.
func (c *Conn) closeInBackground(ev core.Event, code Status, message string) error {
	deadline, err := c.startClosing(ev, code, message)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if !c.p.Ended() { // else finish has run or will not look
		c.closeTimer = time.AfterFunc(time.Until(deadline), func() { c.apply(c.stepLocked(core.EvCloseTimeout, 0, ""), nil) })
	}
	c.mu.Unlock()
	return nil
}

// drop gives the connection up without a closing handshake (O15, K15):
// TCP is closed at once (after our close frame, if one is being written).
func (c *Conn) drop(reason string) {
	c.apply(c.stepLocked(core.EvDrop, 0, reason), nil)
}
