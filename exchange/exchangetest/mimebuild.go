package exchangetest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"time"
)

// buildMIME writes the MIME content of a message created from JSON, which
// has none of its own, so that GET .../$value returns something a test
// can compare with the source: Exchange converts such items to MIME on
// request (https://learn.microsoft.com/graph/api/message-get#example-4-get-mime-content;
// the exact bytes Exchange writes are not documented and are not
// reproduced). The header carries From, Sender (when it differs), To, Cc,
// Reply-To, Subject, Date (sentDateTime), Message-ID, Importance (when not
// normal) and the custom internetMessageHeaders; the body is quoted-printable
// UTF-8 text/plain or text/html. With attachments the message is
// multipart/mixed: the body, then each attachment base64-encoded with its
// name, type and, for an inline one, its Content-ID.
func buildMIME(m *message) []byte {
	var b bytes.Buffer
	hdr := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	from := addressList(m.from)
	if from != "" {
		hdr("From", from)
	}
	if sender := addressList(m.sender); sender != "" && sender != from {
		hdr("Sender", sender)
	}
	for _, h := range []struct {
		name string
		v    any
	}{{"To", m.to}, {"Cc", m.cc}, {"Reply-To", m.replyTo}} {
		if list := addressList(h.v); list != "" {
			hdr(h.name, list)
		}
	}
	hdr("Subject", mime.QEncoding.Encode("utf-8", m.subject))
	hdr("Date", m.sent.Format(time.RFC1123Z))
	hdr("Message-ID", m.internetMessageID)
	if m.importance != "" && m.importance != "normal" {
		hdr("Importance", m.importance)
	}
	for _, h := range m.headers {
		hdr(h.Name, mime.QEncoding.Encode("utf-8", h.Value))
	}
	hdr("MIME-Version", "1.0")

	ct, content := "text/plain", ""
	if m.body != nil {
		if t, _ := m.body["contentType"].(string); strings.EqualFold(t, "html") {
			ct = "text/html"
		}
		content, _ = m.body["content"].(string)
	}
	bodyHeader := textproto.MIMEHeader{}
	bodyHeader.Set("Content-Type", ct+"; charset=utf-8")
	bodyHeader.Set("Content-Transfer-Encoding", "quoted-printable")
	if len(m.attachments) == 0 {
		for _, k := range []string{"Content-Type", "Content-Transfer-Encoding"} {
			hdr(k, bodyHeader.Get(k))
		}
		b.WriteString("\r\n")
		writeQP(&b, content)
		return b.Bytes()
	}

	mw := multipart.NewWriter(&b)
	hdr("Content-Type", mime.FormatMediaType("multipart/mixed", map[string]string{"boundary": mw.Boundary()}))
	b.WriteString("\r\n")
	if pw, err := mw.CreatePart(bodyHeader); err == nil {
		writeQP(pw, content)
	}
	for _, a := range m.attachments {
		h := textproto.MIMEHeader{}
		ctype := a.contentType
		if ctype == "" {
			ctype = "application/octet-stream"
		}
		h.Set("Content-Type", mime.FormatMediaType(ctype, map[string]string{"name": a.name}))
		disp := "attachment"
		if a.isInline {
			disp = "inline"
		}
		h.Set("Content-Disposition", mime.FormatMediaType(disp, map[string]string{"filename": a.name}))
		if a.contentID != "" {
			h.Set("Content-ID", "<"+strings.Trim(a.contentID, "<>")+">")
		}
		h.Set("Content-Transfer-Encoding", "base64")
		pw, err := mw.CreatePart(h)
		if err != nil {
			continue
		}
		enc := base64.StdEncoding.EncodeToString(a.content)
		for len(enc) > 76 {
			fmt.Fprintf(pw, "%s\r\n", enc[:76])
			enc = enc[76:]
		}
		fmt.Fprintf(pw, "%s\r\n", enc)
	}
	_ = mw.Close()
	return b.Bytes()
}

func writeQP(w interface{ Write([]byte) (int, error) }, s string) {
	qw := quotedprintable.NewWriter(w)
	_, _ = qw.Write([]byte(s))
	_ = qw.Close()
}

// addressList renders a recipient or a recipient collection, as decoded
// from JSON ({"emailAddress": {"name", "address"}}), as an RFC 5322
// address list; "" when there is none.
func addressList(v any) string {
	var out []string
	add := func(r any) {
		rm, _ := r.(map[string]any)
		ea, _ := rm["emailAddress"].(map[string]any)
		addr, _ := ea["address"].(string)
		name, _ := ea["name"].(string)
		if addr != "" {
			out = append(out, (&mail.Address{Name: name, Address: addr}).String())
		}
	}
	switch x := v.(type) {
	case []any:
		for _, r := range x {
			add(r)
		}
	case map[string]any:
		add(x)
	}
	return strings.Join(out, ", ")
}
