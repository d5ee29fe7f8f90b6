package migrate

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
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
type State interface {
	// Load returns what is recorded for folder of mailbox; a FolderState
	// with no records if nothing is.
	Load(ctx context.Context, mailbox, folder string) (FolderState, error)
	// Begin records that the copy of id starts.
	Begin(ctx context.Context, mailbox string, id SourceID) error
	// Commit records that id was copied as itemID with flags (also used to
	// record new flags after a delta pass).
	Commit(ctx context.Context, mailbox string, id SourceID, itemID string, flags []Flag) error
	// SetModSeq records the folder's HIGHESTMODSEQ after a complete pass.
	SetModSeq(ctx context.Context, mailbox, folder string, uidValidity uint32, modSeq uint64) error
}

// MemoryState is a State held in memory, for tests and one-shot runs. The
// zero value is not usable; call NewMemoryState.
type MemoryState struct {
	mu    sync.Mutex
	boxes map[string]map[string]*FolderState // mailbox -> folder -> state
	// log, when set, is called with each change under mu (FileState).
	log func(stateLine) error
}

// NewMemoryState returns an empty MemoryState.
func NewMemoryState() *MemoryState {
	return &MemoryState{boxes: map[string]map[string]*FolderState{}}
}

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

// Begin implements State.
func (s *MemoryState) Begin(ctx context.Context, mailbox string, id SourceID) error {
	return s.apply(stateLine{Op: "begin", Mailbox: mailbox, Folder: id.Folder, UIDValidity: id.UIDValidity, UID: id.UID})
}

// Commit implements State.
func (s *MemoryState) Commit(ctx context.Context, mailbox string, id SourceID, itemID string, flags []Flag) error {
	if itemID == "" {
		return errors.New("migrate: commit without an item id")
	}
	return s.apply(stateLine{Op: "commit", Mailbox: mailbox, Folder: id.Folder, UIDValidity: id.UIDValidity, UID: id.UID, ItemID: itemID, Flags: flags})
}

// SetModSeq implements State.
func (s *MemoryState) SetModSeq(ctx context.Context, mailbox, folder string, uidValidity uint32, modSeq uint64) error {
	return s.apply(stateLine{Op: "modseq", Mailbox: mailbox, Folder: folder, UIDValidity: uidValidity, ModSeq: modSeq})
}

func (s *MemoryState) apply(l stateLine) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.log != nil {
		if err := s.log(l); err != nil {
			return err
		}
	}
	s.replay(l)
	return nil
}

// replay applies one change; callers hold mu.
func (s *MemoryState) replay(l stateLine) {
	fs := s.folder(l.Mailbox, l.Folder)
	if fs.UIDValidity != l.UIDValidity {
		// A new UIDVALIDITY starts the folder's records afresh: the old
		// UIDs name other messages now.
		fs.UIDValidity = l.UIDValidity
		fs.Records = map[uint32]Record{}
		fs.ModSeq = 0
	}
	switch l.Op {
	case "begin":
		if r, ok := fs.Records[l.UID]; !ok || !r.Committed() {
			fs.Records[l.UID] = Record{UID: l.UID}
		}
	case "commit":
		fs.Records[l.UID] = Record{UID: l.UID, ItemID: l.ItemID, Flags: l.Flags}
	case "modseq":
		fs.ModSeq = l.ModSeq
	}
}

// stateLine is one change, as FileState writes it (one JSON object a line).
type stateLine struct {
	Op          string `json:"op"`
	Mailbox     string `json:"mailbox"`
	Folder      string `json:"folder"`
	UIDValidity uint32 `json:"uidvalidity"`
	UID         uint32 `json:"uid"`
	ItemID      string `json:"item,omitempty"`
	Flags       []Flag `json:"flags,omitempty"`
	ModSeq      uint64 `json:"modseq,omitempty"`
}

// FileState is a State kept in a journal file: one JSON line per change,
// appended as it happens, so that a run stopped at any point (even by a
// crash) resumes where it was. Open it with OpenFileState; Close it at the
// end. A torn last line (a crash mid-write) is ignored when reopening.
type FileState struct {
	MemoryState
	f *os.File
}

// OpenFileState opens (or creates) the journal at path.
func OpenFileState(path string) (*FileState, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("migrate: state: %w", err)
	}
	s := &FileState{MemoryState: *NewMemoryState()}
	if err := s.load(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("migrate: state: %w", err)
	}
	s.f = f
	s.log = s.write
	return s, nil
}

func (s *FileState) load(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for n := 1; sc.Scan(); n++ {
		var l stateLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			if !strings.HasSuffix(string(sc.Bytes()), "}") {
				break // torn last line
			}
			return fmt.Errorf("migrate: state %s line %d: %w", path, n, err)
		}
		s.replay(l)
	}
	return sc.Err()
}

func (s *FileState) write(l stateLine) error {
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	if _, err := s.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("migrate: state: %w", err)
	}
	return nil
}

// Close closes the journal.
func (s *FileState) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f.Close()
}
