package websocket

import "io"

// protocol is a connection's protocol, sans I/O: the state machine of
// STATE_MACHINE.md (step, in state.go) and the reading of the peer's
// frames (here). It holds no socket, lock, goroutine or clock. Its driver
// hands it what the peer sent, as byte slices, and the application's
// calls and the timers, as events; it answers with values: the event a
// frame is, how many bytes it took or still needs, and from step the
// effects (frames to send, what happens to TCP, the caller's error),
// which the driver carries out in one place (Conn.apply). The Conn is its
// driver over a socket; the tests drive it in memory (memconn_test.go),
// byte for byte against model/.
//
// The driver guards it with two locks: the lifecycle (the state and what
// step records) with Conn.mu, the reading (rd) with Conn.readMu, which
// whoever reads from the network holds.
type protocol struct {
	// The lifecycle (Conn.mu). Only state.go reads or writes state
	// (TestOnlyStateGoTouchesState).
	state         state
	closeAnswered bool   // K4: the peer answered our close frame (Close returns nil)
	status        Status // the peer's close code; StatusDropped until one arrives
	// Set before the connection is used and never changed (here, in the
	// padding after status: see TestConnFitsItsSizeClass). client: the
	// client's end, from Dial: it masks, the peer must not. deflate:
	// permessage-deflate was negotiated, so RSV1 may start a message.
	client  bool
	deflate bool
	reason  string
	cause   error // why the connection ended, once it has

	// The reading (Conn.readMu). maxMessageSize bounds a data message's
	// length (inflated, if compressed); negative: no bound.
	maxMessageSize int64
	rd             readState
}

// readState is the position in the peer's frame stream.
type readState struct {
	h         header // the data frame being read
	remaining uint64 // payload bytes of h not read yet
	keyPos    int    // position in h's masking key
	msgSize   uint64 // the lengths of an uncompressed message's frames so far, added up
	inMessage bool   // a data message started and its last byte is not read yet
	ready     bool   // a message started that no receive call has returned yet
	seq       uint64 // counts the messages started
	discarded uint64 // the last message a receive call skipped unfinished
	msgType   MessageType
	utf8      utf8Validator
	// compressed: the message came with RSV1 (permessage-deflate) and
	// is inflated by the driver (Conn.readInflated), which hands what
	// comes out to inflated; inflatedSize counts it.
	compressed   bool
	inflatedSize int64
}

// input is what the peer's bytes amount to for step: an event of the
// table with its close code and reason, or evNone.
type input struct {
	ev      event
	code    Status
	reason  string
	payload []byte // a ping's: the pong's payload
}

// violation is the input for bytes that break the protocol (O7, K5).
func violation(code Status, reason string) input {
	return input{ev: evProtocolError, code: code, reason: reason}
}

// The violations found in a message's payload. The methods that find
// them return pointers to these, nil if the bytes are fine: the drivers
// call those methods on the path of every message, where a goroutine's
// stack depth is what an idle connection keeps (see Conn.nextFrame), so
// their answer is kept to a word.
var (
	invalidUTF8      = violation(StatusInvalidData, "invalid UTF-8 in text message")
	unfinishedUTF8   = violation(StatusInvalidData, "text message ends inside a UTF-8 sequence")
	tooLargeInflated = violation(StatusTooLarge, "message too large once inflated")
	invalidDeflate   = violation(StatusInvalidData, "invalid compressed data")
)

// frame takes the next frame from b, the bytes buffered from the peer
// (RFC 6455 §5.2): of a data frame its header, leaving the payload for
// payload; a control frame whole, unmasked in place (so b must stay the
// caller's until the input is carried out). It returns how many bytes it
// took and the event the frame is: evRecvData for a data frame's header,
// evProtocolError for a frame that breaks the rules. If b holds less than
// it needs, it takes nothing and returns evNone and how many bytes it
// needs.
func (p *protocol) frame(b []byte) (n, need int, in input) {
	if len(b) < 2 {
		return 0, 2, input{ev: evNone}
	}
	if n = headerLen(b[1]); len(b) < n {
		return 0, n, input{ev: evNone}
	}
	h, minimal := parseHeader(b)
	if pe := checkHeader(h, minimal, checkFlagsOf(p.rd.inMessage, p.deflate, p.client)); pe != nil {
		return 0, 0, violation(pe.code, pe.reason)
	}
	if h.op.isControl() {
		return p.control(h, b, n)
	}
	size := h.length
	compressed := h.rsv&rsvDeflate != 0
	if h.op == opContinuation {
		// With a limit, both terms are below 2^63, so the sum fits;
		// without one, the sum is never compared.
		size += p.rd.msgSize
		compressed = p.rd.compressed
	}
	switch {
	case compressed:
		// Limited by what it inflates to, checked as it inflates
		// (inflated), whatever its length on the wire: an encoder
		// that emits small stored blocks makes incompressible data
		// longer than itself by more than any fixed margin.
		size = 0
	case p.maxMessageSize >= 0 && size > uint64(p.maxMessageSize):
		return 0, 0, violation(StatusTooLarge, "message too large")
	}
	p.rd.h, p.rd.remaining, p.rd.keyPos, p.rd.msgSize = h, h.length, 0, size
	if h.op != opContinuation {
		p.rd.inMessage, p.rd.ready = true, true
		p.rd.seq++
		p.rd.msgType = MessageType(h.op)
		p.rd.utf8 = utf8Validator{}
		p.rd.compressed, p.rd.inflatedSize = compressed, 0
	}
	return n, 0, input{ev: evRecvData}
}

