// Command echo is a WebSocket echo server: every message a client sends is
// sent back unchanged, with the same type. It answers WebSocket handshakes on
// any path and accepts any Origin, so conformance suites (for example the
// Autobahn fuzzing client) can be pointed at it directly.
//
//	go run ./examples/echo -addr 127.0.0.1:9001
//	go run ./examples/echo -compress   # permessage-deflate, with context takeover
//
// Messages are streamed: a message is copied frame by frame from the client's
// reader to a writer of the same type, so its size is not limited by memory.
package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/wsmachine/wsmachine/websocket"
)

// compression is the Handler's mode for the -compress flag.
func compression(on bool) websocket.CompressionMode {
	if on {
		return websocket.CompressionContextTakeover
	}
	return websocket.CompressionOff
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9001", "address to listen on")
	compress := flag.Bool("compress", false, "compress messages with permessage-deflate (context takeover) for clients that offer it")
	flag.Parse()
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)

	e := &echoServer{conns: make(map[*websocket.Conn]struct{})}
	srv := &http.Server{
		Addr: *addr,
		Handler: &websocket.Handler{
			AccessOk:    acceptAll,
			Handle:      e.handle,
			ServerName:  "wsmachine-echo",
			Compression: compression(*compress),
		},
		// The opening handshake is an HTTP request: the limit on reading
		// its header belongs to the http.Server.
		ReadHeaderTimeout: 10 * time.Second,
	}

	// Shutdown does not know about hijacked (WebSocket) connections: it
	// calls closeAll to close them, while it waits for plain HTTP ones.
	srv.RegisterOnShutdown(e.closeAll)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Printf("echo: listening on ws://%s/", *addr)

	select {
	case err := <-errc:
		log.Fatalf("echo: %v", err)
	case <-ctx.Done():
	}
	stop() // a second Ctrl-C kills the process
	log.Printf("echo: shutting down")

	// Plain HTTP requests are short here: after a second, Close also
	// drops the idle connections browsers open in advance, which
	// Shutdown would wait for.
	hctx, hcancel := context.WithTimeout(context.Background(), time.Second)
	defer hcancel()
	if srv.Shutdown(hctx) != nil {
		srv.Close()
	}
	// Close waits up to 3 s for each client's close frame.
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	e.wait(wctx)
	log.Printf("echo: bye")
}

// acceptAll allows every Origin and picks the first subprotocol the client
// offers, if any. A real application should check conn.Origin instead.
func acceptAll(conn *websocket.Conn, protocols []string) bool {
	if len(protocols) > 0 {
		conn.Protocol = protocols[0]
	}
	return true
}

// echoServer tracks open connections so that shutdown can close them.
type echoServer struct {
	mu       sync.Mutex
	conns    map[*websocket.Conn]struct{}
	closing  bool
	handlers sync.WaitGroup
}

func (e *echoServer) handle(conn *websocket.Conn) {
	if !e.add(conn) {
		conn.Close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	defer e.remove(conn)

	path := conn.ResourceName.RequestURI()
	log.Printf("open  %s %s protocol=%q", conn.RemoteAddr, path, conn.Protocol)

	err := echo(conn)

	// The connection is ours: close it whatever ended the loop. If it has
	// already ended, Close just reports ErrConnClosed.
	code := websocket.StatusOK
	if !errors.Is(err, websocket.ErrConnClosed) {
		log.Printf("error %s %s: %v", conn.RemoteAddr, path, err)
		code = websocket.StatusInternalServerError
	}
	conn.Close(code, "")

	status, reason := conn.GetStatus()
	log.Printf("close %s %s status=%d reason=%q", conn.RemoteAddr, path, status, reason)
}

// echo copies messages back to the client until the connection ends or a
// send fails.
func echo(conn *websocket.Conn) error {
	for {
		tp, r, err := conn.ReceiveMessage()
		if err != nil {
			return err
		}
		w, err := conn.SendMessage(tp)
		if err != nil {
			return err
		}
		_, err = io.Copy(w, r)
		// Always close the writer: it holds the send side of the
		// connection until it is closed.
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
}

func (e *echoServer) add(conn *websocket.Conn) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closing {
		return false
	}
	e.conns[conn] = struct{}{}
	e.handlers.Add(1)
	return true
}

func (e *echoServer) remove(conn *websocket.Conn) {
	e.mu.Lock()
	delete(e.conns, conn)
	e.mu.Unlock()
	e.handlers.Done()
}

// closeAll closes every open connection with StatusGoingAway, and every
// connection opened from now on.
func (e *echoServer) closeAll() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closing {
		return
	}
	e.closing = true
	for conn := range e.conns {
		go conn.Close(websocket.StatusGoingAway, "server shutting down")
	}
}

// wait closes every connection and waits for the handlers to return, or
// for ctx to end.
func (e *echoServer) wait(ctx context.Context) {
	e.closeAll() // no handler may join once Wait has started
	done := make(chan struct{})
	go func() {
		e.handlers.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
	select {
	case <-done:
	default:
		log.Printf("echo: gave up waiting for connections to close")
	}
}
