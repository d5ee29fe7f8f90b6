package imapsrc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailferry/mailferry/imapsrc"
	"github.com/mailferry/mailferry/internal/dovecottest"
	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

func TestConformanceDovecot(t *testing.T) {
	for _, tc := range []struct{ name, layout, user, pass, authz string }{
		{"default", dovecottest.LayoutDefault, "alice", "secret", ""},
		{"courier", dovecottest.LayoutCourier, "alice", "secret", ""},
		{"master-user", dovecottest.LayoutDefault, "alice*admin", "adminpw", ""},
		{"sasl-authzid", dovecottest.LayoutCourier, "admin", "adminpw", "alice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fx := migratetest.Sample()
			srv := startDovecot(t, tc.layout, fx)
			src := imapsrc.New(&imapsrc.Options{Addr: srv.Addr(), Security: imapsrc.Plaintext,
				Username: tc.user, Password: tc.pass, AuthzID: tc.authz, MaxUIDsPerFetch: 2})
			closeSrc(t, src)
			// The hooks change the mailbox as its owner, on a session of
			// their own.
			migratetest.TestSource(t, src, fx, migratetest.WithHooks(imapHooks(t, srv.Addr(), "alice", "secret")))
		})
	}
}

func TestConformanceMemServer(t *testing.T) {
	fx := migratetest.Sample()
	addr := startMem(t, "alice", "secret")
	seed(t, addr, "alice", "secret", fx)
	src := plain(addr, "alice", "secret")
	closeSrc(t, src)
	migratetest.TestSource(t, src, fx, migratetest.WithHooks(imapHooks(t, addr, "alice", "secret")))
}

func TestConnections(t *testing.T) {
	const conns, ops = 3, 6
	fx := migratetest.Sample()
	srv := startDovecot(t, "", fx)
	var d counter
	src := imapsrc.New(&imapsrc.Options{Addr: srv.Addr(), Security: imapsrc.Plaintext, Username: "alice", Password: "secret",
		MaxConnections: conns, DialContext: d.dial})
	closeSrc(t, src)
	f := inbox(t, src)
	var mu sync.Mutex
	inside, peakInside := 0, 0
	all := make(chan struct{}) // closed when conns operations are in at once
	var wg sync.WaitGroup
	errs := make([]error, ops)
	counts := make([]int, ops)
	for i := range ops {
		wg.Go(func() {
			first := true
			errs[i] = src.List(context.Background(), f, func(migrate.MessageInfo) error {
				counts[i]++
				if !first {
					return nil
				}
				first = false
				mu.Lock()
				inside++
				peakInside = max(peakInside, inside)
				if inside == conns {
					close(all)
				}
				mu.Unlock()
				select {
				case <-all:
				case <-time.After(10 * time.Second):
					return errors.New("the operations never ran side by side")
				}
				return nil
			})
			mu.Lock()
			inside--
			mu.Unlock()
		})
	}
	wg.Wait()
	for i := range ops {
		if assert.NoError(t, errs[i], "List %d", i) {
			assert.Equal(t, len(fx.Folders[0].Messages), counts[i], "List %d: messages", i)
		}
	}
	_, peak, _ := d.stats()
	assert.Equal(t, conns, peak, "peak connections")
	assert.Equal(t, conns, peakInside, "peak operations at once")
}

