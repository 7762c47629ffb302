package websocket

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// DialOptions configures Dial. The zero value (or nil) dials with the
// defaults: no subprotocol, no compression, proxies from the environment,
// and the same limits and timeouts as a Handler's zero value.
type DialOptions struct {
	// Header holds extra header fields for the handshake request, such as
	// Authorization or Cookie. Fields the handshake itself sets (Host,
	// Upgrade, Connection, Sec-WebSocket-*) are refused with an error.
	Header http.Header

	// Subprotocols are offered in Sec-WebSocket-Protocol, in order of
	// preference; the one the server chose is Conn.Protocol. A server
	// that chooses one not offered fails the handshake.
	Subprotocols []string

	// Origin, if not empty, is sent as the Origin header, as a browser
	// would for a page from that origin.
	Origin string

	// TLSConfig is used for wss:// URLs. Nil means the default
	// configuration; ServerName, if empty, is taken from the URL.
	TLSConfig *tls.Config

	// NetDial, if set, opens the network connection to addr (host:port
	// of the server, or of the proxy) instead of a net.Dialer: for
	// custom transports, Unix sockets, or tests. For wss://, TLS runs
	// over what it returns.
	NetDial func(ctx context.Context, network, addr string) (net.Conn, error)

	// Proxy returns the HTTP proxy for a request (nil: none), as
	// http.Transport's Proxy does; the connection is then tunnelled
	// through it with CONNECT. Nil means http.ProxyFromEnvironment
	// (HTTP_PROXY, HTTPS_PROXY and NO_PROXY; ws:// counts as http://,
	// wss:// as https://). To never use a proxy, return nil, nil.
	Proxy func(*http.Request) (*url.URL, error)

	// Compression, if not CompressionOff, offers permessage-deflate
	// (RFC 7692): CompressionNoContextTakeover asks for no context
	// takeover both ways, CompressionContextTakeover lets the server
	// decide. CompressionThreshold is as for Handler.
	Compression          CompressionMode
	CompressionThreshold int

	// MaxMessageSize, WriteTimeout, PingInterval, IdleTimeout and
	// CloseTimeout are as for Handler, with the server in the place of
	// the client: the same defaults, the same meaning.
	MaxMessageSize int64
	WriteTimeout   time.Duration
	PingInterval   time.Duration
	IdleTimeout    time.Duration
	CloseTimeout   time.Duration

	// Logger, if set, gets a Debug record when the connection fails for
	// a protocol violation of the server's or is dropped, as for
	// Handler. Nil logs nothing.
	Logger *slog.Logger
}

// limits are the options' limits and timeouts, for configure.
func (o *DialOptions) limits() limits {
	return limits{maxMessageSize: o.MaxMessageSize, writeTimeout: o.WriteTimeout,
		pingInterval: o.PingInterval, idleTimeout: o.IdleTimeout, closeTimeout: o.CloseTimeout}
}

// HandshakeError is the error of a handshake the server did not accept
// as RFC 6455 requires: Response is the server's response (its body, up to
// 64 KiB, is kept readable), Reason what was wrong with it.
type HandshakeError struct {
	Response *http.Response
	Reason   string
}

func (e *HandshakeError) Error() string {
	return "websocket: handshake failed: " + e.Reason
}

// maxResponseHeader bounds the server's handshake response, and
// maxErrorBody what is kept of the body of a refusal.
const (
	maxResponseHeader = 64 << 10
	maxErrorBody      = 64 << 10
)

