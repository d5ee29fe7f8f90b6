package exchangetest

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"
)

// This file renders the entities as Graph's JSON.

func graphTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// messageJSON renders a message
// (https://learn.microsoft.com/graph/api/resources/message#json-representation).
// internetMessageHeaders appear only when sel ($select) names them;
// singleValueExtendedProperties only when expanded (props != nil, see
// message.shownProps). bodyPreview is made from the body (see
// bodyPreview).
func messageJSON(m *message, sel []string, props []extProp) map[string]any {
	cats := m.categories
	if cats == nil {
		cats = []string{}
	}
	out := map[string]any{
		"@odata.type":             "#microsoft.graph.message",
		"@odata.etag":             m.etag(),
		"id":                      m.id,
		"changeKey":               m.changeKey(),
		"createdDateTime":         graphTime(m.created),
		"lastModifiedDateTime":    graphTime(m.mod),
		"receivedDateTime":        graphTime(m.received),
		"sentDateTime":            graphTime(m.sent),
		"internetMessageId":       m.internetMessageID,
		"subject":                 m.subject,
		"importance":              m.importance,
		"inferenceClassification": m.inference,
		"parentFolderId":          m.folderID,
		"isRead":                  m.isRead,
		"isDraft":                 m.isDraft,
		"flag":                    m.flagJSON(),
		"categories":              cats,
		"toRecipients":            orEmpty(m.to),
		"ccRecipients":            orEmpty(m.cc),
		"bccRecipients":           orEmpty(m.bcc),
		"replyTo":                 orEmpty(m.replyTo),
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
	for _, f := range sel {
		if strings.EqualFold(f, "internetMessageHeaders") {
			hs := []map[string]any{}
			for _, h := range m.headers {
				hs = append(hs, map[string]any{"name": h.Name, "value": h.Value})
			}
			out["internetMessageHeaders"] = hs
		}
	}
	// A message always has a body; one created without any shows as empty
	// text (the emulator's rendering of "no body").
	body := m.body
	if body == nil {
		body = map[string]any{"contentType": "text", "content": ""}
	}
	out["body"], out["bodyPreview"] = body, bodyPreview(body)
	if props != nil {
		list := make([]map[string]any, 0, len(props))
		for _, p := range props {
			list = append(list, map[string]any{"id": canonicalPropID(p.id), "value": p.value})
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

// folderJSON renders a mailFolder
// (https://learn.microsoft.com/graph/api/resources/mailfolder#json-representation).
func folderJSON(mb *mailbox, f *folder) map[string]any {
	total, unread := mb.itemCount(f.id)
	return map[string]any{
		"@odata.type":      "#microsoft.graph.mailFolder",
		"id":               f.id,
		"displayName":      f.displayName,
		"parentFolderId":   f.parentID,
		"childFolderCount": mb.childCount(f.id),
		"unreadItemCount":  unread,
		"totalItemCount":   total,
		"isHidden":         f.hidden,
	}
}

// attachmentJSON renders a fileAttachment
// (https://learn.microsoft.com/graph/api/resources/fileattachment#json-representation).
// contentBytes is always included: getting an attachment "is not
// technically limited by attachment size"
// (https://learn.microsoft.com/graph/outlook-large-attachments, step 4);
// $select leaves it out.
//
// An item attachment (a message/rfc822 part of imported MIME) renders as
// an itemAttachment
// (https://learn.microsoft.com/graph/api/resources/itemattachment):
// id, lastModifiedDateTime, name, contentType, size and isInline, no
// contentBytes; its item comes with $expand (see itemJSON).
func attachmentJSON(a *attachment) map[string]any {
	if a.item {
		return map[string]any{
			"@odata.type":          "#microsoft.graph.itemAttachment",
			"id":                   a.id,
			"lastModifiedDateTime": graphTime(a.mod),
			"name":                 a.name,
			"contentType":          a.contentType,
			"size":                 len(a.content),
			"isInline":             a.isInline,
		}
	}
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

// itemJSON renders the message of an item attachment, for
// $expand=microsoft.graph.itemAttachment/item
// (https://learn.microsoft.com/graph/api/attachment-get, example 3): the
// message read from the attachment's MIME as an import reads it
// (applyMIMEHeader, readMIMEContent), with an empty id as in the
// documented answer, not read, not a draft, created, modified and
// received when the attachment was, sent at its Date. Its attachments are
// not stored anywhere; hasAttachments counts them.
func itemJSON(a *attachment) map[string]any {
	m := &message{
		flagStatus: "notFlagged", importance: "normal", inference: inferenceFocused,
		created: a.mod, mod: a.mod, received: a.mod, sent: a.mod,
	}
	applyMIMEHeader(m, parseMIMEHeader(a.content))
	c := readMIMEContent(a.content)
	m.headers, m.body, m.attachments = c.headers, c.body, c.atts
	out := messageJSON(m, nil, nil)
	out["id"] = ""
	for _, k := range []string{"@odata.etag", "changeKey", "parentFolderId"} {
		delete(out, k)
	}
	return out
}

// msgflagHasAttach is MSGFLAG_HASATTACH (mfHasAttach) of
// PidTagMessageFlags.
const msgflagHasAttach = 0x10

// messageFlags is the message's PidTagMessageFlags (Integer 0x0E07,
// MS-OXPROPS 2.792; its flags in MS-OXCMSG 2.2.1.6,
// https://learn.microsoft.com/openspecs/exchange_server_protocols/ms-oxcmsg/a0c52fe2-3014-43a7-942d-f43f6f91c366),
// as reading it answers: mfRead (0x1) when isRead, mfUnsent (0x8) when
// isDraft and mfHasAttach (0x10) when hasAttachments ("This flag
// corresponds to the message's PidTagHasAttachments property"), the
// server keeping these three up to date; the other flags as the creation
// set them (0 when it did not). The emulator sets none of the other
// flags itself (mfUnmodified, mfFromMe, mfEverRead, …): its own rule, as
// no page says when Exchange Online sets them on imported mail.
func (m *message) messageFlags() int64 {
	var n int64
	for _, p := range m.props {
		if normalizePropID(p.id) == tagMessageFlags {
			n, _ = strconv.ParseInt(strings.TrimSpace(p.value), 0, 64)
		}
	}
	n &^= msgflagRead | msgflagUnsent | msgflagHasAttach
	if m.isRead {
		n |= msgflagRead
	}
	if m.isDraft {
		n |= msgflagUnsent
	}
	if m.hasAttachment() {
		n |= msgflagHasAttach
	}
	return n
}

// shownProps are the extended properties that $expand and $filter see:
// those stored, with PidTagMessageFlags as messageFlags computes it,
// which every message has (added as "Integer 0xe07" when the creation
// did not set it).
func (m *message) shownProps() []extProp {
	flags := strconv.FormatInt(m.messageFlags(), 10)
	out := make([]extProp, 0, len(m.props)+1)
	found := false
	for _, p := range m.props {
		if normalizePropID(p.id) == tagMessageFlags {
			p.value, found = flags, true
		}
		out = append(out, p)
	}
	if !found {
		out = append(out, extProp{id: "Integer 0xe07", value: flags})
	}
	return out
}
