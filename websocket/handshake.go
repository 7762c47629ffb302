package websocket

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/wsmachine/wsmachine/websocket/internal/core"
)

// Handler is an http.Handler that performs the WebSocket opening handshake
// (RFC 6455 §4.2) and hands each accepted connection to Handle. Once it
// has served a request, a Handler keeps count of its connections (for
// Shutdown, MaxConnections and Stats): use it by pointer, and do not copy
// it, as for http.Server.
type Handler struct {
	// AccessOk, if set, decides whether to accept a client, after the
	// request has passed the protocol checks. It sees the connection's
	// ResourceName, Origin and RemoteAddr and the subprotocols the client
	// offered, in its order of preference. If protocols were offered, it
	// must set conn.Protocol to one of them, or the handshake fails with
	// 400 Bad Request. Returning false refuses the client with 403
	// Forbidden. The connection cannot send or receive yet.
	//
	// A nil AccessOk accepts requests without an Origin header (as
	// non-browser clients send them) and those whose Origin has the same
	// host as the request, and refuses other origins with 403: a page on
	// another site must not reach the server with the user's cookies.
	// To allow other origins, check conn.Origin in AccessOk.
	AccessOk func(conn *Conn, protocols []string) bool

	// Handle is called with every accepted connection, on a goroutine of
	// its own: ServeHTTP returns once the handshake is done, so that
	// net/http lets go of everything it held for the request. The
	// connection stays open when Handle returns: whoever owns it must
	// close it.
	//
	// If Handle panics, the connection is closed with
	// StatusInternalServerError (1011; Close waits for the client's
	// answer as usual), and the panic is recovered and logged with its
	// stack to the http.Server's ErrorLog (or the log package's standard
	// logger), as net/http does for a handler's panic; like net/http, it
	// says nothing for http.ErrAbortHandler.
	Handle func(conn *Conn)

	// ServerName, if not empty, is sent as the Server header of the
	// handshake response.
	ServerName string

	// MaxMessageSize is the longest data message a client may send, in
	// bytes. A message whose frames declare more (the lengths of its
	// frames so far added up) fails the connection with close 1009
	// before its payload is read, so a client cannot make the server
	// buffer or wait for more than this. Zero means 16 MiB; a negative
	// value means no limit (ReceiveMessage streams, so the application
	// then decides how much to keep).
	MaxMessageSize int64

	// WriteTimeout is how long a write to the client may go without
	// progress: a client that stops reading while the server sends fails
	// the connection after this long (the send returns an error wrapping
	// ErrConnClosed, every other blocked sender is released, GetStatus
	// reports StatusDropped). A client that reads slowly but steadily is
	// never cut off. Zero means 30 s; negative, no timeout.
	WriteTimeout time.Duration

	// PingInterval, if positive, makes the server ping a connection when
	// nothing has come from the client for that long, and again after
	// each further interval of silence. Browsers answer pings on their
	// own, so this keeps proxies and NAT boxes from dropping a quiet
	// connection, and, with IdleTimeout, finds clients that are gone.
	// Zero means no pings. Recommended behind proxies: 30 s.
	PingInterval time.Duration

	// IdleTimeout, if positive, drops a connection when nothing at all
	// has come from the client for that long while the server was
	// reading (a message the application has not received yet holds the
	// reading back, and so does not count as the client's silence):
	// receives and sends then return errors wrapping ErrConnClosed and
	// GetStatus reports StatusDropped. Zero means no timeout.
	// Recommended with PingInterval: a little more than two intervals
	// (say 75 s for 30 s), so that one lost pong is forgiven.
	IdleTimeout time.Duration

	// CloseTimeout is how long Close waits for the client's close frame
	// before it closes TCP anyway. Zero (or negative) means 3 s: long
	// enough for a client across the world to answer, short enough that
	// a client which never answers does not hold the connection for long.
	CloseTimeout time.Duration

	// Compression says whether messages are compressed with
	// permessage-deflate (RFC 7692) with clients that offer it, as
	// browsers do, and how; see CompressionMode for what each mode
	// costs. The default, CompressionOff, declines it: like gorilla,
	// coder and gws, compression is for the server to choose, as it
	// costs CPU for every message. Text such as JSON typically shrinks
	// several times. Compressed messages are received either way once
	// negotiated; MaxMessageSize limits what they inflate to.
	Compression CompressionMode

	// CompressionThreshold is the size below which a message is sent
	// uncompressed, where compressing would save little or nothing.
	// SendText and SendBinary know the size; a SendMessage writer
	// decides at Close, or compresses as soon as it has a full buffer
	// (64 KiB) to send. Zero means 512 bytes; 1 compresses every
	// non-empty message.
	CompressionThreshold int

	// MaxConnections, if positive, is how many connections the Handler
	// holds at once, counting handshakes in progress: beyond it,
	// handshakes are refused with 503 Service Unavailable (and
	// Retry-After) before the upgrade. A connection counts until it has
	// ended, however it ends. Zero means no limit.
	MaxConnections int

	// Logger, if set, gets a Debug record of each refused handshake
	// (its status, reason and remote address), each connection failed
	// for a protocol violation (the close code and reason), each
	// connection dropped (why), and each Shutdown; nothing per message.
	// Nil logs nothing.
	Logger *slog.Logger

	// conns points to the Handler's connections (a *connSet; see
	// connections). Not a connSet itself, nor a typed atomic pointer:
	// those hold locks, and a Handler value must stay copyable before use
	// (go vet's copylocks), as it always was.
	conns unsafe.Pointer

	// bgDelay, if not zero, replaces backgroundDelay (for tests, which
	// do not want to wait for it).
	bgDelay time.Duration
}

