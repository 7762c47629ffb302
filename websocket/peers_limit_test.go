package websocket_test

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsmachine/wsmachine/websocket"
)

// peerLimitChecks is how many checks each peer runs in its limit mode
// (python_client.py and node_client.mjs with "limit", browser.html with
// checks=limit): a random binary message of 16 MiB − 1 KiB and one of
// 16 MiB echoed, a repetitive one of 16 MiB echoed, and a random and a
// repetitive one of 16 MiB + 1 refused with 1009. 16 MiB is the default
// MaxMessageSize, which peerHandler leaves as it is.
const peerLimitChecks = 5

// peerLimitModes are the servers the limit checks run against: both
// modes that negotiate permessage-deflate, since the limit must not
// depend on whether either side keeps its context.
var peerLimitModes = []struct {
	name        string
	compression websocket.CompressionMode
}{
	{"no-context-takeover", websocket.CompressionNoContextTakeover},
	{"context-takeover", websocket.CompressionContextTakeover},
}

// Compressed messages at the server's default MaxMessageSize (16 MiB),
// from Python's websockets, Node's ws and Chromium, each compressing
// every message: the limit is the size of the message the application
// receives, whatever its frames add up to on the wire. Random bytes
// deflate to more than they are (stored blocks, 5 bytes of header each;
// websockets' zlib at memLevel 5 makes them about 2 KiB long, so its
// 16 MiB are some 40 KiB more on the wire), and a random message of
// 16 MiB − 1 KiB or of exactly 16 MiB must still be delivered: the peer
// compares the echo's SHA-256. So must a repetitive one of 16 MiB, which
// is far shorter on the wire. One byte more, random or repetitive, and
// the peer sees the server close with 1009: the repetitive one only once
// it has inflated past the limit, its frames being some 64 KiB. Every
// check on a connection of its own, through a wire proxy that logs what
// each took on the wire. About 40 s for the three peers, most of it
// Chromium's.
//
// Rows: O1, O7; STATE_MACHINE.md, "Frame checks": "compressed message:
// inflating goes past MaxMessageSize bytes"; "Compressed messages":
// "MaxMessageSize applies to what comes out".
func TestPeersCompressedMessagesAtTheLimit(t *testing.T) {
	peers := []struct {
		name string
		// start checks that the peer is installed and returns what runs
		// its limit checks against the echo server at addr (the wire
		// proxy's), whose path /ws/<mode> is in mode, and returns the
		// lines they printed.
		start func(t *testing.T) func(t *testing.T, addr, mode string) []string
	}{
		{"python-websockets", func(t *testing.T) func(t *testing.T, addr, mode string) []string {
			const install = "install Debian's python3 and python3-websockets (make deps)"
			if out, err := exec.Command(debianPython, "-c", "import websockets").CombinedOutput(); err != nil {
				t.Fatalf("%s cannot import websockets (%v: %s): %s", debianPython, err, bytes.TrimSpace(out), install)
			}
			return func(t *testing.T, addr, mode string) []string {
				return runPeerScript(t, debianPython, "python_client.py", mode, "ws://"+addr+"/ws/"+mode, "limit")
			}
		}},
		{"node-ws", func(t *testing.T) func(t *testing.T, addr, mode string) []string {
			const install = nodeInstall
			path, err := exec.LookPath("node")
			if err != nil {
				t.Fatalf("node not found (%v): %s", err, install)
			}
			requireNodeWS(t)
			return func(t *testing.T, addr, mode string) []string {
				return runPeerScript(t, path, "node_client.mjs", mode, "ws://"+addr+"/ws/"+mode, "limit")
			}
		}},
		{"chromium", func(t *testing.T) func(t *testing.T, addr, mode string) []string {
			ctx := browser(t) // one for both modes
			return func(t *testing.T, addr, mode string) []string {
				// Room for the limit checks, which take a while in the browser (16 MiB
				// messages of random bytes, five of them, each made, hashed and
				// compressed there).
				return pageResultsWithin(t, ctx, "http://"+addr+"/?mode="+mode+"&checks=limit", 3*time.Minute)
			}
		}},
	}
	for _, peer := range peers {
		t.Run(peer.name, func(t *testing.T) {
			run := peer.start(t)
			wire := newWireProxy(t)
			mux := http.NewServeMux()
			modes := map[string]websocket.CompressionMode{}
			for _, mode := range peerLimitModes {
				mux.Handle("/ws/"+mode.name, peerHandler(mode.compression, wire))
				modes["/ws/"+mode.name] = mode.compression
			}
			mux.Handle("/", servePage("browser.html"))
			srv := httptest.NewServer(mux) // on 127.0.0.1
			defer srv.Close()
			wire.start(srv.Listener.Addr().String())
			for _, mode := range peerLimitModes {
				t.Run(mode.name, func(t *testing.T) {
					start := time.Now()
					seen := len(wire.connections())
					lines := run(t, wire.addr(), mode.name)
					if checks := parsePeerLines(t, lines, &peerRun{wire: map[string]wireFigure{}}); checks != peerLimitChecks {
						t.Errorf("%s ran %d checks, want %d: %q", peer.name, checks, peerLimitChecks, lines)
					}
					t.Logf("%s ran in %v", peer.name, time.Since(start).Round(time.Millisecond))
					logLimitWire(t, lines, wire.connections()[seen:])
				})
			}
			wire.checkHandshakes(t, func(path string) websocket.CompressionMode {
				mode, ok := modes[path]
				if !ok {
					t.Errorf("a WebSocket handshake for %s", path)
				}
				return mode
			})
		})
	}
}

