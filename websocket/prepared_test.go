package websocket

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A prepared message arrives as SendText or SendBinary would send it, at
// a server's end and a client's, with compression off and in either
// mode: plain, compressed once for the window (no context takeover),
// compressed with the connection's history (context takeover), masked
// afresh by a client. Compressed, a compressible message takes fewer
// bytes on the wire than its payload; one over 64 KiB leaves in several
// frames.
//
// Rows: O3, O1.
func TestSendPreparedArrivesWhole(t *testing.T) {
	long := strings.Repeat(`{"user":"ann","text":"hello, prepared world"} `, 3000) // > 64 KiB
	messages := []struct {
		tp   MessageType
		data string
	}{
		{Text, "short"},
		{Text, strings.Repeat("compress me ", 100)},
		{Binary, long},
		{Text, ""},
	}
	modes := map[CompressionMode]string{CompressionOff: "off", CompressionNoContextTakeover: "no-context-takeover", CompressionContextTakeover: "context-takeover"}
	for mode, modeName := range modes {
		for _, clientSends := range []bool{false, true} {
			t.Run(modeName+map[bool]string{false: "/server", true: "/client"}[clientSends], func(t *testing.T) {
				var prepared []*PreparedMessage
				for _, m := range messages {
					p, err := NewPreparedMessage(m.tp, []byte(m.data))
					if err != nil {
						t.Fatal(err)
					}
					prepared = append(prepared, p)
				}
				got := make(chan string, len(messages))
				conns := make(chan *Conn, 1)
				h := &Handler{Compression: mode, Handle: func(c *Conn) {
					conns <- c
					receiveAll(c, len(messages), got)
				}}
				if !clientSends {
					h.Handle = func(c *Conn) {
						conns <- c
						for _, p := range prepared {
							if err := c.SendPrepared(p); err != nil {
								got <- err.Error()
							}
						}
						c.ReceiveMessage() // until the client closes
					}
				}
				addr := serveWith(t, h)
				client, _, err := Dial(context.Background(), "ws://"+addr+"/", &DialOptions{Compression: mode})
				if err != nil {
					t.Fatal(err)
				}
				defer client.Close(StatusOK, "")
				server := <-conns
				sender := server
				if clientSends {
					sender = client
					for _, p := range prepared {
						if err := client.SendPrepared(p); err != nil {
							t.Fatal(err)
						}
					}
				} else {
					go receiveAll(client, len(messages), got)
				}
				for _, m := range messages {
					select {
					case g := <-got:
						if want := m.tp.String() + ":" + m.data; g != want {
							t.Fatalf("got %.60q…, want %.60q…", g, want)
						}
					case <-time.After(10 * time.Second):
						t.Fatal("a message never came")
					}
				}
				st := sender.Stats()
				total := 0
				for _, m := range messages {
					total += len(m.data)
				}
				if int(st.PayloadBytesSent) != total || st.MessagesSent != uint64(len(messages)) {
					t.Fatalf("stats: %+v, want %d messages, %d payload bytes", st, len(messages), total)
				}
				if compressed := st.WireBytesSent < uint64(total); compressed != (mode != CompressionOff) {
					t.Fatalf("wire bytes %d for %d of payload, compression %v", st.WireBytesSent, total, mode)
				}
			})
		}
	}
}

// receiveAll receives n messages on c and reports each as "Type:payload",
// or the error that ended it.
func receiveAll(c *Conn, n int, got chan<- string) {
	for range n {
		tp, r, err := c.ReceiveMessage()
		if err != nil {
			got <- err.Error()
			return
		}
		var b bytes.Buffer
		b.ReadFrom(r)
		got <- tp.String() + ":" + b.String()
	}
}

// NewPreparedMessage checks its message once: a type other than Text or
// Binary, or text that is not UTF-8, is refused; the data is copied.
func TestNewPreparedMessageChecks(t *testing.T) {
	if _, err := NewPreparedMessage(MessageType(9), nil); err != ErrMessageType {
		t.Fatalf("type 9: %v", err)
	}
	if _, err := NewPreparedMessage(Text, []byte{0xff}); err == nil {
		t.Fatal("invalid UTF-8 accepted")
	}
	data := []byte("abc")
	p, err := NewPreparedMessage(Binary, data)
	if err != nil {
		t.Fatal(err)
	}
	data[0] = 'x'
	if p.Type() != Binary || p.Len() != 3 || string(p.payload) != "abc" {
		t.Fatalf("prepared message changed with its source: %q", p.payload)
	}
}

