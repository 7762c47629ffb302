package websocket

import (
	"context"
	"io"
	"net"
	"runtime"
	"testing"
	"time"
	"unsafe"
)

// An idle connection holds no read or write buffer: after a message each
// way, the connections waiting in ReceiveMessage cost far less heap than
// one 4 KiB read buffer each. The figure includes the client's side of
// each connection, which lives in this process too.
func TestIdleConnectionsHoldNoBuffers(t *testing.T) {
	const n = 200
	addr := serve(t, echoHandler)

	message := benchPayload(1024)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	clients := make([]net.Conn, 0, n)
	for range n {
		nc, br := dialUpgraded(t, addr)
		frame := append([]byte{0x81, 0xFE, 4, 0, 0, 0, 0, 0}, message...) // masked with a zero key
		nc.Write(frame)
		echo := make([]byte, 4+len(message))
		if _, err := io.ReadFull(br, echo); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, nc)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perConn := (int64(after.HeapInuse) - int64(before.HeapInuse)) / n
	t.Logf("heap in use per idle connection, both ends: %d B", perConn)
	if perConn > 6<<10 {
		t.Errorf("an idle connection costs %d B of heap, both ends together: it holds a buffer", perConn)
	}
	runtime.KeepAlive(clients)
}

// An idle connection's goroutine keeps the smallest stack, 2 KiB: the
// path of an echoed message (receive, copy, send) never needs more, so
// its stack never grows. A few bytes more in a frame on that path (an
// effects value grown by a slice did it once) double the stack of every
// connection. Here the server's goroutines are counted with the client
// sides' background readers, all idle after an echo of a message each way.
//
// The race detector's instrumentation makes frames larger: make
// bench-smoke runs this test without it.
func TestIdleConnectionsKeepSmallStacks(t *testing.T) {
	if raceEnabled {
		t.Skip("stack sizes under the race detector say nothing: make bench-smoke runs this without it")
	}
	const n = 1000
	addr := serve(t, echoHandler)
	stacks := func() (int64, int) {
		var ms runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return int64(ms.StackInuse), runtime.NumGoroutine()
	}
	stack0, g0 := stacks()
	conns := make([]*Conn, 0, n)
	for range n {
		c, _, err := Dial(context.Background(), "ws://"+addr+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(StatusOK, "")
		if err := c.SendBinary([]byte("0123456789abcdef")); err != nil {
			t.Fatal(err)
		}
		var buf [64]byte
		if _, err := c.ReceiveBinary(buf[:]); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	time.Sleep(5 * backgroundDelay) // the clients' background readers start
	stack1, g1 := stacks()
	perGoroutine := (stack1 - stack0) / int64(max(g1-g0, 1))
	t.Logf("%d goroutines more, %d B of stack each", g1-g0, perGoroutine)
	if perGoroutine > 2560 {
		t.Errorf("idle goroutines hold %d B of stack each, want 2 KiB: a frame on the echo path grew", perGoroutine)
	}
}

// A Conn is allocated once per connection, and idle connections are what
// a server holds most of: it must stay within Go's 576-byte size class.
// An object over 512 bytes that holds pointers carries an 8-byte header
// in front, so Conn itself may be at most 568 bytes; at 576 it takes the
// 640-byte class and every idle connection costs 64 bytes more.
func TestConnFitsItsSizeClass(t *testing.T) {
	if size := unsafe.Sizeof(Conn{}); size > 568 {
		t.Errorf("Conn is %d bytes: with its allocation header it leaves the 576-byte size class (reorder fields into padding, or make room)", size)
	}
}
