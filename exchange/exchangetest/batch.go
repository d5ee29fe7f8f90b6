package exchangetest

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// maxBatch is JSON batching's limit
// (https://learn.microsoft.com/graph/json-batching#batch-size-limitations).
const maxBatch = 20

type batchRequest struct {
	ID        string            `json:"id"`
	Method    string            `json:"method"`
	URL       string            `json:"url"`
	Headers   map[string]string `json:"headers"`
	Body      json.RawMessage   `json:"body"`
	DependsOn []string          `json:"dependsOn"`
}

// serveBatch answers POST /$batch (https://learn.microsoft.com/graph/json-batching):
// at most 20 requests (else 400); each runs through the same dispatch as
// a wire request, one at a time, so each may be throttled on its own
// (sub-response 429 with its own Retry-After) while the envelope is 200.
// A body whose Content-Type is not JSON travels base64-encoded, both ways.
// A request whose dependsOn failed answers 424 (same page). A method other
// than POST answers 405 and a body that is not a batch 400 BadRequest
// (the emulator's own answers).
func (s *Server) serveBatch(c *call) reply {
	if c.method != http.MethodPost {
		return graphError(c, http.StatusMethodNotAllowed, "BadRequest", "Use POST for $batch.")
	}
	s.mu.Lock()
	s.countRequest("POST /$batch")
	// The envelope's body is not counted in Stats.UploadBytes nor against
	// a mailbox's upload budget: its sub-requests are, one by one.
	if f, ok := s.nextFault(); ok {
		s.mu.Unlock()
		return faultReply(c, f)
	}
	s.mu.Unlock()

	var env struct {
		Requests []batchRequest `json:"requests"`
	}
	if err := json.Unmarshal(c.body, &env); err != nil {
		return graphError(c, http.StatusBadRequest, "BadRequest", "Invalid batch payload: "+err.Error())
	}
	if len(env.Requests) > maxBatch {
		return graphError(c, http.StatusBadRequest, "BadRequest", "Too many requests in the batch. The maximum is 20.")
	}
	status := map[string]int{}
	var responses []map[string]any
	for _, br := range env.Requests {
		sub := &call{method: strings.ToUpper(br.Method), version: c.version, header: http.Header{}, requestID: newRequestID(), base: c.base}
		for k, v := range br.Headers {
			sub.header.Set(k, v)
		}
		var rep reply
		failedDep := false
		for _, d := range br.DependsOn {
			if st, ok := status[d]; !ok || st >= 400 {
				failedDep = true
			}
		}
		switch {
		case failedDep:
			rep = graphError(sub, http.StatusFailedDependency, "BadRequest", "The request depends on a request that failed.")
		default:
			rep = s.batchOne(sub, br)
		}
		status[br.ID] = rep.status
		resp := map[string]any{"id": br.ID, "status": rep.status}
		hdr := map[string]string{}
		for k := range rep.header {
			hdr[k] = rep.header.Get(k)
		}
		resp["headers"] = hdr
		if len(rep.body) > 0 {
			if isJSON(rep.header) {
				resp["body"] = json.RawMessage(rep.body)
			} else {
				resp["body"] = base64.StdEncoding.EncodeToString(rep.body)
			}
		}
		responses = append(responses, resp)
	}
	if responses == nil {
		responses = []map[string]any{}
	}
	return jsonReply(http.StatusOK, map[string]any{"responses": responses})
}

// batchOne serves one request of a $batch. Its url is relative to the
// version; one that does not parse answers 400 BadRequest (the emulator's
// own answer).
func (s *Server) batchOne(sub *call, br batchRequest) reply {
	u, err := url.Parse(br.URL)
	if err != nil {
		return graphError(sub, http.StatusBadRequest, "BadRequest", "Invalid request URL.")
	}
	path := strings.Trim(u.EscapedPath(), "/")
	// URLs are relative to the version ("/users/…"); tolerate a version prefix.
	if p, ok := strings.CutPrefix(path, sub.version+"/"); ok {
		path = p
	}
	for _, p := range strings.Split(path, "/") {
		seg, err := url.PathUnescape(p)
		if err != nil {
			return graphError(sub, http.StatusBadRequest, "BadRequest", "Invalid request URL.")
		}
		sub.segs = append(sub.segs, seg)
	}
	sub.query = u.Query()
	if len(br.Body) > 0 && string(br.Body) != "null" {
		if isJSON(sub.header) {
			sub.body = br.Body
		} else {
			var b64 string
			if err := json.Unmarshal(br.Body, &b64); err != nil {
				sub.body = br.Body
			} else if raw, err := base64.StdEncoding.DecodeString(b64); err == nil {
				sub.body = raw
			} else {
				sub.body = []byte(b64)
			}
		}
	}
	return s.dispatch(sub)
}
