package exchangetest

import (
	"net/http"
	"time"
)

// budgetState tracks one mailbox's use of its Budgets.
type budgetState struct {
	inflight int
	requests []time.Time // admitted requests in the current window
	uploads  []upload    // admitted uploads in the current window
}

type upload struct {
	at time.Time
	n  int64
}

// Throttling reasons, as Stats.ThrottledBy names them and as the 429
// messages spell them ("Application is over its MailboxConcurrency
// limit." is the documented one, https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits;
// the two others follow its pattern).
const (
	reasonConcurrency = "MailboxConcurrency"
	reasonRequests    = "MailboxRequests"
	reasonUpload      = "MailboxUpload"
)

// countThrottled counts a 429 in Stats. s.mu is held.
func (s *Server) countThrottled(reason string) {
	s.stats.Throttled++
	s.stats.ThrottledBy[reason]++
}

// admit applies Options.Budgets to a request for mb
// (https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits:
// per app per mailbox, 4 concurrent requests, 10,000 requests per
// 10 minutes, 150 MB upload (PATCH, POST, PUT) per 5 minutes). Beyond a
// limit it answers 429 ApplicationThrottled with Retry-After in seconds
// (https://learn.microsoft.com/graph/throttling). s.mu is held; release
// must be called without it.
//
// Windows are sliding: a request (or its upload bytes) counts for exactly
// one window length after it was admitted, whenever it came. Microsoft
// states the limits as "per 10 minute period" and "within a 5 minute
// period" without saying where periods start; a sliding window is the
// strictest reading (a client that never exceeds it never exceeds any
// fixed window either), so code that passes the emulator does not rely on
// where a fixed window would reset. Retry-After is the time until enough
// of the oldest admissions leave the window for this request to fit,
// rounded up to whole seconds and at least 1; with Options.TimeScale the
// windows, and so the Retry-After values, are divided by the scale. A
// request beyond the concurrency limit gets Retry-After 1: it depends on
// when a request in flight ends, which no window predicts.
//
// Throttled requests do not consume the request or upload budget (Graph
// does not document that they do); they are counted in Stats.Throttled
// and Stats.ThrottledBy. Each sub-request of a $batch is admitted here on
// its own, so a sub-request can be 429 while the envelope is 200
// (https://learn.microsoft.com/graph/json-batching#batch-size-limitations).
func (s *Server) admit(c *call, mb *mailbox) (release func(), rej *reply) {
	b := s.opts.Budgets
	if b == nil {
		return func() {}, nil
	}
	st := s.budgets[mb]
	if st == nil {
		st = &budgetState{}
		s.budgets[mb] = st
	}
	t := time.Now()
	reqWindow := time.Duration(float64(RequestWindow) / s.opts.TimeScale)
	upWindow := time.Duration(float64(UploadWindow) / s.opts.TimeScale)
	for len(st.requests) > 0 && t.Sub(st.requests[0]) >= reqWindow {
		st.requests = st.requests[1:]
	}
	for len(st.uploads) > 0 && t.Sub(st.uploads[0].at) >= upWindow {
		st.uploads = st.uploads[1:]
	}
	throttle := func(reason string, wait time.Duration) (func(), *reply) {
		s.countThrottled(reason)
		r := graphError(c, http.StatusTooManyRequests, codeThrottled, "Application is over its "+reason+" limit.")
		r.header.Set("Retry-After", retryAfterSeconds(wait))
		return nil, &r
	}
	if b.Concurrent > 0 && st.inflight >= b.Concurrent {
		return throttle(reasonConcurrency, time.Second)
	}
	if b.RequestsPer10Min > 0 && len(st.requests) >= b.RequestsPer10Min {
		// The request fits when the oldest admissions beyond the limit
		// have left the window.
		oldest := st.requests[len(st.requests)-b.RequestsPer10Min]
		return throttle(reasonRequests, oldest.Add(reqWindow).Sub(t))
	}
	n := int64(len(c.body))
	up := isUpload(c.method)
	if up && b.UploadBytesPer5Min > 0 {
		var used int64
		for _, u := range st.uploads {
			used += u.n
		}
		if used+n > b.UploadBytesPer5Min {
			// Wait until enough of the oldest uploads have aged out for
			// this body to fit; a body larger than the whole budget
			// waits one full window.
			wait := upWindow
			for _, u := range st.uploads {
				used -= u.n
				if used+n <= b.UploadBytesPer5Min {
					wait = u.at.Add(upWindow).Sub(t)
					break
				}
			}
			return throttle(reasonUpload, wait)
		}
	}
	st.requests = append(st.requests, t)
	if up {
		st.uploads = append(st.uploads, upload{at: t, n: n})
	}
	st.inflight++
	return func() {
		s.mu.Lock()
		st.inflight--
		s.mu.Unlock()
	}, nil
}
