package exchangetest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Extended property tags with a meaning at creation time (MS-OXPROPS).
const (
	tagMessageFlags = "integer 0x0e07"    // PidTagMessageFlags
	tagDeliveryTime = "systemtime 0x0e06" // PidTagMessageDeliveryTime
	tagSubmitTime   = "systemtime 0x0039" // PidTagClientSubmitTime
	tagLastVerb     = "integer 0x1081"    // PidTagLastVerbExecuted (MS-OXOMSG, MS-OXPROPS)
	msgflagRead     = 0x1                 // MSGFLAG_READ
	msgflagUnsent   = 0x8                 // MSGFLAG_UNSENT: the item is a draft
)

// readOnlyAfterSave are the extended properties whose value only the
// creation sets: PidTagMessageFlags is read-only after the first save
// (MS-OXCMSG 2.2.1.6), and the emulator treats the delivery and submit
// times the same way, since no Microsoft page documents that changing them
// moves receivedDateTime or sentDateTime.
var readOnlyAfterSave = []string{tagMessageFlags, tagDeliveryTime, tagSubmitTime}

func graphTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// now is the emulator's clock, truncated to seconds as Graph reports times.
func now() time.Time { return time.Now().UTC().Truncate(time.Second) }

func (m *message) setProp(id, value string) {
	key := normalizePropID(id)
	for i, p := range m.props {
		if normalizePropID(p.id) == key {
			m.props[i] = extProp{id: id, value: value}
			return
		}
	}
	m.props = append(m.props, extProp{id: id, value: value})
}

func isContentType(h http.Header, want string) bool {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	return err == nil && strings.EqualFold(mt, want)
}

// decodeMIMEBody decodes a base64 request body, tolerating line breaks.
func decodeMIMEBody(body []byte) ([]byte, bool) {
	clean := bytes.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, body)
	if b, err := base64.StdEncoding.DecodeString(string(clean)); err == nil {
		return b, true
	}
	if b, err := base64.RawStdEncoding.DecodeString(string(clean)); err == nil {
		return b, true
	}
	return nil, false
}

// importMIME creates a message from a base64 MIME body.
//
// With draft=false it is importMime
// (https://learn.microsoft.com/graph/api/mailfolder-importmime?view=graph-rest-beta):
// Content-Type text/plain, the whole body is the base64 MIME with no JSON
// envelope and no parameters; 201 and the message with isDraft=false,
// "as if it was delivered"; the full MIME is kept byte for byte.
//
// With draft=true it is the MIME form of create message
// (https://learn.microsoft.com/graph/api/user-post-messages): the result
// is always a draft.
//
// Dates. Neither page says how receivedDateTime is set, and importMime
// takes no parameter to carry one (such as IMAP's INTERNALDATE). The
// create-message MIME example answers receivedDateTime = the creation time
// and sentDateTime = the MIME Date header; EML uploads to Exchange Online
// are reported to show the upload time as received time
// (https://github.com/thunderbird/import-export-tools-ng/issues/237). The
// emulator does the same for both: receivedDateTime = time of import,
// sentDateTime = Date header (else the time of import).
//
// Bodies that are not base64 answer 400 ErrorMimeContentInvalidBase64String
// (user-post-messages); bytes that do not parse as a message header block
// (net/mail) answer 400 ErrorMimeContentInvalid (EWS ResponseCode,
// https://learn.microsoft.com/exchange/client-developer/web-service-reference/responsecode).
func (s *Server) importMIME(c *call, mb *mailbox, f *folder, draft bool) reply {
	if !isContentType(c.header, "text/plain") {
		return graphError(c, http.StatusUnsupportedMediaType, "UnsupportedMediaType", "The Content-Type must be text/plain for MIME content.")
	}
	raw, ok := decodeMIMEBody(c.body)
	if !ok {
		return graphError(c, http.StatusBadRequest, codeBadBase64, msgBadBase64)
	}
	if s.reject != nil && s.reject(raw) {
		return graphError(c, http.StatusBadRequest, codeMimeInvalid, msgMimeInvalid)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil || len(msg.Header) == 0 {
		return graphError(c, http.StatusBadRequest, codeMimeInvalid, msgMimeInvalid)
	}
	t := now()
	m := &message{
		id: s.newID("AAMkAGI2"), folderID: f.id, mime: raw,
		isDraft: draft, isRead: draft, flagStatus: "notFlagged", importance: "normal",
		created: t, mod: t, received: t, sent: t,
	}
	h := msg.Header
	m.internetMessageID = strings.TrimSpace(h.Get("Message-ID"))
	if m.internetMessageID == "" {
		m.internetMessageID = "<" + strings.TrimPrefix(m.id, "AAMkAGI2") + "@exchangetest.invalid>"
	}
	if subj, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject")); err == nil {
		m.subject = subj
	} else {
		m.subject = h.Get("Subject")
	}
	if d, err := h.Date(); err == nil {
		m.sent = d.UTC()
	}
	switch strings.ToLower(strings.TrimSpace(h.Get("Importance"))) {
	case "high":
		m.importance = "high"
	case "low":
		m.importance = "low"
	}
	if mt, _, err := mime.ParseMediaType(h.Get("Content-Type")); err == nil && strings.EqualFold(mt, "multipart/mixed") {
		m.hasAttachments = true
	}
	if from, err := h.AddressList("From"); err == nil && len(from) > 0 {
		m.from = recipientJSON(from[0])
	}
	m.to = addressListJSON(h, "To")
	m.cc = addressListJSON(h, "Cc")
	s.addMessage(mb, m)
	return jsonReply(http.StatusCreated, s.messageJSON(c, mb, m, nil))
}

