package migratetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailferry/mailferry/migrate"
)

// A SourceOption gives TestSource what it needs beyond the source itself.
type SourceOption func(*sourceOptions)

type sourceOptions struct {
	hooks SourceHooks
}

// SourceHooks change the mailbox behind a source under test, from outside
// the source (for an IMAP server, on a connection of their own), so that
// TestSource can check how the source sees changes made between its
// calls. Each hook is optional: the subtests that need a missing hook
// skip, naming it. Every hook is given the folder as the source lists it
// (Folder.Name is the source's own name for it, the IMAP mailbox name for
// an IMAP source).
//
// TestSource calls the hooks last, after every check that relies on the
// fixture being intact: Append, SetFlags and Expunge on the fixture
// folder with the most messages, ChangeUIDValidity on the one with the
// most messages among those without a role (never the inbox, when the
// fixture has another folder).
type SourceHooks struct {
	// Append adds m to folder f, with its flags and InternalDate (IMAP
	// APPEND). TestSource checks that ListChanges reports it.
	Append func(ctx context.Context, f migrate.Folder, m FixtureMessage) error
	// SetFlags replaces the flags of the message uid of folder f (IMAP
	// UID STORE uid FLAGS (...)). TestSource checks that ListChanges
	// reports the change.
	SetFlags func(ctx context.Context, f migrate.Folder, uid uint32, flags []migrate.Flag) error
	// Expunge removes the message uid from folder f (IMAP UID STORE uid
	// +FLAGS (\Deleted) then UID EXPUNGE uid). TestSource calls it
	// between a List and a Fetch.
	Expunge func(ctx context.Context, f migrate.Folder, uid uint32) error
	// ChangeUIDValidity gives folder f another UIDVALIDITY, as a server
	// does when the folder is deleted and created again or its index is
	// rebuilt. The folder must exist afterwards under the same name; it
	// may hold other messages, or none.
	ChangeUIDValidity func(ctx context.Context, f migrate.Folder) error
}

// WithHooks gives TestSource the means to change the mailbox behind the
// source (see SourceHooks).
func WithHooks(h SourceHooks) SourceOption {
	return func(o *sourceOptions) { o.hooks = h }
}

// TestSource checks that src, seeded with want, behaves as migrate.Source
// requires: every fixture folder listed with its role and path, every
// message listed with its flags, date, size and Message-ID, once, in
// ascending UID order; bodies fetched byte for byte, each message once
// and in ascending UID order whatever the order and repetitions of the
// UIDs asked for; vanished UIDs left out; a body left partly read not
// disturbing the next one; no \Seen set by fetching; callback errors
// stopping List and Fetch; cancellation honoured; a stale UIDVALIDITY
// detected by List, Fetch and UIDs (UIDLister). Empty folders are fine.
//
// With SourceHooks (WithHooks) it also changes the mailbox: what
// ListChanges (ChangeLister) reports after flag changes and an append, a
// message expunged between List and Fetch, a folder whose UIDVALIDITY
// changed. Such a mailbox is no longer want afterwards.
//
// Like fstest.TestFS, it is meant to be called from any backend's tests;
// it takes a *testing.T, not a testing.TB, because it runs subtests.
// The source may hold more folders than want (servers create some). The
// fixture must hold at least one message, and the messages of a folder
// distinct Message-IDs: the suite matches messages by Message-ID.
func TestSource(t *testing.T, src migrate.Source, want *Fixture, opts ...SourceOption) {
	t.Helper()
	var o sourceOptions
	for _, opt := range opts {
		opt(&o)
	}
	if err := checkFixture(want); err != nil {
		t.Fatalf("TestSource: %v", err)
	}
	ctx := t.Context()
	folders, err := src.Folders(ctx)
	if err != nil {
		t.Fatalf("Folders: %v", err)
	}
	byPath := map[string]migrate.Folder{}
	for _, f := range folders {
		if f.Name == "" {
			t.Errorf("Folders: a folder has no Name: %+v", f)
		}
		// Parents before children: every listed ancestor is already seen.
		for n := 1; n < len(f.Path); n++ {
			parent := strings.Join(f.Path[:n], "/")
			if _, seen := byPath[parent]; !seen && slices.ContainsFunc(folders, func(g migrate.Folder) bool { return slices.Equal(g.Path, f.Path[:n]) }) {
				t.Errorf("Folders: %q listed before its parent %q", f.Name, parent)
			}
		}
		byPath[strings.Join(f.Path, "/")] = f
	}
	missing := false
	for _, wf := range want.Folders {
		key := strings.Join(wf.Path, "/")
		f, ok := byPath[key]
		if !ok {
			t.Errorf("Folders: no folder with path %q (have %v)", key, pathsOf(folders))
			missing = true
			continue
		}
		t.Run("folder="+key, func(t *testing.T) {
			if wf.Role != migrate.RoleNone && f.Role != wf.Role {
				t.Errorf("role = %q, want %q", f.Role, wf.Role)
			}
			if f.NoSelect || f.UIDValidity == 0 {
				t.Fatalf("folder is not selectable (NoSelect=%v, UIDValidity=%d)", f.NoSelect, f.UIDValidity)
			}
			if f.Messages >= 0 && f.Messages != len(wf.Messages) {
				t.Errorf("Messages = %d, want %d", f.Messages, len(wf.Messages))
			}
			checkFolder(ctx, t, src, f, wf)
		})
	}
	if missing {
		t.FailNow() // the subtests below need every fixture folder
	}

	// The fixture folder with the most messages (the first of them).
	busiest := want.Folders[0]
	for _, wf := range want.Folders {
		if len(wf.Messages) > len(busiest.Messages) {
			busiest = wf
		}
	}
	raw := map[string][]byte{} // Message-ID -> body, whatever the folder
	for _, m := range busiest.Messages {
		raw[m.MessageID()] = m.Raw
	}
	t.Run("cancelled", func(t *testing.T) {
		checkCancelled(ctx, t, src, byPath[strings.Join(busiest.Path, "/")])
	})

	// The subtests that change the mailbox, last.
	t.Run("ListChanges", func(t *testing.T) {
		checkListChanges(ctx, t, src, busiest.Path, o.hooks, raw)
	})
	t.Run("expunged-before-fetch", func(t *testing.T) {
		checkExpunged(ctx, t, src, busiest.Path, o.hooks, raw)
	})
	t.Run("UIDVALIDITY-changed", func(t *testing.T) {
		checkUIDValidityChanged(ctx, t, src, recreated(want).Path, o.hooks)
	})
}

// recreated returns the folder whose UIDVALIDITY TestSource has changed:
// the fixture folder with the most messages among those without a role
// (an IMAP hook deletes and creates it again, which IMAP forbids for
// INBOX and a server may handle apart for special-use folders), else
// among those other than the inbox, else the first.
func recreated(fx *Fixture) FixtureFolder {
	for _, ok := range []func(FixtureFolder) bool{
		func(f FixtureFolder) bool {
			return f.Role == migrate.RoleNone && !strings.EqualFold(strings.Join(f.Path, "/"), "INBOX")
		},
		func(f FixtureFolder) bool {
			return f.Role != migrate.RoleInbox && !strings.EqualFold(strings.Join(f.Path, "/"), "INBOX")
		},
	} {
		best := -1
		for i, f := range fx.Folders {
			if ok(f) && (best < 0 || len(f.Messages) > len(fx.Folders[best].Messages)) {
				best = i
			}
		}
		if best >= 0 {
			return fx.Folders[best]
		}
	}
	return fx.Folders[0]
}

// checkFixture tells why TestSource cannot work with fx, if it cannot.
func checkFixture(fx *Fixture) error {
	if fx == nil || len(fx.Folders) == 0 {
		return errors.New("the fixture has no folders: give TestSource a fixture with at least one message (Sample is one)")
	}
	if fx.Count() == 0 {
		return errors.New("the fixture has no messages: give TestSource a fixture with at least one message (Sample is one)")
	}
	paths := map[string]bool{}
	for _, wf := range fx.Folders {
		key := strings.Join(wf.Path, "/")
		if len(wf.Path) == 0 {
			return errors.New("a fixture folder has no Path")
		}
		if paths[key] {
			return fmt.Errorf("the fixture has folder %q twice", key)
		}
		paths[key] = true
		ids := map[string]bool{}
		for i, m := range wf.Messages {
			id := m.MessageID()
			if id == "" {
				return fmt.Errorf("fixture folder %q: message %d has no Message-ID (TestSource matches messages by Message-ID)", key, i)
			}
			if ids[id] {
				return fmt.Errorf("fixture folder %q: Message-ID %s twice (TestSource matches messages by Message-ID)", key, id)
			}
			ids[id] = true
		}
	}
	return nil
}

