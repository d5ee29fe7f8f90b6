package exchangetest

import (
	"bytes"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestImportMIMERoundTrip(t *testing.T) {
	s := newTestServer(t, nil)
	before := time.Now().UTC().Truncate(time.Second)
	r := do(t, s, "POST", "/beta/users/"+alice+"/mailFolders/inbox/importMime", b64(sampleMIME), "text/plain")
	require.Equal(t, 201, r.status, string(r.raw))
	assert.Equal(t, false, r.json["isDraft"])
	assert.Equal(t, "#microsoft.graph.message", r.json["@odata.type"])
	assert.Equal(t, "<m1@example.com>", r.json["internetMessageId"])
	assert.Equal(t, "Hello wörld", r.json["subject"])
	assert.Equal(t, "2024-01-02T03:04:05Z", r.json["sentDateTime"])
	assert.Equal(t, "normal", r.json["importance"])
	assert.Equal(t, map[string]any{"flagStatus": "notFlagged"}, r.json["flag"])
	received, err := time.Parse(time.RFC3339, r.json["receivedDateTime"].(string))
	require.NoError(t, err)
	assert.False(t, received.Before(before), "receivedDateTime is the import time")
	id := r.json["id"].(string)
	assert.True(t, strings.HasPrefix(id, "AAMk"))

	v := do(t, s, "GET", "/v1.0/users/"+alice+"/messages/"+id+"/$value", nil, "")
	require.Equal(t, 200, v.status)
	assert.Equal(t, sampleMIME, string(v.raw))

	m, ok := s.Message(alice, id)
	require.True(t, ok)
	assert.Equal(t, []byte(sampleMIME), m.MIME)
	assert.False(t, m.IsDraft)
	inbox := do(t, s, "GET", "/v1.0/users/"+alice+"/mailFolders/inbox", nil, "")
	assert.Equal(t, inbox.json["id"], m.FolderID)
	assert.EqualValues(t, 1, inbox.json["totalItemCount"])

	// Not base64, not MIME, wrong content type.
	r = do(t, s, "POST", "/beta/users/"+alice+"/mailFolders/inbox/importMime", []byte("%%%not base64"), "text/plain")
	assert.Equal(t, 400, r.status)
	assert.Equal(t, "ErrorMimeContentInvalidBase64String", r.errCode())
	// MIME without a header is taken: Exchange documents no rule for the
	// MIME it refuses, so only RejectMIME refuses it.
	r = do(t, s, "POST", "/beta/users/"+alice+"/mailFolders/inbox/importMime", b64("just some words, no header"), "text/plain")
	assert.Equal(t, 201, r.status)
	r = do(t, s, "POST", "/beta/users/"+alice+"/mailFolders/inbox/importMime", b64(sampleMIME), "application/octet-stream")
	assert.Equal(t, 415, r.status)

	s.RejectMIME(func(b []byte) bool { return bytes.Contains(b, []byte("poison")) })
	r = do(t, s, "POST", "/beta/users/"+alice+"/mailFolders/inbox/importMime", b64(sampleMIME+"poison\r\n"), "text/plain")
	assert.Equal(t, 400, r.status)
	assert.Equal(t, "ErrorMimeContentInvalid", r.errCode())
	assert.Len(t, s.Messages(alice), 2)
}

func TestApplyMIMEHeader(t *testing.T) {
	s := NewServer(nil)
	defer s.Close()
	m := s.newMessage(&folder{id: "F"}, false)
	made := m.internetMessageID
	sent := m.sent
	h := parseMIMEHeader([]byte("Subject: plain\r\nImportance: Low\r\nDate: not a date\r\n" +
		"Cc: a@example.com, \"B\" <b@example.com>\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\nbody"))
	applyMIMEHeader(m, h)
	assert.Equal(t, made, m.internetMessageID, "without Message-ID the made-up one stays")
	assert.Equal(t, "plain", m.subject)
	assert.Equal(t, "low", m.importance)
	assert.Equal(t, sent, m.sent, "a Date that does not parse changes nothing")
	assert.False(t, m.hasAttachment(), "multipart/mixed alone is no attachment: the content decides")
	assert.Nil(t, m.from)
	assert.Equal(t, []any{}, m.to)
	assert.Equal(t, []any{
		map[string]any{"emailAddress": map[string]any{"name": "", "address": "a@example.com"}},
		map[string]any{"emailAddress": map[string]any{"name": "B", "address": "b@example.com"}},
	}, m.cc)
	applyMIMEHeader(m, parseMIMEHeader([]byte("Subject: =?windows-1252?q?=93quoted=94?=\r\n\r\n")))
	assert.Equal(t, "“quoted”", m.subject, "encoded words in any charset toUTF8 knows")

}

// TestParseMIMEHeaderLenient: the emulator reads any header as mail
// readers do and refuses none (readMIMEBody).
func TestParseMIMEHeaderLenient(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		want      mail.Header
	}{
		{"empty", "", mail.Header{}},
		{"no header", "\r\nbody", mail.Header{}},
		{"only body", "just some words\r\nno header", mail.Header{}},
		{"mbox From", "From bob Mon Jan  2 15:04:05 2006\r\nSubject: a\r\n\r\nb", mail.Header{"Subject": {"a"}}},
		{"stray line", "Subject: a\r\njunk\r\nTo: x@example.com\r\n\r\nb", mail.Header{"Subject": {"a"}, "To": {"x@example.com"}}},
		{"no empty line", "Subject: a\nhello\nworld\n", mail.Header{"Subject": {"a"}}},
		{"folded", "Subject: a\r\n  b\r\n\tc\r\nX-Y : z\r\n", mail.Header{"Subject": {"a  b\tc"}, "X-Y": {"z"}}},
	} {
		assert.Equal(t, tc.want, parseMIMEHeader([]byte(tc.raw)), tc.name)
	}
}

