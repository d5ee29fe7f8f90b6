package exchange

import (
	"context"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"
	"golang.org/x/time/rate"
)

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
	if b.MaxConcurrentRequests > 0 {
		p.slots = int64(b.MaxConcurrentRequests)
		p.sem = semaphore.NewWeighted(p.slots)
	}
	if b.MaxRequestsPerWindow > 0 && b.RequestWindow > 0 {
		p.reqs = newBucket(int64(b.MaxRequestsPerWindow), b.RequestWindow, now)
	}
	if b.MaxUploadBytesPerWindow > 0 && b.UploadWindow > 0 {
		p.upload = newBucket(b.MaxUploadBytesPerWindow, b.UploadWindow, now)
	}
	return p
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

// acquire waits until a request of weight requests (sub-requests of a
// $batch; 1 otherwise) and upload body bytes may start, and returns the
// function that frees its concurrency slots once Graph has answered.
// waited is the end of a pause that the caller has already waited out
// itself (the request that was told to wait), zero otherwise. A request
// abandoned while it waits (its context ends) gives its tokens back.
func (p *pacer) acquire(ctx context.Context, weight int, upload int64, waited time.Time) (release func(), err error) {
	waited, err = p.waitPause(ctx, waited)
	if err != nil {
		return nil, err
	}
	weight = max(weight, 1)
	release = func() {}
	if p.sem != nil {
		// A $batch may run up to 4 sub-requests at once on the server
		// (https://learn.microsoft.com/graph/json-batching), so it takes
		// as many slots as it could use.
		n := min(int64(weight), p.slots)
		if err := p.sem.Acquire(ctx, n); err != nil {
			return nil, err
		}
		var once sync.Once
		release = func() { once.Do(func() { p.sem.Release(n) }) }
	}
	// Reserve tokens while holding the slots, so that the request leaves
	// as soon as its tokens are there and requests do not bunch up.
	var d time.Duration
	var cancels []func()
	if p.reqs != nil {
		w, cancel := p.reqs.reserve(int64(weight))
		d, cancels = max(d, w), append(cancels, cancel)
	}
	if p.upload != nil && upload > 0 {
		w, cancel := p.upload.reserve(upload)
		d, cancels = max(d, w), append(cancels, cancel)
	}
	abandon := func() {
		for _, cancel := range cancels {
			cancel()
		}
		release()
	}
	if d > 0 {
		if err := p.sleep(ctx, d); err != nil {
			abandon()
			return nil, err
		}
	}
	// A pause may have begun while this request waited for its turn.
	if _, err := p.waitPause(ctx, waited); err != nil {
		abandon()
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

// bucket is one of a pacer's token buckets: a rate.Limiter whose burst is
// 1% of the limit and whose rate is the rest of budgetHeadroom per window,
// so that however requests fall, any window of length window admits at
// most burst + rate*window = budgetHeadroom*limit tokens. A reservation
// larger than the burst (an upload body of several MB against a 1.5 MB
// burst), which rate.Limiter would refuse, is made with the burst raised
// to its size for that reservation alone: it goes into debt like any
// other, and the request waits until the bucket has refilled enough to
// pay for all of it.
type bucket struct {
	now func() time.Time

	mu  sync.Mutex // held while the burst is raised
	lim *rate.Limiter
}

func newBucket(limit int64, window time.Duration, now func() time.Time) *bucket {
	allowed := float64(limit) * budgetHeadroom
	burst := max(1, limit/100)
	perSecond := (allowed - float64(burst)) / window.Seconds()
	if perSecond <= 0 {
		// A limit too small for a burst of 1% (1 request per window):
		// one at once, then half the allowance per window.
		burst, perSecond = 1, allowed/2/window.Seconds()
	}
	return &bucket{now: now, lim: rate.NewLimiter(rate.Limit(perSecond), int(burst))}
}

// reserve takes n tokens and returns how long the caller must wait before
// using them, and the function that gives them back (Reservation.Cancel)
// if the request does not go after all.
func (b *bucket) reserve(n int64) (wait time.Duration, cancel func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.now()
	var r *rate.Reservation
	if burst := b.lim.Burst(); n > int64(burst) {
		b.lim.SetBurstAt(t, int(n))
		r = b.lim.ReserveN(t, int(n))
		b.lim.SetBurstAt(t, burst)
	} else {
		r = b.lim.ReserveN(t, int(n))
	}
	return r.DelayFrom(t), func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		r.CancelAt(b.now())
	}
}
