package exchangetest

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBatch(t *testing.T) {
	s := newTestServer(t, nil)
	reqs := []map[string]any{
		{"id": "1", "method": "GET", "url": "/users/" + alice + "/mailFolders/inbox"},
		{"id": "2", "method": "POST", "url": "/users/" + alice + "/mailFolders", "headers": map[string]string{"Content-Type": "application/json"}, "body": map[string]any{"displayName": "Batch"}},
		{"id": "3", "method": "POST", "url": "/users/" + alice + "/mailFolders/inbox/importMime", "headers": map[string]string{"Content-Type": "text/plain"}, "body": base64.StdEncoding.EncodeToString(b64(sampleMIME))},
	}
	r := doJSON(t, s, "POST", "/beta/$batch", map[string]any{"requests": reqs})
	require.Equal(t, 200, r.status, string(r.raw))
	got := map[string]float64{}
	for _, x := range r.json["responses"].([]any) {
		m := x.(map[string]any)
		got[m["id"].(string)] = m["status"].(float64)
	}
	assert.Equal(t, map[string]float64{"1": 200, "2": 201, "3": 201}, got)
	require.Len(t, s.Messages(alice), 1)
	assert.Equal(t, sampleMIME, string(s.Messages(alice)[0].MIME))

	// A fault injected with FailNext hits the envelope first.
	s.FailNext(1, 429, 3*time.Second)
	r = doJSON(t, s, "POST", "/v1.0/$batch", map[string]any{"requests": reqs[:1]})
	assert.Equal(t, 429, r.status)

	// A sub-request can be throttled by a budget while the envelope is 200.
	tb := newTestServer(t, &Options{Budget: &Budget{MaxRequestsPerWindow: 1}})
	r = doJSON(t, tb, "POST", "/v1.0/$batch", map[string]any{"requests": []map[string]any{reqs[0], {"id": "4", "method": "GET", "url": reqs[0]["url"]}}})
	require.Equal(t, 200, r.status)
	subs := r.json["responses"].([]any)
	require.Len(t, subs, 2)
	second := subs[1].(map[string]any)
	assert.EqualValues(t, 429, second["status"])
	assert.NotEmpty(t, second["headers"].(map[string]any)["Retry-After"])
	assert.Equal(t, "ApplicationThrottled", second["body"].(map[string]any)["error"].(map[string]any)["code"])

	var many []map[string]any
	for i := range 21 {
		many = append(many, map[string]any{"id": itoa(i), "method": "GET", "url": "/users/" + alice + "/mailFolders/inbox"})
	}
	r = doJSON(t, s, "POST", "/v1.0/$batch", map[string]any{"requests": many})
	assert.Equal(t, 400, r.status)
}

func TestBatchSubRequestsShareTheMailboxBudget(t *testing.T) {
	s := newTestServer(t, &Options{Budget: &Budget{MaxRequestsPerWindow: 3}})
	var reqs []map[string]any
	for i := range 5 {
		reqs = append(reqs, map[string]any{"id": itoa(i), "method": "GET", "url": "/users/" + alice + "/mailFolders/inbox"})
	}
	r := doJSON(t, s, "POST", "/v1.0/$batch", map[string]any{"requests": reqs})
	require.Equal(t, 200, r.status)
	codes := map[float64]int{}
	for _, x := range r.json["responses"].([]any) {
		sub := x.(map[string]any)
		codes[sub["status"].(float64)]++
		if sub["status"].(float64) == 429 {
			assert.NotEmpty(t, sub["headers"].(map[string]any)["Retry-After"])
		}
	}
	assert.Equal(t, map[float64]int{200: 3, 429: 2}, codes)
	st := s.Stats()
	assert.Equal(t, 6, st.Requests, "the envelope and its five sub-requests")
	assert.Equal(t, 2, st.ThrottledBy["MailboxRequests"])
	// A later wire request to the same mailbox is throttled too.
	assert.Equal(t, 429, do(t, s, "GET", "/v1.0/users/"+alice+"/mailFolders/inbox", nil, "").status)
}

// batchReq is one request of a $batch for the tests.
func batchReq(id, method, url string, more ...any) map[string]any {
	r := map[string]any{"id": id, "method": method, "url": url}
	for i := 0; i+1 < len(more); i += 2 {
		r[more[i].(string)] = more[i+1]
	}
	return r
}

