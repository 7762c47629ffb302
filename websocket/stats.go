package websocket

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/wsmachine/wsmachine/websocket/internal/core"
)

// ConnStats are a connection's counters, from its opening handshake on.
// Payload bytes are what the application received and sent; wire bytes
// the frames that went over TCP, headers included (not the HTTP
// handshake), so that with compression WireBytesReceived divided by
// PayloadBytesReceived is the compression ratio.
type ConnStats struct {
	MessagesReceived     uint64 // data messages that began to arrive
	MessagesSent         uint64 // data messages sent whole
	PayloadBytesReceived uint64 // payload delivered to receive calls (inflated)
	PayloadBytesSent     uint64 // payload given to send calls and writers
	WireBytesReceived    uint64
	WireBytesSent        uint64
	PingsSent            uint64 // pings: keepalive's (PingInterval) and Ping's
	PongsReceived        uint64

	// RoundTrip is the round-trip time the last successful Ping
	// measured; 0 before one. HandlerStats does not add it up.
	RoundTrip time.Duration
}

// add adds o's counts to s.
func (s *ConnStats) add(o ConnStats) {
	s.MessagesReceived += o.MessagesReceived
	s.MessagesSent += o.MessagesSent
	s.PayloadBytesReceived += o.PayloadBytesReceived
	s.PayloadBytesSent += o.PayloadBytesSent
	s.WireBytesReceived += o.WireBytesReceived
	s.WireBytesSent += o.WireBytesSent
	s.PingsSent += o.PingsSent
	s.PongsReceived += o.PongsReceived
}

// HandlerStats is a snapshot of a Handler's connections (Handler.Stats).
type HandlerStats struct {
	Open     int    // connections open now
	Accepted uint64 // handshakes answered with 101

	// Refused counts the handshakes refused, by why.
	Refused struct {
		NotWebSocket uint64 // not a valid WebSocket handshake (4xx)
		Origin       uint64 // a cross-origin or malformed Origin (default policy)
		AccessOk     uint64 // AccessOk said no, or chose no offered subprotocol
		Limit        uint64 // MaxConnections reached (503)
		ShuttingDown uint64 // after Shutdown (503)
		Failed       uint64 // the connection failed during the handshake
	}

	// Ended counts the connections that have ended, by how.
	Ended struct {
		ClosedByUs   uint64 // our close frame was answered (K4)
		ClosedByPeer uint64 // the peer's close frame, which we answered (O6)
		ReadError    uint64 // EOF or a read error before a closing handshake (O8, K6)
		WriteError   uint64 // a write failed or timed out (O9, K7)
		IdleTimeout  uint64 // nothing came for IdleTimeout (O8, K6)
		CloseTimeout uint64 // our close frame was not answered in time (K8)
		Shutdown     uint64 // dropped by Shutdown's deadline (O15, K15)
		// ProtocolError counts the peer's violations, by the close code
		// we failed the connection with (O7, K5): 1002, 1007, 1009.
		ProtocolError map[Status]uint64
	}

	// ConnStats are the totals over every connection, ended or open.
	ConnStats
}

// connStats is a connection's side table: its counters, updated
// atomically (a snapshot may read them while it runs; each connection
// updates its own, so no cache line is shared between connections), and
// the Handler's set it counts in. A table of its own, one pointer in
// Conn, so that Conn stays within its size class (TestConnFitsItsSizeClass).
type connStats struct {
	set *connSet     // nil for a client's connection
	log *slog.Logger // Handler.Logger, DialOptions.Logger; nil: none

	msgsIn, msgsOut       atomic.Uint64
	payloadIn, payloadOut atomic.Uint64
	wireIn, wireOut       atomic.Uint64
	pingsOut, pongsIn     atomic.Uint64
	roundTrip             atomic.Int64 // Ping's last, in ns
	idleTimedOut          atomic.Bool  // the read that failed was the idle timeout's

	// calls is the state of cancellable calls and Pings (cancel.go,
	// ping.go), made by the first; nil until then. Here rather than in
	// Conn, for the same reason as the counters.
	calls atomic.Pointer[callState]
}

