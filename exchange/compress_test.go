package exchange

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"
)

// recordingPipeline answers each request with the next status and keeps
// what it was sent.
type recordingPipeline struct {
	statuses []int
	sent     []sentRequest
}

type sentRequest struct {
	encoding string
	body     []byte
	upload   int64 // what the pacer counts as upload (uploadSize)
}

func (p *recordingPipeline) Next(req *http.Request, _ int) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
	}
	p.sent = append(p.sent, sentRequest{encoding: req.Header.Get("Content-Encoding"), body: body, upload: uploadSize(req, len(body))})
	status := p.statuses[0]
	p.statuses = p.statuses[1:]
	return &http.Response{StatusCode: status, Body: io.NopCloser(strings.NewReader(""))}, nil
}

func TestCompressionHandler(t *testing.T) {
	payload := bytes.Repeat([]byte("base64 of a MIME message "), 1000)
	newReq := func(header ...string) *http.Request {
		req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1/x", bytes.NewReader(payload))
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		return req
	}
	unzip := func(b []byte) []byte {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(zr)
		return out
	}

	// Compressed, and the same writer reused for the next request.
	for range 2 {
		p := &recordingPipeline{statuses: []int{201}}
		resp, err := compressionHandler{}.Intercept(p, 0, newReq())
		if err != nil || resp.StatusCode != 201 || len(p.sent) != 1 {
			t.Fatalf("%v %v %d", resp, err, len(p.sent))
		}
		if s := p.sent[0]; s.encoding != "gzip" || len(s.body) >= len(payload) || !bytes.Equal(unzip(s.body), payload) {
			t.Errorf("sent %q, %d bytes", s.encoding, len(s.body))
		}
	}

	// 415: sent again, plain.
	p := &recordingPipeline{statuses: []int{415, 201}}
	resp, err := compressionHandler{}.Intercept(p, 0, newReq())
	if err != nil || resp.StatusCode != 201 || len(p.sent) != 2 || p.sent[1].encoding != "" || !bytes.Equal(p.sent[1].body, payload) {
		t.Errorf("after 415: %v %v %+v", resp, err, p.sent)
	}

	// Upload session chunks and encoded bodies are left alone.
	for _, h := range [][]string{{"Content-Range", "bytes 0-9/100"}, {"Content-Encoding", "br"}} {
		p := &recordingPipeline{statuses: []int{200}}
		compressionHandler{}.Intercept(p, 0, newReq(h...))
		if !bytes.Equal(p.sent[0].body, payload) || p.sent[0].encoding == "gzip" {
			t.Errorf("with %s: body changed", h[0])
		}
	}
}

// TestUploadSizeBeforeCompression checks that the pacer counts a request
// body's bytes before compression, as Exchange Online does, from the
// length compressionHandler passes on.
func TestUploadSizeBeforeCompression(t *testing.T) {
	payload := bytes.Repeat([]byte("base64 of a MIME message "), 1000)
	p := &recordingPipeline{statuses: []int{415, 201}}
	req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1/x", bytes.NewReader(payload))
	if _, err := (compressionHandler{}).Intercept(p, 0, req); err != nil {
		t.Fatal(err)
	}
	if len(p.sent) != 2 || p.sent[0].encoding != "gzip" || len(p.sent[0].body) >= len(payload) {
		t.Fatalf("sent %+v, want a gzipped body then, after the 415, a plain one", p.sent)
	}
	for i, s := range p.sent {
		if s.upload != int64(len(payload)) {
			t.Errorf("request %d (%q): upload %d, want the uncompressed %d", i, s.encoding, s.upload, len(payload))
		}
	}
	get, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/x", nil)
	if n := uploadSize(get, 0); n != 0 {
		t.Errorf("a GET counts %d bytes of upload", n)
	}
}
