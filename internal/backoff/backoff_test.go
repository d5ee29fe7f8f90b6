package backoff

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestWaitDoublesUpToMax(t *testing.T) {
	p := Policy{Min: 100 * time.Millisecond, Max: time.Second, NoJitter: true}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		assert.Equal(t, w*time.Millisecond, p.Wait(i), "retry %d", i)
	}
}

func TestWaitJitterStaysInUpperHalf(t *testing.T) {
	p := Policy{Min: 10 * time.Millisecond, Max: 80 * time.Millisecond}
	for retry := range 6 {
		full := Policy{Min: p.Min, Max: p.Max, NoJitter: true}.Wait(retry)
		for range 100 {
			d := p.Wait(retry)
			assert.GreaterOrEqual(t, d, full/2)
			assert.LessOrEqual(t, d, full)
		}
	}
}

func TestZeroPolicyNeverWaits(t *testing.T) {
	assert.Zero(t, Policy{}.Wait(5))
}

func TestSleepStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	assert.ErrorIs(t, Sleep(ctx, time.Hour), context.Canceled)
	assert.NoError(t, Sleep(t.Context(), time.Millisecond))
}
