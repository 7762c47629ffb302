package fuzz

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/sha1"
	"encoding/base64"
	"io"
	"maps"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsmachine/wsmachine/websocket"
)

// FuzzHandshake serves raw HTTP request bytes with Handler.ServeHTTP, as
// net/http's server would pass them to a handler, under one of eight
// Handler configurations chosen by variant. An oracle written from RFC 6455
// §4.2.1–§4.2.2 and the refusal table of STATE_MACHINE.md says what must
// happen: a valid handshake is taken over from net/http and answered with a
// correct 101 response, anything else is refused with the table's status
// and never taken over.
//
// The seed corpus in testdata/fuzz/FuzzHandshake has a file per refusal
// row and acceptance path; the files named bug-* are the bugs this target
// found in the library, kept as regression cases now that they are fixed.
// Rows: C1, C2; "Opening handshake".
func FuzzHandshake(f *testing.F) {
	for v := range uint8(8) {
		f.Add([]byte(minimalHandshake), v)
	}
	f.Fuzz(func(t *testing.T, request []byte, variant uint8) {
		br := bufio.NewReader(bytes.NewReader(request))
		req, ok := readLikeServer(request, br)
		if !ok {
			return // net/http answers it without calling a handler
		}
		v := handshakeVariant(variant)
		want := judgeHandshake(req, v)

		w := &hijackRecorder{t: t, header: make(http.Header), in: br}
		calls := make(chan *websocket.Conn, 2)
		h := &websocket.Handler{
			ServerName: v.serverName(),
			AccessOk:   v.accessOk(t, req, want),
			Handle:     func(c *websocket.Conn) { calls <- c },
		}
		h.ServeHTTP(w, req)
		// Handle runs on a goroutine of its own, once the connection is
		// taken over.
		var handled *websocket.Conn
		if w.conn != nil {
			select {
			case handled = <-calls:
			case <-time.After(5 * time.Second):
				t.Fatal("the connection was taken over, and Handle not called within 5 s")
			}
			endConnection(t, handled)
		}
		select {
		case <-calls:
			t.Error("Handle called twice, or without taking the connection over")
		default:
		}

		if want.status != 0 {
			checkRefused(t, want, w, handled)
		} else {
			checkAccepted(t, req, v, want, w, handled)
		}
	})
}

// minimalHandshake is the smallest valid opening handshake, with the key
// of RFC 6455 §1.3.
const minimalHandshake = "GET /chat HTTP/1.1\r\n" +
	"Host: server.example.com\r\n" +
	"Upgrade: websocket\r\n" +
	"Connection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
	"Sec-WebSocket-Version: 13\r\n" +
	"\r\n"

// clientAddr is the RemoteAddr net/http would give the request.
const clientAddr = "192.0.2.1:50000"

// readLikeServer parses request as net/http's server does before it calls
// a handler, and reports false for the requests the server answers by
// itself. The request it returns is what the handler would get,
// RemoteAddr included.
func readLikeServer(request []byte, br *bufio.Reader) (*http.Request, bool) {
	// 431 for a header over the limit; the whole input is measured, which
	// is simpler and only loses very long inputs.
	if len(request) > http.DefaultMaxHeaderBytes {
		return nil, false
	}
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, false // 400
	}
	// ReadRequest drops the Host field and keeps only a host in req.Host,
	// which comes from the request line for an absolute URI. The server
	// checks the field itself, so read the header again to see it.
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(request)))
	tp.ReadLine()
	fields, err := tp.ReadMIMEHeader()
	if err != nil {
		return nil, false // cannot happen: ReadRequest read the same header
	}
	hosts := fields["Host"]
	// "PRI * HTTP/2.0" without fields is passed on, so that handlers can
	// take over an HTTP/2 connection.
	h2Preface := req.Method == "PRI" && req.RequestURI == "*" && req.Proto == "HTTP/2.0" && len(fields) == 0
	switch {
	case req.ProtoMajor != 1 && !h2Preface:
		return nil, false // 505
	case req.ProtoAtLeast(1, 1) && len(hosts) == 0 && !h2Preface && req.Method != http.MethodConnect:
		return nil, false // 400: HTTP/1.1 requires the Host field, even with an absolute URI
	case len(hosts) == 1 && strings.ContainsFunc(hosts[0], func(r rune) bool { return !strings.ContainsRune(hostBytes, r) }):
		return nil, false // 400: malformed Host
	case slices.ContainsFunc(slices.Collect(maps.Keys(req.Header)), func(name string) bool { return !isToken(name) }):
		return nil, false // 400: ReadRequest lets names with spaces through, the server does not
	case req.Header.Get("Expect") != "" && !strings.EqualFold(req.Header.Get("Expect"), "100-continue"):
		// 417 for an Expect without the 100-continue token. Skipping
		// every other value is simpler than net/http's token matching
		// and loses nothing: WebSocket clients send no Expect.
		return nil, false
	case req.Method == http.MethodOptions && req.RequestURI == "*":
		return nil, false // the server's own OPTIONS handler
	}
	req.RemoteAddr = clientAddr
	return req, true
}

