package websocket_test

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wsmachine/wsmachine/websocket"
)

// Broadcasts and pings with clients nobody here wrote: Node's ws and
// Python's websockets (testdata/peers/node_broadcast.mjs and
// python_broadcast.py) and Chromium's own WebSocket
// (testdata/peers/broadcast.html). A Handler (bcastHub) collects the
// connections by the name each peer puts in its URL (?peer=<name>) and,
// if asked to, receives what they send. In the broadcast tests every
// peer answers each message with "got <k> <text|binary> <length>
// <sha256>" and echoes it, and the test compares both with what it
// broadcast, byte for byte; in the ping test the peers send nothing.

// bcastModes are the server's compression modes the broadcast tests run
// in: off, the one a PreparedMessage shares its compressed frames in, and
// the one where each connection compresses it with its own history.
var bcastModes = []struct {
	name        string
	compression websocket.CompressionMode
}{
	{"off", websocket.CompressionOff},
	{"no-context-takeover", websocket.CompressionNoContextTakeover},
	{"context-takeover", websocket.CompressionContextTakeover},
}

// bcastNodeSpecs and bcastPythonSpecs are the connections each peer
// opens, as their scripts take them: "default" offers what the library
// offers by default, "w<N>" also server_max_window_bits=N, so that one
// broadcast goes out compressed with windows of three sizes.
var (
	bcastNodeSpecs   = []string{"default", "default", "w10"}
	bcastPythonSpecs = []string{"default", "default", "w12"}
)

// bcastOffer is what a peer's connection of spec offers
// (Sec-WebSocket-Extensions), Chromium's being "default".
func bcastOffer(spec string) string {
	if bits, ok := strings.CutPrefix(spec, "w"); ok {
		return "permessage-deflate; server_max_window_bits=" + bits + "; client_max_window_bits"
	}
	return "permessage-deflate; client_max_window_bits"
}

// bcastMessage is a message the tests broadcast.
type bcastMessage struct {
	name string
	tp   websocket.MessageType
	data []byte
}

// bcastMessages are the broadcast messages: an empty text and a short
// one with multi-byte characters (below the compression threshold,
// 512 B), 1.5 KiB of JSON (compressed to a fraction), 320 KiB of JSON
// events with random tokens (compressed to well over 64 KiB, so that its
// compressed form goes out in several frames, the first with RSV1), a
// binary message of 100 KiB, half random, with every byte value, and a
// short binary one that is not UTF-8. The random parts come from a fixed
// seed.
func bcastMessages(t *testing.T) []bcastMessage {
	t.Helper()
	rng := rand.New(rand.NewPCG(0x5eed, 0xb0ad))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}

	var room strings.Builder
	room.WriteString(`{"room":"lobby","members":[`)
	for i := 0; room.Len() < 1500; i++ {
		if i > 0 {
			room.WriteByte(',')
		}
		fmt.Fprintf(&room, `{"id":%d,"name":"user-%03d","status":"online","typing":false}`, i, i)
	}
	room.WriteString(`]}`)

	var events strings.Builder
	events.WriteString(`[`)
	for i := 0; events.Len() < 320<<10; i++ {
		if i > 0 {
			events.WriteString(",\n")
		}
		fmt.Fprintf(&events, `{"seq":%d,"type":"chat.message","id":"%x","user":"user-%03d","sig":"%s","note":"naïve café ✓"}`,
			i, random(8), rng.IntN(200), base64.StdEncoding.EncodeToString(random(48)))
	}
	events.WriteString(`]`)

	bin := make([]byte, 0, 100<<10)
	for i := range 256 {
		bin = append(bin, byte(i))
	}
	for len(bin) < 100<<10 {
		bin = append(bin, random(1024)...)
		for i := range 1024 {
			bin = append(bin, byte(i%251))
		}
	}

	msgs := []bcastMessage{
		{"empty", websocket.Text, nil},
		{"short", websocket.Text, []byte("héllo, wörld ✓ — 👋")},
		{"json-1.5KiB", websocket.Text, []byte(room.String())},
		{"events-320KiB", websocket.Text, []byte(events.String())},
		{"binary-100KiB", websocket.Binary, bin},
		{"binary-short", websocket.Binary, []byte{0x00, 0xff, 0x80, 0xc3}},
	}
	// The test's premise: even deflate's best, with a full window, leaves
	// more than a frame (64 KiB) of the events.
	var z bytes.Buffer
	fw, _ := flate.NewWriter(&z, flate.BestCompression)
	fw.Write(msgs[3].data)
	fw.Close()
	if z.Len() <= 64<<10 {
		t.Fatalf("the events compress to %d B, which fits in one frame: make them less compressible", z.Len())
	}
	return msgs
}

