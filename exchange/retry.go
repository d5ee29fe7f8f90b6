package exchange

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mailferry/mailferry/internal/backoff"
	"github.com/mailferry/mailferry/migrate"
)

// retryTransport is the one place where Graph requests are retried. It is
// the parent transport of the kiota middleware pipeline, so it sits at the
// bottom of the chain, right above the network, and sees every request the
// msgraph request adapter sends: typed request builders and raw
// RequestInformation alike.
//
// Why here and not elsewhere:
//
//   - kiota's RetryHandler is left out of the pipeline (see pipeline), so
//     nothing above retries too: one request is tried at most
//     1+maxRetries times, never (1+a)*(1+b).
//   - A RoundTripper needs no change at each call site, and it sees the
//     raw response with its Retry-After header before the SDK turns it into
//     an error.
//   - Request bodies are small (Graph refuses more than 4 MB), so the body
//     is buffered once, after compression, and replayed on every attempt.
//
// It retries what shouldRetry says is transient (429, 503, 504, dropped
// connections), waiting Retry-After when the server gives one and an
// exponential backoff with jitter otherwise, at most maxRetries times, and
// stops as soon as the request's context ends. When the retries run out it
// returns the last response (or error); the caller's error classification
// then marks it migrate.ErrTransient.
//
// It also answers a 401 once per request: it drops the cached token, gets
// a new one and retries, so that a token revoked or expired early costs one
// request, not the mailbox. A 401 carrying a Continuous Access Evaluation
// claims challenge is left to the request adapter, which asks the
// credential for a token with those claims.
//
// Every attempt of a request made for a Mailbox (its context carries a
// scope) first waits for the mailbox's pacer: a concurrency slot, its
// request and upload tokens, and the end of any pause. A 429, 503 or 504
// with Retry-After pauses the whole mailbox until then, and each such
// answer is reported as a migrate.EventThrottled through the request's
// context (migrate.Notify).
//
// Retrying a POST after a dropped connection or a 504 may create an item
// twice if the first attempt reached Exchange; Graph has no idempotency key
// for importMime or the JSON create. So a creating request carries a guard
// (scope.guard) that is asked before such a retry whether the item exists
// (Put looks it up by its watermark or, for importMime, by Message-ID
// among unstamped items created since it began); if it does, the retry is
// not sent and the request ends with an alreadyCreatedError naming it.
// Without a guard (an attachment POST, a message without Message-ID) the
// risk of a duplicate is accepted: losing the message is worse.
type retryTransport struct {
	base       http.RoundTripper
	tokens     *tokenSource
	maxRetries int
	logger     *slog.Logger
	// backoff is the wait before a retry when the server gave no
	// Retry-After (which is capped at maxRetryAfter instead).
	backoff backoff.Policy
	// sleep waits d or until ctx ends; nil means backoff.Sleep. Tests
	// replace it.
	sleep func(ctx context.Context, d time.Duration) error
}

