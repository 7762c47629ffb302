// Command chat is a small chat room: it serves a page at / and a WebSocket at
// /ws, and every message one client sends is broadcast to every connected
// client.
//
//	go run ./examples/chat -addr 127.0.0.1:8080
//
// then open http://127.0.0.1:8080/ in a few browser tabs.
//
// Each client has a queue of outgoing messages and a goroutine that writes
// them, so a client that reads slowly delays nobody else: when its queue is
// full it is disconnected with StatusPolicyViolation.
//
// The WebSocket handler's statistics are at /debug/vars (expvar), under
// "websocket": open connections, handshakes accepted and refused, how
// connections ended, messages and bytes.
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"expvar"
	"flag"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/wsmachine/wsmachine/websocket"
)

const (
	maxMessage = 4096 // bytes; longer messages are dropped
	maxName    = 32   // runes
	queueLen   = 64   // outgoing messages a client may fall behind by
)

//go:embed index.html
var indexHTML []byte

// newMux serves the page at / and the chat's WebSocket at /ws.
func newMux(h *hub) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", serveIndex)
	mux.Handle("/ws", h.ws)
	mux.Handle("GET /debug/vars", expvar.Handler())
	return mux
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	flag.Parse()

	h := newHub()
	publishStats(h)
	srv := &http.Server{Addr: *addr, Handler: newMux(h), ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Printf("chat: open http://%s/", *addr)

	select {
	case err := <-errc:
		log.Fatalf("chat: %v", err)
	case <-ctx.Done():
	}
	stop()
	log.Printf("chat: shutting down")

	// The server's Shutdown stops new requests and waits for plain HTTP
	// ones; it does not know the hijacked WebSockets. The Handler's
	// closes those with 1001 and waits for the clients' answers, dropping
	// the clients that have not answered after 5 s.
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go srv.Shutdown(sctx)
	if err := h.ws.Shutdown(sctx); err != nil {
		log.Printf("chat: clients dropped: %v", err)
	}
	srv.Close() // HTTP connections still idle
	log.Printf("chat: bye")
}

// publishStats publishes the WebSocket handler's statistics as the
// expvar "websocket" (once per process: expvar's names are global).
func publishStats(h *hub) {
	expvar.Publish("websocket", expvar.Func(func() any { return h.ws.Stats() }))
}

func serveIndex(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(indexHTML)
}

// event is what the server sends to the page, encoded as JSON.
type event struct {
	Type   string `json:"type"` // welcome, join, leave, message, error
	ID     int    `json:"id,omitempty"`
	Name   string `json:"name,omitempty"`
	Text   string `json:"text,omitempty"`
	Online int    `json:"online,omitempty"`
}

// post is what the page sends to the server.
type post struct {
	Name string `json:"name"`
	Text string `json:"text"`
}

type client struct {
	id   int
	conn *websocket.Conn
	send chan string   // encoded events, written by writeLoop
	quit chan struct{} // closed when the client leaves
	name string        // last name used; only serve touches it
}

// hub is the set of connected clients, and the WebSocket handler that
// serves them (whose Shutdown closes them all).
type hub struct {
	ws      *websocket.Handler
	mu      sync.Mutex
	clients map[*client]struct{}
	lastID  int
}

func newHub() *hub {
	h := &hub{clients: make(map[*client]struct{})}
	// No AccessOk: the default policy accepts requests without an Origin
	// and from pages served by this same host, and refuses the rest.
	h.ws = &websocket.Handler{Handle: h.serve, ServerName: "wsmachine-chat"}
	return h
}

// serve runs one client from its join to its leave. It owns the connection
// and closes it before returning.
func (h *hub) serve(conn *websocket.Conn) {
	c := &client{conn: conn, send: make(chan string, queueLen), quit: make(chan struct{})}
	online := h.join(c)
	log.Printf("join  #%d %s", c.id, conn.RemoteAddr)

	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop()
	}()
	h.broadcast(event{Type: "join", ID: c.id, Online: online})

	for {
		msg, err := conn.ReceiveText(maxMessage)
		if errors.Is(err, websocket.ErrTooLarge) {
			c.trySend(encode(event{Type: "error", Text: "message too long, dropped"}))
			continue
		}
		if errors.Is(err, websocket.ErrMessageType) {
			continue // binary messages are not part of this chat
		}
		if err != nil {
			break
		}
		var p post
		if json.Unmarshal([]byte(msg), &p) != nil || strings.TrimSpace(p.Text) == "" {
			continue
		}
		c.name = cleanName(p.Name)
		h.broadcast(event{Type: "message", ID: c.id, Name: c.name, Text: p.Text})
	}

	// The client has left (or was dropped by broadcast). Close is a no-op
	// returning ErrConnClosed if the connection has already ended.
	online = h.leave(c)
	conn.Close(websocket.StatusOK, "")
	close(c.quit)
	<-writerDone
	status, reason := conn.GetStatus()
	log.Printf("leave #%d %s status=%d reason=%q", c.id, conn.RemoteAddr, status, reason)
	h.broadcast(event{Type: "leave", ID: c.id, Name: c.name, Online: online})
}

// writeLoop sends the client's queued events until it leaves.
func (c *client) writeLoop() {
	for {
		select {
		case msg := <-c.send:
			if err := c.conn.SendText(msg); err != nil {
				// Ends the connection, if a failed send has not
				// already, so that serve's receive loop returns.
				c.conn.Close(websocket.StatusInternalServerError, "")
				return
			}
		case <-c.quit:
			return
		}
	}
}

// trySend queues msg for c without blocking and reports whether it fit.
func (c *client) trySend(msg string) bool {
	select {
	case c.send <- msg:
		return true
	default:
		return false
	}
}

// join adds c to the hub, queues its welcome before any broadcast can reach
// it, and returns the number of clients online.
func (h *hub) join(c *client) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastID++
	c.id = h.lastID
	h.clients[c] = struct{}{}
	online := len(h.clients)
	c.trySend(encode(event{Type: "welcome", ID: c.id, Online: online}))
	return online
}

// leave removes c from the hub, if broadcast has not already done so, and
// returns the number of clients still online.
func (h *hub) leave(c *client) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.clients, c)
	return len(h.clients)
}

// broadcast queues ev for every client. It never blocks: a client whose
// queue is full is removed from the hub and disconnected; its serve then
// announces that it left.
func (h *hub) broadcast(ev event) {
	msg := encode(ev)
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		if !c.trySend(msg) {
			delete(h.clients, c)
			log.Printf("slow  #%d %s: disconnecting", c.id, c.conn.RemoteAddr)
			// Close waits for the client's close frame: not under the lock.
			go c.conn.Close(websocket.StatusPolicyViolation, "too slow")
		}
	}
}

func encode(ev event) string {
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err) // event holds only strings and ints
	}
	return string(b)
}

// cleanName keeps the printable characters of name, collapses its spaces and
// trims it to maxName runes.
func cleanName(name string) string {
	name = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, name)
	name = strings.Join(strings.Fields(name), " ")
	if utf8.RuneCountInString(name) > maxName {
		name = string([]rune(name)[:maxName])
	}
	return name
}
