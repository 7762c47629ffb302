package websocket

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// Ping returns the round-trip time once the pong with its payload comes,
// though nobody receives on either end (the background readers take the
// ping and the pong in); concurrent Pings each get their own pong, and
// the last round trip is in the statistics.
//
// Rows: O17, O2, O5.
func TestPingMeasuresTheRoundTrip(t *testing.T) {
	conns := make(chan *Conn, 1)
	release := make(chan struct{})
	defer close(release)
	addr := serve(t, func(c *Conn) {
		conns <- c
		<-release
		c.Close(StatusOK, "")
	})
	client, _, err := Dial(context.Background(), "ws://"+addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close(StatusOK, "")
	server := <-conns
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, c := range []*Conn{server, client} { // either end pings
		var wg sync.WaitGroup
		errs := make(chan error, 5)
		for range 5 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rtt, err := c.Ping(ctx)
				if err == nil && rtt <= 0 {
					err = errors.New("no round-trip time")
				}
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if st := c.Stats(); st.RoundTrip <= 0 || st.PingsSent != 5 || st.PongsReceived != 5 {
			t.Fatalf("stats after 5 Pings: %+v", st)
		}
	}
}

// A Ping whose pong does not come returns its context's error when the
// context ends (O16), and the connection goes on; once the connection is
// closing, a waiting Ping's context end gives ErrConnClosed (K16), and a
// new Ping too (K17); from AccessOk, before the connection is open,
// ErrConnClosed (C7); once ended, ErrConnClosed (T3).
//
// Rows: O16, O17, K16, K17, C7, T3.
func TestPingWithoutPong(t *testing.T) {
	results := make(chan error, 8)
	h := &Handler{
		AccessOk: func(c *Conn, _ []string) bool {
			_, err := c.Ping(context.Background())
			results <- err
			return true
		},
		CloseTimeout: 500 * time.Millisecond,
		Handle: func(c *Conn) {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			_, err := c.Ping(ctx) // the raw client does not answer
			cancel()
			results <- err
			results <- c.SendText("still open")
			ctx, cancel = context.WithCancel(context.Background())
			pinged := make(chan error, 1)
			go func() {
				_, err := c.Ping(ctx)
				pinged <- err
			}()
			time.Sleep(20 * time.Millisecond)
			go c.Close(StatusOK, "") // closing: the raw client never answers
			time.Sleep(20 * time.Millisecond)
			cancel()
			results <- <-pinged
			_, err = c.Ping(context.Background())
			results <- err
			c.GetStatus()
			_, err = c.Ping(context.Background())
			results <- err
		},
	}
	addr := serveWith(t, h)
	nc, _ := dialUpgraded(t, addr)
	defer nc.Close()
	want := []func(error) bool{
		func(err error) bool { return err == ErrConnClosed }, // C7
		func(err error) bool {
			return errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrConnClosed)
		}, // O16
		func(err error) bool { return err == nil },           // still open
		func(err error) bool { return err == ErrConnClosed }, // K16
		func(err error) bool { return err == ErrConnClosed }, // K17
		func(err error) bool { return err == ErrConnClosed }, // T3
	}
	for i, ok := range want {
		select {
		case err := <-results:
			if !ok(err) {
				t.Fatalf("result %d: %v", i, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("result %d never came", i)
		}
	}
}