// acceptGUID is appended to the client's key to form the accept value
// (RFC 6455 §1.3).
const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// limits are the handler's limits and timeouts, for configure.
func (h *Handler) limits() limits {
	return limits{maxMessageSize: h.MaxMessageSize, writeTimeout: h.WriteTimeout,
		pingInterval: h.PingInterval, idleTimeout: h.IdleTimeout, closeTimeout: h.CloseTimeout}
}

// ServeHTTP checks the opening handshake. A request that is not a valid
// WebSocket handshake is answered with a 4xx status and a short plain-text
// reason, and the connection stays an ordinary HTTP connection. An accepted
// one is taken over from net/http, answered with 101 Switching Protocols,
// and passed to Handle, which runs on a goroutine of its own.
func (h *Handler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	set := h.connections()
	key, status, reason := checkRequest(req)
	if status != 0 {
		set.refused(refusedNotWebSocket)
		h.refuse(w, req, status, reason)
		return
	}
	if h.Handle == nil {
		set.refused(refusedFailed)
		h.refuse(w, req, http.StatusInternalServerError, "no WebSocket handler")
		return
	}

	c := newConn()
	c.stats.log = h.Logger
	if reason := set.admit(c, h.MaxConnections); reason != "" {
		h.refuse(w, req, http.StatusServiceUnavailable, reason)
		return
	}
	if h.bgDelay != 0 {
		c.bgDelay = h.bgDelay
	}
	c.configure(h.limits())
	c.ResourceName = &url.URL{Path: req.URL.Path, RawPath: req.URL.RawPath, RawQuery: req.URL.RawQuery}
	c.RemoteAddr = req.RemoteAddr
	if o := req.Header.Get("Origin"); o != "" {
		origin, err := url.Parse(o)
		if err != nil {
			c.refused(refusedOrigin)
			h.refuse(w, req, http.StatusBadRequest, "malformed Origin header")
			return
		}
		c.Origin = origin
	}
	protocols := headerTokens(req.Header, "Sec-WebSocket-Protocol")
	if h.AccessOk != nil {
		if !h.AccessOk(c, protocols) {
			c.refused(refusedAccessOk)
			h.refuse(w, req, http.StatusForbidden, "access denied")
			return
		}
	} else if c.Origin != nil && !sameHost(c.Origin, req.Host) {
		c.refused(refusedOrigin)
		h.refuse(w, req, http.StatusForbidden, "cross-origin request refused")
		return
	}
	if len(protocols) > 0 && !slices.Contains(protocols, c.Protocol) || len(protocols) == 0 && c.Protocol != "" {
		c.refused(refusedAccessOk)
		h.refuse(w, req, http.StatusBadRequest, "no acceptable subprotocol")
		return
	}

	var nc net.Conn
	var brw *bufio.ReadWriter
	var err error
	if hj, ok := w.(http.Hijacker); ok {
		nc, brw, err = hj.Hijack()
	} else { // a wrapped ResponseWriter
		nc, brw, err = http.NewResponseController(w).Hijack()
	}
	if err != nil {
		c.refused(refusedFailed)
		h.refuse(w, req, http.StatusInternalServerError, "cannot take over the connection")
		return
	}
	// Hijack has cleared the HTTP server's deadlines; the response is
	// written as frames are, under the write timeout.
	c.attach(nc, brw.Reader)
	var deflate *deflateParams
	if p, ok := negotiateDeflate(req.Header.Values("Sec-WebSocket-Extensions"), h.Compression); ok {
		deflate = &p
		c.deflate = newCompression(p, h.compressionThreshold(), false)
		c.p.Deflate = true
	}
	resp := appendResponse(brw.Writer.AvailableBuffer(), key, c.Protocol, h.ServerName, deflate)
	if err := c.writeNet(resp, nil); err != nil {
		c.refused(refusedFailed)
		nc.Close()
		return
	}
	c.stats.wireOut.Store(0) // wire bytes are the frames': the handshake is HTTP's
	c.open()
	if set.opened(c) { // Shutdown started after this handshake was admitted
		c.closeInBackground(core.EvClose, StatusGoingAway, "")
	}
	errorLog, _ := req.Context().Value(http.ServerContextKey).(*http.Server)
	go h.run(c, errorLog)
}

