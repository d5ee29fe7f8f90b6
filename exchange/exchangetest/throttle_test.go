package exchangetest

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func retryAfter(t *testing.T, v string) int {
	t.Helper()
	n, err := strconv.Atoi(v)
	require.NoError(t, err, "Retry-After %q", v)
	return n
}

func TestBudgets(t *testing.T) {
	t.Run("requests", func(t *testing.T) {
		s := newTestServer(t, &Options{Budget: &Budget{MaxRequestsPerWindow: 3}, TimeScale: 600}) // 1 s window
		for range 3 {
			assert.Equal(t, 200, do(t, s, "GET", "/v1.0/users/"+alice+"/mailFolders/inbox", nil, "").status)
		}
		r := do(t, s, "GET", "/v1.0/users/"+alice+"/mailFolders/inbox", nil, "")
		assert.Equal(t, 429, r.status)
		assert.Equal(t, "1", r.header.Get("Retry-After"))
		time.Sleep(1100 * time.Millisecond)
		assert.Equal(t, 200, do(t, s, "GET", "/v1.0/users/"+alice+"/mailFolders/inbox", nil, "").status)
	})
	t.Run("concurrency", func(t *testing.T) {
		s := newTestServer(t, &Options{Budget: DefaultBudget(), Latency: 200 * time.Millisecond})
		var wg sync.WaitGroup
		var mu sync.Mutex
		codes := map[int]int{}
		var msgs []string
		for range 6 {
			wg.Go(func() {
				r := do(t, s, "GET", "/v1.0/users/"+alice+"/mailFolders/inbox", nil, "")
				mu.Lock()
				defer mu.Unlock()
				codes[r.status]++
				if r.status == 429 {
					msgs = append(msgs, r.json["error"].(map[string]any)["message"].(string))
				}
			})
		}
		wg.Wait()
		assert.Equal(t, map[int]int{200: 4, 429: 2}, codes)
		assert.Contains(t, msgs, "Application is over its MailboxConcurrency limit.")
	})
	t.Run("upload", func(t *testing.T) {
		s := newTestServer(t, &Options{Budget: &Budget{MaxUploadBytesPerWindow: int64(len(b64(sampleMIME))) + 10}})
		assert.Equal(t, 201, do(t, s, "POST", "/beta/users/"+alice+"/mailFolders/inbox/importMime", b64(sampleMIME), "text/plain").status)
		r := do(t, s, "POST", "/beta/users/"+alice+"/mailFolders/inbox/importMime", b64(sampleMIME), "text/plain")
		assert.Equal(t, 429, r.status)
		assert.Equal(t, 1, s.Stats().Throttled)
	})
}

func TestBudgetRetryAfterFromWindow(t *testing.T) {
	// 10-minute window / 60 = 10 s.
	s := newTestServer(t, &Options{Budget: &Budget{MaxRequestsPerWindow: 2}, TimeScale: 60})
	assert.Equal(t, &Budget{MaxRequestsPerWindow: 2}, s.Budget())
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

	// Without budgets, Budget is nil and the time scale 1.
	plain := newTestServer(t, nil)
	assert.Nil(t, plain.Budget())
	assert.Equal(t, 1.0, plain.TimeScale())
}

func TestBudgetUploadRetryAfter(t *testing.T) {
	// 5-minute window / 30 = 10 s; 100 bytes.
	s := newTestServer(t, &Options{Budget: &Budget{MaxUploadBytesPerWindow: 100}, TimeScale: 30})
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
