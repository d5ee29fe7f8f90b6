package migrate_test

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

func TestEngineDeltaPassListsOnlyChanges(t *testing.T) {
	for _, condstore := range []bool{true, false} {
		name := map[bool]string{true: "condstore", false: "no-condstore"}[condstore]
		t.Run(name, func(t *testing.T) {
			fx := migratetest.Sample()
			src, sink := migratetest.NewSource(fx), migratetest.NewSink()
			src.NoModSeq = !condstore
			eng := migrate.NewEngine(nil)
			job := migrate.Job{Mailbox: "a", Source: src, Sink: sink}
			ctx := t.Context()
			eng.Run(ctx, job)
			lists := src.Lists

			// Nothing changed: with CONDSTORE no folder is even listed.
			rep := eng.Run(ctx, job)
			if tot := rep.Totals(); tot.Copied != 0 || tot.AlreadyCopied != fx.Count() {
				t.Errorf("idle pass: %+v", tot)
			}
			if condstore && src.Lists != lists {
				t.Errorf("idle pass listed %d folders in full", src.Lists-lists)
			}

			// One new message in INBOX, one flag change in Projects/2024.
			src.Append([]string{"INBOX"}, migratetest.FixtureMessage{Raw: []byte("Message-ID: <new@x>\r\n\r\nnew\r\n"), InternalDate: time.Now()})
			if err := src.SetFlags("Projects/2024", 2, []migrate.Flag{migrate.FlagSeen}); err != nil {
				t.Fatal(err)
			}
			lists, changeLists := src.Lists, src.ChangeLists
			rep = eng.Run(ctx, job)
			tot := rep.Totals()
			if tot.Copied != 1 || tot.FlagsUpdated != 1 || rep.Lost() {
				t.Errorf("delta pass: %+v", tot)
			}
			if condstore {
				if src.Lists != lists || src.ChangeLists-changeLists != 2 {
					t.Errorf("delta pass: %d full lists, %d change lists; want 0 and 2", src.Lists-lists, src.ChangeLists-changeLists)
				}
				if tot.Listed != 2 {
					t.Errorf("delta pass listed %d messages, want the 2 that changed", tot.Listed)
				}
				for _, f := range rep.Mailboxes[0].Folders {
					want := "unchanged"
					if f.Source == "INBOX" || f.Source == "Projects/2024" {
						want = "changes"
					}
					if f.Pass != want {
						t.Errorf("%s: pass %q, want %q", f.Source, f.Pass, want)
					}
				}
			} else if src.Lists == lists {
				t.Errorf("without CONDSTORE the folders were not listed in full")
			}
			if sink.Puts != fx.Count()+1 {
				t.Errorf("sink got %d puts, want %d", sink.Puts, fx.Count()+1)
			}
		})
	}
}

// slowSink counts how many Puts run at once and how many bytes they hold.
type slowSink struct {
	*migratetest.Sink
	mu                sync.Mutex
	active, maxActive int
	bytes, maxBytes   int64
	delay             time.Duration
	failMailboxAfter  int
	puts              int
}

func (s *slowSink) Put(ctx context.Context, folderID string, m *migrate.Message) (string, error) {
	s.mu.Lock()
	s.active++
	s.bytes += m.Size
	s.maxActive = max(s.maxActive, s.active)
	s.maxBytes = max(s.maxBytes, s.bytes)
	s.puts++
	fail := s.failMailboxAfter > 0 && s.puts > s.failMailboxAfter
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.active--
		s.bytes -= m.Size
		s.mu.Unlock()
	}()
	time.Sleep(s.delay)
	if fail {
		return "", migrate.MailboxError(errors.New("ErrorQuotaExceeded"))
	}
	return s.Sink.Put(ctx, folderID, m)
}

func bigFixture(n, size int) *migratetest.Fixture {
	fx := &migratetest.Fixture{Folders: []migratetest.FixtureFolder{{Path: []string{"INBOX"}, Role: migrate.RoleInbox}}}
	for i := range n {
		raw := make([]byte, size)
		copy(raw, "Message-ID: <m"+string(rune('a'+i%26))+string(rune('a'+i/26))+"@x>\r\n\r\n")
		for j := 40; j < size; j++ {
			raw[j] = 'x'
		}
		fx.Folders[0].Messages = append(fx.Folders[0].Messages, migratetest.FixtureMessage{Raw: raw, InternalDate: time.Unix(int64(i), 0)})
	}
	return fx
}

