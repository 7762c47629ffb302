package websocket_test

// The opening handshake (RFC 6455 §4.2): STATE_MACHINE.md, "Opening
// handshake", its refusals and the 101 response.

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsmachine/wsmachine/websocket"

	"github.com/wsmachine/wsmachine/websocket/internal/wstest"
)

// hline is one header line of a hand-written request.
type hline struct{ k, v string }

// rawReq is a hand-written HTTP request.
type rawReq struct {
	line string // request line
	hdr  []hline
}

type reqMod func(*rawReq)

// buildReq returns the lines of a valid opening handshake for host with key,
// changed by mods.
func buildReq(host, key string, mods ...reqMod) []string {
	r := &rawReq{
		line: "GET / HTTP/1.1",
		hdr: []hline{
			{"Host", host},
			{"Upgrade", "websocket"},
			{"Connection", "Upgrade"},
			{"Sec-WebSocket-Key", key},
			{"Sec-WebSocket-Version", "13"},
		},
	}
	for _, m := range mods {
		m(r)
	}
	lines := []string{r.line}
	for _, h := range r.hdr {
		lines = append(lines, h.k+": "+h.v)
	}
	return lines
}

// setH replaces all lines of header k by one line per value (none: delete).
func setH(k string, vals ...string) reqMod {
	return func(r *rawReq) {
		var out []hline
		replaced := false
		for _, h := range r.hdr {
			if strings.EqualFold(h.k, k) {
				if !replaced {
					for _, v := range vals {
						out = append(out, hline{k, v})
					}
					replaced = true
				}
				continue
			}
			out = append(out, h)
		}
		if !replaced {
			for _, v := range vals {
				out = append(out, hline{k, v})
			}
		}
		r.hdr = out
	}
}

func delH(k string) reqMod { return setH(k) }

func addH(k, v string) reqMod {
	return func(r *rawReq) { r.hdr = append(r.hdr, hline{k, v}) }
}

func reqLine(l string) reqMod {
	return func(r *rawReq) { r.line = l }
}

func b64(n int) string {
	return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x5a}, n))
}

// accessKind says which AccessOk the server gets.
type accessKind int

const (
	accessAllow accessKind = iota // AccessOk returns true, selects nothing
	accessNil                     // nil AccessOk
	accessDeny                    // AccessOk returns false
	accessPick                    // AccessOk sets conn.Protocol = pick, returns true
)

func makeAccess(kind accessKind, pick string) func(*websocket.Conn, []string) bool {
	switch kind {
	case accessAllow:
		return allowAll
	case accessDeny:
		return func(*websocket.Conn, []string) bool { return false }
	case accessPick:
		return func(c *websocket.Conn, _ []string) bool {
			c.Protocol = pick
			return true
		}
	}
	return nil
}

// checkNotHijacked checks that the refused request got an ordinary HTTP
// response and that the TCP connection is still an HTTP connection: either
// the server closes it (Connection: close) without another byte, or a
// second, plain HTTP request on it gets an HTTP response.
func checkNotHijacked(t *testing.T, ex *httpExchange, host string) {
	t.Helper()
	if ex.Resp.Close {
		ex.conn.SetReadDeadline(time.Now().Add(ioTimeout))
		b, err := ex.br.ReadByte()
		if err == nil {
			t.Fatalf("after a Connection: close response the server sent more bytes (%q...)", b)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("response said Connection: close but the server did not close the connection")
		}
		return
	}
	ex.conn.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(ex.conn, "GET /second HTTP/1.1\r\nHost: "+host+"\r\n\r\n"); err != nil {
		t.Fatalf("second request on the refused connection: %v", err)
	}
	resp, _ := ex.readResponse(t, "GET")
	if resp.StatusCode == http.StatusSwitchingProtocols || resp.StatusCode < 200 {
		t.Fatalf("second, plain request got status %d", resp.StatusCode)
	}
}

