package exchangetest

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
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

func TestMIMECreateIsDraft(t *testing.T) {
	s := newTestServer(t, nil)
	r := do(t, s, "POST", "/v1.0/users/"+alice+"/mailFolders/archive/messages", b64(sampleMIME), "text/plain")
	require.Equal(t, 201, r.status, string(r.raw))
	assert.Equal(t, true, r.json["isDraft"])
	m, _ := s.Message(alice, r.json["id"].(string))
	assert.True(t, m.IsDraft)
	assert.Equal(t, []byte(sampleMIME), m.MIME)

	// POST /users/{id}/messages saves into Drafts.
	r = do(t, s, "POST", "/v1.0/users/"+alice+"/messages", b64(sampleMIME), "text/plain")
	require.Equal(t, 201, r.status)
	drafts := do(t, s, "GET", "/v1.0/users/"+alice+"/mailFolders/drafts", nil, "")
	assert.Equal(t, drafts.json["id"], r.json["parentFolderId"])
}

func TestPatchMessage(t *testing.T) {
	s := newTestServer(t, nil)
	r := do(t, s, "POST", "/beta/users/"+alice+"/mailFolders/inbox/importMime", b64(sampleMIME), "text/plain")
	id := r.json["id"].(string)
	assert.Equal(t, false, r.json["isRead"])

	r = doJSON(t, s, "PATCH", "/v1.0/users/"+alice+"/messages/"+id, map[string]any{
		"isRead": true, "flag": map[string]any{"flagStatus": "complete"},
		"categories": []string{"Blue", "Green"}, "importance": "High",
		"singleValueExtendedProperties": []map[string]string{{"id": sourceProp, "value": "v2"}},
	})
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, true, r.json["isRead"])
	assert.Equal(t, "high", r.json["importance"])
	m, _ := s.Message(alice, id)
	assert.Equal(t, "complete", m.FlagStatus)
	assert.Equal(t, []string{"Blue", "Green"}, m.Categories)
	assert.Equal(t, "v2", m.ExtendedProperties[sourceProp])

	r = doJSON(t, s, "PATCH", "/v1.0/users/"+alice+"/mailFolders/inbox/messages/"+id, map[string]any{"flag": map[string]any{"flagStatus": "bogus"}})
	assert.Equal(t, 400, r.status)
	m, _ = s.Message(alice, id)
	assert.Equal(t, "complete", m.FlagStatus, "a rejected PATCH changes nothing")

	r = doJSON(t, s, "PATCH", "/v1.0/users/"+alice+"/messages/AAMkNOPE", map[string]any{"isRead": true})
	assert.Equal(t, 404, r.status)
	assert.Equal(t, "ErrorItemNotFound", r.errCode())
	r = do(t, s, "GET", "/v1.0/users/"+alice+"/messages/AAMkNOPE", nil, "")
	assert.Equal(t, "ErrorItemNotFound", r.errCode())
}
