package migratetest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mailferry/mailferry/migrate"
)

// Source is an in-memory migrate.Source. Folders use "/" as delimiter;
// UIDs start at 1 in each folder. It is safe for concurrent use, and tests
// may change it between runs (Append, SetFlags, Expunge, SetUIDValidity).
type Source struct {
	mu      sync.Mutex
	folders []*memFolder
	// NoModSeq makes the Source behave like a server without CONDSTORE:
	// folders have no ModSeq and ListChanges fails with migrate.ErrNoModSeq.
	NoModSeq bool
	// Lists, ChangeLists and UIDLists count the calls to List,
	// ListChanges and UIDs.
	Lists, ChangeLists, UIDLists int
	// FetchErr, if set, is called before each message is delivered by
	// Fetch; an error it returns ends the Fetch (a dropped connection).
	FetchErr func(f migrate.Folder, uid uint32) error
	// Redeliver, if set, is called before each message is delivered by
	// Fetch. When it returns true, the message is first delivered with a
	// body that breaks off halfway with an error matching
	// migrate.ErrTransient, as when a connection drops mid-body; if the
	// callback read into the break, the message is then delivered again,
	// whole, whatever the callback returned, as imapsrc does after
	// reconnecting. A callback that stopped reading before the break
	// accepted the message: its error, if any, ends the Fetch.
	Redeliver func(f migrate.Folder, uid uint32) bool
	// Redeliveries counts the messages delivered a second time (Redeliver).
	Redeliveries int
}

type memFolder struct {
	info    migrate.Folder
	nextUID uint32
	modSeq  uint64 // the folder's HIGHESTMODSEQ
	msgs    []*memMessage
}

type memMessage struct {
	info   migrate.MessageInfo
	raw    []byte
	modSeq uint64 // when it was added or its flags last changed
}

var (
	_ migrate.Source       = (*Source)(nil)
	_ migrate.ChangeLister = (*Source)(nil)
	_ migrate.UIDLister    = (*Source)(nil)
)

// NewSource returns a Source holding the fixture's folders and messages.
func NewSource(fx *Fixture) *Source {
	s := &Source{}
	for _, f := range fx.Folders {
		mf := s.addFolder(f.Path, f.Role)
		for _, m := range f.Messages {
			mf.append(m)
		}
	}
	return s
}

func (s *Source) addFolder(path []string, role migrate.Role) *memFolder {
	// Parents the fixture does not list exist as \Noselect folders.
	for n := 1; n < len(path); n++ {
		if s.find(strings.Join(path[:n], "/")) == nil {
			s.folders = append(s.folders, &memFolder{info: migrate.Folder{
				Name: strings.Join(path[:n], "/"), Path: slices.Clone(path[:n]), Delimiter: '/', NoSelect: true, Messages: -1}})
		}
	}
	mf := &memFolder{nextUID: 1, info: migrate.Folder{Name: strings.Join(path, "/"), Path: slices.Clone(path),
		Delimiter: '/', Role: role, UIDValidity: uint32(1000 + len(s.folders))}}
	s.folders = append(s.folders, mf)
	return mf
}

func (s *Source) find(name string) *memFolder {
	for _, f := range s.folders {
		if f.info.Name == name {
			return f
		}
	}
	return nil
}

func (f *memFolder) append(m FixtureMessage) uint32 {
	uid := f.nextUID
	f.nextUID++
	f.modSeq++
	f.msgs = append(f.msgs, &memMessage{raw: bytes.Clone(m.Raw), modSeq: f.modSeq, info: migrate.MessageInfo{
		UID: uid, Flags: slices.Clone(m.Flags), InternalDate: m.InternalDate, Size: int64(len(m.Raw)), MessageID: m.MessageID()}})
	return uid
}

// Append adds a message to the folder at path (created if needed) and
// returns its UID.
func (s *Source) Append(path []string, m FixtureMessage) uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.find(strings.Join(path, "/"))
	if f == nil {
		f = s.addFolder(path, migrate.RoleNone)
	}
	return f.append(m)
}

// SetFlags replaces the flags of a message.
func (s *Source) SetFlags(folder string, uid uint32, flags []migrate.Flag) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.message(folder, uid)
	if err == nil {
		f := s.find(folder)
		f.modSeq++
		m.info.Flags = slices.Clone(flags)
		m.modSeq = f.modSeq
	}
	return err
}

// Expunge removes a message.
func (s *Source) Expunge(folder string, uid uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.find(folder)
	if f == nil {
		return fmt.Errorf("migratetest: no folder %q", folder)
	}
	f.msgs = slices.DeleteFunc(f.msgs, func(m *memMessage) bool { return m.info.UID == uid })
	f.modSeq++
	return nil
}

// SetUIDValidity changes a folder's UIDVALIDITY, as a server does when it
// rebuilds its index.
func (s *Source) SetUIDValidity(folder string, v uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.find(folder); f != nil {
		f.info.UIDValidity = v
	}
}

// Hooks returns the SourceHooks with which TestSource changes s: Append,
// SetFlags and Expunge as their namesakes do, and ChangeUIDValidity as
// SetUIDValidity does, to one more than the folder's current value.
func (s *Source) Hooks() SourceHooks {
	return SourceHooks{
		Append: func(_ context.Context, f migrate.Folder, m FixtureMessage) error {
			s.Append(f.Path, m)
			return nil
		},
		SetFlags: func(_ context.Context, f migrate.Folder, uid uint32, flags []migrate.Flag) error {
			return s.SetFlags(f.Name, uid, flags)
		},
		Expunge: func(_ context.Context, f migrate.Folder, uid uint32) error {
			if _, err := s.messageLocked(f.Name, uid); err != nil {
				return err
			}
			return s.Expunge(f.Name, uid)
		},
		ChangeUIDValidity: func(_ context.Context, f migrate.Folder) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			mf := s.find(f.Name)
			if mf == nil {
				return fmt.Errorf("migratetest: no folder %q", f.Name)
			}
			mf.info.UIDValidity++
			return nil
		},
	}
}

