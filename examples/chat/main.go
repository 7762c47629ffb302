// Command chat is a small chat room: it serves a page at / and a WebSocket at
// /ws, and every message one client sends is broadcast to every connected
// client.
//
//	go run ./examples/chat -addr 127.0.0.1:8080
//
// then open http://127.0.0.1:8080/ in a few browser tabs.
//
// Every event is encoded once, as JSON, into a websocket.PreparedMessage,
// compressed at most once for the clients that negotiated
// permessage-deflate, and sent to all with websocket.Broadcast. A client
// that does not read holds a broadcast up for at most sendTimeout (the
// Handler's WriteTimeout); then it is dropped.
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
	maxMessage  = 4096            // bytes; longer messages are dropped
	maxName     = 32              // runes
	sendTimeout = 5 * time.Second // how long a broadcast waits for a client that does not read
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
	name string // last name used; only serve touches it
}

// hub is the set of connected clients, and the WebSocket handler that
// serves them (whose Shutdown closes them all).
type hub struct {
	ws      *websocket.Handler
	mu      sync.Mutex // guards clients and lastID
	clients map[*websocket.Conn]*client
	lastID  int
	// sending is held by a broadcast for as long as it sends, so that
	// every client gets the events in the same order.
	sending sync.Mutex
}

func newHub() *hub {
	h := &hub{clients: make(map[*websocket.Conn]*client)}
	// No AccessOk: the default policy accepts requests without an Origin
	// and from pages served by this same host, and refuses the rest.
	// WriteTimeout bounds how long a client that does not read holds up
	// a broadcast: then it is dropped.
	h.ws = &websocket.Handler{Handle: h.serve, ServerName: "wsmachine-chat", WriteTimeout: sendTimeout,
		Compression: websocket.CompressionNoContextTakeover}
	return h
}

// serve runs one client from its join to its leave. It owns the connection
// and closes it before returning.
func (h *hub) serve(conn *websocket.Conn) {
	c := &client{conn: conn}
	online, err := h.join(c)
	if err != nil {
		return
	}
	log.Printf("join  #%d %s", c.id, conn.RemoteAddr)
	h.broadcast(event{Type: "join", ID: c.id, Online: online})

	for {
		msg, err := conn.ReceiveText(maxMessage)
		if errors.Is(err, websocket.ErrTooLarge) {
			conn.SendText(encode(event{Type: "error", Text: "message too long, dropped"}))
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
	status, reason := conn.GetStatus()
	log.Printf("leave #%d %s status=%d reason=%q", c.id, conn.RemoteAddr, status, reason)
	h.broadcast(event{Type: "leave", ID: c.id, Name: c.name, Online: online})
}

// join sends c its welcome, then adds it to the hub, so that the welcome
// comes before any broadcast, and returns the number of clients online.
func (h *hub) join(c *client) (int, error) {
	h.sending.Lock() // no broadcast in between: the next one includes c
	defer h.sending.Unlock()
	h.mu.Lock()
	h.lastID++
	c.id = h.lastID
	online := len(h.clients) + 1
	h.mu.Unlock()
	if err := c.conn.SendText(encode(event{Type: "welcome", ID: c.id, Online: online})); err != nil {
		return 0, err
	}
	h.mu.Lock()
	h.clients[c.conn] = c
	h.mu.Unlock()
	return online, nil
}

// leave removes c from the hub, if broadcast has not already done so, and
// returns the number of clients still online.
func (h *hub) leave(c *client) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.clients, c.conn)
	return len(h.clients)
}

// broadcast sends ev to every client: encoded once, as JSON, and, for the
// clients that negotiated compression, compressed once
// (websocket.Broadcast). A client that does not take it within
// sendTimeout is dropped; its serve then announces that it left.
func (h *hub) broadcast(ev event) {
	msg, err := websocket.NewPreparedMessage(websocket.Text, []byte(encode(ev)))
	if err != nil {
		panic(err) // JSON is UTF-8
	}
	h.sending.Lock()
	defer h.sending.Unlock()
	h.mu.Lock()
	conns := make([]*websocket.Conn, 0, len(h.clients))
	for conn := range h.clients {
		conns = append(conns, conn)
	}
	h.mu.Unlock()
	_, err = websocket.Broadcast(context.Background(), conns, msg)
	var failed *websocket.BroadcastError
	if errors.As(err, &failed) {
		h.mu.Lock()
		for _, f := range failed.Failed {
			delete(h.clients, f.Conn)
			log.Printf("drop  %s: %v", f.Conn.RemoteAddr, f.Err)
		}
		h.mu.Unlock()
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
