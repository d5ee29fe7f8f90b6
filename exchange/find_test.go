package exchange

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

func TestFind(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	folder := e.folder(t, "O'Brien's", migrate.RoleNone)
	msgID := "<o'brien.1@example.org>"
	m := message("Folder 'quoted'/x", 7, sampleMIME(msgID, "find me"))
	id := e.put(t, folder, m)
	m2 := message("Folder 'quoted'/x", 8, sampleMIME("<other@example.org>", "other"))
	id2 := e.put(t, folder, m2)

	if got, err := e.mb.FindWatermark(ctx, folder, m.ID); err != nil || got != id {
		t.Errorf("FindWatermark = %q, %v; want %q", got, err, id)
	}
	if got, err := e.mb.FindWatermark(ctx, folder, m2.ID); err != nil || got != id2 {
		t.Errorf("FindWatermark(2nd) = %q, %v; want %q", got, err, id2)
	}
	absent := m.ID
	absent.UID = 9999
	if got, err := e.mb.FindWatermark(ctx, folder, absent); err != nil || got != "" {
		t.Errorf("FindWatermark(absent) = %q, %v; want nothing", got, err)
	}
	inbox := e.wellKnown(t, "inbox")
	if got, err := e.mb.FindWatermark(ctx, inbox, m.ID); err != nil || got != "" {
		t.Errorf("FindWatermark in another folder = %q, %v; want nothing", got, err)
	}

	want := []migrate.FoundItem{{ItemID: id, Watermark: m.ID}}
	if found, err := e.mb.FindMessageID(ctx, folder, msgID); err != nil || !slices.Equal(found, want) {
		t.Errorf("FindMessageID = %v, %v; want %v", found, err, want)
	}
	if ids, err := e.mb.FindMessageID(ctx, folder, "<nope@example.org>"); err != nil || len(ids) != 0 {
		t.Errorf("FindMessageID(absent) = %v, %v; want none", ids, err)
	}
}

// TestFindMessageIDPages finds more copies of one Message-ID than one page
// holds.
func TestFindMessageIDPages(t *testing.T) {
	e := newEnv(t, nil)
	inbox := e.wellKnown(t, "inbox")
	raw := sampleMIME("<many@example.org>", "many")
	for i := range findPageSize + 5 {
		e.put(t, inbox, message("INBOX", uint32(i+1), raw))
	}
	ids, err := e.mb.FindMessageID(t.Context(), inbox, "<many@example.org>")
	if err != nil || len(ids) != findPageSize+5 {
		t.Errorf("FindMessageID: %d ids, %v; want %d", len(ids), err, findPageSize+5)
	}
}

// createRaw creates a message in folder with POST .../messages and the
// given extended properties (extended property id to value), as a Put
// stopped halfway may leave one, and returns its id.
func (e *env) createRaw(t testing.TB, folder, messageID string, props map[string]string) string {
	t.Helper()
	create := map[string]any{
		"subject": "raw " + messageID, "internetMessageId": messageID,
		"body": map[string]string{"contentType": "text", "content": "hi"},
	}
	var eps []extendedProperty
	for k, v := range props {
		eps = append(eps, extendedProperty{k, v})
	}
	if len(eps) > 0 {
		create["singleValueExtendedProperties"] = eps
	}
	var out struct {
		ID string `json:"id"`
	}
	if err := e.mb.send(e.mb.scoped(t.Context()), http.MethodPost, folderMessagesPath, map[string]string{"folder": folder}, create, &out); err != nil || out.ID == "" {
		t.Fatalf("create %s: %q, %v", messageID, out.ID, err)
	}
	return out.ID
}

// TestFindMessageIDStamps: FindMessageID reports each item with its
// watermark (none for an unstamped one) and leaves out a partial copy,
// stamped PendingProperty alone, which must never be adopted.
func TestFindMessageIDStamps(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	inbox := e.wellKnown(t, "inbox")
	const msgID = "<shared@example.org>"
	one := message("INBOX", 1, sampleMIME(msgID, "one"))
	stamped := e.put(t, inbox, one)
	unstamped := e.createRaw(t, inbox, msgID, nil)
	two := message("INBOX", 2, sampleMIME(msgID, "two"))
	partial := e.createRaw(t, inbox, msgID, map[string]string{PendingProperty: two.ID.String()})
	// Complete, its pending stamp left on it: it counts.
	three := message("INBOX", 3, sampleMIME(msgID, "three"))
	finished := e.createRaw(t, inbox, msgID, map[string]string{PendingProperty: three.ID.String(), WatermarkProperty: three.ID.String()})

	found, err := e.mb.FindMessageID(ctx, inbox, msgID)
	want := []migrate.FoundItem{{ItemID: stamped, Watermark: one.ID}, {ItemID: unstamped}, {ItemID: finished, Watermark: three.ID}}
	if err != nil || !slices.Equal(found, want) {
		t.Errorf("FindMessageID = %+v, %v; want %+v (not the partial copy %s)", found, err, want, partial)
	}
	if st := e.srv.Stats(); st.ByRoute["GET /users/{user}/mailFolders/{id}/messages"] != 2 {
		t.Errorf("requests: %v; want 2 listings (watermarks, then pending stamps)", st.ByRoute)
	}
}

