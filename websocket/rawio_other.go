//go:build !linux

package websocket

// Outside Linux, reads and writes go through net.Conn (see
// rawio_linux.go for what Linux gets instead).

type rawIO struct{}

func (c *Conn) useRawIO()                         {}
func (c *Conn) fillRaw() (int, error)             { panic("unreachable") }
func (c *Conn) writeRaw(a, b []byte) (int, error) { panic("unreachable") }
func (c *Conn) discardArrived(bool)               { panic("unreachable") }