// Rows: C2; "Opening handshake": every refusal.
func TestHandshakeRefusals(t *testing.T) {
	tests := []struct {
		name       string
		access     accessKind
		pick       string
		nilHandle  bool
		method     string // for reading the response; default GET
		mods       []reqMod
		hostHeader string // if set, replaces the Host header value
		want       int
		wantHeader [2]string // header that must contain a token
	}{
		{name: "MethodPOST", mods: []reqMod{reqLine("POST / HTTP/1.1"), addH("Content-Length", "0")}, method: "POST", want: 405, wantHeader: [2]string{"Allow", "GET"}},
		{name: "MethodPUT", mods: []reqMod{reqLine("PUT / HTTP/1.1"), addH("Content-Length", "0")}, method: "PUT", want: 405, wantHeader: [2]string{"Allow", "GET"}},
		{name: "MethodHEAD", mods: []reqMod{reqLine("HEAD / HTTP/1.1")}, method: "HEAD", want: 405, wantHeader: [2]string{"Allow", "GET"}},
		{name: "HTTP10", mods: []reqMod{reqLine("GET / HTTP/1.0")}, want: 400},
		{name: "MissingHost", mods: []reqMod{delH("Host")}, want: 400},
		{name: "EmptyHost", mods: []reqMod{setH("Host", "")}, want: 400},
		{name: "NoUpgrade", mods: []reqMod{delH("Upgrade")}, want: 400},
		{name: "UpgradeH2C", mods: []reqMod{setH("Upgrade", "h2c")}, want: 400},
		{name: "UpgradeWebsocketx", mods: []reqMod{setH("Upgrade", "websocketx")}, want: 400},
		{name: "UpgradeTokenInsideOther", mods: []reqMod{setH("Upgrade", "foo-websocket, bar")}, want: 400},
		{name: "NoConnection", mods: []reqMod{delH("Connection")}, want: 400},
		{name: "ConnectionKeepAliveOnly", mods: []reqMod{setH("Connection", "keep-alive")}, want: 400},
		{name: "ConnectionUpgraded", mods: []reqMod{setH("Connection", "upgraded")}, want: 400},
		{name: "VersionMissing", mods: []reqMod{delH("Sec-WebSocket-Version")}, want: 426, wantHeader: [2]string{"Sec-WebSocket-Version", "13"}},
		{name: "Version8", mods: []reqMod{setH("Sec-WebSocket-Version", "8")}, want: 426, wantHeader: [2]string{"Sec-WebSocket-Version", "13"}},
		{name: "Version14", mods: []reqMod{setH("Sec-WebSocket-Version", "14")}, want: 426, wantHeader: [2]string{"Sec-WebSocket-Version", "13"}},
		{name: "KeyMissing", mods: []reqMod{delH("Sec-WebSocket-Key")}, want: 400},
		{name: "KeyEmpty", mods: []reqMod{setH("Sec-WebSocket-Key", "")}, want: 400},
		{name: "KeyNotBase64", mods: []reqMod{setH("Sec-WebSocket-Key", "!!!!not*base64!!!!!!!==")}, want: 400},
		{name: "Key15Bytes", mods: []reqMod{setH("Sec-WebSocket-Key", b64(15))}, want: 400},
		{name: "Key17Bytes", mods: []reqMod{setH("Sec-WebSocket-Key", b64(17))}, want: 400},
		{name: "KeyRepeated", mods: []reqMod{setH("Sec-WebSocket-Key", b64(16), b64(16))}, want: 400},
		{name: "OriginUnparsable", mods: []reqMod{addH("Origin", "http://[::1")}, want: 400},
		{name: "OriginUnparsableSpaceInHost", mods: []reqMod{addH("Origin", "http://exa mple.com")}, want: 400},
		{name: "OriginUnparsableNilAccessOk", access: accessNil, mods: []reqMod{addH("Origin", "http://%zz")}, want: 400},
		{name: "NilAccessOkIPv6OtherHost", access: accessNil, hostHeader: "[::1]:8080", mods: []reqMod{addH("Origin", "http://[::2]:8080")}, want: 403},
		{name: "NilAccessOkCrossOrigin", access: accessNil, mods: []reqMod{addH("Origin", "http://evil.example")}, want: 403},
		{name: "NilAccessOkOtherPort", access: accessNil, hostHeader: "example.com:8080", mods: []reqMod{addH("Origin", "http://example.com:9090")}, want: 403},
		{name: "NilAccessOkOtherHostSamePort", access: accessNil, hostHeader: "example.com", mods: []reqMod{addH("Origin", "http://evil.com")}, want: 403},
		{name: "NilAccessOkHTTPSNonDefaultPort", access: accessNil, hostHeader: "example.com", mods: []reqMod{addH("Origin", "https://example.com:8443")}, want: 403},
		{name: "NilAccessOkNullOrigin", access: accessNil, mods: []reqMod{addH("Origin", "null")}, want: 403},
		// Found by FuzzHandshake: port 80 is a default for the web's schemes only.
		{name: "NilAccessOkUnknownSchemePort80", access: accessNil, hostHeader: "example.com:80", mods: []reqMod{addH("Origin", "foo://example.com")}, want: 403},
		// Found by FuzzHandshake: U+00A0 is part of a token, not space around it.
		{name: "UpgradeTokenWithUnicodeSpace", mods: []reqMod{setH("Upgrade", "websocket ")}, want: 400},
		{name: "AccessOkFalse", access: accessDeny, want: 403},
		{name: "AccessOkFalseWithProtocols", access: accessDeny, mods: []reqMod{addH("Sec-WebSocket-Protocol", "chat")}, want: 403},
		{name: "ProtocolsOfferedNoneChosen", access: accessAllow, mods: []reqMod{addH("Sec-WebSocket-Protocol", "chat, superchat")}, want: 400},
		{name: "ProtocolsOfferedUnofferedChosen", access: accessPick, pick: "other", mods: []reqMod{addH("Sec-WebSocket-Protocol", "chat, superchat")}, want: 400},
		{name: "ProtocolsOfferedNilAccessOk", access: accessNil, mods: []reqMod{addH("Sec-WebSocket-Protocol", "chat")}, want: 400},
		{name: "NilHandle", nilHandle: true, want: 500},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := &websocket.Handler{AccessOk: makeAccess(tc.access, tc.pick)}
			if !tc.nilHandle {
				h.Handle = func(c *websocket.Conn) { c.Close(websocket.StatusOK, "") }
			}
			ts := startServer(t, h)
			host := ts.Addr
			if tc.hostHeader != "" {
				host = tc.hostHeader
			}
			method := tc.method
			if method == "" {
				method = "GET"
			}
			ex := doRawHTTP(t, ts.Addr, method, buildReq(host, wstest.NewKey(), tc.mods...)...)
			r := ex.Resp
			if r.StatusCode != tc.want {
				t.Fatalf("status %d %q (body %q), want %d", r.StatusCode, r.Status, ex.Body, tc.want)
			}
			if tc.wantHeader[0] != "" && !headerHasToken(r.Header, tc.wantHeader[0], tc.wantHeader[1]) {
				t.Errorf("header %s = %q, want it to contain %q", tc.wantHeader[0], r.Header.Values(tc.wantHeader[0]), tc.wantHeader[1])
			}
			if v := r.Header.Get("Sec-WebSocket-Accept"); v != "" {
				t.Errorf("refusal carries Sec-WebSocket-Accept %q", v)
			}
			if method != "HEAD" {
				if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
					t.Errorf("Content-Type %q, want text/plain", ct)
				}
				if len(bytes.TrimSpace(ex.Body)) == 0 || len(ex.Body) > 512 {
					t.Errorf("body %q, want a short plain-text reason", ex.Body)
				}
			}
			checkNotHijacked(t, ex, host)
			if n := ts.handleCalls.Load(); n != 0 {
				t.Errorf("Handle called %d times for a refused request", n)
			}
			if tc.access == accessDeny && ts.accessCalls.Load() != 1 {
				t.Errorf("AccessOk called %d times, want 1", ts.accessCalls.Load())
			}
		})
	}
}

