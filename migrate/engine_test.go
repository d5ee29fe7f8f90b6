package migrate_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

// wantTargets is where DefaultMapper puts the Sample folders.
var wantTargets = map[string]string{
	"INBOX": "Inbox", "Sent": "Sent Items", "Drafts": "Drafts", "Trash": "Deleted Items",
	"Junk": "Junk Email", "Archive": "Archive", "Projects": "Projects", "Projects/2024": "Projects/2024",
	"Café": "Café", "Café/Réunions": "Café/Réunions",
}

// checkCopied proves, message by message, that the sink holds exactly one
// byte-identical copy of every fixture message in the right folder, with
// its flags, date and draft state.
func checkCopied(t *testing.T, fx *migratetest.Fixture, sink *migratetest.Sink) {
	t.Helper()
	items := sink.Items()
	byMIME := map[string][]migratetest.StoredItem{}
	for _, it := range items {
		byMIME[string(it.MIME)] = append(byMIME[string(it.MIME)], it)
	}
	for _, f := range fx.Folders {
		for _, m := range f.Messages {
			got := byMIME[string(m.Raw)]
			if len(got) != 1 {
				t.Errorf("%s: %d copies on the sink, want 1", m.MessageID(), len(got))
				continue
			}
			it := got[0]
			if path, want := sink.FolderPath(it.FolderID), wantTargets[strings.Join(f.Path, "/")]; path != want {
				t.Errorf("%s: in %q, want %q", m.MessageID(), path, want)
			}
			if !migrate.SameFlags(it.Flags, m.Flags) || !it.Received.Equal(m.InternalDate) {
				t.Errorf("%s: flags %v received %v, want %v %v", m.MessageID(), it.Flags, it.Received, m.Flags, m.InternalDate)
			}
		}
	}
	if len(items) != fx.Count() {
		t.Errorf("sink holds %d items, want %d", len(items), fx.Count())
	}
}

