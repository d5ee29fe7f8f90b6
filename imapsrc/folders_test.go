package imapsrc_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailferry/mailferry/imapsrc"
	"github.com/mailferry/mailferry/imapsrc/imapsrctest"
	"github.com/mailferry/mailferry/internal/dovecottest"
	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

// countMessages lists f and returns how many messages it holds.
func countMessages(t *testing.T, src *imapsrc.Source, f migrate.Folder) int {
	t.Helper()
	n := 0
	require.NoError(t, src.List(context.Background(), f, func(migrate.MessageInfo) error { n++; return nil }), "List %s", f.Name)
	return n
}

func TestFoldersDovecot(t *testing.T) {
	for _, tc := range []struct {
		layout string
		names  map[string]string // path -> name
	}{
		{dovecottest.LayoutDefault, map[string]string{"INBOX": "INBOX", "Sent": "Sent", "Café/Réunions": "Café/Réunions", "Entwürfe": "Entwürfe"}},
		{dovecottest.LayoutCourier, map[string]string{"INBOX": "INBOX", "Sent": "INBOX.Sent", "Café/Réunions": "INBOX.Café.Réunions", "Entwürfe": "INBOX.Entwürfe"}},
	} {
		t.Run(tc.layout, func(t *testing.T) {
			t.Parallel()
			fx := migratetest.Sample()
			fx.Folders = append(fx.Folders, migratetest.FixtureFolder{Path: []string{"Entwürfe"}})
			srv := startDovecot(t, tc.layout, fx)
			src := plain(srv.Addr(), "alice", "secret")
			closeSrc(t, src)
			fs := folders(t, src)
			byPath := map[string]migrate.Folder{}
			for _, f := range fs {
				byPath[strings.Join(f.Path, "/")] = f
			}
			assert.Equal(t, "INBOX", fs[0].Name, "first folder")
			assert.Equal(t, migrate.RoleInbox, fs[0].Role, "first folder")
			assert.Equal(t, []string{"INBOX"}, fs[0].Path, "first folder")
			for path, name := range tc.names {
				assert.Equal(t, name, byPath[path].Name, "path %q: Name", path)
			}
			wantRoles := map[string]migrate.Role{"INBOX": migrate.RoleInbox, "Sent": migrate.RoleSent, "Drafts": migrate.RoleDrafts,
				"Trash": migrate.RoleTrash, "Junk": migrate.RoleJunk, "Archive": migrate.RoleArchive,
				"Projects": migrate.RoleNone, "Entwürfe": migrate.RoleNone /* \Drafts is claimed by SPECIAL-USE */}
			for path, role := range wantRoles {
				assert.Equal(t, role, byPath[path].Role, "path %q: Role", path)
			}
			f := byPath["Projects/2024"]
			assert.Equal(t, 2, f.Messages, "Projects/2024: %+v", f)
			assert.NotZero(t, f.UIDValidity, "Projects/2024: %+v", f)
			assert.Equal(t, srv.Delimiter(), string(f.Delimiter), "Projects/2024: %+v", f)
			// Round trip: the decoded name selects the folder again.
			assert.Equal(t, 1, countMessages(t, src, byPath["Café/Réunions"]), "messages in Café/Réunions")
		})
	}
}

func TestUserRoot(t *testing.T) {
	addr := startMem(t, "admin", "adminpw")
	fx := &migratetest.Fixture{}
	for _, p := range [][]string{{"users", "bob", "INBOX"}, {"users", "bob", "Sent Items"}, {"users", "bob", "Projects", "2024"}, {"users", "carol", "INBOX"}, {"Other"}} {
		fx.Folders = append(fx.Folders, migratetest.FixtureFolder{Path: p, Messages: bigFixture(2).Folders[0].Messages})
	}
	seed(t, addr, "admin", "adminpw", fx)
	src := imapsrc.New(&imapsrc.Options{Addr: addr, Security: imapsrc.Plaintext, Username: "admin", Password: "adminpw", UserRoot: "users/bob/"})
	closeSrc(t, src)
	fs := folders(t, src)
	var got []string
	for _, f := range fs {
		got = append(got, strings.Join(f.Path, "/")+"="+f.Name+":"+string(f.Role))
	}
	want := []string{"INBOX=users/bob/INBOX:inbox", "Projects=users/bob/Projects:", "Projects/2024=users/bob/Projects/2024:", "Sent Items=users/bob/Sent Items:sent"}
	assert.Equal(t, want, got, "folders under the root")
	assert.Equal(t, 2, countMessages(t, src, fs[0]), "messages in %s", fs[0].Name)
}

func TestSubscribedOnly(t *testing.T) {
	fx := migratetest.Sample()
	srv := startDovecot(t, "", fx)
	c := imapsrctest.Client(t, srv.Addr(), "alice", "secret")
	require.NoError(t, c.Create("Gone", nil).Wait())
	for _, name := range []string{"INBOX", "Projects/2024", "Gone"} {
		require.NoError(t, c.Subscribe(name).Wait())
	}
	// A subscription that outlives its folder is listed \NonExistent.
	require.NoError(t, c.Delete("Gone").Wait())
	src := imapsrc.New(&imapsrc.Options{Addr: srv.Addr(), Security: imapsrc.Plaintext, Username: "alice", Password: "secret", SubscribedOnly: true})
	closeSrc(t, src)
	var names []string
	for _, f := range folders(t, src) {
		names = append(names, f.Name)
	}
	assert.Equal(t, []string{"INBOX", "Projects/2024"}, names, "subscribed folders")
}