// TestListWatermarks: one listing of a folder reports every stamped
// message with its SourceID, whatever source folder it names, and nothing
// else: not an unstamped message, not a partial copy, not a message of
// another folder. An error of fn stops it and comes back unchanged.
func TestListWatermarks(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	folder := e.folder(t, "Merged", migrate.RoleNone)
	want := map[migrate.SourceID]string{}
	for i, src := range []string{"A", "A", "B/ünï", "A"} {
		m := message(src, uint32(i+1), sampleMIME(fmt.Sprintf("<l%d@example.org>", i), "listed"))
		want[m.ID] = e.put(t, folder, m)
	}
	// The JSON path, an attachment after the create: stamped pending,
	// then with its watermark.
	large := genPut(genMessage(11, 2<<20, 2<<20), 9)
	want[large.ID] = e.put(t, folder, large)
	if m, _ := e.srv.Message(testUser, want[large.ID]); m.ExtendedProperties[PendingProperty] == "" {
		t.Fatalf("the large message was built in one request: %v", m.ExtendedProperties)
	}
	e.createRaw(t, folder, "<unstamped@example.org>", nil)
	e.createRaw(t, folder, "<partial@example.org>", map[string]string{PendingProperty: "42/77/A"})
	e.put(t, e.wellKnown(t, "inbox"), message("A", 99, sampleMIME("<elsewhere@example.org>", "elsewhere")))

	got := map[migrate.SourceID]string{}
	err := e.mb.ListWatermarks(ctx, folder, func(id migrate.SourceID, itemID string) error {
		if _, dup := got[id]; dup {
			t.Errorf("%v reported twice", id)
		}
		got[id] = itemID
		return nil
	})
	if err != nil || !maps.Equal(got, want) {
		t.Errorf("ListWatermarks = %v, %v; want %v", got, err, want)
	}
	stop := errors.New("stop")
	if err := e.mb.ListWatermarks(ctx, folder, func(migrate.SourceID, string) error { return stop }); err != stop {
		t.Errorf("ListWatermarks with fn failing: %v, want fn's error unchanged", err)
	}
}

