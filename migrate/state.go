package migrate

import (
	"context"
	"errors"
	"sync"
)

// Record is what the State knows of one source message.
type Record struct {
	UID uint32
	// ItemID is the sink item the message became; "" when its copy began
	// but was never committed (the process stopped between Put and Commit).
	ItemID string
	// Flags are the flags the sink item was given, for delta passes.
	Flags []Flag
}

// Committed reports whether the copy of the message finished.
func (r Record) Committed() bool { return r.ItemID != "" }

// FolderState is what the State knows of one source folder.
type FolderState struct {
	// UIDValidity is the UIDVALIDITY the records belong to, 0 if none.
	UIDValidity uint32
	// Records holds one record per UID that was begun or committed.
	Records map[uint32]Record
	// ModSeq is the folder's HIGHESTMODSEQ at the end of the last pass
	// that left nothing behind, 0 if none: the next pass may list only
	// what changed since (see ChangeLister).
	ModSeq uint64
}

// State remembers, across runs, which source messages were copied. It is
// what makes a rerun copy only what is new. Implementations must be safe
// for concurrent use by several mailboxes.
//
// A State kept across processes must survive a crash this far: a Begin
// is on disk when it returns, since the Engine sends the Sink.Put right
// after it, and a message put without a record would be copied again.
// Commit and SetModSeq may reach the disk later, in the order they were
// made, as long as Load sees them: a Commit lost in a crash leaves the
// message begun, and the next run finds its copy on the sink
// (WatermarkFinder, MessageIDFinder). A change made under a new
// UIDVALIDITY forgets the folder's records and mod-sequence.
type State interface {
	// Load returns what is recorded for folder of mailbox; a FolderState
	// with no records if nothing is.
	Load(ctx context.Context, mailbox, folder string) (FolderState, error)
	// Begin records that the copy of id starts. It leaves a committed
	// record as it is.
	Begin(ctx context.Context, mailbox string, id SourceID) error
	// Commit records that id was copied as itemID with flags (also used to
	// record new flags after a delta pass).
	Commit(ctx context.Context, mailbox string, id SourceID, itemID string, flags []Flag) error
	// SetModSeq records the folder's HIGHESTMODSEQ after a complete pass.
	SetModSeq(ctx context.Context, mailbox, folder string, uidValidity uint32, modSeq uint64) error
}

// MemoryState is a State held in memory, for tests and one-shot runs; the
// package boltstate keeps a State in a file, across processes. The zero
// value is not usable; call NewMemoryState.
type MemoryState struct {
	mu    sync.Mutex
	boxes map[string]map[string]*FolderState // mailbox -> folder -> state
}

// NewMemoryState returns an empty MemoryState.
func NewMemoryState() *MemoryState {
	return &MemoryState{boxes: map[string]map[string]*FolderState{}}
}

// folder returns the state of folder of mailbox, creating it; callers hold mu.
func (s *MemoryState) folder(mailbox, folder string) *FolderState {
	box := s.boxes[mailbox]
	if box == nil {
		box = map[string]*FolderState{}
		s.boxes[mailbox] = box
	}
	fs := box[folder]
	if fs == nil {
		fs = &FolderState{Records: map[uint32]Record{}}
		box[folder] = fs
	}
	return fs
}

// at returns the state of folder of mailbox for a change made under
// uidValidity; callers hold mu. A new UIDVALIDITY starts the folder's
// records afresh: the old UIDs name other messages now.
func (s *MemoryState) at(mailbox, folder string, uidValidity uint32) *FolderState {
	fs := s.folder(mailbox, folder)
	if fs.UIDValidity != uidValidity {
		fs.UIDValidity = uidValidity
		fs.Records = map[uint32]Record{}
		fs.ModSeq = 0
	}
	return fs
}

// Load implements State.
func (s *MemoryState) Load(ctx context.Context, mailbox, folder string) (FolderState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fs := s.folder(mailbox, folder)
	out := FolderState{UIDValidity: fs.UIDValidity, ModSeq: fs.ModSeq, Records: make(map[uint32]Record, len(fs.Records))}
	for uid, r := range fs.Records {
		out.Records[uid] = r
	}
	return out, nil
}

// Begin implements State. It leaves a committed record as it is.
func (s *MemoryState) Begin(ctx context.Context, mailbox string, id SourceID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	fs := s.at(mailbox, id.Folder, id.UIDValidity)
	if r, ok := fs.Records[id.UID]; !ok || !r.Committed() {
		fs.Records[id.UID] = Record{UID: id.UID}
	}
	return nil
}

// Commit implements State.
func (s *MemoryState) Commit(ctx context.Context, mailbox string, id SourceID, itemID string, flags []Flag) error {
	if itemID == "" {
		return errors.New("migrate: commit without an item id")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.at(mailbox, id.Folder, id.UIDValidity).Records[id.UID] = Record{UID: id.UID, ItemID: itemID, Flags: flags}
	return nil
}

// SetModSeq implements State.
func (s *MemoryState) SetModSeq(ctx context.Context, mailbox, folder string, uidValidity uint32, modSeq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.at(mailbox, folder, uidValidity).ModSeq = modSeq
	return nil
}
