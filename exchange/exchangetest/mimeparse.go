package exchangetest

import (
	"bytes"
	"encoding/base64"
	"errors"
	"mime"
	"net/mail"
	"strings"
)

// This file decodes imported MIME into the properties of the stored
// message (the reverse of mimebuild.go).

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

// parseMIMEHeader reads the header block of a MIME message; it fails when
// the bytes do not parse as one (net/mail) or it has no field.
func parseMIMEHeader(raw []byte) (mail.Header, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	if len(msg.Header) == 0 {
		return nil, errors.New("no header fields")
	}
	return msg.Header, nil
}

// applyMIMEHeader sets the properties of m that a MIME header gives:
// internetMessageId (Message-ID, when there is one), subject (Subject,
// RFC 2047 words decoded), sentDateTime (Date, when it parses),
// importance (Importance: high or low), hasAttachments (a multipart/mixed
// Content-Type), from (the first From address), toRecipients (To) and
// ccRecipients (Cc).
func applyMIMEHeader(m *message, h mail.Header) {
	if id := strings.TrimSpace(h.Get("Message-ID")); id != "" {
		m.internetMessageID = id
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
