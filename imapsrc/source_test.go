package imapsrc_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
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
			migratetest.TestSource(t, src, fx)
		})
	}
}

func TestConformanceMemServer(t *testing.T) {
	fx := migratetest.Sample()
	migratetest.TestSource(t, memSource(t, fx), fx)
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

// TestReconnectEvents: a connection that died while idle is reopened by
// the next operation, which counts it and reports it to the observer of
// its own context only, not to that of the operation before it (as two
// Engines sharing the Source would be).
func TestReconnectEvents(t *testing.T) {
	srv := startDovecot(t, "", migratetest.Sample())
	src := plain(srv.Addr(), "alice", "secret")
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
	_, err := src.Folders(observe(&before))
	require.NoError(t, err)
	// The idle connection dies (a server restart, an idle timeout): the
	// next operation reopens it, and that counts.
	require.Equal(t, 1, srv.DropConnections(), "sessions dropped")
	_, err = src.Folders(observe(&after))
	require.NoError(t, err)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, 1, src.Reconnects(), "Reconnects")
	assert.Empty(t, before, "events of the operation before the drop")
	if assert.Len(t, after, 1, "events of the operation that reconnected") {
		assert.Equal(t, migrate.EventReconnected, after[0].Kind)
		assert.Error(t, after[0].Err, "the event's cause")
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

// restartServer restarts srv as a crash would, leaving it down for down
// (connections refused), and returns once the server refuses connections,
// so that the outage has begun. back waits until the server is up again
// and returns Restart's error.
func restartServer(t *testing.T, srv *dovecottest.Server, down time.Duration) (back func() error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- srv.Restart(down) }()
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", srv.Addr(), time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Error("the server still accepts connections after Restart began")
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	return func() error { return <-errc }
}

// TestServerRestartDuringFetch: Dovecot dies while Fetch is streaming
// and comes back 2 s later on the same port, far longer than the few
// attempts MaxReconnects allows a connection that keeps dropping. Fetch
// keeps trying to reach it (ReconnectFor, by default two minutes) and
// resumes: every message arrives exactly once, intact, and the drop is
// one reconnect, reported once, however many attempts it took.
func TestServerRestartDuringFetch(t *testing.T) {
	const n = 30
	fx := bigFixture(n)
	srv := startDovecot(t, "", fx)
	// Little in flight, so that the messages after the crash cannot all
	// be sitting in the socket already.
	src := imapsrc.New(&imapsrc.Options{Addr: srv.Addr(), Security: imapsrc.Plaintext, Username: "alice", Password: "secret",
		MaxUIDsPerFetch: 4, MaxBytesInFlight: 8 << 10})
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
			back = restartServer(t, srv, 2*time.Second)
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
	require.NotNil(t, back, "the server was never restarted")
	require.NoError(t, back(), "Restart")
	for _, u := range uidsUpTo(n) {
		assert.Equal(t, 1, count[u], "UID %d: times delivered", u)
	}
	assert.Equal(t, 1, src.Reconnects(), "Reconnects")
	assert.EqualValues(t, src.Reconnects(), events.Load(), "events, one per reconnect")
}

// TestServerRestartWhileIdle: Dovecot dies between two operations and
// comes back 2 s later. The next operation finds the idle connection
// dead (or loses it at its first command), waits for the server and lists
// the whole folder; that is one reconnect.
func TestServerRestartWhileIdle(t *testing.T) {
	const n = 20
	srv := startDovecot(t, "", bigFixture(n))
	src := plain(srv.Addr(), "alice", "secret")
	closeSrc(t, src)
	f := inbox(t, src) // leaves a connection idle
	back := restartServer(t, srv, 2*time.Second)
	var got []uint32
	err := src.List(context.Background(), f, func(m migrate.MessageInfo) error {
		got = append(got, m.UID)
		return nil
	})
	require.NoError(t, err, "List")
	require.NoError(t, back(), "Restart")
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
