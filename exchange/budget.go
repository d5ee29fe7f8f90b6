package exchange

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/mailferry/mailferry/migrate"
)

// Budget is the share of Exchange Online's throttling limits that one
// Client uses for one mailbox. Exchange Online counts per app per mailbox
// (https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits):
// 4 concurrent requests, 10,000 requests per 10 minutes and 150 MB of
// upload (the bodies of POST, PATCH and PUT requests) per 5 minutes.
//
// A Client paces each mailbox's requests to stay inside its Budget, so that
// Graph rarely has to answer 429: a request waits for one of Concurrent
// slots, then for its share of two token buckets, one counting requests and
// one counting upload bytes. Each bucket refills at 99% of its limit, less
// its burst, per window, so that any window holds at most 99% of the limit
// however the requests fall; the remaining 1% absorbs the difference
// between the time a request leaves and the time Graph counts it. A
// $batch counts as one request per sub-request, and its envelope's bytes
// as upload.
//
// The budget is shared by every Mailbox of the Client with the same user
// (compared case-insensitively), not across Clients or processes: two
// processes writing the same mailbox with the same app registration share
// Microsoft's budget and should divide it between them.
//
// A zero field means that limit is not applied.
type Budget struct {
	// Concurrent is how many requests may be in flight at once (4).
	Concurrent int
	// Requests is how many requests may start per RequestWindow (10,000).
	Requests int
	// RequestWindow is the window of Requests (10 minutes).
	RequestWindow time.Duration
	// UploadBytes is how many request body bytes of POST, PATCH and PUT
	// requests, before compression, may be sent per UploadWindow (150 MB,
	// counted as 150 MiB as Microsoft's limit pages do not say).
	UploadBytes int64
	// UploadWindow is the window of UploadBytes (5 minutes).
	UploadWindow time.Duration
}

// DefaultBudget returns Exchange Online's documented per-app-per-mailbox
// limits: 4 concurrent requests, 10,000 requests per 10 minutes, 150 MB of
// upload per 5 minutes
// (https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits).
func DefaultBudget() *Budget {
	return &Budget{
		Concurrent:    4,
		Requests:      10000,
		RequestWindow: 10 * time.Minute,
		UploadBytes:   150 << 20,
		UploadWindow:  5 * time.Minute,
	}
}

// budgetHeadroom is the share of each windowed limit that the pacer allows
// itself.
const budgetHeadroom = 0.99

// pacer enforces one mailbox's Budget. Every Graph request of the mailbox
// passes through acquire (in retryTransport, once per attempt), and a 429
// or a Retry-After pauses all of them (pause).
type pacer struct {
	sem    *semaphore.Weighted // nil: no concurrency limit
	slots  int64
	reqs   *bucket // nil: no request limit
	upload *bucket // nil: no upload limit
	sleep  func(ctx context.Context, d time.Duration) error
	now    func() time.Time

	mu     sync.Mutex
	paused time.Time // no request of the mailbox starts before this
}

func newPacer(b *Budget, sleep func(context.Context, time.Duration) error, now func() time.Time) *pacer {
	p := &pacer{sleep: sleep, now: now}
	if b.Concurrent > 0 {
		p.slots = int64(b.Concurrent)
		p.sem = semaphore.NewWeighted(p.slots)
	}
	if b.Requests > 0 && b.RequestWindow > 0 {
		p.reqs = newBucket(float64(b.Requests), b.RequestWindow, now)
	}
	if b.UploadBytes > 0 && b.UploadWindow > 0 {
		p.upload = newBucket(float64(b.UploadBytes), b.UploadWindow, now)
	}
	return p
}

// acquire waits until a request of weight requests (sub-requests of a
// $batch; 1 otherwise) and upload body bytes may start, and returns the
// function that frees its concurrency slots once Graph has answered.
// waited is the end of a pause that the caller has already waited out
// itself (the request that was told to wait), zero otherwise.
func (p *pacer) acquire(ctx context.Context, weight int, upload int64, waited time.Time) (release func(), err error) {
	waited, err = p.waitPause(ctx, waited)
	if err != nil {
		return nil, err
	}
	release = func() {}
	if p.sem != nil {
		// A $batch may run up to 4 sub-requests at once on the server
		// (https://learn.microsoft.com/graph/json-batching), so it takes
		// as many slots as it could use.
		n := min(int64(max(weight, 1)), p.slots)
		if err := p.sem.Acquire(ctx, n); err != nil {
			return nil, err
		}
		var once sync.Once
		release = func() { once.Do(func() { p.sem.Release(n) }) }
	}
	// Reserve tokens while holding the slots, so that the request leaves
	// as soon as its tokens are there and requests do not bunch up.
	var d time.Duration
	if p.reqs != nil {
		d = max(d, p.reqs.reserve(float64(max(weight, 1))))
	}
	if p.upload != nil && upload > 0 {
		d = max(d, p.upload.reserve(float64(upload)))
	}
	if d > 0 {
		if err := p.sleep(ctx, d); err != nil {
			if p.reqs != nil {
				p.reqs.refund(float64(max(weight, 1)))
			}
			if p.upload != nil && upload > 0 {
				p.upload.refund(float64(upload))
			}
			release()
			return nil, err
		}
	}
	// A pause may have begun while this request waited for its turn.
	if _, err := p.waitPause(ctx, waited); err != nil {
		release()
		return nil, err
	}
	return release, nil
}

