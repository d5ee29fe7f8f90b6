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
	"github.com/mailferry/mailferry/migrate/migratetest"
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
		d := b.reserve(1)
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
	if d := u.reserve(4 << 20); d <= 0 {
		t.Errorf("a 4 MB upload right away does not wait for its debt: %v", d)
	}
}

// TestThrottleEventsAndPause checks that each 429 becomes an
// EventThrottled with its reason and wait, and that it holds every
// request of that mailbox, and only of that mailbox.
func TestThrottleEventsAndPause(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	e.srv.AddMailbox("bob@contoso.com")
	var mu sync.Mutex
	var events []migrate.Event
	e.mb.Observe(func(ev migrate.Event) {
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
	})
	inbox := e.wellKnown(t, "inbox")
	e.srv.FailNext(1, http.StatusTooManyRequests, 3*time.Second)
	if _, err := e.mb.Put(ctx, inbox, message("INBOX", 1, sampleMIME("<t1@example.org>", "t1"))); err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || events[0].Kind != migrate.EventThrottled || events[0].Bytes != 3000 ||
		!strings.Contains(events[0].Reason, "429 ApplicationThrottled") {
		t.Fatalf("events %+v, want one EventThrottled of 3000 ms", events)
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
	if _, err := e.c.Mailbox("bob@contoso.com").EnsureFolder(ctx, "", "Inbox", migrate.RoleInbox); err != nil {
		t.Fatal(err)
	}
	if len(e.waits) != 0 {
		t.Errorf("another mailbox waited %v", e.waits)
	}
}

// TestPacerConcurrency checks that no more than Budget.Concurrent
// requests of a mailbox are in flight, so that the emulator's 4-request
// budget never answers 429 to 12 concurrent Puts.
func TestPacerConcurrency(t *testing.T) {
	srv := exchangetest.NewServer(&exchangetest.Options{
		Budgets: &exchangetest.Budgets{Concurrent: 4}, Latency: 5 * time.Millisecond,
	})
	t.Cleanup(srv.Close)
	srv.AddMailbox(testUser)
	c, err := NewClient(&Options{Credential: &fakeCredential{tokens: []string{"t"}}, BaseURL: srv.URL(),
		HTTPClient: srv.Client(), Budget: &Budget{Concurrent: 4}})
	if err != nil {
		t.Fatal(err)
	}
	mb := c.Mailbox(testUser)
	ctx := context.Background()
	inbox, err := mb.EnsureFolder(ctx, "", "Inbox", migrate.RoleInbox)
	if err != nil {
		t.Fatal(err)
	}
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

// TestSetFlagsBatch sets flags on 25 messages in two $batch requests, with
// some sub-requests throttled by the emulator's request budget: they are
// sent again after their Retry-After and every change lands.
func TestSetFlagsBatch(t *testing.T) {
	srv := exchangetest.NewServer(&exchangetest.Options{
		Budgets: &exchangetest.Budgets{RequestsPer10Min: 12}, TimeScale: 1200, // 12 per 500 ms
	})
	t.Cleanup(srv.Close)
	srv.AddMailbox(testUser)
	newClient := func(b *Budget) *Mailbox {
		c, err := NewClient(&Options{Credential: &fakeCredential{tokens: []string{"t"}}, BaseURL: srv.URL(),
			HTTPClient: srv.Client(), Budget: b})
		if err != nil {
			t.Fatal(err)
		}
		return c.Mailbox(testUser)
	}
	// The messages are put within the emulator's budget...
	filler := newClient(&Budget{Requests: 12, RequestWindow: 500 * time.Millisecond})
	ctx := context.Background()
	inbox, err := filler.EnsureFolder(ctx, "", "Inbox", migrate.RoleInbox)
	if err != nil {
		t.Fatal(err)
	}
	var changes []migrate.FlagChange
	for i := range 22 {
		id, err := filler.Put(ctx, inbox, message("INBOX", uint32(i+1), sampleMIME(fmt.Sprintf("<b%d@example.org>", i), "b")))
		if err != nil {
			t.Fatal(err)
		}
		flags := []migrate.Flag{migrate.FlagSeen, migrate.FlagAnswered, "Batch"}
		if i%2 == 0 {
			flags = []migrate.Flag{migrate.FlagFlagged}
		}
		changes = append(changes, migrate.FlagChange{ItemID: id, Flags: flags})
	}
	changes = append(changes, migrate.FlagChange{ItemID: "AAMkAGnotthere", Flags: nil})
	time.Sleep(500 * time.Millisecond)

	// ...and their flags set by a client that does not pace, so that the
	// emulator throttles sub-requests of the first batch.
	mb := newClient(&Budget{})
	var mu sync.Mutex
	throttled := 0
	mb.Observe(func(ev migrate.Event) {
		mu.Lock()
		throttled++
		mu.Unlock()
	})
	before := srv.Stats()
	errs := mb.SetFlagsBatch(ctx, changes)
	after := srv.Stats()
	n := len(changes) - 1
	for i, err := range errs[:n] {
		if err != nil {
			t.Errorf("change %d: %v", i, err)
			continue
		}
		got, _ := srv.Message(testUser, changes[i].ItemID)
		checkFlags(t, got, changes[i].Flags)
	}
	if err := errs[n]; err == nil || !strings.Contains(err.Error(), "ErrorItemNotFound") {
		t.Errorf("change of a missing item: %v", err)
	}
	if batches := after.ByRoute["POST /$batch"] - before.ByRoute["POST /$batch"]; batches < 3 {
		t.Errorf("%d batches, want at least 3 (20 + 3, and a retry)", batches)
	}
	if after.Throttled == before.Throttled || throttled == 0 {
		t.Errorf("no sub-request was throttled (stats %d, events %d): the test does not test retries", after.Throttled-before.Throttled, throttled)
	}
}

// TestFindMessageIDPages finds more copies of one Message-ID than one page
// holds.
func TestFindMessageIDPages(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	inbox := e.wellKnown(t, "inbox")
	raw := sampleMIME("<many@example.org>", "many")
	for i := range findPageSize + 5 {
		if _, err := e.mb.Put(ctx, inbox, message("INBOX", uint32(i+1), raw)); err != nil {
			t.Fatal(err)
		}
	}
	ids, err := e.mb.FindMessageID(ctx, inbox, "<many@example.org>")
	if err != nil || len(ids) != findPageSize+5 {
		t.Errorf("FindMessageID: %d ids, %v; want %d", len(ids), err, findPageSize+5)
	}
}

// TestSetFlagsAnswered checks that SetFlags carries \Answered both ways.
func TestSetFlagsAnswered(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	id, err := e.mb.Put(ctx, e.wellKnown(t, "inbox"), message("INBOX", 1, sampleMIME("<a@example.org>", "a")))
	if err != nil {
		t.Fatal(err)
	}
	for _, flags := range [][]migrate.Flag{{migrate.FlagAnswered}, nil} {
		if err := e.mb.SetFlags(ctx, id, flags); err != nil {
			t.Fatal(err)
		}
		got, _ := e.srv.Message(testUser, id)
		checkFlags(t, got, flags)
	}
}

func TestFolderDisplayName(t *testing.T) {
	long := strings.Repeat("é", 300)
	for _, tc := range []struct{ in, want string }{
		{"Projects", "Projects"},
		{"100% done", "100% done"},
		{"%41", "%2541"},
		{" ", "%20"},
		{"\t ", "%09%20"},
		{"a\x01b", "a%01b"},
		{"Café/Réunions", "Café/Réunions"},
	} {
		got := FolderDisplayName(tc.in)
		if got != tc.want {
			t.Errorf("FolderDisplayName(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if back := UnescapeFolderName(got); back != tc.in {
			t.Errorf("UnescapeFolderName(%q) = %q, want %q", got, back, tc.in)
		}
	}
	a, b := FolderDisplayName(long), FolderDisplayName(long+"x")
	if n := len([]rune(a)); n != maxFolderName || a == b || !strings.HasPrefix(a, strings.Repeat("é", 200)) {
		t.Errorf("long names: %d runes, distinct %v", n, a != b)
	}

	e := newEnv(t, nil)
	ctx := context.Background()
	for _, name := range []string{"  ", "%41", long} {
		id, err := e.mb.EnsureFolder(ctx, "", name, migrate.RoleNone)
		if err != nil {
			t.Fatalf("EnsureFolder(%q): %v", name, err)
		}
		if got := e.folder(t, id).DisplayName; got != FolderDisplayName(name) {
			t.Errorf("folder %q created as %q", name, got)
		}
		// A new Mailbox (a new run) finds it again.
		if again, err := e.c.Mailbox(testUser).EnsureFolder(ctx, "", name, migrate.RoleNone); err != nil || again != id {
			t.Errorf("EnsureFolder(%q) again = %q, %v; want %q", name, again, err, id)
		}
	}
}

// TestEngineSeesThrottling checks that the Engine, which observes the
// Mailbox (migrate.Observable), receives its EventThrottled events.
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
	rep := eng.Run(context.Background(), migrate.Job{Mailbox: testUser, Source: migratetest.NewSource(fx), Sink: e.mb})
	if rep.Lost() {
		t.Fatalf("migration lost messages: %+v", rep.Totals())
	}
	if len(got) != 2 || got[0].Mailbox != testUser || got[0].Bytes != 2000 || !strings.HasPrefix(got[0].Reason, "503") {
		t.Errorf("throttle events %+v, want two 503s of 2000 ms for %s", got, testUser)
	}
}
