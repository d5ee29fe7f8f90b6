package exchangetest

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// This file is the request pipeline: from the wire to a mailbox, through
// the token, the body, injected faults and the budgets.

// call is one Graph request, from the wire or from a $batch.
type call struct {
	method    string
	version   string // "v1.0" or "beta"
	segs      []string
	query     url.Values
	header    http.Header
	body      []byte
	requestID string
	base      string // scheme://host the client used, for links
	// session and token identify an upload session when the request was
	// sent to an uploadUrl rather than to a Graph path.
	session, token string
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// ServeHTTP serves the Graph API. Server is an http.Handler so that it can
// also be mounted elsewhere; NewServer already serves it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Dropped connections come first: they model the network, not Graph.
	if s.takeReset() {
		dropConnection(w)
		return
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	c := &call{method: r.Method, header: r.Header, query: r.URL.Query(), requestID: newRequestID(), base: scheme + "://" + r.Host}
	if f, ok := s.takeUploadFault(r); ok {
		s.serveUploadFault(w, c, r, f)
		return
	}
	writeReply(w, s.serveWire(c, r))
}

func writeReply(w http.ResponseWriter, rep reply) {
	for k, v := range rep.header {
		w.Header()[k] = v
	}
	if rep.header.Get("request-id") == "" {
		w.Header().Set("request-id", newRequestID())
	}
	w.WriteHeader(rep.status)
	_, _ = w.Write(rep.body)
}

// serveWire serves a request from the wire. A path that is neither an
// uploadUrl nor under /v1.0 or /beta answers 400 BadRequest "Invalid
// version.", as Graph answers a path without its version (reported in
// https://github.com/microsoftgraph/msgraph-sample-blazor-clientside/issues/94
// and https://github.com/O365/python-o365/issues/889).
func (s *Server) serveWire(c *call, r *http.Request) reply {
	if sid, ok := parseUploadPath(r.URL.EscapedPath()); ok {
		return s.serveUploadWire(c, r, sid)
	}
	version, segs, ok := splitPath(r.URL.EscapedPath())
	if !ok {
		return graphError(c, http.StatusBadRequest, "BadRequest", "Invalid version.")
	}
	c.version, c.segs = version, segs
	if rep := s.authenticate(c, r.Header.Get("Authorization")); rep != nil {
		return *rep
	}
	if rep := s.readBody(c, r); rep != nil {
		return *rep
	}
	if len(segs) == 1 && segs[0] == "$batch" {
		return s.serveBatch(c)
	}
	return s.dispatch(c)
}

// authenticate checks the bearer token that every request needs
// (https://learn.microsoft.com/graph/auth/auth-concepts#access-tokens):
// without one it answers 401 InvalidAuthenticationToken "Access token is
// empty.", and so it does for a token other than Options.Token when that
// is set (https://learn.microsoft.com/graph/resolve-auth-errors).
func (s *Server) authenticate(c *call, auth string) *reply {
	tok, hasBearer := strings.CutPrefix(auth, "Bearer ")
	if !hasBearer {
		tok, hasBearer = strings.CutPrefix(auth, "bearer ")
	}
	tok = strings.TrimSpace(tok)
	if !hasBearer || tok == "" {
		return graphError(c, http.StatusUnauthorized, codeInvalidToken, "Access token is empty.").ref()
	}
	if s.opts.Token != "" && tok != s.opts.Token {
		return graphError(c, http.StatusUnauthorized, codeInvalidToken, "IDX14100: JWT is not well formed, there are no dots (.).").ref()
	}
	return nil
}

// readBody reads the request body into c.body. The request limit is 4 MB
// (https://learn.microsoft.com/graph/api/user-post-messages, "413 Request
// Entity Too Large"; https://learn.microsoft.com/graph/outlook-large-attachments:
// upload session chunks of at most 4 MB). Bodies may be gzip-compressed:
// msgraph-sdk-go's compression handler sends Content-Encoding: gzip. The
// limit applies to the uncompressed body. A body that is not gzip, or
// cannot be read, answers 400 BadRequest (the emulator's own answer).
func (s *Server) readBody(c *call, r *http.Request) *reply {
	var body io.Reader = r.Body
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return graphError(c, http.StatusBadRequest, "BadRequest", "The request body is not valid gzip.").ref()
		}
		defer zr.Close()
		body = zr
	}
	limit := s.opts.MaxRequestBytes
	b, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return graphError(c, http.StatusBadRequest, "BadRequest", "The request body could not be read.").ref()
	}
	if int64(len(b)) > limit {
		s.mu.Lock()
		s.countRequest("")
		s.mu.Unlock()
		return graphError(c, http.StatusRequestEntityTooLarge, codeTooLarge, msgTooLarge).ref()
	}
	c.body = b
	return nil
}

