package exchange

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	abstractions "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"

	"github.com/mailferry/mailferry/migrate"
)

func odataErr(status int, code, msg string) error {
	e := odataerrors.NewODataError()
	me := odataerrors.NewMainError()
	if code != "" {
		me.SetCode(&code)
	}
	if msg != "" {
		me.SetMessage(&msg)
	}
	e.SetErrorEscaped(me)
	e.ResponseStatusCode = status
	return e
}

func TestClassify(t *testing.T) {
	noBody := odataerrors.NewODataError() // no "error" object at all
	noBody.ResponseStatusCode = 502
	cases := []struct {
		name string
		err  error
		kind error // nil: unmarked
	}{
		{"quota", odataErr(403, "ErrorQuotaExceeded", "Mailbox has exceeded maximum mailbox size."), migrate.ErrMailbox},
		{"507", odataErr(507, "QuotaExceededException", ""), migrate.ErrMailbox},
		{"not enabled", odataErr(404, "MailboxNotEnabledForRESTAPI", "The mailbox is either inactive, soft-deleted, or is hosted on-premise."), migrate.ErrMailbox},
		{"resource not found", odataErr(404, "ResourceNotFound", "Resource could not be discovered."), migrate.ErrMailbox},
		{"invalid user", odataErr(404, "ErrorInvalidUser", "The requested user 'x' is invalid."), migrate.ErrMailbox},
		{"401", odataErr(401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid."), migrate.ErrMailbox},
		{"403", odataErr(403, "ErrorAccessDenied", "Access is denied."), migrate.ErrMailbox},
		{"mime", odataErr(400, "ErrorMimeContentInvalid", "The MIME content is invalid."), migrate.ErrItem},
		{"invalid request", odataErr(400, "ErrorInvalidRequest", "Cannot process the request."), migrate.ErrItem},
		{"item not found", odataErr(404, "ErrorItemNotFound", "The specified object was not found in the store."), migrate.ErrItem},
		{"413 typed", odataErr(413, "RequestEntityTooLarge", ""), migrate.ErrItem},
		{"413 raw", &abstractions.ApiError{ResponseStatusCode: 413, Message: "no body"}, migrate.ErrItem},
		{"429", odataErr(429, "ApplicationThrottled", "Application is over its MailboxConcurrency limit."), migrate.ErrTransient},
		{"503", odataErr(503, "ServiceUnavailable", ""), migrate.ErrTransient},
		{"504 raw", &abstractions.ApiError{ResponseStatusCode: 504}, migrate.ErrTransient},
		{"502 no error object", noBody, migrate.ErrTransient},
		{"network", &url.Error{Op: "Post", URL: "https://graph.microsoft.com/v1.0/x", Err: errConnReset}, migrate.ErrTransient},
		{"token", &tokenError{errors.New("get token: boom")}, migrate.ErrMailbox},
		{"cancelled", fmt.Errorf("x: %w", context.Canceled), nil},
	}
	for _, c := range cases {
		err := classify("do things", c.err)
		if !strings.HasPrefix(err.Error(), "exchange: do things: ") {
			t.Errorf("%s: %q lacks the prefix", c.name, err)
		}
		if !errors.Is(err, c.err) {
			t.Errorf("%s: %v does not wrap the original", c.name, err)
		}
		for _, k := range []error{migrate.ErrItem, migrate.ErrMailbox, migrate.ErrTransient} {
			if errors.Is(err, k) != (k == c.kind) {
				t.Errorf("%s: %q: errors.Is(%v) = %v", c.name, err, k, errors.Is(err, k))
			}
		}
	}
	if got := classify("op", odataErr(400, "ErrorMimeContentInvalid", "bad MIME")).Error(); got != "exchange: op: 400 ErrorMimeContentInvalid: bad MIME" {
		t.Errorf("message %q", got)
	}
}

func TestQuotaExceeded(t *testing.T) {
	e := newEnv(t, nil)
	inbox := e.wellKnown(t, "inbox")
	e.srv.SetQuotaExceeded(testUser, true)
	_, err := e.mb.Put(t.Context(), inbox, message("INBOX", 1, sampleMIME("<full@example.org>", "full")))
	if !errors.Is(err, migrate.ErrMailbox) {
		t.Fatalf("Put into a full mailbox: %v, want ErrMailbox", err)
	}
	var ge *GraphError
	if !errors.As(err, &ge) || ge.Code != "ErrorQuotaExceeded" {
		t.Errorf("error %v: want code ErrorQuotaExceeded", err)
	}
}

// TestGraphError checks the reading of Graph's error JSON in answers that
// the SDK does not parse, and the Reason of the EventThrottled made from
// them.
func TestGraphError(t *testing.T) {
	for _, tc := range []struct {
		status            int
		body              string
		code, msg, reason string
		kind              error
	}{
		{429, `{"error":{"code":"ApplicationThrottled","message":"Application is over its MailboxConcurrency limit."}}`,
			"ApplicationThrottled", "Application is over its MailboxConcurrency limit.",
			"429 ApplicationThrottled: Application is over its MailboxConcurrency limit.", migrate.ErrTransient},
		{503, ``, "", "", "503 Service Unavailable", migrate.ErrTransient},
		{504, `<html>Gateway Timeout</html>`, "", "", "504 Gateway Timeout", migrate.ErrTransient},
		{404, `{"error":{"code":"ErrorItemNotFound","message":"The specified object was not found in the store."}}`,
			"ErrorItemNotFound", "The specified object was not found in the store.",
			"404 ErrorItemNotFound: The specified object was not found in the store.", migrate.ErrItem},
	} {
		ge := graphError("op", tc.status, []byte(tc.body))
		if ge.StatusCode != tc.status || ge.Code != tc.code || ge.Message != tc.msg {
			t.Errorf("%d %s: status %d code %q message %q", tc.status, tc.body, ge.StatusCode, ge.Code, ge.Message)
		}
		if got := ge.reason(); got != tc.reason {
			t.Errorf("%d %s: reason %q, want %q", tc.status, tc.body, got, tc.reason)
		}
		if err := mark(ge); !errors.Is(err, tc.kind) {
			t.Errorf("%d %s: %v is not %v", tc.status, tc.body, err, tc.kind)
		}
	}
}