// TestReconnectEvents: connections that died while idle in the pool (a
// server restart, an idle timeout) are found dead by the next operation,
// which reopens one: that counts as one reconnect however many were in
// the pool, reported with the cause ErrIdleDrop to the observer of that
// operation's own context only, not to that of the operation before it
// (as two Engines sharing the Source would be).
func TestReconnectEvents(t *testing.T) {
	for _, conns := range []int{1, 3} {
		t.Run(fmt.Sprintf("idle=%d", conns), func(t *testing.T) {
			srv := startDovecot(t, "", migratetest.Sample())
			var d counter
			src := imapsrc.New(&imapsrc.Options{Addr: srv.Addr(), Security: imapsrc.Plaintext, Username: "alice", Password: "secret",
				MaxConnections: conns, DialContext: d.dial})
			closeSrc(t, src)
			var mu sync.Mutex
			var before, after []migrate.Event
			observe := func(events *[]migrate.Event) context.Context {
				return migrate.WithObserver(context.Background(), func(e migrate.Event) {
					mu.Lock()
					defer mu.Unlock()
					*events = append(*events, e)
				})
			}
			fillPool(t, src, conns, observe(&before))
			idle := src.IdleClosed()
			require.Len(t, idle, conns, "connections idle in the pool")
			// They all die; the next operation begins only once the
			// Source can see it.
			require.Equal(t, conns, srv.DropConnections(), "sessions dropped")
			for i, closed := range idle {
				select {
				case <-closed:
				case <-time.After(time.Minute): // a deadlock guard, not a delay
					t.Fatalf("idle connection %d not seen closed a minute after its session was killed", i)
				}
			}
			_, err := src.Folders(observe(&after))
			require.NoError(t, err)
			mu.Lock()
			defer mu.Unlock()
			assert.Equal(t, 1, src.Reconnects(), "Reconnects")
			assert.Empty(t, before, "events of the operations before the drop")
			if assert.Len(t, after, 1, "events of the operation that reconnected") {
				assert.Equal(t, migrate.EventReconnected, after[0].Kind)
				assert.ErrorIs(t, after[0].Err, imapsrc.ErrIdleDrop, "the event's cause")
			}
			open, _, total := d.stats()
			assert.Equal(t, conns+1, total, "connections made: the pool's, then one")
			assert.Equal(t, 1, open, "connections open: the dead ones were closed")
		})
	}
}

// fillPool leaves k connections idle in src's pool: k Lists of INBOX run
// side by side, each waiting in its first callback for all k to be in.
func fillPool(t *testing.T, src *imapsrc.Source, k int, ctx context.Context) {
	t.Helper()
	f := migrate.Folder{Name: "INBOX"}
	var inside sync.WaitGroup
	inside.Add(k)
	all := make(chan struct{})
	go func() { inside.Wait(); close(all) }()
	errs := make(chan error, k)
	for range k {
		go func() {
			first := true
			errs <- src.List(ctx, f, func(migrate.MessageInfo) error {
				if first {
					first = false
					inside.Done()
					select {
					case <-all:
					case <-time.After(time.Minute): // a deadlock guard
						return errors.New("the Lists never ran side by side")
					}
				}
				return nil
			})
		}()
	}
	for range k {
		require.NoError(t, <-errs)
	}
}

func TestCallbackErrorAndClose(t *testing.T) {
	addr := startMem(t, "alice", "secret")
	seed(t, addr, "alice", "secret", bigFixture(5))
	src := plain(addr, "alice", "secret")
	f := inbox(t, src)
	stop := errors.New("stop")
	calls := 0
	err := src.List(context.Background(), f, func(migrate.MessageInfo) error { calls++; return stop })
	assert.Same(t, stop, err, "List returns the callback's error unchanged")
	assert.Equal(t, 1, calls, "List calls after the callback's error")
	// The Source is usable after a callback error.
	var mu sync.Mutex
	n := 0
	err = src.Fetch(context.Background(), f, []uint32{1, 2, 3}, func(*migrate.Message) error { mu.Lock(); n++; mu.Unlock(); return nil })
	assert.NoError(t, err, "Fetch after a callback error")
	assert.Equal(t, 3, n, "Fetch after a callback error: messages")
	assert.Zero(t, src.Reconnects(), "a callback error is not a dropped connection")
	require.NoError(t, src.Close())
	_, err = src.Folders(context.Background())
	assert.Error(t, err, "Folders after Close")
}

// outage crashes srv, returning once every process of the server has
// exited (connections are refused from then on), and starts it again, in
// the background, once d has seen refused attempts to connect:
// the server stays down for a number of the Source's attempts, not for a
// time. back waits until the server is up again and returns Revive's
// error.
func outage(t *testing.T, srv *dovecottest.Server, d *counter, refused int) (back func() error) {
	t.Helper()
	errc := make(chan error, 1)
	d.mu.Lock()
	base := d.failed
	d.onFail = func(failed int) {
		if failed == base+refused {
			go func() { errc <- srv.Revive() }()
		}
	}
	d.mu.Unlock()
	require.NoError(t, srv.Crash())
	return func() error { return <-errc }
}

