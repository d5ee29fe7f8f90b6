package exchangetest

import (
	"encoding/base64"
	"fmt"
	"strings"
	"time"
)

// This file renders the entities as Graph's JSON.

func graphTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// messageJSON renders a message
// (https://learn.microsoft.com/graph/api/resources/message#json-representation).
// internetMessageHeaders appear only when sel ($select) names them;
// singleValueExtendedProperties only when expanded (props != nil).
func messageJSON(m *message, sel []string, props []extProp) map[string]any {
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
	for _, f := range sel {
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
func attachmentJSON(a *attachment) map[string]any {
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
