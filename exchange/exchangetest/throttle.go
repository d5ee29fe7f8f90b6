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

// admit applies Options.Budgets to a request for mb
// (https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits:
// per app per mailbox, 4 concurrent requests, 10,000 requests per
// 10 minutes, 150 MB upload (PATCH, POST, PUT) per 5 minutes). Beyond a
// limit it answers 429 ApplicationThrottled with Retry-After in seconds
// (https://learn.microsoft.com/graph/throttling). Windows are divided by
// Options.TimeScale. s.mu is held; release must be called without it.
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
	reqWindow := time.Duration(float64(10*time.Minute) / s.opts.TimeScale)
	upWindow := time.Duration(float64(5*time.Minute) / s.opts.TimeScale)
	for len(st.requests) > 0 && t.Sub(st.requests[0]) >= reqWindow {
		st.requests = st.requests[1:]
	}
	for len(st.uploads) > 0 && t.Sub(st.uploads[0].at) >= upWindow {
		st.uploads = st.uploads[1:]
	}
	throttle := func(msg string, wait time.Duration) (func(), *reply) {
		s.stats.Throttled++
		r := graphError(c, http.StatusTooManyRequests, codeThrottled, msg)
		r.header.Set("Retry-After", retryAfterSeconds(wait))
		return nil, &r
	}
	if b.Concurrent > 0 && st.inflight >= b.Concurrent {
		return throttle("Application is over its MailboxConcurrency limit.", time.Second)
	}
	if b.RequestsPer10Min > 0 && len(st.requests) >= b.RequestsPer10Min {
		return throttle("Application is over its MailboxRequests limit.", st.requests[0].Add(reqWindow).Sub(t))
	}
	isUpload := c.method == http.MethodPost || c.method == http.MethodPatch || c.method == http.MethodPut
	if isUpload && b.UploadBytesPer5Min > 0 {
		var used int64
		for _, u := range st.uploads {
			used += u.n
		}
		if used+int64(len(c.body)) > b.UploadBytesPer5Min {
			wait := upWindow
			if len(st.uploads) > 0 {
				wait = st.uploads[0].at.Add(upWindow).Sub(t)
			}
			return throttle("Application is over its MailboxUpload limit.", wait)
		}
	}
	st.requests = append(st.requests, t)
	if isUpload {
		st.uploads = append(st.uploads, upload{at: t, n: int64(len(c.body))})
	}
	st.inflight++
	return func() {
		s.mu.Lock()
		st.inflight--
		s.mu.Unlock()
	}, nil
}
