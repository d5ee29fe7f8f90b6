package exchangetest

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

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
	s.mu.Lock()
	if s.resets > 0 {
		s.resets--
		s.stats.Requests++
		s.mu.Unlock()
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler) // closes the connection (HTTP/2 too)
	}
	s.mu.Unlock()

	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	c := &call{method: r.Method, header: r.Header, query: r.URL.Query(), requestID: newRequestID(), base: scheme + "://" + r.Host}
	rep := s.serveWire(c, r)
	writeReply(w, rep)
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

func (s *Server) serveWire(c *call, r *http.Request) reply {
	if sid, ok := parseUploadPath(r.URL.EscapedPath()); ok {
		return s.serveUploadWire(c, r, sid)
	}
	version, segs, ok := splitPath(r.URL.EscapedPath())
	if !ok {
		return graphError(c, http.StatusBadRequest, "BadRequest", "Invalid version.")
	}
	c.version, c.segs = version, segs

	// Every request needs a bearer token
	// (https://learn.microsoft.com/graph/auth/auth-concepts#access-tokens).
	auth := r.Header.Get("Authorization")
	tok, hasBearer := strings.CutPrefix(auth, "Bearer ")
	if !hasBearer {
		tok, hasBearer = strings.CutPrefix(auth, "bearer ")
	}
	tok = strings.TrimSpace(tok)
	if !hasBearer || tok == "" {
		return graphError(c, http.StatusUnauthorized, codeInvalidToken, "Access token is empty.")
	}
	if s.opts.Token != "" && tok != s.opts.Token {
		return graphError(c, http.StatusUnauthorized, codeInvalidToken, "IDX14100: JWT is not well formed, there are no dots (.).")
	}
	if rep := s.readBody(c, r); rep != nil {
		return *rep
	}
	if len(segs) == 1 && segs[0] == "$batch" {
		return s.serveBatch(c)
	}
	return s.dispatch(c)
}

// readBody reads the request body into c.body. The request limit is 4 MB
// (https://learn.microsoft.com/graph/api/user-post-messages, "413 Request
// Entity Too Large"; https://learn.microsoft.com/graph/outlook-large-attachments:
// upload session chunks of at most 4 MB). Bodies may be gzip-compressed:
// msgraph-sdk-go's compression handler sends Content-Encoding: gzip. The
// limit applies to the uncompressed body.
func (s *Server) readBody(c *call, r *http.Request) *reply {
	fail := func(status int, code, msg string) *reply {
		rep := graphError(c, status, code, msg)
		return &rep
	}
	var body io.Reader = r.Body
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return fail(http.StatusBadRequest, "BadRequest", "The request body is not valid gzip.")
		}
		defer zr.Close()
		body = zr
	}
	limit := s.opts.MaxRequestBytes
	b, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return fail(http.StatusBadRequest, "BadRequest", "The request body could not be read.")
	}
	if int64(len(b)) > limit {
		s.mu.Lock()
		s.stats.Requests++
		s.mu.Unlock()
		return fail(http.StatusRequestEntityTooLarge, codeTooLarge, msgTooLarge)
	}
	c.body = b
	return nil
}

// splitPath splits an escaped URL path into its version and unescaped
// segments: "/v1.0/users/a%40b/mailFolders" -> "v1.0", [users a@b mailFolders].
func splitPath(escaped string) (string, []string, bool) {
	parts := strings.Split(strings.Trim(escaped, "/"), "/")
	if len(parts) < 1 {
		return "", nil, false
	}
	v := parts[0]
	if v != "v1.0" && v != "beta" {
		return "", nil, false
	}
	var segs []string
	for _, p := range parts[1:] {
		u, err := url.PathUnescape(p)
		if err != nil {
			return "", nil, false
		}
		segs = append(segs, u)
	}
	return v, segs, true
}

// route is a parsed Graph path under /users/{user}/.
type route struct {
	user     string
	kind     string // folders, folder, children, messages, message, value, import, attachments, attachment, attachmentValue, uploadSession
	folderID string // "" for /users/{user}/messages
	msgID    string
	attID    string
	tmpl     string
}

func seg(s, want string) bool { return strings.EqualFold(s, want) }

