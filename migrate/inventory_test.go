package migrate_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

// A rerun whose State is gone (a new, empty one) copies nothing that the
// target already holds: it adopts each item by its watermark, counts it
// as found on the target, records it, and carries the source's flags to
// it once. The run after it finds everything recorded.
func TestEngineRebuildsStateFromTarget(t *testing.T) {
	c := copyOnce(t)
	ctx := t.Context()
	// Changed on the source since the lost State recorded the copy.
	seen := []migrate.Flag{migrate.FlagSeen}
	if err := c.src.SetFlags("INBOX", 4, seen); err != nil {
		t.Fatal(err)
	}
	lists := c.src.Lists

	eng := migrate.NewEngine(nil) // a new, empty MemoryState
	rep := eng.Run(ctx, c.job)
	tot := rep.Totals()
	if rep.Lost() || tot.Copied != 0 || tot.FoundOnTarget != c.fx.Count() || tot.Listed != c.fx.Count() {
		t.Fatalf("rerun without state: %s, totals %+v", rep.Mailboxes[0].Status, tot)
	}
	if c.sink.Puts != c.fx.Count() {
		t.Errorf("sink got %d Puts in all, want %d (nothing copied twice)", c.sink.Puts, c.fx.Count())
	}
	// Items found need their source's flags: the folders are listed in full.
	if got := c.src.Lists - lists; got != len(c.fx.Folders) {
		t.Errorf("%d full listings, want one per folder (%d)", got, len(c.fx.Folders))
	}
	if it := itemOf(t, c.sink, c.fx.Folders[0].Messages[3].MessageID()); !migrate.SameFlags(it.Flags, seen) {
		t.Errorf("flags of INBOX UID 4 on the sink: %v, want %v", it.Flags, seen)
	}
	c.fx.Folders[0].Messages[3].Flags = seen
	checkCopied(t, c.fx, c.sink)

	var csv, text strings.Builder
	if err := rep.WriteCSV(&csv); err != nil || !strings.Contains(csv.String(), ",FoundOnTarget,") {
		t.Errorf("CSV report: %v\n%s", err, csv.String())
	}
	if header, row, _ := strings.Cut(csv.String(), "\n"); strings.Count(header, ",") != strings.Count(strings.SplitN(row, "\n", 2)[0], ",") {
		t.Errorf("CSV rows and header differ in width:\n%s", csv.String())
	}
	if err := rep.WriteText(&text); err != nil || !strings.Contains(text.String(), fmt.Sprintf("found on the target: %d", c.fx.Count())) {
		t.Errorf("text report: %v\n%s", err, text.String())
	}

	// Everything is recorded now, flags included.
	rep = eng.Run(ctx, c.job)
	if tot := rep.Totals(); tot.AlreadyCopied != c.fx.Count() || tot.FoundOnTarget != 0 || tot.FlagsUpdated != 0 || tot.Copied != 0 {
		t.Errorf("run after: %+v", tot)
	}
}

// watermarksOnly is a Sink that can list its watermarks but is no
// ItemLister: the Engine's other way to rebuild the State.
type watermarksOnly struct{ s *migratetest.Sink }

func (w watermarksOnly) EnsureFolder(ctx context.Context, parent, name string, role migrate.Role) (string, error) {
	return w.s.EnsureFolder(ctx, parent, name, role)
}
func (w watermarksOnly) Put(ctx context.Context, folderID string, m *migrate.Message) (string, error) {
	return w.s.Put(ctx, folderID, m)
}
func (w watermarksOnly) ListWatermarks(ctx context.Context, folderID string, fn func(migrate.SourceID, string) error) error {
	return w.s.ListWatermarks(ctx, folderID, fn)
}

// A sink that is a WatermarkLister and no ItemLister rebuilds the State
// all the same: a rerun without State copies nothing.
func TestEngineRebuildsStateFromWatermarksAlone(t *testing.T) {
	fx := migratetest.Sample()
	sink := migratetest.NewSink()
	job := migrate.Job{Mailbox: "alice", Source: migratetest.NewSource(fx), Sink: watermarksOnly{sink}}
	if rep := migrate.NewEngine(nil).Run(t.Context(), job); rep.Lost() {
		t.Fatalf("first run: %+v", rep.Totals())
	}
	rep := migrate.NewEngine(nil).Run(t.Context(), job)
	if tot := rep.Totals(); rep.Lost() || tot.Copied != 0 || tot.FoundOnTarget != fx.Count() {
		t.Errorf("rerun without state: %+v; want everything found on the target", tot)
	}
	if len(sink.Items()) != fx.Count() {
		t.Errorf("%d items on the sink, want %d", len(sink.Items()), fx.Count())
	}
}