// TestServerRestartDuringFetch: Dovecot dies while Fetch is streaming
// and comes back on the same port only once the Source has failed to
// reach it MaxReconnects+2 times, more attempts than MaxReconnects
// allows a connection that keeps dropping. Fetch keeps trying to reach
// it (ReconnectFor, by default two minutes) and resumes: every message
// arrives exactly once, intact, and the drop is one reconnect, reported
// once, however many attempts it took.
func TestServerRestartDuringFetch(t *testing.T) {
	const n = 30
	fx := bigFixture(n)
	srv := startDovecot(t, "", fx)
	// Little in flight, so that the messages after the crash cannot all
	// be sitting in the socket already.
	var d counter
	src := imapsrc.New(&imapsrc.Options{Addr: srv.Addr(), Security: imapsrc.Plaintext, Username: "alice", Password: "secret",
		MaxUIDsPerFetch: 4, MaxBytesInFlight: 8 << 10, DialContext: d.dial})
	closeSrc(t, src)
	f := inbox(t, src)
	var events atomic.Int32
	ctx := migrate.WithObserver(context.Background(), func(ev migrate.Event) {
		assert.Equal(t, migrate.EventReconnected, ev.Kind, "event")
		events.Add(1)
	})
	var back func() error
	count := map[uint32]int{}
	err := src.Fetch(ctx, f, uidsUpTo(n), func(m *migrate.Message) error {
		if m.UID == 10 && back == nil {
			back = outage(t, srv, &d, imapsrc.MaxReconnects+2)
		}
		body, err := io.ReadAll(m.Body)
		if err != nil {
			return err // the connection broke mid-body: Fetch retries it
		}
		want := fx.Folders[0].Messages[m.UID-1]
		assert.True(t, bytes.Equal(want.Raw, body), "UID %d: body differs (%d bytes, want %d)", m.UID, len(body), len(want.Raw))
		count[m.UID]++
		return nil
	})
	require.NoError(t, err, "Fetch")
	require.NotNil(t, back, "the server was never crashed")
	require.NoError(t, back(), "Revive")
	for _, u := range uidsUpTo(n) {
		assert.Equal(t, 1, count[u], "UID %d: times delivered", u)
	}
	assert.Equal(t, 1, src.Reconnects(), "Reconnects")
	assert.EqualValues(t, src.Reconnects(), events.Load(), "events, one per reconnect")
}

// TestServerRestartWhileIdle: Dovecot dies between two operations and
// comes back once the Source has failed to reach it MaxReconnects+2
// times. The next operation finds the idle connection dead (or loses it
// at its first command), waits for the server and lists the whole
// folder; that is one reconnect.
func TestServerRestartWhileIdle(t *testing.T) {
	const n = 20
	srv := startDovecot(t, "", bigFixture(n))
	var d counter
	src := imapsrc.New(&imapsrc.Options{Addr: srv.Addr(), Security: imapsrc.Plaintext, Username: "alice", Password: "secret",
		DialContext: d.dial})
	closeSrc(t, src)
	f := inbox(t, src) // leaves a connection idle
	back := outage(t, srv, &d, imapsrc.MaxReconnects+2)
	var got []uint32
	err := src.List(context.Background(), f, func(m migrate.MessageInfo) error {
		got = append(got, m.UID)
		return nil
	})
	require.NoError(t, err, "List")
	require.NoError(t, back(), "Revive")
	assert.Equal(t, uidsUpTo(n), got, "listed")
	assert.Equal(t, 1, src.Reconnects(), "Reconnects")
}

// TestServerUnreachable: with the server down for good, an operation
// tries for ReconnectFor, then fails with a transient error that says
// how long it tried; the next operation, right after, shares that
// outage and fails after a single attempt instead of waiting it out
// again.
func TestServerUnreachable(t *testing.T) {
	const reconnectFor = 300 * time.Millisecond
	srv := startDovecot(t, "", migratetest.Sample())
	var d counter
	src := imapsrc.New(&imapsrc.Options{Addr: srv.Addr(), Security: imapsrc.Plaintext, Username: "alice", Password: "secret",
		ReconnectFor: reconnectFor, DialContext: d.dial})
	closeSrc(t, src)
	f := inbox(t, src)
	srv.Stop()
	list := func() error {
		return src.List(context.Background(), f, func(migrate.MessageInfo) error { return nil })
	}
	start := time.Now()
	err := list()
	elapsed := time.Since(start)
	require.ErrorIs(t, err, migrate.ErrTransient, "List")
	assert.NotErrorIs(t, err, migrate.ErrMailbox, "List")
	assert.Contains(t, err.Error(), "unreachable for", "the error says how long it tried")
	assert.GreaterOrEqual(t, elapsed, reconnectFor, "tried for")
	assert.Less(t, elapsed, 30*time.Second, "gave up")
	tries := d.attempts()
	assert.GreaterOrEqual(t, tries, 1+3, "connection attempts (the first, which connected, and at least three while the server is down)")
	t.Logf("failed after %v and %d connection attempts: %v", elapsed.Round(time.Millisecond), tries-1, err)

	err = list()
	require.ErrorIs(t, err, migrate.ErrTransient, "the next List")
	assert.Equal(t, 1, d.attempts()-tries, "connection attempts of the next List")
}

