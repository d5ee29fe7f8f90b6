package exchangetest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file emulates file attachments and their upload sessions
// (https://learn.microsoft.com/graph/outlook-large-attachments):
//
//   - under 3 MB, POST .../messages/{id}/attachments with a
//     #microsoft.graph.fileAttachment (https://learn.microsoft.com/graph/api/message-post-attachments);
//   - from 3 MB to 150 MB, POST .../attachments/createUploadSession
//     (https://learn.microsoft.com/graph/api/attachment-createuploadsession),
//     then PUT byte ranges, in order, to the opaque uploadUrl, without an
//     Authorization header.

// minUploadSessionSize is the smallest file an upload session takes:
// "Use this approach to attach a file if the file size is between 3 MB and
// 150 MB" (https://learn.microsoft.com/graph/api/attachment-createuploadsession);
// smaller ones answer ErrorAttachmentSizeShouldNotBeLessThanMinimumSize
// (https://learn.microsoft.com/graph/outlook-large-attachments#errors).
// The emulator reads "3 MB" as 3 MiB, as the 4 MB request limit is read
// as 4 MiB.
const minUploadSessionSize = 3 * 1024 * 1024

// uploadSessionLifetime is how long an upload session's uploadUrl lives.
// Microsoft documents that it expires at expirationDateTime but not for
// how long; the emulator announces 24 hours and does not enforce it.
const uploadSessionLifetime = 24 * time.Hour

type attachment struct {
	id, name, contentType, contentID string
	isInline                         bool
	content                          []byte
	mod                              time.Time
}

func (a *attachment) export() Attachment {
	return Attachment{
		ID: a.id, Name: a.name, ContentType: a.contentType, ContentID: a.contentID,
		IsInline: a.isInline, Size: len(a.content), Content: slices.Clone(a.content),
	}
}

// json renders a fileAttachment
// (https://learn.microsoft.com/graph/api/resources/fileattachment#json-representation).
// contentBytes is always included: getting an attachment "is not
// technically limited by attachment size"
// (https://learn.microsoft.com/graph/outlook-large-attachments, step 4);
// $select leaves it out.
func (a *attachment) json() map[string]any {
	var cid any
	if a.contentID != "" {
		cid = a.contentID
	}
	return map[string]any{
		"@odata.type":             "#microsoft.graph.fileAttachment",
		"@odata.mediaContentType": a.contentType,
		"id":                      a.id,
		"lastModifiedDateTime":    graphTime(a.mod),
		"name":                    a.name,
		"contentType":             a.contentType,
		"size":                    len(a.content),
		"isInline":                a.isInline,
		"contentId":               cid,
		"contentLocation":         nil,
		"contentBytes":            base64.StdEncoding.EncodeToString(a.content),
	}
}

// attachmentInput is a fileAttachment in a request body (POST
// .../attachments, or the attachments of a JSON create).
type attachmentInput struct {
	ODataType    string  `json:"@odata.type"`
	Name         *string `json:"name"`
	ContentType  string  `json:"contentType"`
	ContentBytes *string `json:"contentBytes"`
	IsInline     bool    `json:"isInline"`
	ContentID    string  `json:"contentId"`
}

// newAttachment validates an attachmentInput: "@odata.type":
// "#microsoft.graph.fileAttachment" and the required name and
// contentBytes, base64 (https://learn.microsoft.com/graph/api/resources/fileattachment).
// itemAttachment and referenceAttachment are not emulated. Without a
// contentType, the type is sniffed from the bytes, as the documented
// example answers image/gif for GIF bytes
// (https://learn.microsoft.com/graph/api/message-post-attachments).
// Error codes are the emulator's: no page names them.
func (s *Server) newAttachment(c *call, in attachmentInput) (*attachment, *reply) {
	fail := func(msg string) (*attachment, *reply) {
		r := graphError(c, http.StatusBadRequest, "ErrorInvalidRequest", msg)
		return nil, &r
	}
	if !strings.EqualFold(strings.TrimPrefix(in.ODataType, "#"), "microsoft.graph.fileAttachment") {
		return fail("Only #microsoft.graph.fileAttachment is emulated; set @odata.type.")
	}
	if in.Name == nil || *in.Name == "" || in.ContentBytes == nil {
		return fail("A file attachment needs name and contentBytes.")
	}
	content, err := base64.StdEncoding.DecodeString(*in.ContentBytes)
	if err != nil {
		return fail("contentBytes is not valid base64.")
	}
	ct := in.ContentType
	if ct == "" {
		ct = sniff(content)
	}
	return &attachment{
		id: s.newID("AAMkAGAt"), name: *in.Name, contentType: ct, contentID: in.ContentID,
		isInline: in.IsInline, content: content, mod: now(),
	}, nil
}

func sniff(b []byte) string {
	ct := http.DetectContentType(b)
	if mt, _, ok := strings.Cut(ct, ";"); ok && !strings.HasPrefix(mt, "text/") {
		return mt
	}
	return ct
}