// hostBytes are the bytes net/http's server accepts in a Host field.
const hostBytes = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!$%&'()*+,-.:;=[]_~"

// isToken reports whether s is an RFC 7230 token, as field names must be.
func isToken(s string) bool {
	const tchars = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	return s != "" && !strings.ContainsFunc(s, func(r rune) bool { return !strings.ContainsRune(tchars, r) })
}

// handshakeVariant is the Handler configuration an input is served with:
// bits 0–1 choose the access policy, bit 2 sets ServerName. A separate
// fuzz argument, so that choosing it does not change the request.
type handshakeVariant uint8

// The access policies, as AccessOk functions.
const (
	accessNil       = iota // AccessOk nil: the library's same-origin policy
	accessPickLast         // accept, choose the last subprotocol offered
	accessDeny             // refuse every client
	accessUnoffered        // accept, choose a subprotocol of its own
)

// unofferedProtocol is what accessUnoffered chooses, offered or not.
const unofferedProtocol = "x-not-offered"

func (v handshakeVariant) access() int { return int(v & 3) }

func (v handshakeVariant) serverName() string {
	if v&4 != 0 {
		return "wsmachine"
	}
	return ""
}

// accessOk returns the AccessOk of v's policy. Whenever it runs, it checks
// that it sees what the Handler documents: the connection's ResourceName,
// Origin and RemoteAddr, and the subprotocols offered, in order.
func (v handshakeVariant) accessOk(t *testing.T, req *http.Request, want handshakeVerdict) func(*websocket.Conn, []string) bool {
	if v.access() == accessNil {
		return nil
	}
	return func(c *websocket.Conn, protocols []string) bool {
		checkConnFields(t, "in AccessOk", c, req, want)
		if !slices.Equal(protocols, want.offered) {
			t.Errorf("AccessOk got subprotocols %q, the client offered %q", protocols, want.offered)
		}
		switch v.access() {
		case accessPickLast:
			if len(protocols) > 0 {
				c.Protocol = protocols[len(protocols)-1]
			}
		case accessDeny:
			return false
		case accessUnoffered:
			c.Protocol = unofferedProtocol
		}
		return true
	}
}

// handshakeVerdict is what RFC 6455 and STATE_MACHINE.md require for one
// request under one variant.
type handshakeVerdict struct {
	status   int      // the refusal status, 0 for a valid handshake
	rule     string   // the refusal row, for failure messages
	offered  []string // the subprotocols the client offered, in order
	origin   *url.URL // the parsed Origin, nil without one
	protocol string   // the subprotocol the 101 response confirms, "" for none
}

// judgeHandshake is the oracle: the refusal table of STATE_MACHINE.md
// ("Opening handshake"), row by row in its order, with the requirements of
// RFC 6455 §4.2.1 spelled out.
func judgeHandshake(req *http.Request, v handshakeVariant) handshakeVerdict {
	vd := handshakeVerdict{offered: listElements(req.Header.Values("Sec-WebSocket-Protocol"))}
	refuse := func(status int, rule string) handshakeVerdict {
		vd.status, vd.rule = status, rule
		return vd
	}
	switch {
	case req.Method != http.MethodGet: // methods are case-sensitive
		return refuse(http.StatusMethodNotAllowed, "method other than GET")
	case req.ProtoMajor < 1 || req.ProtoMajor == 1 && req.ProtoMinor < 1:
		return refuse(http.StatusBadRequest, "older than HTTP/1.1")
	case req.Host == "":
		return refuse(http.StatusBadRequest, "no Host")
	case !containsFold(listElements(req.Header.Values("Upgrade")), "websocket"):
		return refuse(http.StatusBadRequest, "no websocket token in Upgrade")
	case !containsFold(listElements(req.Header.Values("Connection")), "upgrade"):
		return refuse(http.StatusBadRequest, "no upgrade token in Connection")
	case !slices.Equal(req.Header.Values("Sec-WebSocket-Version"), []string{"13"}):
		return refuse(http.StatusUpgradeRequired, "Sec-WebSocket-Version not exactly 13")
	case len(req.Header.Values("Sec-WebSocket-Key")) != 1 || !isClientKey(req.Header.Get("Sec-WebSocket-Key")):
		return refuse(http.StatusBadRequest, "Sec-WebSocket-Key absent, repeated, or not 16 bytes in base64")
	}
	// A browser sends one Origin field; the first one counts.
	if o := req.Header.Get("Origin"); o != "" {
		origin, err := url.Parse(o)
		if err != nil {
			return refuse(http.StatusBadRequest, "Origin not a URL")
		}
		vd.origin = origin
	}
	switch v.access() {
	case accessNil:
		if vd.origin != nil && !originMatchesHost(vd.origin, req.Host) {
			return refuse(http.StatusForbidden, "AccessOk nil and Origin of another host")
		}
	case accessPickLast:
		if len(vd.offered) > 0 {
			vd.protocol = vd.offered[len(vd.offered)-1]
		}
	case accessDeny:
		return refuse(http.StatusForbidden, "AccessOk returns false")
	case accessUnoffered:
		vd.protocol = unofferedProtocol
	}
	if len(vd.offered) > 0 && !slices.Contains(vd.offered, vd.protocol) || len(vd.offered) == 0 && vd.protocol != "" {
		return refuse(http.StatusBadRequest, "subprotocol not one of those offered")
	}
	return vd
}

