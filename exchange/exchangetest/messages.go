package exchangetest

import (
	"net/http"
	"slices"
)

// This file holds the message handlers.

// messageInput is a message in a request body (create or PATCH).
type messageInput struct {
	Subject                       *string           `json:"subject"`
	Body                          map[string]any    `json:"body"`
	From                          any               `json:"from"`
	Sender                        any               `json:"sender"`
	ToRecipients                  any               `json:"toRecipients"`
	CcRecipients                  any               `json:"ccRecipients"`
	BccRecipients                 any               `json:"bccRecipients"`
	ReplyTo                       any               `json:"replyTo"`
	InternetMessageHeaders        []internetHeader  `json:"internetMessageHeaders"`
	InternetMessageID             *string           `json:"internetMessageId"`
	IsRead                        *bool             `json:"isRead"`
	Attachments                   []attachmentInput `json:"attachments"`
	Flag                          *flagInput        `json:"flag"`
	Categories                    *[]string         `json:"categories"`
	Importance                    *string           `json:"importance"`
	InferenceClassification       *string           `json:"inferenceClassification"`
	SingleValueExtendedProperties []extPropJSON     `json:"singleValueExtendedProperties"`
}

// importMIME creates a message from a base64 MIME body (see readMIMEBody
// for what it refuses).
//
// With draft=false it is importMime
// (https://learn.microsoft.com/graph/api/mailfolder-importmime?view=graph-rest-beta):
// 201 and the message with isDraft=false, "as if it was delivered"; the
// full MIME is kept byte for byte.
//
// With draft=true it is the MIME form of create message
// (https://learn.microsoft.com/graph/api/user-post-messages): the result
// is always a draft.
//
// Both read the MIME's header (applyMIMEHeader) and content: body,
// bodyPreview, internetMessageHeaders and attachments (applyMIMEContent).
//
// Dates. Neither page says how receivedDateTime is set, and importMime
// takes no parameter to carry one (such as IMAP's INTERNALDATE). The
// create-message MIME example answers receivedDateTime = the creation time
// and sentDateTime = the MIME Date header; EML uploads to Exchange Online
// are reported to show the upload time as received time
// (https://github.com/thunderbird/import-export-tools-ng/issues/237). The
// emulator does the same for both: receivedDateTime = time of import,
// sentDateTime = Date header (else the time of import).
func (s *Server) importMIME(c *call, mb *mailbox, f *folder, draft bool) reply {
	raw, h, r := s.readMIMEBody(c)
	if r != nil {
		return *r
	}
	m := s.newMessage(f, draft)
	m.mime = raw
	applyMIMEHeader(m, h)
	s.applyMIMEContent(m, raw)
	mb.add(m)
	return s.entityReply(c, http.StatusCreated, messageJSON(m, c.selected(), nil))
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
	pred, r := filterQuery(c)
	if r != nil {
		return *r
	}
	expand, r := expandQuery(c)
	if r != nil {
		return *r
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
		items = append(items, messageJSON(m, c.selected(), expand.of(m)))
	}
	return s.page(c, items)
}

// getMessage answers GET .../messages/{id}
// (https://learn.microsoft.com/graph/api/message-get) with $select and
// $expand=singleValueExtendedProperties($filter=…).
func (s *Server) getMessage(c *call, m *message) reply {
	expand, r := expandQuery(c)
	if r != nil {
		return *r
	}
	out := applySelect(messageJSON(m, c.selected(), expand.of(m)), c.selected())
	return s.entityReply(c, http.StatusOK, out)
}

// messageValue answers GET .../messages/{id}/$value with the MIME content
// (https://learn.microsoft.com/graph/api/message-get#example-4-get-mime-content):
// the imported MIME, byte for byte, or for a message created from JSON a
// MIME message built from its properties (see buildMIME).
func messageValue(m *message) reply {
	body := m.mime
	if body == nil {
		body = buildMIME(m)
	}
	return rawReply("text/plain", slices.Clone(body))
}

