package migrate_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/mailferry/mailferry/migrate"
)

func TestNotifyReachesOnlyTheContextsObserver(t *testing.T) {
	var a, b []migrate.EventKind
	ctxA := migrate.WithObserver(t.Context(), func(ev migrate.Event) { a = append(a, ev.Kind) })
	ctxB := migrate.WithObserver(t.Context(), func(ev migrate.Event) { b = append(b, ev.Kind) })
	migrate.Notify(ctxA, migrate.Event{Kind: migrate.EventThrottled})
	migrate.Notify(ctxB, migrate.Event{Kind: migrate.EventReconnected})
	migrate.Notify(context.Background(), migrate.Event{Kind: migrate.EventThrottled}) // nobody listens: no panic
	assert.Equal(t, []migrate.EventKind{migrate.EventThrottled}, a)
	assert.Equal(t, []migrate.EventKind{migrate.EventReconnected}, b)
}
