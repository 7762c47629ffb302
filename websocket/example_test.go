package websocket_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wsmachine/wsmachine/websocket"
)

// This example mounts a Handler on a ServeMux and shows the default origin
// policy: a client without an Origin header (any non-browser client) is
// accepted, a browser page from another site is refused.
func ExampleHandler() {
	mux := http.NewServeMux()
	mux.Handle("/ws", &websocket.Handler{
		Handle: func(conn *websocket.Conn) {
			defer conn.Close(websocket.StatusOK, "bye") // the handler owns conn: close it
			conn.SendText("hello from " + conn.ResourceName.Path)
		},
		PingInterval: 30 * time.Second, // keep proxies from dropping quiet connections
		IdleTimeout:  75 * time.Second, // and find clients that are gone
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	url := strings.Replace(srv.URL, "http", "ws", 1) + "/ws"

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		log.Fatal(err)
	}
	msg, err := c.ReceiveText(1024)
	fmt.Println(msg, err)
	code, reason := c.GetStatus() // waits for the server's close
	fmt.Println(code, reason)

	_, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{Origin: "https://evil.example"})
	var he *websocket.HandshakeError
	fmt.Println(errors.As(err, &he), resp.StatusCode) // cross-origin: 403 Forbidden
	resp.Body.Close()

	// Output:
	// hello from /ws <nil>
	// 1000 bye
	// true 403
}

// This example chooses a subprotocol in AccessOk, in the server's order of
// preference, and accepts browsers only from its own site.
func ExampleHandler_subprotocols() {
	supported := []string{"chat.v2", "chat.v1"} // best first
	h := &websocket.Handler{
		AccessOk: func(conn *websocket.Conn, protocols []string) bool {
			if conn.Origin != nil && conn.Origin.Host != "chat.example" {
				return false // another site's page: 403 Forbidden
			}
			for _, p := range supported {
				if slices.Contains(protocols, p) {
					conn.Protocol = p // must be one the client offered
					return true
				}
			}
			return false
		},
		Handle: func(conn *websocket.Conn) {
			defer conn.Close(websocket.StatusOK, "")
			conn.SendText("speaking " + conn.Protocol)
		},
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	url := strings.Replace(srv.URL, "http", "ws", 1)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	for _, offer := range [][]string{{"chat.v1", "chat.v2"}, {"chat.v1"}, {"chat.v3"}} {
		c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{
			Origin:       "https://chat.example",
			Subprotocols: offer,
		})
		if err != nil {
			fmt.Println(offer, "refused:", resp.StatusCode)
			resp.Body.Close()
			continue
		}
		msg, _ := c.ReceiveText(1024)
		fmt.Println(offer, "chose", c.Protocol, "-", msg)
		c.GetStatus() // wait for the server's close
	}

	// Output:
	// [chat.v1 chat.v2] chose chat.v2 - speaking chat.v2
	// [chat.v1] chose chat.v1 - speaking chat.v1
	// [chat.v3] refused: 403
}

// This example is an echo server that streams each message back as it
// arrives, whatever its size, without holding it in memory.
func ExampleConn_ReceiveMessage() {
	done := make(chan struct{})
	echo := func(conn *websocket.Conn) {
		defer close(done)
		defer conn.Close(websocket.StatusOK, "")
		for {
			tp, r, err := conn.ReceiveMessage()
			if err != nil {
				return // the client closed, or the connection failed
			}
			w, err := conn.SendMessage(tp) // same type as received
			if err != nil {
				return
			}
			io.Copy(w, r)
			if err := w.Close(); err != nil { // Close sends the final frame
				return
			}
		}
	}
	srv := httptest.NewServer(&websocket.Handler{Handle: echo})
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, strings.Replace(srv.URL, "http", "ws", 1), nil)
	if err != nil {
		log.Fatal(err)
	}

	w, _ := c.SendMessage(websocket.Text)
	io.WriteString(w, "hello, ") // one message, written in parts
	io.WriteString(w, "world")
	w.Close()
	c.SendBinary([]byte{1, 2, 3})

	for range 2 {
		tp, r, err := c.ReceiveMessage()
		if err != nil {
			log.Fatal(err)
		}
		b, _ := io.ReadAll(r) // read each message to its end
		fmt.Printf("%v %q\n", tp, b)
	}
	fmt.Println(c.Close(websocket.StatusOK, ""))
	<-done

	// Output:
	// Text "hello, world"
	// Binary "\x01\x02\x03"
	// <nil>
}

// This example receives text messages of at most 10 bytes: a longer one
// comes cut, with ErrTooLarge, and the connection goes on.
func ExampleConn_ReceiveText() {
	done := make(chan struct{})
	h := &websocket.Handler{Handle: func(conn *websocket.Conn) {
		defer close(done)
		for {
			msg, err := conn.ReceiveText(10)
			if errors.Is(err, websocket.ErrTooLarge) {
				fmt.Printf("too large, kept %q\n", msg)
				continue // the rest was discarded: go on with the next message
			}
			if err != nil {
				return // the client closed
			}
			fmt.Printf("got %q\n", msg)
		}
	}}
	srv := httptest.NewServer(h)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, strings.Replace(srv.URL, "http", "ws", 1), nil)
	if err != nil {
		log.Fatal(err)
	}
	c.SendText("hi")
	c.SendText("this one is much too long")
	c.SendText("bye")
	c.Close(websocket.StatusOK, "")
	<-done

	// Output:
	// got "hi"
	// too large, kept "this one i"
	// got "bye"
}

