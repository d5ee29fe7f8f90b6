package exchangetest

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const alice = "alice@contoso.com"

type resp struct {
	status int
	header http.Header
	raw    []byte
	json   map[string]any
}

func (r resp) errCode() string {
	e, _ := r.json["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

type reqOpt func(*http.Request)

func withHeader(k, v string) reqOpt { return func(r *http.Request) { r.Header.Set(k, v) } }

func do(t *testing.T, s *Server, method, path string, body []byte, contentType string, opts ...reqOpt) resp {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, s.URL()+path, rd)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer test-token")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for _, o := range opts {
		o(req)
	}
	return doReq(t, s, req)
}

// doReq sends req as it is and reads the answer.
func doReq(t *testing.T, s *Server, req *http.Request) resp {
	t.Helper()
	res, err := s.Client().Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	r := resp{status: res.StatusCode, header: res.Header, raw: raw}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		require.NoError(t, json.Unmarshal(raw, &r.json), string(raw))
	}
	return r
}

func doJSON(t *testing.T, s *Server, method, path string, v any, opts ...reqOpt) resp {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return do(t, s, method, path, b, "application/json", opts...)
}

func b64(s string) []byte { return []byte(base64.StdEncoding.EncodeToString([]byte(s))) }

func newTestServer(t *testing.T, opts *Options) *Server {
	t.Helper()
	s := NewServer(opts)
	t.Cleanup(s.Close)
	s.AddMailbox(alice)
	return s
}

const sampleMIME = "From: Bob <bob@example.com>\r\n" +
	"To: Alice <alice@contoso.com>\r\n" +
	"Subject: =?utf-8?q?Hello_w=C3=B6rld?=\r\n" +
	"Date: Tue, 02 Jan 2024 03:04:05 +0000\r\n" +
	"Message-ID: <m1@example.com>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"\r\n" +
	"Hi Alice,\r\nsee you.\r\n"

func values(r resp) []map[string]any {
	var out []map[string]any
	for _, v := range r.json["value"].([]any) {
		out = append(out, v.(map[string]any))
	}
	return out
}

func TestWellKnownFolders(t *testing.T) {
	s := newTestServer(t, nil)
	for _, v := range []string{"v1.0", "beta"} {
		r := do(t, s, "GET", "/"+v+"/users/"+alice+"/mailFolders/inbox", nil, "")
		require.Equal(t, 200, r.status, string(r.raw))
		assert.Equal(t, "Inbox", r.json["displayName"])
		assert.Equal(t, "#microsoft.graph.mailFolder", r.json["@odata.type"])
		assert.Equal(t, false, r.json["isHidden"])
	}
	// The user is matched case-insensitively, and the UPN may be escaped.
	r := do(t, s, "GET", "/v1.0/users/ALICE%40contoso.com/mailFolders/SentItems", nil, "")
	require.Equal(t, 200, r.status)
	assert.Equal(t, "Sent Items", r.json["displayName"])
	inboxID := do(t, s, "GET", "/v1.0/users/"+alice+"/mailFolders/inbox", nil, "").json["id"].(string)
	r = do(t, s, "GET", "/v1.0/users/"+alice+"/mailFolders/"+inboxID, nil, "")
	assert.Equal(t, "Inbox", r.json["displayName"])
	root := do(t, s, "GET", "/v1.0/users/"+alice+"/mailFolders/msgfolderroot", nil, "")
	assert.Equal(t, root.json["id"], r.json["parentFolderId"])

	// Top-level listing pages 10 at a time by default: 8 well-known folders.
	r = do(t, s, "GET", "/v1.0/users/"+alice+"/mailFolders?$top=5", nil, "")
	require.Equal(t, 200, r.status)
	assert.Len(t, values(r), 5)
	next, _ := r.json["@odata.nextLink"].(string)
	require.NotEmpty(t, next)
	u, _ := url.Parse(next)
	r = do(t, s, "GET", u.RequestURI(), nil, "")
	assert.Len(t, values(r), 3)
	assert.Nil(t, r.json["@odata.nextLink"])

	r = do(t, s, "GET", "/v1.0/users/"+alice+"/mailFolders/nosuchfolder", nil, "")
	assert.Equal(t, 404, r.status)
	assert.Equal(t, "ErrorItemNotFound", r.errCode())

	var names []string
	for _, f := range s.Folders(alice) {
		names = append(names, f.WellKnownName)
	}
	assert.Contains(t, names, "deleteditems")
	assert.Contains(t, names, "msgfolderroot")
}

