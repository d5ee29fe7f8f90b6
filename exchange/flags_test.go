package exchange

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
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

// TestSetFlagsBatch sets flags on 25 messages in two $batch requests, with
// some sub-requests throttled by the emulator's request budget: they are
// sent again after their Retry-After and every change lands.
func TestSetFlagsBatch(t *testing.T) {
	srv := newServer(t, &exchangetest.Options{
		Budget: &exchangetest.Budget{MaxRequestsPerWindow: 12}, TimeScale: 1200, // 12 per 500 ms
	})
	// The messages are put within the emulator's budget...
	filler := newMailbox(t, srv, &Budget{MaxRequestsPerWindow: 12, RequestWindow: 500 * time.Millisecond})
	ctx := t.Context()
	inbox := ensureFolder(t, filler, "", "Inbox", migrate.RoleInbox)
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
	mb := newMailbox(t, srv, &Budget{})
	observedCtx, events := observed(ctx)
	before := srv.Stats()
	errs := mb.SetFlagsBatch(observedCtx, changes)
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
	if throttled := len(events()); after.Throttled == before.Throttled || throttled == 0 {
		t.Errorf("no sub-request was throttled (stats %d, events %d): the test does not test retries", after.Throttled-before.Throttled, throttled)
	}
}

func TestCategories(t *testing.T) {
	got := categories([]migrate.Flag{`\Seen`, "Work", "$Label1", "WORK", "Family", `\Flagged`, "NonJunk"})
	if want := []string{"Work", "Family", "NonJunk"}; !slices.Equal(got, want) {
		t.Errorf("categories = %q, want %q", got, want)
	}
	if got := categories(nil); got == nil || len(got) != 0 {
		t.Errorf("categories(nil) = %#v, want an empty, non-nil slice", got)
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
		{"import", []migrate.Flag{`\seen`, "Work", "$Forwarded"}, false, []extendedProperty{wm},
			`{"categories":["Work"],"flag":{"flagStatus":"notFlagged"},"isRead":true,` +
				`"singleValueExtendedProperties":[{"id":"` + WatermarkProperty + `","value":"INBOX/42/1"}]}`},
		{"import answered", []migrate.Flag{migrate.FlagAnswered, migrate.FlagFlagged}, false, []extendedProperty{wm},
			`{"categories":[],"flag":{"flagStatus":"flagged"},"isRead":false,` +
				`"singleValueExtendedProperties":[{"id":"` + WatermarkProperty + `","value":"INBOX/42/1"},` + lastVerb + `"102"}]}`},
		{"set flags", nil, true, nil,
			`{"categories":[],"flag":{"flagStatus":"notFlagged"},"isRead":false,"singleValueExtendedProperties":[` + lastVerb + `"0"}]}`},
		{"set flags answered", []migrate.Flag{`\ANSWERED`}, true, nil,
			`{"categories":[],"flag":{"flagStatus":"notFlagged"},"isRead":false,"singleValueExtendedProperties":[` + lastVerb + `"102"}]}`},
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
