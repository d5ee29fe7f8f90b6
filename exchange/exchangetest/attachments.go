package exchangetest

import (
	"net/http"
	"slices"
	"strings"
)

// This file holds the handlers of file attachments under 3 MB
// (https://learn.microsoft.com/graph/outlook-large-attachments): POST
// .../messages/{id}/attachments with a #microsoft.graph.fileAttachment
// (https://learn.microsoft.com/graph/api/message-post-attachments), and
// their listing, reading and deletion. Larger files come through upload
// sessions (uploads.go).

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

// newAttachment makes an attachment of an attachmentInput that
// checkFileAttachment accepts. Without a contentType, the type is sniffed
// from the bytes, as the documented example answers image/gif for GIF
// bytes (https://learn.microsoft.com/graph/api/message-post-attachments).
func (s *Server) newAttachment(c *call, in attachmentInput) (*attachment, *reply) {
	content, r := checkFileAttachment(c, in)
	if r != nil {
		return nil, r
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

// sniff returns the media type of b (http.DetectContentType), without
// parameters unless it is a text/ type.
func sniff(b []byte) string {
	ct := http.DetectContentType(b)
	if mt, _, ok := strings.Cut(ct, ";"); ok && !strings.HasPrefix(mt, "text/") {
		return mt
	}
	return ct
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
				items = append(items, attachmentJSON(a))
			}
			return s.page(c, items), true
		case http.MethodPost:
			return s.postAttachment(c, m), true
		}
	case "uploadSession":
		if c.method == http.MethodPost {
			return s.createUploadSession(c, mb, m), true
		}
	case "attachment", "attachmentValue":
		a := m.attachment(rt.attID)
		if a == nil {
			return notFound(c), true
		}
		switch {
		case rt.kind == "attachmentValue" && c.method == http.MethodGet:
			// The raw contents
			// (https://learn.microsoft.com/graph/api/attachment-get#example-6-get-the-raw-contents-of-a-file-attachment-on-a-message).
			return rawReply(a.contentType, slices.Clone(a.content)), true
		case rt.kind == "attachment" && c.method == http.MethodGet:
			// https://learn.microsoft.com/graph/api/attachment-get
			out := applySelect(attachmentJSON(a), c.selected())
			if a.item && expandsItem(c.query.Get("$expand")) {
				out["item@odata.context"] = s.itemContextURL(c)
				out["item"] = itemJSON(a)
			}
			return s.entityReply(c, http.StatusOK, out), true
		case rt.kind == "attachment" && c.method == http.MethodDelete:
			// https://learn.microsoft.com/graph/api/attachment-delete: 204.
			m.attachments = slices.DeleteFunc(m.attachments, func(x *attachment) bool { return x == a })
			m.touch()
			return noContent(), true
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
func (s *Server) postAttachment(c *call, m *message) reply {
	var in attachmentInput
	if r := readJSON(c, &in); r != nil {
		return *r
	}
	a, rep := s.addAttachment(c, m, in)
	if rep != nil {
		return *rep
	}
	m.touch()
	return s.entityReply(c, http.StatusCreated, attachmentJSON(a))
}

// addAttachment adds a file attachment to m, unless it is not valid
// (checkFileAttachment) or takes m past Options.MaxMessageBytes
// (checkMessageSize).
func (s *Server) addAttachment(c *call, m *message, in attachmentInput) (*attachment, *reply) {
	a, rep := s.newAttachment(c, in)
	if rep != nil {
		return nil, rep
	}
	if rep := s.checkMessageSize(c, m, int64(len(a.content))); rep != nil {
		return nil, rep
	}
	m.attachments = append(m.attachments, a)
	return a, nil
}

// expandsItem reports whether $expand names the item of an
// itemAttachment: "microsoft.graph.itemAttachment/item", in any case
// (https://learn.microsoft.com/graph/api/attachment-get, example 3), the
// one form checkExpand takes; "item" alone names no property of an
// attachment and checkExpand has answered it 400.
func expandsItem(expand string) bool {
	for _, e := range splitTopLevel(expand, ',') {
		if strings.EqualFold(strings.TrimSpace(e), "microsoft.graph.itemAttachment/item") {
			return true
		}
	}
	return false
}
