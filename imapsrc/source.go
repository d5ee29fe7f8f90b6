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
// observer of the context of the operation that reopened it. While the
// server cannot be reached, operations keep trying for
// Options.ReconnectFor (see Options). Close and Reconnects may be called
// at any time; Close interrupts the operations in progress, including
// those waiting to reconnect. A callback that calls the same Source
// (Fetch inside List's callback) needs MaxConnections of 2 or more, or it
// waits for itself forever.
type Source struct {
	opts Options
	ops  chan struct{} // one token per operation in progress

	done chan struct{} // closed by Close: wakes the operations waiting to reconnect

	mu     sync.Mutex // guards the fields below
	idle   []*pconn   // open connections not in use, most recent last
	busy   map[*pconn]bool
	closed bool
	// The server's current outage, shared by the operations (see
	// unreachable): the start of the first and the end of the last failed
	// attempt to connect; zero since a connection was last made.
	downSince, downLast time.Time

	reconnects atomic.Int64
}

// New returns a Source for the mailbox described by opts. It does not
// connect: connections are opened by the operations that need them.
func New(opts *Options) *Source {
	o := opts.withDefaults()
	return &Source{opts: o, ops: make(chan struct{}, o.MaxConnections), done: make(chan struct{}), busy: map[*pconn]bool{}}
}

// pconn is one connection of a Source's pool.
type pconn struct {
	s    *Source
	c    *imapclient.Client
	raw  net.Conn
	info *serverInfo

	// The mailbox EXAMINEd on this connection, "" if none (Folders
	// closes it before STATUS, see deselect), its UIDVALIDITY, and until
	// when a Fetch may use it without a new EXAMINE: zero unless a Fetch
	// opened it (see reuseOrExamine).
	selected   string
	validity   uint32
	reuseUntil time.Time

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
	if !s.closed {
		close(s.done)
	}
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

// Reconnects returns how many times the Source has had to reopen a
// connection that dropped, in the middle of an operation or while it sat
// idle, over its whole life (every operation and every migration run that
// used it). A drop counts once however long reopening takes: waiting for
// a server that restarts is one reconnect, not one per attempt.
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

// errClosed is the error of an operation on a closed Source, or of one
// that Close interrupted while it waited to reconnect.
var errClosed = errors.New("imapsrc: source is closed")

// get returns a live connection for one operation: an idle one from the
// pool, or a new one (within the ServerLimit). Idle connections found
// dropped are closed; if none of them was alive, the new connection
// reopens them, which counts as one reconnect (reported before dialing,
// so that it counts even while the server cannot be reached).
func (s *Source) get(ctx context.Context) (*pconn, error) {
	lim := s.opts.ServerLimit
	dropped := false
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, errClosed
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
			// Dropped while idle (a server restart drops them all): try
			// the next, and reopen one if none is alive.
			pc.shut(true)
			dropped = true
		default:
			return pc, nil
		}
	}
	if dropped {
		s.reconnected(ctx, errIdleDrop)
		s.opts.Logger.Warn("imapsrc: connection dropped while idle; reconnecting", "source", s.String())
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
	start := time.Now()
	pc, err := s.connect(ctx)
	if err != nil {
		if lim != nil {
			lim.release()
		}
		if isTransient(err) && ctx.Err() == nil {
			s.unreachable(start)
		}
		return nil, err
	}
	pc.limited = lim != nil
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		pc.shut(true)
		return nil, errClosed
	}
	s.busy[pc] = true
	var down time.Duration
	if !s.downSince.IsZero() {
		down = time.Since(s.downSince)
		s.downSince, s.downLast = time.Time{}, time.Time{}
	}
	s.mu.Unlock()
	if down > 0 {
		s.opts.Logger.Warn("imapsrc: server reachable again", "source", s.String(), "down", down.Round(time.Millisecond))
	}
	return pc, nil
}

// unreachable records an attempt to connect, begun at start, that failed
// with a transient error. The server's current outage begins with the
// first such attempt since a connection was last made, whichever
// operation made it, so that operations side by side, or one after
// another while the server stays down, share one ReconnectFor instead of
// waiting it out each. An attempt begun more than twice the longest
// pause between two attempts after the last failed one begins a new
// outage: nobody was trying in between, and the server may have come
// back and gone again unseen.
func (s *Source) unreachable(start time.Time) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.downSince.IsZero() || start.Sub(s.downLast) > 2*reconnectPolicy.Max {
		s.downSince = start
	}
	s.downLast = now
}

