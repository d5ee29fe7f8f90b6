package imapsrc_test

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/mailferry/mailferry/internal/dovecottest"
	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

// seed creates the fixture's folders (prefix + path joined with delim;
// ["INBOX"] is the inbox) and APPENDs its messages with their flags and
// internal dates, over IMAP as user.
func seed(t testing.TB, addr, user, pass, prefix, delim string, fx *migratetest.Fixture) {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatalf("seed: %v", err)
	}
	defer c.Close()
	if err := c.Login(user, pass).Wait(); err != nil {
		t.Fatalf("seed: login: %v", err)
	}
	createSpecialUse := c.Caps().Has(imap.CapCreateSpecialUse)
	for _, f := range fx.Folders {
		name := mailboxName(prefix, delim, f.Path)
		if name != "INBOX" {
			var opts *imap.CreateOptions
			if attr := roleAttr(f.Role); attr != "" && createSpecialUse {
				opts = &imap.CreateOptions{SpecialUse: []imap.MailboxAttr{attr}}
			}
			if err := c.Create(name, opts).Wait(); err != nil && !alreadyExists(err) {
				t.Fatalf("seed: create %q: %v", name, err)
			}
		}
		for _, m := range f.Messages {
			flags := make([]imap.Flag, len(m.Flags))
			for i, fl := range m.Flags {
				flags[i] = imap.Flag(fl)
			}
			cmd := c.Append(name, int64(len(m.Raw)), &imap.AppendOptions{Flags: flags, Time: m.InternalDate})
			if _, err := cmd.Write(m.Raw); err != nil {
				t.Fatalf("seed: append to %q: %v", name, err)
			}
			if err := cmd.Close(); err != nil {
				t.Fatalf("seed: append to %q: %v", name, err)
			}
			if _, err := cmd.Wait(); err != nil {
				t.Fatalf("seed: append to %q: %v", name, err)
			}
		}
	}
	_ = c.Logout().Wait()
}

func mailboxName(prefix, delim string, path []string) string {
	if len(path) == 1 && strings.EqualFold(path[0], "INBOX") {
		return "INBOX"
	}
	return prefix + strings.Join(path, delim)
}

func alreadyExists(err error) bool {
	var ie *imap.Error
	return errors.As(err, &ie) && (ie.Code == imap.ResponseCodeAlreadyExists || strings.Contains(strings.ToLower(ie.Text), "exists"))
}

func roleAttr(r migrate.Role) imap.MailboxAttr {
	switch r {
	case migrate.RoleSent:
		return imap.MailboxAttrSent
	case migrate.RoleDrafts:
		return imap.MailboxAttrDrafts
	case migrate.RoleTrash:
		return imap.MailboxAttrTrash
	case migrate.RoleJunk:
		return imap.MailboxAttrJunk
	case migrate.RoleArchive:
		return imap.MailboxAttrArchive
	}
	return ""
}

// startMem starts go-imap's in-memory server on a loopback port with one
// user (and INBOX) and returns its address.
func startMem(t testing.TB, user, pass string) string {
	t.Helper()
	mem := imapmemserver.New()
	u := imapmemserver.NewUser(user, pass)
	if err := u.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(u)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps: imap.CapSet{
			imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {},
			imap.CapSpecialUse: {}, imap.CapCreateSpecialUse: {}, imap.CapNamespace: {},
		},
		InsecureAuth: true,
		Logger:       discardLogger{},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}

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
		seed(t, srv.Addr(), "alice", "secret", srv.Prefix(), srv.Delimiter(), fx)
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
