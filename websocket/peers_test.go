package websocket_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsmachine/wsmachine/websocket"
)

// Interop with clients nobody here wrote. Each peer is a script in
// testdata/peers that connects to peerEchoHandler and prints one line per
// check, "ok <check>" or "FAIL <check>: <why>". A missing peer is a
// failure with the command that installs it, never a skip: `make deps`
// installs them all.

// peerProtocol is the subprotocol the peers offer among others.
const peerProtocol = "chat.wsmachine"

// peerEchoHandler echoes every message. A text message "close <code>
// <reason>" makes it close with that code and reason.
var peerEchoHandler = &websocket.Handler{
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
		for {
			tp, r, err := c.ReceiveMessage()
			if err != nil {
				return
			}
			if tp == websocket.Text {
				var head [6]byte
				n, _ := io.ReadFull(r, head[:])
				if string(head[:n]) == "close " {
					rest, _ := io.ReadAll(r)
					code, reason, _ := strings.Cut(string(rest), " ")
					status, _ := strconv.Atoi(code)
					c.Close(websocket.Status(status), reason)
					return
				}
				r = io.MultiReader(bytes.NewReader(head[:n]), r)
			}
			w, err := c.SendMessage(tp)
			if err != nil {
				return
			}
			io.Copy(w, r)
			if w.Close() != nil {
				return
			}
		}
	},
}

// runPeer runs a peer's command against the echo server and reports
// every check it prints.
func runPeer(t *testing.T, install string, name string, args ...string) {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found (%v): %s", name, err, install)
	}
	ts := startServer(t, peerEchoHandler)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, append(args, "ws"+strings.TrimPrefix(ts.URL, "http")+"/echo")...)
	cmd.Dir = filepath.Join("testdata", "peers")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, _ := cmd.Output()
	checks := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "ok "):
			checks++
			t.Log(line)
		case strings.HasPrefix(line, "FAIL "):
			checks++
			t.Error(line)
		}
	}
	if checks == 0 || cmd.ProcessState == nil || !cmd.ProcessState.Exited() {
		t.Fatalf("%s ran no check (%v): %s%s", name, cmd.ProcessState, out, stderr.Bytes())
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 && !t.Failed() {
		t.Errorf("%s exited with %d: %s", name, code, stderr.Bytes())
	}
}

// Node.js's ws package (testdata/peers/package-lock.json).
func TestPeerNodeWS(t *testing.T) {
	t.Parallel()
	const install = "install Node.js, then `npm ci` in websocket/testdata/peers (make deps)"
	if _, err := os.Stat(filepath.Join("testdata", "peers", "node_modules", "ws")); err != nil {
		t.Fatalf("the ws package is not installed: %s", install)
	}
	runPeer(t, install, "node", "node_client.mjs")
}

// Python's websockets (Debian's python3-websockets, run with Debian's
// python3).
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