// bcastFrameLen is the length of an unmasked frame of n bytes of payload.
func bcastFrameLen(n int) int64 {
	switch {
	case n < 126:
		return int64(2 + n)
	case n < 1<<16:
		return int64(4 + n)
	}
	return int64(10 + n)
}

// bcastReport is what a peer answers to message k.
func bcastReport(k int, m bcastMessage) string {
	kind := "text"
	if m.tp == websocket.Binary {
		kind = "binary"
	}
	return fmt.Sprintf("got %d %s %d %x", k, kind, len(m.data), sha256.Sum256(m.data))
}

// bcastHub is a Handler's side of the broadcast and ping tests: it keeps
// every connection by the peer name in its URL and, if it receives, what
// the peer sent.
type bcastHub struct {
	t       *testing.T
	stop    chan struct{} // closed at the end of the test: receive loops stop handing over
	handles sync.WaitGroup

	mu    sync.Mutex
	conns map[string]*bcastConn
	dups  []string
}

// bcastConn is one connection of a bcastHub.
type bcastConn struct {
	name string
	conn *websocket.Conn
	got  chan bcastReceived // what the peer sent, in order; closed when receiving ends
	err  error              // why receiving ended; set before got is closed
}

// bcastReceived is a message a peer sent.
type bcastReceived struct {
	tp   websocket.MessageType
	data []byte
}

// newBcastHub makes a hub that, at the end of the test, closes the
// connections that are still open and waits (bounded) for its Handle
// calls to return. (Where startServer serves it, the server's cleanup,
// registered later, runs first and has closed them already: the peers,
// started later still, are killed before, if they have not exited.)
func newBcastHub(t *testing.T) *bcastHub {
	h := &bcastHub{t: t, stop: make(chan struct{}), conns: map[string]*bcastConn{}}
	t.Cleanup(h.close)
	return h
}

// handler returns a Handler with the compression mode; with receive, each
// Handle receives whatever the peer sends until the connection ends,
// otherwise it returns at once (the connection stays open, and its
// background reader reads).
func (h *bcastHub) handler(compression websocket.CompressionMode, receive bool) *websocket.Handler {
	return &websocket.Handler{
		Compression: compression,
		Handle: func(c *websocket.Conn) {
			h.handles.Add(1)
			defer h.handles.Done()
			bc := &bcastConn{name: c.ResourceName.Query().Get("peer"), conn: c, got: make(chan bcastReceived, 64)}
			h.mu.Lock()
			if _, dup := h.conns[bc.name]; dup {
				h.dups = append(h.dups, bc.name)
			}
			h.conns[bc.name] = bc
			h.mu.Unlock()
			if !receive {
				return
			}
			defer close(bc.got)
			for {
				tp, r, err := c.ReceiveMessage()
				var data []byte
				if err == nil {
					var b bytes.Buffer
					_, err = b.ReadFrom(r)
					data = b.Bytes()
				}
				if err != nil {
					bc.err = err
					return
				}
				select {
				case bc.got <- bcastReceived{tp, data}:
				case <-h.stop:
					bc.err = errors.New("the test ended")
					return
				}
			}
		},
	}
}

