// Package boltstate keeps a migrate.State in a file, an embedded bbolt
// database (go.etcd.io/bbolt), so that a batch stopped at any point, by
// a crash or a power loss too, resumes where it was without copying a
// message twice.
//
//	state, err := boltstate.Open("batch.state", nil)
//	if err != nil {
//		return err
//	}
//	defer state.Close()
//	eng := migrate.NewEngine(&migrate.Options{State: state})
//
// # Layout
//
// The file holds a bucket "meta" (the layout's version) and one bucket per
// mailbox, in it one bucket per folder (each named after a '/', so that
// an empty name is a key too). A folder's bucket holds its UIDVALIDITY and
// HIGHESTMODSEQ under the key "v" and one record per UID, keyed by the UID
// in 4 big-endian bytes: the sink's item id and the flags, each after its
// length. Load reads one folder, so memory grows with the largest folder,
// never with the batch. A flag change overwrites the message's record
// (bbolt writes its page anew and reuses the old one once no reader needs
// it), so the file grows
// with the number of messages, not with the number of changes. A change
// made under a new UIDVALIDITY drops the folder's bucket and starts it
// afresh, as migrate.MemoryState does.
//
// # Durability
//
// One goroutine writes the changes, in the order they were made, many to
// a transaction (group commit): each transaction takes the changes made
// while the previous one was being written, up to
// Options.MaxChangesPerTransaction, and costs one write and two fsyncs
// (bbolt syncs the pages, then the meta page that makes them current).
// Begin returns once its transaction is on disk, since the Engine sends
// the message to the sink right after it; Begins made at once share a
// transaction, and when those of the last one were let go together the
// writer waits for them to come back (half a transaction's time, 1 ms at
// most) so that they share the next one too.
//
// Commit and SetModSeq return as soon as they are queued, and reach the
// disk with the next transaction; waiting for it, as Begin does, would
// halve the Engine's throughput (BenchmarkEngine). A crash so loses at
// most the Commits of the last transaction or two (a millisecond or so),
// whose messages stay begun: the next run finds their copies on the sink
// (migrate.WatermarkFinder) instead of copying them again. What is on
// disk after a crash is always every change up to some point, in order:
// a mod-sequence is never recorded without the Commits made before it.
// Load, Sync and Close wait until every change made before them is
// written. After a failed write (a full disk) every call returns its
// error.
//
// bbolt writes a transaction's pages where no current page is, then
// switches one of two meta pages, each with a checksum: a write torn by a
// crash leaves the previous transaction in force and never stops a later
// run from opening the file. A file damaged otherwise (by hand, by a
// broken disk) makes Open or Load fail with ErrCorrupt, which names the
// file and says when deleting it is safe; bbolt's panics and memory
// faults on a damaged page become that error too.
//
// # One process at a time
//
// Open locks the file (flock): while a State holds it, another Open, in
// another process or in this one, fails after Options.LockTimeout with
// ErrLocked. The lock goes with the process, however it ends.
package boltstate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/mailferry/mailferry/migrate"
)

// Errors of Open and of a State, matched with errors.Is.
var (
	// ErrLocked is returned by Open when another State, in this process
	// or another, has the file open.
	ErrLocked = errors.New("boltstate: state file in use")
	// ErrCorrupt is returned when the file cannot be read as a state.
	ErrCorrupt = errors.New("boltstate: state file damaged")
	// ErrClosed is returned by a State after Close.
	ErrClosed = errors.New("boltstate: state closed")
)

// formatVersion is the layout's version, kept under "version" in the
// bucket "meta".
const formatVersion = 1

// Options configures a State. A nil *Options means every default.
type Options struct {
	// LockTimeout is how long Open waits for another State to let go of
	// the file before it fails with ErrLocked. Default 100ms.
	LockTimeout time.Duration
	// MaxChangesPerTransaction bounds the changes written in one
	// transaction, and so the changes queued in memory (a Commit that
	// finds the queue full waits) and the wait of a Begin queued behind
	// them. Keep it above twice the Puts in flight (MaxMailboxes ×
	// MaxPutsPerMailbox), so that their Begins and Commits fit in one
	// transaction. Default 1024 (the figures are in BenchmarkGroupSize's
	// results, in group.go).
	MaxChangesPerTransaction int
}

func (o *Options) withDefaults() Options {
	var out Options
	if o != nil {
		out = *o
	}
	if out.LockTimeout <= 0 {
		out.LockTimeout = 100 * time.Millisecond
	}
	if out.MaxChangesPerTransaction <= 0 {
		out.MaxChangesPerTransaction = defaultMaxChanges
	}
	return out
}