// With the State gone, a target that holds part of the folder gets the
// rest: what is there is adopted, what is not is copied, what the source
// no longer lists is left where it is, unrecorded.
func TestEngineRebuildsStateFromPartialTarget(t *testing.T) {
	fx := migratetest.Sample()
	src, sink := migratetest.NewSource(fx), migratetest.NewSink()
	job := migrate.Job{Mailbox: "alice", Source: src, Sink: sink}
	sink.PutErr = func(m *migrate.Message) error {
		if m.ID.Folder == "INBOX" && m.UID >= 3 {
			return migrate.ItemError(errors.New("not now"))
		}
		return nil
	}
	migrate.NewEngine(nil).Run(t.Context(), job)
	sink.PutErr = nil
	if err := src.Expunge("INBOX", 1); err != nil { // copied, then deleted on the source
		t.Fatal(err)
	}
	late := migratetest.FixtureMessage{Raw: []byte("Message-ID: <late@x>\r\nSubject: late\r\n\r\nhi\r\n"), InternalDate: time.Now()}
	src.Append([]string{"INBOX"}, late)

	rep := migrate.NewEngine(nil).Run(t.Context(), job)
	inbox := rep.Mailboxes[0].Folders[0]
	if rep.Lost() || inbox.FoundOnTarget != 1 || inbox.Copied != 3 || inbox.Listed != 4 {
		t.Errorf("INBOX: %+v, want UID 2 found, UIDs 3, 4 and 5 copied", inbox)
	}
	if tot := rep.Totals(); tot.FoundOnTarget != fx.Count()-3 || tot.Copied != 3 {
		t.Errorf("totals %+v", tot)
	}
	// UID 1 stays on the target, as it was: nothing is deleted.
	if sink.Puts != fx.Count()+1 || len(sink.Items()) != fx.Count()+1 {
		t.Errorf("%d Puts, %d items; want %d", sink.Puts, len(sink.Items()), fx.Count()+1)
	}
}

// Copies made under another UIDVALIDITY of the folder name other
// messages now: with the State gone, the folder is refused as it would be
// with the State, rather than copied a second time.
func TestEngineTargetOfAnotherUIDValidity(t *testing.T) {
	c := copyOnce(t)
	c.src.SetUIDValidity("INBOX", 777)
	rep := migrate.NewEngine(nil).Run(t.Context(), c.job)
	mr := rep.Mailboxes[0]
	if !errors.Is(mr.Folders[0].Err, migrate.ErrUIDValidityChanged) || mr.Status != migrate.StatusCompletedWithErrors {
		t.Errorf("INBOX: %s, error %q", mr.Status, mr.Folders[0].Error)
	}
	if c.sink.Puts != c.fx.Count() {
		t.Errorf("%d Puts, want %d: INBOX copied again", c.sink.Puts, c.fx.Count())
	}
	if tot := rep.Totals(); tot.FoundOnTarget != c.fx.Count()-len(c.fx.Folders[0].Messages) {
		t.Errorf("the other folders: %+v", tot)
	}
}

