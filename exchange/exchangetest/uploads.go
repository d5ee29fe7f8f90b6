package exchangetest

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"time"
)

// This file emulates the upload sessions of file attachments from 3 MB to
// 150 MB (https://learn.microsoft.com/graph/outlook-large-attachments):
// POST .../attachments/createUploadSession
// (https://learn.microsoft.com/graph/api/attachment-createuploadsession),
// then PUT byte ranges, in order, to the opaque uploadUrl, without an
// Authorization header.

// uploadSessionLifetime is how long an upload session's uploadUrl lives.
// Microsoft documents that it expires at expirationDateTime but not for
// how long; the emulator announces 24 hours and does not enforce it.
const uploadSessionLifetime = 24 * time.Hour

// uploadSession is an attachment being uploaded in byte ranges.
type uploadSession struct {
	id, token string
	mb        *mailbox
	user      string // as the client spelled it, for URLs
	msgID     string
	att       attachment // content grows with each PUT
	size      int64
	expires   time.Time
}

// attachmentItem is the AttachmentItem of createUploadSession
// (https://learn.microsoft.com/graph/api/resources/attachmentitem).
type attachmentItem struct {
	AttachmentType string `json:"attachmentType"`
	Name           string `json:"name"`
	Size           *int64 `json:"size"`
	ContentType    string `json:"contentType"`
	IsInline       bool   `json:"isInline"`
	ContentID      string `json:"contentId"`
}

// uploadTemplate is the route template of uploadUrl requests in Stats.ByRoute.
const uploadTemplate = "/api/v2.0/Users('{user}')/Messages('{id}')/AttachmentSessions('{id}')"

var uploadPathRE = regexp.MustCompile(`^/api/v2\.0/Users\('[^/]*'\)/Messages\('[^/]*'\)/AttachmentSessions\('([^'/]+)'\)$`)

// parseUploadPath recognizes an uploadUrl path and returns its session id.
// The emulator's uploadUrls have the shape of Outlook's
// (https://learn.microsoft.com/graph/outlook-large-attachments, step 1):
// /api/v2.0/Users('{user}')/Messages('{id}')/AttachmentSessions('{id}')?authtoken=…
// on the emulator's own host.
func parseUploadPath(escaped string) (string, bool) {
	p, err := url.PathUnescape(escaped)
	if err != nil {
		return "", false
	}
	sm := uploadPathRE.FindStringSubmatch(p)
	if sm == nil {
		return "", false
	}
	return sm[1], true
}

// createUploadSession answers POST .../attachments/createUploadSession
// (https://learn.microsoft.com/graph/api/attachment-createuploadsession):
// the body is {"AttachmentItem": {"attachmentType": "file", "name", "size",
// "contentType", "isInline", "contentId"}} (see checkUploadItem for what
// it refuses); 201 and an uploadSession {uploadUrl, expirationDateTime,
// nextExpectedRanges: ["0-"]}
// (https://learn.microsoft.com/graph/api/resources/uploadsession). The
// maximum message size is checked as bytes arrive, as Exchange reports it
// during the upload (see serveUpload).
func (s *Server) createUploadSession(c *call, mb *mailbox, m *message) reply {
	var req struct {
		AttachmentItem *attachmentItem `json:"AttachmentItem"`
	}
	if r := readJSON(c, &req); r != nil {
		return *r
	}
	it := req.AttachmentItem
	if r := checkUploadItem(c, it); r != nil {
		return *r
	}
	sess := &uploadSession{
		id: s.newID("AAMkAGUs"), token: s.newID("eyJ0"), mb: mb, user: mb.user, msgID: m.id,
		att: attachment{
			name: it.Name, contentType: it.ContentType, contentID: it.ContentID, isInline: it.IsInline,
		},
		size: *it.Size, expires: time.Now().Add(uploadSessionLifetime).UTC(),
	}
	s.sessions[sess.id] = sess
	return jsonReply(http.StatusCreated, map[string]any{
		"@odata.context":     s.baseURL(c) + "/$metadata#microsoft.graph.uploadSession",
		"uploadUrl":          s.uploadURL(c, sess),
		"expirationDateTime": sess.expires.Format(time.RFC3339Nano),
		"nextExpectedRanges": []string{"0-"},
	})
}

func (s *Server) uploadURL(c *call, sess *uploadSession) string {
	base := c.base
	if base == "" {
		base = s.URL()
	}
	return fmt.Sprintf("%s/api/v2.0/Users('%s')/Messages('%s')/AttachmentSessions('%s')?authtoken=%s",
		base, url.PathEscape(sess.user), url.PathEscape(sess.msgID), sess.id, url.QueryEscape(sess.token))
}

