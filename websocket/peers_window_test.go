package websocket_test

import (
	"fmt"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/wsmachine/wsmachine/websocket"
)

// peerWindowChecks is how many checks each peer runs in its window mode
// (python_client.py and node_client.mjs with "window SERVER_BITS
// CLIENT_BITS"): the handshake, four measured echoes and the close.
const peerWindowChecks = 6

// peerWindowLabels are the measurements the peers make in their window
// mode, on one connection, in this order.
var peerWindowLabels = []string{"json-1KiB", "text-100KiB", "random-1MiB", "events"}

// Windows smaller than 32 KiB with clients nobody here wrote: Python's
// websockets offering server_max_window_bits and client_max_window_bits
// through ClientPerMessageDeflateFactory, Node's ws through
// perMessageDeflate's serverMaxWindowBits and clientMaxWindowBits, each
// against a server in both modes that negotiate permessage-deflate,
// through a wire proxy. The server's answer, as it was on the wire, must
// carry server_max_window_bits=N and client_max_window_bits=N as offered
// (checkHandshakes), and the peer must have applied both: its own zlib
// then inflates what the server sends with a window of 2^N bytes only,
// and any back-reference of the server's further than that would not
// inflate (the peer closes the connection).
// On one connection, one after the other, 1 KiB of JSON, 100 KiB of text
// that repeats every 4 KiB, 1 MiB of random bytes and 64 similar JSON
// events must echo intact, and the byte counts show them compressed
// both ways: the JSON to well under its size; the text by far less than
// a 32 KiB window would shrink it (to some 3 KiB), its repeats being out
// of reach of either window (see checkWindowWire); the random bytes to
// about their size; the events, where both
// windows hold a whole event (10 bits), to less than half with context
// takeover of what they cost without.
//
// 8 bits: the server answers 8 as 8 and compresses with a 256-byte
// window. Node's ws offers and applies client_max_window_bits=8, and
// Node's zlib compresses with 9 bits then (zlib refuses raw deflate with
// 8; Node raises it to 9 on its own), which keeps to 256 bytes anyway:
// zlib's deflate reaches back at most its window less 262 bytes.
// Python's zlib refuses a 256-byte raw window outright, so websockets,
// which accepts client_max_window_bits=8 and the answer, then fails to
// compress (ValueError: Invalid initialization option): at the handshake
// with context takeover, at each message without. It runs with 8 bits
// for the server's window and 9 for its own. With 8 bits, the events
// gain little from context takeover (a window holds half an event): that
// is only logged. About 5 s.
//
// Rows: STATE_MACHINE.md, "Compressed messages": "acceptable, with
// server_max_window_bits=N (8–15)"; "acceptable, with
// client_max_window_bits=N, N below 15".
func TestPeersWindowBits(t *testing.T) {
	t.Parallel()
	type bits struct{ server, client int }
	peers := []struct {
		name string
		// start checks that the peer is installed and returns its
		// interpreter and script.
		start func(t *testing.T) (path, script string)
		bits  []bits
	}{
		{"python-websockets", func(t *testing.T) (string, string) {
			const install = "install Debian's python3 and python3-websockets (make deps)"
			if out, err := exec.Command(debianPython, "-c", "import websockets").CombinedOutput(); err != nil {
				t.Fatalf("%s cannot import websockets (%v: %s): %s", debianPython, err, out, install)
			}
			return debianPython, "python_client.py"
		}, []bits{{10, 10}, {8, 9}}},
		{"node-ws", func(t *testing.T) (string, string) {
			const install = nodeInstall
			path, err := exec.LookPath("node")
			if err != nil {
				t.Fatalf("node not found (%v): %s", err, install)
			}
			requireNodeWS(t)
			return path, "node_client.mjs"
		}, []bits{{10, 10}, {8, 8}}},
	}
	for _, peer := range peers {
		t.Run(peer.name, func(t *testing.T) {
			path, script := peer.start(t)
			for _, b := range peer.bits {
				t.Run(fmt.Sprintf("server%d-client%d", b.server, b.client), func(t *testing.T) {
					runs := map[string]*peerRun{}
					for _, mode := range peerLimitModes {
						t.Run(mode.name, func(t *testing.T) {
							wire := newWireProxy(t)
							ts := startServer(t, peerHandler(mode.compression, wire))
							wire.start(ts.Addr)
							start := time.Now()
							lines := runPeerScript(t, path, script, mode.name, "ws://"+wire.addr()+"/echo",
								"window", strconv.Itoa(b.server), strconv.Itoa(b.client))
							run := &peerRun{wire: map[string]wireFigure{}}
							if checks := parsePeerLines(t, lines, run); checks != peerWindowChecks {
								t.Errorf("%s ran %d checks, want %d: %q", peer.name, checks, peerWindowChecks, lines)
							}
							t.Logf("%s ran in %v", peer.name, time.Since(start).Round(time.Millisecond))
							wire.checkHandshakes(t, func(string) websocket.CompressionMode { return mode.compression })
							checkWindowWire(t, b.server, b.client, run)
							runs[mode.name] = run
						})
					}
					checkWindowTakeover(t, b.server, b.client, runs)
				})
			}
		})
	}
}

