package exchangetest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// This file holds the helpers the tests share: a server with a mailbox,
// requests to it, and sample content.

const alice = "alice@contoso.com"

type resp struct {
	status int
	header http.Header
	raw    []byte
	json   map[string]any
}

func (r resp) errCode() string {
	e, _ := r.json["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

type reqOpt func(*http.Request)

func withHeader(k, v string) reqOpt { return func(r *http.Request) { r.Header.Set(k, v) } }

func do(t *testing.T, s *Server, method, path string, body []byte, contentType string, opts ...reqOpt) resp {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, s.URL()+path, rd)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer test-token")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for _, o := range opts {
		o(req)
	}
	return doReq(t, s, req)
}

// doReq sends req as it is and reads the answer.
func doReq(t *testing.T, s *Server, req *http.Request) resp {
	t.Helper()
	res, err := s.Client().Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	r := resp{status: res.StatusCode, header: res.Header, raw: raw}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		require.NoError(t, json.Unmarshal(raw, &r.json), string(raw))
	}
	return r
}

func doJSON(t *testing.T, s *Server, method, path string, v any, opts ...reqOpt) resp {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return do(t, s, method, path, b, "application/json", opts...)
}

func b64(s string) []byte { return []byte(base64.StdEncoding.EncodeToString([]byte(s))) }

func newTestServer(t *testing.T, opts *Options) *Server {
	t.Helper()
	s := NewServer(opts)
	t.Cleanup(s.Close)
	s.AddMailbox(alice)
	return s
}

const sampleMIME = "From: Bob <bob@example.com>\r\n" +
	"To: Alice <alice@contoso.com>\r\n" +
	"Subject: =?utf-8?q?Hello_w=C3=B6rld?=\r\n" +
	"Date: Tue, 02 Jan 2024 03:04:05 +0000\r\n" +
	"Message-ID: <m1@example.com>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"\r\n" +
	"Hi Alice,\r\nsee you.\r\n"

func values(r resp) []map[string]any {
	var out []map[string]any
	for _, v := range r.json["value"].([]any) {
		out = append(out, v.(map[string]any))
	}
	return out
}

const sourceProp = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name mailferrySourceId"

// newDraft creates a JSON message in the inbox and returns its id.
func newDraft(t *testing.T, s *Server, body map[string]any) string {
	t.Helper()
	r := doJSON(t, s, "POST", "/v1.0/users/"+alice+"/mailFolders/inbox/messages", body)
	require.Equal(t, 201, r.status, string(r.raw))
	return r.json["id"].(string)
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// putRange PUTs bytes [start, end] of data (of total bytes) to an
// uploadUrl, without an Authorization header unless auth is set.
func putRange(t *testing.T, s *Server, uploadURL string, data []byte, start, end, total int, auth bool) resp {
	t.Helper()
	req, err := http.NewRequest("PUT", uploadURL, bytes.NewReader(data[start:end+1]))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end, total))
	if auth {
		req.Header.Set("Authorization", "Bearer test-token")
	}
	return doReq(t, s, req)
}

func mustReq(t *testing.T, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	return req
}
