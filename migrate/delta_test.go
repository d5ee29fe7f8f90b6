package migrate_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
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

			// One new message in INBOX, one flag change in Projects/2024:
			// one message changed in each of two folders.
			changed := []string{"INBOX", "Projects/2024"}
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
			// Every message is accounted for, listed or not.
			if tot.Copied+tot.AlreadyCopied != fx.Count()+1 {
				t.Errorf("delta pass: %d copied + %d already copied, want %d in all", tot.Copied, tot.AlreadyCopied, fx.Count()+1)
			}
			if condstore {
				if src.Lists != lists || src.ChangeLists-changeLists != len(changed) {
					t.Errorf("delta pass: %d full lists, %d change lists; want 0 and one per changed folder (%d)",
						src.Lists-lists, src.ChangeLists-changeLists, len(changed))
				}
				if tot.Listed != len(changed) {
					t.Errorf("delta pass listed %d messages, want the %d that changed", tot.Listed, len(changed))
				}
				for _, f := range rep.Mailboxes[0].Folders {
					want := "unchanged"
					if slices.Contains(changed, f.Source) {
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

// gateSink is a Sink whose Puts, after the first free ones, wait at a
// gate: each takes from gate the error it fails with, or nil (a closed
// gate) to store its message. It counts the Puts and records how many
// were in at once and their bytes. It has none of the optional
// capabilities of the Sink it wraps.
type gateSink struct {
	migrate.Sink
	free int
	gate chan error
	// ignoreCancel makes a Put wait at the gate whatever its context
	// says, as a request already sent completes; without it, the end of
	// its context ends the Put, with nothing stored.
	ignoreCancel bool

	mu                sync.Mutex
	calls, waiting    int
	cancelled         int // Puts at the gate that their context ended
	calledCancelled   int // Puts called with their context already done
	active, maxActive int
	bytes, maxBytes   int64
}

func newGateSink(store migrate.Sink, free int) *gateSink {
	return &gateSink{Sink: store, free: free, gate: make(chan error)}
}

func (s *gateSink) Put(ctx context.Context, folderID string, m *migrate.Message) (string, error) {
	s.mu.Lock()
	s.calls++
	if ctx.Err() != nil {
		s.calledCancelled++
	}
	held := s.calls > s.free
	if held {
		s.waiting++
	}
	s.active++
	s.bytes += m.Size
	s.maxActive = max(s.maxActive, s.active)
	s.maxBytes = max(s.maxBytes, s.bytes)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.active--
		s.bytes -= m.Size
		s.mu.Unlock()
	}()
	if held {
		var done <-chan struct{}
		if !s.ignoreCancel {
			done = ctx.Done()
		}
		var err error
		cancelled := false
		select {
		case err = <-s.gate:
		case <-done:
			err, cancelled = ctx.Err(), true
		}
		s.mu.Lock()
		s.waiting--
		if cancelled {
			s.cancelled++
		}
		s.mu.Unlock()
		if err != nil {
			return "", err
		}
		ctx = context.WithoutCancel(ctx) // sent before any cancellation: it completes
	}
	return s.Sink.Put(ctx, folderID, m)
}

// counts returns how many Puts were called and how many wait at the gate.
func (s *gateSink) counts() (calls, waiting int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls, s.waiting
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

// As many Puts run at once as MaxPutsPerMailbox allows and as many
// bodies as MaxBytesInFlightPerMailbox holds, never more; a message
// larger than the byte budget goes alone. Every Put waits at the gate
// until the test lets one through: each time the Engine can go no
// further, exactly that many Puts are in.
func TestEngineConcurrentPutsWithinBounds(t *testing.T) {
	const n, size = 40, 1000
	fx := bigFixture(n, size)
	for _, tc := range []struct {
		name     string
		puts     int
		maxBytes int64
	}{
		{"four Puts", 4, 64 << 20},
		{"one Put, streamed", 1, 64 << 20},
		{"bounded by bytes", 8, 2.5 * size},
		{"messages over the byte budget", 4, size / 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := min(tc.puts, max(1, int(tc.maxBytes/size)))
			synctest.Test(t, func(t *testing.T) {
				store := migratetest.NewSink()
				sink := newGateSink(store, 0)
				eng := migrate.NewEngine(&migrate.Options{MaxPutsPerMailbox: tc.puts, MaxBytesInFlightPerMailbox: tc.maxBytes})
				done := make(chan *migrate.Report)
				go func() {
					done <- eng.Run(t.Context(), migrate.Job{Mailbox: "a", Source: migratetest.NewSource(fx), Sink: sink})
				}()
				for stored := 0; stored < n; stored++ {
					synctest.Wait() // nothing moves until a Put returns
					if _, waiting := sink.counts(); waiting != min(want, n-stored) {
						t.Errorf("after %d Puts: %d Puts at once, want %d", stored, waiting, min(want, n-stored))
						close(sink.gate)
						break
					}
					sink.gate <- nil
				}
				rep := <-done
				if rep.Lost() || store.Puts != n {
					t.Errorf("%s, %d stored; want all %d", rep.Mailboxes[0].Status, store.Puts, n)
				}
				if sink.maxActive != want {
					t.Errorf("at most %d Puts at once, want %d", sink.maxActive, want)
				}
				if bound := max(tc.maxBytes, size); sink.maxBytes > bound {
					t.Errorf("%d bytes in Puts at once, bound %d", sink.maxBytes, bound)
				}
			})
		})
	}
}

// A mailbox error from one Put stops the mailbox: the Puts in flight
// beside it are cancelled, no other Put begins, what was stored before
// is committed, and the error is the mailbox's, not a message's.
func TestEngineMailboxErrorStopsConcurrentPuts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const free = 5
		fx := bigFixture(40, 500)
		store, st := migratetest.NewSink(), migrate.NewMemoryState()
		sink := newGateSink(store, free)
		done := make(chan *migrate.Report)
		go func() {
			done <- migrate.NewEngine(&migrate.Options{State: st}).Run(t.Context(),
				migrate.Job{Mailbox: "a", Source: migratetest.NewSource(fx), Sink: sink})
		}()
		synctest.Wait() // the free Puts are done, the next ones wait at the gate
		_, inFlight := sink.counts()
		if inFlight < 2 {
			close(sink.gate)
			<-done
			t.Fatalf("%d Puts in flight, want several", inFlight)
		}
		sink.gate <- migrate.MailboxError(errors.New("ErrorQuotaExceeded"))
		rep := <-done

		mr := rep.Mailboxes[0]
		if mr.Status != migrate.StatusFailed || !errors.Is(mr.Err, migrate.ErrMailbox) || len(mr.Problems) != 0 || rep.Totals().Failed != 0 {
			t.Errorf("status %s (%v), %d problems, %d failed; want the mailbox failed, no message", mr.Status, mr.Err, len(mr.Problems), rep.Totals().Failed)
		}
		if calls, _ := sink.counts(); calls != free+inFlight || sink.calledCancelled != 0 {
			t.Errorf("%d Puts, want the %d free and the %d in flight: %d begun after the mailbox failed",
				calls, free, inFlight, calls-free-inFlight)
		}
		if sink.cancelled != inFlight-1 {
			t.Errorf("%d of the other %d Puts in flight cancelled", sink.cancelled, inFlight-1)
		}
		fs, err := st.Load(t.Context(), "a", "INBOX")
		if err != nil {
			t.Fatal(err)
		}
		if store.Puts != free || rep.Totals().Copied != free || countCommitted(fs) != free {
			t.Errorf("%d stored, %d copied, %d committed; want the %d free Puts", store.Puts, rep.Totals().Copied, countCommitted(fs), free)
		}
	})
}

// countCommitted returns how many messages fs records as copied.
func countCommitted(fs migrate.FolderState) int {
	n := 0
	for _, r := range fs.Records {
		if r.Committed() {
			n++
		}
	}
	return n
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
