package migrate_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

// tokenLimiter is a Limiter that grants a token for each value sent on
// tokens, and records the n of each WaitN.
type tokenLimiter struct {
	tokens chan struct{}
	mu     sync.Mutex
	waits  []int
}

func (l *tokenLimiter) WaitN(ctx context.Context, n int) error {
	l.mu.Lock()
	l.waits = append(l.waits, n)
	l.mu.Unlock()
	for range n {
		select {
		case <-l.tokens:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// The Engine takes one token from the Limiter before each Put and puts
// nothing without one: while no token is granted nothing is put, and
// each token lets exactly one message through.
func TestLimiterPacesEachPut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fx := migratetest.Sample()
		lim := &tokenLimiter{tokens: make(chan struct{})}
		sink := migratetest.NewSink()
		done := make(chan *migrate.Report)
		go func() {
			done <- migrate.NewEngine(&migrate.Options{Limiter: lim}).Run(t.Context(),
				migrate.Job{Mailbox: "a", Source: migratetest.NewSource(fx), Sink: sink})
		}()
		for granted := 0; granted < fx.Count(); granted++ {
			synctest.Wait() // the Engine waits for a token
			if stored := len(sink.Items()); stored != granted {
				t.Errorf("%d messages put with %d tokens granted", stored, granted)
				close(lim.tokens) // every token at once: let the run end
				break
			}
			lim.tokens <- struct{}{}
		}
		rep := <-done
		if rep.Lost() || sink.Puts != fx.Count() {
			t.Errorf("%s, %d put; want all %d", rep.Mailboxes[0].Status, sink.Puts, fx.Count())
		}
		// Each Put waited for one token, and only Puts did: a waiter
		// still without its token when the run ended would have none.
		if len(lim.waits) != fx.Count() || slices.ContainsFunc(lim.waits, func(n int) bool { return n != 1 }) {
			t.Errorf("WaitN called with %v, want 1 for each of the %d messages", lim.waits, fx.Count())
		}
	})
}

// recordingDeduper is a MessageIDDeduper that records what the Engine
// shows it: the UIDs shown for each target folder, in order.
type recordingDeduper struct {
	migrate.MessageIDDeduper
	mu    sync.Mutex
	shown map[string][]uint32 // target key -> UIDs
}

func newRecordingDeduper() *recordingDeduper {
	return &recordingDeduper{shown: map[string][]uint32{}}
}

func (d *recordingDeduper) Seen(mailbox string, target migrate.Target, m migrate.MessageInfo) bool {
	d.mu.Lock()
	d.shown[target.Key()] = append(d.shown[target.Key()], m.UID)
	d.mu.Unlock()
	return d.MessageIDDeduper.Seen(mailbox, target, m)
}

// The Deduper is shown what each pass reads: every message on a first
// or a full pass, only what changed on a delta pass. So a twin of a
// message copied by an earlier run, arriving later, is caught by a full
// pass, or by the Deduper that saw the earlier run; a new Deduper on a
// delta pass never sees the first copy, and the twin is copied.
func TestDeduperIsShownWhatEachPassReads(t *testing.T) {
	for _, tc := range []struct {
		name        string
		changesOnly bool // the source lists only what changed (CONDSTORE)
		sameDeduper bool // the Deduper of the first run, not a new one
	}{
		{"full pass, new Deduper", false, false},
		{"delta pass, new Deduper", true, false},
		{"delta pass, the first run's Deduper", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := migratetest.Sample()
			src, sink, st := migratetest.NewSource(fx), migratetest.NewSink(), migrate.NewMemoryState()
			job := migrate.Job{Mailbox: "a", Source: src, Sink: sink}
			first := newRecordingDeduper()
			if rep := migrate.NewEngine(&migrate.Options{State: st, Deduper: first}).Run(t.Context(), job); rep.Lost() {
				t.Fatalf("first pass: %+v", rep.Totals())
			}
			inbox := fx.Folders[0].Messages
			all := make([]uint32, len(inbox))
			for i := range all {
				all[i] = uint32(i + 1)
			}
			if got := first.shown["Inbox"]; !slices.Equal(got, all) {
				t.Errorf("first pass: Inbox shown UIDs %v, want every one, in order: %v", got, all)
			}

			twin := src.Append([]string{"INBOX"}, inbox[0]) // the same Message-ID and size
			src.NoModSeq = !tc.changesOnly
			dedup := newRecordingDeduper()
			if tc.sameDeduper {
				dedup, first.shown = first, map[string][]uint32{}
			}
			rep := migrate.NewEngine(&migrate.Options{State: st, Deduper: dedup}).Run(t.Context(), job)
			want := append(slices.Clone(all), twin)
			if tc.changesOnly {
				want = []uint32{twin}
			}
			if got := dedup.shown["Inbox"]; !slices.Equal(got, want) {
				t.Errorf("second pass: Inbox shown UIDs %v, want %v", got, want)
			}
			for target, uids := range dedup.shown {
				if tc.changesOnly && target != "Inbox" {
					t.Errorf("second pass: unchanged folder %s shown UIDs %v", target, uids)
				}
			}
			tot := rep.Totals()
			caught := !tc.changesOnly || tc.sameDeduper
			if caught && (tot.Duplicates != 1 || tot.Copied != 0) || !caught && (tot.Duplicates != 0 || tot.Copied != 1) {
				t.Errorf("second pass: %d duplicates, %d copied; want the twin caught: %v", tot.Duplicates, tot.Copied, caught)
			}
		})
	}
}

// A run with a Filter leaves the messages it filtered out for a later run
// with a wider one: it does not record the folder's mod-sequence, so the
// next pass reads the folder again instead of finding it unchanged.
func TestFilteredMessagesCopiedByAWiderRun(t *testing.T) {
	fx := migratetest.Sample()
	var cut time.Time // just after the oldest message: it is filtered out
	for _, f := range fx.Folders {
		for _, m := range f.Messages {
			if cut.IsZero() || m.InternalDate.Before(cut) {
				cut = m.InternalDate
			}
		}
	}
	cut = cut.Add(time.Second)
	src, sink := migratetest.NewSource(fx), migratetest.NewSink()
	job := migrate.Job{Mailbox: "a", Source: src, Sink: sink}
	st := migrate.NewMemoryState()

	narrow := migrate.NewEngine(&migrate.Options{State: st, Filter: migrate.Filter{Since: cut}}).Run(t.Context(), job)
	tot := narrow.Totals()
	if narrow.Lost() || tot.Filtered == 0 || tot.Copied == 0 || tot.Copied+tot.Filtered != fx.Count() {
		t.Fatalf("narrow run: %+v; want some copied and some filtered out", tot)
	}
	filtered := tot.Filtered

	wide := migrate.NewEngine(&migrate.Options{State: st}).Run(t.Context(), job)
	if tot := wide.Totals(); wide.Lost() || tot.Copied != filtered || tot.AlreadyCopied != fx.Count()-filtered {
		t.Errorf("run without the filter: %+v; want the %d filtered out copied now, the rest already copied", tot, filtered)
	}
	checkCopied(t, fx, sink)
}
