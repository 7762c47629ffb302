package fuzz

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wsmachine/wsmachine/websocket"
)

// TestMain checks, after all targets have run, that no goroutine is left:
// every connection a target opened must have ended.
func TestMain(m *testing.M) {
	code := m.Run()
	server.stop()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left behind:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// server is the loopback WebSocket server of this process. Fuzz workers are
// separate processes, each with its own; inside one, inputs run one after
// another, but connections are still routed by path so that a slow
// connection of one input cannot be handed to the next.
var server lazyServer

type lazyServer struct {
	once    sync.Once
	addr    string
	srv     *http.Server
	next    atomic.Uint64
	waiting sync.Map // path → chan *websocket.Conn
}

// closeTimeout is longer than any scenario: the model's close timer never
// fires by itself, so the real one must not either.
const closeTimeout = time.Minute

// maxMessageSize is low enough that the scenarios' long payloads (70,000
// bytes, in one frame or several) can go past it.
const maxMessageSize = 100000

func (s *lazyServer) start() {
	s.once.Do(func() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		s.addr = ln.Addr().String()
		handle := func(c *websocket.Conn) {
			if ch, ok := s.waiting.LoadAndDelete(c.ResourceName.Path); ok {
				ch.(chan *websocket.Conn) <- c
				return
			}
			c.Close(websocket.StatusInternalServerError, "nobody waits for this connection")
		}
		mux := http.NewServeMux()
		for _, h := range handlers {
			mux.Handle(h.prefix, &websocket.Handler{CloseTimeout: closeTimeout, MaxMessageSize: maxMessageSize,
				Compression: h.mode, CompressionThreshold: h.threshold, Handle: handle})
		}
		s.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: mux}
		go s.srv.Serve(ln)
	})
}

// handlers are the server's settings of permessage-deflate, by path
// prefix: off, and each mode, one with a threshold low enough that the
// scenarios' short messages are compressed.
var handlers = []struct {
	prefix    string
	mode      websocket.CompressionMode
	threshold int
}{
	{"/c/", websocket.CompressionOff, 0},
	{"/nc/", websocket.CompressionNoContextTakeover, 0},
	{"/ct/", websocket.CompressionContextTakeover, 8},
}

// expect returns a fresh path of handlers[handler] and the channel its
// connection will arrive on.
func (s *lazyServer) expect(handler int) (string, chan *websocket.Conn) {
	s.start()
	path := handlers[handler].prefix + strconv.FormatUint(s.next.Add(1), 10)
	ch := make(chan *websocket.Conn, 1)
	s.waiting.Store(path, ch)
	return path, ch
}

func (s *lazyServer) stop() {
	if s.srv != nil {
		s.srv.Close()
	}
}