func pathsOf(folders []migrate.Folder) []string {
	var out []string
	for _, f := range folders {
		out = append(out, strings.Join(f.Path, "/"))
	}
	return out
}

// folderAt lists src's folders again and returns the one at path, as it
// is now.
func folderAt(ctx context.Context, t testing.TB, src migrate.Source, path []string) migrate.Folder {
	t.Helper()
	folders, err := src.Folders(ctx)
	if err != nil {
		t.Fatalf("Folders: %v", err)
	}
	for _, f := range folders {
		if slices.Equal(f.Path, path) {
			return f
		}
	}
	t.Fatalf("Folders: no folder with path %q (have %v)", strings.Join(path, "/"), pathsOf(folders))
	return migrate.Folder{}
}

func listAll(ctx context.Context, t testing.TB, src migrate.Source, f migrate.Folder) []migrate.MessageInfo {
	t.Helper()
	var infos []migrate.MessageInfo
	if err := src.List(ctx, f, func(m migrate.MessageInfo) error { infos = append(infos, m); return nil }); err != nil {
		t.Fatalf("List: %v", err)
	}
	return infos
}

func uidsOf(infos []migrate.MessageInfo) []uint32 {
	uids := make([]uint32, len(infos))
	for i, m := range infos {
		uids[i] = m.UID
	}
	return uids
}

// fetched is what a Fetch delivered of one message.
type fetched struct {
	UID       uint32
	MessageID string
	Body      []byte
}

// fetchAll fetches uids from f, reading every body whole.
func fetchAll(ctx context.Context, src migrate.Source, f migrate.Folder, uids []uint32) ([]fetched, error) {
	var got []fetched
	err := src.Fetch(ctx, f, uids, func(m *migrate.Message) error {
		body, err := io.ReadAll(m.Body)
		if err != nil {
			return fmt.Errorf("reading the body of UID %d: %w", m.UID, err)
		}
		got = append(got, fetched{m.UID, m.MessageID, body})
		return nil
	})
	return got, err
}

func fetchedUIDs(got []fetched) []uint32 {
	uids := make([]uint32, len(got))
	for i, m := range got {
		uids[i] = m.UID
	}
	return uids
}

func checkFolder(ctx context.Context, t testing.TB, src migrate.Source, f migrate.Folder, wf FixtureFolder) {
	infos := listAll(ctx, t, src, f)
	if len(infos) != len(wf.Messages) {
		t.Fatalf("List returned %d messages, want %d", len(infos), len(wf.Messages))
	}
	wantByID := map[string]FixtureMessage{}
	for _, m := range wf.Messages {
		wantByID[m.MessageID()] = m
	}
	listed := map[uint32]migrate.MessageInfo{}
	seenID := map[string]uint32{}
	uids := uidsOf(infos)
	for i, info := range infos {
		if i > 0 && info.UID <= infos[i-1].UID {
			t.Errorf("List: UID %d after %d: not ascending", info.UID, infos[i-1].UID)
		}
		listed[info.UID] = info
		if other, dup := seenID[info.MessageID]; dup {
			t.Errorf("List: UIDs %d and %d both have Message-ID %q: a message is listed twice", other, info.UID, info.MessageID)
		}
		seenID[info.MessageID] = info.UID
		wm, ok := wantByID[info.MessageID]
		if !ok {
			t.Errorf("List: UID %d has Message-ID %q, not in the fixture", info.UID, info.MessageID)
			continue
		}
		checkInfo(t, "List", info, wm)
	}

	if ul, ok := src.(migrate.UIDLister); ok {
		got, err := ul.UIDs(ctx, f)
		if err != nil {
			t.Errorf("UIDs: %v", err)
		} else if !slices.Equal(got, uids) {
			t.Errorf("UIDs = %v, want the listed %v", got, uids)
		}
		stale := f
		stale.UIDValidity++
		if _, err := ul.UIDs(ctx, stale); !errors.Is(err, migrate.ErrUIDValidityChanged) {
			t.Errorf("UIDs with a stale UIDVALIDITY: err = %v, want ErrUIDValidityChanged", err)
		}
	}

	// Fetch everything: bodies byte for byte, in order, each once.
	var got []uint32
	err := src.Fetch(ctx, f, uids, func(m *migrate.Message) error {
		got = append(got, m.UID)
		body, err := io.ReadAll(m.Body)
		if err != nil {
			return err
		}
		if info, ok := listed[m.UID]; !ok {
			t.Errorf("Fetch delivered UID %d, which List did not list", m.UID)
		} else if m.MessageID != info.MessageID {
			t.Errorf("Fetch UID %d: Message-ID %q, List said %q", m.UID, m.MessageID, info.MessageID)
		}
		if m.ID.UID != m.UID || m.ID.Folder != f.Name || m.ID.UIDValidity != f.UIDValidity {
			t.Errorf("Fetch UID %d: ID = %+v, want folder %q, UIDVALIDITY %d", m.UID, m.ID, f.Name, f.UIDValidity)
		}
		wm, ok := wantByID[m.MessageID]
		if !ok {
			t.Errorf("Fetch UID %d: Message-ID %q, not in the fixture", m.UID, m.MessageID)
			return nil
		}
		if !bytes.Equal(body, wm.Raw) {
			t.Errorf("Fetch UID %d (%s): body differs from the fixture (%d bytes, want %d)", m.UID, m.MessageID, len(body), len(wm.Raw))
		}
		checkInfo(t, "Fetch", m.MessageInfo, wm)
		return nil
	})
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if !slices.Equal(got, uids) {
		t.Errorf("Fetch delivered UIDs %v, want %v", got, uids)
	}

	// No UIDs: nothing delivered, no error.
	calls := 0
	if err := src.Fetch(ctx, f, nil, func(*migrate.Message) error { calls++; return nil }); err != nil || calls != 0 {
		t.Errorf("Fetch of no UIDs: %v after %d calls, want no error and no call", err, calls)
	}

	// The contract: "each message of folder f whose UID is in uids ... in
	// ascending UID order". UIDs asked for in descending order, each
	// twice, still deliver each message once, ascending.
	if len(uids) > 0 {
		var asked []uint32
		for _, u := range slices.Backward(uids) {
			asked = append(asked, u, u)
		}
		got, err := fetchAll(ctx, src, f, asked)
		if err != nil {
			t.Errorf("Fetch of %v: %v", asked, err)
		} else if !slices.Equal(fetchedUIDs(got), uids) {
			t.Errorf("Fetch of %v (descending, each twice) delivered %v, want each once, ascending: %v", asked, fetchedUIDs(got), uids)
		}
	}

	// A subset plus a UID that does not exist: the missing one is left
	// out, without an error.
	absent := uint32(1000)
	if len(uids) > 0 {
		absent = uids[len(uids)-1] + 1000
	}
	subset, wantSubset := []uint32{absent}, []uint32(nil)
	if len(uids) > 0 {
		subset = []uint32{uids[0], uids[len(uids)-1], absent}
		wantSubset = slices.Compact([]uint32{uids[0], uids[len(uids)-1]})
	}
	if got, err := fetchAll(ctx, src, f, subset); err != nil {
		t.Errorf("Fetch of %v: %v", subset, err)
	} else if !slices.Equal(fetchedUIDs(got), wantSubset) {
		t.Errorf("Fetch of %v delivered %v, want %v", subset, fetchedUIDs(got), wantSubset)
	}

	checkPartialReads(ctx, t, src, f, uids, listed, wantByID)

	if len(uids) > 0 {
		// A callback error stops Fetch and comes back.
		stop := errors.New("stop here")
		calls := 0
		err = src.Fetch(ctx, f, uids, func(*migrate.Message) error { calls++; return stop })
		if !errors.Is(err, stop) || calls != 1 {
			t.Errorf("Fetch with a failing callback: err = %v after %d calls, want %v after 1", err, calls, stop)
		}
		// And List.
		calls = 0
		err = src.List(ctx, f, func(migrate.MessageInfo) error { calls++; return stop })
		if !errors.Is(err, stop) || calls != 1 {
			t.Errorf("List with a failing callback: err = %v after %d calls, want %v after 1", err, calls, stop)
		}
	}

	// Fetching left the flags alone (no \Seen).
	after := listAll(ctx, t, src, f)
	if !slices.Equal(uidsOf(after), uids) {
		t.Errorf("List after Fetch: UIDs %v, were %v", uidsOf(after), uids)
	} else {
		for i := range after {
			if !migrate.SameFlags(withoutRecent(after[i].Flags), withoutRecent(infos[i].Flags)) {
				t.Errorf("UID %d: flags %v after Fetch, were %v", after[i].UID, after[i].Flags, infos[i].Flags)
			}
		}
	}

	// A changed UIDVALIDITY is detected, before anything is delivered.
	stale := f
	stale.UIDValidity++
	calls = 0
	err = src.List(ctx, stale, func(migrate.MessageInfo) error { calls++; return nil })
	if !errors.Is(err, migrate.ErrUIDValidityChanged) || calls != 0 {
		t.Errorf("List with a stale UIDVALIDITY: err = %v after %d calls, want ErrUIDValidityChanged after none", err, calls)
	}
	staleUIDs := uids
	if len(staleUIDs) == 0 {
		staleUIDs = []uint32{1}
	}
	calls = 0
	err = src.Fetch(ctx, stale, staleUIDs, func(*migrate.Message) error { calls++; return nil })
	if !errors.Is(err, migrate.ErrUIDValidityChanged) || calls != 0 {
		t.Errorf("Fetch with a stale UIDVALIDITY: err = %v after %d messages, want ErrUIDValidityChanged after none", err, calls)
	}
}

