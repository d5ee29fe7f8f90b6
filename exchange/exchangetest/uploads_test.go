package exchangetest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestUploadSession(t *testing.T) {
	s := newTestServer(t, nil)
	id := newDraft(t, s, map[string]any{"subject": "large"})
	const size = 9*1024*1024 + 123
	data := pattern(size)
	base := "/v1.0/users/" + alice + "/messages/" + id + "/attachments/createUploadSession"

	// Under 3 MB: the documented error.
	r := doJSON(t, s, "POST", base, map[string]any{"AttachmentItem": map[string]any{"attachmentType": "file", "name": "small", "size": 1000}})
	assert.Equal(t, 400, r.status)
	assert.Equal(t, "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize", r.errCode())

	r = doJSON(t, s, "POST", base, map[string]any{"AttachmentItem": map[string]any{
		"attachmentType": "file", "name": "big.bin", "size": size, "contentType": "application/x-test",
	}})
	require.Equal(t, 201, r.status, string(r.raw))
	assert.Equal(t, []any{"0-"}, r.json["nextExpectedRanges"])
	assert.NotEmpty(t, r.json["expirationDateTime"])
	uploadURL := r.json["uploadUrl"].(string)
	assert.True(t, strings.HasPrefix(uploadURL, s.URL()+"/api/v2.0/"), uploadURL)

	// The pre-authenticated URL refuses a Graph bearer token.
	const chunk = 4 * 1024 * 1024
	r = putRange(t, s, uploadURL, data, 0, chunk-1, size, true)
	assert.Equal(t, 401, r.status)
	assert.Equal(t, "InvalidAudience", r.errCode())

	// Chunks of at most 4 MB, in order.
	r = putRange(t, s, uploadURL, data, 0, chunk, size, false)
	assert.Equal(t, 413, r.status, "4 MB + 1 byte")
	r = putRange(t, s, uploadURL, data, 0, chunk-1, size, false)
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, []any{fmt.Sprint(chunk)}, r.json["nextExpectedRanges"])
	r = putRange(t, s, uploadURL, data, 0, chunk-1, size, false)
	assert.Equal(t, 416, r.status, "a range already received")
	r = putRange(t, s, uploadURL, data, chunk+1, 2*chunk-1, size, false)
	assert.Equal(t, 416, r.status, "a gap")
	r = putRange(t, s, uploadURL, data, chunk, 2*chunk-1, size+1, false)
	assert.Equal(t, 416, r.status, "another total")
	st := doReq(t, s, mustReq(t, "GET", uploadURL))
	assert.Equal(t, []any{fmt.Sprint(chunk)}, st.json["nextExpectedRanges"], "GET tells where to resume")

	r = putRange(t, s, uploadURL, data, chunk, 2*chunk-1, size, false)
	require.Equal(t, 200, r.status, string(r.raw))
	r = putRange(t, s, uploadURL, data, 2*chunk, size-1, size, false)
	require.Equal(t, 201, r.status, string(r.raw))
	assert.Empty(t, r.raw)
	loc := r.header.Get("Location")
	require.Contains(t, loc, "/Attachments('")
	aid := loc[strings.LastIndex(loc, "('")+2 : len(loc)-2]

	m, _ := s.Message(alice, id)
	require.Len(t, m.Attachments, 1)
	assert.Equal(t, aid, m.Attachments[0].ID)
	assert.Equal(t, "big.bin", m.Attachments[0].Name)
	assert.Equal(t, "application/x-test", m.Attachments[0].ContentType)
	assert.True(t, bytes.Equal(data, m.Attachments[0].Content))
	raw := do(t, s, "GET", "/v1.0/users/"+alice+"/messages/"+id+"/attachments/"+aid+"/$value", nil, "")
	assert.True(t, bytes.Equal(data, raw.raw))

	// The session is gone; the PUTs count as upload.
	assert.Equal(t, 404, putRange(t, s, uploadURL, data, 0, 9, size, false).status)
	assert.GreaterOrEqual(t, s.Stats().UploadBytes, int64(size))
	assert.Positive(t, s.Stats().ByRoute["PUT "+uploadTemplate])
}