// wait waits up to 30 s until every peer in names has connected, failing
// the test at once if one of procs exits before, and returns their
// connections in the order of names.
func (h *bcastHub) wait(t *testing.T, names []string, procs ...*bcastPeer) []*bcastConn {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		h.mu.Lock()
		var got []*bcastConn
		var missing []string
		for _, name := range names {
			if bc := h.conns[name]; bc != nil {
				got = append(got, bc)
			} else {
				missing = append(missing, name)
			}
		}
		dups := slices.Clone(h.dups)
		h.mu.Unlock()
		if len(dups) > 0 {
			t.Fatalf("peers connected twice: %q", dups)
		}
		if len(missing) == 0 {
			return got
		}
		for _, p := range procs {
			select {
			case <-p.done:
				t.Fatalf("%s exited before %q connected: %v\n%s%s", p.name, missing, p.cmd.ProcessState, p.out.Bytes(), p.stderr.Bytes())
			default:
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q did not connect within 30 s", missing)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// close stops the receive loops, closes the connections still open and
// waits for the Handle calls.
func (h *bcastHub) close() {
	close(h.stop)
	h.mu.Lock()
	var conns []*websocket.Conn
	for _, bc := range h.conns {
		conns = append(conns, bc.conn)
	}
	h.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Close(websocket.StatusGoingAway, "test over") // ErrConnClosed if the test closed it
		}()
	}
	wg.Add(1)
	go func() { defer wg.Done(); h.handles.Wait() }()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		h.t.Errorf("the hub's connections did not close, or its Handle calls did not return, within 10 s")
	}
}

// next returns the next message the peer sent, failing t if none comes
// before deadline.
func (bc *bcastConn) next(t *testing.T, deadline time.Time) (bcastReceived, bool) {
	t.Helper()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case m, ok := <-bc.got:
		if !ok {
			t.Errorf("%s: the connection ended: %v", bc.name, bc.err)
			return m, false
		}
		return m, true
	case <-timer.C:
		t.Errorf("%s: nothing more came in time", bc.name)
		return bcastReceived{}, false
	}
}

// checkEchoes checks that the peer reported and echoed every message, in
// order, intact.
func (bc *bcastConn) checkEchoes(t *testing.T, msgs []bcastMessage, deadline time.Time) {
	t.Helper()
	for k, m := range msgs {
		report, ok := bc.next(t, deadline)
		if !ok {
			return
		}
		if want := bcastReport(k, m); report.tp != websocket.Text || string(report.data) != want {
			t.Errorf("%s: %s: the peer reported %v %.200q; want %q", bc.name, m.name, report.tp, report.data, want)
			return
		}
		echo, ok := bc.next(t, deadline)
		if !ok {
			return
		}
		if echo.tp != m.tp || !bytes.Equal(echo.data, m.data) {
			at := 0
			for at < min(len(echo.data), len(m.data)) && echo.data[at] == m.data[at] {
				at++
			}
			t.Errorf("%s: %s: the peer echoed %v of %d B, differing from the %v of %d B sent at byte %d", bc.name, m.name, echo.tp, len(echo.data), m.tp, len(m.data), at)
			return
		}
	}
}

// bcastPeer is a peer process the test started.
type bcastPeer struct {
	name        string
	cmd         *exec.Cmd
	out, stderr bytes.Buffer // read only once done
	done        chan struct{}
}

// startBcastPeer starts path with args in testdata/peers. At the end of
// the test, it kills the process if it is still running.
func startBcastPeer(t *testing.T, name, path string, args ...string) *bcastPeer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	p := &bcastPeer{name: name, done: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, path, args...)
	p.cmd.Dir = filepath.Join("testdata", "peers")
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.stderr
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.cmd.Wait()
		cancel()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
			return
		default:
		}
		p.cmd.Process.Kill()
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Errorf("%s (pid %d) did not end within 10 s of being killed", name, p.cmd.Process.Pid)
		}
	})
	return p
}

// finish waits up to 30 s for the peer to exit and returns the lines it
// printed; it fails t if the peer did not exit, or not with 0.
func (p *bcastPeer) finish(t *testing.T) []string {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Errorf("%s did not exit within 30 s of its connections being closed: killing it", p.name)
		p.cmd.Process.Kill()
		<-p.done // the command's context and WaitDelay bound this
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("%s exited with %d: %s", p.name, code, p.stderr.Bytes())
	}
	return strings.Split(strings.TrimSpace(p.out.String()), "\n")
}