// pauseWatch is a slog.Handler that sends, once, the first reconnect
// pause ("retry_in") of at least min that the Source logs.
type pauseWatch struct {
	min  time.Duration
	once sync.Once
	ch   chan time.Duration
}

func (h *pauseWatch) Enabled(context.Context, slog.Level) bool { return true }
func (h *pauseWatch) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *pauseWatch) WithGroup(string) slog.Handler            { return h }

func (h *pauseWatch) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "retry_in" && a.Value.Kind() == slog.KindDuration && a.Value.Duration() >= h.min {
			h.once.Do(func() { h.ch <- a.Value.Duration() })
			return false
		}
		return true
	})
	return nil
}

// TestReconnectPauseInterrupted: an operation waiting for a server that
// cannot be reached stops waiting at once when its context ends or the
// Source is closed, well before the pause it was in is over.
func TestReconnectPauseInterrupted(t *testing.T) {
	for _, tc := range []struct {
		name string
		stop func(cancel context.CancelFunc, src *imapsrc.Source)
		want func(t *testing.T, err error)
	}{
		{"cancel", func(cancel context.CancelFunc, _ *imapsrc.Source) { cancel() }, func(t *testing.T, err error) {
			assert.ErrorIs(t, err, context.Canceled)
		}},
		{"close", func(_ context.CancelFunc, src *imapsrc.Source) { src.Close() }, func(t *testing.T, err error) {
			assert.ErrorContains(t, err, "closed")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			watch := &pauseWatch{min: 500 * time.Millisecond, ch: make(chan time.Duration, 1)}
			src := imapsrc.New(&imapsrc.Options{Addr: closedAddr(t), Security: imapsrc.Plaintext, Username: "alice", Password: "secret",
				Logger: slog.New(watch)}) // ReconnectFor: the default, minutes
			closeSrc(t, src)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := src.Folders(ctx)
				done <- err
			}()
			var pause time.Duration
			select {
			case pause = <-watch.ch:
			case err := <-done:
				t.Fatalf("Folders returned before a long pause: %v", err)
			case <-time.After(time.Minute):
				t.Fatal("no reconnect pause of 500ms or more within a minute")
			}
			stopped := time.Now()
			tc.stop(cancel, src)
			select {
			case err := <-done:
				require.Error(t, err)
				tc.want(t, err)
				assert.Less(t, time.Since(stopped), pause, "returned after the pause it was in")
			case <-time.After(time.Minute):
				t.Fatal("Folders did not return")
			}
		})
	}
}

