package exchangetest

import (
	"fmt"
	"math"
	"net/http"
	"time"
)

// The windows of the per-mailbox limits before Options.TimeScale divides
// them (https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits).
const (
	RequestWindow = 10 * time.Minute // Budget.MaxRequestsPerWindow
	UploadWindow  = 5 * time.Minute  // Budget.MaxUploadBytesPerWindow
)

// Budget holds Exchange Online's per-app-per-mailbox limits
// (https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits).
// A zero field means that limit is not enforced.
type Budget struct {
	// MaxConcurrentRequests is the number of requests in flight at once (4).
	MaxConcurrentRequests int
	// MaxRequestsPerWindow is the number of requests admitted in one
	// RequestWindow (10 minutes, divided by Options.TimeScale): 10,000.
	MaxRequestsPerWindow int
	// MaxUploadBytesPerWindow is the number of bytes uploaded (POST,
	// PATCH, PUT) in one UploadWindow (5 minutes, divided by
	// Options.TimeScale): 150 MB.
	MaxUploadBytesPerWindow int64
}

// DefaultBudget returns Exchange Online's documented limits: 4 concurrent
// requests, 10,000 requests per 10 minutes and 150 MB of upload per
// 5 minutes, per app per mailbox
// (https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits).
func DefaultBudget() *Budget {
	return &Budget{MaxConcurrentRequests: 4, MaxRequestsPerWindow: 10000, MaxUploadBytesPerWindow: 150 * 1024 * 1024}
}

// Budget returns a copy of the limits in force (Options.Budget), or nil
// when throttling is off. Their windows are RequestWindow and UploadWindow
// divided by TimeScale.
func (s *Server) Budget() *Budget {
	if s.opts.Budget == nil {
		return nil
	}
	b := *s.opts.Budget
	return &b
}

// TimeScale returns the factor that divides every budget window
// (Options.TimeScale; 1 when it was not set).
func (s *Server) TimeScale() float64 { return s.opts.TimeScale }

// scaled divides a budget window by Options.TimeScale.
func (s *Server) scaled(window time.Duration) time.Duration {
	return time.Duration(float64(window) / s.opts.TimeScale)
}

// budgetState tracks one mailbox's use of its Budget.
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

// isUpload reports whether a request's body counts as upload
// (https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits:
// "150 megabytes (MB) upload (PATCH, POST, PUT)").
func isUpload(method string) bool {
	return method == http.MethodPost || method == http.MethodPatch || method == http.MethodPut
}

// admit applies Options.Budget to a request for mb
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
// windows, and so the Retry-After values, are divided by the scale.
// Windows are measured on Options.Now. A
// request beyond the concurrency limit gets Retry-After 1: it depends on
// when a request in flight ends, which no window predicts.
//
// Throttled requests do not consume the request or upload budget (Graph
// does not document that they do); they are counted in Stats.Throttled
// and Stats.ThrottledBy. Each sub-request of a $batch is admitted here on
// its own, so a sub-request can be 429 while the envelope is 200
// (https://learn.microsoft.com/graph/json-batching#batch-size-limitations).
func (s *Server) admit(c *call, mb *mailbox) (release func(), rej *reply) {
	b := s.opts.Budget
	if b == nil {
		return func() {}, nil
	}
	st := s.budgets[mb]
	if st == nil {
		st = &budgetState{}
		s.budgets[mb] = st
	}
	t := s.opts.Now()
	reqWindow := s.scaled(RequestWindow)
	upWindow := s.scaled(UploadWindow)
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
	if b.MaxConcurrentRequests > 0 && st.inflight >= b.MaxConcurrentRequests {
		return throttle(reasonConcurrency, time.Second)
	}
	if b.MaxRequestsPerWindow > 0 && len(st.requests) >= b.MaxRequestsPerWindow {
		// The request fits when the oldest admissions beyond the limit
		// have left the window.
		oldest := st.requests[len(st.requests)-b.MaxRequestsPerWindow]
		return throttle(reasonRequests, oldest.Add(reqWindow).Sub(t))
	}
	n := int64(len(c.body))
	up := isUpload(c.method)
	if up && b.MaxUploadBytesPerWindow > 0 {
		var used int64
		for _, u := range st.uploads {
			used += u.n
		}
		if used+n > b.MaxUploadBytesPerWindow {
			// Wait until enough of the oldest uploads have aged out for
			// this body to fit; a body larger than the whole budget
			// waits one full window.
			wait := upWindow
			for _, u := range st.uploads {
				used -= u.n
				if used+n <= b.MaxUploadBytesPerWindow {
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

// retryAfterSeconds rounds d up to whole seconds, at least 1, for a
// Retry-After header.
func retryAfterSeconds(d time.Duration) string {
	s := int(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return fmt.Sprint(s)
}