// bcastWant is what a peer's connection must have reported.
type bcastWant struct {
	offer   string // Sec-WebSocket-Extensions offered
	applied bool   // the peer prints which extensions it applied ("applied" lines)
	closed  string // the rest of its "closed <id>" line
}

// checkPeerLines checks what peers printed: no failure, and for each
// connection in want, the server's answer to its offer as the server's
// mode requires (wantDeflateAnswer; in the compressed modes the peer
// then uses permessage-deflate), and the close it saw.
func checkPeerLines(t *testing.T, lines []string, mode websocket.CompressionMode, want map[string]bcastWant) {
	t.Helper()
	ext, applied, closed := map[string]string{}, map[string]string{}, map[string]string{}
	for _, line := range lines {
		kind, rest, _ := strings.Cut(line, " ")
		id, value, _ := strings.Cut(rest, " ")
		switch kind {
		case "ext":
			ext[id] = value
		case "applied":
			applied[id] = value
		case "closed":
			closed[id] = value
		case "FAIL":
			t.Error(line)
		case "":
		default:
			t.Errorf("unexpected line %q", line)
		}
	}
	negotiated := 0
	for id, w := range want {
		answer, ok := ext[id]
		if !ok {
			t.Errorf("%s reported no handshake", id)
		} else if expected, err := wantDeflateAnswer(w.offer, mode); err != nil {
			t.Errorf("%s: %v", id, err)
		} else if got := parseExtensionAnswer(answer); !equalExtensionAnswers(got, expected) {
			t.Errorf("%s, Compression %s: offered %q, got the answer %q; want %q", id, compressionName(mode), w.offer, answer, formatExtensionAnswer(expected))
		} else if expected != nil {
			negotiated++
		}
		if w.applied {
			wantApplied := "permessage-deflate"
			if mode == websocket.CompressionOff {
				wantApplied = ""
			}
			if got, ok := applied[id]; !ok || got != wantApplied {
				t.Errorf("%s applied the extensions %q (reported: %v); want %q", id, got, ok, wantApplied)
			}
		}
		if got, ok := closed[id]; !ok || got != w.closed {
			t.Errorf("%s saw the close %q (reported: %v); want %q", id, got, ok, w.closed)
		}
	}
	if mode != websocket.CompressionOff && negotiated != len(want) {
		t.Errorf("only %d of %d connections negotiated permessage-deflate", negotiated, len(want))
	}
}

// requireBcastPeers fails t unless Node's ws and Python's websockets are
// installed, as the other peer tests do.
func requireBcastPeers(t *testing.T) (node string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not found (%v): %s", err, nodeInstall)
	}
	requireNodeWS(t)
	if out, err := exec.Command(debianPython, "-c", "import websockets").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import websockets (%v: %s): install Debian's python3 and python3-websockets (make deps)", debianPython, err, bytes.TrimSpace(out))
	}
	return node
}

// broadcastAndCheck broadcasts every message to conns, one Broadcast
// each, back to back, and checks that each went to every connection
// without error, that every peer reported and echoed each intact, and
// what went down each TCP connection (wire): in the off mode exactly the
// plain frames, compressed well under that.
func broadcastAndCheck(t *testing.T, conns []*bcastConn, prepared []*websocket.PreparedMessage, msgs []bcastMessage, mode websocket.CompressionMode, wire *wireProxy) {
	t.Helper()
	all := make([]*websocket.Conn, len(conns))
	for i, bc := range conns {
		all[i] = bc.conn
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	for i, pm := range prepared {
		sent, err := websocket.Broadcast(ctx, all, pm)
		if sent != len(all) || err != nil {
			t.Fatalf("Broadcast of %s to %d connections: sent %d, %v", msgs[i].name, len(all), sent, err)
		}
	}
	t.Logf("%d broadcasts to %d connections took %v", len(prepared), len(all), time.Since(start).Round(time.Millisecond))

	deadline := time.Now().Add(time.Minute)
	var wg sync.WaitGroup
	for _, bc := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bc.checkEchoes(t, msgs, deadline)
		}()
	}
	wg.Wait()
	t.Logf("every peer reported and echoed every message intact after %v", time.Since(start).Round(time.Millisecond))

	var payload, plain int64
	for _, m := range msgs {
		payload += int64(len(m.data))
		plain += bcastFrameLen(len(m.data))
	}
	for _, bc := range conns {
		st := bc.conn.Stats()
		if st.MessagesSent != uint64(len(msgs)) || st.PayloadBytesSent != uint64(payload) {
			t.Errorf("%s: the server counted %d messages, %d B of payload sent; want %d, %d", bc.name, st.MessagesSent, st.PayloadBytesSent, len(msgs), payload)
		}
		down := bcastDown(t, wire, bc.conn)
		switch {
		case mode == websocket.CompressionOff && down != plain:
			t.Errorf("%s: the broadcasts took %d B on the wire; want exactly their plain frames, %d B", bc.name, down, plain)
		case mode != websocket.CompressionOff && down > plain*3/4:
			t.Errorf("%s: the broadcasts took %d B on the wire, compressed; want under three quarters of their plain frames, %d B", bc.name, down, plain)
		}
		t.Logf("%s: %d B of payload went down in %d B (plain frames: %d B)", bc.name, payload, down, plain)
	}
}