func TestEngineConcurrentPutsWithinBounds(t *testing.T) {
	fx := bigFixture(40, 1000)
	for _, tc := range []struct {
		puts       int
		maxBytes   int64
		wantActive int
	}{
		{puts: 4, maxBytes: 64 << 20, wantActive: 4},
		{puts: 1, maxBytes: 64 << 20, wantActive: 1},
		{puts: 8, maxBytes: 2500, wantActive: 2}, // two 1000-byte bodies fit, three do not
	} {
		sink := &slowSink{Sink: migratetest.NewSink(), delay: 5 * time.Millisecond}
		rep := migrate.NewEngine(&migrate.Options{MaxPutsPerMailbox: tc.puts, MaxBytesInFlightPerMailbox: tc.maxBytes}).
			Run(t.Context(), migrate.Job{Mailbox: "a", Source: migratetest.NewSource(fx), Sink: sink})
		if rep.Lost() || sink.Sink.Puts != 40 {
			t.Fatalf("puts=%d: %s, %d stored", tc.puts, rep.Mailboxes[0].Status, sink.Sink.Puts)
		}
		if sink.maxActive != tc.wantActive {
			t.Errorf("puts=%d maxBytes=%d: %d Puts at once, want %d", tc.puts, tc.maxBytes, sink.maxActive, tc.wantActive)
		}
		if sink.maxBytes > tc.maxBytes {
			t.Errorf("puts=%d: %d bytes in Puts at once, bound %d", tc.puts, sink.maxBytes, tc.maxBytes)
		}
	}
}

func TestEngineMailboxErrorStopsConcurrentPuts(t *testing.T) {
	sink := &slowSink{Sink: migratetest.NewSink(), delay: time.Millisecond, failMailboxAfter: 5}
	rep := migrate.NewEngine(nil).Run(t.Context(), migrate.Job{Mailbox: "a", Source: migratetest.NewSource(bigFixture(200, 500)), Sink: sink})
	if mr := rep.Mailboxes[0]; mr.Status != migrate.StatusFailed || len(mr.Problems) != 0 {
		t.Errorf("status %s, %d problems", mr.Status, len(mr.Problems))
	}
	if sink.puts > 5+4+1 {
		t.Errorf("%d Puts were attempted after the mailbox failed at the 6th", sink.puts)
	}
}

// chattySource is a Source that reports reconnects, as imapsrc does:
// through the context of the call that reconnected.
type chattySource struct {
	*migratetest.Source
}

func (c *chattySource) Folders(ctx context.Context) ([]migrate.Folder, error) {
	migrate.Notify(ctx, migrate.Event{Kind: migrate.EventReconnected, Err: errors.New("BYE")})
	migrate.Notify(ctx, migrate.Event{Kind: migrate.EventReconnected, Err: errors.New("BYE")})
	return c.Source.Folders(ctx)
}

// sinkOnly shows a Sink without any of its optional capabilities.
type sinkOnly struct{ migrate.Sink }

// throttledSink is a Sink that reports being throttled, as exchange does.
type throttledSink struct {
	*migratetest.Sink
}

func (s *throttledSink) Put(ctx context.Context, folderID string, m *migrate.Message) (string, error) {
	migrate.Notify(ctx, migrate.Event{Kind: migrate.EventThrottled, Reason: "429", Wait: time.Second})
	return s.Sink.Put(ctx, folderID, m)
}

func TestEngineBackendEvents(t *testing.T) {
	fx := migratetest.Sample()
	var kinds = map[migrate.EventKind]int{}
	var mailboxes = map[string]bool{}
	eng := migrate.NewEngine(&migrate.Options{OnEvent: func(e migrate.Event) {
		kinds[e.Kind]++
		mailboxes[e.Mailbox] = true
		if e.Time.IsZero() {
			t.Errorf("event %s without a time", e.Kind)
		}
	}})
	rep := eng.Run(t.Context(), migrate.Job{Mailbox: "alice",
		Source: &chattySource{Source: migratetest.NewSource(fx)}, Sink: &throttledSink{Sink: migratetest.NewSink()}})
	mr := rep.Mailboxes[0]
	if kinds[migrate.EventReconnected] != 2 || kinds[migrate.EventThrottled] != fx.Count() || !mailboxes["alice"] || len(mailboxes) != 1 {
		t.Errorf("events %v, mailboxes %v", kinds, mailboxes)
	}
	if mr.Reconnects != 2 || mr.Throttled != fx.Count() {
		t.Errorf("report: %d reconnects, %d throttled", mr.Reconnects, mr.Throttled)
	}
}