// size is the message's size as the maximum message size measures it:
// its MIME (or its body) plus its attachments.
func (m *message) size() int64 {
	n := int64(len(m.mime))
	if m.body != nil {
		content, _ := m.body["content"].(string)
		n += int64(len(content))
	}
	for _, a := range m.attachments {
		n += int64(len(a.content))
	}
	return n
}

// hasAttachment is the message's hasAttachments: "This property doesn't
// include inline attachments" (https://learn.microsoft.com/graph/api/resources/message#properties).
func (m *message) hasAttachment() bool {
	if m.hasAttachments {
		return true
	}
	for _, a := range m.attachments {
		if !a.isInline {
			return true
		}
	}
	return false
}

// tooLarge reports whether adding n bytes takes m past Options.MaxMessageBytes.
func (s *Server) tooLarge(m *message, n int64) bool {
	return m.size()+n > s.opts.MaxMessageBytes
}

func (m *message) attachment(id string) *attachment {
	for _, a := range m.attachments {
		if a.id == id {
			return a
		}
	}
	return nil
}

// serveAttachments serves the attachments of message m. s.mu is held. It
// returns false for a method the route does not allow.
func (s *Server) serveAttachments(c *call, mb *mailbox, m *message, rt route) (reply, bool) {
	switch rt.kind {
	case "attachments":
		switch c.method {
		case http.MethodGet:
			// https://learn.microsoft.com/graph/api/message-list-attachments
			var items []map[string]any
			for _, a := range m.attachments {
				items = append(items, a.json())
			}
			return s.page(c, items), true
		case http.MethodPost:
			return s.postAttachment(c, mb, m), true
		}
	case "uploadSession":
		if c.method == http.MethodPost {
			return s.createUploadSession(c, mb, m), true
		}
	case "attachment", "attachmentValue":
		a := m.attachment(rt.attID)
		if a == nil {
			return graphError(c, http.StatusNotFound, codeItemNotFound, msgItemNotFound), true
		}
		switch {
		case rt.kind == "attachmentValue" && c.method == http.MethodGet:
			// The raw contents
			// (https://learn.microsoft.com/graph/api/attachment-get#example-6-get-the-raw-contents-of-a-file-attachment-on-a-message).
			h := http.Header{}
			h.Set("Content-Type", a.contentType)
			return reply{status: http.StatusOK, header: h, body: slices.Clone(a.content)}, true
		case rt.kind == "attachment" && c.method == http.MethodGet:
			// https://learn.microsoft.com/graph/api/attachment-get
			return jsonReply(http.StatusOK, applySelect(a.json(), selectList(c.query.Get("$select")))), true
		case rt.kind == "attachment" && c.method == http.MethodDelete:
			// https://learn.microsoft.com/graph/api/attachment-delete: 204.
			m.attachments = slices.DeleteFunc(m.attachments, func(x *attachment) bool { return x == a })
			m.mod = now()
			return reply{status: http.StatusNoContent, header: http.Header{}}, true
		}
	}
	return reply{}, false
}

// postAttachment answers POST .../messages/{id}/attachments
// (https://learn.microsoft.com/graph/api/message-post-attachments): 201
// and the attachment. The page limits it to attachments under 3 MB; the
// 4 MB request limit enforces that (3 MB of base64 content is 4 MB).
// A message that would exceed Options.MaxMessageBytes answers 400
// ErrorMessageSizeExceeded.
func (s *Server) postAttachment(c *call, mb *mailbox, m *message) reply {
	var in attachmentInput
	if err := json.Unmarshal(c.body, &in); err != nil {
		return graphError(c, http.StatusBadRequest, "RequestBodyRead", "Invalid JSON in the request body: "+err.Error())
	}
	a, rep := s.addAttachment(c, m, in)
	if rep != nil {
		return *rep
	}
	m.mod = now()
	return jsonReply(http.StatusCreated, a.json())
}