// bcastDown returns the bytes the server sent on c's TCP connection after
// its handshake response, as the wire proxy counted them.
func bcastDown(t *testing.T, wire *wireProxy, c *websocket.Conn) int64 {
	t.Helper()
	wire.mu.Lock()
	wc := wire.byAddr[c.RemoteAddr]
	wire.mu.Unlock()
	if wc == nil {
		t.Fatalf("the wire proxy has no connection from %s", c.RemoteAddr)
	}
	wc.mu.Lock()
	head := bytes.Index(wc.response, []byte("\r\n\r\n"))
	wc.mu.Unlock()
	if head < 0 {
		t.Fatalf("the wire proxy kept no handshake response for %s", c.RemoteAddr)
	}
	return wc.down.Load() - int64(head+4)
}

// closeAll closes every connection with 1000 and checks that each peer
// answered.
func closeAll(t *testing.T, conns []*bcastConn) {
	t.Helper()
	var wg sync.WaitGroup
	for _, bc := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := bc.conn.Close(websocket.StatusOK, "bye"); err != nil {
				t.Errorf("%s: Close: %v", bc.name, err)
			}
		}()
	}
	wg.Wait()
}

// prepareAll prepares every message.
func prepareAll(t *testing.T, msgs []bcastMessage) []*websocket.PreparedMessage {
	t.Helper()
	prepared := make([]*websocket.PreparedMessage, len(msgs))
	for i, m := range msgs {
		pm, err := websocket.NewPreparedMessage(m.tp, m.data)
		if err != nil {
			t.Fatalf("NewPreparedMessage(%s): %v", m.name, err)
		}
		prepared[i] = pm
	}
	return prepared
}

// A Handler in each compression mode (bcastModes) broadcasts, one
// websocket.Broadcast each, the messages of bcastMessages to three
// connections of Node's ws and three of Python's websockets at once,
// through a wire proxy; one connection of each offers a smaller
// server_max_window_bits (10, 12), so that a broadcast goes out
// compressed with three windows. Each Broadcast must report every
// connection sent and no error; each peer must report the length and
// SHA-256 of every message as it got it and echo it, in order, byte for
// byte the same as broadcast. In the compressed modes every connection
// must have negotiated permessage-deflate: the answer on the wire
// (checkHandshakes) and as the peer saw it, and the peer's using it; the
// bytes that went down each connection are exactly the plain frames when
// off, under three quarters of them compressed. Then the server closes
// each connection with 1000, which each peer sees.
// Rows: C1, O1, O3, O4, O10, K4.
func TestPeersReceiveBroadcasts(t *testing.T) {
	t.Parallel()
	node := requireBcastPeers(t)
	msgs := bcastMessages(t)
	prepared := prepareAll(t, msgs) // shared by every mode, as a server would
	for _, mode := range bcastModes {
		t.Run(mode.name, func(t *testing.T) {
			wire := newWireProxy(t)
			hub := newBcastHub(t)
			ts := startServer(t, hub.handler(mode.compression, true))
			wire.start(ts.Addr)
			url := "ws://" + wire.addr() + "/broadcast"
			nodePeer := startBcastPeer(t, "node", node, append([]string{"node_broadcast.mjs", "echo", url}, bcastNodeSpecs...)...)
			pyPeer := startBcastPeer(t, "python", debianPython, append([]string{"python_broadcast.py", "echo", url}, bcastPythonSpecs...)...)
			want := map[string]bcastWant{}
			var names []string
			for prefix, specs := range map[string][]string{"node": bcastNodeSpecs, "python": bcastPythonSpecs} {
				for i, spec := range specs {
					name := prefix + "-" + strconv.Itoa(i)
					names = append(names, name)
					want[name] = bcastWant{offer: bcastOffer(spec), applied: true, closed: "1000"}
				}
			}
			conns := hub.wait(t, names, nodePeer, pyPeer)

			broadcastAndCheck(t, conns, prepared, msgs, mode.compression, wire)
			closeAll(t, conns)
			checkPeerLines(t, append(nodePeer.finish(t), pyPeer.finish(t)...), mode.compression, want)
			wire.checkHandshakes(t, func(string) websocket.CompressionMode { return mode.compression })
		})
	}
}