// TestReconnectsRunOut: a connection that is made and then lost again and
// again before the operation completes anything (a server that crashes
// on one message; here a proxy cuts every connection at the same point
// of the first message) is given up after MaxReconnects reconnects, with
// an error matching migrate.ErrTransient that says so. Then, the cuts
// over, the same Source reads the folder.
func TestReconnectsRunOut(t *testing.T) {
	const n = 8
	fx := bigFixture(n)
	srv := startDovecot(t, "", fx)
	for _, tc := range []struct {
		name string
		at   string // every connection is cut before the line holding it
		op   func(ctx context.Context, src *imapsrc.Source, f migrate.Folder, delivered *int) error
	}{
		{"fetch, in the first body", "padding line to make the body bigger 0\r\n",
			func(ctx context.Context, src *imapsrc.Source, f migrate.Folder, delivered *int) error {
				return src.Fetch(ctx, f, uidsUpTo(n), func(m *migrate.Message) error {
					body, err := io.ReadAll(m.Body)
					if err != nil {
						return err
					}
					assert.True(t, bytes.Equal(fx.Folders[0].Messages[m.UID-1].Raw, body), "UID %d: body", m.UID)
					*delivered++
					return nil
				})
			}},
		{"list, before the first message", "* 1 FETCH ",
			func(ctx context.Context, src *imapsrc.Source, f migrate.Folder, delivered *int) error {
				return src.List(ctx, f, func(migrate.MessageInfo) error { *delivered++; return nil })
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cutting atomic.Bool
			cutting.Store(true)
			p := startProxy(t, srv.Addr(), proxyOptions{cutAt: before(tc.at, false, func(int) bool { return cutting.Load() })})
			src := plain(p.addr, "alice", "secret")
			closeSrc(t, src)
			f := inbox(t, src)
			var events atomic.Int32
			ctx := migrate.WithObserver(context.Background(), func(ev migrate.Event) {
				assert.Equal(t, migrate.EventReconnected, ev.Kind, "event")
				events.Add(1)
			})
			delivered := 0
			err := tc.op(ctx, src, f, &delivered)
			require.Error(t, err)
			assert.ErrorIs(t, err, migrate.ErrTransient)
			assert.NotErrorIs(t, err, migrate.ErrMailbox)
			assert.Contains(t, err.Error(), fmt.Sprintf("connection lost %d times in a row without progress", imapsrc.MaxReconnects+1))
			assert.Zero(t, delivered, "messages delivered")
			accepted, cut := p.connections()
			assert.Equal(t, imapsrc.MaxReconnects+1, accepted, "connections: the first and MaxReconnects more")
			assert.Equal(t, imapsrc.MaxReconnects+1, cut, "connections cut")
			assert.Equal(t, imapsrc.MaxReconnects, src.Reconnects(), "Reconnects")
			assert.EqualValues(t, imapsrc.MaxReconnects, events.Load(), "events")
			t.Logf("error: %v", err)

			cutting.Store(false)
			require.NoError(t, tc.op(context.Background(), src, f, &delivered), "once the cuts are over")
			assert.Equal(t, n, delivered, "messages delivered once the cuts are over")
		})
	}
}

// TestReconnectsWithProgress: drops that each come after some progress
// never run out, however many there are: a proxy cuts every connection
// after so many bytes, a few messages' worth, and Fetch and List each
// reconnect more than MaxReconnects times, resume after the last message
// delivered and complete, every message once and whole.
func TestReconnectsWithProgress(t *testing.T) {
	const n = 60
	fx := bigFixture(n)
	msgs := fx.Folders[0].Messages
	srv := startDovecot(t, "", nil)
	writeMaildir(t, srv, "INBOX", msgs)
	for _, tc := range []struct {
		name     string
		cutAfter int64
		op       func(src *imapsrc.Source, f migrate.Folder, count map[uint32]int) error
	}{
		// A message is about 4.5 KB: each connection delivers a few.
		{"fetch", 20 << 10, func(src *imapsrc.Source, f migrate.Folder, count map[uint32]int) error {
			return src.Fetch(context.Background(), f, uidsUpTo(n), func(m *migrate.Message) error {
				body, err := io.ReadAll(m.Body)
				if err != nil {
					return err
				}
				assert.True(t, bytes.Equal(msgs[m.UID-1].Raw, body), "UID %d: body", m.UID)
				count[m.UID]++
				return nil
			})
		}},
		// A message is about 150 bytes of the listing.
		{"list", 4 << 10, func(src *imapsrc.Source, f migrate.Folder, count map[uint32]int) error {
			return src.List(context.Background(), f, func(m migrate.MessageInfo) error {
				assert.Equal(t, msgs[m.UID-1].MessageID(), m.MessageID, "UID %d: Message-ID", m.UID)
				count[m.UID]++
				return nil
			})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startProxy(t, srv.Addr(), proxyOptions{cutAfter: tc.cutAfter})
			src := plain(p.addr, "alice", "secret")
			closeSrc(t, src)
			f := inbox(t, src)
			count := map[uint32]int{}
			require.NoError(t, tc.op(src, f, count))
			for _, u := range uidsUpTo(n) {
				assert.Equal(t, 1, count[u], "UID %d: times delivered", u)
			}
			accepted, _ := p.connections()
			assert.Greater(t, src.Reconnects(), imapsrc.MaxReconnects, "Reconnects")
			assert.Equal(t, accepted-1, src.Reconnects(), "Reconnects: one per connection after the first")
			t.Logf("%d connections", accepted)
		})
	}
}

