package exchangetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestMessageJSON(t *testing.T) {
	s := NewServer(nil)
	defer s.Close()
	m := s.newMessage(&folder{id: "F"}, true)
	m.subject = "s"
	m.created = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	m.headers = []internetHeader{{Name: "X-A", Value: "1"}}
	m.props = []extProp{{id: "String 0x1234", value: "v"}}

	out := messageJSON(m, nil, nil)
	assert.Equal(t, "#microsoft.graph.message", out["@odata.type"])
	assert.Equal(t, "2024-01-02T03:04:05Z", out["createdDateTime"])
	assert.Equal(t, "F", out["parentFolderId"])
	assert.Equal(t, []string{}, out["categories"])
	for _, k := range []string{"toRecipients", "ccRecipients", "bccRecipients", "replyTo"} {
		assert.Equal(t, []any{}, out[k], k)
	}
	for _, k := range []string{"from", "sender", "body", "internetMessageHeaders", "singleValueExtendedProperties"} {
		assert.NotContains(t, out, k)
	}
	assert.Equal(t, false, out["hasAttachments"])

	// sender falls back to from; headers only with $select; properties
	// only when expanded, even none.
	from := map[string]any{"emailAddress": map[string]any{"address": "bob@example.com"}}
	m.from = from
	out = messageJSON(m, []string{"subject", "InternetMessageHeaders"}, []extProp{})
	assert.Equal(t, from, out["from"])
	assert.Equal(t, from, out["sender"])
	assert.Equal(t, []map[string]any{{"name": "X-A", "value": "1"}}, out["internetMessageHeaders"])
	assert.Equal(t, []map[string]any{}, out["singleValueExtendedProperties"])
	out = messageJSON(m, nil, m.props)
	assert.Equal(t, []map[string]any{{"id": "String 0x1234", "value": "v"}}, out["singleValueExtendedProperties"])

	// An inline attachment alone does not count.
	m.attachments = []*attachment{{isInline: true}}
	assert.Equal(t, false, messageJSON(m, nil, nil)["hasAttachments"])
	m.attachments = append(m.attachments, &attachment{})
	assert.Equal(t, true, messageJSON(m, nil, nil)["hasAttachments"])
}

func TestAttachmentJSON(t *testing.T) {
	a := &attachment{id: "A", name: "n.txt", contentType: "text/plain", content: []byte("hi")}
	out := attachmentJSON(a)
	assert.Equal(t, "aGk=", out["contentBytes"])
	assert.Equal(t, 2, out["size"])
	assert.Nil(t, out["contentId"])
	a.contentID = "cid1"
	assert.Equal(t, "cid1", attachmentJSON(a)["contentId"])
}
