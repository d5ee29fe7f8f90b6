package exchange

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailferry/mailferry/exchange/exchangetest"
	"github.com/mailferry/mailferry/migrate"
)

// probeRoutes returns the requests of one probe, by the emulator's route.
func probeRoutes() map[string]int {
	return map[string]int{
		"POST /users/{user}/mailFolders":                      1,
		"POST /users/{user}/mailFolders/{id}/importMime":      1,
		"PATCH /users/{user}/messages/{id}":                   1,
		"GET /users/{user}/messages/{id}":                     1,
		"DELETE /users/{user}/messages/{id}":                  1,
		"POST /users/{user}/mailFolders/{id}/permanentDelete": 1,
	}
}

// checkNoProbeLeft fails the test when the probe left a folder or a
// message behind.
func checkNoProbeLeft(t *testing.T, e *env) {
	t.Helper()
	for _, f := range e.srv.Folders(testUser) {
		if strings.HasPrefix(f.DisplayName, "mailferry-probe-") {
			t.Errorf("the probe left its folder %q", f.DisplayName)
		}
	}
	for _, m := range e.srv.Messages(testUser) {
		if m.Subject == "mailferry received-date probe" {
			t.Errorf("the probe left its canary %s", m.ID)
		}
	}
}

func TestProbeReceivedDates(t *testing.T) {
	for _, honour := range []bool{false, true} {
		t.Run(map[bool]string{false: "not honoured", true: "honoured"}[honour], func(t *testing.T) {
			e := newEnv(t, &envOptions{server: &exchangetest.Options{HonourDeliveryTimePatch: honour}})
			if _, known := e.c.ReceivedDatesProbe(); known {
				t.Fatal("known before any probe")
			}
			got, err := e.mb.ProbeReceivedDates(t.Context())
			if err != nil || got != honour {
				t.Fatalf("ProbeReceivedDates = %v, %v; want %v", got, err, honour)
			}
			if h, known := e.c.ReceivedDatesProbe(); h != honour || !known {
				t.Errorf("ReceivedDatesProbe = %v, %v; want %v, true", h, known, honour)
			}
			st := e.srv.Stats()
			for route, n := range probeRoutes() {
				if st.ByRoute[route] != n {
					t.Errorf("%s: %d requests, want %d (all: %v)", route, st.ByRoute[route], n, st.ByRoute)
				}
			}
			if st.Requests != len(probeRoutes()) {
				t.Errorf("%d requests, want %d", st.Requests, len(probeRoutes()))
			}
			checkNoProbeLeft(t, e)
			// The answer is the Client's: another mailbox does not probe.
			e.srv.AddMailbox("bob@contoso.com")
			if got, err := e.c.Mailbox("bob@contoso.com").ProbeReceivedDates(t.Context()); got != honour || err != nil {
				t.Errorf("second probe = %v, %v", got, err)
			}
			if n := e.srv.Stats().Requests; n != st.Requests {
				t.Errorf("the answer was not kept: %d more requests", n-st.Requests)
			}
		})
	}
}

// TestProbeConcurrent starts many Puts at once: one probe runs, the
// others wait for its answer.
func TestProbeConcurrent(t *testing.T) {
	e := newEnv(t, &envOptions{server: &exchangetest.Options{HonourDeliveryTimePatch: true, Latency: 5 * time.Millisecond}})
	inbox := e.wellKnown(t, "inbox")
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = e.mb.Put(t.Context(), inbox, message("INBOX", uint32(i+1), sampleMIME("<c@example.org>", "c")))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Put %d: %v", i, err)
		}
	}
	if n := e.srv.Stats().ByRoute["POST /users/{user}/mailFolders"]; n != 1 {
		t.Errorf("%d probes, want 1", n)
	}
	for _, m := range e.srv.Messages(testUser) {
		if m.MIME == nil || !m.ReceivedDateTime.Equal(time.Date(2020, 5, 17, 10, 0, 0, 0, time.UTC)) {
			t.Errorf("message %s: MIME kept %v, received %v", m.ID, m.MIME != nil, m.ReceivedDateTime)
		}
	}
}

// answer returns a Graph error answer to r.
func answer(r *http.Request, status int, code string) *http.Response {
	body := `{"error":{"code":"` + code + `","message":"injected"}}`
	return &http.Response{
		StatusCode: status, Status: http.StatusText(status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/json"}}, Request: r,
		Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)),
	}
}

// TestProbeRefusedPatch: a PATCH that Graph refuses is an answer, not a
// failure.
func TestProbeRefusedPatch(t *testing.T) {
	e := newEnv(t, &envOptions{hook: func(r *http.Request) (*http.Response, error) {
		if r.Method == http.MethodPatch {
			return answer(r, http.StatusBadRequest, "ErrorInvalidPropertySet"), nil
		}
		return nil, nil
	}})
	got, err := e.mb.ProbeReceivedDates(t.Context())
	if got || err != nil {
		t.Fatalf("ProbeReceivedDates = %v, %v; want false, nil", got, err)
	}
	if h, known := e.c.ReceivedDatesProbe(); h || !known {
		t.Errorf("ReceivedDatesProbe = %v, %v", h, known)
	}
	checkNoProbeLeft(t, e)
}