func TestUploadSessionCancelAndLimits(t *testing.T) {
	const size = 3*1024*1024 + 10
	data := pattern(size)
	item := map[string]any{"AttachmentItem": map[string]any{"attachmentType": "file", "name": "f", "size": size}}

	t.Run("cancel", func(t *testing.T) {
		s := newTestServer(t, nil)
		id := newDraft(t, s, map[string]any{"subject": "x"})
		r := doJSON(t, s, "POST", "/v1.0/users/"+alice+"/mailFolders/inbox/messages/"+id+"/attachments/createUploadSession", item)
		require.Equal(t, 201, r.status, string(r.raw))
		u := r.json["uploadUrl"].(string)
		assert.Equal(t, 204, doReq(t, s, mustReq(t, "DELETE", u)).status)
		assert.Equal(t, 404, putRange(t, s, u, data, 0, 9, size, false).status)
	})

	t.Run("max message size", func(t *testing.T) {
		s := newTestServer(t, &Options{MaxMessageBytes: 5 * 1024 * 1024})
		id := newDraft(t, s, map[string]any{"subject": "x"})
		// 2 MB by POST, then 3 MB by upload session: over 5 MB on the last PUT.
		small := pattern(2 * 1024 * 1024)
		r := doJSON(t, s, "POST", "/v1.0/users/"+alice+"/messages/"+id+"/attachments", map[string]any{
			"@odata.type": "#microsoft.graph.fileAttachment", "name": "a", "contentBytes": base64.StdEncoding.EncodeToString(small),
		})
		require.Equal(t, 201, r.status, string(r.raw))
		r = doJSON(t, s, "POST", "/v1.0/users/"+alice+"/messages/"+id+"/attachments/createUploadSession", item)
		require.Equal(t, 201, r.status, string(r.raw))
		u := r.json["uploadUrl"].(string)
		assert.Equal(t, 200, putRange(t, s, u, data, 0, 1024*1024-1, size, false).status)
		r = putRange(t, s, u, data, 1024*1024, size-1, size, false)
		assert.Equal(t, 400, r.status)
		assert.Equal(t, "ErrorMessageSizeExceeded", r.errCode())
		m, _ := s.Message(alice, id)
		assert.Len(t, m.Attachments, 1)
		r = doJSON(t, s, "POST", "/v1.0/users/"+alice+"/messages/"+id+"/attachments", map[string]any{
			"@odata.type": "#microsoft.graph.fileAttachment", "name": "b", "contentBytes": base64.StdEncoding.EncodeToString(pattern(3*1024*1024 + 1)),
		})
		assert.Equal(t, 413, r.status, "3 MB of content does not fit a 4 MB request")
		post := func() resp {
			return doJSON(t, s, "POST", "/v1.0/users/"+alice+"/messages/"+id+"/attachments", map[string]any{
				"@odata.type": "#microsoft.graph.fileAttachment", "name": "b", "contentBytes": base64.StdEncoding.EncodeToString(small),
			})
		}
		assert.Equal(t, 201, post().status, "4 MB in all")
		r = post()
		assert.Equal(t, 400, r.status, "6 MB in all")
		assert.Equal(t, "ErrorMessageSizeExceeded", r.errCode())
	})

	t.Run("upload budget", func(t *testing.T) {
		s := newTestServer(t, &Options{Budget: &Budget{MaxUploadBytesPerWindow: 2 * 1024 * 1024}})
		id := newDraft(t, s, map[string]any{"subject": "x"})
		r := doJSON(t, s, "POST", "/v1.0/users/"+alice+"/messages/"+id+"/attachments/createUploadSession", item)
		require.Equal(t, 201, r.status, string(r.raw))
		u := r.json["uploadUrl"].(string)
		assert.Equal(t, 200, putRange(t, s, u, data, 0, 1024*1024-1, size, false).status)
		r = putRange(t, s, u, data, 1024*1024, 2*1024*1024-1, size, false)
		assert.Equal(t, 429, r.status)
		assert.NotEmpty(t, r.header.Get("Retry-After"))
		assert.Equal(t, 1, s.Stats().ThrottledBy["MailboxUpload"])
	})
}
