package exchange

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailferry/mailferry/exchange/exchangetest"
	"github.com/mailferry/mailferry/migrate"
)

// TestBucketWindow checks the pacer's promise on a simulated clock: however
// requests come, no window holds more than 99% of the limit, and a steady
// stream gets at least 98% of it.
func TestBucketWindow(t *testing.T) {
	now := time.Unix(0, 0)
	clock := func() time.Time { return now }
	const limit, window = 1000, 10 * time.Second
	b := newBucket(limit, window, clock)
	var sent []time.Time
	for i := 0; i < 5000; i++ {
		d, _ := b.reserve(1)
		now = now.Add(d)
		sent = append(sent, now)
		if i%7 == 0 {
			now = now.Add(3 * time.Millisecond) // an irregular caller
		}
	}
	maxIn := 0
	for i, s := range sent {
		j, _ := slices.BinarySearchFunc(sent, s.Add(window), func(a, b time.Time) int { return a.Compare(b) })
		maxIn = max(maxIn, j-i)
	}
	if maxIn > limit*budgetHeadroom {
		t.Errorf("a window held %d requests, limit %d", maxIn, limit)
	}
	rate := float64(len(sent)) / sent[len(sent)-1].Sub(sent[0]).Seconds()
	if share := rate / (limit / window.Seconds()); share < 0.98 {
		t.Errorf("steady share %.3f of the limit", share)
	}
	// Bytes: one reservation may exceed the burst; it is paid for later.
	u := newBucket(150<<20, 5*time.Minute, clock)
	if d, _ := u.reserve(4 << 20); d <= 0 {
		t.Errorf("a 4 MB upload right away does not wait for its debt: %v", d)
	}
}

// TestThrottleEventsAndPause checks that each 429 becomes an
// EventThrottled with its reason and wait, and that it holds every
// request of that mailbox, and only of that mailbox.
func TestThrottleEventsAndPause(t *testing.T) {
	e := newEnv(t, &envOptions{dates: ReceivedDateAtImport}) // no probe: the Put's own requests
	e.srv.AddMailbox("bob@contoso.com")
	ctx, events := observed(t.Context())
	inbox := e.wellKnown(t, "inbox")
	e.srv.FailNext(1, http.StatusTooManyRequests, 3*time.Second)
	if _, err := e.mb.Put(ctx, inbox, message("INBOX", 1, sampleMIME("<t1@example.org>", "t1"))); err != nil {
		t.Fatal(err)
	}
	ev := slices.DeleteFunc(events(), func(ev migrate.Event) bool { return ev.Kind == migrate.EventNotice })
	if len(ev) != 1 || ev[0].Kind != migrate.EventThrottled || ev[0].Wait != 3*time.Second ||
		!strings.Contains(ev[0].Reason, "429 ApplicationThrottled") {
		t.Fatalf("events %+v, want one EventThrottled of 3s", ev)
	}
	if e.mb.pacer.paused.IsZero() {
		t.Fatal("the mailbox is not paused")
	}
	// Another Mailbox value for the same user shares the pause...
	e.waits = nil
	if _, err := e.c.Mailbox(strings.ToUpper(testUser)).FindMessageID(ctx, inbox, "<t1@example.org>"); err != nil {
		t.Fatal(err)
	}
	if len(e.waits) != 1 || e.waits[0] <= 0 || e.waits[0] > 3*time.Second {
		t.Errorf("a request of the paused mailbox waited %v, want the rest of the 3s pause", e.waits)
	}
	// ...another mailbox does not.
	e.waits = nil
	ensureFolder(t, e.c.Mailbox("bob@contoso.com"), "", "Inbox", migrate.RoleInbox)
	if len(e.waits) != 0 {
		t.Errorf("another mailbox waited %v", e.waits)
	}
}

// TestPacerConcurrency checks that no more than Budget.MaxConcurrentRequests
// requests of a mailbox are in flight, so that the emulator's 4-request
// budget never answers 429 to 12 concurrent Puts.
func TestPacerConcurrency(t *testing.T) {
	srv := newServer(t, &exchangetest.Options{
		Budget: &exchangetest.Budget{MaxConcurrentRequests: 4}, Latency: 5 * time.Millisecond,
	})
	mb := newMailbox(t, srv, &Budget{MaxConcurrentRequests: 4})
	inbox := ensureFolder(t, mb, "", "Inbox", migrate.RoleInbox)
	ctx := t.Context()
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Go(func() {
			id := fmt.Sprintf("<c%d@example.org>", i)
			if _, err := mb.Put(ctx, inbox, message("INBOX", uint32(i+1), sampleMIME(id, "c"))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if st := srv.Stats(); st.Throttled != 0 {
		t.Errorf("%d requests throttled (%v)", st.Throttled, st.ThrottledBy)
	}
}

// TestBucketCancel checks that a reservation given back (a request
// abandoned while it waited for its tokens) frees its tokens, for a
// reservation larger than the burst too.
func TestBucketCancel(t *testing.T) {
	now := time.Unix(0, 0)
	clock := func() time.Time { return now }
	b := newBucket(150<<20, 5*time.Minute, clock) // burst 1.5 MB
	first, _ := b.reserve(4 << 20)
	if first <= 0 {
		t.Fatalf("4 MB against a 1.5 MB burst waits %v, want its debt paid first", first)
	}
	second, cancel := b.reserve(4 << 20)
	if second <= first {
		t.Fatalf("the second 4 MB waits %v, not longer than the first's %v", second, first)
	}
	cancel()
	third, _ := b.reserve(4 << 20)
	if d := third - second; d < -time.Millisecond || d > time.Millisecond {
		t.Errorf("after a cancelled reservation the next one waits %v, want %v as the cancelled one did", third, second)
	}
}

// TestPacerAbandon checks that a request whose context ends while it
// waits for its tokens gives them back: the next request waits no longer
// than the abandoned one would have.
func TestPacerAbandon(t *testing.T) {
	now := time.Unix(0, 0)
	var slept []time.Duration
	sleep := func(ctx context.Context, d time.Duration) error {
		slept = append(slept, d)
		return ctx.Err()
	}
	p := newPacer(&Budget{MaxUploadBytesPerWindow: 150 << 20, UploadWindow: 5 * time.Minute}, sleep,
		func() time.Time { return now })
	ctx := t.Context()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	for i, c := range []context.Context{ctx, cancelled, ctx} {
		release, err := p.acquire(c, 1, 4<<20, time.Time{})
		if (err != nil) != (c == cancelled) {
			t.Fatalf("acquire %d: %v", i, err)
		}
		if err == nil {
			release()
		}
	}
	if len(slept) != 3 || slept[0] <= 0 || slept[1] <= slept[0] || slept[2]-slept[1] > time.Millisecond || slept[1]-slept[2] > time.Millisecond {
		t.Errorf("waits %v, want a debt, a longer one (abandoned), then the same again", slept)
	}
}
