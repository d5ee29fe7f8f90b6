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
