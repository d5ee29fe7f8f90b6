package migratetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/mailferry/mailferry/migrate"
)

// TestSource checks that src, seeded with want, behaves as migrate.Source
// requires: every fixture folder listed with its role and path, every
// message listed with its flags, date, size and Message-ID, bodies fetched
// byte for byte and in UID order, subsets and vanished UIDs handled, no
// \Seen set by fetching, callback errors and cancellation honoured.
// Like fstest.TestFS, it is meant to be called from any backend's tests;
// it takes a *testing.T, not a testing.TB, because it runs subtests.
// The source may hold more folders than want (servers create some).
func TestSource(t *testing.T, src migrate.Source, want *Fixture) {
	t.Helper()
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
	for _, wf := range want.Folders {
		key := strings.Join(wf.Path, "/")
		f, ok := byPath[key]
		if !ok {
			t.Errorf("Folders: no folder with path %q (have %v)", key, pathsOf(folders))
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
	t.Run("cancelled", func(t *testing.T) {
		c, cancel := context.WithCancel(ctx)
		cancel()
		f := byPath[strings.Join(want.Folders[0].Path, "/")]
		err := src.Fetch(c, f, []uint32{1, 2, 3}, func(*migrate.Message) error { return nil })
		if err == nil {
			err = src.List(c, f, func(migrate.MessageInfo) error { return nil })
		}
		if err == nil {
			t.Errorf("List and Fetch with a cancelled context returned no error")
		}
	})
}

func pathsOf(folders []migrate.Folder) []string {
	var out []string
	for _, f := range folders {
		out = append(out, strings.Join(f.Path, "/"))
	}
	return out
}

func listAll(ctx context.Context, t testing.TB, src migrate.Source, f migrate.Folder) []migrate.MessageInfo {
	t.Helper()
	var infos []migrate.MessageInfo
	if err := src.List(ctx, f, func(m migrate.MessageInfo) error { infos = append(infos, m); return nil }); err != nil {
		t.Fatalf("List: %v", err)
	}
	return infos
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
	var uids []uint32
	for i, info := range infos {
		if i > 0 && info.UID <= infos[i-1].UID {
			t.Errorf("List: UID %d after %d: not ascending", info.UID, infos[i-1].UID)
		}
		uids = append(uids, info.UID)
		wm, ok := wantByID[info.MessageID]
		if !ok {
			t.Errorf("List: UID %d has Message-ID %q, not in the fixture", info.UID, info.MessageID)
			continue
		}
		checkInfo(t, "List", info, wm)
	}

	if ul, ok := src.(migrate.UIDLister); ok {
		got, err := ul.UIDs(ctx, f)
		if err != nil || !slices.Equal(got, uids) {
			t.Errorf("UIDs = %v, %v; want the listed %v", got, err, uids)
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
		wm := wantByID[m.MessageID]
		if !bytes.Equal(body, wm.Raw) {
			t.Errorf("Fetch UID %d (%s): body differs from the fixture (%d bytes, want %d)", m.UID, m.MessageID, len(body), len(wm.Raw))
		}
		if m.ID.UID != m.UID || m.ID.Folder != f.Name || m.ID.UIDValidity != f.UIDValidity {
			t.Errorf("Fetch UID %d: ID = %+v, want folder %q, UIDVALIDITY %d", m.UID, m.ID, f.Name, f.UIDValidity)
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

	// A subset plus a UID that does not exist; a callback that reads only
	// part of each body must not disturb the next message.
	subset := []uint32{uids[len(uids)-1], uids[len(uids)-1] + 1000}
	if len(uids) > 1 {
		subset = append([]uint32{uids[0]}, subset...)
	}
	got = nil
	err = src.Fetch(ctx, f, subset, func(m *migrate.Message) error {
		got = append(got, m.UID)
		buf := make([]byte, 10)
		_, err := io.ReadFull(m.Body, buf)
		return err
	})
	if err != nil {
		t.Fatalf("Fetch subset: %v", err)
	}
	if want := subset[:len(subset)-1]; !slices.Equal(got, want) {
		t.Errorf("Fetch of %v delivered %v, want %v", subset, got, want)
	}

	// A callback error stops Fetch and comes back.
	stop := errors.New("stop here")
	calls := 0
	err = src.Fetch(ctx, f, uids, func(*migrate.Message) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("Fetch with a failing callback: err = %v after %d calls, want %v after 1", err, calls, stop)
	}

	// Fetching left the flags alone (no \Seen).
	after := listAll(ctx, t, src, f)
	for i := range after {
		if i < len(infos) && !migrate.SameFlags(withoutRecent(after[i].Flags), withoutRecent(infos[i].Flags)) {
			t.Errorf("UID %d: flags %v after Fetch, were %v", after[i].UID, after[i].Flags, infos[i].Flags)
		}
	}

	// A changed UIDVALIDITY is detected.
	stale := f
	stale.UIDValidity++
	err = src.List(ctx, stale, func(migrate.MessageInfo) error { return nil })
	if !errors.Is(err, migrate.ErrUIDValidityChanged) {
		t.Errorf("List with a stale UIDVALIDITY: err = %v, want ErrUIDValidityChanged", err)
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
// ensured once (same id twice, roles, nesting, non-ASCII names), every
// Sample message stored byte for byte in its folder with its read and
// flagged state, its received date and its draft state, and, where the
// sink implements them, FlagSetter, WatermarkFinder, WatermarkLister and
// MessageIDFinder.
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
		ensure := func(parent, name string, role migrate.Role) string {
			t.Helper()
			id, err := sink.EnsureFolder(ctx, parent, name, role)
			if err != nil || id == "" {
				t.Fatalf("EnsureFolder(%q, %q, %q) = %q, %v", parent, name, role, id, err)
			}
			return id
		}
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
	t.Run("put", func(t *testing.T) {
		sink, insp := newSink(t)
		fx := Sample()
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
			}
		}
		if l, ok := sink.(migrate.WatermarkLister); ok {
			checkListWatermarks(ctx, t, l, stamped)
		}
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

// checkListWatermarks checks that ListWatermarks reports, for each
// folder, exactly the items put there, each with its SourceID.
func checkListWatermarks(ctx context.Context, t testing.TB, l migrate.WatermarkLister, want map[string]map[migrate.SourceID]string) {
	t.Helper()
	for folderID, items := range want {
		got := map[migrate.SourceID]string{}
		err := l.ListWatermarks(ctx, folderID, func(id migrate.SourceID, itemID string) error {
			if _, dup := got[id]; dup {
				t.Errorf("ListWatermarks(%s) reports %v twice", folderID, id)
			}
			got[id] = itemID
			return nil
		})
		if err != nil {
			t.Errorf("ListWatermarks(%s): %v", folderID, err)
			continue
		}
		for id, itemID := range items {
			if got[id] != itemID {
				t.Errorf("ListWatermarks(%s): %v is item %q, want %q", folderID, id, got[id], itemID)
			}
		}
		for id, itemID := range got {
			if _, ok := items[id]; !ok {
				t.Errorf("ListWatermarks(%s) reports %v (item %q), which was not put there", folderID, id, itemID)
			}
		}
	}
	stop := errors.New("stop")
	for folderID, items := range want { // one folder will do
		calls := 0
		err := l.ListWatermarks(ctx, folderID, func(migrate.SourceID, string) error { calls++; return stop })
		if len(items) > 0 && (!errors.Is(err, stop) || calls != 1) {
			t.Errorf("ListWatermarks(%s) with fn failing: %v after %d calls; want fn's error after 1", folderID, err, calls)
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
	for _, f := range []migrate.Flag{migrate.FlagSeen, migrate.FlagFlagged} {
		if migrate.ContainsFlag(it.Flags, f) != migrate.ContainsFlag(wm.Flags, f) {
			t.Errorf("%s: %s is %v, want %v", name, f, migrate.ContainsFlag(it.Flags, f), migrate.ContainsFlag(wm.Flags, f))
		}
	}
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
		toggled := []migrate.Flag{migrate.FlagSeen, migrate.FlagFlagged}
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
		for _, f := range []migrate.Flag{migrate.FlagSeen, migrate.FlagFlagged} {
			if migrate.ContainsFlag(it.Flags, f) != migrate.ContainsFlag(toggled, f) {
				t.Errorf("%s: after SetFlags(%v), %s is %v", name, toggled, f, migrate.ContainsFlag(it.Flags, f))
			}
		}
		if !bytes.Equal(it.MIME, wm.Raw) {
			t.Errorf("%s: SetFlags changed the MIME", name)
		}
	}
}
