package websocket

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// broadcastWorkers bounds the goroutines of one Broadcast: as many
	// connections as that may hold it up at once before it waits.
	broadcastWorkers = 16

	// broadcastStall is how long a Broadcast lets its workers go without
	// finishing a send before it starts another: a send that does not
	// wait takes microseconds.
	broadcastStall = time.Millisecond
)

// Broadcast sends msg to every connection in conns and returns how many
// got it. The calling goroutine sends, one connection after another: a
// send that does not have to wait costs a write and no more. Whenever a
// millisecond passes without a send finishing (a connection that does not
// read, whose socket is full; one busy with a message of its own),
// another goroutine joins in and goes on with the next connections, up
// to 16 of them, so that a connection that does not read holds up only
// the goroutine sending to it, for at most its write timeout
// (Handler.WriteTimeout). Each send is [Conn.SendPreparedContext] with
// ctx: once ctx ends, the connections not yet sent to are not, and one
// whose frame it cuts is dropped.
//
// If some connections did not get the message, the error is a
// *BroadcastError that lists them with their errors, so that the caller
// can drop them; nil entries in conns are skipped and not counted.
func Broadcast(ctx context.Context, conns []*Conn, msg *PreparedMessage) (sent int, err error) {
	if len(conns) == 0 {
		return 0, nil
	}
	b := &broadcast{ctx: ctx, conns: conns, msg: msg, workers: 1}
	b.mu.Lock() // watch may run before AfterFunc returns: it waits for watchdog
	b.watchdog = time.AfterFunc(broadcastStall, b.watch)
	b.mu.Unlock()
	b.work()
	b.mu.Lock()
	b.stopped = true // no worker joins in any more
	b.mu.Unlock()
	b.watchdog.Stop()
	b.wg.Wait()
	if b.failed != nil {
		return int(b.sent.Load()), &BroadcastError{Failed: b.failed}
	}
	return int(b.sent.Load()), nil
}

// broadcast is one Broadcast in progress.
type broadcast struct {
	ctx   context.Context
	conns []*Conn
	msg   *PreparedMessage

	next     atomic.Int64 // the next connection no worker has taken
	finished atomic.Int64 // sends finished, well or not
	sent     atomic.Int64 // sends that succeeded

	wg sync.WaitGroup // the workers but the caller

	mu       sync.Mutex
	watchdog *time.Timer
	stopped  bool  // the caller has finished: no worker joins in
	workers  int   // how many have joined in, the caller included
	progress int64 // finished when the watchdog last looked
	failed   []ConnError
}

// work sends to the connections no worker has taken, one at a time.
func (b *broadcast) work() {
	var failed []ConnError
	sent := int64(0)
	for {
		i := b.next.Add(1) - 1
		if i >= int64(len(b.conns)) {
			break
		}
		if c := b.conns[i]; c != nil {
			if err := c.sendPrepared(b.ctx, b.msg); err != nil {
				failed = append(failed, ConnError{Conn: c, Err: err})
			} else {
				sent++
			}
		}
		b.finished.Add(1)
	}
	b.sent.Add(sent) // once: the counters are shared between cores
	if failed != nil {
		b.mu.Lock()
		b.failed = append(b.failed, failed...)
		b.mu.Unlock()
	}
}

// watch runs every broadcastStall while the broadcast does: if no send
// has finished meanwhile and connections are left, another worker joins
// in.
func (b *broadcast) watch() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped {
		return
	}
	progress := b.finished.Load()
	if progress == b.progress && b.workers < broadcastWorkers && b.next.Load() < int64(len(b.conns)) {
		b.workers++
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			b.work()
		}()
	}
	b.progress = progress
	b.watchdog.Reset(broadcastStall)
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