// A message begun but never stored is not repaired with the copy of
// another message that shares its Message-ID: one stamped with another
// message's watermark, or one the State records for another UID.
func TestEngineRepairNeverAdoptsAnotherMessagesCopy(t *testing.T) {
	same := []byte("Message-ID: <same@x>\r\nSubject: twice\r\n\r\nhi\r\n")
	failFirst := func(sink *migratetest.Sink, folder string, uid uint32) {
		sink.PutErr = func(m *migrate.Message) error {
			if m.ID.Folder == folder && m.UID == uid {
				sink.PutErr = nil
				return migrate.ItemError(errors.New("refused this time"))
			}
			return nil
		}
	}
	t.Run("stamped for another message", func(t *testing.T) {
		// Two source folders merged into one target folder, the same
		// message in each.
		fx := &migratetest.Fixture{Folders: []migratetest.FixtureFolder{
			{Path: []string{"A"}, Messages: []migratetest.FixtureMessage{{Raw: same}}},
			{Path: []string{"B"}, Messages: []migratetest.FixtureMessage{{Raw: same}}},
		}}
		merge := migrate.FolderMapperFunc(func(fs []migrate.Folder) ([]migrate.Target, error) {
			out := make([]migrate.Target, len(fs))
			for i := range fs {
				out[i] = migrate.Target{Path: []string{"Merged"}}
			}
			return out, nil
		})
		sink := migratetest.NewSink()
		failFirst(sink, "B", 1)
		eng := migrate.NewEngine(&migrate.Options{Mapper: merge})
		job := migrate.Job{Mailbox: "a", Source: migratetest.NewSource(fx), Sink: sink}
		if rep := eng.Run(t.Context(), job); rep.Totals().Failed != 1 {
			t.Fatalf("first run: %+v", rep.Totals())
		}
		rep := eng.Run(t.Context(), job)
		if tot := rep.Totals(); rep.Lost() || tot.Repaired != 0 || tot.Copied != 1 {
			t.Errorf("rerun: %+v, want B's message copied, not repaired with A's", tot)
		}
		checkOneCopyEach(t, sink, "1000/1/A", "1001/1/B")
	})
	t.Run("recorded for another UID", func(t *testing.T) {
		// A sink without watermarks; the same message twice in a folder.
		fx := &migratetest.Fixture{Folders: []migratetest.FixtureFolder{
			{Path: []string{"INBOX"}, Role: migrate.RoleInbox, Messages: []migratetest.FixtureMessage{{Raw: same}, {Raw: same}}},
		}}
		sink := migratetest.NewSink()
		sink.Unstamped = func(*migrate.Message) bool { return true }
		failFirst(sink, "INBOX", 2)
		eng := migrate.NewEngine(nil)
		job := migrate.Job{Mailbox: "a", Source: migratetest.NewSource(fx), Sink: messageIDOnly{sink}}
		if rep := eng.Run(t.Context(), job); rep.Totals().Failed != 1 {
			t.Fatalf("first run: %+v", rep.Totals())
		}
		rep := eng.Run(t.Context(), job)
		if tot := rep.Totals(); rep.Lost() || tot.Repaired != 0 || tot.Copied != 1 {
			t.Errorf("rerun: %+v, want UID 2 copied, not repaired with UID 1's item", tot)
		}
		if n := len(sink.Items()); n != 2 {
			t.Errorf("%d items on the sink, want 2", n)
		}
	})
	t.Run("its own unstamped copy", func(t *testing.T) {
		// Stored, not stamped, not committed: found by Message-ID, adopted.
		fx := &migratetest.Fixture{Folders: []migratetest.FixtureFolder{
			{Path: []string{"INBOX"}, Role: migrate.RoleInbox, Messages: []migratetest.FixtureMessage{{Raw: same}, {Raw: same}}},
		}}
		sink := migratetest.NewSink()
		sink.Unstamped = func(*migrate.Message) bool { return true }
		job := migrate.Job{Mailbox: "a", Source: migratetest.NewSource(fx), Sink: messageIDOnly{sink}}
		st := migrate.NewMemoryState()
		crash := migrate.NewEngine(&migrate.Options{State: migratetest.KillCommit(st, func(migrate.SourceID) bool { return true })})
		if rep := crash.Run(t.Context(), job); !rep.Lost() {
			t.Fatalf("the crash did not show: %+v", rep.Totals())
		}
		stored := len(sink.Items()) // 1 or 2, as the Puts in flight went
		rep := migrate.NewEngine(&migrate.Options{State: st}).Run(t.Context(), job)
		if tot := rep.Totals(); rep.Lost() || tot.Repaired != stored || tot.Copied != 2-stored {
			t.Errorf("rerun: %+v, want %d repaired, %d copied", tot, stored, 2-stored)
		}
		fs, err := st.Load(t.Context(), "a", "INBOX")
		if err != nil {
			t.Fatal(err)
		}
		one, two := fs.Records[1].ItemID, fs.Records[2].ItemID
		if one == "" || two == "" || one == two || len(sink.Items()) != 2 {
			t.Errorf("UIDs 1 and 2 recorded as items %q and %q, %d items on the sink; want two distinct", one, two, len(sink.Items()))
		}
	})
}

