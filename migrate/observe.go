package migrate

import "context"

// observerKey is the context key of the run's observer.
type observerKey struct{}

// WithObserver returns a copy of ctx that carries fn as the observer of
// backend events (EventThrottled, EventReconnected). The Engine calls it
// once per mailbox run and passes the result to every Source and Sink
// call of that run, so events reach the run that caused them and no other,
// even when several Engines or runs share one backend (as
// net/http/httptrace scopes a ClientTrace to one request).
func WithObserver(ctx context.Context, fn func(Event)) context.Context {
	return context.WithValue(ctx, observerKey{}, fn)
}

// Notify reports ev to the observer that ctx carries, if any. Backends
// call it; the Engine fills in the event's Mailbox and Time. It is safe
// to call from any goroutine.
func Notify(ctx context.Context, ev Event) {
	if fn, ok := ctx.Value(observerKey{}).(func(Event)); ok && fn != nil {
		fn(ev)
	}
}