// checkWindowWire judges a window run's measurements, serverBits and
// clientBits being the windows negotiated. Every message is compressed
// (the peers compress every message, the server every one of at least
// 512 bytes). The JSON to under three quarters of its size both ways,
// and so the events; the random bytes to their size and at most 1/32
// more (stored blocks). The text that repeats every 4 KiB to at most its
// size and 1/32 more, but where the sender's window is below 4 KiB to
// more than a quarter of it: a compressor that reached back 4 KiB would
// send little more than the first block (some 3 KiB), and the receiver's
// inflater could not follow it. Within the window the text has no
// repeats to speak of, only its letters' entropy: the peers' zlib
// Huffman-codes it to some 60%, the server's compressor (klauspost's,
// which also does so at 32 KiB with level 1) sends it as stored blocks.
func checkWindowWire(t *testing.T, serverBits, clientBits int, run *peerRun) {
	t.Helper()
	for _, label := range peerWindowLabels {
		f, ok := run.wire[label]
		if !ok {
			t.Errorf("no measurement %s", label)
			continue
		}
		for _, way := range []struct {
			name  string
			n     int64
			bits  int
			whose string
		}{{"up", f.up, clientBits, "client"}, {"down", f.down, serverBits, "server"}} {
			switch label {
			case "random-1MiB":
				if way.n < f.raw || way.n > f.raw+f.raw/32 {
					t.Errorf("%s: %d B of random bytes took %d B %s: want their size and at most 1/32 more", label, f.raw, way.n, way.name)
				}
			case "text-100KiB":
				if way.n > f.raw+f.raw/32 {
					t.Errorf("%s: %d B of text took %d B %s: want at most its size and 1/32 more", label, f.raw, way.n, way.name)
				}
				if 1<<way.bits < 4096 && way.n < f.raw/4 {
					t.Errorf("%s: %d B of text repeating every 4 KiB took %d B %s, where the %s's window is %d B: its repeats were reached",
						label, f.raw, way.n, way.name, way.whose, 1<<way.bits)
				}
			default:
				if way.n > f.raw*3/4 {
					t.Errorf("%s: %d B took %d B %s: want under three quarters", label, f.raw, way.n, way.name)
				}
			}
		}
	}
}

// checkWindowTakeover compares the events of the two runs of a window
// size, context takeover against none: in each direction where the
// sender's window holds a whole event (535 bytes, so from 10 bits on),
// they cost less than half with context takeover. Below that it only
// logs what they cost.
func checkWindowTakeover(t *testing.T, serverBits, clientBits int, runs map[string]*peerRun) {
	t.Helper()
	with, ok1 := runs["context-takeover"]
	without, ok2 := runs["no-context-takeover"]
	if !ok1 || !ok2 {
		return
	}
	a, ok1 := with.wire["events"]
	b, ok2 := without.wire["events"]
	if !ok1 || !ok2 {
		return
	}
	for _, way := range []struct {
		name          string
		with, without int64
		bits          int
	}{{"client to server", a.up, b.up, clientBits}, {"server to client", a.down, b.down, serverBits}} {
		t.Logf("%s, a window of %d B: the events took %d B with context takeover, %d B without (%.0f%%)",
			way.name, 1<<way.bits, way.with, way.without, 100*float64(way.with)/float64(way.without))
		if 1<<way.bits >= 1024 && way.with*2 > way.without {
			t.Errorf("%s, a window of %d B: the events took %d B with context takeover, %d B without: want less than half",
				way.name, 1<<way.bits, way.with, way.without)
		}
	}
}