// crashUnstamped runs job into sink, storing every item without a
// watermark and crashing before each Commit: items stored, not stamped,
// recorded as begun in st. It returns how many items were stored, and
// leaves the sink stamping again.
func crashUnstamped(t *testing.T, job migrate.Job, sink *migratetest.Sink, st migrate.State) int {
	t.Helper()
	sink.Unstamped = func(*migrate.Message) bool { return true }
	crash := migrate.NewEngine(&migrate.Options{State: migratetest.KillCommit(st, func(migrate.SourceID) bool { return true })})
	if rep := crash.Run(t.Context(), job); !rep.Lost() {
		t.Fatalf("the crash did not show: %+v", rep.Totals())
	}
	sink.Unstamped = nil
	stored := len(sink.Items())
	if stored == 0 {
		t.Fatal("the crashed run stored nothing")
	}
	return stored
}

// A repair that adopts an item found by Message-ID without a watermark
// (a Put that stored it and stopped before stamping it) stamps it, so
// that a later run whose State is lost finds it by its watermark and
// copies nothing again. A stamp the sink refuses is reported, leaves the
// message begun, and the next run stamps it; nothing is copied twice.
func TestEngineStampsItemsItRepairs(t *testing.T) {
	for _, tc := range []struct {
		name     string
		stampErr bool
	}{{"stamped", false}, {"stamp refused once", true}} {
		t.Run(tc.name, func(t *testing.T) {
			fx := migratetest.Sample()
			n := fx.Count()
			sink := migratetest.NewSink()
			job := migrate.Job{Mailbox: "a", Source: migratetest.NewSource(fx), Sink: sink}
			st := migrate.NewMemoryState()
			stored := crashUnstamped(t, job, sink, st)
			var refused []string
			if tc.stampErr {
				sink.StampErr = func(itemID string, id migrate.SourceID) error {
					refused = append(refused, itemID)
					return migrate.ItemError(errors.New("stamp refused"))
				}
				rep := migrate.NewEngine(&migrate.Options{State: st}).Run(t.Context(), job)
				tot := rep.Totals()
				if tot.Failed != stored || tot.Repaired != 0 || tot.Copied != n-stored || len(refused) != stored {
					t.Fatalf("run with stamps refused: %+v, %d stamps refused; want %d failed, %d copied", tot, len(refused), stored, n-stored)
				}
				actions := 0
				for _, p := range rep.Mailboxes[0].Problems {
					if p.Action == migrate.ActionStamp && errors.Is(p.Err, migrate.ErrItem) {
						actions++
					}
				}
				if actions != stored {
					t.Errorf("%d problems with ActionStamp, want %d: %+v", actions, stored, rep.Mailboxes[0].Problems)
				}
				if len(sink.Items()) != n {
					t.Fatalf("%d items on the sink, want %d: a refused stamp copied a message again", len(sink.Items()), n)
				}
				sink.StampErr = nil
			}
			rep := migrate.NewEngine(&migrate.Options{State: st}).Run(t.Context(), job)
			if tot := rep.Totals(); rep.Lost() || tot.Repaired != stored || tot.Failed != 0 {
				t.Fatalf("rerun: %s %+v, want %d repaired", rep.Mailboxes[0].Status, tot, stored)
			}
			var want []string
			for _, it := range sink.Items() {
				if it.Watermark == "" {
					t.Errorf("item %s left without a watermark", it.ID)
				}
				want = append(want, it.Watermark)
			}
			checkOneCopyEach(t, sink, want...)
			if len(want) != n {
				t.Errorf("%d items, want %d", len(want), n)
			}

			// The State is lost: every item is found by its watermark.
			rep = migrate.NewEngine(nil).Run(t.Context(), job)
			if tot := rep.Totals(); rep.Lost() || tot.Copied != 0 || tot.FoundOnTarget != n {
				t.Errorf("run without state: %+v, want 0 copied, %d found on target", tot, n)
			}
			checkCopied(t, fx, sink)
		})
	}
}