// checkPartialReads fetches uids with a callback that reads some bodies
// only in part, or not at all, and returns: the message after each such
// one must come whole and exact.
func checkPartialReads(ctx context.Context, t testing.TB, src migrate.Source, f migrate.Folder, uids []uint32,
	listed map[uint32]migrate.MessageInfo, wantByID map[string]FixtureMessage) {
	if len(uids) == 0 {
		return
	}
	// Odd positions are read whole; even ones in part (0, 4, ...) or not
	// at all (2, 6, ...). With one message, its body is read in part.
	var got []uint32
	i := 0
	err := src.Fetch(ctx, f, uids, func(m *migrate.Message) error {
		defer func() { i++ }()
		got = append(got, m.UID)
		wm, ok := wantByID[listed[m.UID].MessageID]
		if !ok {
			return nil // checkFolder reports it
		}
		switch {
		case i%2 == 1:
			body, err := io.ReadAll(m.Body)
			if err != nil {
				return fmt.Errorf("reading the body of UID %d: %w", m.UID, err)
			}
			if !bytes.Equal(body, wm.Raw) {
				t.Errorf("Fetch UID %d after a body left %s: body differs from the fixture (%d bytes, want %d)",
					m.UID, []string{"partly read", "unread"}[(i/2)%2], len(body), len(wm.Raw))
			}
		case i%4 == 0:
			part := make([]byte, min(10, len(wm.Raw)/2))
			if _, err := io.ReadFull(m.Body, part); err != nil {
				return fmt.Errorf("reading %d bytes of UID %d: %w", len(part), m.UID, err)
			}
			if !bytes.Equal(part, wm.Raw[:len(part)]) {
				t.Errorf("Fetch UID %d: the body starts %q, want %q", m.UID, part, wm.Raw[:len(part)])
			}
		}
		return nil
	})
	if err != nil {
		t.Errorf("Fetch reading bodies in part: %v", err)
	} else if !slices.Equal(got, uids) {
		t.Errorf("Fetch reading bodies in part delivered %v, want %v", got, uids)
	}
}

// checkCancelled checks List, Fetch and UIDs with a cancelled context:
// each must fail.
func checkCancelled(ctx context.Context, t testing.TB, src migrate.Source, f migrate.Folder) {
	uids := uidsOf(listAll(ctx, t, src, f))
	c, cancel := context.WithCancel(ctx)
	cancel()
	if err := src.List(c, f, func(migrate.MessageInfo) error { return nil }); err == nil {
		t.Errorf("List with a cancelled context returned no error")
	}
	if err := src.Fetch(c, f, uids, func(*migrate.Message) error { return nil }); err == nil {
		t.Errorf("Fetch of %v with a cancelled context returned no error", uids)
	}
	if ul, ok := src.(migrate.UIDLister); ok {
		if _, err := ul.UIDs(c, f); err == nil {
			t.Errorf("UIDs with a cancelled context returned no error")
		}
	}
}

// addedMessage is the message checkListChanges appends.
func addedMessage() FixtureMessage {
	return FixtureMessage{
		Raw:          textMessage(900, "Grace <grace@example.com>", "alice@example.com", "Added during the test", "Appended after the first listing."),
		Flags:        []migrate.Flag{migrate.FlagSeen},
		InternalDate: time.Date(2024, time.April, 2, 9, 30, 0, 0, time.UTC),
	}
}

// toggled returns flags with \Flagged added or removed.
func toggled(flags []migrate.Flag) []migrate.Flag {
	flags = withoutRecent(flags)
	if migrate.ContainsFlag(flags, migrate.FlagFlagged) {
		return slices.DeleteFunc(flags, func(f migrate.Flag) bool { return strings.EqualFold(string(f), string(migrate.FlagFlagged)) })
	}
	return append(flags, migrate.FlagFlagged)
}

