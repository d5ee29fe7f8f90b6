package exchangetest

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestInferenceClassification: every message is "focused" until a create
// or PATCH classifies it "other" (message-update's own example); the
// value is stored, answered, read back by GET, $select and $filter, and a
// value that is neither focused nor other answers 400 and changes
// nothing.
func TestInferenceClassification(t *testing.T) {
	s := newTestServer(t, nil)
	draft := newDraft(t, s, map[string]any{"subject": "draft"})
	delivered := newDelivered(t, s, map[string]any{"subject": "delivered"})
	imported := do(t, s, "POST", "/beta/users/"+alice+"/mailFolders/inbox/importMime", b64(sampleMIME), "text/plain")
	require.Equal(t, 201, imported.status, string(imported.raw))
	assert.Equal(t, "focused", imported.json["inferenceClassification"])
	for _, id := range []string{draft, delivered} {
		assert.Equal(t, "focused", do(t, s, "GET", msgPath(id), nil, "").json["inferenceClassification"])
	}

	// message-update's example, on a draft; and on a message that is no
	// draft, as the property has no draft condition. Values match in any
	// case and are answered as Graph spells them.
	r := doJSON(t, s, "PATCH", msgPath(draft), map[string]any{
		"subject": "subject-value", "body": map[string]any{"contentType": "", "content": "content-value"},
		"inferenceClassification": "other",
	})
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, "other", r.json["inferenceClassification"])
	r = doJSON(t, s, "PATCH", msgPath(delivered), map[string]any{"inferenceClassification": "Other"})
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, "other", r.json["inferenceClassification"])
	assert.Equal(t, "other", do(t, s, "GET", msgPath(delivered), nil, "").json["inferenceClassification"])

	// A value outside the enumeration: 400, nothing changed.
	before := getETag(t, s, delivered)
	r = doJSON(t, s, "PATCH", msgPath(delivered), map[string]any{"inferenceClassification": "junk", "isRead": false})
	assert.Equal(t, 400, r.status, string(r.raw))
	assert.Equal(t, "RequestBodyRead", r.errCode())
	after := do(t, s, "GET", msgPath(delivered), nil, "")
	assert.Equal(t, "other", after.json["inferenceClassification"])
	assert.Equal(t, true, after.json["isRead"])
	assert.Equal(t, before, getETag(t, s, delivered))

	// Back to focused.
	r = doJSON(t, s, "PATCH", msgPath(draft), map[string]any{"inferenceClassification": "focused"})
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, "focused", r.json["inferenceClassification"])

	// A create takes it too.
	created := newDraft(t, s, map[string]any{"subject": "created other", "inferenceClassification": "other"})
	assert.Equal(t, "other", do(t, s, "GET", msgPath(created), nil, "").json["inferenceClassification"])
	r = doJSON(t, s, "POST", "/v1.0/users/"+alice+"/messages", map[string]any{"inferenceClassification": "spam"})
	assert.Equal(t, 400, r.status, string(r.raw))

	// $select and $filter.
	r = do(t, s, "GET", msgPath(created)+"?$select=inferenceClassification", nil, "")
	require.Equal(t, 200, r.status, string(r.raw))
	assert.ElementsMatch(t, []string{"@odata.context", "@odata.etag", "@odata.type", "id", "inferenceClassification"}, keysOf(r.json))
	q := url.Values{"$filter": {"inferenceClassification eq 'other'"}, "$select": {"subject"}}
	r = do(t, s, "GET", "/v1.0/users/"+alice+"/messages?"+q.Encode(), nil, "")
	require.Equal(t, 200, r.status, string(r.raw))
	var subjects []string
	for _, m := range values(r) {
		subjects = append(subjects, m["subject"].(string))
	}
	assert.ElementsMatch(t, []string{"delivered", "created other"}, subjects)
}
