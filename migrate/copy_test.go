package migrate_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

// forgetfulSource is a Source whose server forgot the mod-sequences
// (ListChanges fails with ErrNoModSeq) though its folders still report
// one. With partial set, ListChanges delivers what changed before it
// fails. It records its List and ListChanges calls in order.
type forgetfulSource struct {
	*migratetest.Source
	partial bool
	calls   []string // "changes F" or "list F"
}

func (s *forgetfulSource) ListChanges(ctx context.Context, f migrate.Folder, since uint64, fn func(migrate.MessageInfo) error) error {
	s.calls = append(s.calls, "changes "+f.Name)
	if s.partial {
		if err := s.Source.ListChanges(ctx, f, since, fn); err != nil {
			return err
		}
	}
	return fmt.Errorf("forgetful: %q: %w", f.Name, migrate.ErrNoModSeq)
}

func (s *forgetfulSource) List(ctx context.Context, f migrate.Folder, fn func(migrate.MessageInfo) error) error {
	s.calls = append(s.calls, "list "+f.Name)
	return s.Source.List(ctx, f, fn)
}

// A ChangeLister that answers ErrNoModSeq is asked, and then the folder
// is listed in full: the delta is the same as with a working
// ChangeLister, and nothing it delivered before failing counts twice.
func TestEngineFallsBackToFullListingOnErrNoModSeq(t *testing.T) {
	for _, partial := range []bool{false, true} {
		t.Run(map[bool]string{false: "fails at once", true: "fails after listing changes"}[partial], func(t *testing.T) {
			fx := migratetest.Sample()
			src := &forgetfulSource{Source: migratetest.NewSource(fx), partial: partial}
			sink := migratetest.NewSink()
			eng := migrate.NewEngine(nil)
			job := migrate.Job{Mailbox: "a", Source: src, Sink: sink}
			if rep := eng.Run(t.Context(), job); rep.Lost() {
				t.Fatalf("first pass: %+v", rep.Totals())
			}
			src.calls = nil

			// In INBOX a new message and a flag change; nothing elsewhere.
			late := migratetest.FixtureMessage{Raw: []byte("Message-ID: <late@x>\r\n\r\nlate\r\n"), InternalDate: time.Now().Truncate(time.Second)}
			src.Append([]string{"INBOX"}, late)
			fx.Folders[0].Messages = append(fx.Folders[0].Messages, late)
			if err := src.SetFlags("INBOX", 4, []migrate.Flag{migrate.FlagSeen}); err != nil {
				t.Fatal(err)
			}
			fx.Folders[0].Messages[3].Flags = []migrate.Flag{migrate.FlagSeen}

			rep := eng.Run(t.Context(), job)
			if want := []string{"changes INBOX", "list INBOX"}; !slices.Equal(src.calls, want) {
				t.Errorf("calls %q, want %q", src.calls, want)
			}
			inbox := rep.Mailboxes[0].Folders[0]
			n := len(fx.Folders[0].Messages)
			if rep.Lost() || inbox.Pass != "full" || inbox.Listed != n || inbox.Copied != 1 || inbox.FlagsUpdated != 1 || inbox.AlreadyCopied != n-1 {
				t.Errorf("INBOX: %s, %+v; want listed in full (%d), 1 copied, 1 flag change", rep.Mailboxes[0].Status, inbox, n)
			}
			if tot := rep.Totals(); tot.Copied != 1 || tot.FlagsUpdated != 1 || tot.AlreadyCopied != fx.Count()-1 {
				t.Errorf("totals %+v", tot)
			}
			checkCopied(t, fx, sink)

			// The full pass recorded the folder's mod-sequence: the next
			// pass does not read INBOX at all.
			src.calls = nil
			if rep := eng.Run(t.Context(), job); rep.Mailboxes[0].Folders[0].Pass != "unchanged" || len(src.calls) != 0 {
				t.Errorf("the pass after: INBOX %q, calls %q", rep.Mailboxes[0].Folders[0].Pass, src.calls)
			}
		})
	}
}

// batchSink is a migratetest.Sink that is also a BatchFlagSetter: it
// records the size of each batch, applies each change through the
// Sink's SetFlags, and fails the changes of the UIDs in fail with their
// error. SetFlags called directly is counted apart.
type batchSink struct {
	*migratetest.Sink
	fail map[uint32]error

	mu      sync.Mutex
	batches []int
	single  int
}

func (s *batchSink) SetFlagsBatch(ctx context.Context, changes []migrate.FlagChange) []error {
	s.mu.Lock()
	s.batches = append(s.batches, len(changes))
	s.mu.Unlock()
	errs := make([]error, len(changes))
	for i, c := range changes {
		it, err := s.Item(ctx, c.ItemID)
		if err != nil {
			errs[i] = err
			continue
		}
		id, _ := migrate.ParseSourceID(it.Watermark)
		if err := s.fail[id.UID]; err != nil {
			errs[i] = err
			continue
		}
		errs[i] = s.Sink.SetFlags(ctx, c.ItemID, c.Flags)
	}
	return errs
}