// Chromium's own WebSocket receiving broadcasts: three tabs, each with a
// page (broadcast.html) that opens two WebSockets to a Handler in each
// compression mode (bcastModes), through a wire proxy. Chromium offers
// "permessage-deflate; client_max_window_bits". As with the other peers
// (TestPeersReceiveBroadcasts), each of the six connections must get
// every broadcast, report its length and SHA-256 (crypto.subtle) and
// echo it intact, in order; in the compressed modes each must have
// negotiated permessage-deflate (the answer on the wire and
// ws.extensions), the bytes that went down being under three quarters
// of the plain frames, exactly those when off; the close with 1000 must
// be clean for the page.
// Rows: C1, O1, O3, O4, O10, K4.
func TestChromiumReceivesBroadcasts(t *testing.T) {
	ctx := browser(t)
	msgs := bcastMessages(t)
	prepared := prepareAll(t, msgs)

	wire := newWireProxy(t)
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close) // after the hubs' cleanups, which close the connections
	hubs := map[string]*bcastHub{}
	modes := map[string]websocket.CompressionMode{}
	for _, mode := range bcastModes {
		hub := newBcastHub(t)
		hubs[mode.name] = hub
		modes["/ws/"+mode.name] = mode.compression
		mux.Handle("/ws/"+mode.name, hub.handler(mode.compression, true))
	}
	mux.Handle("/", servePage("broadcast.html"))
	wire.start(srv.Listener.Addr().String())
	page := "http://" + wire.addr()

	if err := chromedp.Do(ctx); err != nil { // starts the browser, with the first tab
		t.Fatalf("starting Chromium: %v", err)
	}
	const tabs, perTab = 3, 2
	tabCtx := []context.Context{ctx}
	for range tabs - 1 {
		tab, cancel := chromedp.NewContext(ctx)
		t.Cleanup(cancel)
		tabCtx = append(tabCtx, tab)
	}

	for _, mode := range bcastModes {
		t.Run(mode.name, func(t *testing.T) {
			hub := hubs[mode.name]
			var names []string
			want := map[string]bcastWant{}
			for i, tab := range tabCtx {
				url := fmt.Sprintf("%s/?mode=%s&tab=%d&n=%d", page, mode.name, i, perTab)
				if err := chromedp.Do(tab, chromedp.Navigate(url)); err != nil {
					t.Fatalf("opening %s in Chromium: %v", url, err)
				}
				for j := range perTab {
					name := fmt.Sprintf("chromium-%d-%d", i, j)
					names = append(names, name)
					want[name] = bcastWant{offer: bcastOffer("default"), closed: "1000 clean=true"}
				}
			}
			conns := hub.wait(t, names)

			broadcastAndCheck(t, conns, prepared, msgs, mode.compression, wire)
			closeAll(t, conns)
			var lines []string
			for i, tab := range tabCtx {
				_, err := chromedp.Run(tab, chromedp.Poll[bool]("window.done === true", chromedp.WithPollingTimeout(30*time.Second)))
				results, rerr := chromedp.Run(tab, chromedp.Evaluate[[]string]("window.results"))
				if err != nil || rerr != nil {
					t.Fatalf("tab %d: %v, %v (results so far: %q)", i, err, rerr, results)
				}
				lines = append(lines, results...)
			}
			checkPeerLines(t, lines, mode.compression, want)
		})
	}
	wire.checkHandshakes(t, func(path string) websocket.CompressionMode {
		mode, ok := modes[path]
		if !ok {
			t.Errorf("a WebSocket handshake for %s", path)
		}
		return mode
	})
}