// State is a migrate.State kept in a file. It is safe for concurrent use.
// Open it with Open and Close it at the end.
type State struct {
	db   *bolt.DB
	path string
	max  int

	mu    sync.Mutex
	next  *group        // the changes waiting for the next transaction
	busy  *group        // the transaction being written, or nil
	taken chan struct{} // closed (and replaced) when the writer takes next
	idle  bool          // the writer waits for kick
	kick  chan struct{}
	// gathered, when not nil, is closed once next holds gather Begins
	// (see run).
	gathered chan struct{}
	gather   int
	err      error // the first failed write; every later call returns it
	closed   bool
	stopped  chan struct{} // closed when the writer returns

	// txs, waited and writing count the transactions written, the
	// Begins they carried and the time they took, for the tests and
	// benchmarks; guarded by mu.
	txs, waited int
	writing     time.Duration

	// syncCommits makes Commit and SetModSeq wait for their transaction
	// as Begin does: only for the benchmarks that measure the choice.
	syncCommits bool
}

var _ migrate.State = (*State)(nil)

// Open opens the state file at path, creating it (mode 0600, in a
// directory created 0700 if need be) when it does not exist. It fails
// with ErrLocked when another State has the file open, and with
// ErrCorrupt when the file cannot be read.
func Open(path string, opts *Options) (*State, error) {
	o := opts.withDefaults()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("boltstate: %w", err)
	}
	db, err := openDB(path, o.LockTimeout)
	if err != nil {
		return nil, err
	}
	if err := checkFormat(db, path); err != nil {
		db.Close()
		return nil, err
	}
	s := &State{db: db, path: path, max: o.MaxChangesPerTransaction,
		next: newGroup(), taken: make(chan struct{}), kick: make(chan struct{}, 1), stopped: make(chan struct{})}
	go s.run()
	return s, nil
}

// openDB opens the bbolt file at path, turning its failures, and the
// panics and memory faults a damaged file can cause, into errors that
// say what to do.
func openDB(path string, lockTimeout time.Duration) (db *bolt.DB, err error) {
	var file *os.File // to close it when bbolt panics with it open
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if file != nil {
				file.Close()
			}
			db, err = nil, corrupt(path, fmt.Errorf("%v", r))
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{
		Timeout: lockTimeout,
		OpenFile: func(name string, flag int, mode os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, mode)
			file = f
			return f, err
		},
	})
	switch {
	case err == nil:
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, &fileError{kind: ErrLocked,
			msg: fmt.Sprintf("boltstate: %s is in use by another process (or is already open in this one)", path)}
	case errors.As(err, new(*fs.PathError)), errors.As(err, new(syscall.Errno)):
		return nil, fmt.Errorf("boltstate: %w", err) // the system's, not the content's
	case isJournal(path):
		return nil, fmt.Errorf("boltstate: %s is a JSON journal of an earlier mailferry, not a state file: give the state another file", path)
	default:
		return nil, corrupt(path, err)
	}
	// A file shorter than its pages (truncated by hand or by a broken
	// file system) would fault on the first read past its end.
	info, err := file.Stat()
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("boltstate: %w", err)
	}
	var size int64
	db.View(func(tx *bolt.Tx) error { size = tx.Size(); return nil })
	if size > info.Size() {
		db.Close()
		return nil, corrupt(path, fmt.Errorf("%d bytes long, its pages need %d", info.Size(), size))
	}
	return db, nil
}

// checkFormat makes sure db holds a state of this layout, writing the
// layout's version into a new file.
func checkFormat(db *bolt.DB, path string) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = corrupt(path, fmt.Errorf("%v", r))
		}
	}()
	var version []byte
	empty := true
	err = db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte("meta")); b != nil {
			version = bytes.Clone(b.Get([]byte("version")))
		}
		return tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
	})
	switch {
	case err != nil:
		return corrupt(path, err)
	case version == nil && empty:
		err := db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucket([]byte("meta"))
			if err != nil {
				return err
			}
			return b.Put([]byte("version"), []byte{formatVersion})
		})
		if err != nil {
			return fmt.Errorf("boltstate: write %s: %w", path, err)
		}
		return nil
	case version == nil:
		return fmt.Errorf("boltstate: %s is a bbolt file but not a mailferry state", path)
	case len(version) != 1 || version[0] != formatVersion:
		return fmt.Errorf("boltstate: %s has layout version %v; this mailferry reads version %d", path, version, formatVersion)
	}
	return nil
}

