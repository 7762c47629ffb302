package websocket_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsmachine/wsmachine/websocket"
)

// Interop with clients nobody here wrote. Each peer is a script in
// testdata/peers that connects to an echo server (peerHandler) and prints
// one line per check, "ok <check>" or "FAIL <check>: <why>", and one per
// measurement, "wire <label> raw=<bytes> up=<bytes> down=<bytes>". It runs
// once against a server in each compression mode (peerServerModes); every
// peer offers permessage-deflate. A missing peer is a failure with the
// command that installs it, never a skip: `make deps` installs them all.
//
// What travels on the wire is counted by a proxy (wireProxy) between the
// peer and the server, which also keeps every handshake: the server's
// answer to the peer's offer is checked there (checkHandshakes), the
// peer checks what it understood of it, and the test judges the byte
// counts (checkWire).

// peerProtocol is the subprotocol the peers offer among others.
const peerProtocol = "chat.wsmachine"

// peerServerModes are the servers every peer runs against: the name is
// the peer script's MODE argument (and the browser page's path).
var peerServerModes = []struct {
	name        string
	compression websocket.CompressionMode
}{
	{"off", websocket.CompressionOff},
	{"no-context-takeover", websocket.CompressionNoContextTakeover},
	{"context-takeover", websocket.CompressionContextTakeover},
}

// peerWholeMax is the longest message peerHandler echoes with SendText or
// SendBinary; longer ones are streamed through SendMessage.
const peerWholeMax = 64 << 10

// peerHandler echoes every message, with the server's compression mode
// and default threshold and message size limit (16 MiB, which the
// peers' largest message reaches exactly). A message of at most
// peerWholeMax bytes is read whole and sent back with SendText or
// SendBinary, a longer one streamed back through SendMessage, so that
// both ways of sending are compressed. A text message "close <code>
// <reason>" makes it close with that code and reason; "wire" makes it
// answer "wire <up> <down>", the bytes its TCP connection has carried
// from and to the client so far, as wire counted them.
func peerHandler(compression websocket.CompressionMode, wire *wireProxy) *websocket.Handler {
	return &websocket.Handler{
		Compression: compression,
		AccessOk: func(c *websocket.Conn, protocols []string) bool {
			if len(protocols) > 0 {
				c.Protocol = protocols[0]
				if slices.Contains(protocols, peerProtocol) {
					c.Protocol = peerProtocol
				}
			}
			return true
		},
		Handle: func(c *websocket.Conn) {
			buf := make([]byte, peerWholeMax+1)
			for {
				tp, r, err := c.ReceiveMessage()
				if err != nil {
					return
				}
				n, err := io.ReadFull(r, buf)
				if err == nil { // longer than peerWholeMax
					w, err := c.SendMessage(tp)
					if err != nil {
						return
					}
					w.Write(buf[:n])
					io.Copy(w, r)
					if w.Close() != nil {
						return
					}
					continue
				}
				if err != io.EOF && err != io.ErrUnexpectedEOF {
					return
				}
				msg := buf[:n]
				switch {
				case tp == websocket.Binary:
					err = c.SendBinary(msg)
				case bytes.HasPrefix(msg, []byte("close ")):
					code, reason, _ := strings.Cut(string(msg[len("close "):]), " ")
					status, _ := strconv.Atoi(code)
					c.Close(websocket.Status(status), reason)
					return
				case string(msg) == "wire" && wire != nil:
					up, down := wire.counts(c.RemoteAddr)
					err = c.SendText(fmt.Sprintf("wire %d %d", up, down))
				default:
					err = c.SendText(string(msg))
				}
				if err != nil {
					return
				}
			}
		},
	}
}

// peerRun is what a peer printed in one run.
type peerRun struct {
	wire map[string]wireFigure // by label
}

// wireFigure is what echoing some messages cost on the wire.
type wireFigure struct {
	raw, up, down int64 // payload bytes; TCP bytes client to server, server to client
}

var wireLine = regexp.MustCompile(`^wire (\S+) raw=(\d+) up=(-?\d+) down=(-?\d+)$`)