// TestCancel cancels a Fetch or a List in progress: from the callback
// after some messages, or from another goroutine while the callback
// reads a large body or waits. The operation returns the context's error
// at once (a generous guard only catches a hang) without calling the
// callback again, whatever it had read ahead; every message delivered
// before was whole; the operation's connection was closed rather than
// left in the pool (its socket was closed to interrupt it), even when
// the operation could complete from what it had read; a cancellation is
// no reconnect; and the Source serves the next operation.
func TestCancel(t *testing.T) {
	const (
		n      = 300 // a listing larger than go-imap's read buffer
		bigUID = 6
		k      = 3 // messages accepted before the cancellation
	)
	msgs := bigFixture(n).Folders[0].Messages
	var big bytes.Buffer
	big.WriteString("Message-ID: <big@mailferry.test>\r\nSubject: large\r\n\r\n")
	for i := 0; big.Len() < 8<<20; i++ {
		fmt.Fprintf(&big, "line %07d of a body read while the operation is cancelled\r\n", i)
	}
	msgs[bigUID-1].Raw = big.Bytes()
	srv := startDovecot(t, "", nil)
	writeMaildir(t, srv, "INBOX", msgs)

	type op func(ctx context.Context, src *imapsrc.Source, f migrate.Folder, cancel func()) (delivered []uint32, err error)
	// fetch fetches every message: read reads each body, then, once
	// cancelAfter messages are delivered, the callback cancels.
	fetch := func(read func(uid uint32, body io.Reader) ([]byte, error), cancelAfter int) op {
		return func(ctx context.Context, src *imapsrc.Source, f migrate.Folder, cancel func()) ([]uint32, error) {
			var got []uint32
			err := src.Fetch(ctx, f, uidsUpTo(n), func(m *migrate.Message) error {
				body, err := read(m.UID, m.Body)
				if err != nil {
					return err
				}
				assert.True(t, bytes.Equal(msgs[m.UID-1].Raw, body), "UID %d: body differs (%d bytes, want %d)", m.UID, len(body), len(msgs[m.UID-1].Raw))
				got = append(got, m.UID)
				if len(got) == cancelAfter {
					cancel()
				}
				return nil
			})
			return got, err
		}
	}
	list := func(at func(uid uint32, cancel func())) op {
		return func(ctx context.Context, src *imapsrc.Source, f migrate.Folder, cancel func()) ([]uint32, error) {
			var got []uint32
			err := src.List(ctx, f, func(m migrate.MessageInfo) error {
				assert.Equal(t, msgs[m.UID-1].MessageID(), m.MessageID, "UID %d: Message-ID", m.UID)
				assert.Equal(t, int64(len(msgs[m.UID-1].Raw)), m.Size, "UID %d: size", m.UID)
				got = append(got, m.UID)
				at(m.UID, cancel)
				return nil
			})
			return got, err
		}
	}
	readAll := func(_ uint32, body io.Reader) ([]byte, error) { return io.ReadAll(body) }
	afterK := func(uid uint32, cancel func()) {
		if uid == k {
			cancel()
		}
	}
	// elsewhere cancels from the test's goroutine while the callback of
	// UID at waits, having read part of its body if it has one.
	reading, canceled := make(chan struct{}), make(chan struct{})
	elsewhere := func(at uint32) func(uint32, func()) {
		return func(uid uint32, _ func()) {
			if uid == at {
				close(reading)
				<-canceled
			}
		}
	}
	readingBig := func(uid uint32, body io.Reader) ([]byte, error) {
		if uid != bigUID {
			return io.ReadAll(body)
		}
		part := make([]byte, 256<<10)
		_, err := io.ReadFull(body, part)
		assert.NoError(t, err, "the start of the large body")
		close(reading)
		<-canceled
		rest, err := io.ReadAll(body)
		if !assert.Error(t, err, "the rest of a body whose operation was cancelled (%d of %d bytes): never a short EOF", len(part)+len(rest), big.Len()) {
			err = errors.New("the body was read to its end after the cancellation")
		}
		return nil, err
	}
	for _, tc := range []struct {
		name      string
		op        op
		elsewhere bool
		delivered int // messages delivered, whole, before the cancellation
	}{
		{"fetch, from the callback", fetch(readAll, k), false, k},
		{"fetch, while a body is read", fetch(readingBig, -1), true, bigUID - 1},
		{"list, from the callback", list(afterK), false, k},
		{"list, while the callback runs", list(elsewhere(k)), true, k},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reading, canceled = make(chan struct{}), make(chan struct{})
			var d counter
			src := imapsrc.New(&imapsrc.Options{Addr: srv.Addr(), Security: imapsrc.Plaintext, Username: "alice", Password: "secret",
				MaxUIDsPerFetch: 4, MaxBytesInFlight: 256 << 10, DialContext: d.dial})
			closeSrc(t, src)
			f := inbox(t, src)
			var events atomic.Int32
			observed := func(ctx context.Context) context.Context {
				return migrate.WithObserver(ctx, func(migrate.Event) { events.Add(1) })
			}
			ctx, cancel := context.WithCancel(observed(context.Background()))
			defer cancel()
			type result struct {
				got []uint32
				err error
			}
			done := make(chan result, 1)
			go func() {
				got, err := tc.op(ctx, src, f, cancel)
				done <- result{got, err}
			}()
			if tc.elsewhere {
				select {
				case <-reading:
				case r := <-done:
					t.Fatalf("returned before the point of cancellation: %v", r.err)
				}
				cancel()
				close(canceled)
			}
			var r result
			select {
			case r = <-done:
			case <-time.After(time.Minute): // a hang guard, not a measure
				t.Fatal("the cancelled operation did not return")
			}
			require.ErrorIs(t, r.err, context.Canceled)
			assert.Equal(t, uidsUpTo(tc.delivered), r.got, "delivered: none after the cancellation")
			open, _, total := d.stats()
			assert.Zero(t, open, "connections open: the cancelled one closed")
			assert.Empty(t, src.IdleClosed(), "connections left in the pool")
			assert.Zero(t, src.Reconnects(), "Reconnects")
			t.Logf("%d messages delivered, %d connections", len(r.got), total)

			// The next operation works, on a new connection.
			got, err := list(func(uint32, func()) {})(observed(context.Background()), src, f, nil)
			require.NoError(t, err, "List after the cancellation")
			assert.Equal(t, uidsUpTo(n), got, "listed after the cancellation")
			assert.Zero(t, src.Reconnects(), "Reconnects")
			assert.Zero(t, events.Load(), "events")
		})
	}
}