// snapshot reads the counters.
func (s *connStats) snapshot() ConnStats {
	return ConnStats{
		MessagesReceived:     s.msgsIn.Load(),
		MessagesSent:         s.msgsOut.Load(),
		PayloadBytesReceived: s.payloadIn.Load(),
		PayloadBytesSent:     s.payloadOut.Load(),
		WireBytesReceived:    s.wireIn.Load(),
		WireBytesSent:        s.wireOut.Load(),
		PingsSent:            s.pingsOut.Load(),
		PongsReceived:        s.pongsIn.Load(),
		RoundTrip:            time.Duration(s.roundTrip.Load()),
	}
}

// Stats returns the connection's counters so far.
func (c *Conn) Stats() ConnStats { return c.stats.snapshot() }

// sentMessage counts a data message sent whole, of n payload bytes.
func (c *Conn) sentMessage(n int) {
	c.stats.msgsOut.Add(1)
	c.stats.payloadOut.Add(uint64(n))
}

// ending is how a connection ended, for HandlerStats.Ended.
type ending struct {
	ev         core.Event
	code       core.Status // for EvProtocolError
	closedByUs bool        // for EvRecvClose
	idle       bool        // for EvReadFailed
}

// endingOf reads how c ended.
func endingOf(c *Conn) ending {
	c.mu.Lock()
	defer c.mu.Unlock()
	ev, code := c.p.Ending()
	return ending{ev: ev, code: code, closedByUs: c.p.Answered(), idle: c.stats.idleTimedOut.Load()}
}

// count counts the ending into st.
func (end ending) count(st *HandlerStats) {
	e := &st.Ended
	switch end.ev {
	case core.EvRecvClose:
		if end.closedByUs {
			e.ClosedByUs++
		} else {
			e.ClosedByPeer++
		}
	case core.EvReadFailed:
		if end.idle {
			e.IdleTimeout++
		} else {
			e.ReadError++
		}
	case core.EvWriteFailed:
		e.WriteError++
	case core.EvCloseTimeout:
		e.CloseTimeout++
	case core.EvDrop:
		e.Shutdown++
	case core.EvProtocolError:
		if e.ProtocolError == nil {
			e.ProtocolError = make(map[Status]uint64)
		}
		e.ProtocolError[Status(end.code)]++
	}
}

// Stats returns a snapshot of the Handler's connections: how many are
// open, the handshakes accepted and refused, how the others ended, and
// the counters of all of them. Counting costs each connection a few
// atomic additions of its own, none shared.
func (h *Handler) Stats() HandlerStats {
	s := h.connections()
	s.mu.Lock()
	st := s.stats
	st.Open = len(s.open)
	if st.Ended.ProtocolError != nil {
		st.Ended.ProtocolError = make(map[Status]uint64, len(s.stats.Ended.ProtocolError))
		for code, n := range s.stats.Ended.ProtocolError {
			st.Ended.ProtocolError[code] = n
		}
	}
	for c := range s.open {
		st.ConnStats.add(c.stats.snapshot())
	}
	s.mu.Unlock()
	return st
}

// logEnd logs how c ended, if it failed: a violation of the peer's with
// the code we sent, or a drop with its cause. A clean close is not
// logged.
func (c *Conn) logEnd() {
	end := endingOf(c)
	switch end.ev {
	case core.EvRecvClose, core.EvNone, core.EvRefused:
		return
	case core.EvProtocolError:
		c.stats.log.Debug("websocket: protocol error", "code", int(end.code), "err", c.endErr(), "remote", c.RemoteAddr)
		return
	}
	c.stats.log.Debug("websocket: connection dropped", "err", c.endErr(), "remote", c.RemoteAddr)
}
