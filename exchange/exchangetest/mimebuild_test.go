package exchangetest

import (
	"bytes"
	"io"
	"mime/quotedprintable"
	"net/mail"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestJSONCreateSinglePartValue(t *testing.T) {
	s := newTestServer(t, nil)
	id := newDraft(t, s, map[string]any{"subject": "plain", "body": map[string]any{"contentType": "text", "content": "héllo\r\n"}})
	v := do(t, s, "GET", "/v1.0/users/"+alice+"/messages/"+id+"/$value", nil, "")
	msg, err := mail.ReadMessage(bytes.NewReader(v.raw))
	require.NoError(t, err)
	assert.Equal(t, "text/plain; charset=utf-8", msg.Header.Get("Content-Type"))
	b, _ := io.ReadAll(quotedprintable.NewReader(msg.Body))
	assert.Equal(t, "héllo\r\n", string(b))

	r := doJSON(t, s, "POST", "/v1.0/users/"+alice+"/mailFolders/inbox/messages", map[string]any{"body": map[string]any{"contentType": "rtf", "content": "x"}})
	assert.Equal(t, 400, r.status)
}
