// Package core is a WebSocket connection's protocol, sans I/O: the state
// machine of STATE_MACHINE.md and the reading of the peer's frames, with
// the codec both need. It imports no network, lock, goroutine or clock, so
// that what it decides is decided the same way by every driver: the
// websocket package's Conn, over a socket, and the tests' memConn, in
// memory (package coretest), byte for byte against model/.
package core

import "io"

// Protocol is a connection's protocol: the state machine of
// STATE_MACHINE.md (Step, in state.go) and the reading of the peer's
// frames (here). Its driver hands it what the peer sent, as byte slices,
// and the application's calls and the timers, as events; it answers with
// values: the event a frame is, how many bytes it took or still needs,
// and from Step the effects (frames to send, what happens to TCP, the
// caller's error),
// which the driver carries out in one place (Conn.apply). Its zero value
// is a server's connection in the connecting state; the driver sets
// Client, Deflate and MaxMessageSize before it steps EvAccepted.
//
// The driver guards it with two locks: the lifecycle (the state and what
// step records) with Conn.mu, the reading (rd) with Conn.readMu, which
// whoever reads from the network holds.
type Protocol struct {
	// The lifecycle (Conn.mu). Only state.go reads or writes state
	// (TestOnlyStateGoTouchesState).
	state         State
	closeAnswered bool   // K4: the peer answered our close frame (Close returns nil)
	status        Status // the peer's close code; 0 until one arrives (PeerClose)
	// Set before the connection is used and never changed (here, in the
	// padding after status: see websocket's TestConnFitsItsSizeClass).
	// Client: the client's end, from Dial: it masks, the peer must not.
	// Deflate: permessage-deflate was negotiated, so RSV1 may start a
	// message.
	Client  bool
	Deflate bool
	// How the connection ended, in the last of the padding: the event
	// that took it into closed or dropped, and for a violation of the
	// peer's, the code we sent less 1000 (Ending).
	endEv   Event
	endCode uint8
	reason  string
	cause   error // why the connection ended, once it has

	// The reading (Conn.readMu). MaxMessageSize bounds a data message's
	// length (inflated, if compressed); negative: no bound. Set before
	// the connection is used.
	MaxMessageSize int64
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
	msgType   Opcode
	utf8      UTF8
	// compressed: the message came with RSV1 (permessage-deflate) and
	// is inflated by the driver (Conn.readInflated), which hands what
	// comes out to Inflated; inflatedSize counts it.
	compressed   bool
	inflatedSize int64
}

// Input is what the peer's bytes amount to for step: an event of the
// table with its close code and reason, or EvNone.
type Input struct {
	Ev      Event
	Code    Status
	Reason  string
	Payload []byte // a ping's (the pong's payload) or a pong's (which Ping it answers)
}