// TestListItems: one listing reports every stamped message with its
// SourceID and every message without a watermark with its Message-ID,
// and not a partial copy or a message of another folder; two requests
// when some messages carry no watermark (the second finds the partial
// copies), one when none does. An error of fn comes back unchanged.
func TestListItems(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	folder := e.folder(t, "Merged", migrate.RoleNone)
	list := func() (map[string]migrate.ListedItem, int) {
		t.Helper()
		got := map[string]migrate.ListedItem{}
		before := e.srv.Stats().Requests
		err := e.mb.ListItems(ctx, folder, func(it migrate.ListedItem) error {
			if _, dup := got[it.ItemID]; dup {
				t.Errorf("%s reported twice", it.ItemID)
			}
			got[it.ItemID] = it
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got, e.srv.Stats().Requests - before
	}
	m := message("A", 1, sampleMIME("<stamped@example.org>", "stamped"))
	stamped := e.put(t, folder, m)
	e.put(t, e.wellKnown(t, "inbox"), message("A", 99, sampleMIME("<elsewhere@example.org>", "elsewhere")))
	got, reqs := list()
	want := map[string]migrate.ListedItem{stamped: {ItemID: stamped, Watermark: m.ID, MessageID: "<stamped@example.org>"}}
	if !maps.Equal(got, want) || reqs != 1 {
		t.Errorf("all stamped: %v in %d requests; want %v in 1", got, reqs, want)
	}

	unstamped := e.createRaw(t, folder, "<unstamped@example.org>", nil)
	e.createRaw(t, folder, "<partial@example.org>", map[string]string{PendingProperty: "42/77/A"})
	got, reqs = list()
	want[unstamped] = migrate.ListedItem{ItemID: unstamped, MessageID: "<unstamped@example.org>"}
	if !maps.Equal(got, want) || reqs != 2 {
		t.Errorf("some unstamped: %v in %d requests; want %v in 2 (not the partial copy)", got, reqs, want)
	}
	stop := errors.New("stop")
	if err := e.mb.ListItems(ctx, folder, func(migrate.ListedItem) error { return stop }); err != stop {
		t.Errorf("ListItems with fn failing: %v, want fn's error unchanged", err)
	}
}

// TestListWatermarksCost measures ListWatermarks on a folder of 1,000
// stamped messages, then 1,005: one request per page of 1,000.
func TestListWatermarksCost(t *testing.T) {
	e := newEnv(t, nil)
	folder := e.folder(t, "Big", migrate.RoleNone)
	fill := func(from, to int) {
		for uid := from; uid < to; uid++ {
			id := migrate.SourceID{Folder: "INBOX", UIDValidity: 7, UID: uint32(uid)}
			e.createRaw(t, folder, fmt.Sprintf("<c%d@example.org>", uid), map[string]string{WatermarkProperty: id.String()})
		}
	}
	count := func() (reported, requests int) {
		before := e.srv.Stats().Requests
		err := e.mb.ListWatermarks(t.Context(), folder, func(migrate.SourceID, string) error { reported++; return nil })
		if err != nil {
			t.Fatal(err)
		}
		return reported, e.srv.Stats().Requests - before
	}
	fill(1, 1001)
	n, reqs := count()
	t.Logf("ListWatermarks: %d messages in %d requests", n, reqs)
	if n != 1000 || reqs != 1 {
		t.Errorf("1,000 messages: %d reported in %d requests, want 1,000 in 1", n, reqs)
	}
	fill(1001, 1006)
	if n, reqs := count(); n != 1005 || reqs != 2 {
		t.Errorf("1,005 messages: %d reported in %d requests, want 1,005 in 2", n, reqs)
	}
}

// TestEngineRebuildsStateFromMailbox: a rerun whose State is gone copies
// nothing: it finds every message in the mailbox by its watermark, one
// listing per folder, and sets the source's flags on each once.
func TestEngineRebuildsStateFromMailbox(t *testing.T) {
	e := newEnv(t, nil)
	fx := migratetest.Sample()
	src := migratetest.NewSource(fx)
	job := migrate.Job{Mailbox: testUser, Source: src, Sink: e.mb}
	if rep := migrate.NewEngine(nil).Run(t.Context(), job); rep.Lost() {
		t.Fatalf("first run: %+v", rep.Mailboxes[0])
	}
	// Read on the source since.
	if err := src.SetFlags("INBOX", 4, []migrate.Flag{migrate.FlagSeen}); err != nil {
		t.Fatal(err)
	}
	fx.Folders[0].Messages[3].Flags = []migrate.Flag{migrate.FlagSeen}
	before := e.srv.Stats()

	job.Sink = e.c.Mailbox(testUser) // a new process, with a new, empty State
	rep := migrate.NewEngine(nil).Run(t.Context(), job)
	if tot := rep.Totals(); rep.Lost() || tot.Copied != 0 || tot.FoundOnTarget != fx.Count() {
		t.Fatalf("rerun without state: %s, %+v", rep.Mailboxes[0].Status, tot)
	}
	for _, d := range e.srv.CheckFixture(testUser, fx) {
		t.Error(d)
	}
	after := e.srv.Stats()
	const list = "GET /users/{user}/mailFolders/{id}/messages"
	lists := after.ByRoute[list] - before.ByRoute[list]
	t.Logf("rerun without state: %d requests for %d messages in %d folders (%d listings, %d $batch)",
		after.Requests-before.Requests, fx.Count(), len(fx.Folders), lists, after.ByRoute["POST /$batch"]-before.ByRoute["POST /$batch"])
	if lists != len(fx.Folders) {
		t.Errorf("%d listings of messages, want one per folder (%d)", lists, len(fx.Folders))
	}
	for route, n := range after.ByRoute {
		if n != before.ByRoute[route] && (strings.Contains(route, "importMime") || strings.HasPrefix(route, "POST /users/{user}/mailFolders/{id}/messages")) {
			t.Errorf("the rerun created messages: %s %d times", route, n-before.ByRoute[route])
		}
	}
}
