package websocket

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsmachine/wsmachine/websocket/internal/core"
)

// Over a net.Conn that is not a socket (TLS, net.Pipe), writes go through
// net.Conn and its deadlines: the write timeout must still cut off a
// client that stopped reading, and spare one that reads slowly.

// pipeConn returns an open Conn over net.Pipe with the write timeout, and
// the client's end.
func pipeConn(t *testing.T, writeTimeout time.Duration) (*Conn, net.Conn) {
	t.Helper()
	server, client := net.Pipe()
	c := newConn()
	c.writeTimeout = writeTimeout
	c.attach(server, bufio.NewReader(server))
	c.open()
	t.Cleanup(func() {
		client.Close()
		c.GetStatus()
	})
	return c, client
}

// Rows: O9.
func TestWriteTimeoutOverNetConn(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	c, client := pipeConn(t, timeout)
	// A write that went through leaves its deadline behind, due a little
	// after the stalled write starts: that one must still get a whole
	// timeout.
	go client.Read(make([]byte, 64))
	if err := c.SendBinary([]byte("read")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(timeout * 2 / 5)
	start := time.Now()
	err := c.SendBinary(make([]byte, 1<<20))
	elapsed := time.Since(start)
	if !errors.Is(err, ErrConnClosed) {
		t.Fatalf("send to a client that never reads returned %v, want an error wrapping ErrConnClosed", err)
	}
	if elapsed < timeout || elapsed > 10*timeout {
		t.Errorf("the stalled send failed after %v, want the write timeout (%v)", elapsed, timeout)
	}
}

// Rows: O3.
func TestWriteTimeoutOverNetConnSparesSlowReader(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	c, client := pipeConn(t, timeout)
	go func() {
		buf := make([]byte, 4<<10)
		for {
			time.Sleep(timeout / 4)
			if _, err := client.Read(buf); err != nil {
				return
			}
		}
	}()
	// 64 KiB in 4 KiB reads a quarter of the timeout apart: four times
	// as long as the timeout, with progress all along.
	if err := c.SendBinary(make([]byte, 64<<10)); err != nil {
		t.Errorf("send to a slow but steady reader returned %v", err)
	}
}

// countingConn is a listener's wrapper around a TCP connection: it has
// SyscallConn, promoted, but reads and writes of its own.
type countingConn struct {
	*net.TCPConn
	read, written *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.TCPConn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

func (c countingConn) Write(p []byte) (int, error) {
	n, err := c.TCPConn.Write(p)
	c.written.Add(int64(n))
	return n, err
}

type countingListener struct {
	net.Listener
	read, written atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{nc.(*net.TCPConn), &l.read, &l.written}, nil
}

// A wrapped connection is read and written through its wrapper, even if
// it exposes the socket's SyscallConn.
// Rows: O1, O3.
func TestWrappedConnGoesThroughWrapper(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: ln}
	srv := &http.Server{Handler: &Handler{Handle: echoHandler}}
	go srv.Serve(cl)
	defer srv.Close()
	nc, br := dialUpgraded(t, ln.Addr().String())
	before := cl.read.Load()
	nc.Write(maskedFrame(true, core.OpBinary, "through the wrapper"))
	echo := make([]byte, 2+len("through the wrapper"))
	if _, err := io.ReadFull(br, echo); err != nil || string(echo[2:]) != "through the wrapper" {
		t.Fatalf("echo %q, %v", echo, err)
	}
	if read := cl.read.Load() - before; read != int64(len(maskedFrame(true, core.OpBinary, "through the wrapper"))) {
		t.Errorf("the wrapper's Read saw %d bytes of the frame, want all of them", read)
	}
	if cl.written.Load() == 0 {
		t.Error("nothing was written through the wrapper")
	}
}