func (s *Source) messageLocked(folder string, uid uint32) (*memMessage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.message(folder, uid)
}

func (s *Source) message(folder string, uid uint32) (*memMessage, error) {
	f := s.find(folder)
	if f == nil {
		return nil, fmt.Errorf("migratetest: no folder %q", folder)
	}
	for _, m := range f.msgs {
		if m.info.UID == uid {
			return m, nil
		}
	}
	return nil, fmt.Errorf("migratetest: no UID %d in %q", uid, folder)
}

// Folders implements migrate.Source.
func (s *Source) Folders(ctx context.Context) ([]migrate.Folder, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]migrate.Folder, 0, len(s.folders))
	for _, f := range s.folders {
		fi := f.info
		fi.Path = slices.Clone(fi.Path)
		if !fi.NoSelect {
			fi.Messages = len(f.msgs)
			fi.Bytes = 0
			for _, m := range f.msgs {
				fi.Bytes += int64(len(m.raw))
			}
			if !s.NoModSeq {
				fi.ModSeq = f.modSeq
			}
		}
		out = append(out, fi)
	}
	return out, nil
}

// selectFolder returns a snapshot of the folder's messages after checking
// its UIDVALIDITY, as an IMAP SELECT would.
func (s *Source) selectFolder(f migrate.Folder) ([]memMessage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	mf := s.find(f.Name)
	if mf == nil || mf.info.NoSelect {
		return nil, fmt.Errorf("migratetest: no selectable folder %q", f.Name)
	}
	if mf.info.UIDValidity != f.UIDValidity {
		return nil, fmt.Errorf("migratetest: folder %q: %w", f.Name, migrate.ErrUIDValidityChanged)
	}
	out := make([]memMessage, len(mf.msgs))
	for i, m := range mf.msgs {
		out[i] = *m
		out[i].info.Flags = slices.Clone(m.info.Flags)
	}
	return out, nil
}

// List implements migrate.Source.
func (s *Source) List(ctx context.Context, f migrate.Folder, fn func(migrate.MessageInfo) error) error {
	s.mu.Lock()
	s.Lists++
	s.mu.Unlock()
	return s.list(ctx, f, 0, fn)
}

// ListChanges implements migrate.ChangeLister, as CONDSTORE's
// UID FETCH 1:* (FLAGS) (CHANGEDSINCE since) would.
func (s *Source) ListChanges(ctx context.Context, f migrate.Folder, since uint64, fn func(migrate.MessageInfo) error) error {
	s.mu.Lock()
	s.ChangeLists++
	noModSeq := s.NoModSeq
	s.mu.Unlock()
	if noModSeq {
		return fmt.Errorf("migratetest: %q: %w", f.Name, migrate.ErrNoModSeq)
	}
	return s.list(ctx, f, since, fn)
}

// UIDs implements migrate.UIDLister.
func (s *Source) UIDs(ctx context.Context, f migrate.Folder) ([]uint32, error) {
	s.mu.Lock()
	s.UIDLists++
	s.mu.Unlock()
	msgs, err := s.selectFolder(f)
	if err != nil {
		return nil, err
	}
	uids := make([]uint32, len(msgs))
	for i, m := range msgs {
		uids[i] = m.info.UID
	}
	return uids, ctx.Err()
}

func (s *Source) list(ctx context.Context, f migrate.Folder, since uint64, fn func(migrate.MessageInfo) error) error {
	msgs, err := s.selectFolder(f)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if m.modSeq <= since {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(m.info); err != nil {
			return err
		}
	}
	return nil
}

// Fetch implements migrate.Source.
func (s *Source) Fetch(ctx context.Context, f migrate.Folder, uids []uint32, fn func(*migrate.Message) error) error {
	msgs, err := s.selectFolder(f)
	if err != nil {
		return err
	}
	want := map[uint32]bool{}
	for _, u := range uids {
		want[u] = true
	}
	for _, m := range msgs {
		if !want[m.info.UID] {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if s.FetchErr != nil {
			if err := s.FetchErr(f, m.info.UID); err != nil {
				return err
			}
		}
		id := migrate.SourceID{Folder: f.Name, UIDValidity: f.UIDValidity, UID: m.info.UID}
		if s.Redeliver != nil && s.Redeliver(f, m.info.UID) {
			cut := &cutBody{r: bytes.NewReader(m.raw[:len(m.raw)/2]), uid: m.info.UID}
			err := fn(&migrate.Message{ID: id, MessageInfo: m.info, Body: cut})
			if !cut.broke {
				if err != nil {
					return err
				}
				continue
			}
			s.mu.Lock()
			s.Redeliveries++
			s.mu.Unlock()
		}
		if err := fn(&migrate.Message{ID: id, MessageInfo: m.info, Body: bytes.NewReader(m.raw)}); err != nil {
			return err
		}
	}
	return nil
}

// cutBody is a body whose connection drops halfway: it yields the first
// half of the message, then fails.
type cutBody struct {
	r     *bytes.Reader
	uid   uint32
	broke bool
}

func (c *cutBody) Read(p []byte) (int, error) {
	if c.r.Len() > 0 {
		return c.r.Read(p)
	}
	c.broke = true
	return 0, migrate.TransientError(fmt.Errorf("migratetest: UID %d: connection dropped mid-body: %w", c.uid, io.ErrUnexpectedEOF))
}

// date returns t truncated to the second, as IMAP dates are.
func date(t time.Time) time.Time { return t.Truncate(time.Second) }