// This example dials a server, exchanges a message, closes the connection
// and reads the server's close code.
func ExampleDial() {
	h := &websocket.Handler{Handle: func(conn *websocket.Conn) {
		defer conn.Close(websocket.StatusOK, "")
		for {
			msg, err := conn.ReceiveText(1024)
			if err != nil {
				return
			}
			conn.SendText(strings.ToUpper(msg))
		}
	}}
	srv := httptest.NewServer(h)
	defer srv.Close()
	url := strings.Replace(srv.URL, "http", "ws", 1) // ws://127.0.0.1:port

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel() // ctx bounds the handshake only
	c, resp, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.StatusCode)

	if err := c.SendText("hello"); err != nil {
		log.Fatal(err)
	}
	msg, err := c.ReceiveText(1024)
	fmt.Println(msg, err)

	fmt.Println(c.Close(websocket.StatusOK, "done")) // nil: the server answered
	code, _ := c.GetStatus()
	fmt.Println(code) // the code of the server's close frame

	// Output:
	// 101
	// HELLO <nil>
	// <nil>
	// 1000
}

// This example prepares a welcome message once and sends it to every client
// that connects.
func ExampleNewPreparedMessage() {
	welcome, err := websocket.NewPreparedMessage(websocket.Text, []byte("welcome!"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(welcome.Type(), welcome.Len())

	h := &websocket.Handler{Handle: func(conn *websocket.Conn) {
		defer conn.Close(websocket.StatusOK, "")
		conn.SendPrepared(welcome) // encoded once, shared by every connection
	}}
	srv := httptest.NewServer(h)
	defer srv.Close()
	url := strings.Replace(srv.URL, "http", "ws", 1)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := range 2 {
		c, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			log.Fatal(err)
		}
		msg, err := c.ReceiveText(1024)
		fmt.Println(i, msg, err)
		c.GetStatus() // wait for the server's close
	}

	// Output:
	// Text 8
	// 0 welcome! <nil>
	// 1 welcome! <nil>
}

// This example is a chat room: every message a member sends is relayed to
// all members, itself included, with one prepared message and Broadcast.
func ExampleBroadcast() {
	var (
		mu      sync.Mutex
		members = make(map[*websocket.Conn]bool)
		joined  = make(chan struct{})
		relayed = make(chan int)
	)
	h := &websocket.Handler{Handle: func(conn *websocket.Conn) {
		mu.Lock()
		members[conn] = true
		mu.Unlock()
		joined <- struct{}{}
		defer func() {
			mu.Lock()
			delete(members, conn)
			mu.Unlock()
			conn.Close(websocket.StatusOK, "")
		}()
		for {
			msg, err := conn.ReceiveText(1024)
			if err != nil {
				return
			}
			pm, err := websocket.NewPreparedMessage(websocket.Text, []byte(msg))
			if err != nil {
				return
			}
			mu.Lock()
			room := slices.Collect(maps.Keys(members)) // send outside the lock
			mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			sent, err := websocket.Broadcast(ctx, room, pm)
			cancel()
			var be *websocket.BroadcastError
			if errors.As(err, &be) {
				for _, f := range be.Failed {
					f.Conn.Close(websocket.StatusGoingAway, "") // drop the members it did not reach
				}
			}
			relayed <- sent
		}
	}}
	srv := httptest.NewServer(h)
	defer srv.Close()
	url := strings.Replace(srv.URL, "http", "ws", 1)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	clients := make([]*websocket.Conn, 3)
	for i := range clients {
		c, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			log.Fatal(err)
		}
		defer c.Close(websocket.StatusOK, "")
		clients[i] = c
		<-joined
	}

	clients[0].SendText("hello, everyone")
	fmt.Println("sent to", <-relayed)
	for i, c := range clients {
		msg, err := c.ReceiveText(1024)
		fmt.Printf("client %d got %q %v\n", i, msg, err)
	}

	// Output:
	// sent to 3
	// client 0 got "hello, everyone" <nil>
	// client 1 got "hello, everyone" <nil>
	// client 2 got "hello, everyone" <nil>
}

// This example waits for a message for a limited time. The wait ends with an
// error wrapping the context's, and the connection goes on: the next
// receive gets the next message whole.
func ExampleConn_ReceiveTextContext() {
	send := make(chan struct{})
	h := &websocket.Handler{Handle: func(conn *websocket.Conn) {
		defer conn.Close(websocket.StatusOK, "")
		<-send
		conn.SendText("late news")
	}}
	srv := httptest.NewServer(h)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, strings.Replace(srv.URL, "http", "ws", 1), nil)
	if err != nil {
		log.Fatal(err)
	}

	waitCtx, waitCancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer waitCancel()
	_, err = c.ReceiveTextContext(waitCtx, 1024) // nothing comes in time
	fmt.Println(errors.Is(err, context.DeadlineExceeded))

	close(send)
	msg, err := c.ReceiveText(1024)
	fmt.Println(msg, err)
	c.GetStatus() // wait for the server's close

	// Output:
	// true
	// late news <nil>
}

// This example measures the round-trip time to a client. The client's
// library answers the ping by itself: it needs no receive loop.
func ExampleConn_Ping() {
	h := &websocket.Handler{Handle: func(conn *websocket.Conn) {
		defer conn.Close(websocket.StatusOK, "")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rtt, err := conn.Ping(ctx)
		fmt.Println("pong:", err == nil && rtt > 0) // rtt varies: do not print it here
		fmt.Println("stats:", conn.Stats().RoundTrip > 0)
	}}
	srv := httptest.NewServer(h)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, strings.Replace(srv.URL, "http", "ws", 1), nil)
	if err != nil {
		log.Fatal(err)
	}
	code, _ := c.GetStatus() // the client only waits for the server's close
	fmt.Println("closed:", code)

	// Output:
	// pong: true
	// stats: true
	// closed: 1000
}