// Dial opens a WebSocket connection to urlStr, a ws:// or wss:// URL, and
// performs the opening handshake as the client (RFC 6455 §4.1). ctx bounds
// the dial and the handshake (a deadline on it is the handshake timeout);
// once Dial returns, ctx no longer matters.
//
// The Conn has the same methods, limits and close semantics as one from
// a Handler, with the roles swapped: frames it sends are masked with
// fresh random keys, frames from the server must not be masked, and
// GetStatus reports the server's close code. Once the closing handshake is
// done, the client waits (up to a second) for the server to close TCP
// first, as RFC 6455 §7.1.1 asks.
//
// The response is checked strictly: 101, Upgrade and Connection tokens,
// Sec-WebSocket-Accept, and no subprotocol or extension that was not
// offered. A response that fails gives a *HandshakeError with the
// response, which Dial also returns. Nothing is followed: a redirect is
// a failed handshake.
func Dial(ctx context.Context, urlStr string, opts *DialOptions) (*Conn, *http.Response, error) {
	if opts == nil {
		opts = &DialOptions{}
	}
	u, err := url.Parse(urlStr)
	if err != nil {
		return nil, nil, fmt.Errorf("websocket: dial: %w", err)
	}
	var secure bool
	switch strings.ToLower(u.Scheme) {
	case "ws":
	case "wss":
		secure = true
	default:
		return nil, nil, fmt.Errorf("websocket: dial %q: the scheme must be ws or wss", urlStr)
	}
	if u.Host == "" || u.User != nil || u.Fragment != "" {
		return nil, nil, fmt.Errorf("websocket: dial %q: a WebSocket URL has a host and no user or fragment", urlStr)
	}
	for name := range opts.Header {
		switch http.CanonicalHeaderKey(name) {
		case "Host", "Upgrade", "Connection", "Sec-Websocket-Key", "Sec-Websocket-Version",
			"Sec-Websocket-Protocol", "Sec-Websocket-Extensions":
			return nil, nil, fmt.Errorf("websocket: dial: header %s is set by the handshake", name)
		}
	}
	for _, p := range opts.Subprotocols {
		if !isToken(p) {
			return nil, nil, fmt.Errorf("websocket: dial: subprotocol %q is not a token", p)
		}
	}

	nc, err := dialNet(ctx, u, secure, opts)
	if err != nil {
		return nil, nil, err
	}
	// The handshake is bounded by ctx: its deadline on the socket, and
	// its cancellation closing the socket.
	if d, ok := ctx.Deadline(); ok {
		nc.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(aLongTimeAgo) })
	c, resp, err := handshake(nc, u, opts)
	if !stop() && err == nil {
		// ctx ended as the handshake did: its deadline may be set on
		// the socket, or about to be. Dial was cancelled.
		err = ctx.Err()
	}
	if err != nil {
		err = contextError(ctx, err)
		nc.Close()
		return nil, resp, err
	}
	nc.SetDeadline(time.Time{})
	c.open()
	return c, resp, nil
}

// contextError is err, a network error while ctx bounded the operation,
// joined with ctx's error if that is what made it fail: the socket's
// deadline can pass a moment before ctx notices its own.
func contextError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return errors.Join(ctx.Err(), err)
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return errors.Join(context.DeadlineExceeded, err)
	}
	return err
}

// dialNet connects to the server, through the proxy if there is one, and
// starts TLS for wss.
func dialNet(ctx context.Context, u *url.URL, secure bool, opts *DialOptions) (net.Conn, error) {
	addr := hostPort(u, secure)
	netDial := opts.NetDial
	if netDial == nil {
		var d net.Dialer
		netDial = d.DialContext
	}
	proxy := opts.Proxy
	if proxy == nil {
		proxy = http.ProxyFromEnvironment
	}
	// The proxy is chosen as for the HTTP request the handshake is.
	pu := *u
	pu.Scheme = map[bool]string{false: "http", true: "https"}[secure]
	proxyURL, err := proxy(&http.Request{Method: http.MethodGet, URL: &pu, Header: http.Header{}, Host: u.Host})
	if err != nil {
		return nil, fmt.Errorf("websocket: dial: proxy: %w", err)
	}
	var nc net.Conn
	if proxyURL != nil {
		nc, err = dialProxy(ctx, netDial, proxyURL, addr)
	} else {
		nc, err = netDial(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, contextError(ctx, fmt.Errorf("websocket: dial: %w", err))
	}
	if !secure {
		return nc, nil
	}
	cfg := opts.TLSConfig.Clone()
	if cfg == nil {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		cfg.ServerName = u.Hostname()
	}
	cfg.NextProtos = nil // HTTP/1.1 only: Upgrade does not exist in HTTP/2
	tc := tls.Client(nc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, contextError(ctx, fmt.Errorf("websocket: dial: TLS: %w", err))
	}
	return tc, nil
}

// hostPort is the server's address: the URL's host with its port, or the
// scheme's default port.
func hostPort(u *url.URL, secure bool) string {
	if u.Port() != "" {
		return u.Host
	}
	if secure {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

// dialProxy opens a tunnel to addr through an HTTP proxy with CONNECT
// (RFC 9110 §9.3.6), with Basic credentials if the proxy URL has them.
func dialProxy(ctx context.Context, netDial func(context.Context, string, string) (net.Conn, error), proxy *url.URL, addr string) (net.Conn, error) {
	if proxy.Scheme != "http" {
		return nil, fmt.Errorf("proxy %s: only http:// proxies are supported", proxy.Redacted())
	}
	port := proxy.Port()
	if port == "" {
		port = "80"
	}
	nc, err := netDial(ctx, "tcp", net.JoinHostPort(proxy.Hostname(), port))
	if err != nil {
		return nil, err
	}
	if d, ok := ctx.Deadline(); ok {
		nc.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(aLongTimeAgo) })
	defer stop()
	req := "CONNECT " + addr + " HTTP/1.1\r\nHost: " + addr + "\r\n"
	if proxy.User != nil {
		pass, _ := proxy.User.Password()
		req += "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(proxy.User.Username()+":"+pass)) + "\r\n"
	}
	if _, err := io.WriteString(nc, req+"\r\n"); err != nil {
		nc.Close()
		return nil, fmt.Errorf("proxy %s: %w", proxy.Redacted(), err)
	}
	// Read byte by byte up to the end of the header: what follows it is
	// the server's, and must stay in the socket.
	br := bufio.NewReader(io.LimitReader(&byteReader{nc}, maxResponseHeader))
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("proxy %s: %w", proxy.Redacted(), err)
	}
	if resp.StatusCode != http.StatusOK {
		nc.Close()
		return nil, fmt.Errorf("proxy %s: CONNECT %s: %s", proxy.Redacted(), addr, resp.Status)
	}
	nc.SetDeadline(time.Time{})
	return nc, nil
}

// byteReader reads one byte at a time, so that a reader on top of it never
// takes more than it consumes.
type byteReader struct{ r io.Reader }

func (b *byteReader) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return b.r.Read(p)
}

