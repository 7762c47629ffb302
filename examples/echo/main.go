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

	h := &websocket.Handler{
		AccessOk:    acceptAll,
		Handle:      handle,
		ServerName:  "wsmachine-echo",
		Compression: compression(*compress),
	}
	srv := &http.Server{
		Addr:    *addr,
		Handler: h,
		// The opening handshake is an HTTP request: the limit on reading
		// its header belongs to the http.Server.
		ReadHeaderTimeout: 10 * time.Second,
	}

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

	// The server's Shutdown stops new requests and waits for plain HTTP
	// ones; it does not know the hijacked WebSockets. The Handler's
	// closes those with 1001 and waits for the clients' answers, dropping
	// the clients that have not answered after 5 s.
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go srv.Shutdown(sctx)
	if err := h.Shutdown(sctx); err != nil {
		log.Printf("echo: clients dropped: %v", err)
	}
	srv.Close() // HTTP connections still idle
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

// handle echoes one client's messages and logs how its connection ended.
func handle(conn *websocket.Conn) {
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
