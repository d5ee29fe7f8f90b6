package exchange

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailferry/mailferry/exchange/exchangetest"
	"github.com/mailferry/mailferry/migrate"
)

func TestSetFlags(t *testing.T) {
	e := newEnv(t, nil)
	id := e.put(t, e.wellKnown(t, "inbox"), message("INBOX", 1, sampleMIME("<flags@example.org>", "flags"), "Work"))
	if err := e.mb.SetFlags(t.Context(), id, []migrate.Flag{migrate.FlagSeen, migrate.FlagFlagged, "Later"}); err != nil {
		t.Fatal(err)
	}
	got, _ := e.srv.Message(testUser, id)
	if !got.IsRead || got.FlagStatus != "flagged" || !slices.Equal(got.Categories, []string{"Later"}) {
		t.Errorf("after SetFlags: read %v flag %q categories %q", got.IsRead, got.FlagStatus, got.Categories)
	}
	if err := e.mb.SetFlags(t.Context(), id, nil); err != nil {
		t.Fatal(err)
	}
	got, _ = e.srv.Message(testUser, id)
	if got.IsRead || got.FlagStatus != "notFlagged" || len(got.Categories) != 0 {
		t.Errorf("after SetFlags(nil): read %v flag %q categories %q", got.IsRead, got.FlagStatus, got.Categories)
	}
	if got.ExtendedProperties[WatermarkProperty] == "" {
		t.Errorf("SetFlags lost the watermark")
	}
	err := e.mb.SetFlags(t.Context(), "AAMkAGI2nosuchmessage", []migrate.Flag{migrate.FlagSeen})
	if !errors.Is(err, migrate.ErrItem) {
		t.Errorf("SetFlags of a missing item: %v, want ErrItem", err)
	}
}

// TestSetFlagsAnswered checks that SetFlags carries \Answered both ways.
func TestSetFlagsAnswered(t *testing.T) {
	e := newEnv(t, nil)
	id := e.put(t, e.wellKnown(t, "inbox"), message("INBOX", 1, sampleMIME("<a@example.org>", "a")))
	for _, flags := range [][]migrate.Flag{{migrate.FlagAnswered}, nil} {
		if err := e.mb.SetFlags(t.Context(), id, flags); err != nil {
			t.Fatal(err)
		}
		got, _ := e.srv.Message(testUser, id)
		checkFlags(t, got, flags)
	}
}

// skipClock is the real time plus what a test has skipped. An emulator
// that measures its budget windows on it (exchangetest.Options.Now) sees
// a client's injected sleeps pass at once, and real time go by as usual:
// the client computes its pauses on the real clock, and each pause it
// sleeps moves the emulator at least as far as the pause asked.
type skipClock struct{ skipped atomic.Int64 }

func (c *skipClock) Now() time.Time       { return time.Now().Add(time.Duration(c.skipped.Load())) }
func (c *skipClock) Skip(d time.Duration) { c.skipped.Add(int64(d)) }