// checkListChanges checks ListChanges: nothing reported since the
// folder's own ModSeq; then, after the hooks changed the flags of the
// last message, appended one, and changed the flags of the first, exactly
// those three, in ascending UID order (not in the order of the changes).
func checkListChanges(ctx context.Context, t *testing.T, src migrate.Source, path []string, h SourceHooks, raw map[string][]byte) {
	cl, ok := src.(migrate.ChangeLister)
	if !ok {
		t.Skip("the source is not a migrate.ChangeLister")
	}
	f := folderAt(ctx, t, src, path)
	if f.ModSeq == 0 {
		t.Skipf("the source reports no ModSeq for folder %q (no CONDSTORE)", f.Name)
	}
	var got []migrate.MessageInfo
	collect := func(m migrate.MessageInfo) error { got = append(got, m); return nil }
	err := cl.ListChanges(ctx, f, f.ModSeq, collect)
	if errors.Is(err, migrate.ErrNoModSeq) {
		t.Skipf("ListChanges since the folder's ModSeq %d: %v", f.ModSeq, err)
	}
	if err != nil || len(got) != 0 {
		t.Errorf("ListChanges since the folder's own ModSeq %d: %v, reported UIDs %v; want nothing", f.ModSeq, err, uidsOf(got))
	}
	if h.SetFlags == nil && h.Append == nil {
		t.Skip("no SourceHooks.SetFlags nor SourceHooks.Append: what ListChanges reports after a change is not checked")
	}

	before := listAll(ctx, t, src, f)
	want := map[uint32][]migrate.Flag{} // UID -> new flags
	setFlags := func(m migrate.MessageInfo) {
		t.Helper()
		flags := toggled(m.Flags)
		if err := h.SetFlags(ctx, f, m.UID, flags); err != nil {
			t.Fatalf("SourceHooks.SetFlags(%q, %d, %v): %v", f.Name, m.UID, flags, err)
		}
		want[m.UID] = flags
	}
	if h.SetFlags != nil && len(before) > 0 {
		setFlags(before[len(before)-1])
	}
	added := addedMessage()
	if h.Append != nil {
		if err := h.Append(ctx, f, added); err != nil {
			t.Fatalf("SourceHooks.Append(%q): %v", f.Name, err)
		}
		raw[added.MessageID()] = added.Raw
	}
	if h.SetFlags != nil && len(before) > 1 {
		setFlags(before[0])
	}

	// Folder.ModSeq: "When it equals what the State recorded after the
	// last complete pass, nothing in the folder changed." Folders is what
	// the Engine asks first.
	now := folderAt(ctx, t, src, path)
	if now.ModSeq == f.ModSeq {
		t.Errorf("Folders: %q still has ModSeq %d after its messages changed", f.Name, now.ModSeq)
	}
	if h.Append != nil && now.Messages >= 0 && now.Messages != len(before)+1 {
		t.Errorf("Folders: %q has Messages = %d after SourceHooks.Append, want %d", f.Name, now.Messages, len(before)+1)
	}

	got = nil
	if err := cl.ListChanges(ctx, f, f.ModSeq, collect); err != nil {
		t.Fatalf("ListChanges since %d: %v", f.ModSeq, err)
	}
	var wantUIDs []uint32
	for _, m := range before {
		if _, ok := want[m.UID]; ok {
			wantUIDs = append(wantUIDs, m.UID)
		}
	}
	last := uint32(0)
	if len(before) > 0 {
		last = before[len(before)-1].UID
	}
	addedSeen := 0
	var gotUIDs []uint32
	for i, m := range got {
		if i > 0 && m.UID <= got[i-1].UID {
			t.Errorf("ListChanges: UID %d after %d: not ascending", m.UID, got[i-1].UID)
		}
		if flags, ok := want[m.UID]; ok {
			gotUIDs = append(gotUIDs, m.UID)
			if !migrate.SameFlags(withoutRecent(m.Flags), flags) {
				t.Errorf("ListChanges: UID %d has flags %v, want the new %v", m.UID, m.Flags, flags)
			}
			continue
		}
		if h.Append != nil && m.UID > last && m.MessageID == added.MessageID() {
			addedSeen++
			checkInfo(t, "ListChanges", m, added)
			continue
		}
		t.Errorf("ListChanges: UID %d (%s) reported, but it neither changed nor was added", m.UID, m.MessageID)
	}
	if !slices.Equal(gotUIDs, wantUIDs) {
		t.Errorf("ListChanges reported the changed UIDs %v, want %v", gotUIDs, wantUIDs)
	}
	if h.Append != nil && addedSeen != 1 {
		t.Errorf("ListChanges reported the appended message %d times, want once", addedSeen)
	}

	// The hooks did what they say (otherwise the failures above are theirs).
	after := listAll(ctx, t, src, f)
	for _, m := range after {
		if flags, ok := want[m.UID]; ok && !migrate.SameFlags(withoutRecent(m.Flags), flags) {
			t.Errorf("List: UID %d has flags %v after SourceHooks.SetFlags(%v)", m.UID, m.Flags, flags)
		}
	}
	if h.Append != nil && !slices.ContainsFunc(after, func(m migrate.MessageInfo) bool { return m.MessageID == added.MessageID() }) {
		t.Errorf("List does not list %s after SourceHooks.Append", added.MessageID())
	}
}

// checkExpunged expunges a message between List and Fetch: Fetch leaves
// it out and delivers the others whole; List no longer lists it;
// ListChanges does not report it.
func checkExpunged(ctx context.Context, t *testing.T, src migrate.Source, path []string, h SourceHooks, raw map[string][]byte) {
	if h.Expunge == nil {
		t.Skip("no SourceHooks.Expunge: a message expunged between List and Fetch is not checked")
	}
	f := folderAt(ctx, t, src, path)
	infos := listAll(ctx, t, src, f)
	if len(infos) < 2 {
		t.Skipf("folder %q has %d messages; the check needs two", f.Name, len(infos))
	}
	uids := uidsOf(infos)
	gone := infos[(len(infos)-1)/2].UID
	if err := h.Expunge(ctx, f, gone); err != nil {
		t.Fatalf("SourceHooks.Expunge(%q, %d): %v", f.Name, gone, err)
	}
	wantUIDs := slices.DeleteFunc(slices.Clone(uids), func(u uint32) bool { return u == gone })
	got, err := fetchAll(ctx, src, f, uids)
	defer func() {
		if now := folderAt(ctx, t, src, path); now.Messages >= 0 && now.Messages != len(wantUIDs) {
			t.Errorf("Folders: %q has Messages = %d after UID %d was expunged, want %d", f.Name, now.Messages, gone, len(wantUIDs))
		}
	}()
	if err != nil {
		t.Errorf("Fetch of %v after UID %d was expunged: %v", uids, gone, err)
	} else if !slices.Equal(fetchedUIDs(got), wantUIDs) {
		t.Errorf("Fetch of %v after UID %d was expunged delivered %v, want %v", uids, gone, fetchedUIDs(got), wantUIDs)
	}
	for _, m := range got {
		if want, ok := raw[m.MessageID]; !ok || !bytes.Equal(m.Body, want) {
			t.Errorf("Fetch UID %d (%s) after an expunge: body differs from the fixture (%d bytes, want %d)", m.UID, m.MessageID, len(m.Body), len(want))
		}
	}
	if after := uidsOf(listAll(ctx, t, src, f)); !slices.Equal(after, wantUIDs) {
		t.Errorf("List after UID %d was expunged: %v, want %v", gone, after, wantUIDs)
	}
	if cl, ok := src.(migrate.ChangeLister); ok && f.ModSeq != 0 {
		var changed []uint32
		err := cl.ListChanges(ctx, f, f.ModSeq, func(m migrate.MessageInfo) error { changed = append(changed, m.UID); return nil })
		if (err != nil && !errors.Is(err, migrate.ErrNoModSeq)) || len(changed) != 0 {
			t.Errorf("ListChanges after an expunge: %v, reported %v; want nothing (an expunge neither adds nor changes)", err, changed)
		}
	}
}

// checkUIDValidityChanged has the hook change the folder's UIDVALIDITY:
// List, Fetch and UIDs with the folder as it was fail with
// ErrUIDValidityChanged, before delivering anything; with the folder as
// it is now they work.
func checkUIDValidityChanged(ctx context.Context, t *testing.T, src migrate.Source, path []string, h SourceHooks) {
	if h.ChangeUIDValidity == nil {
		t.Skip("no SourceHooks.ChangeUIDValidity: a real UIDVALIDITY change is not checked (a made-up stale one is, per folder)")
	}
	old := folderAt(ctx, t, src, path)
	uids := uidsOf(listAll(ctx, t, src, old))
	if len(uids) == 0 {
		uids = []uint32{1}
	}
	if err := h.ChangeUIDValidity(ctx, old); err != nil {
		t.Fatalf("SourceHooks.ChangeUIDValidity(%q): %v", old.Name, err)
	}
	now := folderAt(ctx, t, src, path)
	stale := now.UIDValidity == old.UIDValidity
	if stale {
		// Either the hook failed or Folders is out of date; the checks
		// below of the folder as it was hold either way.
		t.Errorf("Folders: %q still has UIDVALIDITY %d after SourceHooks.ChangeUIDValidity", now.Name, now.UIDValidity)
	}
	// Fetch first: a source may keep the folder selected from the
	// listing above and must not trust that selection.
	calls := 0
	err := src.Fetch(ctx, old, uids, func(*migrate.Message) error { calls++; return nil })
	if !errors.Is(err, migrate.ErrUIDValidityChanged) || calls != 0 {
		t.Errorf("Fetch of %v after UIDVALIDITY went from %d to %d: err = %v after %d messages, want ErrUIDValidityChanged after none",
			uids, old.UIDValidity, now.UIDValidity, err, calls)
	}
	calls = 0
	err = src.List(ctx, old, func(migrate.MessageInfo) error { calls++; return nil })
	if !errors.Is(err, migrate.ErrUIDValidityChanged) || calls != 0 {
		t.Errorf("List after UIDVALIDITY went from %d to %d: err = %v after %d calls, want ErrUIDValidityChanged after none",
			old.UIDValidity, now.UIDValidity, err, calls)
	}
	if ul, ok := src.(migrate.UIDLister); ok {
		if _, err := ul.UIDs(ctx, old); !errors.Is(err, migrate.ErrUIDValidityChanged) {
			t.Errorf("UIDs after UIDVALIDITY went from %d to %d: err = %v, want ErrUIDValidityChanged", old.UIDValidity, now.UIDValidity, err)
		}
	}
	if stale {
		return
	}
	infos := listAll(ctx, t, src, now)
	got, err := fetchAll(ctx, src, now, uidsOf(infos))
	if err != nil {
		t.Errorf("Fetch with the new UIDVALIDITY %d: %v", now.UIDValidity, err)
	} else if !slices.Equal(fetchedUIDs(got), uidsOf(infos)) {
		t.Errorf("Fetch with the new UIDVALIDITY delivered %v, want the listed %v", fetchedUIDs(got), uidsOf(infos))
	}
}

