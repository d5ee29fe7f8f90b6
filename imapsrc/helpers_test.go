package imapsrc_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/imapsrc"
	"github.com/mailferry/mailferry/imapsrc/imapsrctest"
	"github.com/mailferry/mailferry/internal/dovecottest"
	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

// seed fills user's mailbox on the plaintext server at addr with fx.
func seed(t testing.TB, addr, user, pass string, fx *migratetest.Fixture) {
	t.Helper()
	if err := imapsrctest.Seed(addr, user, pass, fx); err != nil {
		t.Fatal(err)
	}
}

// startMem starts go-imap's in-memory server on a loopback port with one
// user, SPECIAL-USE and NAMESPACE, and returns its address.
func startMem(t testing.TB, user, pass string) string {
	t.Helper()
	return startMemOpts(t, &imapsrctest.MemOptions{Users: map[string]string{user: pass}, Caps: imap.CapSet{
		imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {},
		imap.CapSpecialUse: {}, imap.CapCreateSpecialUse: {}, imap.CapNamespace: {},
	}}).Addr()
}

func startMemOpts(t testing.TB, opts *imapsrctest.MemOptions) *imapsrctest.MemServer {
	t.Helper()
	srv, err := imapsrctest.StartMem(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// startDovecot starts a Dovecot with alice/secret (and admin/adminpw as
// master user) and seeds alice's mailbox with fx.
func startDovecot(t testing.TB, layout string, fx *migratetest.Fixture) *dovecottest.Server {
	t.Helper()
	srv := dovecottest.Start(t, &dovecottest.Options{
		Layout:     layout,
		Users:      map[string]string{"alice": "secret"},
		MasterUser: "admin", MasterPassword: "adminpw",
	})
	if fx != nil {
		seed(t, srv.Addr(), "alice", "secret", fx)
	}
	return srv
}

// bigFixture is an INBOX of n messages of a few KB each.
func bigFixture(n int) *migratetest.Fixture {
	base := migratetest.Sample().Folders[0].Messages
	fx := &migratetest.Fixture{Folders: []migratetest.FixtureFolder{{Path: []string{"INBOX"}, Role: migrate.RoleInbox}}}
	for i := range n {
		m := base[i%len(base)]
		raw := bytes.Replace(m.Raw, []byte("@mailferry.test>"), []byte("-"+itoa(i)+"@mailferry.test>"), 1)
		raw = append(raw, bytes.Repeat([]byte("padding line to make the body bigger "+itoa(i)+"\r\n"), 100)...)
		fx.Folders[0].Messages = append(fx.Folders[0].Messages, migratetest.FixtureMessage{Raw: raw, Flags: m.Flags, InternalDate: m.InternalDate})
	}
	return fx
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

// folders returns src's folders, failing the test on an error.
func folders(t testing.TB, src *imapsrc.Source) []migrate.Folder {
	t.Helper()
	fs, err := src.Folders(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

// folderNamed returns src's folder called name.
func folderNamed(t testing.TB, src *imapsrc.Source, name string) migrate.Folder {
	t.Helper()
	for _, f := range folders(t, src) {
		if f.Name == name {
			return f
		}
	}
	t.Fatalf("no folder %q", name)
	return migrate.Folder{}
}
