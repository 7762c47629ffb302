package websocket_test

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsmachine/wsmachine/websocket"
)

// shutdownConns is how many connections the Shutdown tests open; make
// shutdown-figures raises it.
var shutdownConns = flag.Int("shutdown.conns", 200, "connections of the Shutdown tests (a tenth of them silent in TestShutdownDropsClientsThatDoNotAnswer)")

// shutdownServer serves h on loopback until the end of the test; the
// connections Handle gets are sent on the returned channel.
func shutdownServer(t *testing.T, h *websocket.Handler, handle func(*websocket.Conn)) (string, <-chan *websocket.Conn) {
	t.Helper()
	conns := make(chan *websocket.Conn, 1024)
	h.Handle = func(c *websocket.Conn) {
		conns <- c
		if handle != nil {
			handle(c)
		}
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http"), conns
}

// The Shutdown tests' clients run in a child process (the test binary
// again, with shutdownClientsEnv set: see TestMain), so that ten thousand
// connections fit the limit on open files of one process with both ends.
const shutdownClientsEnv = "WSMACHINE_SHUTDOWN_CLIENTS"

// clientsElsewhere starts answering clients that receive until the
// server closes, and silent ones that complete the handshake and then
// neither read nor answer, in a child process. It returns once all are
// connected; wait returns the child's verdict once every answering
// client has seen the server's 1001 and answered it (the silent ones are
// let go then).
func clientsElsewhere(t *testing.T, url string, answering, silent int) (wait func() error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d %d", shutdownClientsEnv, url, answering, silent))
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if line != "ready\n" {
		t.Fatalf("the client process: %q %v", line, err)
	}
	return func() error {
		stdin.Close()
		return cmd.Wait()
	}
}

// shutdownClients is the child's side of clientsElsewhere: spec is "url
// answering silent". It returns the exit code: 1 if a client failed or an
// answering client did not end with the server's 1001.
func shutdownClients(spec string) int {
	var url string
	var answering, silent int
	fmt.Sscan(spec, &url, &answering, &silent)
	ends := make(chan error, answering)
	for range answering {
		c, _, err := websocket.Dial(context.Background(), url, nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, "dial:", err)
			return 1
		}
		go func() {
			for {
				if _, _, err := c.ReceiveMessage(); err != nil {
					if code, _ := c.GetStatus(); !errors.Is(err, websocket.ErrConnClosed) || code != websocket.StatusGoingAway {
						err = fmt.Errorf("receive returned %v and the server's close was %d, want ErrConnClosed after 1001", err, code)
					} else {
						err = nil
					}
					ends <- err
					return
				}
			}
		}()
	}
	var conns []net.Conn
	for range silent {
		nc, err := net.Dial("tcp", strings.TrimPrefix(url, "ws://"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "dial:", err)
			return 1
		}
		io.WriteString(nc, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
		if resp, err := http.ReadResponse(bufio.NewReader(nc), nil); err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			fmt.Fprintln(os.Stderr, "silent handshake:", err)
			return 1
		}
		conns = append(conns, nc) // never read again
	}
	fmt.Println("ready")
	code := 0
	for range answering {
		if err := <-ends; err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	io.Copy(io.Discard, os.Stdin) // the parent is done with the silent ones
	for _, nc := range conns {
		nc.Close()
	}
	return code
}

// expectRefused checks that a handshake to url is refused with 503, a
// Retry-After and the reason.
func expectRefused(t *testing.T, url, reason string) {
	t.Helper()
	_, resp, err := websocket.Dial(context.Background(), url, nil)
	var he *websocket.HandshakeError
	if !errors.As(err, &he) || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("handshake: %v (response %v), want 503", err, resp)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), reason) {
		t.Errorf("503 with Retry-After %q and body %q, want a Retry-After and %q", resp.Header.Get("Retry-After"), body, reason)
	}
}

// Shutdown closes every open connection with 1001; clients that answer
// end cleanly, Shutdown returns nil once all have ended, and handshakes
// from then on get 503.
// Rows: O10, K4.
func TestShutdownClosesEveryConnectionWithGoingAway(t *testing.T) {
	n := *shutdownConns
	h := &websocket.Handler{}
	url, served := shutdownServer(t, h, nil)
	clientsDone := clientsElsewhere(t, url, n, 0)
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		conns[i] = <-served
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	if err := h.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	t.Logf("%d connections, all answering, shut down in %v", n, time.Since(start).Round(time.Millisecond))
	for i, c := range conns {
		if code, _ := c.GetStatus(); code != websocket.StatusGoingAway {
			t.Errorf("connection %d: the client answered with %d, want 1001 echoed", i, code)
		}
	}
	if err := clientsDone(); err != nil {
		t.Errorf("the clients: %v", err)
	}
	expectRefused(t, url, "shutting down")
	if err := h.Shutdown(ctx); err != nil {
		t.Errorf("a second Shutdown: %v", err)
	}
}