// parseRoute understands
//
//	users/{u}/mailFolders[/{id}(/childFolders/{id})*[/childFolders|/messages[/{id}[/$value|/attachments…]]|/importMime]]
//	users/{u}/messages[/{id}[/$value|/attachments…]]
//
// where attachments… is attachments[/createUploadSession|/{id}[/$value]].
func parseRoute(segs []string) (route, bool) {
	if len(segs) < 3 || !seg(segs[0], "users") {
		return route{}, false
	}
	rt := route{user: segs[1], tmpl: "/users/{user}"}
	rest := segs[2:]
	switch {
	case seg(rest[0], "mailFolders"):
		rt.tmpl += "/mailFolders"
		if len(rest) == 1 {
			rt.kind = "folders"
			return rt, true
		}
		rt.folderID = rest[1]
		rt.tmpl += "/{id}"
		rest = rest[2:]
		for len(rest) > 0 && seg(rest[0], "childFolders") {
			if len(rest) == 1 {
				rt.kind = "children"
				rt.tmpl += "/childFolders"
				return rt, true
			}
			rt.folderID = rest[1]
			rt.tmpl += "/childFolders/{id}"
			rest = rest[2:]
		}
		if len(rest) == 0 {
			rt.kind = "folder"
			return rt, true
		}
		if seg(rest[0], "importMime") || seg(rest[0], "microsoft.graph.importMime") {
			if len(rest) != 1 {
				return route{}, false
			}
			rt.kind = "import"
			rt.tmpl += "/importMime"
			return rt, true
		}
		if !seg(rest[0], "messages") {
			return route{}, false
		}
	case seg(rest[0], "messages"):
	default:
		return route{}, false
	}
	// rest[0] is "messages".
	rt.tmpl += "/messages"
	switch len(rest) {
	case 1:
		rt.kind = "messages"
	case 2:
		rt.kind, rt.msgID = "message", rest[1]
		rt.tmpl += "/{id}"
	case 3:
		rt.msgID = rest[1]
		switch {
		case rest[2] == "$value":
			rt.kind = "value"
			rt.tmpl += "/{id}/$value"
		case seg(rest[2], "attachments"):
			rt.kind = "attachments"
			rt.tmpl += "/{id}/attachments"
		default:
			return route{}, false
		}
	case 4, 5:
		if !seg(rest[2], "attachments") {
			return route{}, false
		}
		rt.msgID = rest[1]
		rt.tmpl += "/{id}/attachments"
		switch {
		case len(rest) == 4 && (seg(rest[3], "createUploadSession") || seg(rest[3], "microsoft.graph.createUploadSession")):
			rt.kind = "uploadSession"
			rt.tmpl += "/createUploadSession"
		case len(rest) == 4:
			rt.kind, rt.attID = "attachment", rest[3]
			rt.tmpl += "/{id}"
		case rest[4] == "$value":
			rt.kind, rt.attID = "attachmentValue", rest[3]
			rt.tmpl += "/{id}/$value"
		default:
			return route{}, false
		}
	default:
		return route{}, false
	}
	return rt, true
}