// dispatch serves one Graph request (from the wire, a $batch or an
// uploadUrl): it counts it, applies injected faults and budgets, and
// routes it. A path it does not route under its version (importMime under
// v1.0, say) answers 400 BadRequest "Resource not found for the segment
// '…'." naming the first segment it could not resolve, as Graph does
// (see parseRoute).
func (s *Server) dispatch(c *call) reply {
	var rt route
	var badSeg string
	ok := true
	tmpl := uploadTemplate
	if c.session == "" {
		rt, badSeg, ok = parseRoute(c.version, c.segs)
		tmpl = "/" + strings.Join(c.segs, "/")
		if ok {
			tmpl = rt.tmpl
		}
	}

	s.mu.Lock()
	s.countRequest(c.method + " " + tmpl)
	if isUpload(c.method) {
		s.stats.UploadBytes += int64(len(c.body))
	}
	if f, ok := s.nextFault(); ok {
		s.mu.Unlock()
		return faultReply(c, f)
	}
	if !ok {
		s.mu.Unlock()
		return graphError(c, http.StatusBadRequest, "BadRequest", fmt.Sprintf(msgSegmentNotFound, badSeg))
	}
	var mb *mailbox
	if c.session != "" {
		sess := s.sessions[c.session]
		if sess == nil || sess.token != c.token {
			s.mu.Unlock()
			return notFound(c)
		}
		mb = sess.mb
	} else if mb = s.lookup(rt.user); mb == nil {
		s.mu.Unlock()
		return s.noSuchMailbox(c, rt.user)
	}
	release, rej := s.admit(c, mb)
	s.mu.Unlock()
	if rej != nil {
		return *rej
	}
	defer release()
	if s.admitted != nil {
		s.admitted(c.method, tmpl)
	}
	if s.opts.Latency > 0 {
		time.Sleep(s.opts.Latency)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if c.session != "" {
		return s.serveUpload(c, mb)
	}
	if rep := checkQuery(c, rt.kind); rep != nil { // query options (query.go)
		return *rep
	}
	return s.serveRoute(c, mb, rt)
}

// noSuchMailbox answers a request for a user without a mailbox: 404
// MailboxNotEnabledForRESTAPI for a user added with AddUserWithoutMailbox
// (https://github.com/microsoftgraph/microsoft-graph-docs/issues/10481),
// else 404 ErrorInvalidUser "The requested user '…' is invalid.", as Graph
// answers for a user the tenant does not know
// (https://github.com/microsoftgraph/microsoft-graph-docs/issues/7909).
func (s *Server) noSuchMailbox(c *call, user string) reply {
	s.mu.Lock()
	known := s.noMailbox[strings.ToLower(user)]
	s.mu.Unlock()
	if known {
		return graphError(c, http.StatusNotFound, codeMailboxNotEnabled, msgMailboxNotEnabled)
	}
	return graphError(c, http.StatusNotFound, codeInvalidUser, fmt.Sprintf(msgInvalidUser, user))
}

// baseURL returns the absolute URL prefix for links, e.g.
// "http://127.0.0.1:1234/v1.0", from the Host the client used (so that
// links work when the handler is served on another listener).
func (s *Server) baseURL(c *call) string {
	if c.base != "" {
		return c.base + "/" + c.version
	}
	return s.URL() + "/" + c.version
}

// isJSON reports whether a Content-Type header is JSON (application/json
// or a +json type).
func isJSON(h http.Header) bool {
	ct := strings.ToLower(h.Get("Content-Type"))
	return strings.HasPrefix(ct, "application/json") || bytes.Contains([]byte(ct), []byte("+json"))
}

// isContentType reports whether the media type of a Content-Type header
// is want, ignoring its parameters.
func isContentType(h http.Header, want string) bool {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	return err == nil && strings.EqualFold(mt, want)
}
