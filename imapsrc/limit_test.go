package imapsrc_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailferry/mailferry/imapsrc"
	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

func TestServerLimit(t *testing.T) {
	srv := startDovecot(t, "", migratetest.Sample())
	var d counter
	lim := imapsrc.NewServerLimit(1)
	newSrc := func() *imapsrc.Source {
		s := imapsrc.New(&imapsrc.Options{Addr: srv.Addr(), Security: imapsrc.Plaintext, Username: "alice", Password: "secret",
			ServerLimit: lim, DialContext: d.dial})
		closeSrc(t, s)
		return s
	}
	a, b := newSrc(), newSrc()
	ctx := context.Background()

	// A's idle connection gives way to B, and back.
	for _, s := range []*imapsrc.Source{a, b, a} {
		folders(t, s)
	}
	open, peak, total := d.stats()
	assert.Equal(t, 1, open, "connections open")
	assert.Equal(t, 1, peak, "peak connections")
	assert.Equal(t, 3, total, "connections dialled")
	assert.Equal(t, 1, lim.Open(), "connections open according to the limit")

	// While A is busy, B waits for the slot, as long as its context lets it.
	f := inbox(t, a)
	inList, release := make(chan struct{}), make(chan struct{})
	done := make(chan error)
	go func() {
		first := true
		done <- a.List(ctx, f, func(migrate.MessageInfo) error {
			if first {
				first = false
				close(inList)
				<-release
			}
			return nil
		})
	}()
	<-inList
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err := b.Folders(short)
	cancel()
	assert.ErrorIs(t, err, context.DeadlineExceeded, "B while A holds the only slot")
	got := make(chan error)
	go func() {
		_, err := b.Folders(ctx)
		got <- err
	}()
	close(release)
	require.NoError(t, <-done)
	assert.NoError(t, <-got, "B after A finished")

	// Many operations of both at once never exceed the limit.
	var wg sync.WaitGroup
	for i := range 8 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			assert.NoError(t, s.List(ctx, f, func(migrate.MessageInfo) error { return nil }))
		})
	}
	wg.Wait()
	_, peak, _ = d.stats()
	assert.Equal(t, 1, peak, "peak connections with a limit of 1")
}
