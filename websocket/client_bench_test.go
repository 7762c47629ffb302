package websocket_test

// What a client pays for an echo round trip: ours against gorilla's and
// gws's, in the same run, against the same server (ours, echoing with
// ReceiveMessage, SendMessage and io.Copy, which allocates nothing per
// message). ns/op is the whole round trip over loopback, both ends;
// allocs/op are the client's alone (B/op also holds, amortized, the
// server's pooled 64 KiB write buffer made again after a GC empties the
// pool: a few bytes per message). Each client reads the echo into its own
// buffer, its cheapest way: ours and gorilla's with a message reader and
// io.ReadFull, gws's in its OnMessage callback. Each client is used as it
// comes: gorilla's default 4 KiB write buffer sends 64 KiB in 16 frames.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	gorilla "github.com/gorilla/websocket"
	"github.com/lxzan/gws"

	"github.com/wsmachine/wsmachine/websocket"
)

// roundTripper is one client's connection to the echo server.
type roundTripper interface {
	// roundTrip sends msg (a text also as s) and reads the echo into a
	// buffer of len(msg) bytes that the client made when it dialed.
	roundTrip(tp websocket.MessageType, msg []byte, s string) error
	close()
}

// roundTripClients are the clients compared.
var roundTripClients = []struct {
	name string
	dial func(b *testing.B, url string, size int) roundTripper
}{
	{"wsmachine", dialOurRoundTripper},
	{"gorilla", dialGorillaRoundTripper},
	{"gws", dialGWSRoundTripper},
}

// BenchmarkClientRoundTrip: sub-benchmarks client/type-size, the three
// clients side by side for each message.
func BenchmarkClientRoundTrip(b *testing.B) {
	ts := startServer(b, &websocket.Handler{Handle: copyEcho})
	url := "ws://" + ts.Addr + "/"
	for _, m := range []struct {
		name string
		tp   websocket.MessageType
		size int
	}{
		{"binary-16B", websocket.Binary, 16},
		{"text-1KiB", websocket.Text, 1 << 10},
		{"binary-64KiB", websocket.Binary, 64 << 10},
	} {
		msg := make([]byte, m.size)
		for i := range msg {
			msg[i] = 'a' + byte(i%26)
		}
		s := string(msg)
		for _, client := range roundTripClients {
			b.Run(client.name+"/"+m.name, func(b *testing.B) {
				rt := client.dial(b, url, m.size)
				defer rt.close()
				// One round trip first, so that what the server allocates
				// as the connection starts is not counted.
				if err := rt.roundTrip(m.tp, msg, s); err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(m.size))
				b.ReportAllocs()
				for b.Loop() {
					if err := rt.roundTrip(m.tp, msg, s); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// readWhole reads a message of exactly len(buf)-1 bytes from r: the last
// byte is room to see that nothing follows (a local array would escape
// to the heap through the interface call).
func readWhole(r io.Reader, buf []byte) error {
	n := len(buf) - 1
	if _, err := io.ReadFull(r, buf[:n]); err != nil {
		return err
	}
	if m, err := r.Read(buf[n:]); m != 0 || err != io.EOF {
		return fmt.Errorf("the echo is longer than the %d bytes sent (%v)", n, err)
	}
	return nil
}

// errEchoType is an echo of another type than the message.
var errEchoType = errors.New("the echo has another type")

type ourRoundTripper struct {
	c   *websocket.Conn
	buf []byte
}

func dialOurRoundTripper(b *testing.B, url string, size int) roundTripper {
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		b.Fatal(err)
	}
	return ourRoundTripper{c, make([]byte, size+1)}
}

func (o ourRoundTripper) roundTrip(tp websocket.MessageType, msg []byte, s string) error {
	var err error
	if tp == websocket.Text {
		err = o.c.SendText(s)
	} else {
		err = o.c.SendBinary(msg)
	}
	if err != nil {
		return err
	}
	got, r, err := o.c.ReceiveMessage()
	if err != nil {
		return err
	}
	if got != tp {
		return errEchoType
	}
	return readWhole(r, o.buf)
}

func (o ourRoundTripper) close() { o.c.Close(websocket.StatusOK, "") }

type gorillaRoundTripper struct {
	c   *gorilla.Conn
	buf []byte
}

func dialGorillaRoundTripper(b *testing.B, url string, size int) roundTripper {
	c, _, err := (&gorilla.Dialer{HandshakeTimeout: ioTimeout}).Dial(url, nil)
	if err != nil {
		b.Fatal(err)
	}
	return gorillaRoundTripper{c, make([]byte, size+1)}
}

func (g gorillaRoundTripper) roundTrip(tp websocket.MessageType, msg []byte, _ string) error {
	if err := g.c.WriteMessage(int(tp), msg); err != nil {
		return err
	}
	got, r, err := g.c.NextReader()
	if err != nil {
		return err
	}
	if got != int(tp) {
		return errEchoType
	}
	return readWhole(r, g.buf)
}

// close sends a close frame, reads up to the server's and closes TCP.
func (g gorillaRoundTripper) close() {
	g.c.WriteMessage(gorilla.CloseMessage, gorilla.FormatCloseMessage(gorilla.CloseNormalClosure, ""))
	for {
		if _, _, err := g.c.NextReader(); err != nil {
			break
		}
	}
	g.c.Close()
}

// gwsRoundTripper reads in gws's ReadLoop: OnMessage copies the echo into
// buf and hands its type and length over.
type gwsRoundTripper struct {
	c      *gws.Conn
	buf    []byte
	echoes chan gwsArrival
	ended  chan struct{}
}

// gwsArrival is an echo as OnMessage saw it.
type gwsArrival struct {
	tp gws.Opcode
	n  int // -1: longer than buf
}

func dialGWSRoundTripper(b *testing.B, url string, size int) roundTripper {
	g := &gwsRoundTripper{buf: make([]byte, size), echoes: make(chan gwsArrival, 1), ended: make(chan struct{})}
	c, _, err := gws.NewClient(g, &gws.ClientOption{Addr: url, HandshakeTimeout: ioTimeout})
	if err != nil {
		b.Fatal(err)
	}
	g.c = c
	go c.ReadLoop()
	return g
}

func (g *gwsRoundTripper) roundTrip(tp websocket.MessageType, msg []byte, _ string) error {
	if err := g.c.WriteMessage(gws.Opcode(tp), msg); err != nil {
		return err
	}
	select {
	case e := <-g.echoes:
		if e.tp != gws.Opcode(tp) || e.n != len(msg) {
			return fmt.Errorf("echo of type %d and %d bytes (-1: too many), want %d and %d", e.tp, e.n, tp, len(msg))
		}
		return nil
	case <-g.ended:
		return errors.New("the connection ended")
	}
}

func (g *gwsRoundTripper) close() {
	g.c.WriteClose(uint16(websocket.StatusOK), nil) // and closes TCP
	<-g.ended
}

func (g *gwsRoundTripper) OnOpen(*gws.Conn)             {}
func (g *gwsRoundTripper) OnClose(*gws.Conn, error)     { close(g.ended) }
func (g *gwsRoundTripper) OnPing(c *gws.Conn, p []byte) { c.WritePong(p) }
func (g *gwsRoundTripper) OnPong(*gws.Conn, []byte)     {}

func (g *gwsRoundTripper) OnMessage(_ *gws.Conn, m *gws.Message) {
	e := gwsArrival{m.Opcode, copy(g.buf, m.Bytes())}
	if e.n != m.Data.Len() {
		e.n = -1
	}
	m.Close()
	g.echoes <- e
}
