package imapsrc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailferry/mailferry/internal/backoff"
	"github.com/mailferry/mailferry/migrate"
)

var (
	_ migrate.Source       = (*Source)(nil)
	_ migrate.ChangeLister = (*Source)(nil)
	_ migrate.UIDLister    = (*Source)(nil)
)

// Source reads one IMAP mailbox. It implements migrate.Source,
// migrate.ChangeLister and migrate.UIDLister.
//
// A Source is safe for concurrent use. It runs up to
// Options.MaxConnections operations (Folders, List, ListChanges, UIDs,
// Fetch, Probe) at once, each on a connection of its own; further calls
// wait for one to finish (or for their context to end). Connections are
// opened on demand, kept for the next operation, and, with a ServerLimit,
// count against the server's cap. Each reopening of a dropped connection
// is reported as a migrate.EventReconnected, with migrate.Notify, to the
// observer of the context of the operation that reopened it. Close and
// Reconnects may be called at any time; Close interrupts the operations
// in progress. A callback that calls the same Source (Fetch inside List's
// callback) needs MaxConnections of 2 or more, or it waits for itself
// forever.
type Source struct {
	opts Options
	ops  chan struct{} // one token per operation in progress

	mu     sync.Mutex // guards the fields below
	idle   []*pconn   // open connections not in use, most recent last
	busy   map[*pconn]bool
	closed bool

	reconnects atomic.Int64
}

// New returns a Source for the mailbox described by opts. It does not
// connect: connections are opened by the operations that need them.
func New(opts *Options) *Source {
	o := opts.withDefaults()
	return &Source{opts: o, ops: make(chan struct{}, o.MaxConnections), busy: map[*pconn]bool{}}
}

// pconn is one connection of a Source's pool.
type pconn struct {
	s    *Source
	c    *imapclient.Client
	raw  net.Conn
	info *serverInfo

	// The mailbox EXAMINEd on this connection and its UIDVALIDITY, so that
	// consecutive Fetch calls on one folder do not open it every time.
	selected string
	validity uint32

	dead     atomic.Bool // aborted, evicted or closed: never reused
	limited  bool        // holds a ServerLimit slot
	shutOnce sync.Once
}

// shut closes the connection; release says whether its ServerLimit slot
// is freed (false when it passes to another connection).
func (pc *pconn) shut(release bool) {
	pc.dead.Store(true)
	pc.shutOnce.Do(func() {
		pc.s.mu.Lock()
		delete(pc.s.busy, pc)
		pc.s.mu.Unlock()
		pc.raw.Close() // first: see abort
		pc.c.Close()
		if pc.limited && release {
			pc.s.opts.ServerLimit.release()
		}
	})
}

