package exchange

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

func TestRetryThrottled(t *testing.T) {
	e := newEnv(t, &envOptions{dates: ReceivedDateAtImport}) // a Put of two requests: importMime, PATCH
	inbox := e.wellKnown(t, "inbox")
	e.srv.FailNext(2, http.StatusTooManyRequests, time.Second)
	id, err := e.mb.Put(t.Context(), inbox, message("INBOX", 1, sampleMIME("<throttled@example.org>", "throttled")))
	if err != nil {
		t.Fatalf("Put through two 429s: %v", err)
	}
	if _, ok := e.srv.Message(testUser, id); !ok {
		t.Fatal("message missing")
	}
	if len(e.srv.Messages(testUser)) != 1 {
		t.Errorf("%d messages after retries, want 1", len(e.srv.Messages(testUser)))
	}
	// The throttled request waits Retry-After itself; with the clock
	// standing still in this test, the PATCH that follows also sees the
	// mailbox paused (every request of a throttled mailbox waits).
	if len(e.waits) < 2 || !slices.Equal(e.waits[:2], []time.Duration{time.Second, time.Second}) ||
		len(e.waits) > 3 || (len(e.waits) == 3 && e.waits[2] > time.Second) {
		t.Errorf("waits %v, want Retry-After's [1s 1s] and at most the rest of the pause", e.waits)
	}
	if st := e.srv.Stats(); st.Throttled != 2 {
		t.Errorf("throttled %d, want 2", st.Throttled)
	}
}

func TestRetryBackoffAndExhaustion(t *testing.T) {
	e := newEnv(t, &envOptions{maxRetries: 3})
	e.srv.FailNext(10, http.StatusServiceUnavailable, 0)
	_, err := e.mb.EnsureFolder(t.Context(), "", "Projects", migrate.RoleNone)
	if !errors.Is(err, migrate.ErrTransient) {
		t.Fatalf("EnsureFolder through 503s: %v, want ErrTransient", err)
	}
	var ge *GraphError
	if !errors.As(err, &ge) || ge.StatusCode != 503 {
		t.Errorf("error %v: want a *GraphError with status 503", err)
	}
	if !strings.HasPrefix(err.Error(), "exchange: ") {
		t.Errorf("error %q lacks the package prefix", err)
	}
	if len(e.waits) != 3 {
		t.Fatalf("waits %v, want 3 backoffs", e.waits)
	}
	// No Retry-After: exponential backoff with jitter, from 500ms.
	for i, w := range e.waits {
		lo, hi := (500*time.Millisecond<<i)/2, 500*time.Millisecond<<i
		if w < lo || w > hi {
			t.Errorf("backoff %d = %v, want in [%v, %v]", i, w, lo, hi)
		}
	}
	if n := e.srv.Stats().Requests; n != 4 {
		t.Errorf("%d requests, want 1+3 retries", n)
	}
}

func TestRetryResetConnection(t *testing.T) {
	e := newEnv(t, nil)
	inbox := e.wellKnown(t, "inbox")
	e.srv.ResetNext(2)
	id, err := e.mb.Put(t.Context(), inbox, message("INBOX", 1, sampleMIME("<reset@example.org>", "reset")))
	if err != nil {
		t.Fatalf("Put through two dropped connections: %v", err)
	}
	if got, ok := e.srv.Message(testUser, id); !ok || got.ExtendedProperties[WatermarkProperty] == "" {
		t.Errorf("message %q after resets: %+v", id, got)
	}
	if len(e.waits) != 2 {
		t.Errorf("waits %v, want 2", e.waits)
	}
}