// Node's ws and Python's websockets clients that stay connected and send
// nothing, two of each, both answering pings on their own: on every
// connection at once, the server calls Ping three times one after the
// other, then twice concurrently. Each must return a positive round-trip
// time (under the 10 s its context allows) and no error; afterwards the
// connection's Stats count five pings sent and five pongs received, and
// its RoundTrip is one of the times the Pings returned. Once with no
// receive call (the background reader reads the pongs), once with a
// receive loop (the receive call reads them). Then the server closes
// each connection with 1000, which each peer sees.
// Rows: C1, O17, O2, O10, K4.
func TestPeersAnswerPing(t *testing.T) {
	t.Parallel()
	node := requireBcastPeers(t)
	for _, tc := range []struct {
		name    string
		receive bool
	}{
		{"background reader", false},
		{"receive loop", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hub := newBcastHub(t)
			ts := startServer(t, hub.handler(websocket.CompressionOff, tc.receive))
			url := "ws://" + ts.Addr + "/ping"
			nodePeer := startBcastPeer(t, "node", node, "node_broadcast.mjs", "quiet", url, "default", "default")
			pyPeer := startBcastPeer(t, "python", debianPython, "python_broadcast.py", "quiet", url, "default", "default")
			names := []string{"node-0", "node-1", "python-0", "python-1"}
			want := map[string]bcastWant{}
			for _, name := range names {
				want[name] = bcastWant{offer: bcastOffer("default"), applied: true, closed: "1000"}
			}
			conns := hub.wait(t, names, nodePeer, pyPeer)

			var wg sync.WaitGroup
			for _, bc := range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					pingPeer(t, bc)
				}()
			}
			wg.Wait()

			closeAll(t, conns)
			checkPeerLines(t, append(nodePeer.finish(t), pyPeer.finish(t)...), websocket.CompressionOff, want)
		})
	}
}

// pingPeer pings a peer three times in a row, then twice at once, and
// checks the round-trip times and the connection's Stats.
func pingPeer(t *testing.T, bc *bcastConn) {
	ping := func() (time.Duration, bool) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rtt, err := bc.conn.Ping(ctx)
		if err != nil || rtt <= 0 || rtt >= 10*time.Second {
			t.Errorf("%s: Ping: %v, %v; want a positive round trip", bc.name, rtt, err)
			return rtt, false
		}
		return rtt, true
	}
	var rtts []time.Duration
	for range 3 {
		rtt, ok := ping()
		if !ok {
			return
		}
		rtts = append(rtts, rtt)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	failed := false
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rtt, ok := ping()
			mu.Lock()
			rtts = append(rtts, rtt)
			failed = failed || !ok
			mu.Unlock()
		}()
	}
	wg.Wait()
	if failed {
		return
	}
	st := bc.conn.Stats()
	if st.RoundTrip <= 0 || !slices.Contains(rtts[3:], st.RoundTrip) {
		t.Errorf("%s: Stats().RoundTrip = %v; want the last Ping's, one of the concurrent ones: %v", bc.name, st.RoundTrip, rtts[3:])
	}
	if st.PingsSent != 5 || st.PongsReceived != 5 {
		t.Errorf("%s: Stats counted %d pings sent, %d pongs received; want 5 and 5", bc.name, st.PingsSent, st.PongsReceived)
	}
	t.Logf("%s: round trips %v; RoundTrip %v", bc.name, rtts, st.RoundTrip)
}