// subResponses returns the sub-responses of a $batch answer by id.
func subResponses(t *testing.T, r resp) map[string]map[string]any {
	t.Helper()
	require.Equal(t, 200, r.status, string(r.raw))
	out := map[string]map[string]any{}
	for _, x := range r.json["responses"].([]any) {
		m := x.(map[string]any)
		out[m["id"].(string)] = m
	}
	return out
}

// Each rule that fails a whole batch: 400 BadRequest with Graph's message,
// and none of its requests run, not even those before the faulty one.
func TestBatchRefusedAsAWhole(t *testing.T) {
	folders := "/users/" + alice + "/mailFolders"
	create := func(id, name string) map[string]any {
		return batchReq(id, "POST", folders, "headers", map[string]string{"Content-Type": "application/json"}, "body", map[string]any{"displayName": name})
	}
	get := func(id string) map[string]any { return batchReq(id, "GET", folders+"/inbox") }
	var many []map[string]any
	for i := range 21 {
		many = append(many, get(itoa(i)))
	}
	for _, tc := range []struct {
		name string
		reqs []map[string]any
		msg  string
	}{
		{"more than 20", many, "Too many requests in the batch. The maximum is 20."},
		{"duplicate id", []map[string]any{create("1", "A"), get("2"), get("1")}, "Request Id 1 has to be unique in a batch."},
		{"ids are not case-sensitive", []map[string]any{create("a", "A"), get("A")}, "Request Id A has to be unique in a batch."},
		{"body without Content-Type", []map[string]any{create("1", "A"),
			batchReq("2", "POST", folders, "body", map[string]any{"displayName": "B"})},
			"Write request id : 2 does not contain Content-Type header or body."},
		{"headers without Content-Type", []map[string]any{create("1", "A"),
			batchReq("2", "PATCH", "/users/"+alice+"/messages/m", "headers", map[string]string{"Prefer": "x"}, "body", map[string]any{"isRead": true})},
			"Write request id : 2 does not contain Content-Type header or body."},
		{"empty Content-Type", []map[string]any{create("1", "A"),
			batchReq("2", "PUT", folders+"/x", "headers", map[string]string{"Content-Type": ""}, "body", map[string]any{})},
			"Write request id : 2 does not contain Content-Type header or body."},
		{"write without body", []map[string]any{create("1", "A"),
			batchReq("2", "POST", folders+"/inbox/permanentDelete", "headers", map[string]string{"Content-Type": "application/json"})},
			"Write request id : 2 does not contain Content-Type header or body."},
		{"write with a null body", []map[string]any{create("1", "A"),
			batchReq("2", "post", folders+"/inbox/permanentDelete", "headers", map[string]string{"Content-Type": "application/json"}, "body", nil)},
			"Write request id : 2 does not contain Content-Type header or body."},
		{"GET with a body but no Content-Type", []map[string]any{create("1", "A"),
			batchReq("2", "GET", folders, "body", map[string]any{})},
			"Request id : 2 has a body but no Content-Type header."},
		{"dependsOn an unknown id", []map[string]any{create("1", "A"), batchReq("2", "GET", folders, "dependsOn", []string{"9"})},
			"Invalid dependency for request Id 2."},
		{"dependsOn a later request", []map[string]any{create("1", "A"), batchReq("2", "GET", folders, "dependsOn", []string{"3"}), get("3")},
			"Invalid dependency for request Id 2."},
		{"dependsOn itself", []map[string]any{create("1", "A"), batchReq("2", "GET", folders, "dependsOn", []string{"2"})},
			"Invalid dependency for request Id 2."},
		{"no id", []map[string]any{create("1", "A"), {"method": "GET", "url": folders}}, "A request in the batch has no id."},
		{"no url", []map[string]any{create("1", "A"), {"id": "2", "method": "GET"}}, "Request id : 2 must have a method and a url."},
		{"no method", []map[string]any{create("1", "A"), {"id": "2", "url": folders}}, "Request id : 2 must have a method and a url."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, nil)
			before := len(s.Folders(alice))
			r := doJSON(t, s, "POST", "/v1.0/$batch", map[string]any{"requests": tc.reqs})
			assert.Equal(t, 400, r.status, string(r.raw))
			assert.Equal(t, "BadRequest", r.errCode())
			assert.Equal(t, tc.msg, errMessage(r))
			assert.Len(t, s.Folders(alice), before, "no request of the batch ran")
			st := s.Stats()
			assert.Equal(t, 1, st.Requests, "the envelope alone")
		})
	}
}