// logLimitWire logs what each limit check took on the wire: the bytes of
// its connection, handshake and close included, which show how much
// longer than the message its frames were. The peers run their checks one
// after the other, a connection each, in the order they print them.
func logLimitWire(t *testing.T, lines []string, conns []*wireConn) {
	t.Helper()
	var checks []string
	for _, line := range lines {
		if strings.HasPrefix(line, "ok ") || strings.HasPrefix(line, "FAIL") {
			checks = append(checks, line)
		}
	}
	i := 0
	for _, wc := range conns {
		if wc.upgradePath() == "" {
			continue // the page
		}
		check := "(no check)"
		if i < len(checks) {
			check = checks[i]
		}
		i++
		t.Logf("%d B up, %d B down: %s", wc.up.Load(), wc.down.Load(), check)
	}
}

// runPeerScript runs a peer script of testdata/peers with path (the
// interpreter) and args, for at most 2 minutes, and returns the lines it
// printed; it fails the test if the script ended otherwise than by
// exiting, or with a code it printed no failure for.
func runPeerScript(t *testing.T, path string, args ...string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = filepath.Join("testdata", "peers")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, _ := cmd.Output()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if cmd.ProcessState == nil || !cmd.ProcessState.Exited() {
		t.Fatalf("%s %s did not run to its end (%v): %s%s", path, args[0], cmd.ProcessState, out, stderr.Bytes())
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 && !bytes.Contains(out, []byte("FAIL")) {
		t.Errorf("%s %s exited with %d: %s", path, args[0], code, stderr.Bytes())
	}
	return lines
}

// connections returns the connections proxied so far, in the order they
// were accepted.
func (p *wireProxy) connections() []*wireConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*wireConn(nil), p.conns...)
}

// upgradePath is the path of the connection's WebSocket handshake, or ""
// if it is no WebSocket connection (the browser's page).
func (wc *wireConn) upgradePath() string {
	wc.mu.Lock()
	head := bytes.Clone(wc.request)
	wc.mu.Unlock()
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
	if err != nil || !strings.EqualFold(req.Header.Get("Upgrade"), "websocket") {
		return ""
	}
	return req.URL.Path
}
