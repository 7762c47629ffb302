package websocket

import (
	"io"
	"net"
	"net/http"
	"runtime"
	"testing"
)

// An idle connection holds no read or write buffer: after a message each
// way, the connections waiting in ReceiveMessage cost far less heap than
// one 4 KiB read buffer each. The figure includes the client's side of
// each connection, which lives in this process too.
func TestIdleConnectionsHoldNoBuffers(t *testing.T) {
	const n = 200
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: &Handler{Handle: echoHandler}}
	go srv.Serve(ln)
	defer srv.Close()

	message := benchPayload(1024)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	clients := make([]net.Conn, 0, n)
	for range n {
		nc, br := dialUpgraded(t, ln.Addr().String())
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