// Two Engines running at once on one shared Sink each see the events of
// their own run and no other's, and a later run sees none of an earlier
// run's.
func TestEngineBackendEventsStayWithTheirRun(t *testing.T) {
	fx := migratetest.Sample()
	// Both runs copy the same fixture into the same folders: the sink is
	// shown without its optional capabilities, so that neither adopts
	// (WatermarkLister) the copies of the other.
	shared := sinkOnly{&throttledSink{Sink: migratetest.NewSink()}}
	var mu sync.Mutex
	seen := map[string]map[string]int{} // engine -> mailbox -> throttled events
	engine := func(name string) *migrate.Engine {
		seen[name] = map[string]int{}
		return migrate.NewEngine(&migrate.Options{OnEvent: func(e migrate.Event) {
			if e.Kind == migrate.EventThrottled {
				mu.Lock()
				seen[name][e.Mailbox]++
				mu.Unlock()
			}
		}})
	}
	a, b := engine("a"), engine("b")
	var wg sync.WaitGroup
	var repA, repB *migrate.Report
	wg.Go(func() {
		repA = a.Run(t.Context(), migrate.Job{Mailbox: "alice", Source: migratetest.NewSource(fx), Sink: shared})
	})
	wg.Go(func() {
		repB = b.Run(t.Context(), migrate.Job{Mailbox: "bob", Source: migratetest.NewSource(fx), Sink: shared})
	})
	wg.Wait()
	want := map[string]map[string]int{"a": {"alice": fx.Count()}, "b": {"bob": fx.Count()}}
	if !reflect.DeepEqual(seen, want) {
		t.Errorf("throttled events per engine and mailbox: %v, want %v", seen, want)
	}
	if repA.Mailboxes[0].Throttled != fx.Count() || repB.Mailboxes[0].Throttled != fx.Count() {
		t.Errorf("reports count %d and %d throttles, want %d each", repA.Mailboxes[0].Throttled, repB.Mailboxes[0].Throttled, fx.Count())
	}
	// A later run of engine a on the same sink copies nothing and so is
	// never throttled: nothing of the earlier runs reaches it.
	seen["a"] = map[string]int{}
	a.Run(t.Context(), migrate.Job{Mailbox: "alice", Source: migratetest.NewSource(&migratetest.Fixture{}), Sink: shared})
	if len(seen["a"]) != 0 || len(seen["b"]) != 1 {
		t.Errorf("events after the runs ended: %v", seen)
	}
}

// A flag change the sink refuses is a Problem of its own kind, makes the
// mailbox "completed with errors", and is tried again on the next pass:
// the folder's mod-sequence is not recorded past it.
func TestEngineReportsFlagChangesNotCarried(t *testing.T) {
	c := copyOnce(t)
	src, sink, eng, job := c.src, c.sink, c.eng, c.job
	if err := src.SetFlags("Projects/2024", 2, []migrate.Flag{migrate.FlagSeen}); err != nil {
		t.Fatal(err)
	}
	refused := migrate.ItemError(errors.New("ErrorItemNotFound"))
	sink.SetFlagsErr = func(string, []migrate.Flag) error { return refused }
	rep := eng.Run(t.Context(), job)
	mr := rep.Mailboxes[0]
	if mr.Status != migrate.StatusCompletedWithErrors || !rep.Lost() || len(mr.Problems) != 1 {
		t.Fatalf("status %s, problems %+v", mr.Status, mr.Problems)
	}
	p := mr.Problems[0]
	if p.Action != migrate.ActionSetFlags || p.Folder != "Projects/2024" || p.UID != 2 || !errors.Is(p.Err, refused) {
		t.Errorf("problem %+v", p)
	}
	if tot := rep.Totals(); tot.FlagsFailed != 1 || tot.FlagsUpdated != 0 || tot.Failed != 0 {
		t.Errorf("totals %+v", tot)
	}

	sink.SetFlagsErr = nil
	rep = eng.Run(t.Context(), job)
	if tot := rep.Totals(); tot.FlagsUpdated != 1 || tot.FlagsFailed != 0 || rep.Lost() {
		t.Errorf("the next pass did not carry the change: %+v", tot)
	}
}

// migrate.Mailbox returns the mailbox's own error, so that a caller can
// tell its kind.
func TestMailboxReturnsTheMailboxError(t *testing.T) {
	sink := migratetest.NewSink()
	sink.PutErr = func(*migrate.Message) error { return migrate.MailboxError(errors.New("ErrorQuotaExceeded")) }
	rep, err := migrate.Mailbox(t.Context(), "a", migratetest.NewSource(migratetest.Sample()), sink)
	if !errors.Is(err, migrate.ErrMailbox) || rep.Status != migrate.StatusFailed || !errors.Is(rep.Err, migrate.ErrMailbox) {
		t.Errorf("Mailbox = %s, %v", rep.Status, err)
	}
	_, err = migrate.Mailbox(t.Context(), "b", migratetest.NewSource(migratetest.Sample()), migratetest.NewSink())
	if err != nil {
		t.Errorf("a clean mailbox: %v", err)
	}
}
