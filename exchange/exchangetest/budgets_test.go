package exchangetest

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func retryAfter(t *testing.T, v string) int {
	t.Helper()
	n, err := strconv.Atoi(v)
	require.NoError(t, err, "Retry-After %q", v)
	return n
}

func TestBudgetRetryAfterFromWindow(t *testing.T) {
	// 10-minute window / 60 = 10 s.
	s := newTestServer(t, &Options{Budgets: &Budgets{RequestsPer10Min: 2}, TimeScale: 60})
	assert.Equal(t, &Budgets{RequestsPer10Min: 2}, s.Budgets())
	assert.Equal(t, 60.0, s.TimeScale())
	inbox := "/v1.0/users/" + alice + "/mailFolders/inbox"
	for range 2 {
		require.Equal(t, 200, do(t, s, "GET", inbox, nil, "").status)
	}
	r := do(t, s, "GET", inbox, nil, "")
	require.Equal(t, 429, r.status)
	assert.Equal(t, "ApplicationThrottled", r.errCode())
	assert.Equal(t, "Application is over its MailboxRequests limit.", r.json["error"].(map[string]any)["message"])
	ra := retryAfter(t, r.header.Get("Retry-After"))
	assert.True(t, ra >= 9 && ra <= 10, "Retry-After %d, want the rest of the 10 s scaled window", ra)

	st := s.Stats()
	assert.Equal(t, 3, st.Requests, "throttled requests are counted")
	assert.Equal(t, 1, st.Throttled)
	assert.Equal(t, map[string]int{"MailboxRequests": 1}, st.ThrottledBy)

	// Without budgets, Budgets is nil and the time scale 1.
	plain := newTestServer(t, nil)
	assert.Nil(t, plain.Budgets())
	assert.Equal(t, 1.0, plain.TimeScale())
}

func TestBudgetUploadRetryAfter(t *testing.T) {
	// 5-minute window / 30 = 10 s; 100 bytes.
	s := newTestServer(t, &Options{Budgets: &Budgets{UploadBytesPer5Min: 100}, TimeScale: 30})
	body := map[string]any{"displayName": "0123456789012345678901234567890123456789"} // ~58 bytes of JSON
	require.Equal(t, 201, doJSON(t, s, "POST", "/v1.0/users/"+alice+"/mailFolders", body).status)
	r := doJSON(t, s, "POST", "/v1.0/users/"+alice+"/mailFolders", body)
	require.Equal(t, 429, r.status)
	ra := retryAfter(t, r.header.Get("Retry-After"))
	assert.True(t, ra >= 9 && ra <= 10, "Retry-After %d", ra)
	assert.Equal(t, 200, do(t, s, "GET", "/v1.0/users/"+alice+"/mailFolders/inbox", nil, "").status, "reads are not uploads")
	st := s.Stats()
	assert.Equal(t, 1, st.ThrottledBy["MailboxUpload"])
	assert.Equal(t, int64(2*len(`{"displayName":"0123456789012345678901234567890123456789"}`)), st.UploadBytes, "throttled uploads are counted in Stats")
}

func TestBatchSubRequestsShareTheMailboxBudget(t *testing.T) {
	s := newTestServer(t, &Options{Budgets: &Budgets{RequestsPer10Min: 3}})
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