func (s *batchSink) SetFlags(ctx context.Context, itemID string, flags []migrate.Flag) error {
	s.mu.Lock()
	s.single++
	s.mu.Unlock()
	return s.Sink.SetFlags(ctx, itemID, flags)
}

// flagChanges copies a folder of n messages into a batchSink, then marks
// every message read on the source: n flag changes for the next pass.
func flagChanges(t *testing.T, n int) (*migratetest.Source, *batchSink, *migrate.Engine, migrate.Job, migrate.State) {
	t.Helper()
	src := migratetest.NewSource(bigFixture(n, 100))
	sink := &batchSink{Sink: migratetest.NewSink()}
	st := migrate.NewMemoryState()
	eng := migrate.NewEngine(&migrate.Options{State: st})
	job := migrate.Job{Mailbox: "a", Source: src, Sink: sink}
	if rep := eng.Run(t.Context(), job); rep.Lost() || rep.Totals().Copied != n {
		t.Fatalf("first pass: %+v", rep.Totals())
	}
	for uid := uint32(1); uid <= uint32(n); uid++ {
		if err := src.SetFlags("INBOX", uid, []migrate.Flag{migrate.FlagSeen}); err != nil {
			t.Fatal(err)
		}
	}
	return src, sink, eng, job, st
}

// Flag changes go to a BatchFlagSetter, never one by one, in batches of
// at most FlagBatch.
func TestEngineCarriesFlagsInBatches(t *testing.T) {
	n := migrate.FlagBatch + 1
	_, sink, eng, job, _ := flagChanges(t, n)
	rep := eng.Run(t.Context(), job)
	if tot := rep.Totals(); rep.Lost() || tot.FlagsUpdated != n || tot.FlagsFailed != 0 {
		t.Errorf("%s, totals %+v; want %d flag changes", rep.Mailboxes[0].Status, tot, n)
	}
	if want := []int{migrate.FlagBatch, 1}; !slices.Equal(sink.batches, want) || sink.single != 0 {
		t.Errorf("batches of %v and %d single changes; want batches of %v", sink.batches, sink.single, want)
	}
	checkAllSeen(t, sink.Sink, n)
}

// checkAllSeen checks that the sink holds n items, each marked read and
// nothing else.
func checkAllSeen(t *testing.T, sink *migratetest.Sink, n int) {
	t.Helper()
	items := sink.Items()
	if len(items) != n {
		t.Errorf("%d items on the sink, want %d", len(items), n)
	}
	for _, it := range items {
		if !migrate.SameFlags(it.Flags, []migrate.Flag{migrate.FlagSeen}) {
			t.Errorf("%s: flags %v, want \\Seen alone", it.MessageID, it.Flags)
		}
	}
}

