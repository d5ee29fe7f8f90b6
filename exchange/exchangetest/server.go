package exchangetest

import (
	"crypto/rand"
	"encoding/base64"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"
)

// Options configures a Server. A nil *Options means defaults.
type Options struct {
	// Token, if non-empty, is the only bearer token accepted; empty
	// accepts any non-empty bearer token.
	Token string
	// Budgets enables Graph's per-app-per-mailbox throttling limits.
	// nil means no throttling.
	Budgets *Budgets
	// TimeScale divides every budget window (10 min, 5 min) so that
	// throttling tests run fast; 0 means 1.
	TimeScale float64
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
}

// The windows of the per-mailbox budgets before Options.TimeScale divides
// them (https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits).
const (
	RequestWindow = 10 * time.Minute // Budgets.RequestsPer10Min
	UploadWindow  = 5 * time.Minute  // Budgets.UploadBytesPer5Min
)

// Budgets are Exchange Online's per-app-per-mailbox limits
// (https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits).
// A zero field means that limit is not enforced.
type Budgets struct {
	// Concurrent is the number of requests in flight at once (4).
	Concurrent int
	// RequestsPer10Min is the number of requests in a 10-minute window (10,000).
	RequestsPer10Min int
	// UploadBytesPer5Min is the number of bytes uploaded (POST, PATCH, PUT)
	// in a 5-minute window (150 MB).
	UploadBytesPer5Min int64
}

// DefaultBudgets returns Exchange Online's documented limits: 4 concurrent
// requests, 10,000 requests per 10 minutes and 150 MB of upload per
// 5 minutes, per app per mailbox
// (https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits).
func DefaultBudgets() *Budgets {
	return &Budgets{Concurrent: 4, RequestsPer10Min: 10000, UploadBytesPer5Min: 150 * 1024 * 1024}
}

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

// Folder is a mail folder as the inspection API shows it.
type Folder struct {
	ID, ParentID, DisplayName, WellKnownName string
	ChildFolderCount, TotalItemCount         int
}

// Message is a message as the inspection API shows it.
type Message struct {
	ID, FolderID string
	// MIME is exactly the bytes imported (after base64 decoding); nil for
	// a message created from JSON.
	MIME              []byte
	IsDraft, IsRead   bool
	FlagStatus        string // "notFlagged", "flagged", "complete"
	Categories        []string
	Importance        string // "low", "normal", "high"
	InternetMessageID string
	Subject           string
	ReceivedDateTime  time.Time
	SentDateTime      time.Time
	CreatedDateTime   time.Time
	// ExtendedProperties maps a singleValueExtendedProperties id, as the
	// client spelled it, to its value, e.g.
	// "String {GUID} Name mailferrySourceId" -> "...".
	ExtendedProperties map[string]string
	// LastVerbExecuted is PidTagLastVerbExecuted (Integer 0x1081): 102
	// reply, 103 reply all, 104 forward (NOTEIVERB_REPLYTOSENDER,
	// NOTEIVERB_REPLYTOALL, NOTEIVERB_FORWARD of MS-OXOMSG;
	// https://learn.microsoft.com/openspecs/exchange_server_protocols/ms-oxprops/4ec55eac-14b3-4dfa-adf3-340c0dcccd44);
	// 0 when unset.
	LastVerbExecuted int
	// Attachments are the message's file attachments, in the order they
	// were added (POST .../attachments, upload sessions, or the
	// attachments of a JSON create). A MIME import keeps its attachments
	// inside MIME and lists none here.
	Attachments []Attachment
}

// Attachment is a file attachment as the inspection API shows it
// (https://learn.microsoft.com/graph/api/resources/fileattachment).
type Attachment struct {
	ID, Name, ContentType, ContentID string
	IsInline                         bool
	Size                             int
	Content                          []byte
}

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
	reject    func([]byte) bool
	stats     Stats
	budgets   map[*mailbox]*budgetState
	seq       int64
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

type fault struct {
	status     int
	retryAfter time.Duration
}

type mailbox struct {
	user      string
	folders   map[string]*folder // by id
	order     []string           // folder ids in creation order
	wellKnown map[string]string  // well-known name -> folder id
	messages  map[string]*message
	msgOrder  []string
	full      bool
}

type folder struct {
	id, parentID, displayName, wellKnown string
	hidden                               bool
	created                              int64
}

type message struct {
	id, folderID                 string
	mime                         []byte
	isDraft, isRead              bool
	flagStatus                   string
	categories                   []string
	importance                   string
	internetMessageID, subject   string
	received, sent, created, mod time.Time
	props                        []extProp // in insertion order
	body                         map[string]any
	from, sender                 any
	to, cc, bcc, replyTo         any
	headers                      []internetHeader
	hasAttachments               bool // of the MIME (multipart/mixed); see hasAttachment
	lastVerb                     int
	attachments                  []*attachment
}