// handshake sends the opening handshake on nc and checks the response
// (RFC 6455 §4.1). On success the Conn holds nc and any bytes the server
// sent after the response.
func handshake(nc net.Conn, u *url.URL, opts *DialOptions) (*Conn, *http.Response, error) {
	var nonce [16]byte
	rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])

	path := u.RequestURI()
	var b bytes.Buffer
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n", path, u.Host, key)
	if opts.Origin != "" {
		fmt.Fprintf(&b, "Origin: %s\r\n", opts.Origin)
	}
	if len(opts.Subprotocols) > 0 {
		fmt.Fprintf(&b, "Sec-WebSocket-Protocol: %s\r\n", strings.Join(opts.Subprotocols, ", "))
	}
	if opts.Compression != CompressionOff {
		fmt.Fprintf(&b, "Sec-WebSocket-Extensions: %s\r\n", deflateOffer(opts.Compression))
	}
	if err := opts.Header.Write(&b); err != nil {
		return nil, nil, fmt.Errorf("websocket: dial: %w", err)
	}
	b.WriteString("\r\n")
	if _, err := nc.Write(b.Bytes()); err != nil {
		return nil, nil, fmt.Errorf("websocket: dial: %w", err)
	}

	// The response header is bounded; frames are read from nc itself
	// afterwards, with only what br holds beyond the header moved over.
	br := bufio.NewReaderSize(io.LimitReader(nc, maxResponseHeader), 4<<10)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet, URL: u})
	if err != nil {
		return nil, nil, fmt.Errorf("websocket: dial: reading the handshake response: %w", err)
	}
	fail := func(reason string) (*Conn, *http.Response, error) {
		if resp.StatusCode != http.StatusSwitchingProtocols {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
			resp.Body = io.NopCloser(bytes.NewReader(body))
		}
		return nil, resp, &HandshakeError{Response: resp, Reason: reason}
	}
	switch {
	case resp.StatusCode != http.StatusSwitchingProtocols:
		return fail("the server answered " + resp.Status + ", not 101 Switching Protocols")
	case !hasToken(resp.Header, "Upgrade", "websocket"):
		return fail("the response's Upgrade header does not name websocket")
	case !hasToken(resp.Header, "Connection", "upgrade"):
		return fail("the response's Connection header does not name upgrade")
	}
	if got := resp.Header.Values("Sec-WebSocket-Accept"); len(got) != 1 || got[0] != string(appendAcceptKey(nil, key)) {
		return fail("wrong Sec-WebSocket-Accept")
	}
	protocols := headerTokens(resp.Header, "Sec-WebSocket-Protocol")
	switch {
	case len(protocols) > 1:
		return fail("the server chose more than one subprotocol")
	case len(protocols) == 1 && !slices.Contains(opts.Subprotocols, protocols[0]):
		return fail("the server chose subprotocol " + protocols[0] + ", which was not offered")
	}
	var deflate *deflateParams
	if ext := resp.Header.Values("Sec-WebSocket-Extensions"); len(ext) > 0 {
		p, ok := acceptDeflateResponse(ext, opts.Compression)
		if !ok {
			return fail("the server chose extensions that were not offered or that we cannot use: " + strings.Join(ext, ", "))
		}
		deflate = &p
	}

	c := newConn()
	c.p.Client = true
	c.stats.log = opts.Logger
	c.configure(opts.limits())
	if deflate != nil {
		threshold := opts.CompressionThreshold
		if threshold <= 0 {
			threshold = defaultCompressionThreshold
		}
		c.deflate = newCompression(*deflate, threshold, true)
		c.p.Deflate = true
	}
	c.ResourceName = &url.URL{Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}
	if opts.Origin != "" {
		c.Origin, _ = url.Parse(opts.Origin)
	}
	c.RemoteAddr = nc.RemoteAddr().String()
	if len(protocols) == 1 {
		c.Protocol = protocols[0]
	}
	c.attach(nc, br)
	return c, resp, nil
}
