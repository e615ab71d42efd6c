package queue

import (
	"bytes"
	"net"
	"sync"
	"time"
)

// coalescingConn batches small writes into fewer, larger TCP writes. The AMQP client flushes
// after every message; with publisher confirms many messages are in flight, and a syscall and a
// TCP segment per message cost the client and the broker more CPU than the messages themselves.
// A write waits at most flushDelay, far below any AMQP timeout or heartbeat.
type coalescingConn struct {
	net.Conn
	mu        sync.Mutex
	buf       bytes.Buffer
	err       error
	kick      chan struct{}
	closed    chan struct{}
	closeOnce sync.Once
}

const (
	flushDelay     = 500 * time.Microsecond
	flushThreshold = 128 * 1024
)

func newCoalescingConn(c net.Conn) *coalescingConn {
	cc := &coalescingConn{Conn: c, kick: make(chan struct{}, 1), closed: make(chan struct{})}
	go cc.flusher()
	return cc
}

func (c *coalescingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	c.buf.Write(p)
	if c.buf.Len() >= flushThreshold {
		return len(p), c.flushLocked()
	}
	select {
	case c.kick <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (c *coalescingConn) flushLocked() error {
	if c.buf.Len() == 0 || c.err != nil {
		return c.err
	}
	_, err := c.Conn.Write(c.buf.Bytes())
	c.buf.Reset()
	c.err = err
	return err
}

func (c *coalescingConn) flusher() {
	for {
		select {
		case <-c.closed:
			return
		case <-c.kick:
		}
		time.Sleep(flushDelay)
		c.mu.Lock()
		c.flushLocked()
		c.mu.Unlock()
	}
}

func (c *coalescingConn) Close() error {
	c.mu.Lock()
	c.flushLocked()
	c.mu.Unlock()
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}
