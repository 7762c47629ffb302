package websocket

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"testing"

	"github.com/wsmachine/wsmachine/websocket/internal/core"
	"github.com/wsmachine/wsmachine/websocket/internal/wstest"
)

// echoHandler is the echo loop of the README and the benchmark harness.
func echoHandler(conn *Conn) {
	defer conn.Close(StatusOK, "")
	for {
		tp, r, err := conn.ReceiveMessage()
		if err != nil {
			return
		}
		w, err := conn.SendMessage(tp)
		if err != nil {
			return
		}
		io.Copy(w, r)
		if w.Close() != nil {
			return
		}
	}
}

// serve serves a Handler with handle on a loopback port until the test
// ends and returns its address.
func serve(t testing.TB, handle func(*Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: &Handler{Handle: handle}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// benchClient is a minimal masked-frame client for benchmarks.
type benchClient struct {
	nc  net.Conn
	br  *bufio.Reader
	out []byte
	in  []byte
	hdr [10]byte
}

// upgradeRequest is a client's opening handshake for path, with the key
// of RFC 6455 §1.3.
func upgradeRequest(path string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
}

// upgrade sends the opening handshake for path on nc and reads the 101
// response; the reader goes on with the server's frames.
func upgrade(nc net.Conn, path string) (*bufio.Reader, error) {
	if _, err := io.WriteString(nc, upgradeRequest(path)); err != nil {
		return nil, err
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err == nil && resp.StatusCode != http.StatusSwitchingProtocols {
		err = errors.New("handshake answered " + resp.Status)
	}
	return br, err
}

func dialBench(b *testing.B, handle func(*Conn)) *benchClient {
	b.Helper()
	nc, br := dialUpgraded(b, serve(b, handle))
	return &benchClient{nc: nc, br: br}
}

// dialUpgraded connects to addr and performs the opening handshake for
// "/"; the connection is closed when the test ends.
func dialUpgraded(t testing.TB, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	br, err := upgrade(nc, "/")
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	return nc, br
}

// roundTrip sends one masked message and reads the unfragmented or
// fragmented echo.
func (c *benchClient) roundTrip(b *testing.B, op core.Opcode, payload []byte) {
	var key [4]byte
	rand.Read(key[:])
	c.out = core.AppendHeader(c.out[:0], true, op, len(payload))
	c.out[1] |= 0x80
	c.out = append(c.out, key[:]...)
	start := len(c.out)
	c.out = append(c.out, payload...)
	core.Mask(key, 0, c.out[start:])
	if _, err := c.nc.Write(c.out); err != nil {
		b.Fatal(err)
	}
	c.in = c.in[:0]
	for {
		hdr := c.hdr[:]
		if _, err := io.ReadFull(c.br, hdr[:2]); err != nil {
			b.Fatal(err)
		}
		n := uint64(hdr[1] & 0x7F)
		switch n {
		case 126:
			io.ReadFull(c.br, hdr[2:4])
			n = uint64(binary.BigEndian.Uint16(hdr[2:4]))
		case 127:
			io.ReadFull(c.br, hdr[2:10])
			n = binary.BigEndian.Uint64(hdr[2:10])
		}
		start := len(c.in)
		c.in = slices.Grow(c.in, int(n))[:start+int(n)]
		if _, err := io.ReadFull(c.br, c.in[start:]); err != nil {
			b.Fatal(err)
		}
		if hdr[0]&0x80 != 0 {
			break
		}
	}
	if len(c.in) != len(payload) {
		b.Fatalf("echo of %d bytes has %d", len(payload), len(c.in))
	}
}

// echoSizes are the echo benchmarks' messages: the harness's cases.
var echoSizes = []struct {
	op   core.Opcode
	size int
}{{core.OpBinary, 16}, {core.OpText, 1024}, {core.OpBinary, 64 << 10}}

// benchPayload is a message of size letters.
func benchPayload(size int) []byte {
	p := make([]byte, size)
	for i := range p {
		p[i] = 'a' + byte(i%26)
	}
	return p
}

// BenchmarkEcho measures a message's round trip through the echo handler
// (ReceiveMessage, SendMessage, io.Copy) over loopback TCP; allocs/op are
// the server's and the client's together, and the client allocates
// nothing.
func BenchmarkEcho(b *testing.B) {
	benchRoundTrips(b, typeName, func(b *testing.B, _ core.Opcode) *benchClient { return dialBench(b, echoHandler) })
}

// BenchmarkEchoPipe is BenchmarkEcho over net.Pipe: no system calls, so
// the library's own cost per message, through net.Conn rather than the
// raw socket.
func BenchmarkEchoPipe(b *testing.B) {
	benchRoundTrips(b, typeName, func(b *testing.B, _ core.Opcode) *benchClient { return pipeBench(b, echoHandler) })
}

// typeName names a sub-benchmark by the message type.
func typeName(op core.Opcode) string { return MessageType(op).String() }

// benchRoundTrips runs a sub-benchmark of round trips for each of
// echoSizes, against the client dial returns for the message's opcode.
func benchRoundTrips(b *testing.B, name func(core.Opcode) string, dial func(*testing.B, core.Opcode) *benchClient) {
	for _, tt := range echoSizes {
		payload := benchPayload(tt.size)
		b.Run(name(tt.op)+"-"+wstest.SizeName(tt.size), func(b *testing.B) {
			c := dial(b, tt.op)
			b.SetBytes(int64(tt.size))
			b.ReportAllocs()
			for b.Loop() {
				c.roundTrip(b, tt.op, payload)
			}
		})
	}
}

// pipeBench runs handle on an open Conn over net.Pipe.
func pipeBench(b *testing.B, handle func(*Conn)) *benchClient {
	b.Helper()
	server, client := net.Pipe()
	c := newConn()
	c.attach(server, bufio.NewReader(server))
	c.open()
	go handle(c)
	b.Cleanup(func() {
		client.Close()
		c.GetStatus()
	})
	return &benchClient{nc: client, br: bufio.NewReaderSize(client, 64<<10)}
}

// BenchmarkReceive measures the round trip of a message received whole
// with ReceiveBinary (into the handler's buffer) or ReceiveText (into a
// new string) and sent back with SendBinary or SendText, over loopback.
func BenchmarkReceive(b *testing.B) {
	handlers := map[core.Opcode]func(*Conn){
		core.OpBinary: func(c *Conn) {
			buf := make([]byte, 64<<10)
			for {
				n, err := c.ReceiveBinary(buf)
				if err != nil || c.SendBinary(buf[:n]) != nil {
					return
				}
			}
		},
		core.OpText: func(c *Conn) {
			for {
				s, err := c.ReceiveText(64 << 10)
				if err != nil || c.SendText(s) != nil {
					return
				}
			}
		},
	}
	benchRoundTrips(b, func(op core.Opcode) string { return "Receive" + typeName(op) },
		func(b *testing.B, op core.Opcode) *benchClient { return dialBench(b, handlers[op]) })
}

// BenchmarkHandshake measures a connection's life over loopback TCP:
// connect, opening handshake, closing handshake started by the client,
// the server's FIN. allocs/op are the server's and the client's together.
func BenchmarkHandshake(b *testing.B) {
	addr := serve(b, echoHandler)
	req := []byte(upgradeRequest("/"))
	closeFrame := []byte{0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xe8 ^ 2}
	buf := make([]byte, 4096)
	b.ReportAllocs()
	for b.Loop() {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		nc.Write(req)
		// The 101 response, then our close frame and its echo, then EOF.
		n, err := nc.Read(buf)
		if err != nil || !bytes.HasPrefix(buf[:n], []byte("HTTP/1.1 101 ")) {
			b.Fatalf("handshake: %q %v", buf[:n], err)
		}
		nc.Write(closeFrame)
		if _, err := io.Copy(io.Discard, nc); err != nil {
			b.Fatal(err)
		}
		nc.Close()
	}
}