// TestFolderDeletedMidRun: a folder deleted after Folders fails alone,
// with an error that is not a mailbox error, and the Source goes on.
func TestFolderDeletedMidRun(t *testing.T) {
	srv := startDovecot(t, "", migratetest.Sample())
	src := plain(srv.Addr(), "alice", "secret")
	closeSrc(t, src)
	doomed := folderNamed(t, src, "Projects/2024")
	require.NoError(t, imapsrctest.Client(t, srv.Addr(), "alice", "secret").Delete(doomed.Name).Wait())
	for name, op := range map[string]func() error{
		"List": func() error {
			return src.List(context.Background(), doomed, func(migrate.MessageInfo) error { return nil })
		},
		"Fetch": func() error {
			return src.Fetch(context.Background(), doomed, []uint32{1}, func(*migrate.Message) error { return nil })
		},
	} {
		err := op()
		assert.ErrorIs(t, err, imapsrc.ErrNoFolder, "%s of a deleted folder", name)
		assert.NotErrorIs(t, err, migrate.ErrMailbox, "%s of a deleted folder", name)
		assert.NotErrorIs(t, err, migrate.ErrTransient, "%s of a deleted folder", name)
	}
	// The Source goes on: INBOX is listed whole.
	assert.Equal(t, len(migratetest.Sample().Folders[0].Messages), countMessages(t, src, inbox(t, src)), "messages listed in INBOX after the failures")
	assert.Zero(t, src.Reconnects(), "Reconnects")
}

// ensureRecorder is a migratetest.Sink that records the folders ensured:
// id -> parent id and name.
type ensureRecorder struct {
	*migratetest.Sink
	mu      sync.Mutex
	folders map[string][2]string
}

func (r *ensureRecorder) EnsureFolder(ctx context.Context, parentID, name string, role migrate.Role) (string, error) {
	id, err := r.Sink.EnsureFolder(ctx, parentID, name, role)
	if err == nil {
		r.mu.Lock()
		r.folders[id] = [2]string{parentID, name}
		r.mu.Unlock()
	}
	return id, err
}

// TestFolderNameWithSlash: on a server whose separator is "." (Dovecot's
// Courier layout), the folder named "a/b" and the folder "b" inside "a"
// ("INBOX.a.b") are two folders, from Folder.Path to the target: neither
// merges with the other.
func TestFolderNameWithSlash(t *testing.T) {
	slash := migratetest.FixtureMessage{Raw: []byte("Message-ID: <slash@example.org>\r\nSubject: in a/b\r\n\r\nbody\r\n")}
	dot := migratetest.FixtureMessage{Raw: []byte("Message-ID: <dot@example.org>\r\nSubject: in a, then b\r\n\r\nbody\r\n")}
	fx := &migratetest.Fixture{Folders: []migratetest.FixtureFolder{
		{Path: []string{"INBOX"}, Role: migrate.RoleInbox},
		{Path: []string{"a/b"}, Messages: []migratetest.FixtureMessage{slash}},
		{Path: []string{"a", "b"}, Messages: []migratetest.FixtureMessage{dot}},
	}}
	srv := dovecottest.Start(t, &dovecottest.Options{Layout: dovecottest.LayoutCourier, ListEscape: true})
	seed(t, srv.Addr(), "alice", "secret", fx)
	src := plain(srv.Addr(), "alice", "secret")
	closeSrc(t, src)
	paths := map[string][]string{}
	for _, f := range folders(t, src) {
		paths[f.Name] = f.Path
	}
	assert.Equal(t, []string{"a/b"}, paths["INBOX.a/b"], "Path of INBOX.a/b: %v", paths)
	assert.Equal(t, []string{"a", "b"}, paths["INBOX.a.b"], "Path of INBOX.a.b: %v", paths)

	sink := &ensureRecorder{Sink: migratetest.NewSink(), folders: map[string][2]string{}}
	rep := migrate.NewEngine(nil).Migrate(context.Background(), migrate.Job{Mailbox: "alice", Source: src, Sink: sink})
	require.Equal(t, migrate.StatusCompleted, rep.Status, "%v", rep.Err)
	where := map[string][]string{} // Message-ID -> its folder's names, from the top
	for _, it := range sink.Items() {
		var names []string
		for id := it.FolderID; id != ""; id = sink.folders[id][0] {
			names = append([]string{sink.folders[id][1]}, names...)
		}
		where[it.MessageID] = names
	}
	assert.Equal(t, []string{"a/b"}, where["<slash@example.org>"], "the message of the folder named a/b")
	assert.Equal(t, []string{"a", "b"}, where["<dot@example.org>"], "the message of b inside a")
	targets := map[string]string{}
	for _, fr := range rep.Folders {
		targets[fr.Source] = fr.Target
	}
	assert.NotEqual(t, targets["INBOX.a/b"], targets["INBOX.a.b"], "report targets: %v", targets)
}