// addAttachment adds a file attachment to m, unless it is not valid
// (newAttachment) or takes m past Options.MaxMessageBytes (400
// ErrorMessageSizeExceeded).
func (s *Server) addAttachment(c *call, m *message, in attachmentInput) (*attachment, *reply) {
	a, rep := s.newAttachment(c, in)
	if rep != nil {
		return nil, rep
	}
	if s.tooLarge(m, int64(len(a.content))) {
		r := graphError(c, http.StatusBadRequest, codeMessageTooLarge, msgMessageTooLarge)
		return nil, &r
	}
	m.attachments = append(m.attachments, a)
	return a, nil
}

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
// "contentType", "isInline", "contentId"}}
// (https://learn.microsoft.com/graph/api/resources/attachmentitem; name,
// size and attachmentType are required, only "file" is emulated); 201 and
// an uploadSession {uploadUrl, expirationDateTime, nextExpectedRanges:
// ["0-"]} (https://learn.microsoft.com/graph/api/resources/uploadsession).
// A size under 3 MB answers 400
// ErrorAttachmentSizeShouldNotBeLessThanMinimumSize. The maximum message
// size is checked as bytes arrive, as Exchange reports it during the
// upload (see serveUpload).
func (s *Server) createUploadSession(c *call, mb *mailbox, m *message) reply {
	var req struct {
		AttachmentItem *struct {
			AttachmentType string `json:"attachmentType"`
			Name           string `json:"name"`
			Size           *int64 `json:"size"`
			ContentType    string `json:"contentType"`
			IsInline       bool   `json:"isInline"`
			ContentID      string `json:"contentId"`
		} `json:"AttachmentItem"`
	}
	if err := json.Unmarshal(c.body, &req); err != nil {
		return graphError(c, http.StatusBadRequest, "RequestBodyRead", "Invalid JSON in the request body: "+err.Error())
	}
	it := req.AttachmentItem
	if it == nil || it.Name == "" || it.Size == nil || !strings.EqualFold(it.AttachmentType, "file") {
		return graphError(c, http.StatusBadRequest, "ErrorInvalidRequest", "AttachmentItem needs attachmentType \"file\", name and size.")
	}
	if *it.Size < minUploadSessionSize {
		return graphError(c, http.StatusBadRequest, codeAttachmentTooSmall, msgAttachmentTooSmall)
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
		s.stats.Requests++
		s.stats.ByRoute[r.Method+" "+uploadTemplate]++
		s.mu.Unlock()
		return graphError(c, http.StatusUnauthorized, codeInvalidAudience, msgInvalidAudience)
	}
	if rep := s.readBody(c, r); rep != nil {
		return *rep
	}
	return s.dispatch(c)
}

var contentRangeRE = regexp.MustCompile(`^bytes (\d+)-(\d+)/(\d+)$`)

// serveUpload serves a request to an uploadUrl
// (https://learn.microsoft.com/graph/outlook-large-attachments). s.mu is
// held.
//
//   - PUT with "Content-Range: bytes {start}-{end}/{total}" and the bytes
//     of that range. Bytes must come in order ("You must upload bytes in a
//     file in order"), total must be the size given to
//     createUploadSession, and the body must be exactly the range. A range
//     that is not the next expected one answers 416 Requested Range Not
//     Satisfiable with code InvalidRange and the session unchanged (the
//     Outlook pages name no error; 416 is what OneDrive's upload sessions
//     answer, https://learn.microsoft.com/graph/api/driveitem-createuploadsession);
//     a missing or malformed Content-Range answers 400. A chunk is at most
//     4 MB (Options.MaxRequestBytes; "up to 4 MB each time",
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
		return graphError(c, http.StatusNotFound, codeItemNotFound, msgItemNotFound)
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
		return reply{status: http.StatusNoContent, header: http.Header{}}
	case http.MethodPut:
	default:
		return graphError(c, http.StatusMethodNotAllowed, "BadRequest", fmt.Sprintf("The HTTP method '%s' is not allowed for this resource.", c.method))
	}
	if mb.full {
		return graphError(c, http.StatusForbidden, codeQuota, msgQuota)
	}
	m := mb.messages[sess.msgID]
	if m == nil {
		delete(s.sessions, sess.id)
		return graphError(c, http.StatusNotFound, codeItemNotFound, msgItemNotFound)
	}
	sm := contentRangeRE.FindStringSubmatch(strings.TrimSpace(c.header.Get("Content-Range")))
	if sm == nil {
		return graphError(c, http.StatusBadRequest, "InvalidRange", "The Content-Range header is missing or malformed; send bytes {start}-{end}/{total}.")
	}
	start, _ := strconv.ParseInt(sm[1], 10, 64)
	end, _ := strconv.ParseInt(sm[2], 10, 64)
	total, _ := strconv.ParseInt(sm[3], 10, 64)
	next := int64(len(sess.att.content))
	if total != sess.size || start != next || end < start || end >= total || end-start+1 != int64(len(c.body)) {
		r := graphError(c, http.StatusRequestedRangeNotSatisfiable, "InvalidRange",
			fmt.Sprintf("The uploaded fragment does not match the next expected range '%d' of %d bytes.", next, sess.size))
		return r
	}
	if s.tooLarge(m, next+int64(len(c.body))) {
		delete(s.sessions, sess.id)
		return graphError(c, http.StatusBadRequest, codeMessageTooLarge, msgMessageTooLarge)
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
	m.mod = a.mod
	h := http.Header{}
	h.Set("Location", fmt.Sprintf("%s/api/v2.0/Users('%s')/Messages('%s')/Attachments('%s')",
		c.base, url.PathEscape(sess.user), url.PathEscape(m.id), a.id))
	h.Set("Content-Length", "0")
	return reply{status: http.StatusCreated, header: h}
}