// connInfo is what a handler saw of its Conn.
type connInfo struct {
	resource        string // ResourceName.RequestURI()
	resourceFull    string // ResourceName.String()
	resourceHasHost bool
	origin          *url.URL
	remote          string
	protocol        string
	protocols       []string // what AccessOk got
	inAccess        *connInfo
}

func snapshot(c *websocket.Conn) connInfo {
	ci := connInfo{remote: c.RemoteAddr, protocol: c.Protocol, origin: c.Origin}
	if c.ResourceName != nil {
		ci.resource = c.ResourceName.RequestURI()
		ci.resourceFull = c.ResourceName.String()
		ci.resourceHasHost = c.ResourceName.Scheme != "" || c.ResourceName.Host != ""
	}
	return ci
}

// Rows: C1; "Opening handshake": the 101.
func TestHandshakeAccepted(t *testing.T) {
	tests := []struct {
		name          string
		access        accessKind
		pick          string
		serverName    string
		hostHeader    string
		mods          []reqMod
		wantProtocol  string   // "" means: no Sec-WebSocket-Protocol header
		wantProtocols []string // what AccessOk must get (checked if access != accessNil)
	}{
		{name: "Minimal"},
		{name: "UpgradeMixedCase", mods: []reqMod{setH("Upgrade", "WebSocket")}},
		{name: "UpgradeList", mods: []reqMod{setH("Upgrade", "foo/1, websocket")}},
		{name: "UpgradeTwoLines", mods: []reqMod{setH("Upgrade", "foo/1", "websocket")}},
		{name: "ConnectionList", mods: []reqMod{setH("Connection", "keep-alive, Upgrade")}},
		{name: "ConnectionUpperCase", mods: []reqMod{setH("Connection", "UPGRADE")}},
		{name: "ConnectionListNoSpaces", mods: []reqMod{setH("Connection", "keep-alive,upgrade")}},
		{name: "ConnectionTwoLines", mods: []reqMod{setH("Connection", "keep-alive", "upgrade")}},
		{name: "RFCSampleKey", mods: []reqMod{setH("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")}},
		{name: "ExtensionOfferedNotNegotiated", mods: []reqMod{addH("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")}},
		{name: "NilAccessOkNoOrigin", access: accessNil},
		{name: "NilAccessOkSameOrigin", access: accessNil, hostHeader: "example.com:8080", mods: []reqMod{addH("Origin", "http://example.com:8080")}},
		{name: "NilAccessOkSameOriginCaseInsensitive", access: accessNil, hostHeader: "Example.COM", mods: []reqMod{addH("Origin", "http://example.com")}},
		{name: "NilAccessOkDefaultPortInOrigin", access: accessNil, hostHeader: "example.com", mods: []reqMod{addH("Origin", "http://example.com:80")}},
		{name: "NilAccessOkDefaultPortInHost", access: accessNil, hostHeader: "example.com:80", mods: []reqMod{addH("Origin", "http://example.com")}},
		{name: "NilAccessOkHTTPSDefaultPort", access: accessNil, hostHeader: "example.com:443", mods: []reqMod{addH("Origin", "https://example.com")}},
		{name: "NilAccessOkHTTPSDefaultPortHostWithoutPort", access: accessNil, hostHeader: "example.com", mods: []reqMod{addH("Origin", "https://example.com")}},
		{name: "NilAccessOkIPv6SameOrigin", access: accessNil, hostHeader: "[::1]:8080", mods: []reqMod{addH("Origin", "http://[::1]:8080")}},
		{name: "NilAccessOkIPv6DefaultPort", access: accessNil, hostHeader: "[::1]", mods: []reqMod{addH("Origin", "http://[::1]:80")}},
		// Found by FuzzHandshake: an empty port is the default port.
		{name: "NilAccessOkEmptyPortInHost", access: accessNil, hostHeader: "example.com:", mods: []reqMod{addH("Origin", "http://example.com")}},
		{name: "NilAccessOkEmptyPortNoScheme", access: accessNil, hostHeader: "example.com:", mods: []reqMod{addH("Origin", "//example.com")}},
		{name: "AccessOkAllowsCrossOrigin", access: accessAllow, mods: []reqMod{addH("Origin", "http://evil.example")}},
		{name: "ServerName", serverName: "wsmachine-test/1.0"},
		{name: "NoProtocolsOffered", access: accessAllow, wantProtocols: []string{}},
		{name: "ProtocolChosen", access: accessPick, pick: "superchat", mods: []reqMod{addH("Sec-WebSocket-Protocol", "chat, superchat")},
			wantProtocol: "superchat", wantProtocols: []string{"chat", "superchat"}},
		{name: "ProtocolFirstChosen", access: accessPick, pick: "chat", mods: []reqMod{addH("Sec-WebSocket-Protocol", "chat,superchat")},
			wantProtocol: "chat", wantProtocols: []string{"chat", "superchat"}},
		{name: "ProtocolListWhitespace", access: accessPick, pick: "superchat", mods: []reqMod{addH("Sec-WebSocket-Protocol", "  chat ,\tsuperchat  ")},
			wantProtocol: "superchat", wantProtocols: []string{"chat", "superchat"}},
		{name: "ProtocolsOnSeveralLines", access: accessPick, pick: "c", mods: []reqMod{addH("Sec-WebSocket-Protocol", "a"), addH("Sec-WebSocket-Protocol", "b, c")},
			wantProtocol: "c", wantProtocols: []string{"a", "b", "c"}},
		// Found by FuzzHandshake: U+0085 is part of the token; trimming it
		// would confirm a subprotocol the client did not offer.
		{name: "ProtocolWithUnicodeSpaceKept", access: accessPick, pick: "chat\u0085", mods: []reqMod{addH("Sec-WebSocket-Protocol", "chat\u0085")},
			wantProtocol: "chat\u0085", wantProtocols: []string{"chat\u0085"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			infos := make(chan connInfo, 1)
			var accessSeen atomic.Pointer[connInfo]
			h := &websocket.Handler{ServerName: tc.serverName}
			if tc.access != accessNil {
				inner := makeAccess(tc.access, tc.pick)
				h.AccessOk = func(c *websocket.Conn, protocols []string) bool {
					ci := snapshot(c)
					ci.protocols = slices.Clone(protocols)
					if ci.protocols == nil {
						ci.protocols = []string{}
					}
					accessSeen.Store(&ci)
					return inner(c, protocols)
				}
			}
			echo, results := echoHandler()
			h.Handle = func(c *websocket.Conn) {
				ci := snapshot(c)
				ci.inAccess = accessSeen.Load()
				infos <- ci
				echo(c)
			}
			ts := startServer(t, h)
			host := ts.Addr
			if tc.hostHeader != "" {
				host = tc.hostHeader
			}
			key := wstest.NewKey()
			for _, m := range tc.mods { // the RFC sample key case
				r := &rawReq{hdr: []hline{{"Sec-WebSocket-Key", key}}}
				m(r)
				for _, l := range r.hdr {
					if l.k == "Sec-WebSocket-Key" {
						key = l.v
					}
				}
			}
			c := dialWSLines(t, ts.Addr, key, buildReq(host, key, tc.mods...))
			if key == "dGhlIHNhbXBsZSBub25jZQ==" && c.Resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
				t.Errorf("Sec-WebSocket-Accept for the RFC sample key is %q", c.Resp.Header.Get("Sec-WebSocket-Accept"))
			}
			got := c.Resp.Header.Values("Sec-WebSocket-Protocol")
			if tc.wantProtocol == "" && len(got) != 0 {
				t.Errorf("Sec-WebSocket-Protocol %q, want none", got)
			}
			if tc.wantProtocol != "" && (len(got) != 1 || got[0] != tc.wantProtocol) {
				t.Errorf("Sec-WebSocket-Protocol %q, want %q", got, tc.wantProtocol)
			}
			if tc.serverName != "" {
				if s := c.Resp.Header.Get("Server"); s != tc.serverName {
					t.Errorf("Server header %q, want %q", s, tc.serverName)
				}
			}
			ci := recv(t, infos, "Handle to be called")
			if ci.protocol != tc.wantProtocol {
				t.Errorf("conn.Protocol in Handle = %q, want %q", ci.protocol, tc.wantProtocol)
			}
			if tc.wantProtocols != nil {
				if ci.inAccess == nil {
					t.Fatalf("AccessOk was not called before Handle")
				}
				if !slices.Equal(ci.inAccess.protocols, tc.wantProtocols) {
					t.Errorf("AccessOk got protocols %q, want %q", ci.inAccess.protocols, tc.wantProtocols)
				}
			}
			// The connection works.
			c.SendText("hello")
			c.ExpectText("hello")
			c.SendClose(1000, "")
			c.ExpectClose(1000)
			res := recv(t, results, "handler to end")
			if res.Status != (statusResult{websocket.StatusOK, ""}) {
				t.Errorf("GetStatus = %v, want 1000", res.Status)
			}
		})
	}
}

