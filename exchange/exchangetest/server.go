package exchangetest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Options configures a Server. A nil *Options means defaults.
type Options struct {
	// Token, if non-empty, is the only bearer token accepted; empty
	// accepts any non-empty bearer token.
	Token string
	// Budget enables Graph's per-app-per-mailbox throttling limits.
	// nil means no throttling.
	Budget *Budget
	// TimeScale divides every budget window (10 min, 5 min) so that
	// throttling tests run fast; 0 means 1.
	TimeScale float64
	// Now is the clock of the budget windows: when a request is admitted
	// and when it leaves its window, and so Retry-After. nil means
	// time.Now. A test that sets it decides when a window has passed
	// instead of waiting for it: a clock that only moves when the test
	// moves it, or the real time plus what a client's injected sleeps
	// skipped. Nothing else reads it: the dates the server stamps on
	// items are real.
	Now func() time.Time
	// MaxRequestBytes is the request size limit, measured on the
	// uncompressed body; beyond it the server answers 413.
	// 0 means 4 MB (4*1024*1024).
	MaxRequestBytes int64
	// Latency is added to every Graph request while it holds its
	// concurrency slot, so that concurrency budgets can be exceeded by
	// a test; 0 means none.
	Latency time.Duration
	// MaxMessageBytes is the mailbox's maximum message size: the body
	// plus every attachment of one message. Exchange Online's default is
	// 35 MB and administrators can raise it to 150 MB
	// (https://learn.microsoft.com/graph/api/attachment-createuploadsession,
	// tip). Beyond it, adding an attachment answers 400
	// ErrorMessageSizeExceeded. 0 means 150 MB (150*1024*1024), the
	// largest size Exchange Online allows, so that nothing is refused
	// that a tenant could accept; set 35*1024*1024 to test the default.
	MaxMessageBytes int64
	// HonourDeliveryTimePatch makes a PATCH of PidTagMessageDeliveryTime
	// (SystemTime 0x0E06) on a delivered (non-draft) message set its
	// receivedDateTime, as a tenant would that lets the PATCH after
	// importMime give an imported message its received date. Microsoft
	// documents neither behaviour, so this is the emulator's own switch,
	// for testing a client both ways. The default, false, is the
	// conservative reading: the PATCH answers 200 and receivedDateTime
	// stays, as PidTagMessageFlags is read-only after the first save
	// (MS-OXCMSG 2.2.1.6) and nothing says the delivery time is not.
	HonourDeliveryTimePatch bool
}

// Defaults of the Options limits (see MaxRequestBytes and MaxMessageBytes
// for their sources).
const (
	defaultMaxRequestBytes = 4 * 1024 * 1024
	defaultMaxMessageBytes = 150 * 1024 * 1024
)

// Server is an in-memory Microsoft Graph mail emulator served over HTTP on
// a loopback port. All its methods are safe for concurrent use.
type Server struct {
	ts   *httptest.Server
	opts Options

	mu        sync.Mutex
	mailboxes map[string]*mailbox // by lower-cased user key (id or UPN)
	noMailbox map[string]bool     // users without an Exchange mailbox, lower-cased
	sessions  map[string]*uploadSession
	faults    []fault
	resets    int
	// uploadFaults are the faults of the next PUTs to uploadUrls.
	uploadFaults []UploadFault
	reject       func([]byte) bool
	stats        Stats
	budgets      map[*mailbox]*budgetState
	seq          int64

	// admitted, if set, is called with the method and route template of
	// every request the budgets admit, before Options.Latency and before
	// it is served, while it holds its concurrency slot and without s.mu.
	// It is a hook for this package's tests (set before the server
	// starts), so that a test can hold admitted requests at a barrier
	// rather than rely on Latency outlasting the scheduler.
	admitted func(method, tmpl string)
}

// NewServer starts a Server on 127.0.0.1 with a random port, over plain
// HTTP. Close it when done. A nil opts means defaults.
func NewServer(opts *Options) *Server {
	s := newServer(opts)
	s.ts = httptest.NewServer(s)
	return s
}

// NewTLSServer is like NewServer but serves HTTPS
// (httptest.NewTLSServer); the *http.Client from Client trusts it.
func NewTLSServer(opts *Options) *Server {
	s := newServer(opts)
	s.ts = httptest.NewTLSServer(s)
	return s
}

func newServer(opts *Options) *Server {
	s := &Server{
		mailboxes: map[string]*mailbox{}, noMailbox: map[string]bool{},
		sessions: map[string]*uploadSession{}, budgets: map[*mailbox]*budgetState{},
	}
	if opts != nil {
		s.opts = *opts
	}
	if s.opts.MaxRequestBytes <= 0 {
		s.opts.MaxRequestBytes = defaultMaxRequestBytes
	}
	if s.opts.TimeScale <= 0 {
		s.opts.TimeScale = 1
	}
	if s.opts.Now == nil {
		s.opts.Now = time.Now
	}
	if s.opts.MaxMessageBytes <= 0 {
		s.opts.MaxMessageBytes = defaultMaxMessageBytes
	}
	if s.opts.Budget != nil {
		b := *s.opts.Budget
		s.opts.Budget = &b
	}
	s.stats.ByRoute = map[string]int{}
	s.stats.ThrottledBy = map[string]int{}
	return s
}

// URL returns the root URL, e.g. "http://127.0.0.1:41234". Graph paths are
// served under URL()+"/v1.0/" and URL()+"/beta/".
func (s *Server) URL() string { return s.ts.URL }

// Client returns an *http.Client that reaches the server (and trusts its
// certificate, for a TLS server).
func (s *Server) Client() *http.Client { return s.ts.Client() }

// Close shuts the server down and blocks until all requests have finished.
func (s *Server) Close() { s.ts.Close() }

// AddMailbox creates a licensed mailbox for user (an id or a UPN such as
// "alice@contoso.com"; matched case-insensitively) with the well-known
// folders. Adding an existing mailbox does nothing.
func (s *Server) AddMailbox(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := strings.ToLower(user)
	if _, ok := s.mailboxes[key]; ok {
		return
	}
	s.mailboxes[key] = s.newMailbox(user)
	delete(s.noMailbox, key)
}

// AddUserWithoutMailbox makes user (an id or a UPN) a directory user
// without an Exchange Online mailbox, such as an unlicensed user or a
// guest: every request for it answers 404 MailboxNotEnabledForRESTAPI
// "The mailbox is either inactive, soft-deleted, or is hosted on-premise."
// (https://github.com/microsoftgraph/microsoft-graph-docs/issues/10481,
// https://github.com/microsoftgraph/microsoft-graph-docs-contrib/issues/405).
// A user that is neither added this way nor with AddMailbox does not exist
// and answers 404 ErrorInvalidUser instead. It does nothing for a user
// that has a mailbox.
func (s *Server) AddUserWithoutMailbox(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := strings.ToLower(user)
	if _, ok := s.mailboxes[key]; !ok {
		s.noMailbox[key] = true
	}
}