// parsePeerLines reports every check a peer printed and collects its
// measurements; it returns how many checks there were.
func parsePeerLines(t *testing.T, lines []string, run *peerRun) (checks int) {
	t.Helper()
	for _, line := range lines {
		switch {
		case strings.HasPrefix(line, "ok "):
			checks++
			t.Log(line)
		case strings.HasPrefix(line, "FAIL"):
			checks++
			t.Error(line)
		case strings.HasPrefix(line, "wire "):
			m := wireLine.FindStringSubmatch(line)
			if m == nil {
				t.Errorf("malformed measurement %q", line)
				continue
			}
			var f wireFigure
			f.raw, _ = strconv.ParseInt(m[2], 10, 64)
			f.up, _ = strconv.ParseInt(m[3], 10, 64)
			f.down, _ = strconv.ParseInt(m[4], 10, 64)
			run.wire[m[1]] = f
			t.Logf("%s: %d B of payload took %d B up (%.1f%%), %d B down (%.1f%%)",
				m[1], f.raw, f.up, 100*float64(f.up)/float64(f.raw), f.down, 100*float64(f.down)/float64(f.raw))
		}
	}
	return checks
}

// runPeer runs a peer's command (args, then the server's mode and URL)
// against an echo server in each mode, and judges what it printed and
// what went over the wire. 16 MiB messages are slow under the race
// detector, so the peers send them only where the mode makes a
// difference: binary uncompressed (off), binary and text compressed
// (context-takeover).
func runPeer(t *testing.T, install string, name string, args ...string) {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found (%v): %s", name, err, install)
	}
	runs := map[string]*peerRun{}
	for _, mode := range peerServerModes {
		t.Run(mode.name, func(t *testing.T) {
			wire := newWireProxy(t)
			ts := startServer(t, peerHandler(mode.compression, wire))
			wire.start(ts.Addr)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, path, append(args, mode.name, "ws://"+wire.addr()+"/echo")...)
			cmd.Dir = filepath.Join("testdata", "peers")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			start := time.Now()
			out, _ := cmd.Output()
			run := &peerRun{wire: map[string]wireFigure{}}
			checks := parsePeerLines(t, strings.Split(string(out), "\n"), run)
			if checks == 0 || cmd.ProcessState == nil || !cmd.ProcessState.Exited() {
				t.Fatalf("%s ran no check (%v): %s%s", name, cmd.ProcessState, out, stderr.Bytes())
			}
			if code := cmd.ProcessState.ExitCode(); code != 0 && !t.Failed() {
				t.Errorf("%s exited with %d: %s", name, code, stderr.Bytes())
			}
			t.Logf("%s ran %d checks in %v", name, checks, time.Since(start).Round(time.Millisecond))
			wire.checkHandshakes(t, func(string) websocket.CompressionMode { return mode.compression })
			checkWire(t, mode.compression, run, peerLabels)
			runs[mode.name] = run
		})
	}
	checkTakeover(t, runs)
}

// peerLabels are the measurements the Node and Python peers make.
var peerLabels = []string{"text-400", "text-600", "json-1MiB", "events-default", "events-client-no-takeover", "events-no-takeover"}

// checkWire judges a run's measurements against the server's mode. Off,
// every message costs at least its size both ways (the counting works).
// Compressed, a message below the threshold (512 B) still costs its size
// on the way back, one above it far less, and so does 1 MiB of JSON, both
// ways.
func checkWire(t *testing.T, mode websocket.CompressionMode, run *peerRun, labels []string) {
	t.Helper()
	for _, label := range labels {
		f, ok := run.wire[label]
		if !ok {
			t.Errorf("no measurement %s", label)
			continue
		}
		if mode == websocket.CompressionOff {
			if f.up < f.raw || f.down < f.raw {
				t.Errorf("%s: %d B took %d B up and %d B down, uncompressed: want at least the payload each way", label, f.raw, f.up, f.down)
			}
			continue
		}
		switch label {
		case "text-400": // below the threshold
			if f.down < f.raw {
				t.Errorf("%s: %d B came back in %d B: compressed below the threshold", label, f.raw, f.down)
			}
		case "text-600": // above it
			if f.down > f.raw/4 {
				t.Errorf("%s: %d B of repetitive text came back in %d B: not compressed above the threshold", label, f.raw, f.down)
			}
		case "json-1MiB":
			if f.up > f.raw/4 || f.down > f.raw/4 {
				t.Errorf("%s: %d B of JSON took %d B up and %d B down: want under a quarter each way", label, f.raw, f.up, f.down)
			}
		default: // events
			if f.up > f.raw*3/4 || f.down > f.raw*3/4 {
				t.Errorf("%s: %d B of JSON events took %d B up and %d B down: want under three quarters each way", label, f.raw, f.up, f.down)
			}
		}
	}
}