// Rows: C1.
func TestHandshakeConnFields(t *testing.T) {
	tests := []struct {
		name       string
		target     string
		origin     string // "" = no Origin header
		wantURI    string
		wantScheme string
		wantHost   string
	}{
		{name: "PathAndQuery", target: "/chat/room?x=1&y=%20z", wantURI: "/chat/room?x=1&y=%20z"},
		{name: "Root", target: "/", wantURI: "/"},
		{name: "EscapedPath", target: "/a%2Fb/c%20d", wantURI: "/a%2Fb/c%20d"},
		{name: "WithOrigin", target: "/x", origin: "https://app.example.com:8443", wantURI: "/x", wantScheme: "https", wantHost: "app.example.com:8443"},
		{name: "AbsoluteFormTarget", target: "http://127.0.0.1/abs/path?k=v", wantURI: "/abs/path?k=v"},
		{name: "WithOriginNoPort", target: "/x?q", origin: "http://example.org", wantURI: "/x?q", wantScheme: "http", wantHost: "example.org"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			accessInfo := make(chan connInfo, 1)
			handleInfo := make(chan connInfo, 1)
			echo, _ := echoHandler()
			ts := startServer(t, &websocket.Handler{
				AccessOk: func(c *websocket.Conn, _ []string) bool {
					accessInfo <- snapshot(c)
					return true
				},
				Handle: func(c *websocket.Conn) {
					handleInfo <- snapshot(c)
					echo(c)
				},
			})
			var extra []reqMod
			if tc.origin != "" {
				extra = append(extra, addH("Origin", tc.origin))
			}
			key := wstest.NewKey()
			extra = append(extra, reqLine("GET "+tc.target+" HTTP/1.1"))
			c := dialWSLines(t, ts.Addr, key, buildReq(ts.Addr, key, extra...))
			local := c.conn.LocalAddr().String()
			for _, where := range []struct {
				name string
				ci   connInfo
			}{
				{"AccessOk", recv(t, accessInfo, "AccessOk call")},
				{"Handle", recv(t, handleInfo, "Handle call")},
			} {
				ci := where.ci
				if ci.resourceHasHost {
					t.Errorf("%s: ResourceName carries scheme/host (%q); RFC 6455 resource name is path and query", where.name, ci.resourceFull)
				}
				if ci.resource != tc.wantURI {
					t.Errorf("%s: ResourceName %q, want %q", where.name, ci.resource, tc.wantURI)
				}
				if ci.remote != local {
					t.Errorf("%s: RemoteAddr %q, want the client's address %q", where.name, ci.remote, local)
				}
				if tc.origin == "" {
					if ci.origin != nil {
						t.Errorf("%s: Origin %v, want nil", where.name, ci.origin)
					}
				} else if ci.origin == nil {
					t.Errorf("%s: Origin nil, want %s", where.name, tc.origin)
				} else if ci.origin.Scheme != tc.wantScheme || !strings.EqualFold(ci.origin.Host, tc.wantHost) {
					t.Errorf("%s: Origin %v (scheme %q host %q), want %s", where.name, ci.origin, ci.origin.Scheme, ci.origin.Host, tc.origin)
				}
			}
			c.SendClose(1000, "")
			c.ExpectClose(1000)
		})
	}
}

