package model

import "unicode/utf8"

// Closing: the Close call, and how a connection ends (the rows whose TCP
// cell is not "—").

// close is the Close call: the argument checks, then the Close event.
func (m *Conn) close(ev Input) {
	if ev.Code == 1005 && ev.Reason != "" || !m.maySend(ev.Code) {
		m.fail(ev.Kind, ErrStatusCode)
		return
	}
	if len(ev.Reason) > 123 {
		m.fail(ev.Kind, ErrTooLarge)
		return
	}
	if !utf8.ValidString(ev.Reason) {
		m.fail(ev.Kind, ErrInvalidUTF8)
		return
	}
	r := m.transition(Close)
	if r.Caller == CallerErrConnClosed {
		m.fail(ev.Kind, ErrConnClosed)
		return
	}
	m.emit(Frame{Fin: true, Op: OpClose, Payload: closePayload(ev.Code, ev.Reason)})
	m.closing = true
	if m.receive != nil { // O10: waiting receives return at once
		m.fail(m.receive.Kind, ErrConnClosed)
		m.receive = nil
	}
}

// closeTCP is the effect of a row's TCP cell.
func (m *Conn) closeTCP(r Row) {
	m.out = append(m.out, Effect{CloseTCP: &TCPClose{Linger: r.TCP == TCPCloseAfterOurs,
		AfterServer: m.client() && r.TCP == TCPCloseAfterServer}})
}

// closePayload is the payload of a close frame with code and reason;
// 1005: an empty close frame.
func closePayload(code uint16, reason string) []byte {
	if code == 1005 {
		return nil
	}
	return append([]byte{byte(code >> 8), byte(code)}, reason...)
}

// end carries out a row that ends the connection: whoever waits returns.
// endErr is what a receive gets, waiting now or coming later (row T2).
func (m *Conn) end(r Row, endErr Err) {
	m.endErr = endErr
	if r.TCP != TCPNone {
		m.closeTCP(r)
	}
	if m.receive != nil {
		m.fail(m.receive.Kind, endErr)
		m.receive = nil
	}
	for range m.pings {
		m.fail(PingCall, endErr)
	}
	m.pings = nil
	if m.closing {
		err := NoErr
		if r.Caller == CallerCloseWraps {
			err = WrapsErrConnClose
		}
		m.fail(CloseCall, err)
		m.closing = false
	}
}