// TestSetFlagsBatch sets flags on 22 messages and one missing item in two
// $batch requests (20 + 3) against an emulator whose budget admits 12
// requests per window: the 8 sub-requests of the first batch beyond the
// budget are throttled, sent again once their Retry-After has passed, and
// every change lands. The emulator's window (10 minutes) passes only when
// the test or the client's wait moves its clock, never while a batch is
// being served, so what is throttled does not depend on the machine's
// speed.
func TestSetFlagsBatch(t *testing.T) {
	const budget = 12
	clock := &skipClock{}
	var filling atomic.Bool
	var srv *exchangetest.Server
	var mu sync.Mutex
	batches, firstThrottled := 0, -1
	var before exchangetest.Stats
	e := newEnv(t, &envOptions{
		dates:  ReceivedDateAtImport, // the Puts' own requests only: no probe
		server: &exchangetest.Options{Budget: &exchangetest.Budget{MaxRequestsPerWindow: budget}, Now: clock.Now},
		hook: func(r *http.Request) (*http.Response, error) {
			if filling.Load() {
				// Each request of the filling starts a window of its own.
				clock.Skip(exchangetest.RequestWindow)
				return nil, nil
			}
			if strings.HasSuffix(r.URL.Path, "/$batch") {
				mu.Lock()
				defer mu.Unlock()
				if batches++; batches == 2 {
					// The first batch has been answered, and nothing
					// else has been sent since.
					firstThrottled = srv.Stats().Throttled - before.Throttled
				}
			}
			return nil, nil
		},
	})
	srv = e.srv
	// The client does not pace (Budget{}), and each wait it makes is
	// skipped on the emulator's clock rather than slept.
	e.c.retry.sleep = func(ctx context.Context, d time.Duration) error {
		clock.Skip(d)
		return ctx.Err()
	}
	ctx := t.Context()

	filling.Store(true)
	inbox := e.wellKnown(t, "inbox")
	var changes []migrate.FlagChange
	for i := range 22 {
		id := e.put(t, inbox, message("INBOX", uint32(i+1), sampleMIME(fmt.Sprintf("<b%d@example.org>", i), "b")))
		flags := []migrate.Flag{migrate.FlagSeen, migrate.FlagAnswered, "Batch"}
		if i%2 == 0 {
			flags = []migrate.Flag{migrate.FlagFlagged}
		}
		changes = append(changes, migrate.FlagChange{ItemID: id, Flags: flags})
	}
	changes = append(changes, migrate.FlagChange{ItemID: "AAMkAGnotthere", Flags: nil})
	if st := srv.Stats(); st.Throttled != 0 {
		t.Fatalf("the filling was throttled: %v", st.ThrottledBy)
	}
	filling.Store(false)
	clock.Skip(exchangetest.RequestWindow) // the filling's requests leave the window

	observedCtx, events := observed(ctx)
	before = srv.Stats()
	errs := e.mb.SetFlagsBatch(observedCtx, changes)
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
	if want := maxBatch - budget; firstThrottled != want {
		t.Errorf("the first batch had %d sub-requests throttled, want %d (%d sub-requests, a budget of %d)",
			firstThrottled, want, maxBatch, budget)
	}
	if batches < 3 {
		t.Errorf("%d batches, want at least 3 (20, the throttled ones again, 3)", batches)
	}
	throttled := after.ThrottledBy["MailboxRequests"] - before.ThrottledBy["MailboxRequests"]
	t.Logf("%d batches, %d sub-requests throttled (%d in the first batch)", batches, throttled, firstThrottled)
	var reported []migrate.Event
	for _, ev := range events() {
		if ev.Kind == migrate.EventThrottled {
			reported = append(reported, ev)
		}
	}
	if len(reported) != throttled || after.Throttled-before.Throttled != throttled {
		t.Errorf("%d throttled sub-requests (%d in all), %d EventThrottled: want each reported once",
			throttled, after.Throttled-before.Throttled, len(reported))
	}
	for _, ev := range reported {
		if ev.Wait <= 0 || ev.Wait > exchangetest.RequestWindow {
			t.Errorf("EventThrottled waits %v, want the rest of the %v window", ev.Wait, exchangetest.RequestWindow)
		}
	}
}

// TestKeywordTranslate checks DefaultKeywords through translate, and
// categories on the result.
func TestKeywordTranslate(t *testing.T) {
	kw, err := newKeywordTable(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		flags []migrate.Flag
		want  []migrate.Flag // translated
		cats  []string
	}{
		{"plain keywords", []migrate.Flag{`\Seen`, "Work", "WORK", "Family", `\Flagged`},
			[]migrate.Flag{`\Seen`, "Work", "WORK", "Family", `\Flagged`}, []string{"Work", "Family"}},
		{"Thunderbird labels", []migrate.Flag{"$label1", "$Label2", "$LABEL3", "$label4", "$label5"},
			[]migrate.Flag{"Important", "Work", "Personal", "To Do", "Later"},
			[]string{"Important", "Work", "Personal", "To Do", "Later"}},
		{"label and its category once", []migrate.Flag{"$label2", "work"}, []migrate.Flag{"Work", "work"}, []string{"Work"}},
		{"forwarded stays for the verb", []migrate.Flag{"$forwarded", migrate.FlagAnswered},
			[]migrate.Flag{"$Forwarded", migrate.FlagAnswered}, []string{}},
		{"client and filter state", []migrate.Flag{"$MDNSent", "$Junk", "$NotJunk", "Junk", "NonJunk", "notjunk", "$Phishing",
			"$SubmitPending", "$Submitted", "$Important", "$MailFlagBit0", "$MailFlagBit1", "$MailFlagBit2"}, []migrate.Flag{}, []string{}},
		{"unknown $ keywords", []migrate.Flag{"$HasAttachment", "$IsMailingList", "$label6", "Later"}, []migrate.Flag{"Later"}, []string{"Later"}},
	} {
		got := kw.translate(tc.flags)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: translate = %q, want %q", tc.name, got, tc.want)
		}
		if cats := categories(got); !slices.Equal(cats, tc.cats) {
			t.Errorf("%s: categories = %q, want %q", tc.name, cats, tc.cats)
		}
	}
	if got := categories(nil); got == nil || len(got) != 0 {
		t.Errorf("categories(nil) = %#v, want an empty, non-nil slice", got)
	}
}