// checkTakeover compares the JSON events across the runs: in each
// direction, where the sender kept its context (context takeover) they
// cost less than half of what they cost where it reset after each
// message. The server keeps its own in the context-takeover mode unless
// the client asked for server_no_context_takeover ("no-takeover"); the
// client keeps its own there unless it asked for
// client_no_context_takeover (any kind but "default").
func checkTakeover(t *testing.T, runs map[string]*peerRun) {
	t.Helper()
	type sample struct {
		name                           string
		serverTakeover, clientTakeover bool
		wireFigure
	}
	var samples []sample
	for mode, run := range runs {
		if mode == "off" {
			continue
		}
		for label, f := range run.wire {
			kind, ok := strings.CutPrefix(label, "events-")
			if !ok {
				continue
			}
			ct := mode == "context-takeover"
			samples = append(samples, sample{mode + "/" + label, ct && kind != "no-takeover", ct && kind == "default", f})
		}
	}
	compared := 0
	for _, a := range samples {
		for _, b := range samples {
			if a.raw != b.raw {
				t.Errorf("%s and %s measured different events: %d and %d B", a.name, b.name, a.raw, b.raw)
				continue
			}
			if a.serverTakeover && !b.serverTakeover {
				compared++
				if a.down*2 > b.down {
					t.Errorf("server to client, the events took %d B with context takeover (%s), %d B without (%s): want less than half", a.down, a.name, b.down, b.name)
				}
			}
			if a.clientTakeover && !b.clientTakeover {
				compared++
				if a.up*2 > b.up {
					t.Errorf("client to server, the events took %d B with context takeover (%s), %d B without (%s): want less than half", a.up, a.name, b.up, b.name)
				}
			}
		}
	}
	t.Logf("JSON events with and without context takeover: %d comparisons", compared)
	if len(runs) == len(peerServerModes) && compared == 0 {
		t.Errorf("no events with and without context takeover to compare: %v", samples)
	}
}

// nodeInstall says how to get what the Node.js peers need.
const nodeInstall = "install Node.js, then `npm ci` in websocket/testdata/peers (make deps)"

// requireNodeWS fails t unless Node's ws package is installed in
// testdata/peers.
func requireNodeWS(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(filepath.Join("testdata", "peers", "node_modules", "ws")); err != nil {
		t.Fatalf("the ws package is not installed: %s", nodeInstall)
	}
}

// Node.js's ws package (testdata/peers/package-lock.json), with
// perMessageDeflate.
// Rows: C1, O1, O3, O6, O10, K4.
func TestPeerNodeWS(t *testing.T) {
	t.Parallel()
	const install = nodeInstall
	requireNodeWS(t)
	runPeer(t, install, "node", "node_client.mjs")
}

// Python's websockets (Debian's python3-websockets, run with Debian's
// python3), with its permessage-deflate.
// Rows: C1, O1, O3, O6, O10, K4.
func TestPeerPythonWebsockets(t *testing.T) {
	t.Parallel()
	const install = "install Debian's python3 and python3-websockets (make deps)"
	if out, err := exec.Command(debianPython, "-c", "import websockets").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import websockets (%v: %s): %s", debianPython, err, bytes.TrimSpace(out), install)
	}
	runPeer(t, install, debianPython, "python_client.py")
}

// debianPython is Debian's python3, which has Debian's packages, whatever
// else is first on PATH.
const debianPython = "/usr/bin/python3"

// wireProxy forwards loopback TCP connections to a server, counting the
// bytes each carries either way as they are on the wire, and keeping the
// head of each direction: the handshake request and response. A proxy
// rather than a wrapped listener, so that the server uses its sockets as
// in production (it reads and writes a *net.TCPConn's descriptor itself,
// and a wrapper's Read and Write only).
type wireProxy struct {
	t  *testing.T
	ln net.Listener
	wg sync.WaitGroup

	mu     sync.Mutex
	conns  []*wireConn
	byAddr map[string]*wireConn // by the proxy's address as the server sees it
	closed bool
}

// wireConn is one proxied connection.
type wireConn struct {
	client, server net.Conn
	up, down       atomic.Int64 // bytes client to server, server to client

	mu                    sync.Mutex
	request, response     []byte // the head of each direction, up to the first empty line
	requestDone, respDone bool
}

// wireHeadMax bounds the handshake heads kept.
const wireHeadMax = 16 << 10

// newWireProxy listens on 127.0.0.1; start starts forwarding.
func newWireProxy(t *testing.T) *wireProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("wire proxy: %v", err)
	}
	p := &wireProxy{t: t, ln: ln, byAddr: map[string]*wireConn{}}
	t.Cleanup(p.close)
	return p
}

func (p *wireProxy) addr() string { return p.ln.Addr().String() }

