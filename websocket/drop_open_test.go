package websocket

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// Dropping an open connection (Shutdown past its deadline) closes TCP
// without a close frame; a receive waiting, or coming later, gets an
// error wrapping ErrConnClosed that says why, and GetStatus reports
// StatusDropped.
// Rows: O15, T2.
func TestDropOpenConnection(t *testing.T) {
	conns := make(chan *Conn, 1)
	addr := serve(t, func(c *Conn) { conns <- c })
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	br, err := upgrade(nc, "/drop")
	if err != nil {
		t.Fatal(err)
	}
	c := <-conns
	received := make(chan error, 1)
	go func() { _, _, err := c.ReceiveMessage(); received <- err }()

	c.drop("the server shut down")
	for _, err := range []error{<-received, func() error { _, _, err := c.ReceiveMessage(); return err }()} {
		if !errors.Is(err, ErrConnClosed) || !strings.Contains(err.Error(), "shut down") {
			t.Errorf("receive: %v, want an error wrapping ErrConnClosed that says the server shut down", err)
		}
	}
	if code, _ := c.GetStatus(); code != StatusDropped {
		t.Errorf("GetStatus %d, want StatusDropped", code)
	}
	if rest, err := io.ReadAll(br); len(rest) != 0 || err != nil {
		t.Errorf("the client read %q (%v) before TCP's end, want nothing: no close frame", rest, err)
	}
}