// listElements splits the values of a list-valued field into its elements
// (RFC 7230 §7): separated by commas, with optional whitespace (space and
// tab only) around them, empty ones ignored. The fields WebSocket uses hold
// tokens, so there are no quoted strings to respect.
func listElements(values []string) []string {
	var elems []string
	for _, v := range values {
		for e := range strings.SplitSeq(v, ",") {
			if e = strings.Trim(e, " \t"); e != "" {
				elems = append(elems, e)
			}
		}
	}
	return elems
}

// containsFold reports whether elems holds token, in any ASCII case.
func containsFold(elems []string, token string) bool {
	return slices.ContainsFunc(elems, func(e string) bool { return strings.EqualFold(e, token) })
}

// isClientKey reports whether key is 16 bytes in base64 (RFC 6455 §4.1,
// RFC 4648 §4): 22 characters of the standard alphabet, then "==". RFC
// 4648 §3.5 allows a decoder to ignore the unused bits of the last
// character, so it may be any of the 64.
func isClientKey(key string) bool {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	if len(key) != 24 || key[22:] != "==" {
		return false
	}
	for i := range 22 {
		if strings.IndexByte(alphabet, key[i]) < 0 {
			return false
		}
	}
	return true
}

// originMatchesHost reports whether origin names the host the request was
// sent to: the same host in any case, and the same port, where a missing or
// empty port is the default port of the origin's scheme (RFC 3986 §6.2.3,
// RFC 7230 §2.7.1). Only http, https, ws and wss have a default port. An
// origin without a host ("null" from a sandboxed page) matches nothing.
func originMatchesHost(origin *url.URL, host string) bool {
	if origin.Host == "" {
		return false
	}
	defaultPort := map[string]string{"http": "80", "ws": "80", "https": "443", "wss": "443"}[strings.ToLower(origin.Scheme)]
	originHost, originPort := splitPort(origin.Host)
	reqHost, reqPort := splitPort(host)
	return strings.EqualFold(originHost, reqHost) && cmp.Or(originPort, defaultPort) == cmp.Or(reqPort, defaultPort)
}

// splitPort splits "host:port" or "[v6]:port" at the colon before the port;
// port is "" when there is none.
func splitPort(hostport string) (host, port string) {
	i := strings.LastIndexByte(hostport, ':')
	if i < 0 || strings.LastIndexByte(hostport, ']') > i {
		return hostport, ""
	}
	return hostport[:i], hostport[i+1:]
}

// checkRefused checks a refusal: the table's status and headers, a
// plain-text reason, and the connection left to net/http.
func checkRefused(t *testing.T, want handshakeVerdict, w *hijackRecorder, handled *websocket.Conn) {
	t.Helper()
	if w.conn != nil || handled != nil {
		t.Fatalf("refused request (%s) was taken over; written to the connection: %q", want.rule, w.writtenBytes())
	}
	if w.status != want.status {
		t.Fatalf("got status %d (%q), want %d: %s", w.status, w.body.String(), want.status, want.rule)
	}
	switch want.status {
	case http.StatusMethodNotAllowed:
		if got := w.sent.Values("Allow"); !slices.Equal(got, []string{"GET"}) {
			t.Errorf("405 with Allow %q, want GET", got)
		}
	case http.StatusUpgradeRequired:
		if got := w.sent.Values("Sec-WebSocket-Version"); !slices.Equal(got, []string{"13"}) {
			t.Errorf("426 with Sec-WebSocket-Version %q, want 13", got)
		}
	}
	if ct := w.sent.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") || w.body.Len() == 0 {
		t.Errorf("refusal without a plain-text reason: Content-Type %q, body %q", ct, w.body.String())
	}
}

