package websocket

import "github.com/wsmachine/wsmachine/websocket/internal/core"

// The Conn's questions to its protocol (internal/core), each under c.mu.
// The state itself is the core's: this package cannot read or write it.

// currentState is the protocol's state, for tests and errors.
func (c *Conn) currentState() core.State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.p.Current()
}

// recvData steps RecvData under c.mu, with Step called here, not through
// Protocol.RecvData, so that the reader's stack is a frame less deep.
// Never inlined, as stepErr.
//
//go:noinline
func (c *Conn) recvData() core.DataVerdict {
	c.mu.Lock()
	v := core.VerdictOf(c.p.Step(core.EvRecvData, 0, ""))
	c.mu.Unlock()
	return v
}

// endErr is the protocol's EndErr under c.mu.
func (c *Conn) endErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.p.EndErr()
}

// closeResult is the protocol's CloseResult under c.mu.
func (c *Conn) closeResult() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.p.CloseResult()
}

// isOpen is the protocol's Open under c.mu.
func (c *Conn) isOpen() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.p.Open()
}