// Broadcast reaches every open connection and reports those it could
// not reach, with their errors, so that the caller can drop them.
//
// Rows: O3, T1.
func TestBroadcastReportsFailures(t *testing.T) {
	const n = 40
	conns := make(chan *Conn, n)
	addr := serve(t, func(c *Conn) {
		conns <- c
		c.ReceiveMessage()
	})
	var clients []*Conn
	received := make(chan string, n)
	for range n {
		c, _, err := Dial(context.Background(), "ws://"+addr+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
		go func() {
			s, err := c.ReceiveText(100)
			if err != nil {
				s = err.Error()
			}
			received <- s
		}()
	}
	var servers []*Conn
	for range n {
		servers = append(servers, <-conns)
	}
	closed := servers[7]
	closed.Close(StatusOK, "")
	closed.GetStatus()
	msg, _ := NewPreparedMessage(Text, []byte("to all"))
	sent, err := Broadcast(context.Background(), append(servers, nil), msg)
	var be *BroadcastError
	if sent != n-1 || !errors.As(err, &be) || len(be.Failed) != 1 || be.Failed[0].Conn != closed || !errors.Is(err, ErrConnClosed) {
		t.Fatalf("Broadcast: sent %d, %v", sent, err)
	}
	got := 0
	for range n {
		if s := <-received; s == "to all" {
			got++
		}
	}
	if got != n-1 {
		t.Fatalf("%d clients got the message, want %d", got, n-1)
	}
	for _, c := range clients {
		c.Close(StatusOK, "")
	}
}

// serveWith serves h on a loopback port until the test ends and returns
// its address.
func serveWith(t *testing.T, h *Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// A connection that does not read holds up only the goroutine sending
// to it: Broadcast's first connection here has a full socket, and every
// other gets the message while Broadcast still waits for that one, which
// fails once its write timeout passes and is reported.
//
// Rows: O3, O9.
func TestBroadcastIsNotHeldUpByAStalledConnection(t *testing.T) {
	const n = 8
	conns := make(chan *Conn, n+1)
	addr := serveWith(t, &Handler{WriteTimeout: time.Second, Handle: func(c *Conn) {
		conns <- c
		c.ReceiveMessage()
	}})
	stalled, _ := dialUpgraded(t, addr) // never reads
	stuck := <-conns
	received := make(chan int, n)
	var clients []*Conn
	for range n {
		c, _, err := Dial(context.Background(), "ws://"+addr+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
		go func() {
			buf := make([]byte, 8<<20)
			m, _ := c.ReceiveBinary(buf)
			received <- m
		}()
	}
	targets := []*Conn{stuck}
	for range n {
		targets = append(targets, <-conns)
	}
	msg, _ := NewPreparedMessage(Binary, make([]byte, 8<<20)) // more than a socket holds
	type outcome struct {
		sent int
		err  error
	}
	done := make(chan outcome, 1)
	go func() {
		sent, err := Broadcast(context.Background(), targets, msg)
		done <- outcome{sent, err}
	}()
	for range n {
		select {
		case m := <-received:
			if m != msg.Len() {
				t.Fatalf("a client got %d bytes", m)
			}
		case o := <-done:
			t.Fatalf("Broadcast returned (%d, %v) before the clients that read had the message", o.sent, o.err)
		case <-time.After(20 * time.Second):
			t.Fatal("the clients that read did not get the message")
		}
	}
	select {
	case o := <-done:
		t.Fatalf("Broadcast returned (%d, %v) before the stalled connection's write timeout", o.sent, o.err)
	default:
	}
	o := <-done
	var be *BroadcastError
	if o.sent != n || !errors.As(o.err, &be) || len(be.Failed) != 1 || be.Failed[0].Conn != stuck {
		t.Fatalf("Broadcast: sent %d, %v", o.sent, o.err)
	}
	stalled.Close()
	for _, c := range clients {
		c.Close(StatusOK, "")
	}
}
