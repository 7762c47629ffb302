package coretest

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"unicode/utf8"

	"github.com/klauspost/compress/flate"

	"github.com/wsmachine/wsmachine/model"
	"github.com/wsmachine/wsmachine/websocket/internal/core"
	"github.com/wsmachine/wsmachine/websocket/internal/wstest"
)

// memConn is the protocol's second driver, beside Conn: it runs a
// connection, a server's or a client's, in memory, synchronously, without
// socket, goroutine or clock, so that the property and fuzz tests reach
// the protocol at full speed (core's TestCoreAgreesWithModel and
// FuzzCoreRapid, FuzzCore here). It does with the protocol's answers what
// Conn does: the frames it asks for go to out, TCP's end is
// recorded, and a call that must wait for the peer (a receive, Close)
// stays pending until an input completes it. Like the background reader
// and a receiver together, it takes in the peer's bytes after every input:
// frame by frame, stopping at a data message that waits for a receive
// call; while closing, data is skipped.
//
// A compressed message is inflated once its last frame is in, with the
// library's decompressor, history and limits, where Conn inflates as the
// frames come; the verdict is the same (the model's too), the moment the
// connection fails may differ. Our messages leave uncompressed (the tests
// set a threshold above their length). What only sockets show (timeouts,
// resets, concurrency, the message writer's buffering, compressing)
// stays with the socket-level tests.
type memConn struct {
	p    core.Protocol
	in   []byte // the peer's bytes not taken in yet
	eof  bool   // the peer ended TCP
	out  []byte // the frames written
	keys uint32 // a client's masking keys so far

	received *core.History // with permessage-deflate, the peer's context takeover; else nil
	wire     []byte        // a compressed message's payload as it came, so far

	pinged  uint64       // the Pings so far
	pings   []uint64     // the payloads of the Pings waiting for their pong
	recv    *model.Input // the receive call waiting, if any: &call
	call    model.Input
	msg     []byte // the payload of the message it reads, so far
	closing bool   // Close waits for the peer's close frame
	tcp     *model.TCPClose
	results []wstest.Result
}

// newMemConn returns an open connection, a server's or, if client, a
// client's, with a message size limit and, unless z is nil,
// permessage-deflate.
func newMemConn(maxMessageSize int64, deflate bool, received *core.History, client bool) *memConn {
	m := &memConn{p: core.Protocol{MaxMessageSize: maxMessageSize, Deflate: deflate, Client: client}, received: received}
	m.p.Step(core.EvAccepted, 0, "")
	return m
}

// input applies one of the model's inputs.
func (m *memConn) input(ev model.Input) {
	switch ev.Kind {
	case model.ClientBytes:
		if !m.p.Ended() && !m.eof {
			m.in = append(m.in, ev.Data...)
		}
	case model.ClientEOF:
		m.eof = true
	case model.PingTick:
		m.apply(m.p.Step(core.EvPingTimer, 0, ""), nil)
	case model.CloseTimer:
		m.apply(m.p.Step(core.EvCloseTimeout, 0, ""), nil)
	case model.DropCall:
		m.apply(m.p.Step(core.EvDrop, 0, "the server shut down"), nil)
	case model.SendText:
		if !utf8.Valid(ev.Data) {
			m.result(ev.Kind, core.ErrInvalidUTF8)
			break
		}
		m.send(ev.Kind, core.OpText, ev.Data)
	case model.SendBinary:
		m.send(ev.Kind, core.OpBinary, ev.Data)
	case model.ReceiveMessage, model.ReceiveText, model.ReceiveBinary:
		if fx := m.p.Step(core.EvReceive, 0, ""); fx.Err != nil {
			m.result(ev.Kind, fx.Err)
			break
		}
		m.call, m.msg, m.wire = ev, m.msg[:0], m.wire[:0]
		m.recv = &m.call
	case model.CloseCall:
		m.close(core.Status(ev.Code), ev.Reason)
	case model.PingCall:
		m.ping()
	case model.CancelCall:
		m.cancel()
	}
	m.read()
}

// send is SendText and SendBinary: one frame, unmasked as servers send.
func (m *memConn) send(call model.Kind, op core.Opcode, payload []byte) {
	fx := m.p.Step(core.EvSend, 0, "")
	if fx.Err == nil {
		m.write(op, payload)
	}
	m.result(call, fx.Err)
}

// close is Close: its argument checks, then the Close event (O10); a
// receive waiting returns at once.
func (m *memConn) close(code core.Status, reason string) {
	if err := m.p.CloseArgs(code, reason); err != nil {
		m.result(model.CloseCall, err)
		return
	}
	fx := m.p.Step(core.EvClose, code, reason)
	if fx.Err != nil {
		m.result(model.CloseCall, fx.Err)
		return
	}
	m.closing = true
	if m.recv != nil {
		m.result(m.recv.Kind, core.ErrConnClosed)
		m.recv = nil
	}
	m.apply(fx, nil)
}

