// Package backoff is the one retry schedule of mailferry's backends:
// exponential, capped, with "equal jitter" so that callers that failed
// together do not come back together, and a context-aware Sleep.
//
// imapsrc uses it between reconnect attempts, exchange between retries of
// a request that Graph answered without a Retry-After.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy is an exponential backoff: the wait before retry n (0-based) is
// Min doubled n times, capped at Max, then jittered into its upper half.
// The zero Policy never waits.
type Policy struct {
	// Min is the wait before the first retry (before jitter).
	Min time.Duration
	// Max caps the wait (before jitter). Zero means no cap.
	Max time.Duration
	// NoJitter makes Wait return the exact capped value, for schedules
	// that must be predictable (tests, a single reconnecting client).
	NoJitter bool
}

// Wait returns the pause before retry number retry (0-based).
func (p Policy) Wait(retry int) time.Duration {
	d := p.Min
	if d <= 0 {
		return 0
	}
	for i := 0; i < retry && (p.Max <= 0 || d < p.Max); i++ {
		d *= 2
	}
	if p.Max > 0 {
		d = min(d, p.Max)
	}
	if p.NoJitter {
		return d
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// Sleep waits for d or until ctx is done, whichever comes first, and
// returns ctx.Err() in the second case. A d of zero or less returns at
// once (with ctx.Err()).
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
