package exchangetest

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// reply is a complete HTTP answer, built before anything is written so
// that $batch can embed it.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// ref returns a pointer to a copy of r, for the checks that answer a
// *reply (nil when they have no objection).
func (r reply) ref() *reply { return &r }

func jsonReply(status int, v any) reply {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep "&" in @odata.nextLink readable
	if err := enc.Encode(v); err != nil {
		panic(err) // only our own maps and slices are marshalled
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	h := http.Header{}
	h.Set("Content-Type", "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8")
	return reply{status: status, header: h, body: b}
}

// rawReply answers 200 with body, as it is, of the given Content-Type.
func rawReply(contentType string, body []byte) reply {
	h := http.Header{}
	h.Set("Content-Type", contentType)
	return reply{status: http.StatusOK, header: h, body: body}
}

// noContent answers 204 No Content.
func noContent() reply { return reply{status: http.StatusNoContent, header: http.Header{}} }