func withoutRecent(flags []migrate.Flag) []migrate.Flag {
	return slices.DeleteFunc(slices.Clone(flags), func(f migrate.Flag) bool { return strings.EqualFold(string(f), `\Recent`) })
}

func checkInfo(t testing.TB, op string, info migrate.MessageInfo, wm FixtureMessage) {
	t.Helper()
	if !migrate.SameFlags(withoutRecent(info.Flags), wm.Flags) {
		t.Errorf("%s UID %d (%s): flags %v, want %v", op, info.UID, info.MessageID, info.Flags, wm.Flags)
	}
	if !info.InternalDate.Equal(date(wm.InternalDate)) {
		t.Errorf("%s UID %d (%s): InternalDate %v, want %v", op, info.UID, info.MessageID, info.InternalDate, wm.InternalDate)
	}
	if info.Size != int64(len(wm.Raw)) {
		t.Errorf("%s UID %d (%s): Size %d, want %d", op, info.UID, info.MessageID, info.Size, len(wm.Raw))
	}
}

// A SinkOption adjusts TestSink to a sink's documented limits.
type SinkOption func(*sinkOptions)

type sinkOptions struct {
	receivedDateGap string
}

// ReceivedDateNotKept tells TestSink that the sink cannot yet give items
// the source's INTERNALDATE as their received date, for the reason given
// (which the test log shows). Use it only for a documented limitation.
func ReceivedDateNotKept(reason string) SinkOption {
	return func(o *sinkOptions) { o.receivedDateGap = reason }
}

// NewSinkFunc makes a fresh, empty sink for one subtest of TestSink,
// with the Inspector that reads back what it stored.
type NewSinkFunc func(t testing.TB) (migrate.Sink, Inspector)

