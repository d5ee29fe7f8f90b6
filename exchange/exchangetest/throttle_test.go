package exchangetest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func retryAfter(t *testing.T, v string) int {
	t.Helper()
	n, err := strconv.Atoi(v)
	require.NoError(t, err, "Retry-After %q", v)
	return n
}

// fakeClock is an Options.Now that moves only when the test moves it, so
// that a budget window passes exactly when the test says, however slowly
// the machine runs.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newHookedServer is newTestServer with the admitted hook set before the
// server starts.
func newHookedServer(t *testing.T, opts *Options, admitted func(method, tmpl string)) *Server {
	t.Helper()
	s := newServer(opts)
	s.admitted = admitted
	s.ts = httptest.NewServer(s)
	t.Cleanup(s.Close)
	s.AddMailbox(alice)
	return s
}

// receive returns the next value from ch. The deadline only keeps a broken
// server from hanging the test: the outcome never depends on it.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(time.Minute):
		t.Fatalf("no %s after a minute", what)
		panic("unreachable")
	}
}

func TestBudgets(t *testing.T) {
	inbox := "/v1.0/users/" + alice + "/mailFolders/inbox"
	t.Run("requests", func(t *testing.T) {
		clock := newFakeClock()
		s := newTestServer(t, &Options{Budget: &Budget{MaxRequestsPerWindow: 3}, TimeScale: 600, Now: clock.Now}) // 1 s window
		for range 3 {
			assert.Equal(t, 200, do(t, s, "GET", inbox, nil, "").status)
		}
		r := do(t, s, "GET", inbox, nil, "")
		assert.Equal(t, 429, r.status)
		assert.Equal(t, "1", r.header.Get("Retry-After"))
		// The window slides: the three admissions count until exactly
		// one window after them...
		clock.Advance(time.Second - time.Nanosecond)
		r = do(t, s, "GET", inbox, nil, "")
		assert.Equal(t, 429, r.status, "a nanosecond before the window has passed")
		assert.Equal(t, "1", r.header.Get("Retry-After"), "the nanosecond left, rounded up")
		// ...and then no more; the two refusals never counted, so a
		// whole budget is free again.
		clock.Advance(time.Nanosecond)
		for i := range 3 {
			assert.Equal(t, 200, do(t, s, "GET", inbox, nil, "").status, "request %d of the next window", i)
		}
		assert.Equal(t, 429, do(t, s, "GET", inbox, nil, "").status, "beyond the budget of the next window")
		assert.Equal(t, map[string]int{"MailboxRequests": 3}, s.Stats().ThrottledBy)
	})
	t.Run("concurrency", func(t *testing.T) {
		// The first MaxConcurrentRequests requests admitted are held
		// inside the server, in flight, until the test lets them go, so
		// every other request finds the budget full, however the
		// scheduler orders them.
		const limit, extra = 4, 2
		arrived := make(chan string, 2*(limit+extra))
		release := make(chan struct{})
		s := newHookedServer(t, &Options{Budget: &Budget{MaxConcurrentRequests: limit}}, func(method, tmpl string) {
			arrived <- method + " " + tmpl
			<-release
		})
		letGo := sync.OnceFunc(func() { close(release) })
		t.Cleanup(letGo) // before Close, which waits for held requests

		type result struct {
			status     int
			retryAfter string
			message    string
			err        error
		}
		results := make(chan result, limit+extra)
		get := func() {
			req, err := http.NewRequest("GET", s.URL()+inbox, nil)
			if err != nil {
				results <- result{err: err}
				return
			}
			req.Header.Set("Authorization", "Bearer test-token")
			res, err := s.Client().Do(req)
			if err != nil {
				results <- result{err: err}
				return
			}
			defer res.Body.Close()
			var body struct {
				Error struct{ Message string } `json:"error"`
			}
			err = json.NewDecoder(res.Body).Decode(&body)
			results <- result{res.StatusCode, res.Header.Get("Retry-After"), body.Error.Message, err}
		}
		for range limit + extra {
			go get()
		}
		// Until the test lets go, no admitted request can answer: the
		// only answers are refusals, and they come after the budget is
		// full, in whatever order the requests arrived.
		admitted, refused := 0, 0
		for admitted < limit || refused < extra {
			select {
			case route := <-arrived:
				admitted++
				require.LessOrEqual(t, admitted, limit, "a request beyond the budget was admitted")
				assert.Equal(t, "GET /users/{user}/mailFolders/{id}", route)
			case r := <-results:
				refused++
				require.NoError(t, r.err)
				assert.Equal(t, 429, r.status)
				assert.Equal(t, "1", r.retryAfter)
				assert.Equal(t, "Application is over its MailboxConcurrency limit.", r.message)
			case <-time.After(time.Minute): // a hang guard only
				t.Fatalf("after a minute, %d admitted and %d refused", admitted, refused)
			}
		}
		assert.Empty(t, arrived, "a request beyond the budget was admitted")
		assert.Equal(t, map[string]int{"MailboxConcurrency": extra}, s.Stats().ThrottledBy)

		letGo()
		for range limit {
			r := receive(t, results, "answer of a held request")
			require.NoError(t, r.err)
			assert.Equal(t, 200, r.status)
		}
		// The held requests gave their slots back.
		for range limit + extra {
			go get()
		}
		for range limit + extra {
			assert.Equal(t, 200, receive(t, results, "answer").status)
		}
		assert.Equal(t, extra, s.Stats().Throttled)
	})
	t.Run("latency", func(t *testing.T) {
		// Latency is added after admission: the answer cannot come
		// sooner (a lower bound only, which no slow machine breaks).
		const latency = 50 * time.Millisecond
		admitted := make(chan time.Time, 1)
		s := newHookedServer(t, &Options{Budget: DefaultBudget(), Latency: latency}, func(string, string) { admitted <- time.Now() })
		r := do(t, s, "GET", inbox, nil, "")
		answered := time.Now()
		assert.Equal(t, 200, r.status)
		assert.GreaterOrEqual(t, answered.Sub(receive(t, admitted, "admission")), latency)
	})
	t.Run("upload", func(t *testing.T) {
		s := newTestServer(t, &Options{Budget: &Budget{MaxUploadBytesPerWindow: int64(len(b64(sampleMIME))) + 10}})
		assert.Equal(t, 201, do(t, s, "POST", "/beta/users/"+alice+"/mailFolders/inbox/importMime", b64(sampleMIME), "text/plain").status)
		r := do(t, s, "POST", "/beta/users/"+alice+"/mailFolders/inbox/importMime", b64(sampleMIME), "text/plain")
		assert.Equal(t, 429, r.status)
		assert.Equal(t, 1, s.Stats().Throttled)
	})
}