// checkAccepted checks an accepted handshake: taken over, a 101 response
// as RFC 6455 §4.2.2 describes it, then nothing but frames, and the
// connection describing the request.
func checkAccepted(t *testing.T, req *http.Request, v handshakeVariant, want handshakeVerdict, w *hijackRecorder, handled *websocket.Conn) {
	t.Helper()
	if w.conn == nil || handled == nil {
		t.Fatalf("valid handshake refused with %d %q (hijacked: %t, Handle called: %t)",
			w.status, w.body.String(), w.conn != nil, handled != nil)
	}
	if w.status != 0 {
		t.Errorf("an HTTP response (%d) was written through net/http besides the 101", w.status)
	}
	r := bufio.NewReader(bytes.NewReader(w.writtenBytes()))
	resp, err := http.ReadResponse(r, req)
	if err != nil {
		t.Fatalf("no HTTP response on the connection: %v; written: %q", err, w.writtenBytes())
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Proto != "HTTP/1.1" {
		t.Errorf("response %s %s, want HTTP/1.1 101", resp.Proto, resp.Status)
	}
	checkField(t, resp.Header, "Upgrade", "websocket", true)
	checkField(t, resp.Header, "Connection", "Upgrade", true)
	checkField(t, resp.Header, "Sec-WebSocket-Accept", acceptFor(req.Header.Get("Sec-WebSocket-Key")), false)
	checkField(t, resp.Header, "Sec-WebSocket-Protocol", want.protocol, false)
	checkField(t, resp.Header, "Server", v.serverName(), false)
	if p := resp.Header.Get("Sec-WebSocket-Protocol"); p != "" && !slices.Contains(want.offered, p) {
		t.Errorf("confirmed subprotocol %q, which the client did not offer (%q)", p, want.offered)
	}
	checkServerFrames(t, r)

	checkConnFields(t, "handed to Handle", handled, req, want)
	if handled.Protocol != want.protocol {
		t.Errorf("conn.Protocol %q, want %q", handled.Protocol, want.protocol)
	}
}

// checkField checks that header has exactly one field name with value
// want (in any ASCII case if caseInsensitive), or none if want is empty.
func checkField(t *testing.T, header http.Header, name, want string, caseInsensitive bool) {
	t.Helper()
	got := header.Values(name)
	switch {
	case want == "" && len(got) == 0:
	case len(got) == 1 && (got[0] == want || caseInsensitive && strings.EqualFold(got[0], want)):
	default:
		t.Errorf("101 response with %s %q, want %q", name, got, want)
	}
}

// acceptFor is the Sec-WebSocket-Accept answering key (RFC 6455 §4.2.2).
func acceptFor(key string) string {
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// checkConnFields checks that the connection describes the request: its
// resource name (path and query only), its Origin, the client's address.
func checkConnFields(t *testing.T, where string, c *websocket.Conn, req *http.Request, want handshakeVerdict) {
	t.Helper()
	if rn := c.ResourceName; rn == nil || rn.Path != req.URL.Path || rn.RawQuery != req.URL.RawQuery ||
		rn.Scheme != "" || rn.Host != "" || rn.User != nil || rn.Fragment != "" {
		t.Errorf("conn %s: ResourceName %#v, want path %q and query %q of %q", where, rn, req.URL.Path, req.URL.RawQuery, req.RequestURI)
	}
	if (c.Origin == nil) != (want.origin == nil) || c.Origin != nil && c.Origin.String() != want.origin.String() {
		t.Errorf("conn %s: Origin %v, want %v", where, c.Origin, want.origin)
	}
	if c.RemoteAddr != clientAddr {
		t.Errorf("conn %s: RemoteAddr %q, want %q", where, c.RemoteAddr, clientAddr)
	}
}

// checkServerFrames checks what follows the 101 response. The handler
// sends nothing, so the server may only have answered the client's bytes:
// pongs and at most one close frame, last. Server frames are unmasked
// (RFC 6455 §5.1), and control frames whole and short (§5.5).
func checkServerFrames(t *testing.T, r *bufio.Reader) {
	t.Helper()
	for closed := false; ; {
		var head [2]byte
		if _, err := io.ReadFull(r, head[:]); err == io.EOF {
			return
		} else if err != nil {
			t.Fatalf("truncated frame header %x after the 101 response", head)
		}
		const opClose, opPong = 0x8, 0xa
		op, length := head[0]&0x0f, int(head[1]&0x7f)
		switch {
		case closed:
			t.Fatalf("frame %x after the close frame", head)
		case head[0]&0xf0 != 0x80:
			t.Fatalf("frame %x: FIN clear or RSV bits set", head)
		case head[1]&0x80 != 0:
			t.Fatalf("frame %x: masked", head)
		case op != opClose && op != opPong:
			t.Fatalf("frame %x: opcode %#x, but the handler sent nothing", head, op)
		case length > 125:
			t.Fatalf("frame %x: control frame longer than 125 bytes", head)
		}
		if _, err := r.Discard(length); err != nil {
			t.Fatalf("frame %x: truncated payload", head)
		}
		closed = op == opClose
	}
}

// endConnection receives until the client's bytes run out or break the
// protocol, then waits until the connection has ended, so that no
// goroutine outlives the input. Receiving right away also spares the
// 10 ms the background reader would wait before taking over.
func endConnection(t *testing.T, c *websocket.Conn) {
	t.Helper()
	for {
		_, msg, err := c.ReceiveMessage()
		if err != nil {
			break
		}
		io.Copy(io.Discard, msg)
	}
	ended := make(chan struct{})
	go func() {
		c.GetStatus()
		close(ended)
	}()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the connection did not end after the client's bytes ran out")
	}
}

// hijackRecorder is the http.ResponseWriter of one request. Like
// net/http's, it keeps the status and the header as of the first
// WriteHeader (or Write), and lets the handler take the connection over
// with Hijack; unlike it, it records the response instead of sending it,
// and the connection it hands over is a replayConn.
type hijackRecorder struct {
	t      *testing.T
	header http.Header
	in     io.Reader // the client's bytes after the request head

	status int         // 0 until a response is written
	sent   http.Header // the header as the status was written
	body   bytes.Buffer
	conn   *replayConn // set by Hijack
}

func (w *hijackRecorder) Header() http.Header { return w.header }

func (w *hijackRecorder) WriteHeader(status int) {
	if w.conn != nil {
		w.t.Errorf("WriteHeader(%d) after Hijack", status)
		return
	}
	if w.status == 0 {
		w.status, w.sent = status, w.header.Clone()
	}
}

func (w *hijackRecorder) Write(p []byte) (int, error) {
	if w.conn != nil {
		w.t.Errorf("Write(%q) after Hijack", p)
		return 0, http.ErrHijacked
	}
	w.WriteHeader(http.StatusOK)
	return w.body.Write(p)
}

// Hijack hands over the connection: reading it yields the client's bytes
// after the request head, which is what net/http leaves in its buffer.
func (w *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.conn != nil {
		return nil, nil, http.ErrHijacked
	}
	if w.status != 0 {
		w.t.Errorf("Hijack after a %d response was written", w.status)
	}
	w.conn = &replayConn{in: w.in}
	return w.conn, bufio.NewReadWriter(bufio.NewReader(w.conn), bufio.NewWriter(w.conn)), nil
}

// writtenBytes returns what was written to the hijacked connection.
func (w *hijackRecorder) writtenBytes() []byte {
	if w.conn == nil {
		return nil
	}
	w.conn.mu.Lock()
	defer w.conn.mu.Unlock()
	return slices.Clone(w.conn.out.Bytes())
}

// replayConn is an in-memory net.Conn: reads replay the client's bytes
// and then return io.EOF, writes are recorded. Nothing blocks, so its
// deadlines can be ignored, and no goroutine or socket is behind it.
type replayConn struct {
	mu     sync.Mutex // the library may read and write from two goroutines
	in     io.Reader
	out    bytes.Buffer
	closed bool
}

func (c *replayConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	return c.in.Read(p)
}

func (c *replayConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	return c.out.Write(p)
}

func (c *replayConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

// CloseWrite is there because the library half-closes TCP connections.
func (c *replayConn) CloseWrite() error { return nil }

// The ends of a replayConn; the client's is clientAddr.
var (
	replayServerAddr = &net.TCPAddr{IP: net.IPv4(192, 0, 2, 2), Port: 80}
	replayClientAddr = &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 50000}
)

func (c *replayConn) LocalAddr() net.Addr              { return replayServerAddr }
func (c *replayConn) RemoteAddr() net.Addr             { return replayClientAddr }
func (c *replayConn) SetDeadline(time.Time) error      { return nil }
func (c *replayConn) SetReadDeadline(time.Time) error  { return nil }
func (c *replayConn) SetWriteDeadline(time.Time) error { return nil }
