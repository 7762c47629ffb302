// Package websocket is an RFC 6455 WebSocket server whose connection
// lifecycle is an explicit state machine.
//
// A server mounts a [Handler] on an http.ServeMux; every client that
// completes the opening handshake gets its own [Conn], passed to
// [Handler.Handle], which runs on a goroutine of its own:
//
//	func echo(conn *websocket.Conn) {
//		defer conn.Close(websocket.StatusOK, "")
//		for {
//			tp, r, err := conn.ReceiveMessage()
//			if err != nil {
//				return
//			}
//			w, err := conn.SendMessage(tp)
//			if err != nil {
//				return
//			}
//			io.Copy(w, r)
//			w.Close()
//		}
//	}
//
//	http.Handle("/ws", &websocket.Handler{Handle: echo})
//
// # Lifecycle
//
// A connection is open, closing (the server sent its close frame and waits
// for the client's), closed (both close frames were exchanged) or dropped
// (it ended without the client's close frame: TCP went away, the client
// broke the protocol, or the close handshake timed out). STATE_MACHINE.md in
// the repository is the full transition table; internal/core/state.go
// implements it.
//
// The Conn stays usable after Handle returns: it may be handed to other
// goroutines. Whoever owns it last must call [Conn.Close] (or see the
// client close it), otherwise the TCP connection stays open.
//
// # Concurrency
//
// All methods of Conn are safe for concurrent use. Any number of goroutines
// may send at once; messages never interleave on the wire, and a writer
// returned by [Conn.SendMessage] holds the send side until it is closed.
// Receives are serialised: a message reader is valid until the next
// receive call.
//
// Control frames are handled inside the library: pings are answered with
// pongs, pongs are ignored, the client's close frame is answered. While the
// handler neither receives nor has an unread message pending, the library
// keeps reading in the background, so a handler that only sends learns of
// the client's close (its next send returns [ErrConnClosed]) and pings are
// answered.
//
// # Origin policy
//
// With a nil [Handler.AccessOk], a browser request from another origin (an
// Origin header whose host differs from the request's Host) is refused with
// 403 Forbidden, which prevents cross-site WebSocket hijacking. To allow
// other origins, set AccessOk and check conn.Origin there.
package websocket
