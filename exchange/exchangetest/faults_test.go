package exchangetest

import (
	"bytes"
	"errors"
	"fmt"
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

func TestFailNextUpload(t *testing.T) {
	s := newTestServer(t, nil)
	id := newDraft(t, s, map[string]any{"subject": "large"})
	const size = 5 * 1024 * 1024
	const chunk = 4 * 1024 * 1024
	data := pattern(size)
	r := doJSON(t, s, "POST", "/v1.0/users/"+alice+"/messages/"+id+"/attachments/createUploadSession",
		map[string]any{"AttachmentItem": map[string]any{"attachmentType": "file", "name": "big.bin", "size": size}})
	require.Equal(t, 201, r.status, string(r.raw))
	uploadURL := r.json["uploadUrl"].(string)
	s.FailNextUpload(UploadFault{Status: 503}, UploadFault{}, UploadFault{Stored: true})

	// Other requests are not affected.
	assert.Equal(t, 200, do(t, s, "GET", "/v1.0/users/"+alice+"/messages/"+id, nil, "").status)
	// 503: nothing stored.
	r = putRange(t, s, uploadURL, data, 0, chunk-1, size, false)
	assert.Equal(t, 503, r.status)
	// Dropped before storing.
	put := func() error {
		req, err := http.NewRequest("PUT", uploadURL, bytes.NewReader(data[:chunk]))
		require.NoError(t, err)
		req.Header.Set("Content-Range", fmt.Sprintf("bytes 0-%d/%d", chunk-1, size))
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		res, err := c.Do(req)
		if err == nil {
			res.Body.Close()
		}
		return err
	}
	require.Error(t, put())
	st := doReq(t, s, mustReq(t, "GET", uploadURL))
	assert.Equal(t, []any{"0"}, st.json["nextExpectedRanges"])
	// Dropped after storing: the session moved on.
	require.Error(t, put())
	st = doReq(t, s, mustReq(t, "GET", uploadURL))
	assert.Equal(t, []any{fmt.Sprint(chunk)}, st.json["nextExpectedRanges"])
	// The faults are used up.
	r = putRange(t, s, uploadURL, data, chunk, size-1, size, false)
	require.Equal(t, 201, r.status, string(r.raw))
	m, _ := s.Message(alice, id)
	require.Len(t, m.Attachments, 1)
	assert.True(t, bytes.Equal(data, m.Attachments[0].Content))
}