// serveUploadWire checks a request to an uploadUrl before dispatch. The
// URL is pre-authenticated by its authtoken and must be called without an
// Authorization header (https://learn.microsoft.com/graph/outlook-large-attachments,
// step 2: "Do not specify an Authorization request header"); one that
// carries a bearer token answers 401 InvalidAudience, as Outlook does
// (https://github.com/microsoftgraph/msgraph-sdk-java-core/issues/445). An
// unknown session or authtoken answers 404 ErrorItemNotFound (the
// emulator's choice; no page says).
func (s *Server) serveUploadWire(c *call, r *http.Request, sid string) reply {
	c.session, c.token = sid, c.query.Get("authtoken")
	if r.Header.Get("Authorization") != "" {
		s.mu.Lock()
		s.countRequest(r.Method + " " + uploadTemplate)
		s.mu.Unlock()
		return graphError(c, http.StatusUnauthorized, codeInvalidAudience, msgInvalidAudience)
	}
	if rep := s.readBody(c, r); rep != nil {
		return *rep
	}
	return s.dispatch(c)
}

// serveUpload serves a request to an uploadUrl
// (https://learn.microsoft.com/graph/outlook-large-attachments). s.mu is
// held.
//
//   - PUT with "Content-Range: bytes {start}-{end}/{total}" and the bytes
//     of that range (see checkRange for the ranges it refuses). A chunk
//     is at most 4 MB (Options.MaxRequestBytes; "up to 4 MB each time",
//     https://learn.microsoft.com/graph/api/attachment-createuploadsession),
//     else 413. An intermediate chunk answers 200 with
//     {expirationDateTime, nextExpectedRanges: ["{next}"]}; the last one
//     answers 201 with an empty body and a Location header naming the new
//     attachment, .../Attachments('{id}'), and the attachment exists.
//   - DELETE cancels the session: 204.
//   - GET returns the session's state (200, as PUT's), as OneDrive
//     documents for resuming an upload
//     (https://learn.microsoft.com/graph/api/driveitem-createuploadsession#resuming-an-in-progress-upload)
//     and msgraph-sdk-go-core's LargeFileUploadTask.Resume calls it.
//
// Bytes that take the message past Options.MaxMessageBytes answer 400
// ErrorMessageSizeExceeded and end the session, as reported for Exchange
// Online (https://github.com/microsoftgraph/microsoft-graph-docs/issues/15579).
func (s *Server) serveUpload(c *call, mb *mailbox) reply {
	sess := s.sessions[c.session]
	if sess == nil {
		return notFound(c)
	}
	state := func(status int) reply {
		return jsonReply(status, map[string]any{
			"@odata.context":     c.base + "/api/v2.0/$metadata#Users('" + url.PathEscape(sess.user) + "')/Messages('" + url.PathEscape(sess.msgID) + "')/AttachmentSessions/$entity",
			"expirationDateTime": sess.expires.Format(time.RFC3339Nano),
			"nextExpectedRanges": []string{strconv.Itoa(len(sess.att.content))},
		})
	}
	switch c.method {
	case http.MethodGet:
		return state(http.StatusOK)
	case http.MethodDelete:
		delete(s.sessions, sess.id)
		return noContent()
	case http.MethodPut:
	default:
		return methodNotAllowed(c)
	}
	if r := checkQuota(c, mb); r != nil {
		return *r
	}
	m := mb.messages[sess.msgID]
	if m == nil {
		delete(s.sessions, sess.id)
		return notFound(c)
	}
	next := int64(len(sess.att.content))
	if r := checkRange(c, next, sess.size); r != nil {
		return *r
	}
	if r := s.checkMessageSize(c, m, next+int64(len(c.body))); r != nil {
		delete(s.sessions, sess.id)
		return *r
	}
	sess.att.content = append(sess.att.content, c.body...)
	if int64(len(sess.att.content)) < sess.size {
		return state(http.StatusOK)
	}
	delete(s.sessions, sess.id)
	a := sess.att
	a.id, a.mod = s.newID("AAMkAGAt"), now()
	if a.contentType == "" {
		a.contentType = sniff(a.content)
	}
	m.attachments = append(m.attachments, &a)
	m.touch()
	h := http.Header{}
	h.Set("Location", fmt.Sprintf("%s/api/v2.0/Users('%s')/Messages('%s')/Attachments('%s')",
		c.base, url.PathEscape(sess.user), url.PathEscape(m.id), a.id))
	h.Set("Content-Length", "0")
	return reply{status: http.StatusCreated, header: h}
}