type extProp struct{ id, value string }

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
		s.opts.MaxRequestBytes = 4 * 1024 * 1024
	}
	if s.opts.TimeScale <= 0 {
		s.opts.TimeScale = 1
	}
	if s.opts.MaxMessageBytes <= 0 {
		s.opts.MaxMessageBytes = 150 * 1024 * 1024
	}
	if s.opts.Budgets != nil {
		b := *s.opts.Budgets
		s.opts.Budgets = &b
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

// wellKnownFolders are created in every mailbox under msgfolderroot
// (https://learn.microsoft.com/graph/api/resources/mailfolder#well-known-folder-names).
var wellKnownFolders = []struct{ name, display string }{
	{"inbox", "Inbox"},
	{"drafts", "Drafts"},
	{"sentitems", "Sent Items"},
	{"deleteditems", "Deleted Items"},
	{"junkemail", "Junk Email"},
	{"archive", "Archive"},
	{"outbox", "Outbox"},
	{"conversationhistory", "Conversation History"},
}

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
	mb := &mailbox{
		user:      user,
		folders:   map[string]*folder{},
		wellKnown: map[string]string{},
		messages:  map[string]*message{},
	}
	// The root of the mailbox (not msgfolderroot) is hidden from every
	// listing; msgfolderroot ("Top of Information Store") is its child.
	rootID := s.newID("AAMkAGRt")
	root := s.addFolder(mb, "msgfolderroot", "Top of Information Store", rootID)
	for _, wk := range wellKnownFolders {
		s.addFolder(mb, wk.name, wk.display, root.id)
	}
	s.mailboxes[key] = mb
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

// Budgets returns a copy of the budgets in force (Options.Budgets), or nil
// when throttling is off. Their windows are RequestWindow and UploadWindow
// divided by TimeScale.
func (s *Server) Budgets() *Budgets {
	if s.opts.Budgets == nil {
		return nil
	}
	b := *s.opts.Budgets
	return &b
}

// TimeScale returns the factor that divides every budget window
// (Options.TimeScale; 1 when it was not set).
func (s *Server) TimeScale() float64 { return s.opts.TimeScale }

func (s *Server) addFolder(mb *mailbox, wellKnown, display, parent string) *folder {
	s.seq++
	f := &folder{id: s.newID("AAMkAGFd"), parentID: parent, displayName: display, wellKnown: wellKnown, created: s.seq}
	mb.folders[f.id] = f
	mb.order = append(mb.order, f.id)
	if wellKnown != "" {
		mb.wellKnown[wellKnown] = f.id
	}
	return f
}

// newID returns an opaque, unique, URL-safe id that looks like an
// Exchange id ("AAMk..."). Callers hold s.mu or own s exclusively.
func (s *Server) newID(prefix string) string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return prefix + base64.URLEncoding.EncodeToString(b[:])
}

func (s *Server) lookup(user string) *mailbox { return s.mailboxes[strings.ToLower(user)] }

func (mb *mailbox) childCount(id string) int {
	n := 0
	for _, f := range mb.folders {
		if f.parentID == id {
			n++
		}
	}
	return n
}

func (mb *mailbox) itemCount(id string) (total, unread int) {
	for _, m := range mb.messages {
		if m.folderID == id {
			total++
			if !m.isRead {
				unread++
			}
		}
	}
	return
}

// Folders returns every folder of user's mailbox (msgfolderroot and
// everything below it), in creation order; nil for an unknown mailbox.
func (s *Server) Folders(user string) []Folder {
	s.mu.Lock()
	defer s.mu.Unlock()
	mb := s.lookup(user)
	if mb == nil {
		return nil
	}
	var out []Folder
	for _, id := range mb.order {
		f := mb.folders[id]
		total, _ := mb.itemCount(id)
		out = append(out, Folder{
			ID: f.id, ParentID: f.parentID, DisplayName: f.displayName, WellKnownName: f.wellKnown,
			ChildFolderCount: mb.childCount(id), TotalItemCount: total,
		})
	}
	return out
}

// Messages returns every message in every folder of user's mailbox, in
// creation order; nil for an unknown mailbox.
func (s *Server) Messages(user string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	mb := s.lookup(user)
	if mb == nil {
		return nil
	}
	var out []Message
	for _, id := range mb.msgOrder {
		if m, ok := mb.messages[id]; ok {
			out = append(out, m.export())
		}
	}
	return out
}

// Message returns the message with the given id in user's mailbox.
func (s *Server) Message(user, id string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	mb := s.lookup(user)
	if mb == nil {
		return Message{}, false
	}
	m, ok := mb.messages[id]
	if !ok {
		return Message{}, false
	}
	return m.export(), true
}

func (m *message) export() Message {
	props := make(map[string]string, len(m.props))
	for _, p := range m.props {
		props[p.id] = p.value
	}
	var atts []Attachment
	for _, a := range m.attachments {
		atts = append(atts, a.export())
	}
	return Message{
		LastVerbExecuted: m.lastVerb, Attachments: atts,
		ID: m.id, FolderID: m.folderID, MIME: slices.Clone(m.mime),
		IsDraft: m.isDraft, IsRead: m.isRead, FlagStatus: m.flagStatus,
		Categories: slices.Clone(m.categories), Importance: m.importance,
		InternetMessageID: m.internetMessageID, Subject: m.subject,
		ReceivedDateTime: m.received, SentDateTime: m.sent, CreatedDateTime: m.created,
		ExtendedProperties: props,
	}
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
	s.mu.Lock()
	defer s.mu.Unlock()
	if mb := s.lookup(user); mb != nil {
		mb.full = full
	}
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
