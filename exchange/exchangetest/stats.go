package exchangetest

import "maps"

// Stats counts what the server has seen.
type Stats struct {
	// Requests is the number of Graph requests received, including the
	// ones answered with an injected fault or throttled, and including the
	// sub-requests of a $batch.
	Requests int
	// Throttled is the number of requests answered 429 (injected or by a budget).
	Throttled int
	// ThrottledBy splits Throttled by reason: "MailboxConcurrency",
	// "MailboxRequests", "MailboxUpload" (the budgets) and "Injected"
	// (FailNext).
	ThrottledBy map[string]int
	// ByRoute counts requests by method and route template, e.g.
	// "POST /users/{user}/mailFolders/{id}/importMime".
	ByRoute map[string]int
	// UploadBytes is the number of (uncompressed) request body bytes of
	// POST, PATCH and PUT requests as the mailbox sees them, throttled or
	// not: the sub-requests of a $batch count, its envelope does not; the
	// PUTs to an upload session count.
	UploadBytes int64
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.ByRoute = maps.Clone(s.stats.ByRoute)
	st.ThrottledBy = maps.Clone(s.stats.ThrottledBy)
	return st
}

// countRequest counts a request in Stats.Requests and, unless route is
// "", in Stats.ByRoute under route ("POST /$batch"). s.mu is held.
func (s *Server) countRequest(route string) {
	s.stats.Requests++
	if route != "" {
		s.stats.ByRoute[route]++
	}
}

// countThrottled counts a 429 in Stats. s.mu is held.
func (s *Server) countThrottled(reason string) {
	s.stats.Throttled++
	s.stats.ThrottledBy[reason]++
}