// TestSink checks that a sink behaves as migrate.Sink requires: folders
// ensured once (same id twice, roles whatever name they are asked under,
// nesting, non-ASCII names); every Sample message stored byte for byte in
// its folder with its read, flagged and answered state, its keywords, its
// received date and its draft state; Puts and EnsureFolders from several
// goroutines at once; a Put whose body cannot be read storing nothing; a
// Put into a folder that does not exist failing; and, where the sink
// implements them, FlagSetter, BatchFlagSetter, WatermarkFinder,
// WatermarkLister, WatermarkStamper and MessageIDFinder, the finders
// scoped to their folder. No error it sees may match both
// migrate.ErrItem and migrate.ErrMailbox.
//
// The Inspector reports flags as StoredItem documents them: \Seen,
// \Flagged, \Answered and keywords (Sample's keyword, Work, is one every
// sink should keep).
func TestSink(t *testing.T, newSink NewSinkFunc, opts ...SinkOption) {
	t.Helper()
	var o sinkOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.receivedDateGap != "" {
		t.Logf("TestSink: received dates not checked: %s", o.receivedDateGap)
	}
	ctx := t.Context()
	t.Run("folders", func(t *testing.T) {
		sink, _ := newSink(t)
		ensure := ensurer(ctx, t, sink)
		proj := ensure("", "Projects", migrate.RoleNone)
		if again := ensure("", "Projects", migrate.RoleNone); again != proj {
			t.Errorf("EnsureFolder twice: ids %q and %q", proj, again)
		}
		child := ensure(proj, "2024", migrate.RoleNone)
		if child == proj || ensure(proj, "2024", migrate.RoleNone) != child {
			t.Errorf("nested folder: id %q (parent %q) not stable", child, proj)
		}
		cafe := ensure("", "Café", migrate.RoleNone)
		if cafe == proj || ensure(cafe, "Réunions", migrate.RoleNone) == child {
			t.Errorf("non-ASCII folders collide with others")
		}
		roleNames := migrate.DefaultRoleNames()
		seen := map[string]migrate.Role{}
		for _, role := range []migrate.Role{migrate.RoleInbox, migrate.RoleSent, migrate.RoleDrafts, migrate.RoleTrash, migrate.RoleJunk, migrate.RoleArchive} {
			id := ensure("", roleNames[role], role)
			if other, dup := seen[id]; dup {
				t.Errorf("roles %q and %q share folder %q", role, other, id)
			}
			seen[id] = role
			if again := ensure("", roleNames[role], role); again != id {
				t.Errorf("role %q: ids %q then %q", role, id, again)
			}
		}
		if ensure(seen2id(seen, migrate.RoleInbox), "Projects", migrate.RoleNone) == proj {
			t.Errorf("Inbox/Projects is the same folder as top-level Projects")
		}
	})
	t.Run("role-names", func(t *testing.T) {
		// "With a role, it returns the sink's own folder for that role
		// (name then only serves where the sink must create it)": first
		// under another name, then under the default one, and the other
		// way round.
		sink, _ := newSink(t)
		ensure := ensurer(ctx, t, sink)
		gesendet := ensure("", "Gesendet", migrate.RoleSent)
		if sent := ensure("", "Sent", migrate.RoleSent); sent != gesendet {
			t.Errorf(`EnsureFolder(RoleSent, "Gesendet") = %q, EnsureFolder(RoleSent, "Sent") = %q: want the one Sent folder`, gesendet, sent)
		}
		trash := ensure("", "Trash", migrate.RoleTrash)
		if papierkorb := ensure("", "Papierkorb", migrate.RoleTrash); papierkorb != trash {
			t.Errorf(`EnsureFolder(RoleTrash, "Trash") = %q, EnsureFolder(RoleTrash, "Papierkorb") = %q: want the one Trash folder`, trash, papierkorb)
		}
		if trash == gesendet {
			t.Errorf("RoleSent and RoleTrash share folder %q", trash)
		}
	})
	t.Run("put", func(t *testing.T) {
		sink, insp := newSink(t)
		fx := Sample()
		var puts []putItem
		stamped := map[string]map[migrate.SourceID]string{} // folder id -> what ListWatermarks must report
		for fi, wf := range fx.Folders {
			parent := ""
			for level, name := range wf.Path {
				role := migrate.RoleNone
				if level == len(wf.Path)-1 {
					role = wf.Role
				}
				id, err := sink.EnsureFolder(ctx, parent, name, role)
				if err != nil {
					t.Fatalf("EnsureFolder %v: %v", wf.Path, err)
				}
				parent = id
			}
			for mi, wm := range wf.Messages {
				msg := fixtureMessage(strings.Join(wf.Path, "/"), uint32(100+fi), uint32(mi+1), wm)
				itemID, err := sink.Put(ctx, parent, msg)
				if err != nil {
					t.Fatalf("Put %s: %v", wm.MessageID(), err)
				}
				checkStored(ctx, t, insp, itemID, parent, wm, o)
				checkOptional(ctx, t, sink, insp, itemID, parent, msg, wm)
				if stamped[parent] == nil {
					stamped[parent] = map[migrate.SourceID]string{}
				}
				stamped[parent][msg.ID] = itemID
				puts = append(puts, putItem{itemID: itemID, folderID: parent, msg: msg, wm: wm})
			}
		}
		checkScoped(ctx, t, sink, puts)
		l, lists := sink.(migrate.WatermarkLister)
		if lists {
			checkListWatermarks(ctx, t, l, stamped)
		}
		if b, ok := sink.(migrate.BatchFlagSetter); ok {
			checkBatch(ctx, t, b, insp, puts)
		}
		if s, ok := sink.(migrate.WatermarkStamper); ok {
			it := puts[len(puts)-1]
			newID := checkStamp(ctx, t, s, sink, it)
			delete(stamped[it.folderID], it.msg.ID)
			stamped[it.folderID][newID] = it.itemID
			if lists {
				checkListWatermarks(ctx, t, l, stamped)
			}
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		checkConcurrent(ctx, t, newSink, o)
	})
	t.Run("refused", func(t *testing.T) {
		checkRefused(ctx, t, newSink, o)
	})
	t.Run("cancelled", func(t *testing.T) {
		sink, _ := newSink(t)
		id, err := sink.EnsureFolder(ctx, "", "Inbox", migrate.RoleInbox)
		if err != nil {
			t.Fatal(err)
		}
		c, cancel := context.WithCancel(ctx)
		cancel()
		wm := Sample().Folders[0].Messages[0]
		if _, err := sink.Put(c, id, fixtureMessage("INBOX", 1, 1, wm)); err == nil {
			t.Errorf("Put with a cancelled context returned no error")
		}
	})
}

// putItem is a message TestSink put, and where.
type putItem struct {
	itemID, folderID string
	msg              *migrate.Message
	wm               FixtureMessage
}

// ensurer returns a function that ensures a folder and fails the test
// when it cannot.
func ensurer(ctx context.Context, t testing.TB, sink migrate.Sink) func(parent, name string, role migrate.Role) string {
	return func(parent, name string, role migrate.Role) string {
		t.Helper()
		id, err := sink.EnsureFolder(ctx, parent, name, role)
		if err != nil || id == "" {
			t.Fatalf("EnsureFolder(%q, %q, %q) = %q, %v", parent, name, role, id, err)
		}
		return id
	}
}

// checkOneKind fails when err matches both ErrItem and ErrMailbox: the
// Engine cannot tell whether to skip the message or stop the mailbox.
func checkOneKind(t testing.TB, op string, err error) {
	t.Helper()
	if errors.Is(err, migrate.ErrItem) && errors.Is(err, migrate.ErrMailbox) {
		t.Errorf("%s: error %v matches both ErrItem and ErrMailbox", op, err)
	}
}

// kindOf names err's kind, for the log.
func kindOf(err error) string {
	switch {
	case err == nil:
		return "no error"
	case errors.Is(err, migrate.ErrMailbox):
		return "ErrMailbox"
	case errors.Is(err, migrate.ErrItem):
		return "ErrItem"
	case errors.Is(err, migrate.ErrTransient):
		return "ErrTransient"
	}
	return "unclassified (the Engine counts it as an item failure)"
}

// checkListWatermarks checks that ListWatermarks reports, for each
// folder, exactly the items put there, each with its SourceID, and, when
// the sink is an ItemLister too, that ListItems reports them alike.
func checkListWatermarks(ctx context.Context, t testing.TB, l migrate.WatermarkLister, want map[string]map[migrate.SourceID]string) {
	t.Helper()
	checkListed(ctx, t, "ListWatermarks", l.ListWatermarks, want)
	if il, ok := l.(migrate.ItemLister); ok {
		// The stamped items that ListItems reports must be the same.
		checkListed(ctx, t, "ListItems", func(ctx context.Context, folderID string, fn func(migrate.SourceID, string) error) error {
			return il.ListItems(ctx, folderID, func(it migrate.ListedItem) error {
				if it.Watermark == (migrate.SourceID{}) {
					return nil
				}
				return fn(it.Watermark, it.ItemID)
			})
		}, want)
	}
}

// listFunc lists the watermarks of a folder, as ListWatermarks does.
type listFunc func(ctx context.Context, folderID string, fn func(id migrate.SourceID, itemID string) error) error

// checkListed checks list, named name in errors, as checkListWatermarks
// says.
func checkListed(ctx context.Context, t testing.TB, name string, list listFunc, want map[string]map[migrate.SourceID]string) {
	t.Helper()
	for folderID, items := range want {
		got := map[migrate.SourceID]string{}
		err := list(ctx, folderID, func(id migrate.SourceID, itemID string) error {
			if _, dup := got[id]; dup {
				t.Errorf("%s(%s) reports %v twice", name, folderID, id)
			}
			got[id] = itemID
			return nil
		})
		if err != nil {
			t.Errorf("%s(%s): %v", name, folderID, err)
			continue
		}
		for id, itemID := range items {
			if got[id] != itemID {
				t.Errorf("%s(%s): %v is item %q, want %q", name, folderID, id, got[id], itemID)
			}
		}
		for id, itemID := range got {
			if _, ok := items[id]; !ok {
				t.Errorf("%s(%s) reports %v (item %q), which was not put there", name, folderID, id, itemID)
			}
		}
	}
	stop := errors.New("stop")
	for folderID, items := range want { // one folder will do
		calls := 0
		err := list(ctx, folderID, func(migrate.SourceID, string) error { calls++; return stop })
		if len(items) > 0 && (!errors.Is(err, stop) || calls != 1) {
			t.Errorf("%s(%s) with fn failing: %v after %d calls; want fn's error after 1", name, folderID, err, calls)
		}
		break
	}
}

func seen2id(seen map[string]migrate.Role, role migrate.Role) string {
	for id, r := range seen {
		if r == role {
			return id
		}
	}
	return ""
}

func fixtureMessage(folder string, uidValidity, uid uint32, wm FixtureMessage) *migrate.Message {
	return &migrate.Message{
		ID: migrate.SourceID{Folder: folder, UIDValidity: uidValidity, UID: uid},
		MessageInfo: migrate.MessageInfo{UID: uid, Flags: slices.Clone(wm.Flags), InternalDate: wm.InternalDate,
			Size: int64(len(wm.Raw)), MessageID: wm.MessageID()},
		Body: bytes.NewReader(wm.Raw),
	}
}

// checkFlags compares the flags an Inspector reports with want, as
// StoredItem documents them: \Seen, \Flagged, \Answered, and keywords
// (case-insensitively). \Draft, \Deleted and \Recent are not compared.
func checkFlags(t testing.TB, what string, got, want []migrate.Flag) {
	t.Helper()
	for _, f := range []migrate.Flag{migrate.FlagSeen, migrate.FlagFlagged, migrate.FlagAnswered} {
		if migrate.ContainsFlag(got, f) != migrate.ContainsFlag(want, f) {
			t.Errorf("%s: %s is %v, want %v (flags %v, want %v)", what, f, migrate.ContainsFlag(got, f), migrate.ContainsFlag(want, f), got, want)
		}
	}
	keywords := func(flags []migrate.Flag) []migrate.Flag {
		var out []migrate.Flag
		for _, f := range flags {
			if f.IsKeyword() && !migrate.ContainsFlag(out, f) {
				out = append(out, f)
			}
		}
		return out
	}
	if g, w := keywords(got), keywords(want); !migrate.SameFlags(g, w) {
		t.Errorf("%s: keywords %v, want %v", what, g, w)
	}
}

func checkStored(ctx context.Context, t testing.TB, insp Inspector, itemID, folderID string, wm FixtureMessage, o sinkOptions) {
	t.Helper()
	it, err := insp.Item(ctx, itemID)
	if err != nil {
		t.Fatalf("inspect %s: %v", wm.MessageID(), err)
	}
	name := wm.MessageID()
	if it.FolderID != folderID {
		t.Errorf("%s: in folder %q, want %q", name, it.FolderID, folderID)
	}
	if !bytes.Equal(it.MIME, wm.Raw) {
		t.Errorf("%s: stored MIME differs from the source (%d bytes, want %d)", name, len(it.MIME), len(wm.Raw))
	}
	checkFlags(t, name, it.Flags, wm.Flags)
	if draft := migrate.ContainsFlag(wm.Flags, migrate.FlagDraft); it.Draft != draft {
		t.Errorf("%s: draft = %v, want %v", name, it.Draft, draft)
	}
	if o.receivedDateGap == "" && !it.Received.Equal(date(wm.InternalDate)) {
		t.Errorf("%s: received %v, want the source's INTERNALDATE %v", name, it.Received, wm.InternalDate)
	}
}

func checkOptional(ctx context.Context, t testing.TB, sink migrate.Sink, insp Inspector, itemID, folderID string, msg *migrate.Message, wm FixtureMessage) {
	t.Helper()
	name := wm.MessageID()
	if w, ok := sink.(migrate.WatermarkFinder); ok {
		got, err := w.FindWatermark(ctx, folderID, msg.ID)
		if err != nil || got != itemID {
			t.Errorf("%s: FindWatermark = %q, %v; want %q", name, got, err, itemID)
		}
		other := msg.ID
		other.UID += 10000
		if got, err := w.FindWatermark(ctx, folderID, other); err != nil || got != "" {
			t.Errorf("%s: FindWatermark of an absent id = %q, %v; want nothing", name, got, err)
		}
	}
	if f, ok := sink.(migrate.MessageIDFinder); ok {
		found, err := f.FindMessageID(ctx, folderID, name)
		i := slices.IndexFunc(found, func(it migrate.FoundItem) bool { return it.ItemID == itemID })
		if err != nil || i < 0 {
			t.Errorf("%s: FindMessageID = %v, %v; want it to contain %q", name, found, err, itemID)
		} else if _, stamps := sink.(migrate.WatermarkFinder); stamps && found[i].Watermark != msg.ID {
			// The Engine needs the stamp to tell the copies of messages
			// that share a Message-ID apart.
			t.Errorf("%s: FindMessageID reports watermark %v, want %v", name, found[i].Watermark, msg.ID)
		}
	}
	if s, ok := sink.(migrate.FlagSetter); ok {
		// Every documented flag set on an item that lacks \Seen, all of
		// them cleared on one that has it.
		toggled := []migrate.Flag{migrate.FlagSeen, migrate.FlagFlagged, migrate.FlagAnswered, "Work"}
		if migrate.ContainsFlag(wm.Flags, migrate.FlagSeen) {
			toggled = nil
		}
		if err := s.SetFlags(ctx, itemID, toggled); err != nil {
			t.Fatalf("%s: SetFlags: %v", name, err)
		}
		it, err := insp.Item(ctx, itemID)
		if err != nil {
			t.Fatal(err)
		}
		checkFlags(t, fmt.Sprintf("%s: after SetFlags(%v)", name, toggled), it.Flags, toggled)
		if !bytes.Equal(it.MIME, wm.Raw) {
			t.Errorf("%s: SetFlags changed the MIME", name)
		}
	}
}

// checkScoped checks that the finders look in the folder they are given
// only: an item of folder A is not found in folder B.
func checkScoped(ctx context.Context, t testing.TB, sink migrate.Sink, puts []putItem) {
	w, wok := sink.(migrate.WatermarkFinder)
	f, fok := sink.(migrate.MessageIDFinder)
	for i, it := range puts {
		// The folder of the next item held elsewhere.
		other := ""
		for j := 1; j < len(puts) && other == ""; j++ {
			if o := puts[(i+j)%len(puts)]; o.folderID != it.folderID {
				other = o.folderID
			}
		}
		if other == "" {
			return
		}
		name := it.wm.MessageID()
		if wok {
			if got, err := w.FindWatermark(ctx, other, it.msg.ID); err != nil || got != "" {
				t.Errorf("%s (item %q in folder %q): FindWatermark in folder %q = %q, %v; want nothing", name, it.itemID, it.folderID, other, got, err)
			}
		}
		if fok {
			if found, err := f.FindMessageID(ctx, other, name); err != nil || len(found) != 0 {
				// Sample's Message-IDs are unique: folder other holds none of this one.
				t.Errorf("%s (item %q in folder %q): FindMessageID in folder %q = %v, %v; want nothing", name, it.itemID, it.folderID, other, found, err)
			}
		}
	}
}

// checkBatch checks SetFlagsBatch: one result per change, in order, an
// error for the change of an item that does not exist and nil for the
// others, which are applied.
func checkBatch(ctx context.Context, t testing.TB, b migrate.BatchFlagSetter, insp Inspector, puts []putItem) {
	if len(puts) < 4 {
		t.Fatalf("checkBatch needs 4 items, has %d", len(puts))
	}
	const missing = "mailferry-conformance-no-such-item"
	changes := []migrate.FlagChange{
		{ItemID: puts[0].itemID, Flags: []migrate.Flag{migrate.FlagSeen}},
		{ItemID: missing, Flags: []migrate.Flag{migrate.FlagSeen}},
		{ItemID: puts[1].itemID, Flags: []migrate.Flag{migrate.FlagFlagged, migrate.FlagAnswered}},
		{ItemID: puts[2].itemID, Flags: []migrate.Flag{"Work"}},
		{ItemID: puts[3].itemID, Flags: []migrate.Flag{migrate.FlagSeen, migrate.FlagFlagged, migrate.FlagAnswered}},
	}
	errs := b.SetFlagsBatch(ctx, changes)
	if len(errs) != len(changes) {
		t.Fatalf("SetFlagsBatch of %d changes returned %d results: %v", len(changes), len(errs), errs)
	}
	for i, c := range changes {
		if c.ItemID == missing {
			if errs[i] == nil {
				t.Errorf("SetFlagsBatch: change %d (item %q, which does not exist) succeeded; want an error", i, c.ItemID)
			}
			checkOneKind(t, fmt.Sprintf("SetFlagsBatch change %d", i), errs[i])
			t.Logf("SetFlagsBatch: an item that does not exist: %s: %v", kindOf(errs[i]), errs[i])
			continue
		}
		if errs[i] != nil {
			t.Errorf("SetFlagsBatch: change %d (item %q): %v; want nil", i, c.ItemID, errs[i])
			continue
		}
		it, err := insp.Item(ctx, c.ItemID)
		if err != nil {
			t.Fatal(err)
		}
		checkFlags(t, fmt.Sprintf("SetFlagsBatch change %d (item %q, %v)", i, c.ItemID, c.Flags), it.Flags, c.Flags)
	}
	if errs := b.SetFlagsBatch(ctx, nil); len(errs) != 0 {
		t.Errorf("SetFlagsBatch of no changes returned %v", errs)
	}
}

// checkStamp stamps it with another SourceID and checks that the finders
// find it by the new one only. It returns the new SourceID.
func checkStamp(ctx context.Context, t testing.TB, s migrate.WatermarkStamper, sink migrate.Sink, it putItem) migrate.SourceID {
	newID := it.msg.ID
	newID.UIDValidity += 1000
	if err := s.StampWatermark(ctx, it.itemID, newID); err != nil {
		t.Fatalf("StampWatermark(%q, %v): %v", it.itemID, newID, err)
	}
	if w, ok := sink.(migrate.WatermarkFinder); ok {
		if got, err := w.FindWatermark(ctx, it.folderID, newID); err != nil || got != it.itemID {
			t.Errorf("FindWatermark(%v) after StampWatermark(%q) = %q, %v; want %q", newID, it.itemID, got, err, it.itemID)
		}
		if got, err := w.FindWatermark(ctx, it.folderID, it.msg.ID); err != nil || got != "" {
			t.Errorf("FindWatermark(%v), the stamp replaced, = %q, %v; want nothing", it.msg.ID, got, err)
		}
	}
	if f, ok := sink.(migrate.MessageIDFinder); ok {
		found, err := f.FindMessageID(ctx, it.folderID, it.wm.MessageID())
		if i := slices.IndexFunc(found, func(f migrate.FoundItem) bool { return f.ItemID == it.itemID }); err != nil || i < 0 || found[i].Watermark != newID {
			t.Errorf("FindMessageID after StampWatermark(%q, %v) = %v, %v; want the item with the new watermark", it.itemID, newID, found, err)
		}
	}
	return newID
}

// checkConcurrent puts Sample's messages from several goroutines at once,
// each ensuring the same folders as it goes: every Put succeeds, every
// message is stored once, and every goroutine gets the same folder ids.
func checkConcurrent(ctx context.Context, t testing.TB, newSink NewSinkFunc, o sinkOptions) {
	sink, insp := newSink(t)
	var msgs []FixtureMessage
	for _, f := range Sample().Folders {
		msgs = append(msgs, f.Messages...)
	}
	const workers = 4
	type result struct {
		top, child, inbox string
		puts              []putItem
		err               error
	}
	results := make([]result, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			r := &results[w]
			put := func(folderID string, i int) bool {
				msg := fixtureMessage("Concurrent", 7, uint32(i+1), msgs[i])
				id, err := sink.Put(ctx, folderID, msg)
				if err != nil {
					r.err = fmt.Errorf("Put %s: %w", msgs[i].MessageID(), err)
					return false
				}
				r.puts = append(r.puts, putItem{itemID: id, folderID: folderID, msg: msg, wm: msgs[i]})
				return true
			}
			var err error
			if r.top, err = sink.EnsureFolder(ctx, "", "Concurrent", migrate.RoleNone); err != nil {
				r.err = fmt.Errorf("EnsureFolder Concurrent: %w", err)
				return
			}
			// Half of this worker's messages into the top folder, then the
			// child folder ensured while the others put, and the rest there.
			mine := []int{}
			for i := w; i < len(msgs); i += workers {
				mine = append(mine, i)
			}
			for _, i := range mine[:len(mine)/2] {
				if !put(r.top, i) {
					return
				}
			}
			if r.child, err = sink.EnsureFolder(ctx, r.top, "Child", migrate.RoleNone); err != nil {
				r.err = fmt.Errorf("EnsureFolder Concurrent/Child: %w", err)
				return
			}
			if r.inbox, err = sink.EnsureFolder(ctx, "", "Inbox", migrate.RoleInbox); err != nil {
				r.err = fmt.Errorf("EnsureFolder Inbox: %w", err)
				return
			}
			for _, i := range mine[len(mine)/2:] {
				if !put(r.child, i) {
					return
				}
			}
		})
	}
	wg.Wait()
	var all []putItem
	for w, r := range results {
		if r.err != nil {
			t.Errorf("goroutine %d: %v", w, r.err)
			continue
		}
		if r0 := results[0]; r.top != r0.top || r.child != r0.child || r.inbox != r0.inbox {
			t.Errorf("goroutine %d ensured folders %q, %q, %q; goroutine 0 %q, %q, %q: want the same ids",
				w, r.top, r.child, r.inbox, r0.top, r0.child, r0.inbox)
		}
		all = append(all, r.puts...)
	}
	if t.Failed() {
		return
	}
	if len(all) != len(msgs) {
		t.Fatalf("%d Puts succeeded, want %d", len(all), len(msgs))
	}
	items := map[string]bool{}
	stamped := map[string]map[migrate.SourceID]string{}
	for _, it := range all {
		if items[it.itemID] {
			t.Errorf("item id %q returned by two Puts", it.itemID)
		}
		items[it.itemID] = true
		checkStored(ctx, t, insp, it.itemID, it.folderID, it.wm, o)
		if stamped[it.folderID] == nil {
			stamped[it.folderID] = map[migrate.SourceID]string{}
		}
		stamped[it.folderID][it.msg.ID] = it.itemID
	}
	// Each message once: no Put stored a second copy.
	if l, ok := sink.(migrate.WatermarkLister); ok {
		checkListWatermarks(ctx, t, l, stamped)
	}
	if f, ok := sink.(migrate.MessageIDFinder); ok {
		for _, it := range all {
			found, err := f.FindMessageID(ctx, it.folderID, it.wm.MessageID())
			if err != nil || len(found) != 1 || found[0].ItemID != it.itemID {
				t.Errorf("%s: FindMessageID = %v, %v; want item %q alone", it.wm.MessageID(), found, err, it.itemID)
			}
		}
	}
}

