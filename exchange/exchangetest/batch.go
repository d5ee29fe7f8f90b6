package exchangetest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
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

// hasBody reports whether the request carries a body ("body": null is
// none).
func (br batchRequest) hasBody() bool {
	return len(br.Body) > 0 && string(br.Body) != "null"
}

// contentType returns the request's Content-Type header, whatever the
// case of its name ("content-type" is common).
func (br batchRequest) contentType() string {
	for k, v := range br.Headers {
		if strings.EqualFold(k, "Content-Type") {
			return v
		}
	}
	return ""
}

// Graph's answers to a batch it refuses as a whole, each with its source.
const (
	// Graph's text for a batch payload it will not read (reported in
	// https://github.com/microsoftgraph/microsoft-graph-docs-contrib/issues/8576
	// and https://github.com/microsoftgraph/msgraph-sdk-javascript/issues/1451,
	// for payloads built by an SDK); the emulator answers it for a body
	// that does not parse as {"requests": [...]}.
	msgBatchPayload = "Invalid batch payload format."
	// "Must be unique in the batch, otherwise, the batch request fails
	// with a 400 error code" (https://learn.microsoft.com/graph/json-batching);
	// the text is reported in
	// https://github.com/microsoftgraph/msgraph-sdk-java/issues/559 and
	// https://github.com/microsoftgraph/microsoft-graph-docs/issues/4449.
	msgBatchDuplicateID = "Request Id %s has to be unique in a batch."
	// "When the body is supplied, a Content-Type header must be included"
	// (https://learn.microsoft.com/graph/json-batching); what Graph answers
	// a write request without either is reported in
	// https://github.com/microsoftgraph/msgraph-sdk-dotnet/issues/2628 and
	// https://github.com/microsoftgraph/msgraph-sdk-dotnet/issues/1038.
	msgBatchWriteNoContent = "Write request id : %s does not contain Content-Type header or body."
	// The beginning is reported in
	// https://github.com/microsoftgraph/msgraph-sdk-dotnet-core/issues/891
	// ("Invalid dependency for request Id..."); the rest, and the status
	// (400, as for any malformed batch: "If the batch request itself is
	// malformed, the status code is 400", json-batching), are the
	// emulator's.
	msgBatchDependency = "Invalid dependency for request Id %s."
	// The emulator's own texts: no report quotes Graph's.
	msgBatchTooMany    = "Too many requests in the batch. The maximum is 20."
	msgBatchNoID       = "A request in the batch has no id."
	msgBatchIncomplete = "Request id : %s must have a method and a url."
	msgBatchBodyNoType = "Request id : %s has a body but no Content-Type header."
)

// isWrite reports whether a batch request's method writes: POST, PUT or
// PATCH. Graph requires a body and a Content-Type on those
// (msgBatchWriteNoContent) and on nothing else: a DELETE without either
// runs (the example of https://learn.microsoft.com/graph/json-batching).
func isWrite(method string) bool {
	switch strings.ToUpper(method) {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		return true
	}
	return false
}