// isJournal reports whether the file at path looks like the JSON-lines
// journal that earlier versions kept.
func isJournal(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var b [1]byte
	_, err = io.ReadFull(f, b[:])
	return err == nil && b[0] == '{'
}

// fileError is an error about the state file with its own message, that
// matches kind (and cause, when there is one) with errors.Is.
type fileError struct {
	kind  error
	msg   string
	cause error
}

func (e *fileError) Error() string { return e.msg }

func (e *fileError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

func corrupt(path string, cause error) error {
	return &fileError{kind: ErrCorrupt, cause: cause, msg: fmt.Sprintf(
		"boltstate: %s is damaged and cannot be read (%v): deleting it is safe when the sink can rebuild "+
			"the state from the target (a migrate.WatermarkLister, as the exchange sink is: the next run adopts "+
			"what the target holds); with another sink every message it recorded would be copied again", path, cause)}
}

// Path returns the file's path.
func (s *State) Path() string { return s.path }

// Load implements migrate.State. It waits until every change made before
// it is written, then reads the folder's records.
func (s *State) Load(ctx context.Context, mailbox, folder string) (migrate.FolderState, error) {
	out := migrate.FolderState{Records: map[uint32]migrate.Record{}}
	if err := s.Sync(ctx); err != nil {
		return out, err
	}
	err := s.view(func(tx *bolt.Tx) error {
		box := tx.Bucket(bucketName(mailbox))
		if box == nil {
			return nil
		}
		b := box.Bucket(bucketName(folder))
		if b == nil {
			return nil
		}
		var ok bool
		if out.UIDValidity, out.ModSeq, ok = decodeMeta(b.Get(metaKey)); !ok {
			return fmt.Errorf("mailbox %q, folder %q: %w", mailbox, folder, errBadRecord)
		}
		intern := map[string]migrate.Flag{}
		c := b.Cursor()
		n := 0
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(k) != 4 {
				continue // the meta key
			}
			uid := uint32(k[0])<<24 | uint32(k[1])<<16 | uint32(k[2])<<8 | uint32(k[3])
			r, err := decodeRecord(uid, v, intern)
			if err != nil {
				return fmt.Errorf("mailbox %q, folder %q, UID %d: %w", mailbox, folder, uid, err)
			}
			out.Records[uid] = r
			if n++; n%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return migrate.FolderState{Records: map[uint32]migrate.Record{}}, err
	}
	return out, nil
}

// view runs fn in a read transaction, turning the panics and memory
// faults of a damaged file into ErrCorrupt.
func (s *State) view(fn func(*bolt.Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = corrupt(s.path, fmt.Errorf("%v", r))
		}
	}()
	err = s.db.View(fn)
	if errors.Is(err, errBadRecord) {
		return corrupt(s.path, err)
	}
	return err
}

// Begin implements migrate.State. It returns once the record is on disk.
func (s *State) Begin(ctx context.Context, mailbox string, id migrate.SourceID) error {
	return s.enqueue(ctx, change{kind: begin, mailbox: mailbox, folder: id.Folder, uidValidity: id.UIDValidity, uid: id.UID}, true)
}

// Commit implements migrate.State. It returns once the record is queued;
// the next transaction writes it (see Durability in the package
// documentation).
func (s *State) Commit(ctx context.Context, mailbox string, id migrate.SourceID, itemID string, flags []migrate.Flag) error {
	if itemID == "" {
		return errors.New("boltstate: commit without an item id")
	}
	return s.enqueue(ctx, change{kind: commit, mailbox: mailbox, folder: id.Folder, uidValidity: id.UIDValidity, uid: id.UID,
		record: encodeRecord(itemID, flags)}, s.syncCommits)
}

// SetModSeq implements migrate.State. Like Commit, it returns once the
// change is queued.
func (s *State) SetModSeq(ctx context.Context, mailbox, folder string, uidValidity uint32, modSeq uint64) error {
	return s.enqueue(ctx, change{kind: setModSeq, mailbox: mailbox, folder: folder, uidValidity: uidValidity, modSeq: modSeq}, s.syncCommits)
}

// Close writes what is queued, stops the writer and closes the file. It
// returns the error of the first failed write, if any. Closing a closed
// State does nothing.
func (s *State) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.wake()
	s.mu.Unlock()
	<-s.stopped
	err := s.db.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if err != nil {
		return fmt.Errorf("boltstate: close %s: %w", s.path, err)
	}
	return nil
}
