package websocket

import (
	"bufio"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsmachine/wsmachine/websocket/internal/core"
)

// Conn is one WebSocket connection: the server's end, handed to
// [Handler.Handle] once the opening handshake has succeeded, or the
// client's, returned by [Dial]. The two ends behave alike, each in its
// role (RFC 6455: the client masks its frames, the server closes TCP
// first); where the documentation says "the client", read "the server"
// for a Conn from Dial. All its methods are safe for concurrent use. A
// server's Conn stays usable after Handle returns; its owner must close
// it.
type Conn struct {
	// ResourceName is the URL the client requested: path and query.
	ResourceName *url.URL

	// Origin is the parsed Origin header of the request, nil if the
	// client sent none (non-browser clients usually do not).
	Origin *url.URL

	// RemoteAddr is the peer's network address: the client's, as in
	// http.Request.RemoteAddr, or for Dial the server's.
	RemoteAddr string

	// Protocol is the subprotocol chosen by [Handler.AccessOk] from those
	// the client offered (for Dial, the one the server chose), or "".
	Protocol string

	nc           net.Conn
	closeTimeout time.Duration
	writeTimeout time.Duration // negative: none
	closeBy      atomic.Int64  // Close's deadline for our close frame, Unix ns; 0 before Close
	idleTimeout  time.Duration // 0: none
	pingInterval time.Duration // 0: no pings
	lastRead     atomic.Int64  // when bytes last came from the client, Unix ns
	bgDelay      time.Duration // backgroundDelay

	// deflate is the negotiated permessage-deflate; nil: none.
	deflate *compression

	// The locks, always taken in this order, and none held while waiting
	// for another that comes before it: sendTok (a channel), then recvMu,
	// readMu, wmu, mu. mu is innermost: it is never held across network
	// I/O, only while step and the read-side bookkeeping run. (The reader
	// holds readMu when a transition it caused closes TCP, and finish
	// takes wmu so that our close frame goes first; Close and writeFrame
	// hold wmu while they step.)

	// p is the protocol this Conn drives: its lifecycle is guarded by
	// mu, its reading by readMu (see core.Protocol).
	p core.Protocol

	// mu guards p's lifecycle, and the bookkeeping of who reads from the
	// network.
	mu         sync.Mutex
	finished   bool          // the connection has ended and TCP is closed
	bgActive   bool          // the background reader is running
	aborting   bool          // the read deadline was moved to the past to stop it
	bgArmed    bool          // bgTimer is set
	readers    int32         // receivers holding or waiting for readMu
	done       chan struct{} // see ended; nil until needed
	bgTimer    *time.Timer   // starts the background reader
	releases   uint32        // counts the releases of the read side
	bgReleases uint32        // releases when bgTimer was set
	pingTimer  *time.Timer   // sends keepalive pings; nil if they are off
	closeTimer *time.Timer   // the close timeout after O14, which no Close waits for

	// recvMu serialises the receive calls.
	recvMu sync.Mutex

	// readMu guards the network read side: the read buffer and p's
	// reading. It is held by whoever reads: a receive call, a message
	// reader, or the background reader.
	readMu  sync.Mutex
	in      inbuf
	inflate inflating // while a compressed message is read
	raw     *rawIO    // nil: read and write with nc.Read and nc.Write
	// msgReaders are the readers ReceiveMessage hands out, in turn.
	msgReaders [2]*messageReader

	// sendTok is held by the sender of a message: SendText, SendBinary,
	// or a SendMessage writer until its Close.
	sendTok chan struct{}
	w       messageWriter

	// wmu guards the network write side: every frame is written whole
	// under it, so control frames can slip between a message's frames.
	wmu       sync.Mutex
	closeSent bool                    // our close frame is on the wire: nothing may follow it
	maskPos   uint8                   // the next of maskKeys (a byte, in closeSent's padding)
	hdrBuf    [core.MaxHeaderLen]byte // with the two bytes before it, a word apart from wdl: no padding
	wdl       int64                   // the write deadline set on nc by writeAll, Unix ns; 0: none
	maskKeys  *[64]byte               // the client's next masking keys; nil on a server

	// stats are the connection's counters, and the Handler's set it
	// counts in (stats.go).
	stats *connStats
}

// defaultMaxMessageSize is Handler.MaxMessageSize's default: far above
// what chat or RPC messages need, low enough that a client declaring
// gigabytes is refused at once.
const defaultMaxMessageSize = 16 << 20