// checkBatch returns the message with which Graph fails the whole batch
// (400 BadRequest, no request run), or "" when it may run:
//
//   - more than 20 requests
//     (https://learn.microsoft.com/graph/json-batching#batch-size-limitations);
//   - an id that another request already has; ids are "not
//     case-sensitive", so "a" and "A" collide (json-batching; reported in
//     https://github.com/microsoftgraph/microsoft-graph-docs/issues/4449),
//     and the message names the later one;
//   - a POST, PUT or PATCH without a body or without a Content-Type
//     header, and (the emulator's own text) any other request with a body
//     but no Content-Type: "When a body is included with the request, the
//     headers object must contain a value for Content-Type" (json-batching);
//   - a dependsOn that names no earlier request of the batch: Graph
//     "expects that the dependency appears earlier in the array of
//     requests" (https://github.com/microsoftgraph/msgraph-sdk-dotnet-core/issues/891);
//     an id that is nowhere in the batch fails alike;
//   - (the emulator's own rules) a request without an id, method or url.
func checkBatch(reqs []batchRequest) string {
	if len(reqs) > maxBatch {
		return msgBatchTooMany
	}
	seen := make(map[string]bool, len(reqs))
	for _, br := range reqs {
		if br.ID == "" {
			return msgBatchNoID
		}
		key := strings.ToLower(br.ID)
		if seen[key] {
			return fmt.Sprintf(msgBatchDuplicateID, br.ID)
		}
		if br.Method == "" || br.URL == "" {
			return fmt.Sprintf(msgBatchIncomplete, br.ID)
		}
		for _, d := range br.DependsOn {
			if !seen[strings.ToLower(d)] {
				return fmt.Sprintf(msgBatchDependency, br.ID)
			}
		}
		switch {
		case isWrite(br.Method) && (!br.hasBody() || br.contentType() == ""):
			return fmt.Sprintf(msgBatchWriteNoContent, br.ID)
		case br.hasBody() && br.contentType() == "":
			return fmt.Sprintf(msgBatchBodyNoType, br.ID)
		}
		seen[key] = true
	}
	return ""
}

// serveBatch answers POST /$batch (https://learn.microsoft.com/graph/json-batching):
// a batch that checkBatch refuses answers 400 BadRequest and runs
// nothing; otherwise each request runs through the same dispatch as a
// wire request, one at a time and in order, so each may be throttled on
// its own (sub-response 429 with its own Retry-After) while the envelope
// is 200. A body whose Content-Type is not JSON travels base64-encoded,
// both ways. A request whose dependsOn failed answers 424 (same page). A
// method other than POST answers 405 (the emulator's own answer).
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
	if err := json.Unmarshal(c.body, &env); err != nil || env.Requests == nil {
		return graphError(c, http.StatusBadRequest, "BadRequest", msgBatchPayload)
	}
	if msg := checkBatch(env.Requests); msg != "" {
		return graphError(c, http.StatusBadRequest, "BadRequest", msg)
	}
	status := map[string]int{} // by lower-case id
	var responses []map[string]any
	for _, br := range env.Requests {
		sub := &call{method: strings.ToUpper(br.Method), version: c.version, header: http.Header{}, requestID: newRequestID(), base: c.base}
		for k, v := range br.Headers {
			sub.header.Set(k, v)
		}
		var rep reply
		failedDep := false
		for _, d := range br.DependsOn {
			if status[strings.ToLower(d)] >= 400 {
				failedDep = true
			}
		}
		switch {
		case failedDep:
			rep = graphError(sub, http.StatusFailedDependency, "BadRequest", "The request depends on a request that failed.")
		default:
			rep = s.batchOne(sub, br)
		}
		status[strings.ToLower(br.ID)] = rep.status
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
// version of the batch ("/users/…", https://learn.microsoft.com/graph/json-batching):
// a version in it is one more segment, which Graph does not resolve
// ("/v1.0/users/…" answers 400 "Resource not found for the segment
// 'v1.0'.", https://github.com/microsoftgraph/msgraph-sdk-javascript/issues/1178),
// and a beta-only action in a batch sent to /v1.0/$batch is unknown as it
// is on the wire. A url that does not parse answers 400 BadRequest (the
// emulator's own answer).
func (s *Server) batchOne(sub *call, br batchRequest) reply {
	u, err := url.Parse(br.URL)
	if err != nil {
		return graphError(sub, http.StatusBadRequest, "BadRequest", "Invalid request URL.")
	}
	path := strings.Trim(u.EscapedPath(), "/")
	for _, p := range strings.Split(path, "/") {
		seg, err := url.PathUnescape(p)
		if err != nil {
			return graphError(sub, http.StatusBadRequest, "BadRequest", "Invalid request URL.")
		}
		sub.segs = append(sub.segs, seg)
	}
	sub.query = u.Query()
	if br.hasBody() {
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
