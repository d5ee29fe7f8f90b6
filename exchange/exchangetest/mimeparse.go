package exchangetest

import (
	"bytes"
	"encoding/base64"
	"io"
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

// parseMIMEHeader reads the header block of a MIME message (see
// readHeader) into a mail.Header: keys canonicalized, values in order.
func parseMIMEHeader(raw []byte) mail.Header {
	fields, _ := readHeader(raw)
	return headerMap(fields)
}

// headerMap indexes fields by their canonical name.
func headerMap(fields []internetHeader) mail.Header {
	h := mail.Header{}
	for _, f := range fields {
		key := textproto.CanonicalMIMEHeaderKey(f.Name)
		h[key] = append(h[key], f.Value)
	}
	return h
}

// readHeader reads the header block at the start of raw as mail readers
// do, never failing, and returns its fields in order and the body that
// follows it. A leading mbox "From " line is skipped; a line that is not
// a field ("name:" first) is dropped when a field or the end of the
// header follows it, and otherwise begins the body; a message without a
// header has none. Each field keeps its name as written (white space
// before the colon dropped) and its value unfolded as RFC 5322 2.2.3
// says (the line breaks before folding white space removed, the white
// space kept), trimmed. The body begins after the empty line that ends
// the header, or at the line that is not a field. These are the
// emulator's own reading rules: no Microsoft page says how Exchange reads
// a malformed header.
func readHeader(raw []byte) (fields []internetHeader, body []byte) {
	rest := raw
	if bytes.HasPrefix(rest, []byte("From ")) {
		_, rest = nextLine(rest)
	}
	for len(rest) > 0 {
		line, after := nextLine(rest)
		next, _ := nextLine(after)
		switch {
		case len(line) == 0:
			return fields, after
		case isField(line):
			k, v, _ := bytes.Cut(line, []byte(":"))
			val := string(v)
			for len(next) > 0 && (next[0] == ' ' || next[0] == '\t') {
				val += string(next)
				_, after = nextLine(after)
				next, _ = nextLine(after)
			}
			fields = append(fields, internetHeader{Name: strings.TrimRight(string(k), " \t"), Value: strings.TrimSpace(val)})
		case len(after) > 0 && (len(next) == 0 || isField(next)):
			// A stray line among the fields: dropped.
		default:
			return fields, rest
		}
		rest = after
	}
	return fields, nil
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
// RFC 2047 words decoded, see wordDecoder), sentDateTime (Date, when it
// parses), importance (Importance: high or low), from (the first From
// address), toRecipients (To) and ccRecipients (Cc). hasAttachments is
// not read from the header: it follows the attachments the content has
// (see applyMIMEContent).
func applyMIMEHeader(m *message, h mail.Header) {
	if id := strings.TrimSpace(h.Get("Message-ID")); id != "" {
		m.internetMessageID = id
	}
	m.subject = decodeWords(h.Get("Subject"))
	if d, err := h.Date(); err == nil {
		m.sent = d.UTC()
	}
	switch strings.ToLower(strings.TrimSpace(h.Get("Importance"))) {
	case "high":
		m.importance = "high"
	case "low":
		m.importance = "low"
	}
	if from, err := h.AddressList("From"); err == nil && len(from) > 0 {
		m.from = recipientJSON(from[0])
	}
	m.to = addressListJSON(h, "To")
	m.cc = addressListJSON(h, "Cc")
}

// wordDecoder decodes RFC 2047 encoded words in any charset toUTF8
// knows (the others as toUTF8 reads them).
var wordDecoder = &mime.WordDecoder{CharsetReader: func(charset string, r io.Reader) (io.Reader, error) {
	b, err := io.ReadAll(r)
	return strings.NewReader(toUTF8(b, charset)), err
}}

// decodeWords decodes the RFC 2047 encoded words of a header value; a
// value that does not decode is kept as it is.
func decodeWords(v string) string {
	if d, err := wordDecoder.DecodeHeader(v); err == nil {
		return d
	}
	return v
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