// TestDefaultKeywords checks that DefaultKeywords returns a new map each
// time and that every category it names can be carried.
func TestDefaultKeywords(t *testing.T) {
	a := DefaultKeywords()
	a["$label1"] = "Changed"
	delete(a, "$label2")
	b := DefaultKeywords()
	if b["$label1"] != "Important" || b["$label2"] != "Work" {
		t.Errorf("DefaultKeywords shares its map: %v", b)
	}
	for k, v := range b {
		if v != "" && (strings.HasPrefix(v, "$") || strings.HasPrefix(v, `\`)) {
			t.Errorf("%s -> %q cannot be a category", k, v)
		}
	}
	if _, err := newKeywordTable(b); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{`\Seen`, "$x"} {
		if _, err := NewClient(&Options{Credential: &fakeCredential{tokens: []string{"x"}}, Keywords: map[string]string{"k": bad}}); err == nil {
			t.Errorf("NewClient accepted the category %q", bad)
		}
	}
}

// TestKeywordsPerClient checks that Options.Keywords changes the table of
// one Client only, for Put and for SetFlags.
func TestKeywordsPerClient(t *testing.T) {
	e := newEnv(t, &envOptions{dates: ReceivedDateAtImport})
	table := DefaultKeywords()
	table["$label1"] = "Urgent"
	table["$HasMemo"] = "Memo"
	table["Family"] = ""
	own, err := NewClient(&Options{Credential: e.cred, BaseURL: e.srv.URL(), Transport: e.srv.Client().Transport,
		Budget: &Budget{}, ReceivedDates: ReceivedDateAtImport, Keywords: table})
	if err != nil {
		t.Fatal(err)
	}
	table["$label1"] = "Changed after NewClient"
	inbox := e.wellKnown(t, "inbox")
	flags := []migrate.Flag{"$label1", "$HasMemo", "Family", "Work"}
	byDefault := e.put(t, inbox, message("INBOX", 1, sampleMIME("<kw1@example.org>", "kw1"), flags...))
	byOwn, err := own.Mailbox(testUser).Put(t.Context(), inbox, message("INBOX", 2, sampleMIME("<kw2@example.org>", "kw2"), flags...))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id   string
		want []string
	}{{byDefault, []string{"Important", "Family", "Work"}}, {byOwn, []string{"Urgent", "Memo", "Work"}}} {
		if got, _ := e.srv.Message(testUser, c.id); !slices.Equal(got.Categories, c.want) {
			t.Errorf("categories %q, want %q", got.Categories, c.want)
		}
	}
	if err := own.Mailbox(testUser).SetFlags(t.Context(), byOwn, []migrate.Flag{"$label1", "$label5"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.srv.Message(testUser, byOwn); !slices.Equal(got.Categories, []string{"Urgent", "Later"}) {
		t.Errorf("after SetFlags: categories %q, want [Urgent Later]", got.Categories)
	}
	// An empty table translates nothing: plain keywords only.
	bare, err := NewClient(&Options{Credential: e.cred, BaseURL: e.srv.URL(), Transport: e.srv.Client().Transport,
		Budget: &Budget{}, Keywords: map[string]string{}})
	if err != nil {
		t.Fatal(err)
	}
	if got := bare.keywords.translate(flags); !slices.Equal(got, []migrate.Flag{"Family", "Work"}) {
		t.Errorf("empty table: %q", got)
	}
}

// TestSetFlagsForwarded checks the last verb of $Forwarded against
// \Answered, set and cleared by SetFlags and by SetFlagsBatch.
func TestSetFlagsForwarded(t *testing.T) {
	e := newEnv(t, &envOptions{dates: ReceivedDateAtImport})
	inbox := e.wellKnown(t, "inbox")
	id := e.put(t, inbox, message("INBOX", 1, sampleMIME("<fwd@example.org>", "fwd"), "$Forwarded"))
	if got, _ := e.srv.Message(testUser, id); got.LastVerbExecuted != 104 || len(got.Categories) != 0 {
		t.Errorf("imported with $Forwarded: last verb %d, categories %q; want 104, none", got.LastVerbExecuted, got.Categories)
	}
	steps := []struct {
		flags []migrate.Flag
		verb  int
	}{
		{[]migrate.Flag{migrate.FlagAnswered, "$forwarded"}, 102}, // \Answered wins
		{[]migrate.Flag{"$Forwarded", migrate.FlagSeen}, 104},
		{nil, 0},
		{[]migrate.Flag{"$FORWARDED"}, 104},
		{[]migrate.Flag{migrate.FlagAnswered}, 102},
		{[]migrate.Flag{"$Forwarded"}, 104},
		{[]migrate.Flag{migrate.FlagSeen}, 0},
	}
	for i, st := range steps {
		var err error
		if i%2 == 0 {
			err = e.mb.SetFlags(t.Context(), id, st.flags)
		} else {
			err = e.mb.SetFlagsBatch(t.Context(), []migrate.FlagChange{{ItemID: id, Flags: st.flags}})[0]
		}
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got, _ := e.srv.Message(testUser, id); got.LastVerbExecuted != st.verb {
			t.Errorf("step %d, flags %v: last verb %d, want %d", i, st.flags, got.LastVerbExecuted, st.verb)
		}
	}
}

// TestItemFlagsProperties checks the one JSON encoding of flags, which the
// PATCH after an import, SetFlags, SetFlagsBatch and the JSON create
// share.
func TestItemFlagsProperties(t *testing.T) {
	const lastVerb = `{"id":"` + LastVerbProperty + `","value":`
	wm := extendedProperty{WatermarkProperty, "INBOX/42/1"}
	for _, tc := range []struct {
		name    string
		flags   []migrate.Flag
		replace bool
		extra   []extendedProperty
		want    string
	}{
		{"import", []migrate.Flag{`\seen`, "Work", "$MDNSent"}, false, []extendedProperty{wm},
			`{"categories":["Work"],"flag":{"flagStatus":"notFlagged"},"isRead":true,` +
				`"singleValueExtendedProperties":[{"id":"` + WatermarkProperty + `","value":"INBOX/42/1"}]}`},
		{"import answered", []migrate.Flag{migrate.FlagAnswered, migrate.FlagFlagged}, false, []extendedProperty{wm},
			`{"categories":[],"flag":{"flagStatus":"flagged"},"isRead":false,` +
				`"singleValueExtendedProperties":[{"id":"` + WatermarkProperty + `","value":"INBOX/42/1"},` + lastVerb + `"102"}]}`},
		{"import forwarded", []migrate.Flag{`\seen`, "Work", "$Forwarded"}, false, []extendedProperty{wm},
			`{"categories":["Work"],"flag":{"flagStatus":"notFlagged"},"isRead":true,` +
				`"singleValueExtendedProperties":[{"id":"` + WatermarkProperty + `","value":"INBOX/42/1"},` + lastVerb + `"104"}]}`},
		{"import answered and forwarded", []migrate.Flag{"$Forwarded", migrate.FlagAnswered}, false, nil,
			`{"categories":[],"flag":{"flagStatus":"notFlagged"},"isRead":false,"singleValueExtendedProperties":[` + lastVerb + `"102"}]}`},
		{"set flags", nil, true, nil,
			`{"categories":[],"flag":{"flagStatus":"notFlagged"},"isRead":false,"singleValueExtendedProperties":[` + lastVerb + `"0"}]}`},
		{"set flags answered", []migrate.Flag{`\ANSWERED`}, true, nil,
			`{"categories":[],"flag":{"flagStatus":"notFlagged"},"isRead":false,"singleValueExtendedProperties":[` + lastVerb + `"102"}]}`},
		{"set flags forwarded", []migrate.Flag{"$forwarded"}, true, nil,
			`{"categories":[],"flag":{"flagStatus":"notFlagged"},"isRead":false,"singleValueExtendedProperties":[` + lastVerb + `"104"}]}`},
		{"create, no verb", nil, false, nil,
			`{"categories":[],"flag":{"flagStatus":"notFlagged"},"isRead":false}`},
	} {
		got, err := json.Marshal(newItemFlags(tc.flags).properties(tc.replace, tc.extra...))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want {
			t.Errorf("%s:\n%s\nwant\n%s", tc.name, got, tc.want)
		}
	}
}