func TestRetryHonoursContext(t *testing.T) {
	e := newEnv(t, nil)
	e.c.retry.sleep = nil // real timers
	e.srv.FailNext(1, http.StatusTooManyRequests, time.Hour)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := e.mb.EnsureFolder(ctx, "", "Projects", migrate.RoleNone)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("EnsureFolder during a 1h Retry-After: %v, want DeadlineExceeded", err)
	}
	if errors.Is(err, migrate.ErrItem) || errors.Is(err, migrate.ErrMailbox) {
		t.Errorf("a cancelled call is marked: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestShouldRetry(t *testing.T) {
	resp := func(code int, ra string) *http.Response {
		h := http.Header{}
		if ra != "" {
			h.Set("Retry-After", ra)
		}
		return &http.Response{StatusCode: code, Header: h}
	}
	cases := []struct {
		name  string
		resp  *http.Response
		err   error
		retry bool
		wait  time.Duration
	}{
		{"200", resp(200, ""), nil, false, 0},
		{"400", resp(400, ""), nil, false, 0},
		{"401", resp(401, ""), nil, false, 0},
		{"404", resp(404, ""), nil, false, 0},
		{"500", resp(500, ""), nil, false, 0},
		{"429 Retry-After 3", resp(429, "3"), nil, true, 3 * time.Second},
		{"429 no Retry-After", resp(429, ""), nil, true, 0},
		{"429 bad Retry-After", resp(429, "soon"), nil, true, 0},
		{"503", resp(503, "1"), nil, true, time.Second},
		{"504", resp(504, ""), nil, true, 0},
		{"EOF", nil, &netErr{io.EOF}, true, 0},
		{"reset", nil, fmt.Errorf("read: %w", errConnReset), true, 0},
		{"cancelled", nil, context.Canceled, false, 0},
		{"deadline", nil, fmt.Errorf("x: %w", context.DeadlineExceeded), false, 0},
		{"other", nil, errors.New("x509: certificate signed by unknown authority"), false, 0},
	}
	for _, c := range cases {
		retry, wait := shouldRetry(c.resp, c.err)
		if retry != c.retry || wait != c.wait {
			t.Errorf("%s: shouldRetry = %v, %v; want %v, %v", c.name, retry, wait, c.retry, c.wait)
		}
	}
	if d := retryAfter(time.Now().Add(10 * time.Second).UTC().Format(http.TimeFormat)); d < 8*time.Second || d > 10*time.Second {
		t.Errorf("Retry-After as a date: %v", d)
	}
}

// TestEngineSeesThrottling checks that the Engine receives the Mailbox's
// EventThrottled events, which the Mailbox reports through the context
// of the Engine's calls (migrate.Notify).
func TestEngineSeesThrottling(t *testing.T) {
	e := newEnv(t, nil)
	e.srv.FailNext(2, http.StatusServiceUnavailable, 2*time.Second)
	var mu sync.Mutex
	var got []migrate.Event
	eng := migrate.NewEngine(&migrate.Options{OnEvent: func(ev migrate.Event) {
		if ev.Kind == migrate.EventThrottled {
			mu.Lock()
			got = append(got, ev)
			mu.Unlock()
		}
	}})
	fx := migratetest.Sample()
	rep := eng.Run(t.Context(), migrate.Job{Mailbox: testUser, Source: migratetest.NewSource(fx), Sink: e.mb})
	if rep.Lost() {
		t.Fatalf("migration lost messages: %+v", rep.Totals())
	}
	if len(got) != 2 || got[0].Mailbox != testUser || got[0].Wait != 2*time.Second || !strings.HasPrefix(got[0].Reason, "503") {
		t.Errorf("throttle events %+v, want two 503s of 2s for %s", got, testUser)
	}
}

// TestRetryAfterCapped: a Retry-After beyond maxRetryAfter, in seconds
// (even one that overflows any integer) or as a far date, waits
// maxRetryAfter; a malformed one is ignored.
func TestRetryAfterCapped(t *testing.T) {
	for _, c := range []struct {
		header string
		want   time.Duration
	}{
		{"99999999999999999999", maxRetryAfter},
		{"9999999999999", maxRetryAfter}, // overflows as a time.Duration in seconds
		{"601", maxRetryAfter},
		{"600", 10 * time.Minute},
		{" 7 ", 7 * time.Second},
		{"0", 0},
		{"-5", 0},
		{"+5", 0},
		{"1e9", 0},
		{"Fri, 31 Dec 9999 23:59:59 GMT", maxRetryAfter},
		{"Sun, 06 Nov 1994 08:49:37 GMT", 0}, // past
	} {
		if got := retryAfter(c.header); got != c.want {
			t.Errorf("Retry-After %q: wait %v, want %v", c.header, got, c.want)
		}
	}
	if maxRetryAfter != 10*time.Minute {
		t.Errorf("maxRetryAfter = %v; the documentation says 10 minutes", maxRetryAfter)
	}
}

// TestRetryAfterHugeValue: a 429 with an absurd Retry-After pauses the
// request (and its mailbox) for maxRetryAfter, not forever and not for a
// negative, overflowed time.
func TestRetryAfterHugeValue(t *testing.T) {
	var n atomic.Int32
	e := newEnv(t, &envOptions{hook: func(r *http.Request) (*http.Response, error) {
		if n.Add(1) > 1 {
			return nil, nil
		}
		return &http.Response{StatusCode: http.StatusTooManyRequests, Request: r,
			Header: http.Header{"Retry-After": {"99999999999999999999"}, "Content-Type": {"application/json"}},
			Body:   io.NopCloser(strings.NewReader(`{"error":{"code":"ApplicationThrottled","message":"slow down"}}`))}, nil
	}})
	if _, err := e.mb.EnsureFolder(t.Context(), "", "Projects", migrate.RoleNone); err != nil {
		t.Fatalf("EnsureFolder after one 429: %v", err)
	}
	if len(e.waits) == 0 || e.waits[0] != maxRetryAfter {
		t.Errorf("waits %v, want %v first", e.waits, maxRetryAfter)
	}
	for _, w := range e.waits {
		if w < 0 || w > maxRetryAfter {
			t.Errorf("wait %v out of [0, %v]", w, maxRetryAfter)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRetryUploadURLRedacted: a PUT to an upload session's URL, which is
// pre-authenticated by its authtoken, fails at the network level (with an
// error that names the URL, as net/http's and many wrapping transports'
// do) or with 5xx answers that quote it; neither the Put's error nor the
// logs of its retries show the token.
func TestRetryUploadURLRedacted(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail func(r *http.Request) (*http.Response, error)
	}{
		{"network", func(r *http.Request) (*http.Response, error) {
			return nil, &url.Error{Op: "Put", URL: r.URL.String(), Err: fmt.Errorf("read tcp: %w", errConnReset)}
		}},
		{"5xx", func(r *http.Request) (*http.Response, error) {
			body := `{"error":{"code":"ServiceUnavailable","message":"PUT ` + r.URL.String() + ` failed"}}`
			return &http.Response{StatusCode: http.StatusServiceUnavailable, Request: r,
				Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(body))}, nil
		}},
		{"a proxy error naming the URL", func(r *http.Request) (*http.Response, error) {
			return nil, fmt.Errorf("proxy: PUT %s: %w", r.URL, errConnReset)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sawToken atomic.Bool
			e := newEnv(t, &envOptions{maxRetries: 2, dates: ReceivedDateAtImport, hook: func(r *http.Request) (*http.Response, error) {
				if r.Method == http.MethodPut && r.URL.Query().Has("authtoken") {
					sawToken.Store(true)
					return tc.fail(r)
				}
				return nil, nil
			}})
			var logs syncBuffer
			logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			e.c.logger, e.c.retry.logger = logger, logger
			_, err := e.mb.Put(t.Context(), e.wellKnown(t, "inbox"), genPut(genMessage(7, 4<<20), 7))
			if !sawToken.Load() {
				t.Fatal("no PUT to an upload URL with an authtoken: the test tests nothing")
			}
			if err == nil {
				t.Fatal("Put survived a failed upload")
			}
			if strings.Contains(err.Error(), "authtoken") {
				t.Errorf("error shows the upload URL's token: %v", err)
			}
			if strings.Contains(logs.String(), "authtoken") {
				t.Errorf("logs show the upload URL's token:\n%s", logs.String())
			}
			if !strings.Contains(logs.String(), "retrying") {
				t.Errorf("no retry logged, so the logs were not tested:\n%s", logs.String())
			}
			if !errors.Is(err, migrate.ErrTransient) {
				t.Errorf("error %v: want it still classified transient", err)
			}
		})
	}
}

// TestRetryRedactErr: the central redaction keeps the scheme, host and
// path of every URL of an error's text, drops the query, and leaves the
// error's kind as it was.
func TestRetryRedactErr(t *testing.T) {
	inner := fmt.Errorf("read: %w", errConnReset)
	err := redactErr(&url.Error{Op: "Put", URL: "https://outlook.office.com/api/v2.0/Users('a')/Messages('b')/AttachmentSessions('c')?authtoken=eyJ0.secret", Err: inner})
	want := `Put "https://outlook.office.com/api/v2.0/Users('a')/Messages('b')/AttachmentSessions('c')?(redacted)": read: ` + errConnReset.Error()
	if err.Error() != want {
		t.Errorf("redacted:\n%s\nwant\n%s", err, want)
	}
	if !errors.Is(err, errConnReset) || !isTransientNetError(err) {
		t.Errorf("redaction changed the error's kind: %v", err)
	}
	plain := errors.New("no URL here")
	if redactErr(plain) != plain {
		t.Error("an error without a URL query is not returned as it is")
	}
	if got := redactText("GET https://graph.microsoft.com/v1.0/users/x/messages?$filter=a and https://h/p#frag."); got != "GET https://graph.microsoft.com/v1.0/users/x/messages?(redacted) and https://h/p?(redacted)" {
		t.Errorf("redactText: %q", got)
	}
}
