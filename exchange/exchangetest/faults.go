package exchangetest

import (
	"io"
	"net/http"
	"time"
)

// This file injects faults: failed and dropped requests, refused MIME and
// full mailboxes.

type fault struct {
	status     int
	retryAfter time.Duration
}

// FailNext makes the next n Graph requests fail with status (429, 503 or
// 504 in practice) before they reach any mailbox, with a Retry-After header
// of retryAfter in whole seconds (rounded up; omitted when retryAfter is 0)
// and a Graph error body; 429 carries code "ApplicationThrottled"
// (https://learn.microsoft.com/graph/throttling). Calls add up.
func (s *Server) FailNext(n int, status int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, fault{status: status, retryAfter: retryAfter})
	}
}

// ResetNext makes the next n requests end with the TCP connection closed
// without a response, as a dropped connection would. Calls add up.
func (s *Server) ResetNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resets += n
}

// UploadFault is a fault that FailNextUpload injects into one PUT of an
// upload session's bytes to its uploadUrl
// (https://learn.microsoft.com/graph/outlook-large-attachments).
type UploadFault struct {
	// Status, when not 0, is the status the PUT is answered with (429, 503
	// and 504 as FailNext answers them, any other with a Graph error
	// body); the bytes are not stored.
	Status int
	// Stored, when Status is 0, closes the connection without a response
	// after the bytes were stored, as an answer lost on its way back:
	// the client does not know that the range arrived. Without it the
	// connection is closed once the bytes are read, before they are
	// stored, as a connection dropped on the way.
	Stored bool
}

// FailNextUpload makes the next PUTs to upload sessions' uploadUrls, one
// per fault and in order, fail as the faults say; every other request is
// served as usual. Calls add up.
func (s *Server) FailNextUpload(faults ...UploadFault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.uploadFaults = append(s.uploadFaults, faults...)
}

// takeUploadFault takes the next upload fault (FailNextUpload) when r is
// a PUT to an uploadUrl.
func (s *Server) takeUploadFault(r *http.Request) (UploadFault, bool) {
	if r.Method != http.MethodPut {
		return UploadFault{}, false
	}
	if _, ok := parseUploadPath(r.URL.EscapedPath()); !ok {
		return UploadFault{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.uploadFaults) == 0 {
		return UploadFault{}, false
	}
	f := s.uploadFaults[0]
	s.uploadFaults = s.uploadFaults[1:]
	return f, true
}

// serveUploadFault answers a PUT to an uploadUrl with the fault f.
func (s *Server) serveUploadFault(w http.ResponseWriter, c *call, r *http.Request, f UploadFault) {
	if f.Stored && f.Status == 0 {
		_ = s.serveWire(c, r) // stored, counted; the answer is lost
		dropConnection(w)
		return
	}
	_, _ = io.Copy(io.Discard, r.Body)
	s.mu.Lock()
	s.countRequest(r.Method + " " + uploadTemplate)
	if f.Status == http.StatusTooManyRequests {
		s.countThrottled("Injected")
	}
	s.mu.Unlock()
	if f.Status == 0 {
		dropConnection(w)
		return
	}
	writeReply(w, faultReply(c, fault{status: f.Status}))
}

// RejectMIME makes every MIME import (importMime or MIME create) whose
// decoded MIME matches answer 400 ErrorMimeContentInvalid. nil removes the
// rule.
func (s *Server) RejectMIME(match func(mime []byte) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reject = match
}

// SetQuotaExceeded marks user's mailbox full (or no longer full). While it
// is full, every request that creates or changes an item or folder answers
// 403 {"error":{"code":"ErrorQuotaExceeded","message":"Mailbox has exceeded
// maximum mailbox size."}}, as reported from the field
// (https://github.com/microsoftgraph/microsoft-graph-docs-contrib/issues/6596,
// https://github.com/microsoftgraph/microsoft-graph-docs/issues/2927).
func (s *Server) SetQuotaExceeded(user string, full bool) {
	s.withMailbox(user, func(mb *mailbox) { mb.full = full })
}

// takeReset takes the next dropped connection (ResetNext), if any, and
// counts it as a request.
func (s *Server) takeReset() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.resets == 0 {
		return false
	}
	s.resets--
	s.countRequest("")
	return true
}

// dropConnection closes the client's connection without a response.
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler) // closes the connection (HTTP/2 too)
}

// nextFault takes the next injected fault, if any, counting an injected
// 429 as throttling. The caller holds s.mu.
func (s *Server) nextFault() (fault, bool) {
	if len(s.faults) == 0 {
		return fault{}, false
	}
	f := s.faults[0]
	s.faults = s.faults[1:]
	if f.status == http.StatusTooManyRequests {
		s.countThrottled("Injected")
	}
	return f, true
}

// faultReply answers an injected fault. 429 carries ApplicationThrottled
// and Retry-After (https://learn.microsoft.com/graph/throttling); 503 and
// 504 are Graph's transient server errors
// (https://learn.microsoft.com/graph/errors#http-status-codes).
func faultReply(c *call, f fault) reply {
	var rep reply
	switch f.status {
	case http.StatusTooManyRequests:
		rep = graphError(c, f.status, codeThrottled, "Application is over its MailboxConcurrency limit.")
	case http.StatusServiceUnavailable:
		rep = graphError(c, f.status, "ServiceUnavailable", "The service is temporarily unavailable. Please retry later.")
	case http.StatusGatewayTimeout:
		rep = graphError(c, f.status, "GatewayTimeout", "The request timed out.")
	default:
		rep = graphError(c, f.status, "generalException", http.StatusText(f.status))
	}
	if f.retryAfter > 0 {
		rep.header.Set("Retry-After", retryAfterSeconds(f.retryAfter))
	}
	return rep
}

// checkQuota refuses a write to a full mailbox (SetQuotaExceeded): 403
// ErrorQuotaExceeded
// (https://github.com/microsoftgraph/microsoft-graph-docs-contrib/issues/6596).
func checkQuota(c *call, mb *mailbox) *reply {
	if mb.full {
		return graphError(c, http.StatusForbidden, codeQuota, msgQuota).ref()
	}
	return nil
}