func TestDecodeMIMEBody(t *testing.T) {
	b, ok := decodeMIMEBody([]byte("U3ViamVj\r\ndDogeA==\n"))
	require.True(t, ok)
	assert.Equal(t, "Subject: x", string(b))
	b, ok = decodeMIMEBody([]byte("U3ViamVjdDogeA"))
	require.True(t, ok, "unpadded")
	assert.Equal(t, "Subject: x", string(b))
	_, ok = decodeMIMEBody([]byte("%%%"))
	assert.False(t, ok)
}

// TestReadHeader: the fields in order, as written, unfolded (RFC 5322
// 2.2.3), and the body where the header ends.
func TestReadHeader(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		want      []internetHeader
		body      string
	}{
		{"ordered", "Received: b\r\nreceived: a\r\nSubject: s\r\n\r\nbody\r\n",
			[]internetHeader{{"Received", "b"}, {"received", "a"}, {"Subject", "s"}}, "body\r\n"},
		{"folded", "X-Long: one\r\n two\r\n\tthree \r\nTo: x\r\n\r\n",
			[]internetHeader{{"X-Long", "one two\tthree"}, {"To", "x"}}, ""},
		{"LF only", "A: 1\nB : 2\n\nb", []internetHeader{{"A", "1"}, {"B", "2"}}, "b"},
		{"stray line", "A: 1\r\njunk\r\nB: 2\r\n\r\nb", []internetHeader{{"A", "1"}, {"B", "2"}}, "b"},
		{"body without empty line", "A: 1\r\nhello\r\nworld", []internetHeader{{"A", "1"}}, "hello\r\nworld"},
		{"no header", "\r\nbody", nil, "body"},
		{"header only", "A: 1\r\n", []internetHeader{{"A", "1"}}, ""},
		{"mbox From", "From x Mon Jan  2 15:04:05 2006\nA: 1\n\nb", []internetHeader{{"A", "1"}}, "b"},
	} {
		fields, body := readHeader([]byte(tc.raw))
		assert.Equal(t, tc.want, fields, tc.name)
		assert.Equal(t, tc.body, string(body), tc.name)
	}
}

func TestDecodeWords(t *testing.T) {
	assert.Equal(t, "Grüße€", decodeWords("=?utf-8?q?Gr=C3=BC=C3=9Fe?= =?windows-1252?q?=80?="))
	assert.Equal(t, "Grüße", decodeWords("=?iso-8859-1?q?Gr=FC=DFe?="))
	assert.Equal(t, "=?bogus", decodeWords("=?bogus"), "what does not decode stays")
}
