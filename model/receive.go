package model

import (
	"strconv"
	"unicode/utf8"
)

// Receiving: the receive calls, and the reader that takes in the peer's
// bytes frame by frame (STATE_MACHINE.md, "Frame checks").

func (m *Conn) startReceive(ev Input) {
	switch r := m.transition(Receive); r.Caller {
	case CallerErrConnClosed:
		m.fail(ev.Kind, ErrConnClosed)
		return
	case CallerEndError:
		m.fail(ev.Kind, m.endErr)
		return
	}
	e := ev
	m.receive = &e
}

// finishReceive returns the complete message to the waiting receive call.
func (m *Conn) finishReceive() {
	ev, data := m.receive, m.msgData
	m.receive = nil
	res := Result{Call: ev.Kind}
	wantType := map[Kind]byte{ReceiveText: OpText, ReceiveBinary: OpBinary}[ev.Kind]
	if ev.Kind == ReceiveMessage {
		res.Type, res.Data = m.msgType, data
	} else if m.msgType != wantType {
		res.Err = ErrMessageType
	} else if len(data) <= ev.N {
		res.Data, res.N = data, len(data)
	} else {
		// Too long: the first N bytes, for text cut back to a
		// character boundary.
		cut := ev.N
		for ev.Kind == ReceiveText && cut > 0 && !utf8.Valid(data[:cut]) {
			cut--
		}
		res.Data, res.N, res.Err = data[:cut], cut, ErrTooLarge
	}
	m.result(res)
}

// read takes in client bytes as the server's reader does: frame by frame,
// acting on control frames, stopping at the first frame of a data message
// until a receive call takes it; while closing, data is discarded.
func (m *Conn) read() {
	for m.State == Open || m.State == Closing {
		if m.inMessage {
			if m.State == Open && m.receive == nil {
				return // the message waits for a receive call
			}
			if m.remaining > 0 {
				if len(m.in) == 0 {
					m.needMore()
					return
				}
				n := min(m.remaining, uint64(len(m.in)))
				chunk := unmask(m.in[:n], m.frame.key, m.offset)
				m.in, m.remaining, m.offset = m.in[n:], m.remaining-n, m.offset+int(n)
				if m.State == Open && m.msgCompressed {
					m.msgWire = append(m.msgWire, chunk...)
				} else if m.State == Open {
					m.msgData = append(m.msgData, chunk...)
					if m.msgType == OpText && !textSoFar(m.msgData) {
						m.protocolError(1007, "invalid UTF-8 in text message")
						return
					}
				}
				continue
			}
			if m.frame.fin {
				if m.State == Open && m.msgCompressed && !m.inflateMessage() {
					return
				}
				if m.State == Open && m.msgType == OpText && !utf8.Valid(m.msgData) {
					m.protocolError(1007, "text message ends inside a UTF-8 sequence")
					return
				}
				m.inMessage = false
				if m.State == Open {
					m.finishReceive()
				}
				continue
			}
		}
		if !m.nextFrame() {
			return
		}
	}
}

// inflateMessage judges the compressed message whose frames have all
// arrived; false if it failed the connection. Its inflated bytes become
// msgData and, with client context takeover, part of the history.
func (m *Conn) inflateMessage() bool {
	var dict []byte
	if m.RecvContextTakeover() {
		dict = m.recvHistory
	}
	out, code, reason := judgeCompressed(m.msgWire, dict, m.msgType == OpText, m.MaxMessageSize)
	if code != 0 {
		m.protocolError(code, reason)
		return false
	}
	m.msgData, m.msgWire = out, nil
	if m.RecvContextTakeover() {
		m.recvHistory = AddHistory(m.recvHistory, out)
	}
	return true
}

// needMore is reached when the reader waits for bytes: at the end of TCP
// the connection is dropped.
func (m *Conn) needMore() {
	if m.eof {
		r := m.transition(ReadFailed)
		m.end(r, ErrConnClosed)
	}
}

// nextFrame takes in the next frame header, and a control frame whole.
// It returns false if the reader stops.
func (m *Conn) nextFrame() bool {
	h, ok := readHeader(m.in)
	if !ok {
		m.needMore()
		return false
	}
	if code, reason := violation(h, m.inMessage, m.Deflate != nil, m.client()); code != 0 {
		m.protocolError(code, reason)
		return false
	}
	if isControl(h.op) {
		if uint64(len(m.in)) < uint64(h.size)+h.length {
			m.needMore()
			return false
		}
		payload := unmask(m.in[h.size:h.size+int(h.length)], h.key, 0)
		m.in = m.in[h.size+int(h.length):]
		return m.control(h.op, payload)
	}
	compressed := m.msgCompressed
	if h.op != OpContinuation {
		m.msgSize, compressed = 0, h.rsv == rsv1
	}
	// A compressed message is limited by what it inflates to alone.
	if m.MaxMessageSize >= 0 && !compressed && m.msgSize+h.length > uint64(m.MaxMessageSize) {
		m.protocolError(1009, "message too large")
		return false
	}
	m.msgSize += h.length
	m.in = m.in[h.size:]
	m.frame, m.remaining, m.offset = h, h.length, 0
	if h.op != OpContinuation {
		m.inMessage, m.msgType, m.msgData = true, h.op, nil
		m.msgCompressed, m.msgWire = compressed, nil
	}
	m.transition(RecvData)
	return true
}

// control acts on a control frame; false if the reader stops.
func (m *Conn) control(op byte, payload []byte) bool {
	switch op {
	case OpPing:
		if r := m.transition(RecvPing); r.Frames == FramesPong {
			m.emit(Frame{Fin: true, Op: OpPong, Payload: payload})
		}
	case OpPong:
		m.transition(RecvPong)
		m.pong(payload)
	case OpClose:
		code, reason := uint16(1005), ""
		if len(payload) >= 2 {
			code, reason = uint16(payload[0])<<8|uint16(payload[1]), string(payload[2:])
			if !m.validFromPeer(code) {
				m.protocolError(1002, "invalid close code "+strconv.Itoa(int(code)))
				return false
			}
			if !utf8.ValidString(reason) {
				m.protocolError(1007, "close reason is not valid UTF-8")
				return false
			}
		}
		r := m.transition(RecvClose)
		m.Status, m.Reason = code, reason
		if r.Frames == FramesCloseEcho {
			reply := code // echoed, as far as we may send it
			if reply != 1005 && !m.maySend(reply) {
				reply = 1000
			}
			m.emit(Frame{Fin: true, Op: OpClose, Payload: closePayload(reply, "")})
		}
		m.end(r, ErrConnClosed)
		return false
	}
	return true
}

// protocolError fails the connection (RFC 6455 §7.1.7).
func (m *Conn) protocolError(code uint16, reason string) {
	r := m.transition(ProtocolError)
	if r.Frames == FramesCloseError {
		m.emit(Frame{Fin: true, Op: OpClose, Payload: closePayload(code, reason)})
	}
	m.end(r, WrapsErrConnClose)
}
