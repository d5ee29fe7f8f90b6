package imapsrc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailferry/mailferry/migrate"
)

var _ migrate.Source = (*Source)(nil)

// Source reads one IMAP mailbox. It implements migrate.Source.
//
// Its operations (Folders, List, Fetch) are serialized: a call waits for
// the one in progress. Close and Reconnects may be called from any
// goroutine at any time; Close interrupts an operation in progress.
type Source struct {
	opts Options

	op sync.Mutex // serializes operations

	mu     sync.Mutex // guards the fields below
	client *imapclient.Client
	raw    map[*imapclient.Client]net.Conn // each client's socket
	closed bool
	caps   *serverInfo // learned once per connection

	reconnects atomic.Int64
}

// New returns a Source for the mailbox described by opts. It does not
// connect: the connection is opened by the first operation.
func New(opts *Options) *Source {
	return &Source{opts: opts.withDefaults(), raw: map[*imapclient.Client]net.Conn{}}
}

// Close logs out (best effort) and closes the connection. Later
// operations fail.
func (s *Source) Close() error {
	s.mu.Lock()
	c := s.client
	s.client = nil
	s.closed = true
	raw := s.raw[c]
	delete(s.raw, c)
	s.mu.Unlock()
	if c == nil {
		return nil
	}
	if !s.op.TryLock() {
		// An operation is in progress: interrupt it; it cleans up.
		raw.Close()
		return nil
	}
	defer s.op.Unlock()
	// LOGOUT politely, but do not wait on a server that does not answer.
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Logout().Wait()
	}()
	select {
	case <-done:
	case <-c.Closed():
	}
	if err := c.Close(); err != nil && !isClosedErr(err) {
		return fmt.Errorf("imapsrc: close: %w", err)
	}
	return nil
}

// Reconnects returns how many times the Source has reopened a connection
// that dropped in the middle of an operation.
func (s *Source) Reconnects() int { return int(s.reconnects.Load()) }

// String describes the Source for logs: the user and the server, never
// the password.
func (s *Source) String() string {
	return fmt.Sprintf("imapsrc(%s@%s)", s.user(), s.opts.Addr)
}

// user is the mailbox's user for messages and logs.
func (s *Source) user() string {
	if s.opts.AuthzID != "" {
		return s.opts.AuthzID
	}
	return s.opts.Username
}

// do runs op on a live connection. When the connection drops during op, it
// reconnects and runs op again; op must resume where it stopped (List and
// Fetch keep their progress in variables op captures). progress reports how
// many items op has completed so far; reconnecting is given up after
// MaxReconnects attempts in a row that completed nothing.
func (s *Source) do(ctx context.Context, what string, progress func() int, op func(c *imapclient.Client, info *serverInfo) error) error {
	s.op.Lock()
	defer s.op.Unlock()
	failures := 0
	last := -1
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		c, info, err := s.conn(ctx, failures > 0)
		if err != nil {
			if isTransient(err) && ctx.Err() == nil && failures < MaxReconnects {
				failures++
				s.opts.Logger.Warn("imapsrc: connect failed, retrying", "source", s.String(), "op", what, "attempt", failures, "err", err)
				if err := sleep(ctx, backoff(failures)); err != nil {
					return err
				}
				continue
			}
			return err
		}
		s.mu.Lock()
		raw := s.raw[c]
		s.mu.Unlock()
		stop := context.AfterFunc(ctx, func() { raw.Close() })
		err = op(c, info)
		stop()
		if err == nil {
			return nil
		}
		var cbErr *callbackError
		if errors.As(err, &cbErr) {
			return cbErr // the caller's own error: never retried
		}
		if ctx.Err() != nil {
			s.drop(c)
			return ctx.Err()
		}
		if !connDead(c, err) {
			return err
		}
		s.drop(c)
		if p := progress(); p != last {
			last = p
			failures = 0
		}
		if failures >= MaxReconnects {
			return migrate.TransientError(fmt.Errorf("imapsrc: %s: connection lost %d times in a row: %w", what, failures+1, err))
		}
		failures++
		s.reconnects.Add(1)
		s.opts.Logger.Warn("imapsrc: connection lost, reconnecting", "source", s.String(), "op", what, "attempt", failures, "err", err)
		if err := sleep(ctx, backoff(failures)); err != nil {
			return err
		}
	}
}

// callbackError carries an error returned by the caller's callback through
// do, which returns it without retrying.
type callbackError struct{ err error }

func (e *callbackError) Error() string { return e.err.Error() }
func (e *callbackError) Unwrap() error { return e.err }

// unwrapCallback returns the callback's own error unchanged, or err with
// the package prefix.
func unwrapCallback(what string, err error) error {
	var cbErr *callbackError
	if errors.As(err, &cbErr) {
		return cbErr.err
	}
	return wrapErr(what, err)
}