// start forwards every connection accepted to target.
func (p *wireProxy) start(target string) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			client, err := p.ln.Accept()
			if err != nil {
				return
			}
			server, err := net.DialTimeout("tcp", target, 5*time.Second)
			if err != nil {
				client.Close()
				continue
			}
			wc := &wireConn{client: client, server: server}
			p.mu.Lock()
			if p.closed {
				p.mu.Unlock()
				client.Close()
				server.Close()
				return
			}
			p.conns = append(p.conns, wc)
			p.byAddr[server.LocalAddr().String()] = wc
			p.mu.Unlock()
			var pipes sync.WaitGroup
			pipes.Add(2)
			p.wg.Add(1)
			go func() { defer pipes.Done(); wc.pipe(server, client, &wc.up, &wc.request, &wc.requestDone) }()
			go func() { defer pipes.Done(); wc.pipe(client, server, &wc.down, &wc.response, &wc.respDone) }()
			go func() {
				defer p.wg.Done()
				pipes.Wait()
				client.Close()
				server.Close()
			}()
		}
	}()
}

// pipe copies src to dst, counting and keeping the head. An orderly end
// is passed on as one (a FIN, so that closing handshakes stay clean); a
// failure ends both.
func (wc *wireConn) pipe(dst, src net.Conn, n *atomic.Int64, head *[]byte, headDone *bool) {
	buf := make([]byte, 64<<10)
	for {
		k, err := src.Read(buf)
		if k > 0 {
			wc.mu.Lock()
			if !*headDone {
				*head = append(*head, buf[:min(k, wireHeadMax-len(*head))]...)
				*headDone = bytes.Contains(*head, []byte("\r\n\r\n")) || len(*head) == wireHeadMax
			}
			wc.mu.Unlock()
			n.Add(int64(k)) // counted before it is passed on: the other side cannot have seen it yet
			if _, werr := dst.Write(buf[:k]); werr != nil {
				src.Close()
				dst.Close()
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				dst.(*net.TCPConn).CloseWrite()
			} else {
				src.Close()
				dst.Close()
			}
			return
		}
	}
}

// counts returns the bytes carried so far by the connection the server
// sees coming from addr.
func (p *wireProxy) counts(addr string) (up, down int64) {
	p.mu.Lock()
	wc := p.byAddr[addr]
	p.mu.Unlock()
	if wc == nil {
		return -1, -1
	}
	return wc.up.Load(), wc.down.Load()
}

// close stops the proxy and waits (bounded) for its goroutines.
func (p *wireProxy) close() {
	p.mu.Lock()
	p.closed = true
	conns := slices.Clone(p.conns)
	p.mu.Unlock()
	p.ln.Close()
	for _, wc := range conns {
		wc.client.Close()
		wc.server.Close()
	}
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		p.t.Errorf("the wire proxy's goroutines did not end within 5 s")
	}
}

// checkHandshakes checks the server's side of every WebSocket handshake
// that went through the proxy, as it was on the wire: the
// Sec-WebSocket-Extensions answer to the client's offer is the one
// wantDeflateAnswer expects of the server's mode (modeOf the request
// path). A refused handshake is the peer's to judge. An accepted one
// must have been seen.
func (p *wireProxy) checkHandshakes(t *testing.T, modeOf func(path string) websocket.CompressionMode) {
	t.Helper()
	p.mu.Lock()
	conns := slices.Clone(p.conns)
	p.mu.Unlock()
	upgrades, accepted := 0, 0 // 101 responses; with permessage-deflate
	for _, wc := range conns {
		wc.mu.Lock()
		reqHead, respHead := slices.Clone(wc.request), slices.Clone(wc.response)
		wc.mu.Unlock()
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(reqHead)))
		if err != nil || !strings.EqualFold(req.Header.Get("Upgrade"), "websocket") {
			continue // an HTTP request (the browser's page), or nothing
		}
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(respHead)), req)
		if err != nil {
			t.Errorf("%s %s: no response (%v): %q", req.Method, req.URL, err, respHead)
			continue
		}
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Logf("%s: refused with %s", req.URL, resp.Status) // as the peer expected, or it said so
			continue
		}
		upgrades++
		offer := strings.Join(req.Header.Values("Sec-WebSocket-Extensions"), ", ")
		answer := strings.Join(resp.Header.Values("Sec-WebSocket-Extensions"), ", ")
		mode := modeOf(req.URL.Path)
		want, err := wantDeflateAnswer(offer, mode)
		if err != nil {
			t.Errorf("%s: %v", req.URL, err)
			continue
		}
		if got := parseExtensionAnswer(answer); !equalExtensionAnswers(got, want) {
			t.Errorf("%s, Compression %s: the server answered the offer %q with %q; want %q",
				req.URL, compressionName(mode), offer, answer, formatExtensionAnswer(want))
			continue
		}
		if answer != "" {
			accepted++
		}
	}
	t.Logf("server side: %d WebSocket handshakes answered as expected, %d with permessage-deflate", upgrades, accepted)
	if upgrades == 0 {
		t.Errorf("no WebSocket handshake was accepted through the wire proxy")
	}
}

