package migratetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mailferry/mailferry/migrate"
)

// Sink is an in-memory migrate.Sink that also implements FlagSetter,
// WatermarkFinder, WatermarkLister, ItemLister, WatermarkStamper and
// MessageIDFinder. It stamps every
// item with its SourceID (unless Unstamped says otherwise). It is safe
// for concurrent use.
type Sink struct {
	mu      sync.Mutex
	folders map[string]*SinkFolder // id -> folder
	items   map[string]*StoredItem // id -> item
	order   []string               // item ids in creation order
	nextID  int
	// PutErr, if set, is called before each Put stores a message; an error
	// it returns is returned by Put (a rejected message, a full mailbox).
	// An error matching migrate.ErrDegraded is returned too, but with the
	// stored item's id, as a sink that stored the message degraded does.
	PutErr func(m *migrate.Message) error
	// SetFlagsErr, if set, is called before each SetFlags changes an item;
	// an error it returns is returned by SetFlags.
	SetFlagsErr func(itemID string, flags []migrate.Flag) error
	// Unstamped, if set, is called by each Put; when it returns true the
	// item is stored without a watermark, as by a sink that cannot stamp
	// items, or one whose Put stored the item and stopped before stamping
	// it. FindWatermark and ListWatermarks do not find such items;
	// FindMessageID reports them without a watermark.
	Unstamped func(m *migrate.Message) bool
	// StampErr, if set, is called before each StampWatermark stamps an
	// item; an error it returns is returned by StampWatermark.
	StampErr func(itemID string, id migrate.SourceID) error
	// Puts counts the calls to Put that stored a message.
	Puts int
}

// SinkFolder is a folder of a Sink.
type SinkFolder struct {
	ID, ParentID, Name string
	Role               migrate.Role
}

var (
	_ migrate.Sink             = (*Sink)(nil)
	_ migrate.FlagSetter       = (*Sink)(nil)
	_ migrate.WatermarkFinder  = (*Sink)(nil)
	_ migrate.MessageIDFinder  = (*Sink)(nil)
	_ migrate.WatermarkLister  = (*Sink)(nil)
	_ migrate.WatermarkStamper = (*Sink)(nil)
	_ migrate.ItemLister       = (*Sink)(nil)
	_ Inspector                = (*Sink)(nil)
)

// NewSink returns an empty Sink.
func NewSink() *Sink {
	return &Sink{folders: map[string]*SinkFolder{}, items: map[string]*StoredItem{}}
}

func (s *Sink) newID(prefix string) string {
	s.nextID++
	return prefix + strconv.Itoa(s.nextID)
}

// EnsureFolder implements migrate.Sink.
func (s *Sink) EnsureFolder(ctx context.Context, parentID, name string, role migrate.Role) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if parentID != "" && s.folders[parentID] == nil {
		return "", fmt.Errorf("migratetest: no parent folder %q", parentID)
	}
	for _, f := range s.folders {
		if role != migrate.RoleNone && f.Role == role {
			return f.ID, nil
		}
		if role == migrate.RoleNone && f.ParentID == parentID && strings.EqualFold(f.Name, name) {
			return f.ID, nil
		}
	}
	f := &SinkFolder{ID: s.newID("folder-"), ParentID: parentID, Name: name, Role: role}
	s.folders[f.ID] = f
	return f.ID, nil
}

// Put implements migrate.Sink.
func (s *Sink) Put(ctx context.Context, folderID string, m *migrate.Message) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	body, err := io.ReadAll(m.Body)
	if err != nil {
		return "", migrate.TransientError(fmt.Errorf("migratetest: read body: %w", err))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var degraded error
	if s.PutErr != nil {
		if err := s.PutErr(m); errors.Is(err, migrate.ErrDegraded) {
			degraded = err
		} else if err != nil {
			return "", err
		}
	}
	if s.folders[folderID] == nil {
		return "", fmt.Errorf("migratetest: no folder %q", folderID)
	}
	it := &StoredItem{ID: s.newID("item-"), FolderID: folderID, MIME: body, Flags: slices.Clone(m.Flags),
		Received: m.InternalDate, Draft: m.HasFlag(migrate.FlagDraft), Watermark: m.ID.String(), MessageID: m.MessageID}
	if s.Unstamped != nil && s.Unstamped(m) {
		it.Watermark = ""
	}
	s.items[it.ID] = it
	s.order = append(s.order, it.ID)
	s.Puts++
	return it.ID, degraded
}

// SetFlags implements migrate.FlagSetter.
func (s *Sink) SetFlags(ctx context.Context, itemID string, flags []migrate.Flag) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.SetFlagsErr != nil {
		if err := s.SetFlagsErr(itemID, flags); err != nil {
			return err
		}
	}
	it := s.items[itemID]
	if it == nil {
		return migrate.ItemError(fmt.Errorf("migratetest: no item %q", itemID))
	}
	it.Flags = slices.Clone(flags)
	return nil
}

