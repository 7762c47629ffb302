package websocket

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
)

// broadcastWorkers bounds the goroutines of one Broadcast: enough that a
// few connections that do not read hold up only their own sends, few
// enough that a broadcast costs little besides its writes.
const broadcastWorkers = 16

// Broadcast sends msg to every connection in conns and returns how many
// got it. Sends run on a few goroutines (at most 16, the caller's
// among them), each taking the next connection as it finishes one, so
// a connection that does not read holds up one of them, for at most its
// write timeout (Handler.WriteTimeout), while the others go on. A
// connection busy with another message is sent to once that message is
// out. Each send is [Conn.SendPreparedContext] with ctx: once ctx ends,
// the connections not yet sent to are not, and one whose frame it cuts is
// dropped.
//
// If some connections did not get the message, the error is a
// *BroadcastError that lists them with their errors, so that the caller
// can drop them; nil entries in conns are skipped and not counted.
func Broadcast(ctx context.Context, conns []*Conn, msg *PreparedMessage) (sent int, err error) {
	workers := min(len(conns), broadcastWorkers)
	if workers == 0 {
		return 0, nil
	}
	var (
		next   atomic.Int64 // the next connection no worker has taken
		count  atomic.Int64
		mu     sync.Mutex
		failed []ConnError
		wg     sync.WaitGroup
	)
	work := func() {
		var mine []ConnError
		reached := 0
		for {
			i := int(next.Add(1) - 1)
			if i >= len(conns) {
				break
			}
			c := conns[i]
			if c == nil {
				continue
			}
			if err := c.sendPrepared(ctx, msg); err != nil {
				mine = append(mine, ConnError{Conn: c, Err: err})
				continue
			}
			reached++
		}
		count.Add(int64(reached)) // once: the counter is shared between cores
		if mine != nil {
			mu.Lock()
			failed = append(failed, mine...)
			mu.Unlock()
		}
	}
	wg.Add(workers - 1)
	for range workers - 1 {
		go func() {
			defer wg.Done()
			work()
		}()
	}
	work()
	wg.Wait()
	if failed != nil {
		return int(count.Load()), &BroadcastError{Failed: failed}
	}
	return int(count.Load()), nil
}

// BroadcastError is the error of a Broadcast that did not reach every
// connection.
type BroadcastError struct {
	Failed []ConnError // in no particular order
}

// ConnError is a connection's error in a [BroadcastError].
type ConnError struct {
	Conn *Conn
	Err  error
}

// Error says how many connections failed, with the first few of them.
func (e *BroadcastError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "websocket: broadcast failed for %d connection(s)", len(e.Failed))
	for i, f := range e.Failed {
		if i == 3 {
			fmt.Fprintf(&b, "; …")
			break
		}
		fmt.Fprintf(&b, "; %s: %v", f.Conn.RemoteAddr, f.Err)
	}
	return b.String()
}

// Unwrap returns the connections' errors, for errors.Is and errors.As.
func (e *BroadcastError) Unwrap() []error {
	errs := make([]error, len(e.Failed))
	for i, f := range e.Failed {
		errs[i] = f.Err
	}
	return errs
}
