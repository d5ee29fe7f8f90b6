package exchange

import (
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mailferry/mailferry/exchange/exchangetest"
	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

// TestJSONPutResumesAfterCrash leaves a partial JSON-path copy behind,
// as a process killed during its uploads would, and checks that the next
// Put replaces it: one complete copy, never found by watermark before it
// is complete.
func TestJSONPutResumesAfterCrash(t *testing.T) {
	ctx := t.Context()
	var puts, failDeletes atomic.Int32
	failDeletes.Store(1)
	e := newEnv(t, &envOptions{hook: func(r *http.Request) (*http.Response, error) {
		if r.Method == http.MethodPut && puts.Add(1) == 2 {
			return nil, errors.New("killed") // not retried: the run dies here
		}
		if r.Method == http.MethodDelete && failDeletes.Load() == 1 {
			return nil, errors.New("killed")
		}
		return nil, nil
	}})
	inbox := e.wellKnown(t, "inbox")
	tm := genMessage(5, 5<<20)
	m := genPut(tm, 5, migrate.FlagSeen)
	if _, err := e.mb.Put(ctx, inbox, m); err == nil {
		t.Fatal("Put survived its kill")
	}
	msgs := e.srv.Messages(testUser)
	if len(msgs) != 1 || msgs[0].ExtendedProperties[PendingProperty] != m.ID.String() {
		t.Fatalf("want one partial copy marked pending, have %d messages", len(msgs))
	}
	if id, err := e.mb.FindWatermark(ctx, inbox, m.ID); err != nil || id != "" {
		t.Errorf("FindWatermark found the partial copy: %q, %v", id, err)
	}
	failDeletes.Store(0)
	m = genPut(tm, 5, migrate.FlagSeen)
	id, err := e.c.Mailbox(testUser).Put(ctx, inbox, m)
	if err != nil {
		t.Fatal(err)
	}
	if msgs := e.srv.Messages(testUser); len(msgs) != 1 || msgs[0].ID != id {
		t.Fatalf("%d messages after the rerun, want exactly the new one", len(msgs))
	}
	checkJSONCopy(t, e, id, tm, m)
	// Once complete, a Put of the same message (a rerun that crashed
	// before its commit) finds it instead of copying it again.
	if found, err := e.mb.FindWatermark(ctx, inbox, m.ID); err != nil || found != id {
		t.Errorf("FindWatermark = %q, %v; want %q", found, err, id)
	}
}

// TestJSONPutErrors checks the classification of the JSON path's
// failures: a message over the mailbox's size limit is an item error and
// leaves nothing behind; a user without a mailbox is a mailbox error.
func TestJSONPutErrors(t *testing.T) {
	e := newEnv(t, &envOptions{server: &exchangetest.Options{MaxMessageBytes: 6 << 20}})
	ctx := t.Context()
	tm := genMessage(9, 4<<20, 4<<20)
	_, err := e.mb.Put(ctx, e.wellKnown(t, "inbox"), genPut(tm, 9))
	if !errors.Is(err, migrate.ErrItem) || !strings.Contains(err.Error(), "ErrorMessageSizeExceeded") {
		t.Errorf("Put over the size limit: %v, want ErrItem ErrorMessageSizeExceeded", err)
	}
	if n := len(e.srv.Messages(testUser)); n != 0 {
		t.Errorf("%d messages left behind", n)
	}
	e.srv.AddUserWithoutMailbox("guest@contoso.com")
	_, err = e.c.Mailbox("guest@contoso.com").Put(ctx, "inbox", genPut(tm, 9))
	if !errors.Is(err, migrate.ErrMailbox) || !strings.Contains(err.Error(), "MailboxNotEnabledForRESTAPI") {
		t.Errorf("Put for a user without a mailbox: %v, want ErrMailbox", err)
	}
	_, err = e.c.Mailbox("nobody@contoso.com").Put(ctx, "inbox", genPut(genMessage(10), 10))
	if !errors.Is(err, migrate.ErrMailbox) || !strings.Contains(err.Error(), "ErrorInvalidUser") {
		t.Errorf("Put for a user that does not exist: %v, want ErrMailbox", err)
	}
}

// TestEngineJSONCrashBetweenPutAndCommit runs the Engine over a folder
// with a large (JSON path) message whose commit is lost, then again from
// the reopened state: the rerun repairs it by watermark and the mailbox
// holds exactly one copy of each message.
func TestEngineJSONCrashBetweenPutAndCommit(t *testing.T) {
	e := newEnv(t, nil)
	large := genMessage(8, 4<<20)
	fx := &migratetest.Fixture{Folders: []migratetest.FixtureFolder{{Path: []string{"INBOX"}, Role: migrate.RoleInbox,
		Messages: []migratetest.FixtureMessage{
			{Raw: sampleMIME("<s1@example.org>", "s1"), InternalDate: testInternalDate},
			{Raw: large.raw, Flags: []migrate.Flag{migrate.FlagSeen}, InternalDate: testInternalDate},
			{Raw: sampleMIME("<s3@example.org>", "s3"), InternalDate: testInternalDate},
		}}}}
	src := migratetest.NewSource(fx)
	job := migrate.Job{Mailbox: testUser, Source: src, Sink: e.mb}
	// The resumed run is a new process, with a new Mailbox value.
	rep := migratetest.CrashAndResume(t, job, func(id migrate.SourceID) bool { return id.UID == 2 }, e.c.Mailbox(testUser))
	// UID 2 at least; a Put in flight beside it may also have been stored
	// uncommitted when the run stopped.
	if rep.Lost() || rep.Totals().Repaired < 1 {
		t.Fatalf("rerun: %+v", rep.Totals())
	}
	msgs := e.srv.Messages(testUser)
	if len(msgs) != 3 {
		t.Fatalf("%d messages in the mailbox, want 3", len(msgs))
	}
	for _, m := range msgs {
		if m.InternetMessageID == large.messageID && len(m.Attachments) != len(large.atts) {
			t.Errorf("the large message has %d attachments, want %d", len(m.Attachments), len(large.atts))
		}
	}
}

// TestEngineRepairSkipsPartialCopy: a run stops while a large message's
// attachments are uploading, leaving a partial copy (PendingProperty, no
// watermark) that carries the message's Message-ID. The rerun must not
// take it for the message's copy: it copies the message again, and Put
// deletes the partial copy first. One complete copy of each message.
func TestEngineRepairSkipsPartialCopy(t *testing.T) {
	var puts atomic.Int32
	var killing atomic.Bool
	killing.Store(true)
	e := newEnv(t, &envOptions{hook: func(r *http.Request) (*http.Response, error) {
		if !killing.Load() {
			return nil, nil
		}
		if (r.Method == http.MethodPut && puts.Add(1) == 2) || r.Method == http.MethodDelete {
			return nil, errors.New("killed") // the run dies here
		}
		return nil, nil
	}})
	large := genMessage(13, 5<<20)
	fx := &migratetest.Fixture{Folders: []migratetest.FixtureFolder{{Path: []string{"INBOX"}, Role: migrate.RoleInbox,
		Messages: []migratetest.FixtureMessage{
			{Raw: sampleMIME("<p1@example.org>", "p1"), InternalDate: testInternalDate},
			{Raw: large.raw, Flags: []migrate.Flag{migrate.FlagSeen}, InternalDate: testInternalDate},
			{Raw: sampleMIME("<p3@example.org>", "p3"), InternalDate: testInternalDate},
		}}}}
	st := migrate.NewMemoryState()
	job := migrate.Job{Mailbox: testUser, Source: migratetest.NewSource(fx), Sink: e.mb}
	if rep := migrate.NewEngine(&migrate.Options{State: st, MaxPutsPerMailbox: 1}).Run(t.Context(), job); !rep.Lost() {
		t.Fatalf("the run survived its kill: %+v", rep.Totals())
	}
	msgs := e.srv.Messages(testUser)
	if len(msgs) != 2 || msgs[1].ExtendedProperties[PendingProperty] == "" || msgs[1].ExtendedProperties[WatermarkProperty] != "" {
		t.Fatalf("want p1 and a partial copy of the large message, have %d messages", len(msgs))
	}

	killing.Store(false)
	job.Sink = e.c.Mailbox(testUser) // a new process
	rep := migrate.NewEngine(&migrate.Options{State: st}).Run(t.Context(), job)
	if tot := rep.Totals(); rep.Lost() || tot.Repaired != 0 || tot.Copied != 2 || tot.AlreadyCopied != 1 {
		t.Errorf("rerun: %+v; want the large message and p3 copied, nothing repaired", tot)
	}
	msgs = e.srv.Messages(testUser)
	if len(msgs) != 3 {
		t.Fatalf("%d messages in the mailbox, want 3", len(msgs))
	}
	for _, m := range msgs {
		if m.InternetMessageID == large.messageID && len(m.Attachments) != len(large.atts) {
			t.Errorf("the large message has %d attachments, want %d", len(m.Attachments), len(large.atts))
		}
	}
}
