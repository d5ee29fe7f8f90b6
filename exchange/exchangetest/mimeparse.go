package exchangetest

import (
	"bytes"
	"encoding/base64"
	"mime"
	"net/mail"
	"net/textproto"
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

// parseMIMEHeader reads the header block of a MIME message as mail
// readers do, never failing: a leading mbox "From " line is skipped; a
// line that is not a field ("name:" first) is dropped when a field or the
// end of the header follows it, and otherwise begins the body; folded
// lines are unfolded. A message without a header has an empty one. These
// are the emulator's own reading rules (no Microsoft page says how
// Exchange reads a malformed header); they only choose which fields the
// stored message shows.
func parseMIMEHeader(raw []byte) mail.Header {
	h := mail.Header{}
	rest := raw
	if bytes.HasPrefix(rest, []byte("From ")) {
		_, rest = nextLine(rest)
	}
	for len(rest) > 0 {
		line, after := nextLine(rest)
		next, _ := nextLine(after)
		switch {
		case len(line) == 0:
			return h
		case isField(line):
			k, v, _ := bytes.Cut(line, []byte(":"))
			val := strings.TrimSpace(string(v))
			for len(next) > 0 && (next[0] == ' ' || next[0] == '\t') {
				val = strings.TrimSpace(val + " " + strings.TrimSpace(string(next)))
				_, after = nextLine(after)
				next, _ = nextLine(after)
			}
			key := textproto.CanonicalMIMEHeaderKey(strings.TrimRight(string(k), " \t"))
			h[key] = append(h[key], val)
		case len(after) > 0 && (len(next) == 0 || isField(next)):
			// A stray line among the fields: dropped.
		default:
			return h
		}
		rest = after
	}
	return h
}

// nextLine returns the first line of b, without its line ending (CRLF or
// LF), and what follows it.
func nextLine(b []byte) (line, rest []byte) {
	line, rest, _ = bytes.Cut(b, []byte("\n"))
	return bytes.TrimSuffix(line, []byte("\r")), rest
}

// isField reports whether line begins with a header field name and its
// colon (RFC 5322 ftext; white space before the colon tolerated).
func isField(line []byte) bool {
	k, _, ok := bytes.Cut(line, []byte(":"))
	k = bytes.TrimRight(k, " \t")
	if !ok || len(k) == 0 {
		return false
	}
	for _, c := range k {
		if c < 33 || c > 126 {
			return false
		}
	}
	return true
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