// itemOf returns the one sink item of the message whose Message-ID is
// messageID; none, or more than one, fails the test.
func itemOf(t *testing.T, sink *migratetest.Sink, messageID string) migratetest.StoredItem {
	t.Helper()
	var found []migratetest.StoredItem
	for _, it := range sink.Items() {
		if it.MessageID == messageID {
			found = append(found, it)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d items of %s on the sink, want 1", len(found), messageID)
	}
	return found[0]
}

func TestEngineCopiesEverythingOnce(t *testing.T) {
	fx := migratetest.Sample()
	src, sink := migratetest.NewSource(fx), migratetest.NewSink()
	var events []migrate.Event
	eng := migrate.NewEngine(&migrate.Options{OnEvent: func(e migrate.Event) { events = append(events, e) }})
	ctx := t.Context()

	rep := eng.Run(ctx, migrate.Job{Mailbox: "alice@example.com", Source: src, Sink: sink})
	if rep.Lost() || rep.Mailboxes[0].Status != migrate.StatusCompleted {
		t.Fatalf("first run: %+v", rep.Mailboxes[0])
	}
	checkCopied(t, fx, sink)
	if tot := rep.Totals(); tot.Copied != fx.Count() || tot.Listed != fx.Count() {
		t.Errorf("totals %+v, want %d copied", tot, fx.Count())
	}
	// A first pass reads each folder once: UIDs, then bodies with metadata.
	if src.Lists != 0 || src.UIDLists != len(fx.Folders) || rep.Mailboxes[0].Folders[0].Pass != "first" {
		t.Errorf("first pass: %d Lists, %d UID lists, pass %q", src.Lists, src.UIDLists, rep.Mailboxes[0].Folders[0].Pass)
	}
	if role := sink.FolderRole(sink.Items()[0].FolderID); role != migrate.RoleInbox {
		t.Errorf("Inbox ensured with role %q", role)
	}
	copied := 0
	for _, e := range events {
		if e.Kind == migrate.EventMessageCopied {
			copied++
		}
	}
	if copied != fx.Count() {
		t.Errorf("%d message-copied events, want %d", copied, fx.Count())
	}

	// The second run copies nothing.
	rep = eng.Run(ctx, migrate.Job{Mailbox: "alice@example.com", Source: src, Sink: sink})
	if tot := rep.Totals(); tot.Copied != 0 || tot.AlreadyCopied != fx.Count() || tot.FlagsUpdated != 0 || sink.Puts != fx.Count() {
		t.Errorf("second run: totals %+v, puts %d", tot, sink.Puts)
	}
	checkCopied(t, fx, sink)
}

// copiedOnce is the Sample copied once by an Engine with default options
// into an empty in-memory sink: the start of every test of later passes.
type copiedOnce struct {
	fx   *migratetest.Fixture
	src  *migratetest.Source
	sink *migratetest.Sink
	eng  *migrate.Engine
	job  migrate.Job
}

func copyOnce(t testing.TB) *copiedOnce {
	t.Helper()
	c := &copiedOnce{fx: migratetest.Sample(), sink: migratetest.NewSink(), eng: migrate.NewEngine(nil)}
	c.src = migratetest.NewSource(c.fx)
	c.job = migrate.Job{Mailbox: "alice", Source: c.src, Sink: c.sink}
	if rep := c.eng.Run(t.Context(), c.job); rep.Lost() {
		t.Fatalf("first pass: %+v", rep.Mailboxes[0])
	}
	return c
}

func TestEngineDeltaPass(t *testing.T) {
	c := copyOnce(t)
	src, sink, eng, job, ctx := c.src, c.sink, c.eng, c.job, t.Context()

	// A new message arrives and the user reads the first one.
	late := migratetest.FixtureMessage{Raw: []byte("Message-ID: <late@x>\r\nSubject: late\r\n\r\nhi\r\n"),
		InternalDate: time.Date(2024, 4, 1, 0, 0, 0, 0, time.UTC)}
	src.Append([]string{"INBOX"}, late)
	if err := src.SetFlags("INBOX", 4, []migrate.Flag{migrate.FlagSeen}); err != nil {
		t.Fatal(err)
	}
	rep := eng.Run(ctx, job)
	tot := rep.Totals()
	if tot.Copied != 1 || tot.FlagsUpdated != 1 {
		t.Fatalf("delta run: %+v", tot)
	}
	if it := itemOf(t, sink, c.fx.Folders[0].Messages[3].MessageID()); !migrate.SameFlags(it.Flags, []migrate.Flag{migrate.FlagSeen}) {
		t.Errorf("flags of INBOX UID 4 on the sink: %v", it.Flags)
	}
	// And a third run has nothing to do.
	if tot := eng.Run(ctx, job).Totals(); tot.Copied != 0 || tot.FlagsUpdated != 0 {
		t.Errorf("third run: %+v", tot)
	}
}

func TestEngineRepairsCrashBetweenPutAndCommit(t *testing.T) {
	t.Run("watermark", func(t *testing.T) {
		sink := migratetest.NewSink()
		testRepair(t, sink, sink)
	})
	t.Run("message-id", func(t *testing.T) {
		sink := migratetest.NewSink()
		testRepair(t, messageIDOnly{sink}, sink)
	})
}

func testRepair(t *testing.T, dst migrate.Sink, sink *migratetest.Sink) {
	fx := migratetest.Sample()
	job := migrate.Job{Mailbox: "alice", Source: migratetest.NewSource(fx), Sink: dst}
	rep := migratetest.CrashAndResume(t, job, func(id migrate.SourceID) bool { return id.Folder == "INBOX" && id.UID == 3 }, nil)
	if rep.Lost() {
		t.Fatalf("rerun: %+v", rep.Mailboxes[0])
	}
	// UID 3 at least; Puts in flight beside it may have been stored
	// uncommitted too when the run stopped.
	if tot := rep.Totals(); tot.Repaired < 1 {
		t.Errorf("rerun repaired %d, want at least 1 (%+v)", tot.Repaired, tot)
	}
	checkCopied(t, fx, sink)
}

// messageIDOnly is a sink that can find items by Message-ID but has no
// watermarks, the Engine's second way to repair.
type messageIDOnly struct{ s *migratetest.Sink }

func (m messageIDOnly) EnsureFolder(ctx context.Context, parent, name string, role migrate.Role) (string, error) {
	return m.s.EnsureFolder(ctx, parent, name, role)
}
func (m messageIDOnly) Put(ctx context.Context, folderID string, msg *migrate.Message) (string, error) {
	return m.s.Put(ctx, folderID, msg)
}
func (m messageIDOnly) FindMessageID(ctx context.Context, folderID, id string) ([]migrate.FoundItem, error) {
	return m.s.FindMessageID(ctx, folderID, id)
}

func TestEngineItemFailuresAndBadItemLimit(t *testing.T) {
	fx := migratetest.Sample()
	reject := func(m *migrate.Message) error {
		if m.MessageID == "<sample-2@mailferry.test>" || m.MessageID == "<sample-12@mailferry.test>" {
			return migrate.ItemError(errors.New("ErrorMimeContentInvalid"))
		}
		return nil
	}
	sink := migratetest.NewSink()
	sink.PutErr = reject
	rep := migrate.NewEngine(nil).Run(t.Context(), migrate.Job{Mailbox: "a", Source: migratetest.NewSource(fx), Sink: sink})
	mr := rep.Mailboxes[0]
	if mr.Status != migrate.StatusCompletedWithErrors || len(mr.Problems) != 2 || sink.Puts != fx.Count()-2 {
		t.Fatalf("status %s, problems %+v, puts %d", mr.Status, mr.Problems, sink.Puts)
	}
	if p := mr.Problems[0]; p.Folder != "INBOX" || p.UID != 2 || p.Action != migrate.ActionCopy ||
		!strings.Contains(p.Reason, "ErrorMimeContentInvalid") || !errors.Is(p.Err, migrate.ErrItem) {
		t.Errorf("problem %+v", p)
	}
}

// BadItemLimit N lets a mailbox with N failed messages go on to its end,
// and stops it at the N+1st: the folders after it are not copied.
func TestEngineBadItemLimitBoundary(t *testing.T) {
	fx := migratetest.Sample()
	// In three folders, the last of them Projects/2024, which Café and
	// Café/Réunions follow.
	rejected := []string{"<sample-2@mailferry.test>", "<sample-5@mailferry.test>", "<sample-12@mailferry.test>"}
	limit := len(rejected) - 1
	for _, failures := range []int{limit, limit + 1} {
		t.Run(fmt.Sprintf("limit %d, %d failures", limit, failures), func(t *testing.T) {
			sink := migratetest.NewSink()
			sink.PutErr = func(m *migrate.Message) error {
				if slices.Contains(rejected[:failures], m.MessageID) {
					return migrate.ItemError(errors.New("ErrorMimeContentInvalid"))
				}
				return nil
			}
			rep := migrate.NewEngine(&migrate.Options{BadItemLimit: limit}).Run(t.Context(),
				migrate.Job{Mailbox: "a", Source: migratetest.NewSource(fx), Sink: sink})
			mr, tot := rep.Mailboxes[0], rep.Totals()
			if tot.Failed != failures || len(mr.Problems) != failures {
				t.Errorf("%d failed, %d problems; want %d", tot.Failed, len(mr.Problems), failures)
			}
			if failures <= limit {
				if mr.Status != migrate.StatusCompletedWithErrors || mr.Err != nil || tot.Copied != fx.Count()-failures {
					t.Errorf("%s (%v), %d copied; want every other message (%d) copied", mr.Status, mr.Err, tot.Copied, fx.Count()-failures)
				}
				return
			}
			if mr.Status != migrate.StatusFailed || !errors.Is(mr.Err, migrate.ErrBadItemLimit) || !strings.Contains(mr.Error, "bad item limit") {
				t.Errorf("%s %q, want failed with ErrBadItemLimit", mr.Status, mr.Error)
			}
			last := mr.Folders[len(mr.Folders)-1]
			if last.Source != "Projects/2024" || !errors.Is(last.Err, migrate.ErrBadItemLimit) {
				t.Errorf("the last folder reported is %s (%q), want Projects/2024 stopped by the limit", last.Source, last.Error)
			}
			for _, it := range sink.Items() {
				if strings.HasPrefix(sink.FolderPath(it.FolderID), "Café") {
					t.Errorf("%s copied to %s after the mailbox stopped", it.MessageID, sink.FolderPath(it.FolderID))
				}
			}
		})
	}
}

func TestEngineMailboxErrorStopsOnlyThatMailbox(t *testing.T) {
	full := migratetest.NewSink()
	full.PutErr = func(*migrate.Message) error { return migrate.MailboxError(errors.New("ErrorQuotaExceeded")) }
	ok := migratetest.NewSink()
	fx := migratetest.Sample()
	rep := migrate.NewEngine(&migrate.Options{MaxMailboxes: 2}).Run(t.Context(),
		migrate.Job{Mailbox: "full", Source: migratetest.NewSource(fx), Sink: full},
		migrate.Job{Mailbox: "ok", Source: migratetest.NewSource(fx), Sink: ok})
	if mr := rep.Mailboxes[0]; mr.Status != migrate.StatusFailed || !errors.Is(mr.Err, migrate.ErrMailbox) || !strings.Contains(mr.Error, "ErrorQuotaExceeded") {
		t.Errorf("full mailbox: %s %q", mr.Status, mr.Error)
	}
	if full.Puts != 0 || len(rep.Mailboxes[0].Problems) != 0 {
		t.Errorf("full mailbox went on after a mailbox error: %d puts", full.Puts)
	}
	if rep.Mailboxes[1].Status != migrate.StatusCompleted {
		t.Errorf("other mailbox: %s %q", rep.Mailboxes[1].Status, rep.Mailboxes[1].Error)
	}
	checkCopied(t, fx, ok)
}

func TestEngineUIDValidityChange(t *testing.T) {
	c := copyOnce(t)
	c.src.SetUIDValidity("INBOX", 777)
	rep := c.eng.Run(t.Context(), c.job)
	if sink := c.sink; sink.Puts != c.fx.Count() {
		t.Errorf("INBOX copied again after its UIDVALIDITY changed: %d puts", sink.Puts)
	}
	mr := rep.Mailboxes[0]
	if mr.Status != migrate.StatusCompletedWithErrors || !errors.Is(mr.Folders[0].Err, migrate.ErrUIDValidityChanged) {
		t.Errorf("report: %s, INBOX error %q", mr.Status, mr.Folders[0].Error)
	}
}

func TestEngineFiltersAndDuplicates(t *testing.T) {
	fx := migratetest.Sample()
	src := migratetest.NewSource(fx)
	// The same message twice in one folder.
	src.Append([]string{"INBOX"}, fx.Folders[0].Messages[0])
	sink := migratetest.NewSink()
	eng := migrate.NewEngine(&migrate.Options{
		Deduper: &migrate.MessageIDDeduper{},
		Filter:  migrate.Filter{Since: time.Date(2024, 3, 2, 0, 0, 0, 0, time.UTC)},
	})
	tot := eng.Run(t.Context(), migrate.Job{Mailbox: "a", Source: src, Sink: sink}).Totals()
	// Sample messages dated March 1st: INBOX UID 1 and its copy, Sent UID 1.
	if tot.Filtered != 3 || tot.Duplicates != 0 || tot.Copied != fx.Count()-2 {
		t.Errorf("with Since: %+v", tot)
	}
	sink = migratetest.NewSink()
	eng = migrate.NewEngine(&migrate.Options{Deduper: &migrate.MessageIDDeduper{}})
	tot = eng.Run(t.Context(), migrate.Job{Mailbox: "a", Source: src, Sink: sink}).Totals()
	if tot.Duplicates != 1 || tot.Copied != fx.Count() {
		t.Errorf("with a duplicate: %+v", tot)
	}
}

func TestEngineReportsVanishedMessages(t *testing.T) {
	fx := migratetest.Sample()
	src := migratetest.NewSource(fx)
	sink := migratetest.NewSink()
	// Expunged after List, before Fetch: the Source simply does not deliver it.
	src.FetchErr = func(f migrate.Folder, uid uint32) error {
		if f.Name == "INBOX" && uid == 1 {
			src.FetchErr = nil
			return src.Expunge("INBOX", 2)
		}
		return nil
	}
	rep := migrate.NewEngine(&migrate.Options{MaxUIDsPerFetch: 1}).Run(t.Context(), migrate.Job{Mailbox: "a", Source: src, Sink: sink})
	if tot := rep.Totals(); tot.Vanished != 1 || tot.Copied != fx.Count()-1 || rep.Lost() {
		t.Errorf("totals %+v, status %s", tot, rep.Mailboxes[0].Status)
	}
}

// A message the sink stored degraded is committed (a rerun leaves it be),
// counted apart from the copied ones and listed with its reason; the
// mailbox has lost nothing.
func TestEngineReportsDegradedMessages(t *testing.T) {
	fx := migratetest.Sample()
	src, sink := migratetest.NewSource(fx), migratetest.NewSink()
	reason := migrate.DegradedError(errors.New("multipart: NextPart: EOF"))
	sink.PutErr = func(m *migrate.Message) error {
		if m.ID.Folder == "INBOX" && m.UID == 2 {
			return reason
		}
		return nil
	}
	var degradedEvents int
	eng := migrate.NewEngine(&migrate.Options{OnEvent: func(e migrate.Event) {
		if e.Kind == migrate.EventMessageDegraded {
			degradedEvents++
		}
	}})
	job := migrate.Job{Mailbox: "a", Source: src, Sink: sink}
	rep := eng.Run(t.Context(), job)
	mr, tot := rep.Mailboxes[0], rep.Totals()
	if mr.Status != migrate.StatusCompleted || rep.Lost() || tot.Degraded != 1 || tot.Copied != fx.Count()-1 || degradedEvents != 1 {
		t.Fatalf("status %s, totals %+v, %d degraded events", mr.Status, tot, degradedEvents)
	}
	if len(mr.Problems) != 1 || mr.Problems[0].Action != migrate.ActionDegrade || mr.Problems[0].UID != 2 ||
		!errors.Is(mr.Problems[0].Err, migrate.ErrDegraded) {
		t.Errorf("problems %+v", mr.Problems)
	}
	if sink.Puts != fx.Count() {
		t.Errorf("sink stored %d messages, want all %d", sink.Puts, fx.Count())
	}
	var text strings.Builder
	if err := rep.WriteText(&text); err != nil || !strings.Contains(text.String(), "degraded: INBOX UID 2") {
		t.Errorf("text report: %v\n%s", err, text.String())
	}
	if tot := eng.Run(t.Context(), job).Totals(); tot.Copied != 0 || tot.Degraded != 0 || tot.AlreadyCopied != fx.Count() {
		t.Errorf("rerun: %+v", tot)
	}
}

// noticingSink reports the same fact on every Put, as exchange reports
// what its target keeps.
type noticingSink struct{ *migratetest.Sink }

func (s noticingSink) Put(ctx context.Context, folderID string, m *migrate.Message) (string, error) {
	migrate.Notify(ctx, migrate.Event{Kind: migrate.EventNotice, Reason: "received dates kept"})
	return s.Sink.Put(ctx, folderID, m)
}

func TestEngineKeepsEachNoticeOnce(t *testing.T) {
	rep := migrate.NewEngine(nil).Run(t.Context(), migrate.Job{Mailbox: "a",
		Source: migratetest.NewSource(migratetest.Sample()), Sink: noticingSink{migratetest.NewSink()}})
	if got := rep.Mailboxes[0].Notices; len(got) != 1 || got[0] != "received dates kept" {
		t.Errorf("notices %q", got)
	}
}

// cancellableState is a State that refuses every call once its context
// is done, as a State may (boltstate does while its queue is full).
type cancellableState struct{ migrate.State }

func (s cancellableState) Load(ctx context.Context, mailbox, folder string) (migrate.FolderState, error) {
	if err := ctx.Err(); err != nil {
		return migrate.FolderState{}, err
	}
	return s.State.Load(ctx, mailbox, folder)
}

func (s cancellableState) Begin(ctx context.Context, mailbox string, id migrate.SourceID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.State.Begin(ctx, mailbox, id)
}

func (s cancellableState) Commit(ctx context.Context, mailbox string, id migrate.SourceID, itemID string, flags []migrate.Flag) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.State.Commit(ctx, mailbox, id, itemID, flags)
}

