package boltstate

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
)

// defaultMaxChanges is the default of Options.MaxChangesPerTransaction.
// BenchmarkGroupSize on a 2-core VM with an ext4 disk whose fdatasync
// takes about 0.2 ms (a transaction with its two syncs, 0.5 ms), with
// "puts": 16 writers each doing Begin then Commit, as the Engine's 16
// Puts in flight do (20,000x, two runs), and "flags": 4 writers queuing
// flag Commits while a fifth Begins once a millisecond (400,000x, two
// runs; the disk was busier in the second):
//
//	max     puts msgs/s   flags Commits/s   Begin p50 / p99 during flags
//	1           1,300        1,900-2,300      1.6 / 14-27 ms
//	16         15,000       26,000-39,000     1.8 / 7-33 ms
//	64         24-28,000    90,000-141,000    1.8-2.4 / 14-25 ms
//	256        24-26,000   182,000-390,000    2.5-3.9 / 12-47 ms
//	1024       23-26,000   596,000-722,000    4.7-6.3 / 13-16 ms
//	4096       19-26,000   481,000-812,000     17-34 / 64-86 ms
//	16384      22-25,000   618,000-1,149,000   28-115 / 68-130 ms
//
// Below twice the Puts in flight, their Begins and Commits no longer fit
// in one transaction; past 1024 flag Commits go little faster while a
// Begin queued behind them waits for a transaction several times longer.
// 1024 changes hold about 250 KB of records in the queue.
const defaultMaxChanges = 1024

// maxGather bounds the wait of the writer for the Begins it expects
// (see run), which is also at most half a transaction's time.
const maxGather = time.Millisecond

// fillPercent is how full bbolt fills the pages it splits. UIDs mostly
// arrive in order, appended at the end of a folder, where bbolt's default
// (half) leaves every page half empty: 200,000 messages begun then
// committed one by one take 48 MB at 0.9, 80 MB at 0.5.
const fillPercent = 0.9

type changeKind uint8

const (
	begin changeKind = iota
	commit
	setModSeq
)

// change is one change to the state, queued for the writer.
type change struct {
	kind            changeKind
	mailbox, folder string
	uidValidity     uint32
	uid             uint32
	modSeq          uint64
	record          []byte // commit: the encoded record
}

// group is the changes written in one transaction.
type group struct {
	changes []change
	waiters int           // the changes whose callers wait for done (Begins)
	done    chan struct{} // closed once written (or failed)
	err     error         // set before done is closed
}

func newGroup() *group { return &group{done: make(chan struct{})} }

// wake wakes the writer if it waits; callers hold mu.
func (s *State) wake() {
	if s.idle {
		s.idle = false
		s.kick <- struct{}{} // the writer waits for it: never blocks
	}
}

