// Package imapsrctest helps test code that reads IMAP: an in-memory IMAP
// server on a loopback port (go-imap's imapmemserver) and Seed, which
// fills any IMAP server with a migratetest.Fixture over the protocol
// itself (CREATE and APPEND with flags and internal dates), whatever its
// delimiter and namespace prefix.
package imapsrctest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/mailferry/mailferry/migrate/migratetest"
)

// MemServer is an in-memory IMAP server listening on 127.0.0.1. It speaks
// plaintext only (clients must opt in to plaintext), uses "/" as its
// delimiter and has no SPECIAL-USE (roles come from folder names).
type MemServer struct {
	mem *imapmemserver.Server
	srv *imapserver.Server
	ln  net.Listener
}

// StartMemServer starts a server with the given users (name -> password)
// on a free loopback port.
func StartMemServer(users map[string]string) (*MemServer, error) {
	mem := imapmemserver.New()
	for name, pass := range users {
		u := imapmemserver.NewUser(name, pass)
		if err := u.Create("INBOX", nil); err != nil {
			return nil, err
		}
		mem.AddUser(u)
	}
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}},
		InsecureAuth: true, // loopback only
		Logger:       discardLogger{},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go srv.Serve(ln)
	return &MemServer{mem: mem, srv: srv, ln: ln}, nil
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}

// Addr returns the server's "127.0.0.1:port".
func (s *MemServer) Addr() string { return s.ln.Addr().String() }

// Close stops the server and closes its connections.
func (s *MemServer) Close() error { return s.srv.Close() }

// Seed logs in to the plaintext IMAP server at addr and creates every
// folder of fx (parents first, under the personal namespace prefix, with
// the server's delimiter) and appends its messages with their flags and
// internal dates. Folders that exist are reused.
func Seed(addr, user, password string, fx *migratetest.Fixture) error {
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		return fmt.Errorf("imapsrctest: dial: %w", err)
	}
	defer c.Close()
	if err := c.Login(user, password).Wait(); err != nil {
		return fmt.Errorf("imapsrctest: login as %s: %w", user, err)
	}
	return SeedClient(c, fx)
}

// SeedClient seeds through a client that is already logged in.
func SeedClient(c *imapclient.Client, fx *migratetest.Fixture) error {
	delim, prefix, err := layout(c)
	if err != nil {
		return err
	}
	name := func(path []string) string {
		if len(path) == 1 && strings.EqualFold(path[0], "INBOX") {
			return "INBOX"
		}
		return prefix + strings.Join(path, string(delim))
	}
	created := map[string]bool{"INBOX": true}
	for _, f := range fx.Folders {
		for n := 1; n <= len(f.Path); n++ {
			mbox := name(f.Path[:n])
			if created[mbox] {
				continue
			}
			if err := c.Create(mbox, nil).Wait(); err != nil && !alreadyExists(err) {
				return fmt.Errorf("imapsrctest: create %q: %w", mbox, err)
			}
			created[mbox] = true
		}
		for _, m := range f.Messages {
			flags := make([]imap.Flag, len(m.Flags))
			for i, fl := range m.Flags {
				flags[i] = imap.Flag(fl)
			}
			cmd := c.Append(name(f.Path), int64(len(m.Raw)), &imap.AppendOptions{Flags: flags, Time: m.InternalDate})
			if _, err := cmd.Write(m.Raw); err != nil {
				return fmt.Errorf("imapsrctest: append to %q: %w", name(f.Path), err)
			}
			if err := cmd.Close(); err != nil {
				return fmt.Errorf("imapsrctest: append to %q: %w", name(f.Path), err)
			}
			if _, err := cmd.Wait(); err != nil {
				return fmt.Errorf("imapsrctest: append to %q: %w", name(f.Path), err)
			}
		}
	}
	return nil
}

// layout finds the server's delimiter and personal namespace prefix.
func layout(c *imapclient.Client) (delim rune, prefix string, err error) {
	list, err := c.List("", "", nil).Collect()
	if err != nil {
		return 0, "", fmt.Errorf("imapsrctest: list delimiter: %w", err)
	}
	delim = '/'
	if len(list) > 0 && list[0].Delim != 0 {
		delim = list[0].Delim
	}
	if c.Caps().Has(imap.CapNamespace) {
		ns, err := c.Namespace().Wait()
		if err != nil {
			return 0, "", fmt.Errorf("imapsrctest: namespace: %w", err)
		}
		if len(ns.Personal) > 0 {
			prefix = ns.Personal[0].Prefix
		}
	}
	return delim, prefix, nil
}

func alreadyExists(err error) bool {
	var ierr *imap.Error
	return errors.As(err, &ierr) && (ierr.Code == imap.ResponseCodeAlreadyExists ||
		bytes.Contains([]byte(strings.ToLower(ierr.Text)), []byte("exists")))
}
