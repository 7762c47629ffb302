package websocket

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// Reads and writes on the socket itself, through syscall.RawConn, which
// keeps the descriptor from being closed under us and waits on the
// runtime's poller. Two reasons:
//
//   - A read takes a pooled buffer only when the socket has bytes; while
//     the poller waits, the connection holds none.
//   - A write that does not block needs no deadline: the write timeout is
//     set only when the socket is full and the write must wait. Setting a
//     deadline on every write costs a timer update each time, and, called
//     from deep inside a send, grows the goroutine's stack past its first
//     2 KiB, which an idle connection then keeps.
//
// The system calls themselves are raw (no scheduler hand-off): the socket
// is non-blocking, so they return at once.

// rawIO holds the socket and the state of its raw reads and writes.
type rawIO struct {
	conn     syscall.RawConn
	fill     func(fd uintptr) bool // c.fillFromFD, made once
	flush    func(fd uintptr) bool // c.flushToFD, made once
	n        int                   // what fillFromFD read (readMu)
	readErr  error                 // fillFromFD's error (readMu)
	writeErr error                 // flushToFD's error (wmu)
	iov      [2]syscall.Iovec      // what flushToFD writes
	written  int                   // what it wrote of them
	deadline bool                  // flushToFD set a write deadline to wait
	queued   int                   // bytes the socket held unsent when flushToFD began to wait
	// unread: the last read filled the buffer, so the socket may hold
	// more (see discardArrived).
	unread atomic.Bool
}

// useRawIO switches the connection to raw reads and writes if its
// network connection is a TCP or Unix socket itself: a wrapper, even one
// that has SyscallConn, may do something of its own in Read and Write
// (count, buffer, encrypt), which must not be bypassed.
func (c *Conn) useRawIO() {
	var sc syscall.Conn
	switch nc := c.nc.(type) {
	case *net.TCPConn:
		sc = nc
	case *net.UnixConn:
		sc = nc
	default:
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	c.raw = &rawIO{conn: raw, fill: c.fillFromFD, flush: c.flushToFD}
}

// fillRaw reads into the buffer once the socket has bytes.
func (c *Conn) fillRaw() (int, error) {
	if err := c.raw.conn.Read(c.raw.fill); err != nil {
		return 0, err
	}
	return c.raw.n, c.raw.readErr
}

// fillFromFD is fillRaw's read, called by the poller until it returns
// true: it takes a buffer only to read, and gives it back when the socket
// has nothing yet, before the poller waits.
func (c *Conn) fillFromFD(fd uintptr) bool {
	if c.in.buf == nil {
		c.in.buf = readBuffers.Get().(*[]byte)
	}
	b := (*c.in.buf)[c.in.w:]
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			if c.buffered() == 0 {
				c.releaseInbuf()
			}
			return false
		case 0:
			c.raw.n, c.raw.readErr = int(n), nil
			c.raw.unread.Store(int(n) == len(b))
			if n == 0 {
				c.raw.readErr = io.EOF
			}
		default:
			c.raw.n, c.raw.readErr = 0, c.netError("read", e)
		}
		return true
	}
}

// discardArrived reads and discards what the socket holds, up to
// lingerMax bytes, without waiting for more. Unless always, it trusts the
// last read: if that left the socket empty there is nothing to do, as
// after a clean closing handshake, when a client sends nothing after its
// close frame and its FIN does not turn our close into a reset.
func (c *Conn) discardArrived(always bool) {
	if !always && !c.raw.unread.Load() {
		return
	}
	buf := readBuffers.Get().(*[]byte)
	c.raw.conn.Control(func(fd uintptr) {
		for total := 0; total < lingerMax; {
			n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&(*buf)[0])), uintptr(len(*buf)))
			if e == syscall.EINTR {
				continue
			}
			if e != 0 || n == 0 {
				return
			}
			total += int(n)
		}
	})
	readBuffers.Put(buf)
}

// writeRaw writes a and then b in as few system calls as the socket
// allows: writev for two pieces.
func (c *Conn) writeRaw(a, b []byte) (int, error) {
	r := c.raw
	r.iov[0], r.iov[1] = iovec(a), iovec(b)
	r.written = 0
	r.writeErr = nil
	err := r.conn.Write(r.flush)
	for err != nil && c.drainedWhileWaiting(err) {
		err = r.conn.Write(r.flush)
	}
	if err == nil {
		err = r.writeErr
	}
	if r.deadline {
		c.clearWriteDeadline()
	}
	r.iov = [2]syscall.Iovec{} // keeps nothing of the caller's
	return r.written, err
}