func (s cancellableState) SetModSeq(ctx context.Context, mailbox, folder string, uidValidity uint32, modSeq uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.State.SetModSeq(ctx, mailbox, folder, uidValidity, modSeq)
}

// Cancelling Run while Puts are in flight loses nothing half done. The
// Puts sent before the cancellation complete, and each message the sink
// stored is committed, even to a State that refuses a cancelled context;
// no Put begins after it (every Put worker is busy when it comes, so the
// next message waits for one). The mailbox is reported failed with the
// context's error, not completed, and so is the job not yet begun. A
// rerun with the same State copies exactly the rest, nothing twice, into
// a sink that could not find an earlier copy if one were lost.
func TestEngineRunCancelledWhilePutsAreInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const free = 6
		fx := bigFixture(20, 500)
		st, store, later := migrate.NewMemoryState(), migratetest.NewSink(), migratetest.NewSink()
		sink := newGateSink(store, free)
		sink.ignoreCancel = true
		ctx, cancel := context.WithCancel(t.Context())
		job := migrate.Job{Mailbox: "a", Source: migratetest.NewSource(fx), Sink: sink}
		notBegun := migrate.Job{Mailbox: "b", Source: migratetest.NewSource(fx), Sink: later}
		done := make(chan *migrate.Report)
		go func() {
			done <- migrate.NewEngine(&migrate.Options{State: cancellableState{st}, MaxMailboxes: 1}).Run(ctx, job, notBegun)
		}()
		synctest.Wait() // the free Puts are done, the next ones wait at the gate
		_, inFlight := sink.counts()
		if inFlight == 0 {
			close(sink.gate)
			<-done
			t.Fatal("no Put in flight to cancel")
		}
		cancel()
		synctest.Wait()  // everything but the Puts in flight has stopped
		close(sink.gate) // the Puts sent before the cancellation complete
		rep := <-done

		a, b := rep.Mailboxes[0], rep.Mailboxes[1]
		if a.Status != migrate.StatusFailed || !errors.Is(a.Err, context.Canceled) || !rep.Lost() {
			t.Errorf("mailbox a: %s (%v), want failed with context.Canceled", a.Status, a.Err)
		}
		if inbox := a.Folders[0]; !errors.Is(inbox.Err, context.Canceled) {
			t.Errorf("INBOX: error %q, want it interrupted", inbox.Error)
		}
		if b.Status != migrate.StatusFailed || !errors.Is(b.Err, context.Canceled) || len(later.Items()) != 0 {
			t.Errorf("mailbox b, not begun: %s (%v), %d items copied", b.Status, b.Err, len(later.Items()))
		}
		calls, _ := sink.counts()
		if calls != free+inFlight || sink.calledCancelled != 0 {
			t.Errorf("%d Puts, %d of them begun after the cancellation; want the %d free and the %d in flight",
				calls, sink.calledCancelled, free, inFlight)
		}
		stored := store.Items()
		if len(stored) != free+inFlight || rep.Totals().Copied != len(stored) {
			t.Errorf("%d stored, %d reported copied; want %d", len(stored), rep.Totals().Copied, free+inFlight)
		}
		// Each item the sink holds is recorded as the copy of its message.
		fs, err := st.Load(t.Context(), "a", "INBOX")
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range stored {
			id, err := migrate.ParseSourceID(it.Watermark)
			if err != nil {
				t.Fatal(err)
			}
			if r := fs.Records[id.UID]; r.ItemID != it.ID {
				t.Errorf("UID %d stored as %s, recorded as %+v", id.UID, it.ID, r)
			}
		}

		job.Sink = sinkOnly{store}
		rep = migrate.NewEngine(&migrate.Options{State: st}).Run(t.Context(), job)
		tot := rep.Totals()
		if rep.Lost() || tot.Copied != fx.Count()-len(stored) || tot.AlreadyCopied != len(stored) || tot.Repaired != 0 {
			t.Errorf("rerun: %s, totals %+v; want %d copied, %d already copied", rep.Mailboxes[0].Status, tot, fx.Count()-len(stored), len(stored))
		}
		checkCopied(t, fx, store)
	})
}