// Clients that never answer (a tenth) are dropped when Shutdown's context
// ends: Shutdown returns its error, their connections report
// StatusDropped, and the clients that answered still got a clean close.
// Rows: K15, O10, K4.
func TestShutdownDropsClientsThatDoNotAnswer(t *testing.T) {
	silent := max(*shutdownConns/10, 1)
	answering := *shutdownConns - silent
	h := &websocket.Handler{CloseTimeout: time.Minute}
	url, served := shutdownServer(t, h, nil)
	clientsDone := clientsElsewhere(t, url, answering, silent)
	conns := make([]*websocket.Conn, answering+silent)
	for i := range conns {
		conns[i] = <-served
	}

	// Long enough for every answering client to answer (about 60 µs a
	// connection here), short of the close timeout.
	deadline := max(500*time.Millisecond, time.Duration(*shutdownConns)*200*time.Microsecond)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	if err := h.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want the context's error", err)
	}
	t.Logf("%d connections, %d of them silent, shut down in %v (context: %v)", answering+silent, silent, time.Since(start).Round(time.Millisecond), deadline)
	var goingAway, dropped int
	for _, c := range conns {
		switch code, _ := c.GetStatus(); code {
		case websocket.StatusGoingAway:
			goingAway++
		case websocket.StatusDropped:
			dropped++
		}
	}
	if goingAway != answering || dropped != silent {
		t.Errorf("%d closed with 1001 and %d dropped, want %d and %d", goingAway, dropped, answering, silent)
	}
	if err := clientsDone(); err != nil {
		t.Errorf("the clients: %v", err)
	}
}

// dialRetrying dials until a place is free, for at most 5 s.
func dialRetrying(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		c, _, err := websocket.Dial(context.Background(), url, nil)
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("no place within 5 s: %v", err)
		}
	}
}

// dialSilent does the opening handshake over raw TCP and then neither
// reads nor answers.
func dialSilent(t *testing.T, url string) *rawClient {
	t.Helper()
	return dialWSPath(t, strings.TrimPrefix(url, "ws://"), "/")
}

// A message being streamed when Shutdown starts is not cut silently: the
// writer's next call fails with an error wrapping ErrConnClosed, and the
// client's reader of that message gets an error, not a short message.
// Rows: O10, K9, K4.
func TestShutdownDuringStreamedMessage(t *testing.T) {
	h := &websocket.Handler{}
	writing := make(chan struct{})
	writerErr := make(chan error, 1)
	url, _ := shutdownServer(t, h, func(c *websocket.Conn) {
		w, err := c.SendMessage(websocket.Binary)
		if err != nil {
			writerErr <- err
			return
		}
		chunk := make([]byte, 64<<10)
		if _, err := w.Write(chunk); err != nil { // a first frame leaves
			writerErr <- err
			return
		}
		close(writing)
		for {
			if _, err = w.Write(chunk); err != nil {
				break
			}
			time.Sleep(time.Millisecond)
		}
		writerErr <- err
	})
	client, _, err := websocket.Dial(context.Background(), url, &websocket.DialOptions{MaxMessageSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	tp, r, err := client.ReceiveMessage()
	if err != nil || tp != websocket.Binary {
		t.Fatalf("ReceiveMessage: %v %v", tp, err)
	}
	<-writing
	readErr := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, r); readErr <- err }()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-writerErr; !errors.Is(err, websocket.ErrConnClosed) {
		t.Errorf("the writer's call returned %v, want an error wrapping ErrConnClosed", err)
	}
	if err := <-readErr; err == nil {
		t.Errorf("the client read the message cut by the shutdown as if whole")
	}
	if code, _ := client.GetStatus(); code != websocket.StatusGoingAway {
		t.Errorf("the client saw close %d, want 1001", code)
	}
}

// MaxConnections holds under a burst of twice the limit, and a place is
// given back once a connection ends, whether it closed cleanly, the
// client dropped TCP, or the client broke the protocol.
// Rows: C2, O6, O7, O8.
func TestMaxConnectionsHoldsAndReleases(t *testing.T) {
	const limit = 8
	h := &websocket.Handler{MaxConnections: limit}
	url, served := shutdownServer(t, h, func(c *websocket.Conn) {
		for {
			if _, _, err := c.ReceiveMessage(); err != nil {
				return
			}
		}
	})

	var mu sync.Mutex
	var clients []*websocket.Conn
	refused := 0
	var wg sync.WaitGroup
	for range 2 * limit {
		wg.Go(func() {
			c, resp, err := websocket.Dial(context.Background(), url, nil)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				clients = append(clients, c)
			case resp != nil && resp.StatusCode == http.StatusServiceUnavailable:
				refused++
			default:
				t.Errorf("dial: %v", err)
			}
		})
	}
	wg.Wait()
	if len(clients) != limit || refused != limit {
		t.Fatalf("a burst of %d: %d accepted, %d refused with 503; want %d and %d", 2*limit, len(clients), refused, limit, limit)
	}
	var servers []*websocket.Conn
	for range limit {
		servers = append(servers, <-served)
	}
	expectRefused(t, url, "too many connections")

	// Every way of ending gives its place back, once. The clean closes
	// first (the server's O6), then the limit is filled again with two
	// raw clients among the others: one drops TCP (O8), one breaks the
	// protocol (O7), and each time exactly one new client gets in.
	for _, c := range clients {
		c.Close(websocket.StatusOK, "")
	}
	for _, c := range servers {
		c.GetStatus() // it has ended, and given its place back
	}
	clients = clients[:0]
	for range limit - 2 {
		clients = append(clients, dialRetrying(t, url))
		<-served
	}
	dropper, breaker := dialSilent(t, url), dialSilent(t, url)
	<-served
	<-served
	expectRefused(t, url, "too many connections")
	for _, end := range []func(){
		dropper.Close, // O8
		func() { breaker.Write([]byte{0x82, 0x01, 'x'}) }, // an unmasked frame: O7
	} {
		end()
		clients = append(clients, dialRetrying(t, url))
		<-served
		expectRefused(t, url, "too many connections")
	}
	for _, c := range clients {
		c.Close(websocket.StatusOK, "")
	}
}
