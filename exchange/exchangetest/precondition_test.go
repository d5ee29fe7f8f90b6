package exchangetest

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// This file tests changeKey, @odata.etag and If-Match (store.go,
// precondition.go).

func msgPath(id string) string { return "/v1.0/users/" + alice + "/messages/" + id }

// getETag reads the message's @odata.etag and changeKey, and checks that
// one is W/"the other".
func getETag(t *testing.T, s *Server, id string) string {
	t.Helper()
	r := do(t, s, "GET", msgPath(id), nil, "")
	require.Equal(t, 200, r.status, string(r.raw))
	etag := r.json["@odata.etag"].(string)
	assert.Equal(t, `W/"`+r.json["changeKey"].(string)+`"`, etag)
	return etag
}

func TestETagIsNewAtEveryChange(t *testing.T) {
	s := newTestServer(t, nil)
	id := newDraft(t, s, map[string]any{"subject": "v1"})
	seen := map[string]bool{}
	see := func(what, etag string) {
		t.Helper()
		assert.False(t, seen[etag], "%s: ETag %s was an earlier version's", what, etag)
		seen[etag] = true
	}
	see("create", getETag(t, s, id))

	// Changes within one second (lastModifiedDateTime is in whole seconds)
	// still make new versions, even when the state comes back to an
	// earlier one.
	for i, read := range []bool{true, false, true, false} {
		r := doJSON(t, s, "PATCH", msgPath(id), map[string]any{"isRead": read})
		require.Equal(t, 200, r.status, string(r.raw))
		see("PATCH", r.json["@odata.etag"].(string))
		assert.Equal(t, r.json["@odata.etag"], getETag(t, s, id), "PATCH %d answers the version it saved", i)
	}

	r := doJSON(t, s, "POST", msgPath(id)+"/attachments", map[string]any{
		"@odata.type": "#microsoft.graph.fileAttachment", "name": "a.txt", "contentBytes": "aGk=",
	})
	require.Equal(t, 201, r.status, string(r.raw))
	see("attachment added", getETag(t, s, id))

	r = do(t, s, "DELETE", msgPath(id)+"/attachments/"+r.json["id"].(string), nil, "")
	require.Equal(t, 204, r.status, string(r.raw))
	see("attachment removed", getETag(t, s, id))

	// An upload session's last range adds an attachment: a new version.
	const size = 3*1024*1024 + 1
	r = doJSON(t, s, "POST", msgPath(id)+"/attachments/createUploadSession", map[string]any{"AttachmentItem": map[string]any{
		"attachmentType": "file", "name": "big.bin", "size": size,
	}})
	require.Equal(t, 201, r.status, string(r.raw))
	r = putRange(t, s, r.json["uploadUrl"].(string), pattern(size), 0, size-1, size, false)
	require.Equal(t, 201, r.status, string(r.raw))
	see("upload session", getETag(t, s, id))

	// A listing shows the same version as the item.
	r = do(t, s, "GET", "/v1.0/users/"+alice+"/mailFolders/inbox/messages", nil, "")
	require.Equal(t, 200, r.status)
	assert.Equal(t, getETag(t, s, id), values(r)[0]["@odata.etag"])
}

func TestChangeKeyShape(t *testing.T) {
	s := newTestServer(t, nil)
	a := newDraft(t, s, map[string]any{"subject": "a"})
	b := newDraft(t, s, map[string]any{"subject": "b"})
	ka, kb := getETag(t, s, a), getETag(t, s, b)
	assert.NotEqual(t, ka, kb, "two items never share an ETag")
	key := strings.TrimSuffix(strings.TrimPrefix(ka, `W/"`), `"`)
	raw, err := base64.StdEncoding.DecodeString(key)
	require.NoError(t, err)
	require.Len(t, raw, 30)
	assert.Equal(t, []byte{9, 0, 0, 0, 0x16, 0, 0, 0}, raw[:8], "Exchange's change key header")
	assert.True(t, strings.HasPrefix(key, "CQAAABYAAA"), key)
}

func TestIfMatch(t *testing.T) {
	s := newTestServer(t, nil)
	id := newDraft(t, s, map[string]any{"subject": "s"})
	stale := getETag(t, s, id)
	r := doJSON(t, s, "PATCH", msgPath(id), map[string]any{"isRead": false}, withHeader("If-Match", stale))
	require.Equal(t, 200, r.status, "the current ETag matches: %s", r.raw)
	current := getETag(t, s, id)

	// A stale ETag: 412, and nothing changes.
	r = doJSON(t, s, "PATCH", msgPath(id), map[string]any{"isRead": true}, withHeader("If-Match", stale))
	require.Equal(t, http.StatusPreconditionFailed, r.status, string(r.raw))
	assert.Equal(t, "ErrorIrresolvableConflict", r.errCode())
	assert.Contains(t, string(r.raw), "does not match the current change key for the item")
	m, _ := s.Message(alice, id)
	assert.False(t, m.IsRead)
	assert.Equal(t, current, getETag(t, s, id))

	// "*", the change key alone or quoted, a list holding the current
	// one: all match.
	for _, spell := range []func(etag, key string) string{
		func(string, string) string { return "*" },
		func(_, key string) string { return key },
		func(_, key string) string { return `"` + key + `"` },
		func(etag, _ string) string { return stale + ", " + etag },
	} {
		h := spell(current, strings.TrimSuffix(strings.TrimPrefix(current, `W/"`), `"`))
		r = doJSON(t, s, "PATCH", msgPath(id), map[string]any{"categories": []string{h}}, withHeader("If-Match", h))
		require.Equal(t, 200, r.status, "If-Match %s: %s", h, r.raw)
		current = r.json["@odata.etag"].(string)
	}
	r = doJSON(t, s, "PATCH", msgPath(id), map[string]any{"isRead": true}, withHeader("If-Match", `W/""`))
	assert.Equal(t, http.StatusPreconditionFailed, r.status, "an empty ETag names no version")

	// DELETE: a stale ETag deletes nothing.
	r = do(t, s, "DELETE", msgPath(id), nil, "", withHeader("If-Match", stale))
	require.Equal(t, http.StatusPreconditionFailed, r.status, string(r.raw))
	assert.Equal(t, "ErrorIrresolvableConflict", r.errCode())
	_, ok := s.Message(alice, id)
	require.True(t, ok)
	r = do(t, s, "DELETE", msgPath(id), nil, "", withHeader("If-Match", current))
	require.Equal(t, http.StatusNoContent, r.status, string(r.raw))
	_, ok = s.Message(alice, id)
	assert.False(t, ok)

	// Without If-Match nothing is checked.
	id = newDraft(t, s, map[string]any{"subject": "t"})
	r = doJSON(t, s, "PATCH", msgPath(id), map[string]any{"isRead": true})
	assert.Equal(t, 200, r.status)
	assert.Equal(t, 204, do(t, s, "DELETE", msgPath(id), nil, "").status)
}