// A folder the mapper leaves out is reported as skipped: not read, no
// target folder made for it, nothing copied from it, and no failure.
func TestEngineSkipsFoldersTheMapperLeavesOut(t *testing.T) {
	fx := migratetest.Sample()
	left := map[string]bool{"Trash": true, "Junk": true}
	mapper := migrate.FolderMapperFunc(func(folders []migrate.Folder) ([]migrate.Target, error) {
		targets, err := migrate.DefaultMapper().MapFolders(folders)
		for i, f := range folders {
			if left[f.Name] {
				targets[i] = migrate.Target{Skip: true}
			}
		}
		return targets, err
	})
	src, sink := migratetest.NewSource(fx), &ensureRecorder{Sink: migratetest.NewSink()}
	rep := migrate.NewEngine(&migrate.Options{Mapper: mapper}).Run(t.Context(), migrate.Job{Mailbox: "a", Source: src, Sink: sink})
	mr := rep.Mailboxes[0]
	if mr.Status != migrate.StatusCompleted || rep.Lost() || len(mr.Problems) != 0 {
		t.Errorf("status %s, problems %+v; want completed", mr.Status, mr.Problems)
	}
	wantCopied, skipped := 0, 0
	for _, f := range fx.Folders {
		if !left[strings.Join(f.Path, "/")] {
			wantCopied += len(f.Messages)
		}
	}
	for _, f := range mr.Folders {
		if f.Skipped != left[f.Source] {
			t.Errorf("%s: skipped %v", f.Source, f.Skipped)
		}
		if !f.Skipped {
			continue
		}
		skipped++
		if f.Listed != 0 || f.Copied != 0 || f.Failed != 0 || f.Err != nil || f.Pass != "" {
			t.Errorf("%s, left out: %+v", f.Source, f)
		}
	}
	if skipped != len(left) {
		t.Errorf("%d folders reported skipped, want %d", skipped, len(left))
	}
	if tot := rep.Totals(); tot.Copied != wantCopied || sink.Puts != wantCopied {
		t.Errorf("%d copied, %d Puts; want %d, the messages of the other folders", tot.Copied, sink.Puts, wantCopied)
	}
	if src.UIDLists != len(fx.Folders)-len(left) {
		t.Errorf("%d folders read, want %d", src.UIDLists, len(fx.Folders)-len(left))
	}
	for _, it := range sink.Items() {
		if path := sink.FolderPath(it.FolderID); path == "Deleted Items" || path == "Junk Email" {
			t.Errorf("%s copied to %s", it.MessageID, path)
		}
	}
	for _, e := range sink.ensured {
		if e.role == migrate.RoleTrash || e.role == migrate.RoleJunk || e.name == "Deleted Items" || e.name == "Junk Email" {
			t.Errorf("folder %q (role %q) made for a folder left out", e.name, e.role)
		}
	}
}

// ensureRecorder is a migratetest.Sink that records the folders it is
// asked to ensure.
type ensureRecorder struct {
	*migratetest.Sink
	ensured []ensured
}

type ensured struct {
	name string
	role migrate.Role
}

func (s *ensureRecorder) EnsureFolder(ctx context.Context, parentID, name string, role migrate.Role) (string, error) {
	s.ensured = append(s.ensured, ensured{name, role})
	return s.Sink.EnsureFolder(ctx, parentID, name, role)
}
