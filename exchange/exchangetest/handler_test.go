package exchangetest

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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