// A payload that is not a batch: 400 "Invalid batch payload format.".
func TestBatchInvalidPayload(t *testing.T) {
	s := newTestServer(t, nil)
	for _, body := range []string{`not json`, `{}`, `{"requests": null}`, `{"requests": {}}`, `{"requests": [{"id": 1, "method": "GET", "url": "/users"}]}`} {
		r := do(t, s, "POST", "/v1.0/$batch", []byte(body), "application/json")
		assert.Equal(t, 400, r.status, body)
		assert.Equal(t, "BadRequest", r.errCode(), body)
		assert.Equal(t, "Invalid batch payload format.", errMessage(r), body)
	}
}

// What Graph accepts: Content-Type in any case, a DELETE without body or
// headers, dependsOn an earlier id in another case; a failed dependency
// answers 424 while the envelope is 200.
func TestBatchAccepted(t *testing.T) {
	s := newTestServer(t, nil)
	id := newDraft(t, s, map[string]any{"subject": "to delete"})
	other := newDraft(t, s, map[string]any{"subject": "to patch"})
	folders := "/users/" + alice + "/mailFolders"
	r := doJSON(t, s, "POST", "/v1.0/$batch", map[string]any{"requests": []map[string]any{
		batchReq("a", "POST", folders, "headers", map[string]string{"content-type": "application/json"}, "body", map[string]any{"displayName": "X"}),
		batchReq("B", "DELETE", "/users/"+alice+"/messages/"+id, "dependsOn", []string{"A"}),
		batchReq("c", "PATCH", "/users/"+alice+"/messages/"+other, "dependsOn", []string{"b"},
			"headers", map[string]string{"CONTENT-TYPE": "application/json"}, "body", map[string]any{"isRead": true}),
		batchReq("d", "DELETE", "/users/"+alice+"/messages/"+id),
		batchReq("e", "GET", folders+"/inbox", "dependsOn", []string{"D"}),
	}})
	subs := subResponses(t, r)
	assert.EqualValues(t, 201, subs["a"]["status"])
	assert.EqualValues(t, 204, subs["B"]["status"])
	assert.EqualValues(t, 200, subs["c"]["status"])
	assert.EqualValues(t, 404, subs["d"]["status"], "already deleted")
	assert.EqualValues(t, 424, subs["e"]["status"], "its dependency failed")
	m, _ := s.Message(alice, other)
	assert.True(t, m.IsRead)
}

// A batch sent to /v1.0/$batch runs its requests under v1.0: importMime,
// beta only, is an unknown segment there, as is a version in the url.
func TestBatchRequestsRunUnderTheBatchVersion(t *testing.T) {
	s := newTestServer(t, nil)
	imp := batchReq("1", "POST", "/users/"+alice+"/mailFolders/inbox/importMime",
		"headers", map[string]string{"Content-Type": "text/plain"}, "body", base64.StdEncoding.EncodeToString(b64(sampleMIME)))
	withVersion := batchReq("2", "GET", "/v1.0/users/"+alice+"/mailFolders/inbox")
	absolute := batchReq("3", "GET", s.URL()+"/v1.0/users/"+alice+"/mailFolders/inbox")
	r := doJSON(t, s, "POST", "/v1.0/$batch", map[string]any{"requests": []map[string]any{imp, withVersion, absolute}})
	subs := subResponses(t, r)
	for id, segment := range map[string]string{"1": "importMime", "2": "v1.0", "3": "v1.0"} {
		assert.EqualValues(t, 400, subs[id]["status"], id)
		body := subs[id]["body"].(map[string]any)["error"].(map[string]any)
		assert.Equal(t, "BadRequest", body["code"], id)
		assert.Equal(t, "Resource not found for the segment '"+segment+"'.", body["message"], id)
	}
	assert.Empty(t, s.Messages(alice))

	r = doJSON(t, s, "POST", "/beta/$batch", map[string]any{"requests": []map[string]any{imp}})
	assert.EqualValues(t, 201, subResponses(t, r)["1"]["status"])
	assert.Len(t, s.Messages(alice), 1)
}