// A change of a batch that fails is a Problem of its message
// (ActionSetFlags); the others of the batch are carried. The folder's
// mod-sequence is not recorded past it, so the next pass lists it again
// and carries it. A change that fails with a mailbox error stops the
// mailbox.
func TestEngineReportsEachFailedChangeOfABatch(t *testing.T) {
	n := migrate.FlagBatch + 1
	src, sink, eng, job, st := flagChanges(t, n)
	before, err := st.Load(t.Context(), "a", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	// One change fails in each batch.
	refused := migrate.ItemError(errors.New("ErrorItemNotFound"))
	failed := []uint32{2, uint32(n)}
	sink.fail = map[uint32]error{failed[0]: refused, failed[1]: refused}

	rep := eng.Run(t.Context(), job)
	mr, tot := rep.Mailboxes[0], rep.Totals()
	if mr.Status != migrate.StatusCompletedWithErrors || tot.FlagsUpdated != n-len(failed) || tot.FlagsFailed != len(failed) {
		t.Errorf("%s, totals %+v; want %d carried, %d failed", mr.Status, tot, n-len(failed), len(failed))
	}
	var uids []uint32
	for _, p := range mr.Problems {
		if p.Action != migrate.ActionSetFlags || p.Folder != "INBOX" || !errors.Is(p.Err, refused) {
			t.Errorf("problem %+v", p)
		}
		uids = append(uids, p.UID)
	}
	if !slices.Equal(uids, failed) {
		t.Errorf("problems for UIDs %v, want %v", uids, failed)
	}
	items := sink.Items()
	if len(items) != n {
		t.Errorf("%d items on the sink, want %d", len(items), n)
	}
	for _, it := range items {
		id, _ := migrate.ParseSourceID(it.Watermark)
		if got, want := len(it.Flags) == 1, !slices.Contains(failed, id.UID); got != want {
			t.Errorf("UID %d: flags %v", id.UID, it.Flags)
		}
	}
	after, err := st.Load(t.Context(), "a", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if after.ModSeq != before.ModSeq {
		t.Errorf("mod-sequence recorded as %d past failed changes, want %d as before", after.ModSeq, before.ModSeq)
	}

	// The next pass tries the failed changes again, and only them.
	sink.fail, sink.batches = nil, nil
	changeLists := src.ChangeLists
	rep = eng.Run(t.Context(), job)
	if tot := rep.Totals(); rep.Lost() || tot.FlagsUpdated != len(failed) || src.ChangeLists == changeLists {
		t.Errorf("next pass: %s, totals %+v, %d change lists; want the %d failed changes carried", rep.Mailboxes[0].Status, tot,
			src.ChangeLists-changeLists, len(failed))
	}
	if !slices.Equal(sink.batches, []int{len(failed)}) {
		t.Errorf("next pass: batches of %v, want one of %d", sink.batches, len(failed))
	}
	checkAllSeen(t, sink.Sink, n)

	// A mailbox error in a batch stops the mailbox.
	if err := src.SetFlags("INBOX", 1, nil); err != nil {
		t.Fatal(err)
	}
	sink.fail = map[uint32]error{1: migrate.MailboxError(errors.New("ErrorMailboxStoreUnavailable"))}
	rep = eng.Run(t.Context(), job)
	if mr := rep.Mailboxes[0]; mr.Status != migrate.StatusFailed || !errors.Is(mr.Err, migrate.ErrMailbox) || len(mr.Problems) != 0 {
		t.Errorf("with a mailbox error: %s (%v), problems %+v", mr.Status, mr.Err, mr.Problems)
	}
}

// A message begun but not committed by an earlier run is copied again
// when the sink finds no earlier copy of it: when the earlier Put stored
// nothing, or when the sink cannot look (no WatermarkFinder, no
// MessageIDFinder) and so holds two copies afterwards, as documented. It
// is counted as copied, not repaired.
func TestEngineCopiesAgainWhatItCannotFind(t *testing.T) {
	t.Run("the earlier Put stored nothing", func(t *testing.T) {
		fx := migratetest.Sample()
		sink := migratetest.NewSink() // can find watermarks and Message-IDs
		target := fx.Folders[0].Messages[2].MessageID()
		sink.PutErr = func(m *migrate.Message) error {
			if m.MessageID == target {
				return migrate.TransientError(errors.New("connection reset"))
			}
			return nil
		}
		st := migrate.NewMemoryState()
		eng := migrate.NewEngine(&migrate.Options{State: st})
		job := migrate.Job{Mailbox: "a", Source: migratetest.NewSource(fx), Sink: sink}
		if rep := eng.Run(t.Context(), job); rep.Totals().Failed != 1 {
			t.Fatalf("first run: %+v", rep.Totals())
		}
		fs, err := st.Load(t.Context(), "a", "INBOX")
		if err != nil {
			t.Fatal(err)
		}
		if r, ok := fs.Records[3]; !ok || r.Committed() {
			t.Fatalf("INBOX UID 3 recorded as %+v, %v; want begun, not committed", r, ok)
		}
		sink.PutErr = nil
		rep := eng.Run(t.Context(), job)
		if tot := rep.Totals(); rep.Lost() || tot.Copied != 1 || tot.Repaired != 0 || tot.AlreadyCopied != fx.Count()-1 {
			t.Errorf("rerun: %+v; want UID 3 copied, not repaired", tot)
		}
		checkCopied(t, fx, sink)
	})
	t.Run("the sink cannot look", func(t *testing.T) {
		fx := migratetest.Sample()
		store := migratetest.NewSink()
		job := migrate.Job{Mailbox: "a", Source: migratetest.NewSource(fx), Sink: sinkOnly{store}}
		st := migrate.NewMemoryState()
		crashed := fx.Folders[0].Messages[2].MessageID()
		kill := func(id migrate.SourceID) bool { return id.Folder == "INBOX" && id.UID == 3 }
		// One Put at a time, so that no other message of INBOX is in
		// flight when UID 3 crashes.
		crash := migrate.NewEngine(&migrate.Options{State: migratetest.KillCommit(st, kill), MaxPutsPerMailbox: 1})
		if rep := crash.Run(t.Context(), job); !rep.Lost() {
			t.Fatalf("the crash did not show: %+v", rep.Totals())
		}
		stored := len(store.Items())
		rep := migrate.NewEngine(&migrate.Options{State: st}).Run(t.Context(), job)
		if tot := rep.Totals(); rep.Lost() || tot.Repaired != 0 || tot.Copied != fx.Count()-stored+1 {
			t.Errorf("rerun: %+v; want %d copied (UID 3 again, and what the crash left), none repaired", tot, fx.Count()-stored+1)
		}
		copies := map[string]int{}
		for _, it := range store.Items() {
			copies[it.MessageID]++
		}
		for id, n := range copies {
			if want := map[bool]int{true: 2, false: 1}[id == crashed]; n != want {
				t.Errorf("%s: %d copies, want %d", id, n, want)
			}
		}
		if len(copies) != fx.Count() {
			t.Errorf("%d messages on the sink, want %d", len(copies), fx.Count())
		}
	})
}