func recipientJSON(a *mail.Address) map[string]any {
	return map[string]any{"emailAddress": map[string]any{"name": a.Name, "address": a.Address}}
}

func addressListJSON(h mail.Header, key string) []any {
	list, err := h.AddressList(key)
	out := []any{}
	if err != nil {
		return out
	}
	for _, a := range list {
		out = append(out, recipientJSON(a))
	}
	return out
}

func (s *Server) addMessage(mb *mailbox, m *message) {
	mb.messages[m.id] = m
	mb.msgOrder = append(mb.msgOrder, m.id)
}

// messageJSON renders a message
// (https://learn.microsoft.com/graph/api/resources/message#json-representation).
// singleValueExtendedProperties appear only when expanded (props != nil).
func (s *Server) messageJSON(c *call, mb *mailbox, m *message, props []extProp) map[string]any {
	cats := m.categories
	if cats == nil {
		cats = []string{}
	}
	out := map[string]any{
		"@odata.type":          "#microsoft.graph.message",
		"@odata.etag":          fmt.Sprintf("W/\"CQAAABYAAA%d\"", m.mod.UnixNano()),
		"id":                   m.id,
		"createdDateTime":      graphTime(m.created),
		"lastModifiedDateTime": graphTime(m.mod),
		"receivedDateTime":     graphTime(m.received),
		"sentDateTime":         graphTime(m.sent),
		"internetMessageId":    m.internetMessageID,
		"subject":              m.subject,
		"importance":           m.importance,
		"parentFolderId":       m.folderID,
		"isRead":               m.isRead,
		"isDraft":              m.isDraft,
		"flag":                 map[string]any{"flagStatus": m.flagStatus},
		"categories":           cats,
		"toRecipients":         orEmpty(m.to),
		"ccRecipients":         orEmpty(m.cc),
		"bccRecipients":        orEmpty(m.bcc),
		"replyTo":              orEmpty(m.replyTo),
	}
	out["hasAttachments"] = m.hasAttachment()
	if m.from != nil {
		out["from"] = m.from
		out["sender"] = m.from
	}
	if m.sender != nil {
		out["sender"] = m.sender
	}
	// internetMessageHeaders are "Returned only on applying a $select
	// query option" (https://learn.microsoft.com/graph/api/resources/message#properties).
	for _, f := range selectList(c.query.Get("$select")) {
		if strings.EqualFold(f, "internetMessageHeaders") {
			hs := []map[string]any{}
			for _, h := range m.headers {
				hs = append(hs, map[string]any{"name": h.Name, "value": h.Value})
			}
			out["internetMessageHeaders"] = hs
		}
	}
	if m.body != nil {
		out["body"] = m.body
	}
	if props != nil {
		list := make([]map[string]any, 0, len(props))
		for _, p := range props {
			list = append(list, map[string]any{"id": p.id, "value": p.value})
		}
		out["singleValueExtendedProperties"] = list
	}
	return out
}