func TestCreateFolderAndFilter(t *testing.T) {
	s := newTestServer(t, nil)
	base := "/v1.0/users/" + alice
	r := doJSON(t, s, "POST", base+"/mailFolders", map[string]any{"displayName": "Projects"})
	require.Equal(t, 201, r.status, string(r.raw))
	projects := r.json["id"].(string)
	assert.Equal(t, "Projects", r.json["displayName"])
	assert.EqualValues(t, 0, r.json["childFolderCount"])

	r = doJSON(t, s, "POST", base+"/mailFolders", map[string]any{"displayName": "PROJECTS"})
	assert.Equal(t, 409, r.status)
	assert.Equal(t, "ErrorFolderExists", r.errCode())

	r = doJSON(t, s, "POST", base+"/mailFolders/"+projects+"/childFolders", map[string]any{"displayName": "Bob's"})
	require.Equal(t, 201, r.status)
	child := r.json["id"].(string)
	assert.Equal(t, projects, r.json["parentFolderId"])
	// The same name under another parent is fine.
	r = doJSON(t, s, "POST", base+"/mailFolders/inbox/childFolders", map[string]any{"displayName": "Bob's"})
	require.Equal(t, 201, r.status)

	q := url.Values{"$filter": {"displayName eq 'bob''s'"}, "$top": {"1"}}
	r = do(t, s, "GET", base+"/mailFolders/"+projects+"/childFolders?"+q.Encode(), nil, "")
	require.Equal(t, 200, r.status, string(r.raw))
	require.Len(t, values(r), 1)
	assert.Equal(t, child, values(r)[0]["id"])

	q = url.Values{"$filter": {"displayName eq 'Nope'"}}
	r = do(t, s, "GET", base+"/mailFolders/"+projects+"/childFolders?"+q.Encode(), nil, "")
	assert.Empty(t, values(r))

	r = do(t, s, "GET", base+"/mailFolders/"+projects, nil, "")
	assert.EqualValues(t, 1, r.json["childFolderCount"])
	// A nested folder is reachable by its id and under childFolders.
	r = do(t, s, "GET", base+"/mailFolders/"+projects+"/childFolders/"+child, nil, "")
	assert.Equal(t, "Bob's", r.json["displayName"])

	r = do(t, s, "GET", base+"/mailFolders/inbox/childFolders?$filter="+url.QueryEscape("displayName eq"), nil, "")
	assert.Equal(t, 400, r.status)
}

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
	r = do(t, s, "POST", "/beta/users/"+alice+"/mailFolders/inbox/importMime", b64("just some words, no header"), "text/plain")
	assert.Equal(t, 400, r.status)
	assert.Equal(t, "ErrorMimeContentInvalid", r.errCode())
	r = do(t, s, "POST", "/beta/users/"+alice+"/mailFolders/inbox/importMime", b64(sampleMIME), "application/octet-stream")
	assert.Equal(t, 415, r.status)

	s.RejectMIME(func(b []byte) bool { return bytes.Contains(b, []byte("poison")) })
	r = do(t, s, "POST", "/beta/users/"+alice+"/mailFolders/inbox/importMime", b64(sampleMIME+"poison\r\n"), "text/plain")
	assert.Equal(t, 400, r.status)
	assert.Equal(t, "ErrorMimeContentInvalid", r.errCode())
	assert.Len(t, s.Messages(alice), 1)
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

