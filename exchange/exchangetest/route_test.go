package exchangetest

import (
	"encoding/base64"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// errMessage returns the message of a Graph error answer.
func errMessage(r resp) string {
	e, _ := r.json["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}

// importMime is documented under beta only: under v1.0 its segment is
// unknown, 400 BadRequest "Resource not found for the segment
// 'importMime'.", and nothing is stored.
func TestImportMimeIsBetaOnly(t *testing.T) {
	s := newTestServer(t, nil)
	for _, name := range []string{"importMime", "importmime", "microsoft.graph.importMime"} {
		r := do(t, s, "POST", "/v1.0/users/"+alice+"/mailFolders/inbox/"+name, b64(sampleMIME), "text/plain")
		assert.Equal(t, 400, r.status, name)
		assert.Equal(t, "BadRequest", r.errCode(), name)
		assert.Equal(t, "Resource not found for the segment '"+name+"'.", errMessage(r), name)
		// Under a child folder path too.
		r = do(t, s, "POST", "/v1.0/users/"+alice+"/mailFolders/msgfolderroot/childFolders/inbox/"+name, b64(sampleMIME), "text/plain")
		assert.Equal(t, "Resource not found for the segment '"+name+"'.", errMessage(r), name)
	}
	assert.Empty(t, s.Messages(alice), "nothing imported under v1.0")
	assert.Equal(t, 6, s.Stats().Requests, "refused requests still count")

	r := do(t, s, "POST", "/beta/users/"+alice+"/mailFolders/inbox/importMime", b64(sampleMIME), "text/plain")
	require.Equal(t, 201, r.status, string(r.raw))
	r = do(t, s, "POST", "/beta/users/"+alice+"/mailFolders/inbox/microsoft.graph.importMime", b64(sampleMIME), "text/plain")
	require.Equal(t, 201, r.status, string(r.raw))
	assert.Len(t, s.Messages(alice), 2)
}

// Every other route is documented under v1.0 (and beta): each answers
// under both, never with an unknown segment.
func TestRoutesServedUnderBothVersions(t *testing.T) {
	for _, v := range []string{"v1.0", "beta"} {
		t.Run(v, func(t *testing.T) {
			s := newTestServer(t, nil)
			u := "/" + v + "/users/" + alice
			check := func(r resp, want int, what string) {
				t.Helper()
				require.Equal(t, want, r.status, "%s %s: %s", v, what, r.raw)
			}
			check(do(t, s, "GET", u+"/mailFolders", nil, ""), 200, "list folders")
			r := doJSON(t, s, "POST", u+"/mailFolders", map[string]any{"displayName": "Top"})
			check(r, 201, "create folder")
			top := r.json["id"].(string)
			check(do(t, s, "GET", u+"/mailFolders/"+top, nil, ""), 200, "get folder")
			r = doJSON(t, s, "POST", u+"/mailFolders/"+top+"/childFolders", map[string]any{"displayName": "Child"})
			check(r, 201, "create child folder")
			child := r.json["id"].(string)
			check(do(t, s, "GET", u+"/mailFolders/"+top+"/childFolders", nil, ""), 200, "list children")
			check(do(t, s, "GET", u+"/mailFolders/"+top+"/childFolders/"+child, nil, ""), 200, "get child")
			check(do(t, s, "GET", u+"/mailFolders/"+top+"/childFolders/"+child+"/messages", nil, ""), 200, "child's messages")

			r = doJSON(t, s, "POST", u+"/mailFolders/"+top+"/messages", map[string]any{"subject": "hi"})
			check(r, 201, "create message")
			id := r.json["id"].(string)
			check(do(t, s, "POST", u+"/messages", b64(sampleMIME), "text/plain"), 201, "create MIME draft")
			check(do(t, s, "GET", u+"/messages", nil, ""), 200, "list messages")
			check(do(t, s, "GET", u+"/messages/"+id+"?$expand="+url.QueryEscape("singleValueExtendedProperties($filter=id eq '"+sourceProp+"')"), nil, ""), 200, "get message with extended properties")
			check(doJSON(t, s, "PATCH", u+"/mailFolders/"+top+"/messages/"+id, map[string]any{"isRead": true}), 200, "update message")
			check(do(t, s, "GET", u+"/messages/"+id+"/$value", nil, ""), 200, "MIME of a message")

			r = doJSON(t, s, "POST", u+"/messages/"+id+"/attachments", map[string]any{
				"@odata.type": "#microsoft.graph.fileAttachment", "name": "a.txt", "contentBytes": base64.StdEncoding.EncodeToString([]byte("x")),
			})
			check(r, 201, "add attachment")
			aid := r.json["id"].(string)
			check(do(t, s, "GET", u+"/messages/"+id+"/attachments", nil, ""), 200, "list attachments")
			check(do(t, s, "GET", u+"/messages/"+id+"/attachments/"+aid, nil, ""), 200, "get attachment")
			check(do(t, s, "GET", u+"/messages/"+id+"/attachments/"+aid+"/$value", nil, ""), 200, "attachment bytes")
			check(do(t, s, "DELETE", u+"/messages/"+id+"/attachments/"+aid, nil, ""), 204, "delete attachment")
			for _, name := range []string{"createUploadSession", "microsoft.graph.createUploadSession"} {
				check(doJSON(t, s, "POST", u+"/messages/"+id+"/attachments/"+name, map[string]any{"AttachmentItem": map[string]any{
					"attachmentType": "file", "name": "big.bin", "size": 4 * 1024 * 1024,
				}}), 201, name)
			}

			check(do(t, s, "DELETE", u+"/messages/"+id, nil, ""), 204, "delete message")
			check(do(t, s, "POST", u+"/mailFolders/"+top+"/childFolders/"+child+"/permanentDelete", nil, ""), 204, "permanentDelete child")
			check(do(t, s, "POST", u+"/mailFolders/"+top+"/microsoft.graph.permanentDelete", nil, ""), 204, "permanentDelete")
		})
	}
}

// An unknown path answers 400 BadRequest naming the first segment that
// does not resolve, not the last.
func TestUnknownSegment(t *testing.T) {
	s := newTestServer(t, nil)
	for path, segment := range map[string]string{
		"/v1.0/me/messages":                                        "me",
		"/v1.0/users/" + alice:                                     alice,
		"/v1.0/users/" + alice + "/events":                         "events",
		"/v1.0/users/" + alice + "/mailFolders/inbox/rules/x":      "rules",
		"/v1.0/users/" + alice + "/mailFolders/inbox/move/x":       "move",
		"/v1.0/users/" + alice + "/messages/m/$value/x":            "x",
		"/v1.0/users/" + alice + "/messages/m/attachments/a/b":     "b",
		"/v1.0/users/" + alice + "/messages/m/attachments/a/b/":    "b",
		"/v1.0/users/" + alice + "/messages/m/extensions":          "extensions",
		"/beta/users/" + alice + "/mailFolders/inbox/importMime/x": "x",
	} {
		r := do(t, s, "GET", path, nil, "")
		assert.Equal(t, 400, r.status, path)
		assert.Equal(t, "BadRequest", r.errCode(), path)
		assert.Equal(t, "Resource not found for the segment '"+segment+"'.", errMessage(r), path)
	}
}

func TestParseRoute(t *testing.T) {
	for _, tc := range []struct {
		version, path string
		kind, tmpl    string // kind "" when the path does not route
		bad           string
	}{
		{"v1.0", "users/u/mailFolders", "folders", "/users/{user}/mailFolders", ""},
		{"v1.0", "users/u/mailFolders/inbox/childFolders/c/permanentDelete", "permanentDelete", "/users/{user}/mailFolders/{id}/childFolders/{id}/permanentDelete", ""},
		{"beta", "users/u/mailFolders/inbox/permanentDelete", "permanentDelete", "/users/{user}/mailFolders/{id}/permanentDelete", ""},
		{"beta", "users/u/mailFolders/inbox/importMime", "import", "/users/{user}/mailFolders/{id}/importMime", ""},
		{"beta", "users/u/mailFolders/inbox/microsoft.graph.importMime", "import", "/users/{user}/mailFolders/{id}/importMime", ""},
		{"v1.0", "users/u/mailFolders/inbox/importMime", "", "", "importMime"},
		{"v1.0", "users/u/mailFolders/inbox/microsoft.graph.importMime", "", "", "microsoft.graph.importMime"},
		{"v1.0", "users/u/messages/m/attachments/createUploadSession", "uploadSession", "/users/{user}/messages/{id}/attachments/createUploadSession", ""},
		{"v1.0", "users/u/messages/m/attachments/createUploadSession/x", "", "", "x"},
		{"v1.0", "users/u/messages/m/attachments/a/$value", "attachmentValue", "/users/{user}/messages/{id}/attachments/{id}/$value", ""},
		{"v1.0", "users/u/messages/m/$value", "value", "/users/{user}/messages/{id}/$value", ""},
		{"v1.0", "v1.0/users/u/messages", "", "", "v1.0"},
		{"v1.0", "users/u", "", "", "u"},
		{"v1.0", "", "", "", ""},
	} {
		var segs []string
		if tc.path != "" {
			segs = strings.Split(tc.path, "/")
		}
		rt, bad, ok := parseRoute(tc.version, segs)
		if tc.kind == "" {
			assert.False(t, ok, "%s %s", tc.version, tc.path)
			assert.Equal(t, tc.bad, bad, "%s %s", tc.version, tc.path)
			continue
		}
		if assert.True(t, ok, "%s %s (bad %q)", tc.version, tc.path, bad) {
			assert.Equal(t, tc.kind, rt.kind, tc.path)
			assert.Equal(t, tc.tmpl, rt.tmpl, tc.path)
		}
	}
}

// A path under no version, or under one Graph does not have, answers 400
// BadRequest "Invalid version.".
func TestInvalidVersion(t *testing.T) {
	s := newTestServer(t, nil)
	for _, path := range []string{"/users/" + alice + "/mailFolders", "/v2.0/users/" + alice + "/mailFolders"} {
		r := do(t, s, "GET", path, nil, "")
		assert.Equal(t, 400, r.status, path)
		assert.Equal(t, "BadRequest", r.errCode(), path)
		assert.Equal(t, "Invalid version.", errMessage(r), path)
	}
}