// enqueue queues c for the next transaction and, if wait, returns once it
// is written. When the next transaction is full it waits for the writer
// to take it.
func (s *State) enqueue(ctx context.Context, c change, wait bool) error {
	// A name bbolt cannot take would fail the whole transaction.
	if len(c.mailbox) >= bolt.MaxKeySize || len(c.folder) >= bolt.MaxKeySize {
		return fmt.Errorf("boltstate: a mailbox or folder name is longer than %d bytes", bolt.MaxKeySize-1)
	}
	s.mu.Lock()
	for {
		if s.err != nil {
			err := s.err
			s.mu.Unlock()
			return err
		}
		if s.closed {
			s.mu.Unlock()
			return ErrClosed
		}
		if len(s.next.changes) < s.max {
			break
		}
		taken := s.taken
		s.mu.Unlock()
		select {
		case <-taken:
		case <-ctx.Done():
			return ctx.Err()
		}
		s.mu.Lock()
	}
	g := s.next
	g.changes = append(g.changes, c)
	if wait {
		g.waiters++
	}
	if s.gathered != nil && (g.waiters >= s.gather || len(g.changes) >= s.max) {
		close(s.gathered)
		s.gathered = nil
	}
	s.wake()
	s.mu.Unlock()
	if !wait {
		return nil
	}
	select {
	case <-g.done:
		return g.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Sync returns once every change made before it is on disk, or with the
// error of the write that failed.
func (s *State) Sync(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	g := s.busy
	if len(s.next.changes) > 0 {
		g = s.next // written after busy
	}
	err := s.err
	s.mu.Unlock()
	if g == nil || err != nil {
		return err
	}
	select {
	case <-g.done:
		return g.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run is the writer: it writes the queued changes, a transaction at a
// time, until the State is closed and nothing is left.
func (s *State) run() {
	defer close(s.stopped)
	debug.SetPanicOnFault(true) // a damaged file faults: see write
	var (
		lastWaiters int           // the Begins of the last transaction
		lastTook    time.Duration // how long it took to write
		timer       = time.NewTimer(time.Hour)
	)
	timer.Stop()
	for {
		s.mu.Lock()
		for len(s.next.changes) == 0 && !s.closed {
			s.idle = true
			s.mu.Unlock()
			<-s.kick
			s.mu.Lock()
		}
		if len(s.next.changes) == 0 { // closed, and all written
			s.mu.Unlock()
			return
		}
		if s.next.waiters < lastWaiters && len(s.next.changes) < s.max && !s.closed {
			// The Begins of the last transaction were let go together
			// and most come back at once, with their next Begin: give
			// them a moment to join this transaction rather than wait
			// for it and the next.
			s.gather, s.gathered = lastWaiters, make(chan struct{})
			gathered := s.gathered
			s.mu.Unlock()
			timer.Reset(min(lastTook/2, maxGather))
			select {
			case <-gathered:
				timer.Stop() // no stale tick after Stop (Go 1.23 timers)
			case <-timer.C:
			}
			s.mu.Lock()
			s.gathered = nil
		}
		g := s.next
		s.next, s.busy = newGroup(), g
		close(s.taken)
		s.taken = make(chan struct{})
		s.mu.Unlock()

		start := time.Now()
		err := s.write(g.changes)
		lastTook, lastWaiters = time.Since(start), g.waiters
		if err != nil {
			err = fmt.Errorf("boltstate: write %s: %w", s.path, err)
		}
		s.mu.Lock()
		g.err = err
		s.txs++
		s.writing += lastTook
		s.waited += g.waiters
		if err != nil && s.err == nil {
			s.err = err
		}
		s.busy = nil
		s.mu.Unlock()
		close(g.done)
	}
}

// write applies changes, in order, in one transaction.
func (s *State) write(changes []change) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = corrupt(s.path, fmt.Errorf("%v", r))
		}
	}()
	return s.db.Update(func(tx *bolt.Tx) error {
		w := txWriter{tx: tx, folders: map[folderKey]*openFolder{}, keys: make([]byte, 4*len(changes))}
		for i := range changes {
			if err := w.apply(&changes[i]); err != nil {
				return err
			}
		}
		return w.flush()
	})
}

type folderKey struct{ mailbox, folder string }

// openFolder is a folder's bucket in a write transaction.
type openFolder struct {
	box, b      *bolt.Bucket
	uidValidity uint32
	modSeq      uint64
	dirty       bool // the meta key must be written
}

// txWriter applies changes in one write transaction.
type txWriter struct {
	tx      *bolt.Tx
	folders map[folderKey]*openFolder
	keys    []byte // room for a UID key per change: bbolt keeps keys until the commit
}

func (w *txWriter) folder(c *change) (*openFolder, error) {
	k := folderKey{c.mailbox, c.folder}
	if f := w.folders[k]; f != nil {
		return f, nil
	}
	box, err := w.tx.CreateBucketIfNotExists(bucketName(c.mailbox))
	if err != nil {
		return nil, fmt.Errorf("mailbox %q: %w", c.mailbox, err)
	}
	f := &openFolder{box: box}
	if f.b = box.Bucket(bucketName(c.folder)); f.b != nil {
		var ok bool
		if f.uidValidity, f.modSeq, ok = decodeMeta(f.b.Get(metaKey)); !ok {
			return nil, fmt.Errorf("mailbox %q, folder %q: %w", c.mailbox, c.folder, errBadRecord)
		}
	} else {
		if f.b, err = box.CreateBucket(bucketName(c.folder)); err != nil {
			return nil, fmt.Errorf("mailbox %q, folder %q: %w", c.mailbox, c.folder, err)
		}
		f.uidValidity, f.dirty = c.uidValidity, true
	}
	f.b.FillPercent = fillPercent
	w.folders[k] = f
	return f, nil
}

func (w *txWriter) apply(c *change) error {
	f, err := w.folder(c)
	if err != nil {
		return err
	}
	if f.uidValidity != c.uidValidity {
		// A new UIDVALIDITY starts the folder afresh: the old UIDs name
		// other messages now.
		name := bucketName(c.folder)
		if err := f.box.DeleteBucket(name); err != nil {
			return err
		}
		if f.b, err = f.box.CreateBucket(name); err != nil {
			return err
		}
		f.b.FillPercent = fillPercent
		f.uidValidity, f.modSeq, f.dirty = c.uidValidity, 0, true
	}
	switch c.kind {
	case begin:
		key := w.key(c.uid)
		if committed(f.b.Get(key)) {
			return nil
		}
		return f.b.Put(key, begunRecord)
	case commit:
		return f.b.Put(w.key(c.uid), c.record)
	case setModSeq:
		f.modSeq, f.dirty = c.modSeq, true
	}
	return nil
}

// key returns uid as a key that stays valid until the transaction ends.
func (w *txWriter) key(uid uint32) []byte {
	k := w.keys[:4:4]
	w.keys = w.keys[4:]
	binary.BigEndian.PutUint32(k, uid)
	return k
}

// flush writes the meta key of the folders whose meta changed.
func (w *txWriter) flush() error {
	for _, f := range w.folders {
		if f.dirty {
			if err := f.b.Put(metaKey, encodeMeta(f.uidValidity, f.modSeq)); err != nil {
				return err
			}
		}
	}
	return nil
}