func orEmpty(v any) any {
	if v == nil {
		return []any{}
	}
	return v
}

// expandProps parses $expand=singleValueExtendedProperties($filter=id eq '…')
// (https://learn.microsoft.com/graph/api/singlevaluelegacyextendedproperty-get)
// and returns a function that picks the expanded properties of a message,
// or nil when they are not expanded.
func expandProps(expand string) (func(*message) []extProp, error) {
	for _, item := range splitTopLevel(expand, ',') {
		item = strings.TrimSpace(item)
		name, opts, hasOpts := strings.Cut(item, "(")
		if !strings.EqualFold(strings.TrimSpace(name), "singleValueExtendedProperties") {
			continue // other expansions are not emulated and are ignored
		}
		var pred predicate
		if hasOpts {
			opts = strings.TrimSuffix(strings.TrimSpace(opts), ")")
			for _, opt := range splitTopLevel(opts, ';') {
				k, v, _ := strings.Cut(opt, "=")
				if strings.EqualFold(strings.TrimSpace(k), "$filter") {
					p, err := parseFilter(v)
					if err != nil {
						return nil, err
					}
					pred = p
				}
			}
		}
		return func(m *message) []extProp {
			out := []extProp{}
			for _, p := range m.props {
				if pred == nil || pred(propFields(p)) {
					out = append(out, p)
				}
			}
			return out
		}, nil
	}
	return nil, nil
}