// control takes a control frame whose header, n bytes, is at the start
// of b (RFC 6455 §5.5).
func (p *protocol) control(h header, b []byte, n int) (int, int, input) {
	end := n + int(h.length)
	if len(b) < end {
		return 0, end, input{ev: evNone}
	}
	payload := b[n:end]
	mask(h.key, 0, payload)
	switch h.op {
	case opPing:
		return end, 0, input{ev: evRecvPing, payload: payload}
	case opPong:
		return end, 0, input{ev: evRecvPong}
	}
	code, reason, pe := parseClosePayload(payload)
	if pe != nil {
		return end, 0, violation(pe.code, pe.reason)
	}
	return end, 0, input{ev: evRecvClose, code: code, reason: reason}
}

// wireStep is what reading the current message's payload as it is on
// the wire calls for next.
type wireStep uint8

const (
	wirePayload wireStep = iota // take up to wanted bytes of payload
	wireFrame                   // its next frame, before more payload (RecvData is stepped first)
	wireEnd                     // its frames have ended: io.EOF (see payload)
)

// next says what reading the current message's payload calls for.
func (p *protocol) next() wireStep {
	switch {
	case p.rd.remaining > 0:
		return wirePayload
	case !p.rd.inMessage || p.rd.h.fin:
		return wireEnd
	}
	return wireFrame
}

// wanted is how many of up to max payload bytes the current frame has.
func (p *protocol) wanted(max int) int {
	return int(min(uint64(max), p.rd.remaining))
}

// payload takes b, payload of the current frame just taken from the
// peer: unmasks it in place and, for a text message read as it is on the
// wire (not deflated), checks its UTF-8. It returns the violation if the
// bytes break the rules, and whether they end the message.
func (p *protocol) payload(b []byte, deflated bool) (bad *input, end bool) {
	if p.rd.h.masked {
		p.rd.keyPos = mask(p.rd.h.key, p.rd.keyPos, b)
	}
	p.rd.remaining -= uint64(len(b))
	if !deflated && p.rd.msgType == Text && !p.rd.utf8.feed(b) {
		return &invalidUTF8, false
	}
	return nil, p.rd.remaining == 0 && p.rd.h.fin && !deflated
}

// skip takes n bytes of the current frame's payload unread: a message
// not delivered after our close (K1).
func (p *protocol) skip(n uint64) { p.rd.remaining -= n }

// dropMessage ends a message whose frames were skipped to the end.
func (p *protocol) dropMessage() { p.rd.inMessage, p.rd.ready = false, false }

// endMessage finishes a message whose last byte has been taken: nil, or
// the violation of a text that ends inside a character.
func (p *protocol) endMessage() (bad *input) {
	if p.rd.msgType == Text && !p.rd.utf8.complete() {
		return &unfinishedUTF8
	}
	p.rd.inMessage = false
	return nil
}

// inflateRoom cuts b, where a compressed message is to be inflated, so
// that what goes past MaxMessageSize shows by one byte.
func (p *protocol) inflateRoom(b []byte) []byte {
	if p.maxMessageSize >= 0 && int64(len(b)) > p.maxMessageSize-p.rd.inflatedSize {
		return b[:p.maxMessageSize-p.rd.inflatedSize+1]
	}
	return b
}

// inflated judges b, just inflated from the current compressed message,
// and err, what the decompressor said with it: an invalid character
// before the limit first (that is what the peer did wrong), then the
// limit, then corrupt data (io.ErrUnexpectedEOF: cut inside a block, see
// inflateEnd). It returns nil if the message may go on (err nil) or has
// ended well (io.EOF), else the violation.
func (p *protocol) inflated(b []byte, err error) (bad *input) {
	within := len(b)
	if p.maxMessageSize >= 0 && p.rd.inflatedSize+int64(len(b)) > p.maxMessageSize {
		within = int(p.maxMessageSize - p.rd.inflatedSize)
	}
	p.rd.inflatedSize += int64(len(b))
	switch {
	case p.rd.msgType == Text && !p.rd.utf8.feed(b[:within]):
		return &invalidUTF8
	case within < len(b):
		return &tooLargeInflated
	case err != nil && err != io.EOF:
		return &invalidDeflate
	}
	return nil
}

// inflatedEnd judges where a compressed message's DEFLATE stream ended
// (io.EOF from the decompressor at a final block): tail is how many bytes
// of inflateEnd, which the receiver puts behind the payload, the
// decompressor had read. Normally it stops at inflateEnd's own final
// block; else at the peer's (RFC 7692 §7.2.3.4), and the rest of the
// message's frames is not part of it (tail 0: the driver skips them). A
// decoder reads no byte that holds no bit of the block it decodes, so a
// final block that ends inside inflateEnd began in the peer's bytes: the
// message was cut inside that block, and is corrupt.
func (p *protocol) inflatedEnd(tail int) (bad *input) {
	if tail > 0 && tail < len(inflateEnd) {
		return &invalidDeflate
	}
	return nil
}