// TestCancelAtTheEnd: a List cancelled in the callback of its last
// message, once the whole answer is in go-imap's buffer (a proxy sends
// it in one piece), completes from what it has read; but its connection,
// whose socket the cancellation closed, is not left in the pool: the
// next operation opens a new one, and there is no reconnect to report.
func TestCancelAtTheEnd(t *testing.T) {
	const n = 5
	fx := bigFixture(n)
	srv := startDovecot(t, "", fx)
	p := startProxy(t, srv.Addr(), proxyOptions{holdFrom: "* 1 FETCH", holdUntil: " OK Fetch completed"})
	var d counter
	src := imapsrc.New(&imapsrc.Options{Addr: p.addr, Security: imapsrc.Plaintext, Username: "alice", Password: "secret",
		DialContext: d.dial})
	closeSrc(t, src)
	f := inbox(t, src)
	var events atomic.Int32
	ctx, cancel := context.WithCancel(migrate.WithObserver(context.Background(), func(migrate.Event) { events.Add(1) }))
	defer cancel()
	var got []uint32
	err := src.List(ctx, f, func(m migrate.MessageInfo) error {
		got = append(got, m.UID)
		if m.UID == n {
			cancel()
		}
		return nil
	})
	require.NoError(t, err, "List, complete when cancelled")
	assert.Equal(t, uidsUpTo(n), got, "listed")
	open, _, _ := d.stats()
	assert.Zero(t, open, "connections open: the cancelled one closed")
	assert.Empty(t, src.IdleClosed(), "connections left in the pool")

	got = nil
	require.NoError(t, src.List(context.Background(), f, func(m migrate.MessageInfo) error { got = append(got, m.UID); return nil }))
	assert.Equal(t, uidsUpTo(n), got, "listed next")
	_, _, total := d.stats()
	assert.Equal(t, 2, total, "connections made")
	assert.Zero(t, src.Reconnects(), "Reconnects")
	assert.Zero(t, events.Load(), "events")
}
