package model

import "encoding/binary"

// Ping and the cancelled calls (STATE_MACHINE.md, "Ping", "Cancelled
// calls").

// ping is the Ping call: O17 sends a ping with the next count, as 8
// bytes big-endian, and the call waits for the pong with that payload.
func (m *Conn) ping() {
	if r := m.transition(Ping); r.Caller == CallerErrConnClosed {
		m.fail(PingCall, ErrConnClosed)
		return
	}
	m.pinged++
	m.pings = append(m.pings, m.pinged)
	m.emit(Frame{Fin: true, Op: OpPing, Payload: binary.BigEndian.AppendUint64(nil, m.pinged)})
}

// pong completes the Ping that waits for payload, if one does (O2).
func (m *Conn) pong(payload []byte) {
	if len(payload) != 8 {
		return
	}
	id := binary.BigEndian.Uint64(payload)
	for i, p := range m.pings {
		if p == id {
			m.pings = append(m.pings[:i], m.pings[i+1:]...)
			m.result(Result{Call: PingCall})
			return
		}
	}
}

// Pinging reports how many Pings wait for their pong.
func (m *Conn) Pinging() int { return len(m.pings) }

// Pinged reports how many pings Ping has sent: the payload of the last.
func (m *Conn) Pinged() uint64 { return m.pinged }

// cancel ends the context of the calls that wait: the receive that waits
// for the first frame of its message (once it has come, the context no
// longer matters), and every Ping. Each takes the Cancel row: O16 in the
// open state, K16 while closing.
func (m *Conn) cancel() {
	if m.receive != nil && !m.inMessage {
		r := m.transition(Cancel)
		m.fail(m.receive.Kind, cancelErr(r))
		m.receive = nil
	}
	for range m.pings {
		m.fail(PingCall, cancelErr(m.transition(Cancel)))
	}
	m.pings = nil
}

// cancelErr is what a cancelled call gets by the Cancel row r.
func cancelErr(r Row) Err {
	if r.Caller == CallerCtxError {
		return ErrCanceled
	}
	return ErrConnClosed
}