// read takes in the peer's bytes as far as the protocol lets it.
func (m *memConn) read() {
	for !m.p.Ended() {
		step, verdict := core.WireFrame, core.DeliverData // between messages: the next frame
		if m.p.InMessage() {
			verdict = m.p.RecvData()
			if verdict == core.DataEnded || verdict == core.DeliverData && m.recv == nil {
				return // O1: the message waits for a receive call
			}
			step = m.p.Next()
		}
		switch step {
		case core.WireEnd:
			switch {
			case verdict == core.DiscardData:
				m.p.DropMessage()
			case m.p.Compressed() && m.inflate():
			default:
				if bad := m.p.EndMessage(); bad != nil {
					m.take(*bad)
				} else {
					m.finishReceive()
				}
			}
		case core.WireFrame:
			n, _, in := m.p.Frame(m.in)
			if in.Ev == core.EvNone {
				m.needMore()
				return
			}
			m.take(in)
			m.in = m.in[n:]
		case core.WirePayload:
			n := m.p.Wanted(len(m.in))
			if n == 0 {
				m.needMore()
				return
			}
			if verdict == core.DiscardData {
				m.p.Skip(uint64(n))
			} else if m.p.Compressed() {
				m.p.Payload(m.in[:n], true) // unmasked; checked once inflated
				m.wire = append(m.wire, m.in[:n]...)
			} else {
				bad, _ := m.p.Payload(m.in[:n], false)
				m.msg = append(m.msg, m.in[:n]...)
				if bad != nil {
					m.take(*bad)
				}
			}
			m.in = m.in[n:]
		}
	}
}

// inflate inflates the compressed message whose frames are all in, as
// Conn.readInflated does, into msg; it reports whether the message broke
// the rules (and the connection has failed).
func (m *memConn) inflate() (failed bool) {
	src := &deflatedBytes{wire: m.wire}
	if len(m.wire) == 0 {
		src.tail = 4 // an empty message: the final block alone
	}
	fr := flateReaders.Get().(io.ReadCloser)
	defer flateReaders.Put(fr)
	fr.(flate.Resetter).Reset(src, m.received.Dict())
	var buf [512]byte
	for {
		b := m.p.InflateRoom(buf[:])
		n, err := fr.Read(b)
		bad := m.p.Inflated(b[:n], err)
		if bad == nil {
			m.received.Add(b[:n])
			m.msg = append(m.msg, b[:n]...)
			if err == nil {
				continue
			}
			bad = m.p.InflatedEnd(src.tail)
		}
		if bad != nil {
			m.take(*bad)
		}
		return bad != nil
	}
}

// flateReaders are the decompressors, the library's (klauspost's), as the
// websocket package pools them: one per message would cost the fuzzers
// more than the rest of a scenario.
var flateReaders = sync.Pool{New: func() any { return flate.NewReader(bytes.NewReader(nil)) }}

// deflatedBytes is what the decompressor reads: a compressed message's
// payload, then InflateEnd; tail counts the bytes of InflateEnd read. It
// is an io.ByteReader, so that the decompressor reads no byte ahead.
type deflatedBytes struct {
	wire []byte
	tail int
}

func (d *deflatedBytes) ReadByte() (byte, error) {
	if len(d.wire) > 0 {
		b := d.wire[0]
		d.wire = d.wire[1:]
		return b, nil
	}
	if d.tail == len(core.InflateEnd) {
		return 0, io.EOF
	}
	d.tail++
	return core.InflateEnd[d.tail-1], nil
}

func (d *deflatedBytes) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	b, err := d.ReadByte()
	if err != nil {
		return 0, err
	}
	p[0] = b
	return 1, nil
}

// needMore is reached when the reader waits for bytes: at the end of TCP
// the read fails (O8, K7).
func (m *memConn) needMore() {
	if m.eof {
		m.apply(m.p.Step(core.EvReadFailed, 0, ""), nil)
	}
}

// take steps what the peer's bytes amount to, as Conn.take does.
func (m *memConn) take(in core.Input) {
	if in.Ev == core.EvNone || in.Ev == core.EvRecvData {
		return
	}
	m.apply(m.p.Step(in.Ev, in.Code, in.Reason), in.Payload)
	if in.Ev == core.EvRecvPong {
		m.pong(in.Payload)
	}
}