// unwrapWriter is middleware's ResponseWriter: it hides http.Hijacker but
// offers Unwrap, as http.NewResponseController expects.
type unwrapWriter struct {
	http.ResponseWriter
	status *atomic.Int32
}

func (w *unwrapWriter) WriteHeader(code int) {
	w.status.Store(int32(code))
	w.ResponseWriter.WriteHeader(code)
}

func (w *unwrapWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Rows: C1.
func TestHandshakeBehindMiddleware(t *testing.T) {
	var status atomic.Int32
	var calls atomic.Int32
	mw := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			// Two layers of wrapping.
			next.ServeHTTP(&unwrapWriter{&unwrapWriter{w, &status}, &status}, r)
		})
	}
	echo, results := echoHandler()
	ts := startServer(t, &websocket.Handler{AccessOk: allowAll, Handle: echo}, withMiddleware(mw))

	t.Run("Upgrade", func(t *testing.T) {
		c := dialWS(t, ts)
		c.SendText("through middleware")
		c.ExpectText("through middleware")
		c.Send(opBinary, []byte{1, 2, 3})
		c.ExpectBinary([]byte{1, 2, 3})
		c.SendClose(1000, "bye")
		c.ExpectClose(1000)
		res := recv(t, results, "handler to end")
		if res.Status != (statusResult{websocket.StatusOK, "bye"}) {
			t.Errorf("GetStatus = %v, want {1000 bye}", res.Status)
		}
	})
	t.Run("RefusalGoesThroughWrapper", func(t *testing.T) {
		status.Store(0)
		ex := doRawHTTP(t, ts.Addr, "GET", buildReq(ts.Addr, wstest.NewKey(), setH("Sec-WebSocket-Version", "7"))...)
		if ex.Resp.StatusCode != 426 {
			t.Fatalf("status %d, want 426", ex.Resp.StatusCode)
		}
		if got := status.Load(); got != 426 {
			t.Errorf("middleware saw WriteHeader(%d), want 426", got)
		}
		checkNotHijacked(t, ex, ts.Addr)
	})
	if calls.Load() == 0 {
		t.Errorf("middleware was not used")
	}
}