// A run whose State is lost after a crash that left items stored but not
// stamped (killed between a Put's store and its stamp) adopts them by
// their Message-ID and stamps them: nothing is copied twice. So does a
// first run into a folder that already holds a message by other means.
// A stamp refused leaves the message begun, and the next run repairs it.
func TestEngineAdoptsUnstampedItemsWithoutState(t *testing.T) {
	t.Run("state lost after a crash", func(t *testing.T) {
		fx := migratetest.Sample()
		n := fx.Count()
		sink := migratetest.NewSink()
		job := migrate.Job{Mailbox: "a", Source: migratetest.NewSource(fx), Sink: sink}
		stored := crashUnstamped(t, job, sink, migrate.NewMemoryState())

		rep := migrate.NewEngine(nil).Run(t.Context(), job) // the State is lost
		if tot := rep.Totals(); rep.Lost() || tot.FoundOnTarget != stored || tot.Copied != n-stored {
			t.Fatalf("run without state: %s %+v; want %d found on target, %d copied", rep.Mailboxes[0].Status, tot, stored, n-stored)
		}
		if len(sink.Items()) != n {
			t.Errorf("%d items on the sink, want %d: a message was copied twice", len(sink.Items()), n)
		}
		for _, it := range sink.Items() {
			if it.Watermark == "" {
				t.Errorf("item %s left without a watermark", it.ID)
			}
		}
		checkCopied(t, fx, sink)
	})
	t.Run("a copy made by other means", func(t *testing.T) {
		fx := migratetest.Sample()
		sink := migratetest.NewSink()
		inbox, err := sink.EnsureFolder(t.Context(), "", "Inbox", migrate.RoleInbox)
		if err != nil {
			t.Fatal(err)
		}
		m := fx.Folders[0].Messages[3]
		sink.Unstamped = func(*migrate.Message) bool { return true }
		other, err := sink.Put(t.Context(), inbox, &migrate.Message{Body: bytes.NewReader(m.Raw), MessageInfo: migrate.MessageInfo{
			MessageID: m.MessageID(), InternalDate: m.InternalDate, Flags: []migrate.Flag{migrate.FlagFlagged}}}) // flags the source does not have
		if err != nil {
			t.Fatal(err)
		}
		sink.Unstamped = nil
		rep := migrate.NewEngine(nil).Run(t.Context(), migrate.Job{Mailbox: "a", Source: migratetest.NewSource(fx), Sink: sink})
		if tot := rep.Totals(); rep.Lost() || tot.FoundOnTarget != 1 || tot.Copied != fx.Count()-1 {
			t.Fatalf("first run: %+v; want the copy made by other means adopted", tot)
		}
		it := itemOf(t, sink, m.MessageID())
		if it.ID != other || it.Watermark == "" || !migrate.SameFlags(it.Flags, m.Flags) {
			t.Errorf("the adopted item: %+v; want %s stamped, with the source's flags %v", it, other, m.Flags)
		}
		checkCopied(t, fx, sink)
	})
	t.Run("stamp refused", func(t *testing.T) {
		fx := migratetest.Sample()
		n := fx.Count()
		sink := migratetest.NewSink()
		job := migrate.Job{Mailbox: "a", Source: migratetest.NewSource(fx), Sink: sink}
		stored := crashUnstamped(t, job, sink, migrate.NewMemoryState())
		sink.StampErr = func(string, migrate.SourceID) error { return migrate.ItemError(errors.New("stamp refused")) }
		st := migrate.NewMemoryState() // the State is lost
		rep := migrate.NewEngine(&migrate.Options{State: st}).Run(t.Context(), job)
		if tot := rep.Totals(); tot.Failed != stored || tot.Copied != n-stored || len(sink.Items()) != n {
			t.Fatalf("run with stamps refused: %+v, %d items; want %d failed, none copied twice", tot, len(sink.Items()), stored)
		}
		sink.StampErr = nil
		rep = migrate.NewEngine(&migrate.Options{State: st}).Run(t.Context(), job)
		if tot := rep.Totals(); rep.Lost() || tot.Repaired != stored || tot.Copied != 0 || len(sink.Items()) != n {
			t.Fatalf("next run: %+v, %d items; want %d repaired, nothing copied", tot, len(sink.Items()), stored)
		}
		checkCopied(t, fx, sink)
	})
}

