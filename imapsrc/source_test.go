package imapsrc_test

import (
	"context"
	"errors"
	"sync"
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