// A handshake request whose handler was refused leaves the server usable for
// a following successful upgrade (nothing stuck, Handle count right).
// Rows: C2, C1.
func TestHandshakeRefusalThenUpgrade(t *testing.T) {
	echo, _ := echoHandler()
	ts := startServer(t, &websocket.Handler{Handle: echo}) // nil AccessOk
	ex := doRawHTTP(t, ts.Addr, "GET", buildReq(ts.Addr, wstest.NewKey(), addH("Origin", "http://evil.example"))...)
	if ex.Resp.StatusCode != 403 {
		t.Fatalf("cross-origin status %d, want 403", ex.Resp.StatusCode)
	}
	c := dialWS(t, ts, "Origin: http://"+ts.Addr)
	c.SendText("x")
	c.ExpectText("x")
	c.SendClose(1001, "")
	c.ExpectClose(1001)
	if n := ts.handleCalls.Load(); n != 1 {
		t.Errorf("Handle called %d times, want 1", n)
	}
}

// RFC 6455 §4.1: the client fails the connection if the server answers with
// a subprotocol it did not offer. If AccessOk sets conn.Protocol although no
// protocol was offered, the server must refuse or at least not send it.
// Rows: C2; "Opening handshake": subprotocols.
func TestHandshakeProtocolSetWithoutOffer(t *testing.T) {
	h, _ := echoHandler()
	ts := startServer(t, &websocket.Handler{
		AccessOk: func(c *websocket.Conn, _ []string) bool {
			c.Protocol = "unoffered"
			return true
		},
		Handle: h,
	})
	key := wstest.NewKey()
	ex := doRawHTTP(t, ts.Addr, "GET", buildReq(ts.Addr, key)...)
	if ex.Resp.StatusCode == http.StatusSwitchingProtocols {
		if v := ex.Resp.Header.Values("Sec-WebSocket-Protocol"); len(v) != 0 {
			t.Fatalf("101 carries Sec-WebSocket-Protocol %q that the client never offered", v)
		}
		c := &rawClient{t: t, conn: ex.conn, br: ex.br, Resp: ex.Resp, Key: key}
		c.SendClose(1000, "")
		c.ExpectClose(1000)
		return
	}
	if ex.Resp.StatusCode < 400 || ex.Resp.StatusCode >= 500 {
		t.Fatalf("status %d, want 101 without Sec-WebSocket-Protocol or a 4xx", ex.Resp.StatusCode)
	}
	checkNotHijacked(t, ex, ts.Addr)
}

