package fuzz

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/wsmachine/wsmachine/model"
	"github.com/wsmachine/wsmachine/websocket"
)

// FuzzClient feeds arbitrary bytes to a client Conn from Dial as the
// server's stream, cut into writes where cuts say, while the client
// receives message after message, without compression (a compressed
// message can fail before its last frame, where the model judges it: see
// STATE_MACHINE.md; TestClientAgreesWithModel sends compressed messages
// to a client the way that is deterministic). The client
// must do what model.NewClient() does (masking its frames, refusing
// masked frames, echoing 1010, waiting for the server's FIN after the closing
// handshake), and allocate no more than FuzzFrameReader's bound.
// Rows: every row the server's bytes reach at a client, checked against the
// model.
func FuzzClient(f *testing.F) {
	f.Fuzz(func(t *testing.T, stream, cuts []byte) {
		inputSize := len(stream) + len(cuts)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)

		s := newClientSession(t, websocket.CompressionOff)
		s.keepReceiving()
		splits := make([]uint16, len(cuts))
		for i, c := range cuts {
			splits[i] = uint16(c)
		}
		s.sendSplit(stream, splits, s.keepReceiving)
		s.clientEOF()
		s.finish()

		runtime.ReadMemStats(&after)
		if got, limit := after.TotalAlloc-before.TotalAlloc, allocLimit(inputSize); got > limit {
			t.Fatalf("%d bytes allocated for %d bytes of input (limit %d)", got, inputSize, limit)
		}
	})
}

// clientListener is where the client sessions of this process dial: one
// at a time, so that what is accepted is the connection just dialed.
var clientListener struct {
	once sync.Once
	ln   net.Listener
}

// dialAnswer is what the test, as the server, answers each offer.
var dialAnswer = map[websocket.CompressionMode]string{
	websocket.CompressionNoContextTakeover: "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
	websocket.CompressionContextTakeover:   "permessage-deflate",
}

// newClientSession dials a client Conn with compression mode and answers
// its handshake as the server; the session's nc is the server's end.
func newClientSession(t fataler, mode websocket.CompressionMode) *session {
	t.Helper()
	clientListener.once.Do(func() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		clientListener.ln = ln
	})
	ln := clientListener.ln
	type dialed struct {
		c   *websocket.Conn
		err error
	}
	done := make(chan dialed, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
		defer cancel()
		c, _, err := websocket.Dial(ctx, "ws://"+ln.Addr().String()+"/", &websocket.DialOptions{Compression: mode,
			CompressionThreshold: 8, MaxMessageSize: maxMessageSize, CloseTimeout: closeTimeout})
		done <- dialed{c, err}
	}()
	nc, err := ln.Accept()
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	nc.SetDeadline(time.Now().Add(time.Minute))
	br := bufio.NewReader(nc)
	req, err := http.ReadRequest(br)
	if err != nil {
		nc.Close()
		t.Fatalf("reading the client's request: %v", err)
	}
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		acceptFor(req.Header.Get("Sec-WebSocket-Key")) + "\r\n"
	var answer []string
	if a := dialAnswer[mode]; a != "" {
		answer = []string{a}
		resp += "Sec-WebSocket-Extensions: " + a + "\r\n"
	}
	io.WriteString(nc, resp+"\r\n")
	d := <-done
	if d.err != nil {
		nc.Close()
		t.Fatalf("Dial: %v", d.err)
	}
	deflate, ok := model.AcceptAnswer(model.Compression(mode), answer, 8)
	if !ok {
		nc.Close()
		d.c.Close(websocket.StatusOK, "")
		t.Fatalf("the model refuses %q, Dial accepted it", answer)
	}
	s := &session{t: t, m: model.NewClient(), c: d.c, nc: nc.(*net.TCPConn), br: br,
		results: make(chan callResult, 16), ended: make(chan struct{}), client: true}
	s.m.MaxMessageSize = maxMessageSize
	s.m.Deflate = deflate
	go func() {
		s.status, s.reason = s.c.GetStatus()
		close(s.ended)
	}()
	s.m.Step(model.Input{Kind: model.Handshake})
	return s
}