// ping is Conn.Ping: the Ping event, then a ping with the next count as
// its payload; the call waits for its pong.
func (m *memConn) ping() {
	fx := m.p.Step(core.EvPing, 0, "")
	if fx.Err != nil {
		m.result(model.PingCall, fx.Err)
		return
	}
	m.pinged++
	m.pings = append(m.pings, m.pinged)
	m.apply(fx, binary.BigEndian.AppendUint64(nil, m.pinged))
}

// pong completes the Ping waiting for payload, as Conn.pongArrived does.
func (m *memConn) pong(payload []byte) {
	for i, id := range m.pings {
		if len(payload) == 8 && binary.BigEndian.Uint64(payload) == id {
			m.pings = append(m.pings[:i], m.pings[i+1:]...)
			m.result(model.PingCall, nil)
			return
		}
	}
}

// cancel ends the context of the calls that wait, as a Conn's context
// calls see it: a receive waiting for its message's first frame (once it
// has come, the message is received) and every Ping step Cancel.
func (m *memConn) cancel() {
	if m.recv != nil && !m.p.InMessage() {
		m.result(m.recv.Kind, m.canceled())
		m.recv = nil
	}
	for range m.pings {
		m.result(model.PingCall, m.canceled())
	}
	m.pings = nil
}

// canceled is what a call whose context ended gets: O16's context error,
// or the state's (K16, T1, T3).
func (m *memConn) canceled() error {
	if fx := m.p.Step(core.EvCancel, 0, ""); fx.Err != nil {
		return fx.Err
	}
	return errCanceled
}

// errCanceled is what Conn's calls return at O16, made once: fmt is the
// slowest thing a scenario could do.
var errCanceled = fmt.Errorf("cancelled: %w", context.Canceled)

// apply carries out a transition's effects, as Conn.apply does.
func (m *memConn) apply(fx core.Effects, payload []byte) {
	if fx.Pong {
		m.write(core.OpPong, payload)
	}
	if fx.Ping {
		m.write(core.OpPing, payload)
	}
	if fx.SendClose {
		m.write(core.OpClose, core.AppendClosePayload(nil, fx.CloseCode, fx.CloseReason))
	}
	if fx.TCP != core.TCPNone && fx.TCP != core.TCPEnd {
		m.tcp = &model.TCPClose{Linger: fx.TCP == core.TCPCloseAfterOurs, AfterServer: m.p.AwaitsServerFIN(fx.TCP)}
		if m.recv != nil {
			m.result(m.recv.Kind, m.p.EndErr())
			m.recv = nil
		}
		for range m.pings {
			m.result(model.PingCall, m.p.EndErr())
		}
		m.pings = nil
		if m.closing {
			m.result(model.CloseCall, m.p.CloseResult())
			m.closing = false
		}
	}
}

// write puts a frame on the wire: as a server writes it, or as a client
// does, masked with a key other than the last one's (Conn takes its keys
// from crypto/rand; here they count, so that a failure repeats).
func (m *memConn) write(op core.Opcode, payload []byte) {
	start := len(m.out)
	m.out = core.AppendHeader(m.out, true, op, len(payload))
	if !m.p.Client {
		m.out = append(m.out, payload...)
		return
	}
	m.keys++
	key := [4]byte{byte(m.keys), byte(m.keys >> 8), 0xa5, 0x5a}
	m.out[start+1] |= 0x80
	m.out = append(m.out, key[:]...)
	m.out = append(m.out, payload...)
	core.Mask(key, 0, m.out[len(m.out)-len(payload):])
}

// finishReceive returns the message read to its end to the receive call
// waiting, with ReceiveText's and ReceiveBinary's checks of type and
// length (their socket-level tests check the same on a Conn).
func (m *memConn) finishReceive() {
	call := m.recv
	m.recv = nil
	r := wstest.Result{Call: call.Kind}
	want := core.OpText
	if call.Kind == model.ReceiveBinary {
		want = core.OpBinary
	}
	switch {
	case call.Kind == model.ReceiveMessage:
		r.Type, r.Data = byte(m.p.MessageOp()), append([]byte(nil), m.msg...)
	case m.p.MessageOp() != want:
		r.Err = core.ErrMessageType
	case len(m.msg) <= call.N:
		r.Data, r.N = append([]byte(nil), m.msg...), len(m.msg)
	default:
		cut := m.msg[:call.N]
		if want == core.OpText {
			cut = cut[:len(cut)-core.OpenTail(cut)]
		}
		r.Data, r.N, r.Err = append([]byte(nil), cut...), len(cut), core.ErrTooLarge
	}
	m.results = append(m.results, r)
}

func (m *memConn) result(call model.Kind, err error) {
	m.results = append(m.results, wstest.Result{Call: call, Err: err})
}