func splitTopLevel(s string, sep rune) []string {
	var out []string
	depth, start := 0, 0
	inStr := false
	for i, r := range s {
		switch {
		case r == '\'':
			inStr = !inStr
		case inStr:
		case r == '(':
			depth++
		case r == ')':
			depth--
		case r == sep && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

func propFields(p extProp) fields {
	return func(path string) (any, bool) {
		switch strings.ToLower(path) {
		case "id":
			return propID(p.id), true
		case "value":
			return p.value, true
		}
		return nil, false
	}
}

func messageFields(m *message) fields {
	return func(path string) (any, bool) {
		switch strings.ToLower(path) {
		case "id":
			return m.id, true
		case "subject":
			return m.subject, true
		case "internetmessageid":
			return m.internetMessageID, true
		case "isread":
			return m.isRead, true
		case "isdraft":
			return m.isDraft, true
		case "importance":
			return m.importance, true
		case "parentfolderid":
			return m.folderID, true
		case "hasattachments":
			return m.hasAttachment(), true
		case "receiveddatetime":
			return m.received, true
		case "sentdatetime":
			return m.sent, true
		case "createddatetime":
			return m.created, true
		case "lastmodifieddatetime":
			return m.mod, true
		case "flag/flagstatus":
			return m.flagStatus, true
		case "categories":
			var els []fields
			for _, cat := range m.categories {
				els = append(els, func(string) (any, bool) { return cat, true })
			}
			return els, true
		case "singlevalueextendedproperties":
			var els []fields
			for _, p := range m.props {
				els = append(els, propFields(p))
			}
			return els, true
		}
		return nil, false
	}
}

// listMessages lists the messages of a folder (or of the whole mailbox
// when f is nil) (https://learn.microsoft.com/graph/api/user-list-messages,
// https://learn.microsoft.com/graph/api/mailfolder-list-messages), with
// $filter (internetMessageId eq '…' per
// https://learn.microsoft.com/graph/api/resources/message#properties;
// singleValueExtendedProperties/Any(ep: ep/id eq '…' and ep/value eq '…') per
// https://learn.microsoft.com/graph/api/singlevaluelegacyextendedproperty-get),
// $top (default 10), $skip, $select, $expand and $count. Items come in
// creation order.
func (s *Server) listMessages(c *call, mb *mailbox, f *folder) reply {
	pred, err := parseFilter(c.query.Get("$filter"))
	if err != nil {
		return graphError(c, http.StatusBadRequest, "BadRequest", "Invalid filter clause: "+err.Error())
	}
	expand, err := expandProps(c.query.Get("$expand"))
	if err != nil {
		return graphError(c, http.StatusBadRequest, "BadRequest", "Invalid expand clause: "+err.Error())
	}
	var items []map[string]any
	for _, id := range mb.msgOrder {
		m, ok := mb.messages[id]
		if !ok || (f != nil && m.folderID != f.id) {
			continue
		}
		if pred != nil && !pred(messageFields(m)) {
			continue
		}
		var props []extProp
		if expand != nil {
			props = expand(m)
		}
		items = append(items, s.messageJSON(c, mb, m, props))
	}
	return s.page(c, items)
}

// getMessage answers GET .../messages/{id}
// (https://learn.microsoft.com/graph/api/message-get) with $select and
// $expand=singleValueExtendedProperties($filter=…).
func (s *Server) getMessage(c *call, mb *mailbox, m *message) reply {
	expand, err := expandProps(c.query.Get("$expand"))
	if err != nil {
		return graphError(c, http.StatusBadRequest, "BadRequest", "Invalid expand clause: "+err.Error())
	}
	var props []extProp
	if expand != nil {
		props = expand(m)
	}
	out := applySelect(s.messageJSON(c, mb, m, props), selectList(c.query.Get("$select")))
	return jsonReply(http.StatusOK, out)
}

// messageValue answers GET .../messages/{id}/$value with the MIME content
// (https://learn.microsoft.com/graph/api/message-get#example-4-get-mime-content):
// the imported MIME, byte for byte, or for a message created from JSON a
// MIME message built from its properties (see buildMIME).
func (s *Server) messageValue(m *message) reply {
	h := http.Header{}
	h.Set("Content-Type", "text/plain")
	body := m.mime
	if body == nil {
		body = buildMIME(m)
	}
	return reply{status: http.StatusOK, header: h, body: slices.Clone(body)}
}

type extPropJSON struct {
	ID    string `json:"id"`
	Value string `json:"value"`
}

type messageInput struct {
	Subject                *string           `json:"subject"`
	Body                   map[string]any    `json:"body"`
	From                   any               `json:"from"`
	Sender                 any               `json:"sender"`
	ToRecipients           any               `json:"toRecipients"`
	CcRecipients           any               `json:"ccRecipients"`
	BccRecipients          any               `json:"bccRecipients"`
	ReplyTo                any               `json:"replyTo"`
	InternetMessageHeaders []internetHeader  `json:"internetMessageHeaders"`
	InternetMessageID      *string           `json:"internetMessageId"`
	IsRead                 *bool             `json:"isRead"`
	Attachments            []attachmentInput `json:"attachments"`
	Flag                   *struct {
		FlagStatus *string `json:"flagStatus"`
	} `json:"flag"`
	Categories                    *[]string     `json:"categories"`
	Importance                    *string       `json:"importance"`
	SingleValueExtendedProperties []extPropJSON `json:"singleValueExtendedProperties"`
}

// internetHeader is an internetMessageHeader
// (https://learn.microsoft.com/graph/api/resources/internetmessageheader).
type internetHeader struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// checkHeaders applies "Add custom headers only when creating a message,
// and name them starting with 'x-'"
// (https://learn.microsoft.com/graph/api/resources/message): any other
// name answers 400 InvalidInternetMessageHeader.
func checkHeaders(c *call, hs []internetHeader) *reply {
	for _, h := range hs {
		if len(h.Name) < 2 || !strings.EqualFold(h.Name[:2], "x-") {
			r := graphError(c, http.StatusBadRequest, codeInvalidHeader, fmt.Sprintf(msgInvalidHeader, h.Name))
			return &r
		}
	}
	return nil
}

var flagStatuses = []string{"notFlagged", "flagged", "complete"}
var importances = []string{"low", "normal", "high"}

// enumValue matches an enum case-insensitively and returns its canonical
// spelling.
func enumValue(v string, allowed []string) (string, bool) {
	for _, a := range allowed {
		if strings.EqualFold(a, v) {
			return a, true
		}
	}
	return "", false
}

// applyCommon applies the properties that both create and update accept
// (https://learn.microsoft.com/graph/api/message-update): isRead, flag,
// categories, importance.
func applyCommon(c *call, m *message, in *messageInput) *reply {
	if in.IsRead != nil {
		m.isRead = *in.IsRead
	}
	if in.Flag != nil && in.Flag.FlagStatus != nil {
		v, ok := enumValue(*in.Flag.FlagStatus, flagStatuses)
		if !ok {
			r := graphError(c, http.StatusBadRequest, "RequestBodyRead", fmt.Sprintf("Requested value '%s' was not found.", *in.Flag.FlagStatus))
			return &r
		}
		m.flagStatus = v
	}
	if in.Categories != nil {
		m.categories = slices.Clone(*in.Categories)
	}
	if in.Importance != nil {
		v, ok := enumValue(*in.Importance, importances)
		if !ok {
			r := graphError(c, http.StatusBadRequest, "RequestBodyRead", fmt.Sprintf("Requested value '%s' was not found.", *in.Importance))
			return &r
		}
		m.importance = v
	}
	return nil
}

// createMessage answers POST .../messages
// (https://learn.microsoft.com/graph/api/user-post-messages): text/plain
// is base64 MIME and always makes a draft; application/json makes a
// message from subject, body (contentType text or html), from, sender,
// toRecipients, ccRecipients, bccRecipients, replyTo, importance, isRead,
// flag, categories, internetMessageId, internetMessageHeaders (custom
// "x-" headers only, see checkHeaders), attachments (fileAttachments,
// see newAttachment) and singleValueExtendedProperties
// (https://learn.microsoft.com/graph/api/resources/message).
//
// Extended properties set at creation (MS-OXPROPS for the tags):
//
//   - Integer 0x0E07, PidTagMessageFlags: the message is a draft unless
//     it is set without MSGFLAG_UNSENT (0x8); MSGFLAG_READ (0x1) sets
//     isRead, unless the JSON sets isRead itself (MS-OXCMSG 2.2.1.6).
//   - SystemTime 0x0E06, PidTagMessageDeliveryTime: receivedDateTime.
//   - SystemTime 0x0039, PidTagClientSubmitTime: sentDateTime.
//   - Integer 0x1081, PidTagLastVerbExecuted: 102 reply, 103 reply all,
//     104 forward (NOTEIVERB_REPLYTOSENDER, _REPLYTOALL, _FORWARD of
//     MS-OXOMSG; https://learn.microsoft.com/openspecs/exchange_server_protocols/ms-oxprops/4ec55eac-14b3-4dfa-adf3-340c0dcccd44);
//     Message.LastVerbExecuted.
//   - Integer 0x1080, PidTagIconIndex, and every other property: stored
//     verbatim, no effect.
//
// A value that does not parse as its type answers 400
// ErrorInvalidExtendedPropertyValue. Graph ignores receivedDateTime and
// sentDateTime in the JSON itself (reported in
// https://github.com/mguessan/davmail/pull/517), and so does the
// emulator; without the properties both are the creation time.
func (s *Server) createMessage(c *call, mb *mailbox, f *folder) reply {
	if isContentType(c.header, "text/plain") {
		return s.importMIME(c, mb, f, true)
	}
	if !isJSON(c.header) {
		return graphError(c, http.StatusUnsupportedMediaType, "UnsupportedMediaType", "Use application/json for a JSON object and text/plain for MIME content.")
	}
	in, r := readMessageInput(c)
	if r != nil {
		return *r
	}
	t := now()
	m := &message{
		id: s.newID("AAMkAGI2"), folderID: f.id,
		isDraft: true, isRead: true, flagStatus: "notFlagged", importance: "normal",
		created: t, mod: t, received: t, sent: t,
		body: in.Body, from: in.From, sender: in.Sender, to: in.ToRecipients, cc: in.CcRecipients, bcc: in.BccRecipients,
		replyTo: in.ReplyTo, headers: slices.Clone(in.InternetMessageHeaders),
	}
	if in.Subject != nil {
		m.subject = *in.Subject
	}
	if in.InternetMessageID != nil && *in.InternetMessageID != "" {
		m.internetMessageID = *in.InternetMessageID
	} else {
		m.internetMessageID = "<" + strings.TrimPrefix(m.id, "AAMkAGI2") + "@exchangetest.invalid>"
	}
	for _, p := range in.SingleValueExtendedProperties {
		if r := applyProp(c, m, p, true); r != nil {
			return *r
		}
	}
	if r := applyCommon(c, m, &in); r != nil {
		return *r
	}
	for _, ai := range in.Attachments {
		if _, r := s.addAttachment(c, m, ai); r != nil {
			return *r
		}
	}
	s.addMessage(mb, m)
	return jsonReply(http.StatusCreated, s.messageJSON(c, mb, m, nil))
}

// checkBody checks an itemBody: contentType is text or html
// (https://learn.microsoft.com/graph/api/resources/itembody).
func checkBody(c *call, body map[string]any) *reply {
	if body == nil {
		return nil
	}
	ct, _ := body["contentType"].(string)
	v, ok := enumValue(ct, []string{"text", "html"})
	if !ok && ct != "" {
		r := graphError(c, http.StatusBadRequest, "RequestBodyRead", fmt.Sprintf("Requested value '%s' was not found.", ct))
		return &r
	}
	if v == "" {
		v = "text"
	}
	body["contentType"] = v
	return nil
}

// applyProp applies one singleValueExtendedProperty to m, at creation or
// in a PATCH (see createMessage and patchMessage).
func applyProp(c *call, m *message, p extPropJSON, creating bool) *reply {
	bad := func() *reply {
		r := graphError(c, http.StatusBadRequest, "ErrorInvalidExtendedPropertyValue", "The extended property value is not valid for its type.")
		return &r
	}
	key := normalizePropID(p.ID)
	switch key {
	case tagMessageFlags, tagLastVerb:
		n, err := strconv.ParseInt(strings.TrimSpace(p.Value), 0, 64)
		if err != nil {
			return bad()
		}
		switch {
		case key == tagLastVerb:
			m.lastVerb = int(n)
		case creating:
			m.isDraft = n&msgflagUnsent != 0
			m.isRead = n&msgflagRead != 0
		}
	case tagDeliveryTime, tagSubmitTime:
		ts, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(p.Value))
		if err != nil {
			return bad()
		}
		switch {
		case !creating:
		case key == tagDeliveryTime:
			m.received = ts.UTC()
		default:
			m.sent = ts.UTC()
		}
	}
	if !creating && slices.Contains(readOnlyAfterSave, key) && m.hasProp(key) {
		return nil // accepted, and the value of the creation stays
	}
	m.setProp(p.ID, p.Value)
	return nil
}

func (m *message) hasProp(key string) bool {
	return slices.ContainsFunc(m.props, func(p extProp) bool { return normalizePropID(p.id) == key })
}

// patchMessage answers PATCH .../messages/{id}
// (https://learn.microsoft.com/graph/api/message-update): isRead, flag,
// categories and importance on any message; subject and body only while
// isDraft is true (otherwise ignored); internetMessageHeaders are
// checked (x- names only) but ignored, since custom headers are added
// "only when creating a message"
// (https://learn.microsoft.com/graph/api/resources/message).
// singleValueExtendedProperties are stored, except that PidTagMessageFlags,
// PidTagMessageDeliveryTime and PidTagClientSubmitTime keep the value of
// the creation and change nothing: PidTagMessageFlags is read-only after
// the first save (MS-OXCMSG 2.2.1.6), and no Microsoft page documents that
// a later 0x0E06/0x0039 moves receivedDateTime/sentDateTime. The PATCH
// still answers 200. PidTagLastVerbExecuted can change. 200 with the
// message; a rejected PATCH changes nothing.
func (s *Server) patchMessage(c *call, mb *mailbox, m *message) reply {
	in, r := readMessageInput(c)
	if r != nil {
		return *r
	}
	// Validate on a copy so that a bad request changes nothing.
	cp := *m
	cp.props = slices.Clone(m.props)
	if r := applyCommon(c, &cp, &in); r != nil {
		return *r
	}
	if cp.isDraft {
		if in.Subject != nil {
			cp.subject = *in.Subject
		}
		if in.Body != nil {
			cp.body = in.Body
		}
	}
	for _, p := range in.SingleValueExtendedProperties {
		if r := applyProp(c, &cp, p, false); r != nil {
			return *r
		}
	}
	cp.mod = now()
	*m = cp
	return jsonReply(http.StatusOK, s.messageJSON(c, mb, m, nil))
}

// readMessageInput decodes a message's JSON (create or PATCH) and checks
// its internet headers and body, returning the error reply if any.
func readMessageInput(c *call) (messageInput, *reply) {
	var in messageInput
	if err := json.Unmarshal(c.body, &in); err != nil {
		r := graphError(c, http.StatusBadRequest, "RequestBodyRead", "Invalid JSON in the request body: "+err.Error())
		return in, &r
	}
	if r := checkHeaders(c, in.InternetMessageHeaders); r != nil {
		return in, r
	}
	return in, checkBody(c, in.Body)
}
