package model

import "unicode/utf8"

// Sending: SendText, SendBinary, and the message writer of SendMessage
// (STATE_MACHINE.md, "Message writers").

func (m *Conn) sendText(ev Input) {
	if !utf8.Valid(ev.Data) {
		m.fail(ev.Kind, ErrInvalidUTF8)
		return
	}
	m.sendWhole(ev, OpText, ev.Data)
}

func (m *Conn) sendWhole(ev Input, op byte, payload []byte) {
	f := Frame{Fin: true, Op: op, Payload: payload}
	f.Compressed = m.Deflate != nil && len(payload) >= m.Deflate.threshold()
	if err := m.sendFrame(f); err != NoErr {
		m.fail(ev.Kind, err)
		return
	}
	m.result(Result{Call: ev.Kind})
}

// sendFrame is the Send row for one data frame.
func (m *Conn) sendFrame(f Frame) Err {
	r := m.transition(Send)
	if r.Caller == CallerErrConnClosed {
		return ErrConnClosed
	}
	m.emit(f)
	return NoErr
}

func (m *Conn) sendMessage(ev Input) {
	if ev.Type != OpText && ev.Type != OpBinary {
		m.fail(ev.Kind, ErrMessageType)
		return
	}
	if r := m.transition(Send); r.Caller == CallerErrConnClosed {
		m.fail(ev.Kind, ErrConnClosed)
		return
	}
	m.writer, m.writerType, m.writerOp, m.writerBuf = true, ev.Type, ev.Type, nil
	m.writerDeflating, m.writerFailed = false, NoErr
	m.result(Result{Call: ev.Kind})
}

// openTail is how many bytes at the end of the writer's text form a
// character that is not complete yet.
func (m *Conn) openTail() int {
	if m.writerType != OpText {
		return 0
	}
	for k := 1; k <= 3 && k <= len(m.writerBuf); k++ {
		if utf8.Valid(m.writerBuf[:len(m.writerBuf)-k]) && !utf8.Valid(m.writerBuf[len(m.writerBuf)-k:]) {
			return k
		}
	}
	return 0
}

func (m *Conn) writerWrite(ev Input) {
	if !m.writer {
		m.fail(ev.Kind, ErrWriterClosed)
		return
	}
	if m.writerFailed != NoErr {
		m.fail(ev.Kind, m.writerFailed)
		return
	}
	if r := m.transition(Send); r.Caller == CallerErrConnClosed {
		m.fail(ev.Kind, ErrConnClosed)
		return
	}
	p, err := ev.Data, NoErr
	if m.writerType == OpText && !textSoFar(append(append([]byte{}, m.writerBuf...), p...)) {
		// Take the longest start of p that keeps the text valid.
		n := 0
		for n < len(p) && textSoFar(append(append([]byte{}, m.writerBuf...), p[:n+1]...)) {
			n++
		}
		p, err = p[:n], ErrInvalidUTF8
	}
	switch {
	case len(m.writerBuf)+len(p) <= WriteBufferSize || m.writerDeflating:
		m.writerBuf = append(m.writerBuf, p...)
	case m.Deflate != nil:
		// A full buffer is worth compressing, whatever the threshold:
		// the message is compressed, and its frames leave as the
		// compressor fills them, which the model cannot predict.
		m.writerDeflating = true
		m.writerBuf = append(m.writerBuf, p...)
	default:
		// Full: everything buffered and p leave as one frame, but for
		// an incomplete character at the end.
		m.writerBuf = append(m.writerBuf, p...)
		keep := m.openTail()
		if ferr := m.sendFrame(Frame{Op: m.writerOp, Payload: m.writerBuf[:len(m.writerBuf)-keep]}); ferr != NoErr {
			m.fail(ev.Kind, ferr)
			return
		}
		m.writerOp = OpContinuation
		m.writerBuf = append([]byte{}, m.writerBuf[len(m.writerBuf)-keep:]...)
	}
	if err != NoErr { // bytes refused: the message is given up
		m.giveUpMessage(err)
		err = m.writerFailed
	}
	m.result(Result{Call: ev.Kind, N: len(p), Err: err})
}

func (m *Conn) writerClose(ev Input) {
	if !m.writer {
		m.fail(ev.Kind, ErrWriterClosed)
		return
	}
	m.writer = false
	if m.writerFailed == NoErr && m.openTail() > 0 {
		m.giveUpMessage(ErrInvalidUTF8) // it would end inside a character
	}
	if m.writerFailed != NoErr {
		m.fail(ev.Kind, m.writerFailed)
		return
	}
	f := Frame{Fin: true, Op: m.writerOp, Payload: m.writerBuf}
	f.Compressed = m.writerDeflating || m.Deflate != nil && len(m.writerBuf) >= m.Deflate.threshold()
	m.fail(ev.Kind, m.sendFrame(f))
}

// writerAbandon is CloseWithError with an error: nil if the message was
// given up before any of it left, else what giveUpMessage says.
func (m *Conn) writerAbandon(ev Input) {
	if !m.writer {
		m.fail(ev.Kind, ErrWriterClosed)
		return
	}
	m.writer = false
	if m.writerFailed == NoErr && !m.giveUpMessage(NoErr) {
		m.result(Result{Call: ev.Kind})
		return
	}
	m.fail(ev.Kind, m.writerFailed)
}

// ReasonAbandoned is the reason of the close frame of row O14.
const ReasonAbandoned = "message abandoned"

// giveUpMessage gives up the writer's message for cause and reports
// whether the peer had part of it (STATE_MACHINE.md, "Message writers"):
// then the event Abandon closes the connection, and the writer's calls
// return an error wrapping ErrConnClosed; else nothing is sent and they
// return cause.
func (m *Conn) giveUpMessage(cause Err) (cut bool) {
	buf := m.writerBuf
	m.writerBuf = nil
	if m.writerOp != OpContinuation && !m.writerDeflating {
		m.writerFailed = cause
		return false
	}
	m.writerFailed = WrapsErrConnClose
	if m.writerDeflating { // what the compressor has sent of it, if anything
		m.emit(Frame{Op: m.writerType, Payload: buf, Compressed: true})
	}
	if r := m.transition(Abandon); r.Frames == FramesCloseAbandoned {
		m.emit(Frame{Fin: true, Op: OpClose, Payload: closePayload(1011, ReasonAbandoned)})
		if m.receive != nil { // as at O10: waiting receives return at once
			m.fail(m.receive.Kind, ErrConnClosed)
			m.receive = nil
		}
	}
	return true
}