// wantDeflateAnswer is the server's expected answer to a client's
// Sec-WebSocket-Extensions offer, parsed, or nil for none (RFC 7692 §7.1):
// the first permessage-deflate offer accepted, client_max_window_bits
// without a value or with 15 not answered (the server does not limit the
// client's window), with a value N below 15 answered as offered (the
// client keeps to its window), server_max_window_bits=N (8–15) answered
// as offered (the server compresses with that window),
// server_no_context_takeover and client_no_context_takeover answered
// where the client asked for them, and both where the mode is
// CompressionNoContextTakeover. Only the offers the peers make are
// known.
func wantDeflateAnswer(offer string, mode websocket.CompressionMode) (map[string]string, error) {
	if mode == websocket.CompressionOff || offer == "" {
		return nil, nil
	}
	elements := parseExtensionOffer(offer)
	i := slices.IndexFunc(elements, func(e extensionElement) bool { return e.name == "permessage-deflate" })
	if i < 0 {
		return nil, nil
	}
	want := map[string]string{}
	for param, value := range elements[i].params {
		bits, err := strconv.Atoi(value)
		validBits := err == nil && bits >= 8 && bits <= 15 && strconv.Itoa(bits) == value
		switch {
		case (param == "server_no_context_takeover" || param == "client_no_context_takeover") && value == "":
			want[param] = ""
		case param == "server_max_window_bits" && validBits:
			want[param] = value
		case param == "client_max_window_bits" && validBits && bits < 15:
			want[param] = value
		case param == "client_max_window_bits" && (value == "" || validBits):
			// not answered
		case value != "":
			return nil, fmt.Errorf("offer %q: the test does not know what to expect of %s=%s", offer, param, value)
		default:
			return nil, fmt.Errorf("offer %q: the test does not know what to expect of %s", offer, param)
		}
	}
	if mode == websocket.CompressionNoContextTakeover {
		want["server_no_context_takeover"] = ""
		want["client_no_context_takeover"] = ""
	}
	return want, nil
}

// extensionElement is one element of Sec-WebSocket-Extensions.
type extensionElement struct {
	name   string
	params map[string]string // "" for a parameter without a value
}

// parseExtensionOffer parses a Sec-WebSocket-Extensions value (no quoted
// strings: the peers send none).
func parseExtensionOffer(v string) []extensionElement {
	var out []extensionElement
	for _, element := range strings.Split(v, ",") {
		if strings.TrimSpace(element) == "" {
			continue
		}
		parts := strings.Split(element, ";")
		e := extensionElement{name: strings.TrimSpace(parts[0]), params: map[string]string{}}
		for _, p := range parts[1:] {
			name, value, _ := strings.Cut(p, "=")
			e.params[strings.TrimSpace(name)] = strings.Trim(strings.TrimSpace(value), `"`)
		}
		out = append(out, e)
	}
	return out
}

// parseExtensionAnswer parses a server's answer: nil if empty; a single
// permessage-deflate's parameters; otherwise a map that matches no
// expectation.
func parseExtensionAnswer(v string) map[string]string {
	elements := parseExtensionOffer(v)
	switch {
	case len(elements) == 0:
		return nil
	case len(elements) == 1 && elements[0].name == "permessage-deflate":
		return elements[0].params
	}
	return map[string]string{"unexpected answer": v}
}

// formatExtensionAnswer formats a parsed answer, parameters sorted.
func formatExtensionAnswer(params map[string]string) string {
	if params == nil {
		return ""
	}
	s := "permessage-deflate"
	for _, k := range slices.Sorted(maps.Keys(params)) {
		s += "; " + k
		if params[k] != "" {
			s += "=" + params[k]
		}
	}
	return s
}

// compressionName names a mode as peerServerModes do.
func compressionName(m websocket.CompressionMode) string {
	for _, mode := range peerServerModes {
		if mode.compression == m {
			return mode.name
		}
	}
	return strconv.Itoa(int(m))
}

func equalExtensionAnswers(a, b map[string]string) bool {
	if (a == nil) != (b == nil) || len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