// defaultCompressionThreshold is CompressionThreshold's default: below
// it, DEFLATE's block headers eat most of what it would save.
const defaultCompressionThreshold = 512

func (h *Handler) compressionThreshold() int {
	if h.CompressionThreshold > 0 {
		return h.CompressionThreshold
	}
	return defaultCompressionThreshold
}

// run calls Handle on the connection's own goroutine. Returning from
// ServeHTTP lets net/http free all it held for the request (its buffers,
// the request, a goroutine stack grown by parsing it), which is most of
// what an idle connection would otherwise cost.
//
// A panic in Handle must not take the process down, as it would on a
// goroutine net/http does not guard: it is recovered, the connection
// closed with StatusInternalServerError, and the panic logged as net/http
// logs a handler's panic.
func (h *Handler) run(c *Conn, srv *http.Server) {
	returned := false
	defer func() {
		if returned {
			return
		}
		v := recover() // nil after runtime.Goexit
		c.Close(StatusInternalServerError, "")
		if v != nil && v != http.ErrAbortHandler {
			stack := make([]byte, 64<<10)
			stack = stack[:runtime.Stack(stack, false)]
			logf := log.Printf
			if srv != nil && srv.ErrorLog != nil {
				logf = srv.ErrorLog.Printf
			}
			logf("websocket: panic serving %s: %v\n%s", c.RemoteAddr, v, stack)
		}
	}()
	h.Handle(c)
	returned = true
}

// refuse answers a refused handshake, and logs it.
func (h *Handler) refuse(w http.ResponseWriter, req *http.Request, status int, reason string) {
	if h.Logger != nil {
		h.Logger.Debug("websocket: handshake refused", "status", status, "reason", reason, "remote", req.RemoteAddr)
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", retryAfter)
	}
	refuse(w, status, reason)
}

// refused ends a connection whose handshake failed, so that GetStatus
// does not wait for it, and counts why.
func (c *Conn) refused(why refusedFor) {
	c.stats.set.refused(why)
	c.apply(c.stepLocked(core.EvRefused, 0, ""), nil)
}