// dispatch serves one Graph request (from the wire, a $batch or an
// uploadUrl): it counts it, applies injected faults and budgets, and
// routes it.
func (s *Server) dispatch(c *call) reply {
	var rt route
	ok := true
	tmpl := uploadTemplate
	if c.session == "" {
		rt, ok = parseRoute(c.segs)
		tmpl = "/" + strings.Join(c.segs, "/")
		if ok {
			tmpl = rt.tmpl
		}
	}

	s.mu.Lock()
	s.stats.Requests++
	s.stats.ByRoute[c.method+" "+tmpl]++
	if isUpload(c.method) {
		s.stats.UploadBytes += int64(len(c.body))
	}
	if f, ok := s.nextFault(); ok {
		s.mu.Unlock()
		return faultReply(c, f)
	}
	if !ok {
		s.mu.Unlock()
		return graphError(c, http.StatusBadRequest, "BadRequest", fmt.Sprintf("Resource not found for the segment '%s'.", lastSeg(c.segs)))
	}
	var mb *mailbox
	if c.session != "" {
		sess := s.sessions[c.session]
		if sess == nil || sess.token != c.token {
			s.mu.Unlock()
			return graphError(c, http.StatusNotFound, codeItemNotFound, msgItemNotFound)
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
	if s.opts.Latency > 0 {
		time.Sleep(s.opts.Latency)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if c.session != "" {
		return s.serveUpload(c, mb)
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

// isUpload reports whether a request's body counts as upload
// (https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits:
// "150 megabytes (MB) upload (PATCH, POST, PUT)").
func isUpload(method string) bool {
	return method == http.MethodPost || method == http.MethodPatch || method == http.MethodPut
}

func lastSeg(segs []string) string {
	if len(segs) == 0 {
		return ""
	}
	return segs[len(segs)-1]
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

// serveRoute serves a routed request. s.mu is held.
func (s *Server) serveRoute(c *call, mb *mailbox, rt route) reply {
	writes := c.method != http.MethodGet && c.method != http.MethodHead
	if writes && mb.full {
		// https://github.com/microsoftgraph/microsoft-graph-docs-contrib/issues/6596
		return graphError(c, http.StatusForbidden, codeQuota, msgQuota)
	}
	switch rt.kind {
	case "folders", "children":
		parent := ""
		if rt.kind == "children" {
			f := mb.resolve(rt.folderID)
			if f == nil {
				return graphError(c, http.StatusNotFound, codeItemNotFound, msgItemNotFound)
			}
			parent = f.id
		} else {
			parent = mb.wellKnown["msgfolderroot"]
		}
		switch c.method {
		case http.MethodGet:
			return s.listFolders(c, mb, parent)
		case http.MethodPost:
			return s.createFolder(c, mb, parent)
		}
	case "folder":
		f := mb.resolve(rt.folderID)
		if f == nil {
			return graphError(c, http.StatusNotFound, codeItemNotFound, msgItemNotFound)
		}
		if c.method == http.MethodGet {
			return jsonReply(http.StatusOK, s.folderJSON(c, mb, f))
		}
	case "import":
		if c.method == http.MethodPost {
			f := mb.resolve(rt.folderID)
			if f == nil {
				return graphError(c, http.StatusNotFound, codeItemNotFound, msgItemNotFound)
			}
			return s.importMIME(c, mb, f, false)
		}
	case "messages":
		var f *folder
		if rt.folderID != "" {
			if f = mb.resolve(rt.folderID); f == nil {
				return graphError(c, http.StatusNotFound, codeItemNotFound, msgItemNotFound)
			}
		}
		switch c.method {
		case http.MethodGet:
			return s.listMessages(c, mb, f)
		case http.MethodPost:
			if f == nil {
				// POST /users/{id}/messages saves the draft in Drafts
				// (https://learn.microsoft.com/graph/api/user-post-messages).
				f = mb.folders[mb.wellKnown["drafts"]]
			}
			return s.createMessage(c, mb, f)
		}
	case "attachments", "attachment", "attachmentValue", "uploadSession":
		if rt.folderID != "" && mb.resolve(rt.folderID) == nil {
			return graphError(c, http.StatusNotFound, codeItemNotFound, msgItemNotFound)
		}
		m := mb.messages[rt.msgID]
		if m == nil {
			return graphError(c, http.StatusNotFound, codeItemNotFound, msgItemNotFound)
		}
		if rep, ok := s.serveAttachments(c, mb, m, rt); ok {
			return rep
		}
	case "message", "value":
		if rt.folderID != "" && mb.resolve(rt.folderID) == nil {
			return graphError(c, http.StatusNotFound, codeItemNotFound, msgItemNotFound)
		}
		m := mb.messages[rt.msgID]
		if m == nil {
			return graphError(c, http.StatusNotFound, codeItemNotFound, msgItemNotFound)
		}
		if rt.kind == "value" {
			if c.method == http.MethodGet {
				return s.messageValue(m)
			}
			break
		}
		switch c.method {
		case http.MethodGet:
			return s.getMessage(c, mb, m)
		case http.MethodPatch:
			return s.patchMessage(c, mb, m)
		case http.MethodDelete:
			// https://learn.microsoft.com/graph/api/message-delete: 204 No Content.
			delete(mb.messages, m.id)
			return reply{status: http.StatusNoContent, header: http.Header{}}
		}
	}
	return graphError(c, http.StatusMethodNotAllowed, "BadRequest", fmt.Sprintf("The HTTP method '%s' is not allowed for this resource.", c.method))
}

// resolve finds a folder by id or well-known name
// (https://learn.microsoft.com/graph/api/resources/mailfolder#well-known-folder-names).
func (mb *mailbox) resolve(idOrName string) *folder {
	if f, ok := mb.folders[idOrName]; ok {
		return f
	}
	if id, ok := mb.wellKnown[strings.ToLower(idOrName)]; ok {
		return mb.folders[id]
	}
	return nil
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

// bodyBytes trims a request body for content-type sniffing.
func isJSON(h http.Header) bool {
	ct := strings.ToLower(h.Get("Content-Type"))
	return strings.HasPrefix(ct, "application/json") || bytes.Contains([]byte(ct), []byte("+json"))
}