// Timeouts of writing and of the closing handshake.
const (
	// defaultCloseTimeout is how long Close waits for the client's close
	// frame.
	defaultCloseTimeout = 3 * time.Second

	// defaultWriteTimeout is how long a write may make no progress: long
	// enough for any client that is alive, short enough that a stalled
	// one does not hold a sender, its buffers and its socket for long.
	defaultWriteTimeout = 30 * time.Second

	// lingerTimeout bounds how long the server, having sent its final
	// close frame and half-closed TCP, reads what the client still sends
	// before closing the socket: closing with unread data would reset
	// the connection and could destroy the close frame in flight.
	lingerTimeout = time.Second

	// lingerMax bounds the bytes read while lingering.
	lingerMax = 1 << 20

	// backgroundDelay is how long the read side must be idle before the
	// background reader starts (up to twice that: see armBackground).
	// Receiving in a loop never starts it.
	backgroundDelay = 10 * time.Millisecond
)

// newConn returns a connection in the connecting state.
func newConn() *Conn {
	c := &Conn{
		p:            core.Protocol{MaxMessageSize: defaultMaxMessageSize},
		stats:        new(connStats),
		sendTok:      make(chan struct{}, 1),
		closeTimeout: defaultCloseTimeout,
		writeTimeout: defaultWriteTimeout,
		bgDelay:      backgroundDelay,
	}
	c.w.c = c
	return c
}

// limits are the limits and timeouts a Handler or DialOptions sets: their
// exported fields of the same names say what each means.
type limits struct {
	maxMessageSize int64
	writeTimeout   time.Duration
	pingInterval   time.Duration
	idleTimeout    time.Duration
	closeTimeout   time.Duration
}

// configure applies the limits and timeouts of a Handler or DialOptions;
// zero values keep the defaults.
func (c *Conn) configure(l limits) {
	if l.maxMessageSize != 0 {
		c.p.MaxMessageSize = l.maxMessageSize
	}
	if l.writeTimeout != 0 {
		c.writeTimeout = l.writeTimeout
	}
	c.pingInterval = max(l.pingInterval, 0)
	c.idleTimeout = max(l.idleTimeout, 0)
	if l.closeTimeout > 0 {
		c.closeTimeout = l.closeTimeout
	}
}

// attach takes over the hijacked network connection. What the client sent
// after its request is still in net/http's reader: it moves to a pooled
// read buffer, and net/http's buffers go with the request.
func (c *Conn) attach(nc net.Conn, http *bufio.Reader) {
	c.nc = nc
	c.useRawIO()
	if n := http.Buffered(); n > 0 {
		c.in.buf = readBuffers.Get().(*[]byte)
		if n > len(*c.in.buf) { // net/http's buffer is 4 KiB, as ours
			b := make([]byte, n)
			c.in.buf = &b
		}
		c.in.w, _ = http.Read((*c.in.buf)[:n])
		c.stats.wireIn.Add(uint64(c.in.w)) // frames that came with the handshake
	}
}

// open moves to the open state once the 101 response is out. The
// background reader is armed at once, so that a handler which only sends
// still has its pings answered and the client's close seen.
func (c *Conn) open() {
	c.lastRead.Store(time.Now().UnixNano())
	c.mu.Lock()
	c.p.Step(core.EvAccepted, 0, "")
	c.bgTimer = time.AfterFunc(c.bgDelay, c.background)
	c.bgArmed = true
	c.startPinging()
	c.mu.Unlock()
}

// allowed is stepLocked for an API call that asks to go ahead (Send,
// Receive): such an event has no effects but its error.
func (c *Conn) allowed(ev core.Event) error {
	c.mu.Lock()
	err := c.stepErr(ev)
	c.mu.Unlock()
	return err
}

// stepErr is step for an API call that asks to go ahead; c.mu is held.
// It is never inlined so that step's effects, a large value, live in its
// frame only while it runs, not in the callers' all along the read and
// write paths: those paths decide how much stack an idle connection's
// goroutine keeps (see nextFrame).
//
//go:noinline
func (c *Conn) stepErr(ev core.Event) error {
	return c.p.Step(ev, 0, "").Err
}

// stepLocked is step with c.mu taken.
func (c *Conn) stepLocked(ev core.Event, code core.Status, reason string) core.Effects {
	c.mu.Lock()
	fx := c.p.Step(ev, code, reason)
	c.mu.Unlock()
	return fx
}
