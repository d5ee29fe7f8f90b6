package exchangetest

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWellKnownFolders(t *testing.T) {
	s := newTestServer(t, nil)
	for _, v := range []string{"v1.0", "beta"} {
		r := do(t, s, "GET", "/"+v+"/users/"+alice+"/mailFolders/inbox", nil, "")
		require.Equal(t, 200, r.status, string(r.raw))
		assert.Equal(t, "Inbox", r.json["displayName"])
		assert.Equal(t, "#microsoft.graph.mailFolder", r.json["@odata.type"])
		assert.Equal(t, false, r.json["isHidden"])
	}
	// The user is matched case-insensitively, and the UPN may be escaped.
	r := do(t, s, "GET", "/v1.0/users/ALICE%40contoso.com/mailFolders/SentItems", nil, "")
	require.Equal(t, 200, r.status)
	assert.Equal(t, "Sent Items", r.json["displayName"])
	inboxID := do(t, s, "GET", "/v1.0/users/"+alice+"/mailFolders/inbox", nil, "").json["id"].(string)
	r = do(t, s, "GET", "/v1.0/users/"+alice+"/mailFolders/"+inboxID, nil, "")
	assert.Equal(t, "Inbox", r.json["displayName"])
	root := do(t, s, "GET", "/v1.0/users/"+alice+"/mailFolders/msgfolderroot", nil, "")
	assert.Equal(t, root.json["id"], r.json["parentFolderId"])

	// Top-level listing pages 10 at a time by default: 8 well-known folders.
	r = do(t, s, "GET", "/v1.0/users/"+alice+"/mailFolders?$top=5", nil, "")
	require.Equal(t, 200, r.status)
	assert.Len(t, values(r), 5)
	next, _ := r.json["@odata.nextLink"].(string)
	require.NotEmpty(t, next)
	u, _ := url.Parse(next)
	r = do(t, s, "GET", u.RequestURI(), nil, "")
	assert.Len(t, values(r), 3)
	assert.Nil(t, r.json["@odata.nextLink"])

	r = do(t, s, "GET", "/v1.0/users/"+alice+"/mailFolders/nosuchfolder", nil, "")
	assert.Equal(t, 404, r.status)
	assert.Equal(t, "ErrorItemNotFound", r.errCode())

	var names []string
	for _, f := range s.Folders(alice) {
		names = append(names, f.WellKnownName)
	}
	assert.Contains(t, names, "deleteditems")
	assert.Contains(t, names, "msgfolderroot")
}

func TestCreateFolderAndFilter(t *testing.T) {
	s := newTestServer(t, nil)
	base := "/v1.0/users/" + alice
	r := doJSON(t, s, "POST", base+"/mailFolders", map[string]any{"displayName": "Projects"})
	require.Equal(t, 201, r.status, string(r.raw))
	projects := r.json["id"].(string)
	assert.Equal(t, "Projects", r.json["displayName"])
	assert.EqualValues(t, 0, r.json["childFolderCount"])

	r = doJSON(t, s, "POST", base+"/mailFolders", map[string]any{"displayName": "PROJECTS"})
	assert.Equal(t, 409, r.status)
	assert.Equal(t, "ErrorFolderExists", r.errCode())

	r = doJSON(t, s, "POST", base+"/mailFolders/"+projects+"/childFolders", map[string]any{"displayName": "Bob's"})
	require.Equal(t, 201, r.status)
	child := r.json["id"].(string)
	assert.Equal(t, projects, r.json["parentFolderId"])
	// The same name under another parent is fine.
	r = doJSON(t, s, "POST", base+"/mailFolders/inbox/childFolders", map[string]any{"displayName": "Bob's"})
	require.Equal(t, 201, r.status)

	q := url.Values{"$filter": {"displayName eq 'bob''s'"}, "$top": {"1"}}
	r = do(t, s, "GET", base+"/mailFolders/"+projects+"/childFolders?"+q.Encode(), nil, "")
	require.Equal(t, 200, r.status, string(r.raw))
	require.Len(t, values(r), 1)
	assert.Equal(t, child, values(r)[0]["id"])

	q = url.Values{"$filter": {"displayName eq 'Nope'"}}
	r = do(t, s, "GET", base+"/mailFolders/"+projects+"/childFolders?"+q.Encode(), nil, "")
	assert.Empty(t, values(r))

	r = do(t, s, "GET", base+"/mailFolders/"+projects, nil, "")
	assert.EqualValues(t, 1, r.json["childFolderCount"])
	// A nested folder is reachable by its id and under childFolders.
	r = do(t, s, "GET", base+"/mailFolders/"+projects+"/childFolders/"+child, nil, "")
	assert.Equal(t, "Bob's", r.json["displayName"])

	r = do(t, s, "GET", base+"/mailFolders/inbox/childFolders?$filter="+url.QueryEscape("displayName eq"), nil, "")
	assert.Equal(t, 400, r.status)
}

func TestPermanentDeleteFolder(t *testing.T) {
	s := newTestServer(t, nil)
	r := doJSON(t, s, "POST", "/v1.0/users/"+alice+"/mailFolders", map[string]any{"displayName": "Scratch"})
	require.Equal(t, 201, r.status, string(r.raw))
	scratch := r.json["id"].(string)
	r = doJSON(t, s, "POST", "/v1.0/users/"+alice+"/mailFolders/"+scratch+"/childFolders", map[string]any{"displayName": "Child"})
	require.Equal(t, 201, r.status, string(r.raw))
	child := r.json["id"].(string)
	for _, f := range []string{scratch, child, "inbox"} {
		r = do(t, s, "POST", "/beta/users/"+alice+"/mailFolders/"+f+"/importMime", b64(sampleMIME), "text/plain")
		require.Equal(t, 201, r.status, string(r.raw))
	}

	r = do(t, s, "POST", "/v1.0/users/"+alice+"/mailFolders/"+scratch+"/permanentDelete", nil, "")
	require.Equal(t, 204, r.status, string(r.raw))
	for _, f := range s.Folders(alice) {
		assert.NotContains(t, []string{"Scratch", "Child"}, f.DisplayName)
	}
	assert.Len(t, s.Messages(alice), 1, "only the inbox's message is left")
	assert.Equal(t, 404, do(t, s, "GET", "/v1.0/users/"+alice+"/mailFolders/"+child, nil, "").status)
	r = do(t, s, "GET", "/v1.0/users/"+alice+"/mailFolders", nil, "")
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Len(t, values(r), 8, "the well-known folders are still listed")

	r = do(t, s, "POST", "/v1.0/users/"+alice+"/mailFolders/inbox/permanentDelete", nil, "")
	assert.Equal(t, "ErrorDeleteDistinguishedFolder", r.errCode())
	assert.Equal(t, 404, do(t, s, "POST", "/v1.0/users/"+alice+"/mailFolders/"+scratch+"/permanentDelete", nil, "").status)
}