func TestBudgetRetryAfterFromWindow(t *testing.T) {
	// 10-minute window / 60 = 10 s.
	clock := newFakeClock()
	s := newTestServer(t, &Options{Budget: &Budget{MaxRequestsPerWindow: 2}, TimeScale: 60, Now: clock.Now})
	assert.Equal(t, &Budget{MaxRequestsPerWindow: 2}, s.Budget())
	assert.Equal(t, 60.0, s.TimeScale())
	inbox := "/v1.0/users/" + alice + "/mailFolders/inbox"
	for range 2 {
		require.Equal(t, 200, do(t, s, "GET", inbox, nil, "").status)
	}
	r := do(t, s, "GET", inbox, nil, "")
	require.Equal(t, 429, r.status)
	assert.Equal(t, "ApplicationThrottled", r.errCode())
	assert.Equal(t, "Application is over its MailboxRequests limit.", r.json["error"].(map[string]any)["message"])
	assert.Equal(t, 10, retryAfter(t, r.header.Get("Retry-After")), "the whole 10 s scaled window")
	// Retry-After is the rest of the window, rounded up.
	clock.Advance(3500 * time.Millisecond)
	r = do(t, s, "GET", inbox, nil, "")
	require.Equal(t, 429, r.status)
	assert.Equal(t, 7, retryAfter(t, r.header.Get("Retry-After")), "6.5 s left")
	clock.Advance(6500 * time.Millisecond)
	require.Equal(t, 200, do(t, s, "GET", inbox, nil, "").status, "once the window has passed")

	st := s.Stats()
	assert.Equal(t, 5, st.Requests, "throttled requests are counted")
	assert.Equal(t, 2, st.Throttled)
	assert.Equal(t, map[string]int{"MailboxRequests": 2}, st.ThrottledBy)

	// Without budgets, Budget is nil and the time scale 1.
	plain := newTestServer(t, nil)
	assert.Nil(t, plain.Budget())
	assert.Equal(t, 1.0, plain.TimeScale())
}

func TestBudgetUploadRetryAfter(t *testing.T) {
	// 5-minute window / 30 = 10 s; 100 bytes.
	clock := newFakeClock()
	s := newTestServer(t, &Options{Budget: &Budget{MaxUploadBytesPerWindow: 100}, TimeScale: 30, Now: clock.Now})
	body := map[string]any{"displayName": "0123456789012345678901234567890123456789"} // ~58 bytes of JSON
	require.Equal(t, 201, doJSON(t, s, "POST", "/v1.0/users/"+alice+"/mailFolders", body).status)
	r := doJSON(t, s, "POST", "/v1.0/users/"+alice+"/mailFolders", body)
	require.Equal(t, 429, r.status)
	assert.Equal(t, 10, retryAfter(t, r.header.Get("Retry-After")), "the whole 10 s scaled window")
	assert.Equal(t, 200, do(t, s, "GET", "/v1.0/users/"+alice+"/mailFolders/inbox", nil, "").status, "reads are not uploads")
	st := s.Stats()
	assert.Equal(t, 1, st.ThrottledBy["MailboxUpload"])
	assert.Equal(t, int64(2*len(`{"displayName":"0123456789012345678901234567890123456789"}`)), st.UploadBytes, "throttled uploads are counted in Stats")
}
