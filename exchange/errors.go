package exchange

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	abstractions "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"

	"github.com/mailferry/mailferry/migrate"
)

// errorMapping makes the request adapter parse every 4xx and 5xx answer
// to a raw request as Graph's error JSON, {"error":{"code","message"}}
// (https://learn.microsoft.com/graph/errors), as the typed builders do.
var errorMapping = abstractions.ErrorMappings{
	"XXX": odataerrors.CreateODataErrorFromDiscriminatorValue,
}

// GraphError is a failed Graph call: its HTTP status and Graph's error
// code and message. Errors returned by Mailbox methods wrap it when Graph
// answered at all (use errors.As), and are also marked with one of
// migrate.ErrItem, migrate.ErrMailbox or migrate.ErrTransient.
type GraphError struct {
	// Op is what was being done, e.g.
	// "put 1700000000/7/INBOX into folder AAMk...: importMime".
	Op string
	// StatusCode is the HTTP status, e.g. 404.
	StatusCode int
	// Code is Graph's error code, e.g. "ErrorQuotaExceeded"; "" when the
	// answer had no Graph error body.
	Code string
	// Message is Graph's error message, "" when there was none.
	Message string

	err error // the SDK's error: *odataerrors.ODataError or *abstractions.ApiError
}

// Error returns "exchange: <op>: <status> <code>: <message>".
func (e *GraphError) Error() string {
	var b strings.Builder
	b.WriteString("exchange: ")
	b.WriteString(e.Op)
	fmt.Fprintf(&b, ": %d", e.StatusCode)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

// Unwrap returns the SDK's own error value.
func (e *GraphError) Unwrap() error { return e.err }

// graphError returns the GraphError of an answer that the request adapter
// did not parse (a $batch sub-response, an upload session's answer, a
// throttling answer seen by retryTransport): its status and its body,
// Graph's error JSON, {"error":{"code":"...","message":"..."}}
// (https://learn.microsoft.com/graph/errors). This is the one place where
// this package reads that JSON itself; a body that is not such JSON (or a
// truncated one) leaves Code and Message empty.
func graphError(op string, status int, body []byte) *GraphError {
	var ge struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	_ = json.Unmarshal(body, &ge)
	return &GraphError{Op: op, StatusCode: status, Code: ge.Error.Code, Message: redactText(ge.Error.Message),
		err: errors.New(http.StatusText(status))}
}

// reason is the Reason of an EventThrottled for e: "<status> <code>" or,
// without a code, "<status> <status text>", then ": <message>" if any.
func (e *GraphError) reason() string {
	s := strconv.Itoa(e.StatusCode) + " " + e.Code
	if e.Code == "" {
		s = strconv.Itoa(e.StatusCode) + " " + http.StatusText(e.StatusCode)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Codes that mean the whole mailbox cannot go on. Sources: Graph's error
// reference (https://learn.microsoft.com/graph/errors) and reports from
// the field: microsoftgraph/microsoft-graph-docs issues #2927 (quota) and
// #10481 (MailboxNotEnabledForRESTAPI), microsoft-graph-docs-contrib #6177.
var mailboxCodes = map[string]bool{
	"ErrorQuotaExceeded":          true, // "Mailbox has exceeded maximum mailbox size."
	"QuotaExceededException":      true, // 507
	"MailboxNotEnabledForRESTAPI": true, // no (licensed) Exchange Online mailbox
	"ErrorInvalidUser":            true, // the user does not exist
}

// classify turns an error from a Graph call into this package's error: it
// is prefixed "exchange: <op>", wraps the original with %w (through
// *GraphError when Graph answered) and is marked with the kind the
// migrate.Engine acts on:
//
//   - migrate.ErrMailbox: the mailbox is full (ErrorQuotaExceeded, 507
//     QuotaExceededException), missing or unlicensed (404
//     MailboxNotEnabledForRESTAPI, ResourceNotFound or ErrorInvalidUser on
//     the user), or access is refused (401 even after a token renewal,
//     403); also a failure to get a token, and a Graph that cannot be
//     reached at all (TLS, DNS).
//   - migrate.ErrItem: Graph refused this request (400
//     ErrorMimeContentInvalid, ErrorInvalidRequest, any other 4xx, 413
//     Request Entity Too Large), with Graph's reason in the message.
//   - migrate.ErrTransient: 429, 503, 504 or another 5xx that remained
//     after the retries (https://learn.microsoft.com/graph/throttling),
//     and dropped or timed-out connections.
//
// A cancelled context is returned wrapped but unmarked, so the Engine sees
// it as cancellation.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("exchange: %s: %w", op, redactErr(err))
	}
	var ge *GraphError
	if errors.As(err, &ge) {
		return err // already classified
	}
	status, code, msg, ok := graphFailure(err)
	if !ok {
		err = redactErr(err) // net/http's errors name the URL
		var tokErr *tokenError
		if errors.As(err, &tokErr) {
			return migrate.MailboxError(fmt.Errorf("exchange: %s: %w", op, err))
		}
		e := fmt.Errorf("exchange: %s: %w", op, err)
		if isTransientNetError(err) {
			return migrate.TransientError(e)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			// Graph cannot be reached at all (a TLS or DNS failure, a
			// bad proxy): no item of this mailbox can be copied.
			return migrate.MailboxError(e)
		}
		return e
	}
	ge = &GraphError{Op: op, StatusCode: status, Code: code, Message: redactText(msg), err: err}
	return mark(ge)
}

// mark marks a GraphError with its kind.
func mark(ge *GraphError) error {
	status, code := ge.StatusCode, ge.Code
	switch {
	case mailboxCodes[code], status == http.StatusInsufficientStorage:
		return migrate.MailboxError(ge)
	case status == http.StatusNotFound && code == "ResourceNotFound":
		// ResourceNotFound ("Resource could not be discovered.") names a
		// user without a mailbox; a missing item or folder is
		// ErrorItemNotFound, an item error.
		return migrate.MailboxError(ge)
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		return migrate.MailboxError(ge)
	case status == http.StatusTooManyRequests, status >= 500:
		return migrate.TransientError(ge)
	case status >= 400:
		return migrate.ItemError(ge)
	}
	return ge
}

// codeMessageTooLarge is Graph's answer to a message over the mailbox's
// size limit (reported for POST .../attachments,
// https://github.com/motze92/office365-mail/issues/39, and upload
// sessions, https://github.com/microsoftgraph/microsoft-graph-docs/issues/15579).
const codeMessageTooLarge = "ErrorMessageSizeExceeded"

// refusedAsIs reports whether err refuses a message as it was sent, so
// that Put may try another form of it (see rebuildOrDegrade): a
// *rebuildError (this package cannot make the JSON create), or an item
// error that Graph answered 400 or 413, such as importMime's
// ErrorMimeContentInvalid or ErrorMimeContentInvalidBase64String, a
// header or property the JSON create will not take, or a request over
// 4 MB. Not ErrorMessageSizeExceeded: every form of the message is as
// large. Graph documents no list of the MIME it refuses
// (https://learn.microsoft.com/graph/api/mailfolder-importmime?view=graph-rest-beta
// names none), so any other 400 counts.
func refusedAsIs(err error) bool {
	var re *rebuildError
	if errors.As(err, &re) {
		return true
	}
	var ge *GraphError
	if !errors.Is(err, migrate.ErrItem) || errors.Is(err, migrate.ErrMailbox) || !errors.As(err, &ge) {
		return false
	}
	if ge.Code == codeMessageTooLarge {
		return false
	}
	return ge.StatusCode == http.StatusBadRequest || ge.StatusCode == http.StatusRequestEntityTooLarge
}

// forbidden reports whether err is Graph's 403 (Forbidden).
func forbidden(err error) bool {
	var ge *GraphError
	return errors.As(err, &ge) && ge.StatusCode == http.StatusForbidden
}

// graphFailure extracts the status, Graph error code and message from an
// error returned by the request adapter: an *odataerrors.ODataError when
// the answer had a Graph error body, or an *abstractions.ApiError (or
// another ApiErrorable) when it had none.
func graphFailure(err error) (status int, code, msg string, ok bool) {
	var oe *odataerrors.ODataError
	if errors.As(err, &oe) {
		status = oe.ResponseStatusCode
		// ODataError.Error dereferences the message without a nil check,
		// so read the fields one by one.
		if me := oe.GetErrorEscaped(); me != nil {
			if c := me.GetCode(); c != nil {
				code = *c
			}
			if m := me.GetMessage(); m != nil {
				msg = *m
			}
		}
		return status, code, msg, true
	}
	var ae abstractions.ApiErrorable
	if errors.As(err, &ae) && ae.GetStatusCode() != 0 {
		if a, isAPI := ae.(*abstractions.ApiError); isAPI {
			msg = a.Message
		}
		return ae.GetStatusCode(), "", msg, true
	}
	return 0, "", "", false
}

// tokenError is a failure to get an access token.
type tokenError struct{ err error }

func (e *tokenError) Error() string { return e.err.Error() }
func (e *tokenError) Unwrap() error { return e.err }

// urlQuery matches the query string (and fragment) of a URL in a text:
// what follows "?" or "#" up to a space or a double quote (which ends a
// URL quoted by *url.Error; Graph's paths hold single quotes).
var urlQuery = regexp.MustCompile(`(?i)(\b[a-z][a-z0-9+.-]*://[^\s"?#]*)[?#][^\s"]*`)

// redactedQuery replaces a URL's query string in errors and logs.
const redactedQuery = "?(redacted)"

// redactText returns s with the query string of every URL in it replaced
// by "?(redacted)". A URL's query may carry credentials: an upload
// session's uploadUrl is pre-authenticated by its authtoken parameter
// (https://learn.microsoft.com/graph/api/attachment-createuploadsession),
// and a Graph URL's $filter holds what the mailbox is searched for. The
// scheme, host and path stay, to say where a request went.
func redactText(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	return urlQuery.ReplaceAllString(s, "${1}"+redactedQuery)
}

// redactErr returns err unchanged if its text shows no URL query string,
// and otherwise an error that reads as err with every URL query
// replaced by "?(redacted)" and unwraps to err, so that errors.Is and
// errors.As classify it as before. It is the one place that keeps URLs
// with their credentials out of errors, logs and reports: the
// *url.Error of net/http's Client.Do prints its request's full URL, and
// so may a custom Options.Transport's error. retryTransport applies it to
// every transport error, classify to every error of a Graph call that
// Graph did not answer (Graph's own answers go through redactText).
func redactErr(err error) error {
	if err == nil {
		return nil
	}
	msg, ok := errorText(err)
	if !ok {
		return err
	}
	red := redactText(msg)
	if red == msg {
		return err
	}
	return &redactedError{msg: red, err: err}
}

// errorText returns err.Error(), or false if that panics (as
// *odataerrors.ODataError's does when Graph's answer had no message).
func errorText(err error) (msg string, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return err.Error(), true
}

// redactedError is an error whose text is redacted (redactErr).
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