// violation is the input for bytes that break the protocol (O7, K5).
func violation(code Status, reason string) Input {
	return Input{Ev: EvProtocolError, Code: code, Reason: reason}
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

// Frame takes the next frame from b, the bytes buffered from the peer
// (RFC 6455 §5.2): of a data frame its header, leaving the payload for
// payload; a control frame whole, unmasked in place (so b must stay the
// caller's until the input is carried out). It returns how many bytes it
// took and the event the frame is: EvRecvData for a data frame's header,
// EvProtocolError for a frame that breaks the rules. If b holds less than
// it needs, it takes nothing and returns EvNone and how many bytes it
// needs.
func (p *Protocol) Frame(b []byte) (n, need int, in Input) {
	if len(b) < 2 {
		return 0, 2, Input{Ev: EvNone}
	}
	if n = HeaderLen(b[1]); len(b) < n {
		return 0, n, Input{Ev: EvNone}
	}
	h, minimal := parseHeader(b)
	if pe := checkHeader(h, minimal, checkFlagsOf(p.rd.inMessage, p.Deflate, p.Client)); pe != nil {
		return 0, 0, violation(pe.code, pe.reason)
	}
	if h.op.IsControl() {
		return p.control(h, b, n)
	}
	size := h.length
	compressed := h.rsv&rsvDeflate != 0
	if h.op == OpContinuation {
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
	case p.MaxMessageSize >= 0 && size > uint64(p.MaxMessageSize):
		return 0, 0, violation(StatusTooLarge, "message too large")
	}
	p.rd.h, p.rd.remaining, p.rd.keyPos, p.rd.msgSize = h, h.length, 0, size
	if h.op != OpContinuation {
		p.rd.inMessage, p.rd.ready = true, true
		p.rd.seq++
		p.rd.msgType = h.op
		p.rd.utf8 = UTF8{}
		p.rd.compressed, p.rd.inflatedSize = compressed, 0
	}
	return n, 0, Input{Ev: EvRecvData}
}

// control takes a control frame whose header, n bytes, is at the start
// of b (RFC 6455 §5.5).
func (p *Protocol) control(h header, b []byte, n int) (int, int, Input) {
	end := n + int(h.length)
	if len(b) < end {
		return 0, end, Input{Ev: EvNone}
	}
	payload := b[n:end]
	Mask(h.key, 0, payload)
	switch h.op {
	case OpPing:
		return end, 0, Input{Ev: EvRecvPing, Payload: payload}
	case OpPong:
		return end, 0, Input{Ev: EvRecvPong, Payload: payload}
	}
	code, reason, pe := parseClosePayload(payload)
	if pe != nil {
		return end, 0, violation(pe.code, pe.reason)
	}
	return end, 0, Input{Ev: EvRecvClose, Code: code, Reason: reason}
}

// MessageOp is the current message's opcode: OpText or OpBinary.
func (p *Protocol) MessageOp() Opcode { return p.rd.msgType }

// Seq numbers the current message: the messages started so far.
func (p *Protocol) Seq() uint64 { return p.rd.seq }

// InMessage reports whether the current message's last byte is still to
// come.
func (p *Protocol) InMessage() bool { return p.rd.inMessage }

// Remaining is how much of the current frame's payload is still to come.
func (p *Protocol) Remaining() uint64 { return p.rd.remaining }

// Compressed reports whether the current message came with RSV1: the
// driver inflates it (Inflated).
func (p *Protocol) Compressed() bool { return p.rd.compressed }

// SkipUnfinished marks the message a receive call took and left
// unfinished as skipped, so that its reader reports it (Reader), and
// reports whether there is one: the driver then reads it to its end.
func (p *Protocol) SkipUnfinished() bool {
	if p.rd.inMessage && !p.rd.ready {
		p.rd.discarded = p.rd.seq
		return true
	}
	return false
}

// TakeReady hands a message whose first frame has come, and which no
// receive call has taken yet, to the receive call asking: it reports
// whether there is one.
func (p *Protocol) TakeReady() bool {
	ready := p.rd.ready
	p.rd.ready = false
	return ready
}

// Reader says of the reader of message seq whether its message is the
// current one, and if not, whether a later receive call skipped it
// unfinished (else it was read to its end).
func (p *Protocol) Reader(seq uint64) (current, skipped bool) {
	return seq == p.rd.seq && p.rd.inMessage, seq == p.rd.discarded
}

// UnmaskByte takes b, the next byte of the current frame's payload, and
// returns it unmasked: the decompressor's byte-at-a-time read. An
// unmasked frame's key is zero (parseHeader), so no test is needed on
// this per-byte path.
func (p *Protocol) UnmaskByte(b byte) byte {
	b ^= p.rd.h.key[p.rd.keyPos&3]
	p.rd.keyPos++
	p.rd.remaining--
	return b
}

// WireStep is what reading the current message's payload as it is on
// the wire calls for next.
type WireStep uint8

const (
	WirePayload WireStep = iota // take up to wanted bytes of payload
	WireFrame                   // its next frame, before more payload (RecvData is stepped first)
	WireEnd                     // its frames have ended: io.EOF (see payload)
)

// Next says what reading the current message's payload calls for.
func (p *Protocol) Next() WireStep {
	switch {
	case p.rd.remaining > 0:
		return WirePayload
	case !p.rd.inMessage || p.rd.h.fin:
		return WireEnd
	}
	return WireFrame
}

// Wanted is how many of up to max payload bytes the current frame has.
func (p *Protocol) Wanted(max int) int {
	return int(min(uint64(max), p.rd.remaining))
}

// Payload takes b, payload of the current frame just taken from the
// peer: unmasks it in place and, for a text message read as it is on the
// wire (not deflated), checks its UTF-8. It returns the violation if the
// bytes break the rules, and whether they end the message.
func (p *Protocol) Payload(b []byte, deflated bool) (bad *Input, end bool) {
	if p.rd.h.masked {
		p.rd.keyPos = Mask(p.rd.h.key, p.rd.keyPos, b)
	}
	p.rd.remaining -= uint64(len(b))
	if !deflated && p.rd.msgType == OpText && !p.rd.utf8.Feed(b) {
		return &invalidUTF8, false
	}
	return nil, p.rd.remaining == 0 && p.rd.h.fin && !deflated
}

// Skip takes n bytes of the current frame's payload unread: a message
// not delivered after our close (K1).
func (p *Protocol) Skip(n uint64) { p.rd.remaining -= n }

// DropMessage ends a message whose frames were skipped to the end.
func (p *Protocol) DropMessage() { p.rd.inMessage, p.rd.ready = false, false }

// EndMessage finishes a message whose last byte has been taken: nil, or
// the violation of a text that ends inside a character.
func (p *Protocol) EndMessage() (bad *Input) {
	if p.rd.msgType == OpText && !p.rd.utf8.Complete() {
		return &unfinishedUTF8
	}
	p.rd.inMessage = false
	return nil
}

// InflateRoom cuts b, where a compressed message is to be inflated, so
// that what goes past MaxMessageSize shows by one byte.
func (p *Protocol) InflateRoom(b []byte) []byte {
	if p.MaxMessageSize >= 0 && int64(len(b)) > p.MaxMessageSize-p.rd.inflatedSize {
		return b[:p.MaxMessageSize-p.rd.inflatedSize+1]
	}
	return b
}

// Inflated judges b, just inflated from the current compressed message,
// and err, what the decompressor said with it: an invalid character
// before the limit first (that is what the peer did wrong), then the
// limit, then corrupt data (io.ErrUnexpectedEOF: cut inside a block, see
// InflateEnd). It returns nil if the message may go on (err nil) or has
// ended well (io.EOF), else the violation.
func (p *Protocol) Inflated(b []byte, err error) (bad *Input) {
	within := len(b)
	if p.MaxMessageSize >= 0 && p.rd.inflatedSize+int64(len(b)) > p.MaxMessageSize {
		within = int(p.MaxMessageSize - p.rd.inflatedSize)
	}
	p.rd.inflatedSize += int64(len(b))
	switch {
	case p.rd.msgType == OpText && !p.rd.utf8.Feed(b[:within]):
		return &invalidUTF8
	case within < len(b):
		return &tooLargeInflated
	case err != nil && err != io.EOF:
		return &invalidDeflate
	}
	return nil
}

// InflatedEnd judges where a compressed message's DEFLATE stream ended
// (io.EOF from the decompressor at a final block): tail is how many bytes
// of InflateEnd, which the receiver puts behind the payload, the
// decompressor had read. Normally it stops at InflateEnd's own final
// block; else at the peer's (RFC 7692 §7.2.3.4), and the rest of the
// message's frames is not part of it (tail 0: the driver skips them). A
// decoder reads no byte that holds no bit of the block it decodes, so a
// final block that ends inside InflateEnd began in the peer's bytes: the
// message was cut inside that block, and is corrupt.
func (p *Protocol) InflatedEnd(tail int) (bad *Input) {
	if tail > 0 && tail < len(InflateEnd) {
		return &invalidDeflate
	}
	return nil
}