// checkOneCopyEach checks that the sink holds exactly one item stamped
// with each of the watermarks, and nothing else.
func checkOneCopyEach(t *testing.T, sink *migratetest.Sink, watermarks ...string) {
	t.Helper()
	n := map[string]int{}
	for _, it := range sink.Items() {
		n[it.Watermark]++
	}
	for _, w := range watermarks {
		if n[w] != 1 {
			t.Errorf("%d items stamped %s, want 1", n[w], w)
		}
	}
	if len(sink.Items()) != len(watermarks) {
		t.Errorf("%d items on the sink, want %d", len(sink.Items()), len(watermarks))
	}
}

// A message whose body breaks off mid-read (a dropped connection) and
// that the source then delivers again, as imapsrc does after
// reconnecting, is copied from its second delivery: every message once,
// none lost, whether bodies are read into memory or streamed.
func TestEngineTakesRedeliveredMessages(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts migrate.Options
	}{
		{name: "buffered", opts: migrate.Options{}},
		{name: "streamed", opts: migrate.Options{MaxPutsPerMailbox: 1}},
		{name: "over the byte budget", opts: migrate.Options{MaxBytesInFlightPerMailbox: 500}},
		{name: "deduplicated", opts: migrate.Options{Deduper: &migrate.MessageIDDeduper{}}},
		{name: "listed in full", opts: migrate.Options{Filter: migrate.Filter{MaxSize: 1 << 20}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := bigFixture(15, 1000)
			src, sink := migratetest.NewSource(fx), migratetest.NewSink()
			src.Redeliver = func(f migrate.Folder, uid uint32) bool { return uid%4 == 2 } // 2, 6, 10, 14
			rep := migrate.NewEngine(&tc.opts).Run(t.Context(), migrate.Job{Mailbox: "a", Source: src, Sink: sink})
			tot := rep.Totals()
			if rep.Lost() || tot.Copied != 15 || tot.Failed != 0 || tot.Vanished != 0 || tot.Duplicates != 0 {
				t.Errorf("%s, totals %+v; want 15 copied", rep.Mailboxes[0].Status, tot)
			}
			if src.Redeliveries != 4 {
				t.Errorf("%d messages delivered again, want 4", src.Redeliveries)
			}
			checkCopied(t, fx, sink)
		})
	}
}

// A message whose body breaks off and that the source never delivers
// again is a failure of that message, reported as such, never a message
// that vanished or was copied.
func TestEngineReportsBodiesCutShort(t *testing.T) {
	for _, puts := range []int{1, 4} {
		t.Run(fmt.Sprintf("puts=%d", puts), func(t *testing.T) {
			fx := bigFixture(5, 1000)
			src := &cutOnce{Source: migratetest.NewSource(fx), uid: 3}
			sink := migratetest.NewSink()
			rep := migrate.NewEngine(&migrate.Options{MaxPutsPerMailbox: puts}).Run(t.Context(), migrate.Job{Mailbox: "a", Source: src, Sink: sink})
			tot, mr := rep.Totals(), rep.Mailboxes[0]
			if !rep.Lost() || tot.Copied != 4 || tot.Failed != 1 || tot.Vanished != 0 || sink.Puts != 4 {
				t.Fatalf("%s, totals %+v, %d Puts", mr.Status, tot, sink.Puts)
			}
			if len(mr.Problems) != 1 || mr.Problems[0].UID != 3 || !errors.Is(mr.Problems[0].Err, migrate.ErrTransient) {
				t.Errorf("problems %+v", mr.Problems)
			}
		})
	}
}

// cutOnce is a Source that delivers the message uid with a body that
// breaks off halfway, and never again.
type cutOnce struct {
	*migratetest.Source
	uid uint32
}

func (c *cutOnce) Fetch(ctx context.Context, f migrate.Folder, uids []uint32, fn func(*migrate.Message) error) error {
	return c.Source.Fetch(ctx, f, uids, func(m *migrate.Message) error {
		if m.UID != c.uid {
			return fn(m)
		}
		cut := *m
		cut.Body = io.MultiReader(io.LimitReader(m.Body, m.Size/2), errReader{migrate.TransientError(errors.New("connection reset"))})
		fn(&cut)
		return nil // the source goes on with the next message
	})
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
