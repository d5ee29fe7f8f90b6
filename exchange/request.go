package exchange

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	abstractions "github.com/microsoft/kiota-abstractions-go"
)

// URL templates of the raw requests (send), under the service root
// {+graphroot}: the Options.BaseURL, not the adapter's "baseurl", which
// it sets to its v1.0 URL.
const (
	// messagePath is one message of the mailbox: PATCH updates it
	// (https://learn.microsoft.com/graph/api/message-update).
	messagePath = "{+graphroot}/v1.0/users/{user}/messages/{id}"
	// folderMessagesPath is the messages of one folder: POST creates one,
	// from JSON or, as a draft, from MIME
	// (https://learn.microsoft.com/graph/api/user-post-messages).
	folderMessagesPath = "{+graphroot}/v1.0/users/{user}/mailFolders/{folder}/messages"
)

// textBody is a request body that send passes as text/plain, as it is,
// rather than as JSON.
type textBody []byte

// send sends one request through the Client's request adapter, so that it
// shares the authentication, middleware, pacing and retries of every other
// call. template is a URL template under {+graphroot} in which {user} is
// the Mailbox's user and params fill the other parameters. in is the body:
// nil for none, a textBody as text/plain, anything else as JSON. The JSON
// answer is decoded into out (nil: ignored), or the error is a
// *badAnswerError. Other errors are the SDK's, unclassified.
func (mb *Mailbox) send(ctx context.Context, method, template string, params map[string]string, in, out any) error {
	ri := abstractions.NewRequestInformation()
	switch method {
	case http.MethodGet:
		ri.Method = abstractions.GET
	case http.MethodPost:
		ri.Method = abstractions.POST
	case http.MethodPatch:
		ri.Method = abstractions.PATCH
	case http.MethodDelete:
		ri.Method = abstractions.DELETE
	default:
		return fmt.Errorf("send: method %s", method)
	}
	ri.UrlTemplate = template
	ri.PathParameters["graphroot"] = mb.c.baseURL
	ri.PathParameters["user"] = mb.user
	for k, v := range params {
		ri.PathParameters[k] = v
	}
	ri.Headers.TryAdd("Accept", "application/json")
	switch body := in.(type) {
	case nil:
	case textBody:
		ri.SetStreamContentAndContentType(body, "text/plain")
	default:
		payload, err := json.Marshal(in)
		if err != nil {
			return err
		}
		ri.SetStreamContentAndContentType(payload, "application/json")
	}
	res, err := mb.c.adapter.SendPrimitive(ctx, ri, "[]byte", errorMapping)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	raw, _ := res.([]byte)
	if len(raw) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return &badAnswerError{err}
	}
	return nil
}

// badAnswerError is an answer that send could not decode.
type badAnswerError struct{ err error }

func (e *badAnswerError) Error() string { return "bad answer: " + e.err.Error() }
func (e *badAnswerError) Unwrap() error { return e.err }

// patchMessage sends PATCH /users/{id}/messages/{id} with fields as its
// JSON body. The error is the SDK's, unclassified.
func (mb *Mailbox) patchMessage(ctx context.Context, id string, fields map[string]any) error {
	return mb.send(ctx, http.MethodPatch, messagePath, map[string]string{"id": id}, fields, nil)
}

// scope is what retryTransport needs to know about a request beyond the
// HTTP request itself; Mailbox methods put it in the request's context.
type scope struct {
	mb *Mailbox
	// weight is the number of Graph requests the HTTP request stands for:
	// the number of sub-requests of a $batch, 1 otherwise.
	weight int
	// guard, if set, is asked before a creating POST whose answer was lost
	// is sent again; it returns the id of the item that the lost attempt
	// created, or "".
	guard func(ctx context.Context) (string, error)
}

type scopeKey struct{}

func scopeOf(ctx context.Context) *scope {
	sc, _ := ctx.Value(scopeKey{}).(*scope)
	return sc
}

// scoped returns ctx marked as carrying requests of mb.
func (mb *Mailbox) scoped(ctx context.Context) context.Context {
	if sc := scopeOf(ctx); sc != nil && sc.mb == mb && sc.weight == 1 && sc.guard == nil {
		return ctx
	}
	return context.WithValue(ctx, scopeKey{}, &scope{mb: mb, weight: 1})
}

// withWeight returns ctx for a request of mb that stands for n requests.
func (mb *Mailbox) withWeight(ctx context.Context, n int) context.Context {
	return context.WithValue(ctx, scopeKey{}, &scope{mb: mb, weight: n})
}

// withGuard returns ctx for a creating request of mb guarded by guard.
func (mb *Mailbox) withGuard(ctx context.Context, guard func(context.Context) (string, error)) context.Context {
	return context.WithValue(ctx, scopeKey{}, &scope{mb: mb, weight: 1, guard: guard})
}

func withoutGuard(ctx context.Context) context.Context {
	sc := scopeOf(ctx)
	if sc == nil || sc.guard == nil {
		return ctx
	}
	return sc.mb.scoped(ctx)
}