// createMessage answers POST .../messages
// (https://learn.microsoft.com/graph/api/user-post-messages): text/plain
// is base64 MIME and always makes a draft; application/json makes a
// message from subject, body (contentType text or html), from, sender,
// toRecipients, ccRecipients, bccRecipients, replyTo, importance,
// inferenceClassification, isRead, flag, categories, internetMessageId,
// internetMessageHeaders (custom "x-" headers only, see checkHeaders),
// attachments (fileAttachments, see newAttachment) and
// singleValueExtendedProperties
// (https://learn.microsoft.com/graph/api/resources/message). Any other
// Content-Type answers 415 UnsupportedMediaType (the page names those
// two; code and message are the emulator's own).
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
// ErrorInvalidExtendedPropertyValue (see applyProp). Graph ignores
// receivedDateTime and sentDateTime in the JSON itself (reported in
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
	m := s.newMessage(f, true)
	m.body, m.from, m.sender = in.Body, in.From, in.Sender
	m.to, m.cc, m.bcc, m.replyTo = in.ToRecipients, in.CcRecipients, in.BccRecipients, in.ReplyTo
	m.headers = slices.Clone(in.InternetMessageHeaders)
	if in.Subject != nil {
		m.subject = *in.Subject
	}
	if in.InternetMessageID != nil && *in.InternetMessageID != "" {
		m.internetMessageID = *in.InternetMessageID
	}
	for _, p := range in.SingleValueExtendedProperties {
		if r := s.applyProp(c, m, p, true); r != nil {
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
	mb.add(m)
	return s.entityReply(c, http.StatusCreated, messageJSON(m, c.selected(), nil))
}

// applyCommon applies the properties that both create and update accept
// (https://learn.microsoft.com/graph/api/message-update): isRead, flag
// (status and dates, see applyFlag), categories, importance and
// inferenceClassification (focused or other; see checkEnum for the
// values refused).
func applyCommon(c *call, m *message, in *messageInput) *reply {
	if in.IsRead != nil {
		m.isRead = *in.IsRead
	}
	if in.Flag != nil {
		if r := applyFlag(c, m, in.Flag); r != nil {
			return r
		}
	}
	if in.Categories != nil {
		m.categories = slices.Clone(*in.Categories)
	}
	if in.Importance != nil {
		v, r := checkEnum(c, *in.Importance, importances)
		if r != nil {
			return r
		}
		m.importance = v
	}
	if in.InferenceClassification != nil {
		v, r := checkEnum(c, *in.InferenceClassification, inferenceClassifications)
		if r != nil {
			return r
		}
		m.inference = v
	}
	return nil
}

// patchMessage answers PATCH .../messages/{id}
// (https://learn.microsoft.com/graph/api/message-update): 200 with the
// message, or an error and nothing changed.
//
//   - If-Match: a stale ETag answers 412 ErrorIrresolvableConflict (see
//     checkIfMatch).
//   - isRead, flag (see applyFlag), categories, importance,
//     inferenceClassification, toRecipients, ccRecipients and
//     bccRecipients on any message.
//   - subject, body, from, sender, replyTo and internetMessageId on
//     drafts; on other messages subject and body are ignored and the
//     others refused (see draftOnlyMessageProps).
//   - Read-only properties (createdDateTime, receivedDateTime, isDraft, …)
//     answer 400 ErrorInvalidPropertySet (see readOnlyMessageProps).
//   - internetMessageHeaders are checked (x- names only) but ignored, as
//     custom headers are added "only when creating a message"
//     (https://learn.microsoft.com/graph/api/resources/message).
//   - singleValueExtendedProperties are stored, except that
//     PidTagMessageFlags, PidTagMessageDeliveryTime and
//     PidTagClientSubmitTime keep the value of the creation and change
//     nothing, 200 all the same: PidTagMessageFlags is read-only after the
//     first save (MS-OXCMSG 2.2.1.6), and no Microsoft page documents that
//     a later 0x0E06/0x0039 moves receivedDateTime/sentDateTime.
//     PidTagLastVerbExecuted can change.
//
// Every PATCH that succeeds saves a new version of the message: a new
// changeKey and @odata.etag (see message.touch).
func (s *Server) patchMessage(c *call, m *message) reply {
	if r := checkIfMatch(c, m); r != nil {
		return *r
	}
	in, r := readMessageInput(c)
	if r != nil {
		return *r
	}
	keys, r := patchKeys(c)
	if r != nil {
		return *r
	}
	if r := checkReadOnly(c, keys); r != nil {
		return *r
	}
	// Validate on a copy so that a bad request changes nothing.
	cp := *m
	cp.props = slices.Clone(m.props)
	if r := applyCommon(c, &cp, &in); r != nil {
		return *r
	}
	if r := applyAddressing(c, &cp, &in, keys); r != nil {
		return *r
	}
	for _, p := range in.SingleValueExtendedProperties {
		if r := s.applyProp(c, &cp, p, false); r != nil {
			return *r
		}
	}
	cp.touch()
	*m = cp
	return s.entityReply(c, http.StatusOK, messageJSON(m, c.selected(), nil))
}

// deleteMessage answers DELETE .../messages/{id}
// (https://learn.microsoft.com/graph/api/message-delete): 204 No Content.
// An If-Match header that does not name the message's current version
// answers 412 ErrorIrresolvableConflict and deletes nothing (see
// checkIfMatch; the page names no If-Match, and the emulator applies the
// rule of the update).
func deleteMessage(c *call, mb *mailbox, m *message) reply {
	if r := checkIfMatch(c, m); r != nil {
		return *r
	}
	delete(mb.messages, m.id)
	return noContent()
}
