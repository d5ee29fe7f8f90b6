package exchangetest

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestODataContext: every JSON answer of an entity or a collection
// carries the @odata.context Graph's documented answers show, on the
// emulator's own URL and the request's version; errors carry none.
func TestODataContext(t *testing.T) {
	s := newTestServer(t, nil)
	v1 := s.URL() + "/v1.0/$metadata#"
	beta := s.URL() + "/beta/$metadata#"
	user := "users('alice%40contoso.com')"
	want := func(r resp, status int, context string) {
		t.Helper()
		require.Equal(t, status, r.status, string(r.raw))
		assert.Equal(t, context, r.json["@odata.context"])
	}
	base := "/v1.0/users/" + alice

	// Folders: list, create, get (by well-known name and by id), children.
	want(do(t, s, "GET", base+"/mailFolders", nil, ""), 200, v1+user+"/mailFolders")
	r := doJSON(t, s, "POST", base+"/mailFolders", map[string]any{"displayName": "Projects"})
	want(r, 201, v1+user+"/mailFolders/$entity")
	projects := r.json["id"].(string)
	want(doJSON(t, s, "POST", base+"/mailFolders/"+projects+"/childFolders", map[string]any{"displayName": "Q1"}),
		201, v1+user+"/mailFolders('"+projects+"')/childFolders/$entity")
	want(do(t, s, "GET", base+"/mailFolders/inbox", nil, ""), 200, v1+user+"/mailFolders/$entity")
	want(do(t, s, "GET", base+"/mailFolders/"+projects, nil, ""), 200, v1+user+"/mailFolders/$entity")
	// Segments as Graph spells them, the version of the request, the user
	// and keys as the request spelled them.
	want(do(t, s, "GET", "/beta/users/ALICE%40contoso.com/MAILFOLDERS/Inbox/childfolders", nil, ""),
		200, beta+"users('ALICE%40contoso.com')/mailFolders('Inbox')/childFolders")
	want(do(t, s, "GET", base+"/mailFolders/"+projects+"/childFolders?$select=displayName", nil, ""),
		200, v1+user+"/mailFolders('"+projects+"')/childFolders(displayName)")

	// Messages: create (JSON and MIME), list, get, PATCH.
	r = doJSON(t, s, "POST", base+"/mailFolders/inbox/messages", map[string]any{"subject": "s"})
	want(r, 201, v1+user+"/mailFolders('inbox')/messages/$entity")
	id := r.json["id"].(string)
	want(do(t, s, "POST", base+"/messages", b64(sampleMIME), "text/plain"), 201, v1+user+"/messages/$entity")
	want(do(t, s, "GET", base+"/messages", nil, ""), 200, v1+user+"/messages")
	want(do(t, s, "GET", base+"/mailFolders/inbox/messages", nil, ""), 200, v1+user+"/mailFolders('inbox')/messages")
	want(do(t, s, "GET", base+"/messages/"+id, nil, ""), 200, v1+user+"/messages/$entity")
	want(do(t, s, "GET", base+"/mailFolders/inbox/messages/"+id, nil, ""), 200, v1+user+"/mailFolders('inbox')/messages/$entity")
	want(doJSON(t, s, "PATCH", base+"/messages/"+id, map[string]any{"isRead": true}), 200, v1+user+"/messages/$entity")

	// $select is reflected on GET, in the schema's spelling; $expand is not.
	q := url.Values{"$select": {"SUBJECT, id"}}
	want(do(t, s, "GET", base+"/mailFolders/inbox/messages?"+q.Encode(), nil, ""), 200, v1+user+"/mailFolders('inbox')/messages(subject,id)")
	want(do(t, s, "GET", base+"/messages/"+id+"?$select=internetMessageHeaders", nil, ""), 200, v1+user+"/messages(internetMessageHeaders)/$entity")
	want(do(t, s, "GET", base+"/messages/"+id+"?$expand=singleValueExtendedProperties", nil, ""), 200, v1+user+"/messages/$entity")
	want(doJSON(t, s, "PATCH", base+"/messages/"+id+"?$select=subject", map[string]any{"isRead": false}), 200, v1+user+"/messages/$entity")

	// importMime answers as the message actions do.
	want(do(t, s, "POST", "/beta/users/"+alice+"/mailFolders/inbox/importMime", b64(mixedMIME), "text/plain"), 201, beta+"message")

	// Attachments: create, list, get, and the item of an itemAttachment.
	r = doJSON(t, s, "POST", base+"/messages/"+id+"/attachments", map[string]any{
		"@odata.type": "#microsoft.graph.fileAttachment", "name": "a.txt", "contentBytes": "aGk="})
	want(r, 201, v1+user+"/messages('"+id+"')/attachments/$entity")
	att := r.json["id"].(string)
	want(do(t, s, "GET", base+"/messages/"+id+"/attachments", nil, ""), 200, v1+user+"/messages('"+id+"')/attachments")
	want(do(t, s, "GET", base+"/messages/"+id+"/attachments/"+att+"?$select=name,size", nil, ""),
		200, v1+user+"/messages('"+id+"')/attachments(name,size)/$entity")

	imported := s.Messages(alice)[2]
	require.Len(t, imported.Attachments, 3)
	item := imported.Attachments[2].ID
	itemPath := base + "/messages/" + imported.ID + "/attachments/" + item
	r = do(t, s, "GET", itemPath+"?$expand=microsoft.graph.itemAttachment/item", nil, "")
	want(r, 200, v1+user+"/messages('"+imported.ID+"')/attachments/$entity")
	assert.Equal(t, v1+user+"/messages('"+imported.ID+"')/attachments('"+item+"')/microsoft.graph.itemAttachment/item/$entity",
		r.json["item@odata.context"])
	assert.Equal(t, "focused", r.json["item"].(map[string]any)["inferenceClassification"], "the item is a message like any other")
	assert.NotContains(t, do(t, s, "GET", itemPath, nil, "").json, "item@odata.context")

	// Errors carry none.
	r = do(t, s, "GET", base+"/messages/nosuch", nil, "")
	require.Equal(t, 404, r.status)
	assert.NotContains(t, r.json, "@odata.context")

	// $batch: each response as on the wire, under the batch's version; the
	// envelope has none.
	r = doJSON(t, s, "POST", "/beta/$batch", map[string]any{"requests": []map[string]any{
		{"id": "1", "method": "GET", "url": "/users/" + alice + "/mailFolders/inbox"},
		{"id": "2", "method": "GET", "url": "/users/" + alice + "/mailFolders/inbox/messages?$select=subject"},
	}})
	require.Equal(t, 200, r.status, string(r.raw))
	assert.NotContains(t, r.json, "@odata.context")
	got := map[string]any{}
	for _, x := range r.json["responses"].([]any) {
		sub := x.(map[string]any)
		got[sub["id"].(string)] = sub["body"].(map[string]any)["@odata.context"]
	}
	assert.Equal(t, map[string]any{
		"1": beta + user + "/mailFolders/$entity",
		"2": beta + user + "/mailFolders('inbox')/messages(subject)",
	}, got)
}