// RoundTrip implements http.RoundTripper.
func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	auth := req.Header.Get("Authorization")
	renewed := false
	sc := scopeOf(ctx)
	upload := uploadSize(req, len(body))
	var waited time.Time // the end of a pause this request has waited out
	for attempt := 0; ; {
		r := req.Clone(ctx)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		if body != nil {
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
			r.ContentLength = int64(len(body))
		}
		release := func() {}
		if sc != nil {
			rel, perr := sc.mb.pacer.acquire(ctx, sc.weight, upload, waited)
			if perr != nil {
				return nil, perr
			}
			release = rel
		}
		resp, err := t.base.RoundTrip(r)
		// An error may name the URL, and an upload session's URL carries
		// its credentials: none reaches a log or the caller.
		err = redactErr(err)
		// Graph has finished with the request once it answers, so its
		// concurrency slot is free again.
		release()

		if err == nil && resp.StatusCode == http.StatusUnauthorized && !renewed &&
			auth != "" && t.tokens != nil && !isClaimsChallenge(resp) {
			renewed = true
			tok, terr := t.tokens.renew(ctx, strings.TrimPrefix(auth, "Bearer "))
			if terr != nil {
				t.logger.LogAttrs(ctx, slog.LevelWarn, "exchange: token renewal after 401 failed",
					slog.String("method", req.Method), slog.String("path", req.URL.Path), slog.Any("error", terr))
				return resp, nil
			}
			drain(resp)
			auth = "Bearer " + tok
			t.logger.LogAttrs(ctx, slog.LevelInfo, "exchange: renewed token after 401",
				slog.String("method", req.Method), slog.String("path", req.URL.Path))
			continue
		}

		retry, wait := shouldRetry(resp, err)
		if retry && wait <= 0 {
			wait = t.backoff.Wait(attempt)
		}
		if sc != nil && resp != nil && isThrottle(resp.StatusCode) {
			sc.mb.throttled(ctx, throttleReason(resp), wait)
		}
		if !retry || ctx.Err() != nil {
			return resp, err
		}
		if sc != nil && sc.guard != nil && mayHaveArrived(req.Method, resp, err) {
			// The request may have created its item before the answer
			// was lost: ask before creating it a second time.
			id, gerr := sc.guard(withoutGuard(ctx))
			if gerr == nil && id != "" {
				if resp != nil {
					drain(resp)
				}
				t.logger.LogAttrs(ctx, slog.LevelInfo, "exchange: the lost request had created its item; not sending it again",
					slog.String("method", req.Method), slog.String("path", req.URL.Path), slog.String("item", id))
				return nil, &alreadyCreatedError{id: id}
			}
		}
		if attempt >= t.maxRetries {
			t.logger.LogAttrs(ctx, slog.LevelWarn, "exchange: giving up after retries",
				slog.String("method", req.Method), slog.String("path", req.URL.Path),
				slog.Int("retries", attempt), slog.Int("status", statusOf(resp)), errAttr(err))
			return resp, err
		}
		t.logger.LogAttrs(ctx, slog.LevelInfo, "exchange: retrying Graph request",
			slog.String("method", req.Method), slog.String("path", req.URL.Path),
			slog.Int("attempt", attempt+1), slog.Int("status", statusOf(resp)),
			slog.Duration("wait", wait), errAttr(err))
		if resp != nil {
			drain(resp)
		}
		if sc != nil && resp != nil && resp.Header.Get("Retry-After") != "" {
			// Exchange throttles per app per mailbox: every request of
			// this mailbox waits, not only this one.
			waited = time.Now().Add(wait)
			sc.mb.pacer.pause(waited)
		}
		if serr := t.wait(ctx, wait); serr != nil {
			return nil, serr
		}
		attempt++
	}
}

// shouldRetry classifies the outcome of one HTTP attempt: whether it is
// worth another try, and how long the server asked to wait (its
// Retry-After, in seconds or as an HTTP date), or 0 when it did not say,
// in which case the caller backs off exponentially.
//
// Transient are: 429 Too Many Requests, 503 Service Unavailable and
// 504 Gateway Timeout, which Graph documents as throttling or temporary
// (https://learn.microsoft.com/graph/throttling,
// https://learn.microsoft.com/graph/errors#http-status-codes), and
// connections that drop or time out before a response arrives. A context
// that ended is not retried.
func shouldRetry(resp *http.Response, err error) (retry bool, wait time.Duration) {
	if err != nil {
		return isTransientNetError(err), 0
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true, retryAfter(resp.Header.Get("Retry-After"))
	}
	return false, 0
}

