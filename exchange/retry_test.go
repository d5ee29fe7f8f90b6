package exchange

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
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
