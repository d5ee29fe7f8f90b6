package imapsrc

import (
	"context"
	"fmt"
	"sync"
)

// ServerLimit caps the number of connections open to one server by all
// the Sources that share it, such as every mailbox of a batch on one
// provider (Gmail allows 15 connections per account, many servers a few
// per user or per client address).
//
// A connection holds a slot from the moment it is dialled until it is
// closed. A connection resting idle in a Source's pool gives its slot up
// to a Source that waits for one: it is closed (the oldest idle one
// first), so that finished or paused mailboxes never starve the others.
// Waiting for a slot honours the caller's context.
//
// A ServerLimit is safe for concurrent use.
type ServerLimit struct {
	mu   sync.Mutex
	max  int
	open int
	idle []*pconn      // connections idle in some Source's pool, oldest first
	wake chan struct{} // closed (and replaced) when a slot is freed
}

// NewServerLimit returns a limit of maxConnections connections open at
// once (at least 1).
func NewServerLimit(maxConnections int) *ServerLimit {
	return &ServerLimit{max: max(maxConnections, 1), wake: make(chan struct{})}
}

// Limit returns the number of connections allowed at once.
func (l *ServerLimit) Limit() int { return l.max }

// Open returns the number of connections open under the limit now.
func (l *ServerLimit) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// acquire takes a slot for a new connection, closing an idle one if that
// is the only way, or waits for one until ctx is done.
func (l *ServerLimit) acquire(ctx context.Context) error {
	for {
		l.mu.Lock()
		if l.open < l.max {
			l.open++
			l.mu.Unlock()
			return nil
		}
		if len(l.idle) > 0 {
			pc := l.idle[0]
			l.idle = l.idle[1:]
			l.mu.Unlock()
			// Its slot passes to the caller: open stays the same.
			pc.evict()
			return nil
		}
		wake := l.wake
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			return fmt.Errorf("imapsrc: waiting for a connection slot (%d in use): %w", l.max, ctx.Err())
		case <-wake:
		}
	}
}

// release frees a slot.
func (l *ServerLimit) release() {
	l.mu.Lock()
	l.open--
	close(l.wake)
	l.wake = make(chan struct{})
	l.mu.Unlock()
}

// park offers pc's slot to waiters while pc is idle.
func (l *ServerLimit) park(pc *pconn) {
	l.mu.Lock()
	l.idle = append(l.idle, pc)
	// Someone may be waiting already: let it take the idle connection.
	close(l.wake)
	l.wake = make(chan struct{})
	l.mu.Unlock()
}

// unpark takes pc back from the idle list. It returns false if pc was
// evicted meanwhile (its slot given away; the connection is closed).
func (l *ServerLimit) unpark(pc *pconn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, p := range l.idle {
		if p == pc {
			l.idle = append(l.idle[:i], l.idle[i+1:]...)
			return true
		}
	}
	return false
}