// brokenBody yields the first half of a message, then fails, as a source
// connection that drops mid-body does.
type brokenBody struct {
	r *bytes.Reader
}

var errBodyBroken = errors.New("migratetest: the source connection dropped mid-body")

func (b *brokenBody) Read(p []byte) (int, error) {
	if b.r.Len() > 0 {
		return b.r.Read(p)
	}
	return 0, errBodyBroken
}

// checkRefused checks what the Sink contract says of failing Puts: a Put
// whose body cannot be read returns an error and stores nothing (and the
// message can be put again, once); a Put into a folder that does not
// exist fails (the contract names no kind for it: its kind is logged).
func checkRefused(ctx context.Context, t testing.TB, newSink NewSinkFunc, o sinkOptions) {
	sink, insp := newSink(t)
	folderID := ensurer(ctx, t, sink)("", "Refused", migrate.RoleNone)
	wm := Sample().Folders[0].Messages[1]
	name := wm.MessageID()
	msg := fixtureMessage("Refused", 9, 1, wm)
	msg.Body = &brokenBody{r: bytes.NewReader(wm.Raw[:len(wm.Raw)/2])}
	id, err := sink.Put(ctx, folderID, msg)
	switch {
	case err == nil:
		t.Errorf("Put with a body that fails to read: item %q, no error; want an error and nothing stored", id)
	case errors.Is(err, migrate.ErrDegraded):
		t.Errorf("Put with a body that fails to read: item %q stored degraded (%v); want nothing stored", id, err)
	default:
		t.Logf("Put with a body that fails to read: %s: %v", kindOf(err), err)
	}
	checkOneKind(t, "Put with a body that fails to read", err)
	if id != "" {
		if _, err := insp.Item(ctx, id); err == nil {
			t.Errorf("Put with a body that fails to read stored item %q", id)
		}
	}
	checkNothingStored(ctx, t, sink, folderID, msg)

	// The Engine puts it again when the source delivers it again.
	msg.Body = bytes.NewReader(wm.Raw)
	id, err = sink.Put(ctx, folderID, msg)
	if err != nil {
		t.Fatalf("Put %s again, whole: %v", name, err)
	}
	checkStored(ctx, t, insp, id, folderID, wm, o)
	if f, ok := sink.(migrate.MessageIDFinder); ok {
		if found, err := f.FindMessageID(ctx, folderID, name); err != nil || len(found) != 1 || found[0].ItemID != id {
			t.Errorf("%s put after a broken Put: FindMessageID = %v, %v; want item %q alone", name, found, err, id)
		}
	}
	if l, ok := sink.(migrate.WatermarkLister); ok {
		checkListWatermarks(ctx, t, l, map[string]map[migrate.SourceID]string{folderID: {msg.ID: id}})
	}

	// A folder that does not exist.
	const noFolder = "mailferry-conformance-no-such-folder"
	msg = fixtureMessage("Refused", 9, 2, wm)
	id, err = sink.Put(ctx, noFolder, msg)
	switch {
	case err == nil:
		t.Errorf("Put into folder %q, which does not exist: item %q, no error; want an error", noFolder, id)
	case errors.Is(err, migrate.ErrDegraded):
		t.Errorf("Put into folder %q, which does not exist: item %q stored degraded (%v); want an error", noFolder, id, err)
	default:
		t.Logf("Put into a folder that does not exist: %s: %v", kindOf(err), err)
	}
	checkOneKind(t, "Put into a folder that does not exist", err)
	if id != "" {
		if it, err := insp.Item(ctx, id); err == nil {
			t.Errorf("Put into folder %q, which does not exist, stored item %q in folder %q", noFolder, id, it.FolderID)
		}
	}
}

// checkNothingStored checks, through whichever finders the sink has, that
// folderID holds no copy of msg.
func checkNothingStored(ctx context.Context, t testing.TB, sink migrate.Sink, folderID string, msg *migrate.Message) {
	t.Helper()
	if w, ok := sink.(migrate.WatermarkFinder); ok {
		if got, err := w.FindWatermark(ctx, folderID, msg.ID); err != nil || got != "" {
			t.Errorf("after a failed Put, FindWatermark(%v) = %q, %v; want nothing", msg.ID, got, err)
		}
	}
	if f, ok := sink.(migrate.MessageIDFinder); ok {
		if found, err := f.FindMessageID(ctx, folderID, msg.MessageID); err != nil || len(found) != 0 {
			t.Errorf("after a failed Put, FindMessageID(%s) = %v, %v; want nothing", msg.MessageID, found, err)
		}
	}
	if l, ok := sink.(migrate.WatermarkLister); ok {
		err := l.ListWatermarks(ctx, folderID, func(id migrate.SourceID, itemID string) error {
			t.Errorf("after a failed Put, ListWatermarks reports %v (item %q); want nothing", id, itemID)
			return nil
		})
		if err != nil {
			t.Errorf("ListWatermarks: %v", err)
		}
	}
}
