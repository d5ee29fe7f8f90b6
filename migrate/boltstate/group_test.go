package boltstate

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailferry/mailferry/migrate"
)

func sid(uid uint32) migrate.SourceID {
	return migrate.SourceID{Folder: "INBOX", UIDValidity: 1, UID: uid}
}

// TestFailedWriteIsSticky fills the disk (bbolt's MaxSize): the Begin of
// the failed transaction returns its error, and so does every call after.
func TestFailedWriteIsSticky(t *testing.T) {
	ctx := t.Context()
	s, err := Open(filepath.Join(t.TempDir(), "state.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	s.db.MaxSize = 1 << 20 // written before the writer next reads it, through mu
	item := strings.Repeat("A", 2000)
	var failed error
	for uid := uint32(1); uid < 10_000 && failed == nil; uid++ {
		if err := s.Commit(ctx, "a", sid(uid), item, nil); err != nil {
			failed = err
			break
		}
		if uid%100 == 0 {
			failed = s.Begin(ctx, "a", sid(uid+100_000))
		}
	}
	if failed == nil || !strings.Contains(failed.Error(), "boltstate: write") {
		t.Fatalf("filling the disk: %v", failed)
	}
	if err := s.Begin(ctx, "a", sid(1)); err == nil || err.Error() != failed.Error() {
		t.Errorf("Begin after a failed write: %v", err)
	}
	if err := s.SetModSeq(ctx, "a", "INBOX", 1, 5); err == nil {
		t.Error("SetModSeq after a failed write succeeded")
	}
	if _, err := s.Load(ctx, "a", "INBOX"); err == nil {
		t.Error("Load after a failed write succeeded")
	}
	if err := s.Close(); err == nil {
		t.Error("Close after a failed write returned nil")
	}
}

// TestFullQueueWaits queues far more Commits than a transaction takes,
// from several goroutines: each waits for room, none is lost.
func TestFullQueueWaits(t *testing.T) {
	ctx := t.Context()
	s, err := Open(filepath.Join(t.TempDir(), "state.db"), &Options{MaxChangesPerTransaction: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for uid := uint32(1); uid <= 500; uid++ {
				if err := s.Commit(ctx, "a", sid(uint32(w)*1000+uid), "item", nil); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	fs, err := s.Load(ctx, "a", "INBOX")
	if err != nil || len(fs.Records) != 2000 {
		t.Errorf("loaded %d records, %v", len(fs.Records), err)
	}
	if txs, _, _ := Transactions(s); txs < 2000/3 {
		t.Errorf("%d transactions for 2,000 changes at most 3 each", txs)
	}
}

// TestCancelledWait: a Begin whose context ends while it waits for its
// transaction returns the context's error, and its record is written all
// the same; one that waits for room in a full queue queues nothing.
func TestCancelledWait(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "state.db"), &Options{MaxChangesPerTransaction: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A write transaction of our own holds the writer in its next one.
	tx, err := s.db.Begin(true)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := s.Begin(ctx, "a", sid(1)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Begin whose context ended: %v", err)
	}
	// The writer holds UID 1; UID 2 fills the queue; UID 3 finds no room.
	if err := s.Commit(t.Context(), "a", sid(2), "item", nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := s.Commit(ctx, "a", sid(3), "item", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Commit to a full queue whose context ended: %v", err)
	}
	tx.Rollback()
	fs, err := s.Load(t.Context(), "a", "INBOX")
	if err != nil || len(fs.Records) != 2 || fs.Records[1].Committed() || !fs.Records[2].Committed() {
		t.Errorf("loaded %+v, %v", fs, err)
	}
}

// TestBeginsShareTransactions: Begins made at once wait for one
// transaction together, not one each.
func TestBeginsShareTransactions(t *testing.T) {
	ctx := t.Context()
	s, err := Open(filepath.Join(t.TempDir(), "state.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const writers, each = 16, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for n := range each {
				id := sid(uint32(w*each + n + 1))
				if err := s.Begin(ctx, "a", id); err != nil {
					t.Error(err)
					return
				}
				if err := s.Commit(ctx, "a", id, "item", nil); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	txs, begins, took := Transactions(s)
	if begins != writers*each {
		t.Errorf("%d Begins waited, want %d", begins, writers*each)
	}
	// One transaction a Begin would be 800; the writer gathers them.
	t.Logf("%d Begins in %d transactions (%v each)", begins, txs, took/time.Duration(txs))
	if txs > writers*each/2 {
		t.Errorf("%d transactions for %d Begins from %d writers", txs, writers*each, writers)
	}
}