// downFor returns how long the server has been unreachable (see
// unreachable), or 0 if the last attempt to connect succeeded.
func (s *Source) downFor() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.downSince.IsZero() {
		return 0
	}
	return time.Since(s.downSince)
}

// pause waits for d, or until ctx is done (returning ctx.Err()) or the
// Source is closed (returning errClosed), whichever comes first.
func (s *Source) pause(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
		return errClosed
	}
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

// do runs op on a live connection, waiting up to Options.ReconnectFor
// for a server that cannot be reached; see run.
func (s *Source) do(ctx context.Context, what string, progress func() int, op func(pc *pconn) error) error {
	return s.run(ctx, what, s.opts.ReconnectFor, progress, op)
}

// run runs op on a live connection. When the connection drops during op,
// it reconnects and runs op again; op must resume where it stopped (List
// and Fetch keep their progress in variables op captures). Two cases end
// the reconnecting, each with an error matching migrate.ErrTransient:
//
//   - the server cannot be reached (connecting, the greeting or the login
//     fails with a transient error): it is tried again, after pauses of
//     reconnectWait, until it has been unreachable for reconnectFor (see
//     unreachable); with a reconnectFor of zero, the first failure is
//     returned as it is;
//   - a connection is made but drops again and again (a server that
//     crashes on one message): progress reports how many items op has
//     completed so far, and reconnecting is given up after MaxReconnects
//     drops in a row that completed nothing.
//
// Any other error, the end of ctx and Close end it at once.
func (s *Source) run(ctx context.Context, what string, reconnectFor time.Duration, progress func() int, op func(pc *pconn) error) error {
	select {
	case s.ops <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.ops }()
	failures := 0           // attempts in a row that failed since op last progressed: the pauses grow with it
	drops := 0              // connections lost in a row while op completed nothing
	var firstDrop time.Time // when the first of those was lost
	tries := 0              // failed attempts to connect since a connection was last made
	last := -1
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		pc, err := s.get(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !isTransient(err) || reconnectFor <= 0 {
				return err
			}
			down := s.downFor()
			failures++
			tries++
			if down >= reconnectFor {
				s.opts.Logger.Warn("imapsrc: server unreachable; giving up", "source", s.String(), "op", what,
					"down", down.Round(time.Millisecond), "attempts", tries, "err", err)
				return migrate.TransientError(fmt.Errorf("imapsrc: %s: server unreachable for %v (ReconnectFor %v): %w",
					what, down.Round(time.Millisecond), reconnectFor, err))
			}
			wait := min(reconnectWait(failures), reconnectFor-down)
			s.opts.Logger.Warn("imapsrc: server unreachable; retrying", "source", s.String(), "op", what,
				"down", down.Round(time.Millisecond), "attempts", tries, "retry_in", wait.Round(time.Millisecond),
				"give_up_after", reconnectFor, "err", err)
			if err := s.pause(ctx, wait); err != nil {
				return err
			}
			continue
		}
		tries = 0
		stop := context.AfterFunc(ctx, func() { pc.raw.Close() })
		err = op(pc)
		if !stop() {
			// ctx ended during op and its socket was closed to interrupt
			// it: whatever op made of it (it may have completed from
			// what was read already), the connection is not reused.
			pc.dead.Store(true)
		}
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
			drops, failures = 0, 0
		}
		if drops == 0 {
			firstDrop = time.Now()
		}
		if drops >= MaxReconnects {
			lost := time.Since(firstDrop).Round(time.Millisecond)
			s.opts.Logger.Warn("imapsrc: connection lost again without progress; giving up", "source", s.String(), "op", what,
				"drops", drops+1, "over", lost, "err", err)
			return migrate.TransientError(fmt.Errorf("imapsrc: %s: connection lost %d times in a row without progress, over %v: %w",
				what, drops+1, lost, err))
		}
		drops++
		failures++
		s.reconnected(ctx, err)
		s.opts.Logger.Warn("imapsrc: connection lost, reconnecting", "source", s.String(), "op", what, "attempt", drops, "err", err)
		if err := s.pause(ctx, reconnectWait(failures)); err != nil {
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
