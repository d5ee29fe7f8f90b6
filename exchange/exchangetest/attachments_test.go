package exchangetest

import (
	"encoding/base64"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPostAttachment(t *testing.T) {
	s := newTestServer(t, nil)
	id := newDraft(t, s, map[string]any{"subject": "with attachment"})
	gif := append([]byte("GIF89a"), pattern(100)...)
	r := doJSON(t, s, "POST", "/v1.0/users/"+alice+"/messages/"+id+"/attachments", map[string]any{
		"@odata.type": "#microsoft.graph.fileAttachment", "name": "smile", "contentBytes": base64.StdEncoding.EncodeToString(gif),
	})
	require.Equal(t, 201, r.status, string(r.raw))
	assert.Equal(t, "image/gif", r.json["contentType"], "sniffed, as the documented example")
	assert.EqualValues(t, len(gif), r.json["size"])
	assert.Equal(t, false, r.json["isInline"])
	aid := r.json["id"].(string)

	// Under a folder path too, inline with a Content-ID.
	r = doJSON(t, s, "POST", "/v1.0/users/"+alice+"/mailFolders/inbox/messages/"+id+"/attachments", map[string]any{
		"@odata.type": "#microsoft.graph.fileAttachment", "name": "logo.png", "contentType": "image/png",
		"contentBytes": base64.StdEncoding.EncodeToString([]byte("png")), "isInline": true, "contentId": "logo1",
	})
	require.Equal(t, 201, r.status, string(r.raw))

	m, _ := s.Message(alice, id)
	require.Len(t, m.Attachments, 2)
	assert.Equal(t, Attachment{ID: aid, Name: "smile", ContentType: "image/gif", Size: len(gif), Content: gif}, m.Attachments[0])
	assert.Equal(t, "logo1", m.Attachments[1].ContentID)
	assert.True(t, m.Attachments[1].IsInline)

	list := do(t, s, "GET", "/v1.0/users/"+alice+"/messages/"+id+"/attachments", nil, "")
	require.Equal(t, 200, list.status)
	require.Len(t, values(list), 2)
	assert.Equal(t, base64.StdEncoding.EncodeToString(gif), values(list)[0]["contentBytes"])
	one := do(t, s, "GET", "/v1.0/users/"+alice+"/messages/"+id+"/attachments/"+aid+"?$select=name,size", nil, "")
	assert.Equal(t, "smile", one.json["name"])
	assert.NotContains(t, one.json, "contentBytes")
	raw := do(t, s, "GET", "/v1.0/users/"+alice+"/messages/"+id+"/attachments/"+aid+"/$value", nil, "")
	assert.Equal(t, gif, raw.raw)
	assert.Equal(t, "image/gif", raw.header.Get("Content-Type"))
	msg := do(t, s, "GET", "/v1.0/users/"+alice+"/messages/"+id, nil, "")
	assert.Equal(t, true, msg.json["hasAttachments"])

	// Only an inline attachment left: hasAttachments is false.
	assert.Equal(t, 204, do(t, s, "DELETE", "/v1.0/users/"+alice+"/messages/"+id+"/attachments/"+aid, nil, "").status)
	msg = do(t, s, "GET", "/v1.0/users/"+alice+"/messages/"+id, nil, "")
	assert.Equal(t, false, msg.json["hasAttachments"])
	assert.Equal(t, "ErrorItemNotFound", do(t, s, "GET", "/v1.0/users/"+alice+"/messages/"+id+"/attachments/"+aid, nil, "").errCode())

	// Required fields; only file attachments.
	r = doJSON(t, s, "POST", "/v1.0/users/"+alice+"/messages/"+id+"/attachments", map[string]any{"@odata.type": "#microsoft.graph.fileAttachment", "name": "x"})
	assert.Equal(t, 400, r.status)
	r = doJSON(t, s, "POST", "/v1.0/users/"+alice+"/messages/"+id+"/attachments", map[string]any{"@odata.type": "#microsoft.graph.itemAttachment", "name": "x"})
	assert.Equal(t, 400, r.status)
}