// A ResponseWriter that cannot be hijacked gives an error response, no
// panic, and Handle is not called.
// Rows: C2.
func TestHandshakeUnhijackableWriter(t *testing.T) {
	var handled atomic.Bool
	h := &websocket.Handler{
		AccessOk: allowAll,
		Handle:   func(c *websocket.Conn) { handled.Store(true) },
	}
	req := httptest.NewRequest("GET", "http://example.com/ws", nil)
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Sec-WebSocket-Key", wstest.NewKey())
	req.Header.Set("Sec-WebSocket-Version", "13")
	rec := httptest.NewRecorder()
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("ServeHTTP panicked with an unhijackable ResponseWriter: %v", r)
			}
		}()
		h.ServeHTTP(rec, req)
	}()
	if rec.Code == http.StatusSwitchingProtocols || rec.Code < 400 {
		t.Errorf("status %d with an unhijackable ResponseWriter, want an error status", rec.Code)
	}
	if handled.Load() {
		t.Errorf("Handle called although the connection could not be hijacked")
	}
}

// Bytes that arrive together with the handshake request (a client that does
// not wait for the 101, RFC 6455 §4.1 says it should) are not lost when the
// connection is hijacked: the server's HTTP reader may have buffered them.
// Rows: C6: bytes before the 101 wait for it; C1, O1, O5.
func TestHandshakeBufferedBytesNotLost(t *testing.T) {
	ts, _ := startEcho(t)
	key := wstest.NewKey()
	conn := dialTCP(t, ts.Addr)
	req := strings.Join(handshakeRequest(ts.Addr, "/", key), "\r\n") + "\r\n\r\n"
	conn.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := conn.Write(wstest.Concat([]byte(req), wstest.FrameBytes(opText, []byte("early")), wstest.FrameBytes(opPing, []byte("p")))); err != nil {
		t.Fatal(err)
	}
	ex := &httpExchange{conn: conn, br: bufio.NewReader(conn)}
	resp, _ := ex.readResponse(t, "GET")
	c := &rawClient{t: t, conn: conn, br: ex.br, Resp: resp, Key: key}
	c.checkUpgrade(nil, false)
	msgs, ops, pongs := c.readMsgsAndPongs(1, 1)
	if ops[0] != opText || string(msgs[0]) != "early" || string(pongs[0]) != "p" {
		t.Errorf("got message op %#x %q, pong %q; want text \"early\" and pong \"p\"", ops[0], msgs[0], pongs[0])
	}
	c.SendClose(1000, "")
	c.ExpectClose(1000)
}