// isTransientNetError reports whether err is a network failure that a new
// attempt may not meet: a reset, refused or aborted connection, a
// connection closed before the response (EOF), or a timeout.
func isTransientNetError(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNABORTED) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, net.ErrClosed) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// maxRetryAfter caps the wait a Retry-After may ask for. Graph's
// throttling windows are at most 10 minutes long (10,000 requests per 10
// minutes per app and mailbox,
// https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits),
// so a longer wait never lets more through; and since a Retry-After
// pauses the whole mailbox, a broken or hostile answer ("Retry-After:
// 99999999999999999999") must not hold it for days. After the cap the
// request is tried again, and a server still throttling says so again.
const maxRetryAfter = 10 * time.Minute

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date
// (RFC 9110 section 10.2.3). It returns 0 when absent or malformed, and at
// most maxRetryAfter, however large the value (no overflow).
func retryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if isDigits(v) { // delay-seconds = 1*DIGIT
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil || s > uint64(maxRetryAfter/time.Second) {
			return maxRetryAfter // out of range: as large as can be
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		// time.Until saturates rather than overflows for dates far off.
		if d := time.Until(t); d > 0 {
			return min(d, maxRetryAfter)
		}
	}
	return 0
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func (t *retryTransport) wait(ctx context.Context, d time.Duration) error {
	if t.sleep != nil {
		return t.sleep(ctx, d)
	}
	return backoff.Sleep(ctx, d)
}

// throttled reports a throttling answer to one of mb's requests, made
// with ctx, as a migrate.EventThrottled (through migrate.Notify, to the
// observer of the call that made the request) and to the log; wait is the
// pause that follows.
func (mb *Mailbox) throttled(ctx context.Context, reason string, wait time.Duration) {
	mb.c.logger.LogAttrs(ctx, slog.LevelInfo, "exchange: throttled",
		slog.String("user", mb.user), slog.String("reason", reason), slog.Duration("wait", wait))
	migrate.Notify(ctx, migrate.Event{Kind: migrate.EventThrottled, Reason: reason, Wait: wait})
}

// throttleReason is the Reason of an EventThrottled for resp, from its
// status and the start of its body (Graph's error JSON), which it leaves
// readable.
func throttleReason(resp *http.Response) string {
	if resp.Body == nil {
		return graphError("", resp.StatusCode, nil).reason()
	}
	peek, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(peek), resp.Body), resp.Body}
	return graphError("", resp.StatusCode, peek).reason()
}

// isClaimsChallenge reports whether a 401 is a Continuous Access
// Evaluation challenge (WWW-Authenticate: Bearer ... claims="...").
func isClaimsChallenge(resp *http.Response) bool {
	for _, v := range resp.Header.Values("WWW-Authenticate") {
		if strings.Contains(strings.ToLower(v), "claims=") {
			return true
		}
	}
	return false
}

// drain reads a little of a response that is thrown away, so that its
// connection can be reused, and closes it.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

func statusOf(resp *http.Response) int {
	if resp == nil {
		return 0
	}
	return resp.StatusCode
}

func errAttr(err error) slog.Attr {
	if err == nil {
		return slog.Attr{}
	}
	return slog.String("error", err.Error())
}

// isThrottle reports whether status is one of the answers Graph uses to
// tell a client to slow down or come back later
// (https://learn.microsoft.com/graph/throttling).
func isThrottle(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable ||
		status == http.StatusGatewayTimeout
}

// mayHaveArrived reports whether a failed attempt of a POST may
// nevertheless have been carried out by Graph: the connection dropped after
// the request was sent, or a gateway timed out waiting for Graph. A 429 or
// 503 was refused; a connection that could not be opened carried nothing.
func mayHaveArrived(method string, resp *http.Response, err error) bool {
	if method != http.MethodPost {
		return false
	}
	if err == nil {
		return resp != nil && resp.StatusCode == http.StatusGatewayTimeout
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return false
	}
	return !errors.Is(err, syscall.ECONNREFUSED)
}

// alreadyCreatedError is returned by retryTransport instead of sending a
// creating POST again when the request's guard found the item that the
// lost attempt created.
type alreadyCreatedError struct{ id string }

func (e *alreadyCreatedError) Error() string {
	return "the item was created by an attempt whose answer was lost (" + e.id + ")"
}

// uploadSize is the number of body bytes Exchange counts as upload for
// req, whose body (as sent) is sent bytes long: the uncompressed body of a
// POST, PATCH or PUT
// (https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits).
// compressionHandler, which gzipped it, left its length in the context.
func uploadSize(req *http.Request, sent int) int64 {
	switch req.Method {
	case http.MethodPost, http.MethodPatch, http.MethodPut:
	default:
		return 0
	}
	if n, ok := plainSize(req.Context()); ok && strings.EqualFold(req.Header.Get("Content-Encoding"), "gzip") {
		return n
	}
	return int64(sent)
}
