package exchangetest

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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

func TestFolderNameRules(t *testing.T) {
	s := newTestServer(t, nil)
	for _, body := range []map[string]any{{}, {"displayName": "  "}} {
		r := doJSON(t, s, "POST", "/v1.0/users/"+alice+"/mailFolders", body)
		assert.Equal(t, 400, r.status, "%v", body)
		assert.Equal(t, "ErrorInvalidRequest", r.errCode())
	}
	r := do(t, s, "POST", "/v1.0/users/"+alice+"/mailFolders", []byte("{"), "application/json")
	assert.Equal(t, 400, r.status)
	assert.Equal(t, "RequestBodyRead", r.errCode())
	// No length limit or reserved characters.
	r = doJSON(t, s, "POST", "/v1.0/users/"+alice+"/mailFolders", map[string]any{"displayName": " a/b:c*?" + strings.Repeat("n", 300) + " "})
	assert.Equal(t, 201, r.status)
}

func TestEnumRules(t *testing.T) {
	s := newTestServer(t, nil)
	r := doJSON(t, s, "POST", "/v1.0/users/"+alice+"/mailFolders/inbox/messages", map[string]any{"importance": "urgent"})
	assert.Equal(t, 400, r.status)
	assert.Equal(t, "RequestBodyRead", r.errCode())
	assert.Equal(t, "Requested value 'urgent' was not found.", r.json["error"].(map[string]any)["message"])
	assert.Empty(t, s.Messages(alice))

	r = doJSON(t, s, "POST", "/v1.0/users/"+alice+"/mailFolders/inbox/messages", map[string]any{
		"body": map[string]any{"content": "no type"}, "flag": map[string]any{"flagStatus": "FLAGGED"},
	})
	require.Equal(t, 201, r.status, string(r.raw))
	assert.Equal(t, map[string]any{"contentType": "text", "content": "no type"}, r.json["body"])
	assert.Equal(t, map[string]any{"flagStatus": "flagged"}, r.json["flag"])
}

func TestFileAttachmentRules(t *testing.T) {
	s := newTestServer(t, nil)
	id := newDraft(t, s, map[string]any{"subject": "x"})
	r := doJSON(t, s, "POST", "/v1.0/users/"+alice+"/messages/"+id+"/attachments", map[string]any{
		"@odata.type": "#microsoft.graph.fileAttachment", "name": "x", "contentBytes": "%%%",
	})
	assert.Equal(t, 400, r.status)
	assert.Equal(t, "ErrorInvalidRequest", r.errCode())
	r = doJSON(t, s, "POST", "/v1.0/users/"+alice+"/messages/"+id+"/attachments/createUploadSession", map[string]any{
		"AttachmentItem": map[string]any{"attachmentType": "item", "name": "x", "size": 4 * 1024 * 1024},
	})
	assert.Equal(t, 400, r.status)
	assert.Equal(t, "ErrorInvalidRequest", r.errCode())
}

func TestCheckRange(t *testing.T) {
	c := &call{header: http.Header{}, body: make([]byte, 10)}
	r := checkRange(c, 0, 100)
	require.NotNil(t, r, "no Content-Range")
	assert.Equal(t, 400, r.status)
	for _, cr := range []string{"bytes 0-9/100", " bytes 0-9/100 "} {
		c.header.Set("Content-Range", cr)
		assert.Nil(t, checkRange(c, 0, 100), cr)
	}
	for _, tc := range []struct {
		cr         string
		next, size int64
	}{
		{"bytes 0-9/100", 10, 100}, // already received
		{"bytes 0-9/101", 0, 100},  // another total
		{"bytes 0-8/100", 0, 100},  // body longer than the range
		{"bytes 95-104/100", 95, 100},
	} {
		c.header.Set("Content-Range", tc.cr)
		r := checkRange(c, tc.next, tc.size)
		require.NotNil(t, r, tc.cr)
		assert.Equal(t, 416, r.status, tc.cr)
	}
}