// iovec describes p for writev.
func iovec(p []byte) (v syscall.Iovec) {
	if len(p) > 0 {
		v.Base = &p[0]
		v.SetLen(len(p))
	}
	return v
}

// setWriteDeadlineToWait sets the deadline of a write that must wait for
// room in the socket: the write timeout from now, or Close's deadline for
// our close frame if that is earlier.
func (c *Conn) setWriteDeadlineToWait() {
	c.raw.deadline = true
	c.setWriteDeadline(c.writeTimeoutFrom(time.Now()))
}

// clearWriteDeadline undoes setWriteDeadlineToWait once the write is
// done: no deadline, or Close's.
func (c *Conn) clearWriteDeadline() {
	c.raw.deadline = false
	c.setWriteDeadline(time.Time{})
}

// flushToFD is writeRaw's write, called by the poller until it returns
// true. When the socket is full it sets the write deadline before the
// poller waits. Every wait starts the timeout again, so a client that
// takes bytes now and then is not cut off.
func (c *Conn) flushToFD(fd uintptr) bool {
	r := c.raw
	for {
		if r.iov[0].Len == 0 {
			r.iov[0], r.iov[1] = r.iov[1], syscall.Iovec{}
		}
		if r.iov[0].Len == 0 {
			return true
		}
		// One piece (a whole frame, a prepared message) is a write: the
		// kernel need not copy in and check an iovec array.
		var n uintptr
		var e syscall.Errno
		if r.iov[1].Len == 0 {
			n, _, e = syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(r.iov[0].Base)), uintptr(r.iov[0].Len))
		} else {
			n, _, e = syscall.RawSyscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&r.iov[0])), 2)
		}
		switch e {
		case 0:
			r.written += int(n)
			for i := range r.iov { // past what was written
				left := uint64(r.iov[i].Len)
				step := min(uint64(n), left)
				n -= uintptr(step)
				if step == left {
					r.iov[i] = syscall.Iovec{}
				} else {
					r.iov[i].Base = (*byte)(unsafe.Add(unsafe.Pointer(r.iov[i].Base), step))
					r.iov[i].SetLen(int(left - step))
				}
			}
		case syscall.EINTR:
		case syscall.EAGAIN:
			r.queued = unsentBytes(fd)
			c.setWriteDeadlineToWait()
			return false
		default:
			r.writeErr = c.netError("write", e)
			return true
		}
	}
}

// drainedWhileWaiting reports whether a write that failed with err timed
// out although the peer took bytes meanwhile, and if so sets the deadline
// for the next wait. The poller wakes a writer only once a good part of
// the socket's send buffer (megabytes on a fast link) is free again, so a
// peer that reads steadily but slowly can let a whole write timeout pass
// between wake-ups; the timeout is for a peer that takes nothing.
// Close's deadline for our close frame is never extended.
func (c *Conn) drainedWhileWaiting(err error) bool {
	r := c.raw
	if !errors.Is(err, os.ErrDeadlineExceeded) || r.queued <= 0 {
		return false
	}
	if by := c.closeBy.Load(); by != 0 && time.Now().UnixNano() >= by || c.writeInterrupted() {
		return false
	}
	queued := -1
	if r.conn.Control(func(fd uintptr) { queued = unsentBytes(fd) }) != nil || queued < 0 || queued >= r.queued {
		return false
	}
	r.queued = queued
	c.setWriteDeadlineToWait()
	return true
}

// unsentBytes is how many bytes the socket holds that the peer has not
// yet acknowledged (SIOCOUTQ), or -1 if that cannot be told.
func unsentBytes(fd uintptr) int {
	var n int32
	if _, _, e := syscall.RawSyscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&n))); e != 0 {
		return -1
	}
	return int(n)
}

// netError is err as the net package reports a failed read or write.
func (c *Conn) netError(op string, err error) error {
	return &net.OpError{Op: op, Net: c.nc.LocalAddr().Network(), Source: c.nc.LocalAddr(),
		Addr: c.nc.RemoteAddr(), Err: os.NewSyscallError(op, err)}
}
