package migrate_test

import (
	"context"
	"slices"
	"testing"

	"github.com/mailferry/mailferry/migrate"
)

func TestNotifyReachesOnlyTheContextsObserver(t *testing.T) {
	var a, b []migrate.EventKind
	ctxA := migrate.WithObserver(t.Context(), func(ev migrate.Event) { a = append(a, ev.Kind) })
	ctxB := migrate.WithObserver(t.Context(), func(ev migrate.Event) { b = append(b, ev.Kind) })
	migrate.Notify(ctxA, migrate.Event{Kind: migrate.EventThrottled})
	migrate.Notify(ctxB, migrate.Event{Kind: migrate.EventReconnected})
	migrate.Notify(context.Background(), migrate.Event{Kind: migrate.EventThrottled}) // nobody listens: no panic
	if !slices.Equal(a, []migrate.EventKind{migrate.EventThrottled}) || !slices.Equal(b, []migrate.EventKind{migrate.EventReconnected}) {
		t.Errorf("observer A got %v, B got %v", a, b)
	}
}
