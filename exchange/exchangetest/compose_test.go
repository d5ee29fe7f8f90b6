package exchangetest

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func rcpt(name, addr string) map[string]any {
	return map[string]any{"emailAddress": map[string]any{"name": name, "address": addr}}
}

func TestJSONCreateComplete(t *testing.T) {
	s := newTestServer(t, nil)
	pdf := pattern(5000)
	body := map[string]any{
		"subject":                "Réunion lundi",
		"body":                   map[string]any{"contentType": "HTML", "content": "<p>Voir la pièce jointe.</p>"},
		"from":                   rcpt("Bob", "bob@example.com"),
		"sender":                 rcpt("Assistant", "assistant@example.com"),
		"toRecipients":           []any{rcpt("Alice", "alice@contoso.com"), rcpt("", "carol@example.com")},
		"ccRecipients":           []any{rcpt("Dan", "dan@example.com")},
		"bccRecipients":          []any{rcpt("", "eve@example.com")},
		"replyTo":                []any{rcpt("List", "list@example.com")},
		"importance":             "high",
		"isRead":                 true,
		"flag":                   map[string]any{"flagStatus": "complete"},
		"categories":             []string{"Blue"},
		"internetMessageId":      "<orig-1@example.com>",
		"internetMessageHeaders": []map[string]string{{"name": "X-Source-Folder", "value": "INBOX"}},
		"attachments": []map[string]any{{
			"@odata.type": "#microsoft.graph.fileAttachment", "name": "report.pdf", "contentType": "application/pdf",
			"contentBytes": base64.StdEncoding.EncodeToString(pdf),
		}},
		"singleValueExtendedProperties": []map[string]string{
			{"id": "Integer 0x0E07", "value": "1"},
			{"id": "SystemTime 0x0E06", "value": "2022-03-04T05:06:07Z"},
			{"id": "SystemTime 0x0039", "value": "2022-03-04T05:00:00Z"},
			{"id": "Integer 0x1081", "value": "103"},
			{"id": "Integer 0x1080", "value": "261"},
		},
	}
	r := doJSON(t, s, "POST", "/v1.0/users/"+alice+"/mailFolders/inbox/messages", body)
	require.Equal(t, 201, r.status, string(r.raw))
	assert.Equal(t, false, r.json["isDraft"])
	assert.Equal(t, true, r.json["isRead"])
	assert.Equal(t, true, r.json["hasAttachments"])
	assert.Equal(t, "high", r.json["importance"])
	assert.Equal(t, "2022-03-04T05:06:07Z", r.json["receivedDateTime"])
	assert.Equal(t, "2022-03-04T05:00:00Z", r.json["sentDateTime"])
	assert.Equal(t, rcpt("Assistant", "assistant@example.com"), r.json["sender"])
	assert.Equal(t, []any{rcpt("List", "list@example.com")}, r.json["replyTo"])
	assert.Equal(t, map[string]any{"contentType": "html", "content": "<p>Voir la pièce jointe.</p>"}, r.json["body"])
	assert.NotContains(t, r.json, "internetMessageHeaders", "returned only with $select")
	id := r.json["id"].(string)

	m, _ := s.Message(alice, id)
	assert.Equal(t, 103, m.LastVerbExecuted)
	assert.Equal(t, "complete", m.FlagStatus)
	assert.Equal(t, "<orig-1@example.com>", m.InternetMessageID)
	assert.Equal(t, "261", m.ExtendedProperties["Integer 0x1080"], "PidTagIconIndex is stored, without effect")
	require.Len(t, m.Attachments, 1)
	assert.Equal(t, pdf, m.Attachments[0].Content)

	sel := do(t, s, "GET", "/v1.0/users/"+alice+"/messages/"+id+"?$select=subject,internetMessageHeaders", nil, "")
	assert.Equal(t, []any{map[string]any{"name": "X-Source-Folder", "value": "INBOX"}}, sel.json["internetMessageHeaders"])

	// $value is a MIME message built from the fields.
	v := do(t, s, "GET", "/v1.0/users/"+alice+"/messages/"+id+"/$value", nil, "")
	require.Equal(t, 200, v.status)
	msg, err := mail.ReadMessage(bytes.NewReader(v.raw))
	require.NoError(t, err, string(v.raw))
	h := msg.Header
	subj, _ := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
	assert.Equal(t, "Réunion lundi", subj)
	assert.Equal(t, `"Bob" <bob@example.com>`, h.Get("From"))
	assert.Equal(t, `"Assistant" <assistant@example.com>`, h.Get("Sender"))
	to, err := h.AddressList("To")
	require.NoError(t, err)
	assert.Equal(t, []*mail.Address{{Name: "Alice", Address: "alice@contoso.com"}, {Address: "carol@example.com"}}, to)
	assert.Equal(t, `"Dan" <dan@example.com>`, h.Get("Cc"))
	assert.Empty(t, h.Get("Bcc"))
	assert.Equal(t, `"List" <list@example.com>`, h.Get("Reply-To"))
	assert.Equal(t, "<orig-1@example.com>", h.Get("Message-ID"))
	assert.Equal(t, "INBOX", h.Get("X-Source-Folder"))
	d, err := h.Date()
	require.NoError(t, err)
	assert.True(t, d.Equal(time.Date(2022, 3, 4, 5, 0, 0, 0, time.UTC)))
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	require.NoError(t, err)
	require.Equal(t, "multipart/mixed", mt)
	mr := multipart.NewReader(msg.Body, params["boundary"])
	p, err := mr.NextPart() // quoted-printable is decoded by the reader
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(p.Header.Get("Content-Type"), "text/html"))
	b, _ := io.ReadAll(p)
	assert.Equal(t, "<p>Voir la pièce jointe.</p>", string(b))
	p, err = mr.NextPart()
	require.NoError(t, err)
	assert.Equal(t, "report.pdf", p.FileName())
	b, _ = io.ReadAll(base64.NewDecoder(base64.StdEncoding, p))
	assert.Equal(t, pdf, b)
	_, err = mr.NextPart()
	assert.Equal(t, io.EOF, err)
}

