package exchangetest

import (
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFailNext(t *testing.T) {
	s := newTestServer(t, nil)
	s.FailNext(2, 429, 1500*time.Millisecond)
	s.FailNext(1, 503, 0)
	for range 2 {
		r := do(t, s, "GET", "/v1.0/users/"+alice+"/mailFolders/inbox", nil, "")
		assert.Equal(t, 429, r.status)
		assert.Equal(t, "2", r.header.Get("Retry-After"))
		assert.Equal(t, "ApplicationThrottled", r.errCode())
	}
	r := do(t, s, "GET", "/v1.0/users/"+alice+"/mailFolders/inbox", nil, "")
	assert.Equal(t, 503, r.status)
	assert.Empty(t, r.header.Get("Retry-After"))
	r = do(t, s, "GET", "/v1.0/users/"+alice+"/mailFolders/inbox", nil, "")
	assert.Equal(t, 200, r.status)
	st := s.Stats()
	assert.Equal(t, 4, st.Requests)
	assert.Equal(t, 2, st.Throttled)
	assert.Equal(t, map[string]int{"Injected": 2}, st.ThrottledBy)
}

func TestResetNext(t *testing.T) {
	s := newTestServer(t, nil)
	s.ResetNext(1)
	req, _ := http.NewRequest("GET", s.URL()+"/v1.0/users/"+alice+"/mailFolders/inbox", nil)
	req.Header.Set("Authorization", "Bearer x")
	// A GET would be retried by net/http on a reused connection; use a fresh one.
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	_, err := c.Do(req)
	require.Error(t, err)
	var ue *url.Error
	assert.True(t, errors.As(err, &ue))
	r := do(t, s, "GET", "/v1.0/users/"+alice+"/mailFolders/inbox", nil, "")
	assert.Equal(t, 200, r.status)
}

func TestQuotaExceeded(t *testing.T) {
	s := newTestServer(t, nil)
	s.SetQuotaExceeded(alice, true)
	r := do(t, s, "POST", "/beta/users/"+alice+"/mailFolders/inbox/importMime", b64(sampleMIME), "text/plain")
	assert.Equal(t, 403, r.status)
	assert.Equal(t, "ErrorQuotaExceeded", r.errCode())
	r = do(t, s, "GET", "/v1.0/users/"+alice+"/mailFolders/inbox", nil, "")
	assert.Equal(t, 200, r.status, "reads still work")
	s.SetQuotaExceeded(alice, false)
	r = do(t, s, "POST", "/beta/users/"+alice+"/mailFolders/inbox/importMime", b64(sampleMIME), "text/plain")
	assert.Equal(t, 201, r.status)
}