// waitPause waits until the mailbox's pause is over, unless the caller has
// already waited until waited or later, and returns the end of the pause
// it waited for (or waited).
func (p *pacer) waitPause(ctx context.Context, waited time.Time) (time.Time, error) {
	for {
		p.mu.Lock()
		until := p.paused
		p.mu.Unlock()
		if !until.After(waited) {
			return waited, nil
		}
		d := until.Sub(p.now())
		if d <= 0 {
			return waited, nil
		}
		if err := p.sleep(ctx, d); err != nil {
			return waited, err
		}
		waited = until
	}
}

// pause holds every request of the mailbox until until: Exchange Online
// throttles per app per mailbox, so when one request is told to wait,
// the others would be refused too.
func (p *pacer) pause(until time.Time) {
	p.mu.Lock()
	if until.After(p.paused) {
		p.paused = until
	}
	p.mu.Unlock()
}

// bucket is a token bucket that may go into debt: reserve always succeeds
// and says how long the caller must wait for its tokens (as
// golang.org/x/time/rate's ReserveN, but a single reservation may exceed
// the burst). However requests fall, any window of length window admits
// at most burst + rate*window = budgetHeadroom*limit tokens.
type bucket struct {
	rate  float64 // tokens per second
	burst float64
	now   func() time.Time

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

func newBucket(limit float64, window time.Duration, now func() time.Time) *bucket {
	allowed := limit * budgetHeadroom
	burst := math.Max(1, math.Floor(limit/100))
	rate := (allowed - burst) / window.Seconds()
	if rate <= 0 {
		burst, rate = allowed/2, allowed/2/window.Seconds()
	}
	return &bucket{rate: rate, burst: burst, now: now, tokens: burst, last: now()}
}

func (b *bucket) reserve(n float64) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.now()
	if t.After(b.last) {
		b.tokens = math.Min(b.burst, b.tokens+t.Sub(b.last).Seconds()*b.rate)
		b.last = t
	}
	b.tokens -= n
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}

func (b *bucket) refund(n float64) {
	b.mu.Lock()
	b.tokens = math.Min(b.burst, b.tokens+n)
	b.mu.Unlock()
}

// pacerFor returns the pacer of user's mailbox, shared by every Mailbox of
// the Client for that user.
func (c *Client) pacerFor(user string) *pacer {
	key := strings.ToLower(user)
	c.pacersMu.Lock()
	defer c.pacersMu.Unlock()
	p, ok := c.pacers[key]
	if !ok {
		p = newPacer(c.budget, c.retry.wait, time.Now)
		c.pacers[key] = p
	}
	return p
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

// Observe implements migrate.Observable: fn receives an EventThrottled
// each time Graph answers one of this Mailbox's requests with 429, 503 or
// 504, with Reason "<status> <code>: <message>" and Bytes the wait in
// milliseconds (Retry-After, or the backoff when Graph gave none). fn is
// called from the goroutine of the request and must return quickly. A
// later call replaces fn; nil stops the events.
func (mb *Mailbox) Observe(fn func(migrate.Event)) {
	mb.obsMu.Lock()
	mb.observer = fn
	mb.obsMu.Unlock()
}

// throttled reports a throttling answer to the Mailbox's observer and log.
func (mb *Mailbox) throttled(ctx context.Context, resp *http.Response, wait time.Duration) {
	mb.emitThrottled(ctx, throttleReason(resp), wait)
}

func (mb *Mailbox) emitThrottled(ctx context.Context, reason string, wait time.Duration) {
	mb.c.logger.LogAttrs(ctx, slog.LevelInfo, "exchange: throttled",
		slog.String("user", mb.user), slog.String("reason", reason), slog.Duration("wait", wait))
	mb.obsMu.Lock()
	fn := mb.observer
	mb.obsMu.Unlock()
	if fn != nil {
		fn(migrate.Event{Kind: migrate.EventThrottled, Reason: reason, Bytes: wait.Milliseconds()})
	}
}

// throttleReason reads Graph's error code and message from the start of
// resp's body, leaving the body readable.
func throttleReason(resp *http.Response) string {
	reason := strconv.Itoa(resp.StatusCode) + " " + http.StatusText(resp.StatusCode)
	if resp.Body == nil {
		return reason
	}
	peek, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(peek), resp.Body), resp.Body}
	var ge struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if json.Unmarshal(peek, &ge) == nil && ge.Error.Code != "" {
		reason = strconv.Itoa(resp.StatusCode) + " " + ge.Error.Code
		if ge.Error.Message != "" {
			reason += ": " + ge.Error.Message
		}
	}
	return reason
}