const sourceProp = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name mailferrySourceId"

func TestJSONCreateWithExtendedProperties(t *testing.T) {
	s := newTestServer(t, nil)
	body := map[string]any{
		"subject":    "Quarterly report",
		"body":       map[string]any{"contentType": "text", "content": "numbers"},
		"from":       map[string]any{"emailAddress": map[string]any{"address": "bob@example.com"}},
		"isRead":     false,
		"categories": []string{"Red"},
		"flag":       map[string]any{"flagStatus": "flagged"},
		"singleValueExtendedProperties": []map[string]string{
			{"id": "Integer 0x0E07", "value": "1"},
			{"id": "SystemTime 0x0E06", "value": "2023-05-06T07:08:09Z"},
			{"id": "SystemTime 0x0039", "value": "2023-05-06T07:00:00Z"},
			{"id": sourceProp, "value": "INBOX/42/7"},
		},
	}
	r := doJSON(t, s, "POST", "/v1.0/users/"+alice+"/mailFolders/inbox/messages", body)
	require.Equal(t, 201, r.status, string(r.raw))
	assert.Equal(t, false, r.json["isDraft"])
	assert.Equal(t, false, r.json["isRead"], "an explicit isRead wins over the read flag")
	assert.Equal(t, "2023-05-06T07:08:09Z", r.json["receivedDateTime"])
	assert.Equal(t, "2023-05-06T07:00:00Z", r.json["sentDateTime"])
	assert.Equal(t, []any{"Red"}, r.json["categories"])
	id := r.json["id"].(string)
	m, _ := s.Message(alice, id)
	assert.Equal(t, "INBOX/42/7", m.ExtendedProperties[sourceProp])
	assert.Equal(t, "flagged", m.FlagStatus)
	assert.Nil(t, m.MIME)

	// Without PidTagMessageFlags it is a draft.
	r = doJSON(t, s, "POST", "/v1.0/users/"+alice+"/mailFolders/inbox/messages", map[string]any{"subject": "x"})
	require.Equal(t, 201, r.status)
	assert.Equal(t, true, r.json["isDraft"])

	// $expand the watermark, with another spelling of the id's GUID.
	q := url.Values{"$expand": {"singleValueExtendedProperties($filter=id eq 'String {66F5A359-4659-4830-9070-00047EC6AC6E} Name mailferrySourceId')"}}
	r = do(t, s, "GET", "/v1.0/users/"+alice+"/messages/"+id+"?"+q.Encode(), nil, "")
	require.Equal(t, 200, r.status, string(r.raw))
	props := r.json["singleValueExtendedProperties"].([]any)
	require.Len(t, props, 1)
	assert.Equal(t, map[string]any{"id": sourceProp, "value": "INBOX/42/7"}, props[0])

	v := do(t, s, "GET", "/v1.0/users/"+alice+"/messages/"+id+"/$value", nil, "")
	assert.Contains(t, string(v.raw), "Subject: Quarterly report")
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

func TestFilterMessages(t *testing.T) {
	s := newTestServer(t, nil)
	base := "/v1.0/users/" + alice + "/mailFolders/inbox/messages"
	var ids []string
	for i := range 12 {
		mimeText := strings.Replace(sampleMIME, "<m1@example.com>", "<m"+itoa(i)+"@example.com>", 1)
		r := do(t, s, "POST", "/beta/users/"+alice+"/mailFolders/inbox/importMime", b64(mimeText), "text/plain")
		require.Equal(t, 201, r.status)
		id := r.json["id"].(string)
		ids = append(ids, id)
		r = doJSON(t, s, "PATCH", "/v1.0/users/"+alice+"/messages/"+id, map[string]any{
			"singleValueExtendedProperties": []map[string]string{{"id": sourceProp, "value": "uid-" + itoa(i)}},
		})
		require.Equal(t, 200, r.status)
	}

	q := url.Values{"$filter": {"internetMessageId eq '<m7@example.com>'"}, "$select": {"id,internetMessageId"}}
	r := do(t, s, "GET", base+"?"+q.Encode(), nil, "")
	require.Equal(t, 200, r.status, string(r.raw))
	require.Len(t, values(r), 1)
	assert.Equal(t, ids[7], values(r)[0]["id"])
	assert.Nil(t, values(r)[0]["subject"], "$select drops other properties")

	q = url.Values{"$filter": {"singleValueExtendedProperties/Any(ep: ep/id eq '" + sourceProp + "' and ep/value eq 'uid-3')"}}
	r = do(t, s, "GET", base+"?"+q.Encode(), nil, "")
	require.Equal(t, 200, r.status, string(r.raw))
	require.Len(t, values(r), 1)
	assert.Equal(t, ids[3], values(r)[0]["id"])

	// The Name part of an extended property id is case-sensitive.
	q = url.Values{"$filter": {"singleValueExtendedProperties/any(ep:ep/id eq 'String {66f5a359-4659-4830-9070-00047ec6ac6e} Name MAILFERRYSOURCEID' and ep/value eq 'uid-3')"}}
	r = do(t, s, "GET", base+"?"+q.Encode(), nil, "")
	assert.Empty(t, values(r))

	// Paging: default $top is 10.
	r = do(t, s, "GET", base, nil, "")
	assert.Len(t, values(r), 10)
	next := r.json["@odata.nextLink"].(string)
	u, _ := url.Parse(next)
	r = do(t, s, "GET", u.RequestURI(), nil, "")
	assert.Len(t, values(r), 2)
	assert.Equal(t, ids[11], values(r)[1]["id"])
}

func TestAuth(t *testing.T) {
	s := newTestServer(t, &Options{Token: "secret"})
	r := do(t, s, "GET", "/v1.0/users/"+alice+"/mailFolders/inbox", nil, "", withHeader("Authorization", ""))
	assert.Equal(t, 401, r.status)
	assert.Equal(t, "InvalidAuthenticationToken", r.errCode())
	assert.Equal(t, "Access token is empty.", r.json["error"].(map[string]any)["message"])
	r = do(t, s, "GET", "/v1.0/users/"+alice+"/mailFolders/inbox", nil, "")
	assert.Equal(t, 401, r.status, "wrong token")
	r = do(t, s, "GET", "/v1.0/users/"+alice+"/mailFolders/inbox", nil, "", withHeader("Authorization", "Bearer secret"))
	assert.Equal(t, 200, r.status)
}

func TestRequestTooLarge(t *testing.T) {
	s := newTestServer(t, &Options{MaxRequestBytes: 1000})
	big := "Subject: big\r\n\r\n" + strings.Repeat("x", 1000)
	r := do(t, s, "POST", "/beta/users/"+alice+"/mailFolders/inbox/importMime", b64(big), "text/plain")
	assert.Equal(t, 413, r.status)
	assert.Equal(t, "RequestEntityTooLarge", r.errCode())

	// The limit applies to the uncompressed body, even when gzip makes it small.
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	_, _ = zw.Write(b64(big))
	require.NoError(t, zw.Close())
	require.Less(t, zb.Len(), 1000)
	r = do(t, s, "POST", "/beta/users/"+alice+"/mailFolders/inbox/importMime", zb.Bytes(), "text/plain", withHeader("Content-Encoding", "gzip"))
	assert.Equal(t, 413, r.status)

	// The default is 4 MB.
	d := newTestServer(t, nil)
	huge := "Subject: huge\r\n\r\n" + strings.Repeat("y", 3*1024*1024+100)
	r = do(t, d, "POST", "/beta/users/"+alice+"/mailFolders/inbox/importMime", b64(huge), "text/plain")
	assert.Equal(t, 413, r.status)
	ok := "Subject: ok\r\n\r\n" + strings.Repeat("y", 3*1024*1024-100)
	r = do(t, d, "POST", "/beta/users/"+alice+"/mailFolders/inbox/importMime", b64(ok), "text/plain")
	assert.Equal(t, 201, r.status)
}

func TestGzipBody(t *testing.T) {
	s := newTestServer(t, nil)
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	_, _ = zw.Write(b64(sampleMIME))
	require.NoError(t, zw.Close())
	r := do(t, s, "POST", "/beta/users/"+alice+"/mailFolders/inbox/importMime", zb.Bytes(), "text/plain", withHeader("Content-Encoding", "gzip"))
	require.Equal(t, 201, r.status, string(r.raw))
	m, _ := s.Message(alice, r.json["id"].(string))
	assert.Equal(t, sampleMIME, string(m.MIME))
	st := s.Stats()
	assert.Equal(t, int64(len(b64(sampleMIME))), st.UploadBytes)
	assert.Equal(t, 1, st.ByRoute["POST /users/{user}/mailFolders/{id}/importMime"])
}

func TestFailNext(t *testing.T) {
	s := newTestServer(t, nil)
	s.FailNext(2, 429, 1500*time.Millisecond)
	s.FailNext(1, 503, 0)
	for range 2 {
		r := do(t, s, "GET", "/v1.0/users/"+alice+"/mailFolders/inbox", nil, "")
		assert.Equal(t, 429, r.status)
		assert.Equal(t, "2", r.header.Get("Retry-After"))
		assert.Equal(t, "ApplicationThrottled", r.errCode())
	}
	r := do(t, s, "GET", "/v1.0/users/"+alice+"/mailFolders/inbox", nil, "")
	assert.Equal(t, 503, r.status)
	assert.Empty(t, r.header.Get("Retry-After"))
	r = do(t, s, "GET", "/v1.0/users/"+alice+"/mailFolders/inbox", nil, "")
	assert.Equal(t, 200, r.status)
	st := s.Stats()
	assert.Equal(t, 4, st.Requests)
	assert.Equal(t, 2, st.Throttled)
	assert.Equal(t, map[string]int{"Injected": 2}, st.ThrottledBy)
}

func TestResetNext(t *testing.T) {
	s := newTestServer(t, nil)
	s.ResetNext(1)
	req, _ := http.NewRequest("GET", s.URL()+"/v1.0/users/"+alice+"/mailFolders/inbox", nil)
	req.Header.Set("Authorization", "Bearer x")
	// A GET would be retried by net/http on a reused connection; use a fresh one.
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	_, err := c.Do(req)
	require.Error(t, err)
	var ue *url.Error
	assert.True(t, errors.As(err, &ue))
	r := do(t, s, "GET", "/v1.0/users/"+alice+"/mailFolders/inbox", nil, "")
	assert.Equal(t, 200, r.status)
}

func TestUnknownMailbox(t *testing.T) {
	s := newTestServer(t, nil)
	r := do(t, s, "GET", "/v1.0/users/nobody@contoso.com/mailFolders/inbox", nil, "")
	assert.Equal(t, 404, r.status)
	assert.Equal(t, "ErrorInvalidUser", r.errCode())
	e := r.json["error"].(map[string]any)
	assert.Equal(t, "The requested user 'nobody@contoso.com' is invalid.", e["message"])
	assert.NotEmpty(t, e["innerError"].(map[string]any)["request-id"])

	s.AddUserWithoutMailbox("Guest@contoso.com")
	r = do(t, s, "POST", "/beta/users/guest@contoso.com/mailFolders/inbox/importMime", b64(sampleMIME), "text/plain")
	assert.Equal(t, 404, r.status)
	assert.Equal(t, "MailboxNotEnabledForRESTAPI", r.errCode())
	e = r.json["error"].(map[string]any)
	assert.Equal(t, "The mailbox is either inactive, soft-deleted, or is hosted on-premise.", e["message"])

	// A mailbox added later wins; adding a user without a mailbox then does nothing.
	s.AddMailbox("guest@contoso.com")
	s.AddUserWithoutMailbox("guest@contoso.com")
	assert.Equal(t, 200, do(t, s, "GET", "/v1.0/users/guest@contoso.com/mailFolders/inbox", nil, "").status)
}

func TestQuotaExceeded(t *testing.T) {
	s := newTestServer(t, nil)
	s.SetQuotaExceeded(alice, true)
	r := do(t, s, "POST", "/beta/users/"+alice+"/mailFolders/inbox/importMime", b64(sampleMIME), "text/plain")
	assert.Equal(t, 403, r.status)
	assert.Equal(t, "ErrorQuotaExceeded", r.errCode())
	r = do(t, s, "GET", "/v1.0/users/"+alice+"/mailFolders/inbox", nil, "")
	assert.Equal(t, 200, r.status, "reads still work")
	s.SetQuotaExceeded(alice, false)
	r = do(t, s, "POST", "/beta/users/"+alice+"/mailFolders/inbox/importMime", b64(sampleMIME), "text/plain")
	assert.Equal(t, 201, r.status)
}

func TestBudgets(t *testing.T) {
	t.Run("requests", func(t *testing.T) {
		s := newTestServer(t, &Options{Budgets: &Budgets{RequestsPer10Min: 3}, TimeScale: 600}) // 1 s window
		for range 3 {
			assert.Equal(t, 200, do(t, s, "GET", "/v1.0/users/"+alice+"/mailFolders/inbox", nil, "").status)
		}
		r := do(t, s, "GET", "/v1.0/users/"+alice+"/mailFolders/inbox", nil, "")
		assert.Equal(t, 429, r.status)
		assert.Equal(t, "1", r.header.Get("Retry-After"))
		time.Sleep(1100 * time.Millisecond)
		assert.Equal(t, 200, do(t, s, "GET", "/v1.0/users/"+alice+"/mailFolders/inbox", nil, "").status)
	})
	t.Run("concurrency", func(t *testing.T) {
		s := newTestServer(t, &Options{Budgets: DefaultBudgets(), Latency: 200 * time.Millisecond})
		var wg sync.WaitGroup
		var mu sync.Mutex
		codes := map[int]int{}
		var msgs []string
		for range 6 {
			wg.Go(func() {
				r := do(t, s, "GET", "/v1.0/users/"+alice+"/mailFolders/inbox", nil, "")
				mu.Lock()
				defer mu.Unlock()
				codes[r.status]++
				if r.status == 429 {
					msgs = append(msgs, r.json["error"].(map[string]any)["message"].(string))
				}
			})
		}
		wg.Wait()
		assert.Equal(t, map[int]int{200: 4, 429: 2}, codes)
		assert.Contains(t, msgs, "Application is over its MailboxConcurrency limit.")
	})
	t.Run("upload", func(t *testing.T) {
		s := newTestServer(t, &Options{Budgets: &Budgets{UploadBytesPer5Min: int64(len(b64(sampleMIME))) + 10}})
		assert.Equal(t, 201, do(t, s, "POST", "/beta/users/"+alice+"/mailFolders/inbox/importMime", b64(sampleMIME), "text/plain").status)
		r := do(t, s, "POST", "/beta/users/"+alice+"/mailFolders/inbox/importMime", b64(sampleMIME), "text/plain")
		assert.Equal(t, 429, r.status)
		assert.Equal(t, 1, s.Stats().Throttled)
	})
}

func TestBatch(t *testing.T) {
	s := newTestServer(t, nil)
	reqs := []map[string]any{
		{"id": "1", "method": "GET", "url": "/users/" + alice + "/mailFolders/inbox"},
		{"id": "2", "method": "POST", "url": "/users/" + alice + "/mailFolders", "headers": map[string]string{"Content-Type": "application/json"}, "body": map[string]any{"displayName": "Batch"}},
		{"id": "3", "method": "POST", "url": "/users/" + alice + "/mailFolders/inbox/importMime", "headers": map[string]string{"Content-Type": "text/plain"}, "body": base64.StdEncoding.EncodeToString(b64(sampleMIME))},
	}
	r := doJSON(t, s, "POST", "/beta/$batch", map[string]any{"requests": reqs})
	require.Equal(t, 200, r.status, string(r.raw))
	got := map[string]float64{}
	for _, x := range r.json["responses"].([]any) {
		m := x.(map[string]any)
		got[m["id"].(string)] = m["status"].(float64)
	}
	assert.Equal(t, map[string]float64{"1": 200, "2": 201, "3": 201}, got)
	require.Len(t, s.Messages(alice), 1)
	assert.Equal(t, sampleMIME, string(s.Messages(alice)[0].MIME))

	// A fault injected with FailNext hits the envelope first.
	s.FailNext(1, 429, 3*time.Second)
	r = doJSON(t, s, "POST", "/v1.0/$batch", map[string]any{"requests": reqs[:1]})
	assert.Equal(t, 429, r.status)

	// A sub-request can be throttled by a budget while the envelope is 200.
	tb := newTestServer(t, &Options{Budgets: &Budgets{RequestsPer10Min: 1}})
	r = doJSON(t, tb, "POST", "/v1.0/$batch", map[string]any{"requests": []map[string]any{reqs[0], {"id": "4", "method": "GET", "url": reqs[0]["url"]}}})
	require.Equal(t, 200, r.status)
	subs := r.json["responses"].([]any)
	require.Len(t, subs, 2)
	second := subs[1].(map[string]any)
	assert.EqualValues(t, 429, second["status"])
	assert.NotEmpty(t, second["headers"].(map[string]any)["Retry-After"])
	assert.Equal(t, "ApplicationThrottled", second["body"].(map[string]any)["error"].(map[string]any)["code"])

	var many []map[string]any
	for i := range 21 {
		many = append(many, map[string]any{"id": itoa(i), "method": "GET", "url": "/users/" + alice + "/mailFolders/inbox"})
	}
	r = doJSON(t, s, "POST", "/v1.0/$batch", map[string]any{"requests": many})
	assert.Equal(t, 400, r.status)
}

func TestTLSServer(t *testing.T) {
	s := NewTLSServer(nil)
	defer s.Close()
	s.AddMailbox("u1")
	require.True(t, strings.HasPrefix(s.URL(), "https://"))
	r := do(t, s, "GET", "/v1.0/users/U1/mailFolders/inbox", nil, "")
	assert.Equal(t, 200, r.status)
}

func TestNormalizePropID(t *testing.T) {
	assert.Equal(t, normalizePropID("Integer 0x0E07"), normalizePropID("integer 0xe07"))
	assert.Equal(t, normalizePropID("String {AA-BB} Name X"), normalizePropID("string {aa-bb} name X"))
	assert.NotEqual(t, normalizePropID("String {aa-bb} Name X"), normalizePropID("String {aa-bb} Name x"))
}

func TestHandlerMountedElsewhereLinks(t *testing.T) {
	s := newTestServer(t, nil)
	other := httptest.NewServer(s)
	defer other.Close()
	req, _ := http.NewRequest("GET", other.URL+"/v1.0/users/"+alice+"/mailFolders?$top=1", nil)
	req.Header.Set("Authorization", "Bearer x")
	res, err := other.Client().Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var page map[string]any
	require.NoError(t, json.NewDecoder(res.Body).Decode(&page))
	assert.True(t, strings.HasPrefix(page["@odata.nextLink"].(string), other.URL+"/v1.0/"), page["@odata.nextLink"])
}