// ListItems implements migrate.ItemLister: every item of the folder,
// with its watermark, or without one (see Unstamped) with its Message-ID.
func (s *Sink) ListItems(ctx context.Context, folderID string, fn func(migrate.ListedItem) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var list []migrate.ListedItem
	s.mu.Lock()
	for _, itemID := range s.order {
		if it := s.items[itemID]; it.FolderID == folderID {
			w, _ := migrate.ParseSourceID(it.Watermark) // the zero SourceID when unstamped
			list = append(list, migrate.ListedItem{ItemID: it.ID, Watermark: w, MessageID: it.MessageID})
		}
	}
	s.mu.Unlock()
	for _, it := range list { // fn may call the Sink
		if err := fn(it); err != nil {
			return err
		}
	}
	return nil
}

// StampWatermark implements migrate.WatermarkStamper.
func (s *Sink) StampWatermark(ctx context.Context, itemID string, id migrate.SourceID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.StampErr != nil {
		if err := s.StampErr(itemID, id); err != nil {
			return err
		}
	}
	it := s.items[itemID]
	if it == nil {
		return migrate.ItemError(fmt.Errorf("migratetest: no item %q", itemID))
	}
	it.Watermark = id.String()
	return nil
}

// FindWatermark implements migrate.WatermarkFinder.
func (s *Sink) FindWatermark(ctx context.Context, folderID string, id migrate.SourceID) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, itemID := range s.order {
		if it := s.items[itemID]; it.FolderID == folderID && it.Watermark == id.String() {
			return it.ID, nil
		}
	}
	return "", nil
}

// FindMessageID implements migrate.MessageIDFinder.
func (s *Sink) FindMessageID(ctx context.Context, folderID, messageID string) ([]migrate.FoundItem, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var found []migrate.FoundItem
	for _, itemID := range s.order {
		if it := s.items[itemID]; it.FolderID == folderID && it.MessageID == messageID {
			w, _ := migrate.ParseSourceID(it.Watermark) // the zero SourceID when unstamped
			found = append(found, migrate.FoundItem{ItemID: it.ID, Watermark: w})
		}
	}
	return found, nil
}

// ListWatermarks implements migrate.WatermarkLister.
func (s *Sink) ListWatermarks(ctx context.Context, folderID string, fn func(id migrate.SourceID, itemID string) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	type stamped struct {
		id     migrate.SourceID
		itemID string
	}
	var list []stamped
	s.mu.Lock()
	for _, itemID := range s.order {
		it := s.items[itemID]
		if it.FolderID != folderID || it.Watermark == "" {
			continue
		}
		if w, err := migrate.ParseSourceID(it.Watermark); err == nil {
			list = append(list, stamped{w, it.ID})
		}
	}
	s.mu.Unlock()
	for _, st := range list { // fn may call the Sink
		if err := fn(st.id, st.itemID); err != nil {
			return err
		}
	}
	return nil
}

// Item implements Inspector.
func (s *Sink) Item(ctx context.Context, itemID string) (StoredItem, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.items[itemID]
	if it == nil {
		return StoredItem{}, fmt.Errorf("migratetest: no item %q", itemID)
	}
	return *it, nil
}

// Items returns every stored item in creation order.
func (s *Sink) Items() []StoredItem {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]StoredItem, 0, len(s.order))
	for _, id := range s.order {
		out = append(out, *s.items[id])
	}
	return out
}

// FolderPath returns the path of a folder, from the root, joined by "/".
func (s *Sink) FolderPath(folderID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var parts []string
	for f := s.folders[folderID]; f != nil; f = s.folders[f.ParentID] {
		parts = append([]string{f.Name}, parts...)
	}
	return strings.Join(parts, "/")
}

// FolderRole returns the role a folder was ensured with.
func (s *Sink) FolderRole(folderID string) migrate.Role {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.folders[folderID]; f != nil {
		return f.Role
	}
	return migrate.RoleNone
}

// StoredItem is a message as a sink holds it, for assertions.
type StoredItem struct {
	ID       string
	FolderID string
	// MIME is the message as the sink would export it.
	MIME []byte
	// Flags are the item's state as IMAP flags: \Seen for read, \Flagged
	// for flagged, \Answered if marked replied, keywords for categories.
	Flags    []migrate.Flag
	Received time.Time
	Draft    bool
	// Watermark is the SourceID the item is stamped with ("" if none).
	Watermark string
	MessageID string
}

// An Inspector reads back what a sink stored, for the conformance suite.
type Inspector interface {
	Item(ctx context.Context, itemID string) (StoredItem, error)
}