func TestJSONCreateSinglePartValue(t *testing.T) {
	s := newTestServer(t, nil)
	id := newDraft(t, s, map[string]any{"subject": "plain", "body": map[string]any{"contentType": "text", "content": "héllo\r\n"}})
	v := do(t, s, "GET", "/v1.0/users/"+alice+"/messages/"+id+"/$value", nil, "")
	msg, err := mail.ReadMessage(bytes.NewReader(v.raw))
	require.NoError(t, err)
	assert.Equal(t, "text/plain; charset=utf-8", msg.Header.Get("Content-Type"))
	b, _ := io.ReadAll(quotedprintable.NewReader(msg.Body))
	assert.Equal(t, "héllo\r\n", string(b))

	r := doJSON(t, s, "POST", "/v1.0/users/"+alice+"/mailFolders/inbox/messages", map[string]any{"body": map[string]any{"contentType": "rtf", "content": "x"}})
	assert.Equal(t, 400, r.status)
}

func TestInternetMessageHeadersRule(t *testing.T) {
	s := newTestServer(t, nil)
	r := doJSON(t, s, "POST", "/v1.0/users/"+alice+"/mailFolders/inbox/messages", map[string]any{
		"subject":                "x",
		"internetMessageHeaders": []map[string]string{{"name": "x-ok", "value": "1"}, {"name": "In-Reply-To", "value": "<a@b>"}},
	})
	assert.Equal(t, 400, r.status)
	assert.Equal(t, "InvalidInternetMessageHeader", r.errCode())
	assert.Equal(t, "The internet message header name 'In-Reply-To' should start with 'x-' or 'X-'.", r.json["error"].(map[string]any)["message"])
	assert.Empty(t, s.Messages(alice))

	// After creation, headers are not added.
	id := newDraft(t, s, map[string]any{"subject": "x", "internetMessageHeaders": []map[string]string{{"name": "X-A", "value": "1"}}})
	r = doJSON(t, s, "PATCH", "/v1.0/users/"+alice+"/messages/"+id, map[string]any{"internetMessageHeaders": []map[string]string{{"name": "X-B", "value": "2"}}})
	assert.Equal(t, 200, r.status)
	sel := do(t, s, "GET", "/v1.0/users/"+alice+"/messages/"+id+"?$select=internetMessageHeaders", nil, "")
	assert.Equal(t, []any{map[string]any{"name": "X-A", "value": "1"}}, sel.json["internetMessageHeaders"])
	r = doJSON(t, s, "PATCH", "/v1.0/users/"+alice+"/messages/"+id, map[string]any{"internetMessageHeaders": []map[string]string{{"name": "Reply-To", "value": "2"}}})
	assert.Equal(t, "InvalidInternetMessageHeader", r.errCode())
}

func TestCreationOnlyProperties(t *testing.T) {
	s := newTestServer(t, nil)
	id := newDraft(t, s, map[string]any{
		"subject": "unread, delivered",
		"singleValueExtendedProperties": []map[string]string{
			{"id": "Integer 0x0E07", "value": "0"},
			{"id": "SystemTime 0x0E06", "value": "2021-01-01T00:00:00Z"},
		},
	})
	before, _ := s.Message(alice, id)
	assert.False(t, before.IsDraft)
	assert.False(t, before.IsRead)

	// PATCHing the creation-only properties answers 200 and changes nothing.
	r := doJSON(t, s, "PATCH", "/v1.0/users/"+alice+"/messages/"+id, map[string]any{
		"singleValueExtendedProperties": []map[string]string{
			{"id": "Integer 0x0E07", "value": "9"},
			{"id": "SystemTime 0x0E06", "value": "2025-01-01T00:00:00Z"},
			{"id": "SystemTime 0x0039", "value": "2025-01-01T00:00:00Z"},
			{"id": "Integer 0x1081", "value": "104"},
		},
	})
	require.Equal(t, 200, r.status, string(r.raw))
	after, _ := s.Message(alice, id)
	assert.False(t, after.IsDraft)
	assert.False(t, after.IsRead)
	assert.Equal(t, before.ReceivedDateTime, after.ReceivedDateTime)
	assert.Equal(t, before.SentDateTime, after.SentDateTime)
	assert.Equal(t, "0", after.ExtendedProperties["Integer 0x0E07"])
	assert.Equal(t, "2021-01-01T00:00:00Z", after.ExtendedProperties["SystemTime 0x0E06"])
	assert.Equal(t, 104, after.LastVerbExecuted, "PidTagLastVerbExecuted may change")

	r = doJSON(t, s, "PATCH", "/v1.0/users/"+alice+"/messages/"+id, map[string]any{
		"singleValueExtendedProperties": []map[string]string{{"id": "Integer 0x1081", "value": "reply"}},
	})
	assert.Equal(t, "ErrorInvalidExtendedPropertyValue", r.errCode())
}