// TestProbeFailures checks which failures are kept and which are tried
// again, and that the probe cleans up after each.
func TestProbeFailures(t *testing.T) {
	t.Run("transient", func(t *testing.T) {
		var fail atomic.Bool
		fail.Store(true)
		e := newEnv(t, &envOptions{maxRetries: -1, hook: func(r *http.Request) (*http.Response, error) {
			if fail.Load() && strings.HasSuffix(r.URL.Path, "/importMime") {
				return answer(r, http.StatusServiceUnavailable, "ServiceUnavailable"), nil
			}
			return nil, nil
		}})
		ctx, events := observed(t.Context())
		if _, err := e.mb.ProbeReceivedDates(ctx); !errors.Is(err, migrate.ErrTransient) {
			t.Fatalf("probe through a 503: %v, want ErrTransient", err)
		}
		checkNoProbeLeft(t, e)
		before := e.srv.Stats().Requests
		// A Put meanwhile does without the answer: the JSON create, a
		// notice that says why, and no new probe.
		fail.Store(false)
		id, err := e.mb.Put(ctx, e.wellKnown(t, "inbox"), message("INBOX", 1, sampleMIME("<t@example.org>", "t")))
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := e.srv.Message(testUser, id); got.MIME != nil {
			t.Errorf("imported without an answer")
		}
		if n := e.srv.Stats().ByRoute["POST /users/{user}/mailFolders"]; n != 1 {
			t.Errorf("probed again at once: %d probes", n)
		}
		if n := e.srv.Stats().Requests - before; n != 1 {
			t.Errorf("Put made %d requests, want the JSON create alone", n)
		}
		if ev := events(); len(ev) == 0 || !strings.HasPrefix(ev[len(ev)-1].Reason, "Could not learn whether Exchange honours") ||
			!strings.Contains(ev[len(ev)-1].Reason, "503") {
			t.Errorf("events %+v, want a notice of the failed probe", ev)
		}
		// A minute later, the next call probes again.
		e.c.probe.mu.Lock()
		e.c.probe.retryAt = time.Now()
		e.c.probe.mu.Unlock()
		if got, err := e.mb.ProbeReceivedDates(t.Context()); got || err != nil {
			t.Errorf("probe again: %v, %v; want false, nil", got, err)
		}
		if _, known := e.c.ReceivedDatesProbe(); !known {
			t.Errorf("the second probe's answer was not kept")
		}
		checkNoProbeLeft(t, e)
	})
	t.Run("mailbox", func(t *testing.T) {
		e := newEnv(t, nil)
		e.srv.AddUserWithoutMailbox("guest@contoso.com")
		guest := e.c.Mailbox("guest@contoso.com")
		if _, err := guest.ProbeReceivedDates(t.Context()); !errors.Is(err, migrate.ErrMailbox) {
			t.Fatalf("probe in a user without a mailbox: %v, want ErrMailbox", err)
		}
		before := e.srv.Stats().Requests
		if _, err := guest.ProbeReceivedDates(t.Context()); !errors.Is(err, migrate.ErrMailbox) || e.srv.Stats().Requests != before {
			t.Errorf("probed the same mailbox again: %v", err)
		}
		if _, err := e.mb.ProbeReceivedDates(t.Context()); err != nil {
			t.Errorf("another mailbox could not probe: %v", err)
		}
		if _, known := e.c.ReceivedDatesProbe(); !known {
			t.Errorf("no answer from the other mailbox")
		}
	})
	t.Run("definitive", func(t *testing.T) {
		e := newEnv(t, &envOptions{hook: func(r *http.Request) (*http.Response, error) {
			if r.Method == http.MethodGet && strings.Contains(r.URL.RawQuery, "receivedDateTime") {
				return answer(r, http.StatusBadRequest, "ErrorInvalidRequest"), nil
			}
			return nil, nil
		}})
		if _, err := e.mb.ProbeReceivedDates(t.Context()); !errors.Is(err, migrate.ErrItem) {
			t.Fatalf("probe with a refused GET: %v, want ErrItem", err)
		}
		checkNoProbeLeft(t, e)
		before := e.srv.Stats().Requests
		e.srv.AddMailbox("bob@contoso.com")
		if _, err := e.c.Mailbox("bob@contoso.com").ProbeReceivedDates(t.Context()); !errors.Is(err, migrate.ErrItem) ||
			e.srv.Stats().Requests != before {
			t.Errorf("a definitive failure was not kept: %v", err)
		}
		if _, known := e.c.ReceivedDatesProbe(); known {
			t.Errorf("a failure reads as an answer")
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		var once sync.Once
		e := newEnv(t, &envOptions{hook: func(r *http.Request) (*http.Response, error) {
			cancelled := false
			if r.Method == http.MethodPatch {
				once.Do(func() { cancelled = true })
			}
			if cancelled {
				cancel()
				return nil, context.Canceled
			}
			return nil, nil
		}})
		if _, err := e.mb.ProbeReceivedDates(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled probe: %v", err)
		}
		checkNoProbeLeft(t, e) // cleaned up without ctx
		if got, err := e.mb.ProbeReceivedDates(t.Context()); err == nil && got {
			t.Errorf("probe after a cancelled one: %v", got)
		} else if err != nil {
			t.Errorf("the next caller did not probe again: %v", err)
		}
	})
}
