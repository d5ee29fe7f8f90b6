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
	for _, k := range []string{"from", "sender", "internetMessageHeaders", "singleValueExtendedProperties"} {
		assert.NotContains(t, out, k)
	}
	assert.Equal(t, map[string]any{"contentType": "text", "content": ""}, out["body"], "no body: empty text")
	assert.Equal(t, "", out["bodyPreview"])
	m.body = map[string]any{"contentType": "html", "content": "<p>Hi&amp;bye</p>"}
	out = messageJSON(m, nil, nil)
	assert.Equal(t, m.body, out["body"])
	assert.Equal(t, "Hi&bye", out["bodyPreview"])
	m.body = nil
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

func TestItemAttachmentJSON(t *testing.T) {
	mod := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	raw := "Subject: inner\r\nFrom: Carol <carol@example.com>\r\nDate: Mon, 01 Jan 2024 10:00:00 +0000\r\n\r\nInner text\r\n"
	a := &attachment{id: "A", name: "inner", contentType: "message/rfc822", content: []byte(raw), item: true, mod: mod}
	out := attachmentJSON(a)
	assert.Equal(t, map[string]any{
		"@odata.type": "#microsoft.graph.itemAttachment", "id": "A", "lastModifiedDateTime": "2024-01-02T03:04:05Z",
		"name": "inner", "contentType": "message/rfc822", "size": len(raw), "isInline": false,
	}, out)

	item := itemJSON(a)
	assert.Equal(t, "#microsoft.graph.message", item["@odata.type"])
	assert.Equal(t, "", item["id"])
	assert.Equal(t, "inner", item["subject"])
	assert.Equal(t, "2024-01-01T10:00:00Z", item["sentDateTime"])
	assert.Equal(t, "2024-01-02T03:04:05Z", item["receivedDateTime"])
	assert.Equal(t, map[string]any{"contentType": "text", "content": "Inner text\r\n"}, item["body"])
	assert.Equal(t, "Inner text", item["bodyPreview"])
	assert.Equal(t, false, item["isDraft"])
	assert.NotContains(t, item, "@odata.etag")
}

// TestMessageFlags: PidTagMessageFlags follows isRead, isDraft and
// hasAttachments, and keeps the other flags the creation set.
func TestMessageFlags(t *testing.T) {
	s := NewServer(nil)
	defer s.Close()
	m := s.newMessage(&folder{id: "F"}, false)
	assert.EqualValues(t, 0, m.messageFlags())
	assert.Equal(t, []extProp{{id: "Integer 0xe07", value: "0"}}, m.shownProps())

	m.isRead = true
	assert.EqualValues(t, msgflagRead, m.messageFlags())
	m.isDraft = true
	assert.EqualValues(t, msgflagRead|msgflagUnsent, m.messageFlags())
	m.attachments = []*attachment{{isInline: true}}
	assert.EqualValues(t, msgflagRead|msgflagUnsent, m.messageFlags(), "inline only: no mfHasAttach")
	m.attachments = append(m.attachments, &attachment{})
	assert.EqualValues(t, msgflagRead|msgflagUnsent|msgflagHasAttach, m.messageFlags())

	// Stored at creation (0x20 mfFromMe, 0x1 read, 0x10 has-attach): the
	// state bits follow the message, the others stay; the client's
	// spelling of the id stays in the store, the value is the computed one.
	m = s.newMessage(&folder{id: "F"}, false)
	m.props = []extProp{{id: "String 0x1234", value: "v"}, {id: "Integer 0x0E07", value: "0x31"}}
	assert.EqualValues(t, 0x20, m.messageFlags())
	assert.Equal(t, []extProp{{id: "String 0x1234", value: "v"}, {id: "Integer 0x0E07", value: "32"}}, m.shownProps())
	assert.Equal(t, "0x31", m.props[1].value, "the stored value is not changed")
}