// Calls on the Conn from inside AccessOk (before the 101 response) fail and
// put nothing on the wire: the handshake response stays intact.
// Rows: C3, C4, C5.
func TestConnCallsInsideAccessOkFail(t *testing.T) {
	errs := make(chan []error, 1)
	h, _ := echoHandler()
	ts := startServer(t, &websocket.Handler{
		AccessOk: func(c *websocket.Conn, _ []string) bool {
			var e []error
			e = append(e, c.SendText("too early"))
			e = append(e, c.SendBinary([]byte("too early")))
			if w, err := c.SendMessage(websocket.Text); err != nil {
				e = append(e, err)
			} else {
				w.Write([]byte("too early"))
				e = append(e, w.Close())
			}
			_, err := c.ReceiveText(10)
			e = append(e, err)
			e = append(e, c.Close(websocket.StatusOK, ""))
			errs <- e
			return true
		},
		Handle: h,
	})
	c := dialWS(t, ts) // fails if anything but a clean 101 arrives
	for i, err := range recv(t, errs, "AccessOk") {
		if err == nil {
			t.Errorf("call %d inside AccessOk returned nil, want an error", i)
		}
	}
	c.SendText("after")
	c.ExpectText("after") // no frame from AccessOk's calls came first
	c.SendClose(1000, "")
	c.ExpectClose(1000)
}

// The http.Server's timeouts (read, write, idle, header) apply to the HTTP
// exchange only: a WebSocket connection outlives them.
// Rows: O1, O3.
func TestConnOutlivesHTTPServerTimeouts(t *testing.T) {
	const timeout = 150 * time.Millisecond
	h, results := echoHandler()
	ts := startServer(t, &websocket.Handler{AccessOk: allowAll, Handle: h}, withHTTPServer(func(s *http.Server) {
		s.ReadTimeout = timeout
		s.ReadHeaderTimeout = timeout
		s.WriteTimeout = timeout
		s.IdleTimeout = timeout
	}))
	c := dialWS(t, ts)
	c.SendText("before")
	c.ExpectText("before")
	time.Sleep(3 * timeout) // longer than every server timeout
	c.Send(opPing, []byte("still there"))
	c.ExpectPong([]byte("still there"))
	c.SendText("after")
	c.ExpectText("after")
	c.SendClose(1000, "")
	c.ExpectClose(1000)
	if res := recv(t, results, "handler"); res.Status != (statusResult{websocket.StatusOK, ""}) {
		t.Errorf("GetStatus = %v", res.Status)
	}
}

// A connection has one opening handshake: once open, a second upgrade
// request on it is not one but bytes read as frames ('G' is a frame with
// RSV1 set and a reserved opcode), and the connection fails with 1002.
// Rows: O12, O7.
func TestSecondHandshakeOnOpenConnIsFrames(t *testing.T) {
	ts, results := startEcho(t)
	c := dialWS(t, ts)
	c.Write([]byte(strings.Join(handshakeRequest(ts.Addr, "/", wstest.NewKey()), "\r\n") + "\r\n\r\n"))
	c.ExpectClose(1002)
	if res := recv(t, results, "the handler to end"); res.Status != (statusResult{websocket.StatusDropped, ""}) {
		t.Errorf("GetStatus = %v, want {1006 \"\"}", res.Status)
	}
}

// The same while the server's Close waits for the client's answer: an
// upgrade request is frames that break the protocol, and the connection is
// dropped without a second close frame.
// Rows: K12, K5.
func TestHandshakeWhileClosingIsFrames(t *testing.T) {
	ts, done := startCloser(t, websocket.StatusOK, "")
	c := dialWS(t, ts)
	c.ExpectCloseFrame(1000)
	c.Write([]byte(strings.Join(handshakeRequest(ts.Addr, "/", wstest.NewKey()), "\r\n") + "\r\n\r\n"))
	c.ExpectEOF()
	res := recv(t, done, "Close")
	if !errors.Is(res.err, websocket.ErrConnClosed) {
		t.Errorf("Close returned %v, want an error wrapping ErrConnClosed", res.err)
	}
	if res.status != (statusResult{websocket.StatusDropped, ""}) {
		t.Errorf("GetStatus = %v, want {1006 \"\"}", res.status)
	}
}
