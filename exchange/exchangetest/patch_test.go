package exchangetest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// This file tests what a PATCH of a message may change (patch.go).

// newDelivered creates a message that is not a draft (PidTagMessageFlags
// without MSGFLAG_UNSENT) and returns its id.
func newDelivered(t *testing.T, s *Server, body map[string]any) string {
	t.Helper()
	body["singleValueExtendedProperties"] = []map[string]string{{"id": "Integer 0x0E07", "value": "1"}}
	id := newDraft(t, s, body)
	m, _ := s.Message(alice, id)
	require.False(t, m.IsDraft)
	return id
}

func addr(a string) map[string]any {
	return map[string]any{"emailAddress": map[string]any{"address": a}}
}

func TestPatchOfDeliveredMessage(t *testing.T) {
	s := newTestServer(t, nil)
	id := newDelivered(t, s, map[string]any{
		"subject": "orig", "body": map[string]any{"contentType": "text", "content": "orig"},
		"from": addr("bob@example.com"), "internetMessageId": "<orig@example.com>",
	})
	before := getETag(t, s, id)

	// subject and body: 200, unchanged.
	r := doJSON(t, s, "PATCH", msgPath(id), map[string]any{
		"subject": "new", "body": map[string]any{"contentType": "text", "content": "new"},
	})
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, "orig", r.json["subject"])
	assert.Equal(t, "orig", r.json["body"].(map[string]any)["content"])

	// from, sender, replyTo, internetMessageId: 400, nothing changes.
	for _, tc := range []struct {
		prop string
		v    any
		msg  string
	}{
		{"from", addr("eve@example.com"), "Message is not draft."},
		{"sender", addr("eve@example.com"), "Message is not draft."},
		{"replyTo", []any{addr("eve@example.com")}, "Message is not draft."},
		{"internetMessageId", "<new@example.com>", "Set action is invalid for property."},
	} {
		before := getETag(t, s, id)
		r := doJSON(t, s, "PATCH", msgPath(id), map[string]any{tc.prop: tc.v, "isRead": false})
		require.Equal(t, 400, r.status, "%s: %s", tc.prop, r.raw)
		assert.Equal(t, "ErrorInvalidPropertySet", r.errCode(), tc.prop)
		assert.Contains(t, string(r.raw), tc.msg, tc.prop)
		assert.Equal(t, before, getETag(t, s, id), "%s: a refused PATCH saves nothing", tc.prop)
	}
	m, _ := s.Message(alice, id)
	assert.True(t, m.IsRead, "the refused PATCHes changed nothing")
	assert.Equal(t, "<orig@example.com>", m.InternetMessageID)

	// toRecipients, ccRecipients, bccRecipients: updatable on any message.
	r = doJSON(t, s, "PATCH", msgPath(id), map[string]any{
		"toRecipients": []any{addr("to@example.com")}, "ccRecipients": []any{addr("cc@example.com")},
		"bccRecipients": []any{addr("bcc@example.com")},
	})
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, []any{addr("to@example.com")}, r.json["toRecipients"])
	assert.Equal(t, []any{addr("cc@example.com")}, r.json["ccRecipients"])
	assert.Equal(t, []any{addr("bcc@example.com")}, r.json["bccRecipients"])
	assert.NotEqual(t, before, r.json["@odata.etag"])
}

func TestPatchOfDraft(t *testing.T) {
	s := newTestServer(t, nil)
	id := newDraft(t, s, map[string]any{"subject": "orig", "from": addr("bob@example.com")})
	r := doJSON(t, s, "PATCH", msgPath(id), map[string]any{
		"subject": "new", "body": map[string]any{"contentType": "html", "content": "<p>new</p>"},
		"from": addr("carol@example.com"), "sender": addr("dave@example.com"),
		"replyTo": []any{addr("reply@example.com")}, "toRecipients": []any{addr("to@example.com")},
		"internetMessageId": "<new@example.com>",
	})
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, "new", r.json["subject"])
	assert.Equal(t, "<p>new</p>", r.json["body"].(map[string]any)["content"])
	assert.Equal(t, addr("carol@example.com"), r.json["from"])
	assert.Equal(t, addr("dave@example.com"), r.json["sender"])
	assert.Equal(t, []any{addr("reply@example.com")}, r.json["replyTo"])
	assert.Equal(t, []any{addr("to@example.com")}, r.json["toRecipients"])
	assert.Equal(t, "<new@example.com>", r.json["internetMessageId"])

	// null clears.
	r = doJSON(t, s, "PATCH", msgPath(id), map[string]any{"replyTo": nil})
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, []any{}, r.json["replyTo"])
}

func TestPatchOfReadOnlyProperties(t *testing.T) {
	s := newTestServer(t, nil)
	id := newDraft(t, s, map[string]any{"subject": "s"})
	for _, p := range []string{
		"bodyPreview", "changeKey", "conversationId", "conversationIndex",
		"createdDateTime", "hasAttachments", "isDraft", "lastModifiedDateTime",
		"parentFolderId", "receivedDateTime", "sentDateTime", "uniqueBody", "webLink",
		"ReceivedDateTime", // names match as the emulator decodes them
	} {
		r := doJSON(t, s, "PATCH", msgPath(id), map[string]any{p: "2020-01-01T00:00:00Z", "isRead": false})
		require.Equal(t, 400, r.status, "%s: %s", p, r.raw)
		assert.Equal(t, "ErrorInvalidPropertySet", r.errCode(), p)
		assert.Contains(t, string(r.raw), "Set action is invalid for property.", p)
	}
	m, _ := s.Message(alice, id)
	assert.True(t, m.IsRead, "no refused PATCH changed isRead")

	// id and @odata annotations, as a message read back carries them, pass.
	r := do(t, s, "GET", msgPath(id)+"?$select=categories", nil, "")
	require.Equal(t, 200, r.status)
	back := r.json
	back["categories"] = []any{"Blue"}
	r = doJSON(t, s, "PATCH", msgPath(id), back)
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, []any{"Blue"}, r.json["categories"])
}