// checkRequest checks a handshake request (RFC 6455 §4.2.1). It returns the
// client's key, or an HTTP status and reason for refusing.
func checkRequest(req *http.Request) (key string, status int, reason string) {
	switch {
	case req.Method != http.MethodGet:
		return "", http.StatusMethodNotAllowed, "WebSocket handshake must use GET"
	case !req.ProtoAtLeast(1, 1):
		return "", http.StatusBadRequest, "WebSocket needs HTTP/1.1"
	case req.Host == "":
		return "", http.StatusBadRequest, "missing Host header"
	case !hasToken(req.Header, "Upgrade", "websocket"):
		return "", http.StatusBadRequest, "missing Upgrade: websocket"
	case !hasToken(req.Header, "Connection", "upgrade"):
		return "", http.StatusBadRequest, "missing Connection: Upgrade"
	}
	if v := req.Header.Values("Sec-WebSocket-Version"); len(v) != 1 || v[0] != "13" {
		return "", http.StatusUpgradeRequired, "unsupported WebSocket version"
	}
	keys := req.Header.Values("Sec-WebSocket-Key")
	if len(keys) != 1 {
		return "", http.StatusBadRequest, "need exactly one Sec-WebSocket-Key"
	}
	var buf [24]byte
	if raw, err := base64.StdEncoding.AppendDecode(buf[:0], []byte(keys[0])); err != nil || len(raw) != 16 {
		return "", http.StatusBadRequest, "Sec-WebSocket-Key is not 16 bytes in base64"
	}
	return keys[0], 0, ""
}

// refuse answers a request that cannot become a WebSocket.
func refuse(w http.ResponseWriter, status int, reason string) {
	switch status {
	case http.StatusUpgradeRequired:
		w.Header().Set("Sec-WebSocket-Version", "13")
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", http.MethodGet)
	}
	http.Error(w, reason, status)
}

// appendResponse appends the 101 response (RFC 6455 §4.2.2), with the
// permessage-deflate parameters if deflate.
func appendResponse(b []byte, key, protocol, server string, deflate *deflateParams) []byte {
	b = append(b, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	b = appendAcceptKey(b, key)
	if protocol != "" {
		b = append(b, "\r\nSec-WebSocket-Protocol: "...)
		b = append(b, protocol...)
	}
	if deflate != nil {
		b = append(b, "\r\nSec-WebSocket-Extensions: "...)
		b = appendDeflateResponse(b, *deflate)
	}
	if server != "" {
		b = append(b, "\r\nServer: "...)
		b = append(b, server...)
	}
	return append(b, "\r\n\r\n"...)
}

// appendAcceptKey appends Sec-WebSocket-Accept for a client's key to b
// (RFC 6455 §4.2.2).
func appendAcceptKey(b []byte, key string) []byte {
	var in [64]byte // a valid key and the GUID fit
	sum := sha1.Sum(append(append(in[:0], key...), acceptGUID...))
	return base64.StdEncoding.AppendEncode(b, sum[:])
}

// sameHost reports whether origin names the host the request was sent to,
// ignoring case and default ports. An empty port is no port (RFC 3986
// §6.2.3); only the web's schemes have a default port.
func sameHost(origin *url.URL, host string) bool {
	if origin.Host == "" {
		return false // e.g. "null" from a sandboxed page
	}
	defaultPort := map[string]string{"http": "80", "ws": "80", "https": "443", "wss": "443"}[origin.Scheme]
	strip := func(hostport string) string {
		h, p, err := net.SplitHostPort(hostport)
		if err != nil || p != "" && p != defaultPort {
			return hostport // no port, or one that is not the default
		}
		// An empty port (any scheme) or the scheme's default: the host.
		if strings.Contains(h, ":") {
			return "[" + h + "]"
		}
		return h
	}
	return strings.EqualFold(strip(origin.Host), strip(host))
}