// evict closes an idle connection whose slot a ServerLimit gives to
// another connection.
func (pc *pconn) evict() {
	s := pc.s
	s.mu.Lock()
	for i, p := range s.idle {
		if p == pc {
			s.idle = append(s.idle[:i], s.idle[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	s.opts.Logger.Debug("imapsrc: idle connection closed for another under the server limit", "source", s.String())
	pc.shut(false)
}

// Close logs out (best effort) and closes every connection; an operation
// in progress is interrupted. Later operations fail.
func (s *Source) Close() error {
	s.mu.Lock()
	s.closed = true
	idle := s.idle
	s.idle = nil
	var busy []*pconn
	for pc := range s.busy {
		busy = append(busy, pc)
	}
	s.mu.Unlock()
	for _, pc := range busy {
		pc.raw.Close() // the operation notices and cleans up
	}
	var wg sync.WaitGroup
	for _, pc := range idle {
		if s.opts.ServerLimit != nil && !s.opts.ServerLimit.unpark(pc) {
			continue // evicted meanwhile
		}
		wg.Go(func() {
			// LOGOUT politely, but do not wait on a server that does not answer.
			done := make(chan struct{})
			go func() {
				defer close(done)
				_ = pc.c.Logout().Wait()
			}()
			select {
			case <-done:
			case <-pc.c.Closed():
			case <-time.After(2 * time.Second):
			}
			pc.shut(true)
		})
	}
	wg.Wait()
	return nil
}

// Reconnects returns how many times the Source has reopened a connection
// that dropped, in the middle of an operation or while it sat idle, over
// its whole life (every operation and every migration run that used it).
// The Engine counts a run's own reconnects (MailboxReport.Reconnects) from
// the migrate.EventReconnected events of that run.
func (s *Source) Reconnects() int { return int(s.reconnects.Load()) }

// reconnected counts a reconnect and reports it, with its cause, to the
// observer of ctx, the context of the operation that reconnected.
func (s *Source) reconnected(ctx context.Context, cause error) {
	s.reconnects.Add(1)
	migrate.Notify(ctx, migrate.Event{Kind: migrate.EventReconnected, Time: time.Now(), Err: cause})
}

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

// errIdleDrop is the cause reported when a connection is found closed
// between two operations (an idle timeout, a server restart).
var errIdleDrop = errors.New("imapsrc: connection closed by the server while idle")

// get returns a live connection for one operation: an idle one from the
// pool, or a new one (within the ServerLimit).
func (s *Source) get(ctx context.Context) (*pconn, error) {
	lim := s.opts.ServerLimit
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, errors.New("imapsrc: source is closed")
		}
		if len(s.idle) == 0 {
			s.mu.Unlock()
			break
		}
		pc := s.idle[len(s.idle)-1]
		s.idle = s.idle[:len(s.idle)-1]
		s.busy[pc] = true
		s.mu.Unlock()
		if lim != nil && !lim.unpark(pc) {
			continue // evicted for another Source
		}
		select {
		case <-pc.c.Closed():
			// Dropped while idle: reopen it, and say so.
			pc.shut(true)
			npc, err := s.dialConn(ctx)
			if err == nil {
				s.reconnected(ctx, errIdleDrop)
				s.opts.Logger.Warn("imapsrc: connection dropped while idle; reconnected", "source", s.String())
			}
			return npc, err
		default:
			return pc, nil
		}
	}
	return s.dialConn(ctx)
}

// dialConn opens a new connection, taking a ServerLimit slot for it.
func (s *Source) dialConn(ctx context.Context) (*pconn, error) {
	lim := s.opts.ServerLimit
	if lim != nil {
		if err := lim.acquire(ctx); err != nil {
			return nil, err
		}
	}
	pc, err := s.connect(ctx)
	if err != nil {
		if lim != nil {
			lim.release()
		}
		return nil, err
	}
	pc.limited = lim != nil
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		pc.shut(true)
		return nil, errors.New("imapsrc: source is closed")
	}
	s.busy[pc] = true
	return pc, nil
}

// put returns a connection to the pool after an operation, or closes it
// if it is no longer usable.
func (s *Source) put(pc *pconn) {
	s.mu.Lock()
	delete(s.busy, pc)
	usable := !s.closed && !pc.dead.Load()
	if usable {
		select {
		case <-pc.c.Closed():
			usable = false
		default:
		}
	}
	if !usable {
		s.mu.Unlock()
		pc.shut(true)
		return
	}
	s.idle = append(s.idle, pc)
	s.mu.Unlock()
	if s.opts.ServerLimit != nil {
		s.opts.ServerLimit.park(pc)
	}
}

// do runs op on a live connection. When the connection drops during op, it
// reconnects and runs op again; op must resume where it stopped (List and
// Fetch keep their progress in variables op captures). progress reports how
// many items op has completed so far; reconnecting is given up after
// MaxReconnects attempts in a row that completed nothing.
func (s *Source) do(ctx context.Context, what string, progress func() int, op func(pc *pconn) error) error {
	select {
	case s.ops <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.ops }()
	failures := 0
	last := -1
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		pc, err := s.get(ctx)
		if err != nil {
			if isTransient(err) && ctx.Err() == nil && failures < MaxReconnects {
				failures++
				s.opts.Logger.Warn("imapsrc: connect failed, retrying", "source", s.String(), "op", what, "attempt", failures, "err", err)
				if err := backoff.Sleep(ctx, reconnectWait(failures)); err != nil {
					return err
				}
				continue
			}
			return err
		}
		stop := context.AfterFunc(ctx, func() { pc.raw.Close() })
		err = op(pc)
		stop()
		if err == nil {
			s.put(pc)
			return nil
		}
		var cbErr *callbackError
		if errors.As(err, &cbErr) {
			s.put(pc)    // closed instead if op had to abandon it
			return cbErr // the caller's own error: never retried
		}
		if ctx.Err() != nil {
			pc.shut(true)
			return ctx.Err()
		}
		if !pc.dead.Load() && !connDead(pc.c, err) {
			s.put(pc)
			return err
		}
		pc.shut(true)
		if p := progress(); p != last {
			last = p
			failures = 0
		}
		if failures >= MaxReconnects {
			return migrate.TransientError(fmt.Errorf("imapsrc: %s: connection lost %d times in a row: %w", what, failures+1, err))
		}
		failures++
		s.reconnected(ctx, err)
		s.opts.Logger.Warn("imapsrc: connection lost, reconnecting", "source", s.String(), "op", what, "attempt", failures, "err", err)
		if err := backoff.Sleep(ctx, reconnectWait(failures)); err != nil {
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
