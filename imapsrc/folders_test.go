package imapsrc_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/mailferry/mailferry/imapsrc"
	"github.com/mailferry/mailferry/imapsrc/imapsrctest"
	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

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
	if !slices.Equal(got, want) {
		t.Errorf("folders under the root:\n got %q\nwant %q", got, want)
	}
	n := 0
	if err := src.List(context.Background(), fs[0], func(migrate.MessageInfo) error { n++; return nil }); err != nil || n != 2 {
		t.Errorf("List %s: %d messages, %v", fs[0].Name, n, err)
	}
}

func TestSubscribedOnly(t *testing.T) {
	fx := migratetest.Sample()
	srv := startDovecot(t, "", fx)
	c := imapsrctest.Client(t, srv.Addr(), "alice", "secret")
	if err := c.Create("Gone", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"INBOX", "Projects/2024", "Gone"} {
		if err := c.Subscribe(name).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	// A subscription that outlives its folder is listed \NonExistent.
	if err := c.Delete("Gone").Wait(); err != nil {
		t.Fatal(err)
	}
	src := imapsrc.New(&imapsrc.Options{Addr: srv.Addr(), Security: imapsrc.Plaintext, Username: "alice", Password: "secret", SubscribedOnly: true})
	closeSrc(t, src)
	var names []string
	for _, f := range folders(t, src) {
		names = append(names, f.Name)
	}
	if !slices.Equal(names, []string{"INBOX", "Projects/2024"}) {
		t.Errorf("subscribed folders %q", names)
	}
}

// TestFolderDeletedMidRun: a folder deleted after Folders fails alone,
// with an error that is not a mailbox error, and the Source goes on.
func TestFolderDeletedMidRun(t *testing.T) {
	srv := startDovecot(t, "", migratetest.Sample())
	src := plain(srv.Addr(), "alice", "secret")
	closeSrc(t, src)
	doomed := folderNamed(t, src, "Projects/2024")
	if err := imapsrctest.Client(t, srv.Addr(), "alice", "secret").Delete(doomed.Name).Wait(); err != nil {
		t.Fatal(err)
	}
	for name, op := range map[string]func() error{
		"List": func() error {
			return src.List(context.Background(), doomed, func(migrate.MessageInfo) error { return nil })
		},
		"Fetch": func() error {
			return src.Fetch(context.Background(), doomed, []uint32{1}, func(*migrate.Message) error { return nil })
		},
	} {
		err := op()
		if !errors.Is(err, imapsrc.ErrNoFolder) || errors.Is(err, migrate.ErrMailbox) || errors.Is(err, migrate.ErrTransient) {
			t.Errorf("%s of a deleted folder: err = %v, want ErrNoFolder and no mailbox error", name, err)
		}
	}
	if n := 0; src.List(context.Background(), inbox(t, src), func(migrate.MessageInfo) error { n++; return nil }) != nil || src.Reconnects() != 0 {
		t.Errorf("the Source did not go on (reconnects %d)", src.Reconnects())
	}
}