// TestContextKey: keys are OData string literals, percent-encoded as
// Graph's answers show them (users('john.doe%40contoso.onmicrosoft.com'),
// messages('AAMkAGUzY5QKjAAA%3D')).
func TestContextKey(t *testing.T) {
	for in, want := range map[string]string{
		"john.doe@contoso.onmicrosoft.com": "john.doe%40contoso.onmicrosoft.com",
		"AAMkAGUzY5QKjAAA=":                "AAMkAGUzY5QKjAAA%3D",
		"AAMkADA1M-zA_A~":                  "AAMkADA1M-zA_A~",
		"it's a/b+c":                       "it%27%27s%20a%2Fb%2Bc",
	} {
		assert.Equal(t, want, contextKey(in), in)
	}
}

// TestGetFolderSelect: GET of one mailFolder honours $select as GET of
// a message does: id and the annotations, and the properties named.
func TestGetFolderSelect(t *testing.T) {
	s := newTestServer(t, nil)
	r := do(t, s, "GET", "/v1.0/users/"+alice+"/mailFolders/inbox?$select=displayName,totalItemCount", nil, "")
	require.Equal(t, http.StatusOK, r.status, string(r.raw))
	assert.ElementsMatch(t, []string{"@odata.context", "@odata.type", "id", "displayName", "totalItemCount"}, keysOf(r.json))
	r = do(t, s, "GET", "/v1.0/users/"+alice+"/mailFolders/inbox", nil, "")
	assert.Contains(t, r.json, "unreadItemCount", "every property without $select")
}

func keysOf(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestExpandsItem: only the documented form names the item of an
// itemAttachment (attachment-get, example 3); "item" alone is refused
// by the query checker, and the handler agrees.
func TestExpandsItem(t *testing.T) {
	for expand, want := range map[string]bool{
		"microsoft.graph.itemAttachment/item":   true,
		"microsoft.graph.itemattachment/item":   true,
		" Microsoft.Graph.ItemAttachment/Item":  true,
		"x,microsoft.graph.itemAttachment/item": true,
		"item":                                  false,
		"Item":                                  false,
		"microsoft.graph.fileAttachment/item":   false,
		"other/item":                            false,
		"":                                      false,
	} {
		assert.Equal(t, want, expandsItem(expand), expand)
	}
	s := newTestServer(t, nil)
	r := do(t, s, "POST", "/beta/users/"+alice+"/mailFolders/inbox/importMime", b64(mixedMIME), "text/plain")
	require.Equal(t, 201, r.status, string(r.raw))
	m := s.Messages(alice)[0]
	r = do(t, s, "GET", "/v1.0/users/"+alice+"/messages/"+m.ID+"/attachments/"+m.Attachments[2].ID+"?$expand=item", nil, "")
	assert.Equal(t, http.StatusBadRequest, r.status, string(r.raw))
}
