// Package imapsrctest helps test code that reads IMAP: an in-memory IMAP
// server on a loopback port (go-imap's imapmemserver, optionally accepting
// OAuth 2.0 tokens over XOAUTH2 and OAUTHBEARER) and Seed, which fills any
// IMAP server with a migratetest.Fixture over the protocol itself (CREATE,
// with SPECIAL-USE attributes where the server takes them, and pipelined
// APPENDs with flags and internal dates), whatever its delimiter and
// namespace prefix.
package imapsrctest

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-sasl"

	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

// MemServer is an in-memory IMAP server listening on 127.0.0.1. It speaks
// plaintext only (clients must opt in to plaintext) and uses "/" as its
// delimiter. By default it offers IMAP4rev1 and IMAP4rev2 and no
// SPECIAL-USE (roles come from folder names); MemOptions changes that.
type MemServer struct {
	mem   *imapmemserver.Server
	srv   *imapserver.Server
	ln    net.Listener
	users map[string]string

	mu     sync.Mutex
	tokens map[string]string // OAuth token -> user
	auths  []string          // "MECH user ok|fail", in order
}

// MemOptions configures StartMem. A nil *MemOptions means the zero value.
type MemOptions struct {
	// Users maps user names to passwords. Default: "alice" / "secret".
	Users map[string]string
	// Caps are the capabilities announced. Default: IMAP4rev1 and
	// IMAP4rev2. Add imap.CapSpecialUse and imap.CapCreateSpecialUse for
	// SPECIAL-USE, or leave IMAP4rev2 out for an older server.
	Caps imap.CapSet
	// OAuth makes the server offer AUTH=XOAUTH2 and AUTH=OAUTHBEARER (and
	// PLAIN) and accept the tokens given to AcceptToken.
	OAuth bool
}

// StartMemServer starts a server with the given users (name -> password)
// on a free loopback port.
func StartMemServer(users map[string]string) (*MemServer, error) {
	return StartMem(&MemOptions{Users: users})
}

// StartMem starts a server configured by opts on a free loopback port.
func StartMem(opts *MemOptions) (*MemServer, error) {
	if opts == nil {
		opts = &MemOptions{}
	}
	users := opts.Users
	if len(users) == 0 {
		users = map[string]string{"alice": "secret"}
	}
	caps := opts.Caps
	if caps == nil {
		caps = imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}}
	}
	s := &MemServer{mem: imapmemserver.New(), users: users, tokens: map[string]string{}}
	for name, pass := range users {
		u := imapmemserver.NewUser(name, pass)
		if err := u.Create("INBOX", nil); err != nil {
			return nil, err
		}
		s.mem.AddUser(u)
	}
	s.srv = imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			sess := s.mem.NewSession()
			if opts.OAuth {
				return &oauthSession{memSession: sess.(memSession), srv: s}, nil, nil
			}
			return sess, nil, nil
		},
		Caps:         caps,
		InsecureAuth: true, // loopback only
		Logger:       discardLogger{},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.ln = ln
	go s.srv.Serve(ln)
	return s, nil
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}

// Addr returns the server's "127.0.0.1:port".
func (s *MemServer) Addr() string { return s.ln.Addr().String() }

// Close stops the server and closes its connections.
func (s *MemServer) Close() error { return s.srv.Close() }

// AcceptToken makes token log in as user (with MemOptions.OAuth).
func (s *MemServer) AcceptToken(user, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = user
}

// RevokeToken makes token fail from now on, as an expired one does.
func (s *MemServer) RevokeToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, token)
}

// Auths returns the token logins so far, in order, as "MECH user ok" or
// "MECH user fail" (never the token).
func (s *MemServer) Auths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.auths)
}

// checkToken logs sess in as user if token is valid for user.
func (s *MemServer) checkToken(sess memSession, mech, user, token string) error {
	s.mu.Lock()
	ok := s.tokens[token] == user && user != ""
	outcome := "fail"
	if ok {
		outcome = "ok"
	}
	s.auths = append(s.auths, mech+" "+user+" "+outcome)
	s.mu.Unlock()
	if !ok {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthenticationFailed, Text: "Invalid token"}
	}
	return sess.Login(user, s.users[user])
}

// memSession is what an imapmemserver session implements.
type memSession interface {
	imapserver.Session
	imapserver.SessionNamespace
	imapserver.SessionMove
}

// oauthSession is an imapmemserver session that also logs in with tokens.
type oauthSession struct {
	memSession
	srv *MemServer
}

// AuthenticateMechanisms implements imapserver.SessionSASL.
func (o *oauthSession) AuthenticateMechanisms() []string {
	return []string{sasl.Plain, "XOAUTH2", sasl.OAuthBearer}
}

// Authenticate implements imapserver.SessionSASL.
func (o *oauthSession) Authenticate(mech string) (sasl.Server, error) {
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, user, pass string) error {
			if identity != "" && identity != user {
				return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthorizationFailed, Text: "no authorization identity"}
			}
			return o.Login(user, pass)
		}), nil
	case sasl.OAuthBearer:
		return sasl.NewOAuthBearerServer(func(opts sasl.OAuthBearerOptions) *sasl.OAuthBearerError {
			if o.srv.checkToken(o.memSession, mech, opts.Username, opts.Token) != nil {
				return &sasl.OAuthBearerError{Status: "invalid_token", Schemes: "bearer"}
			}
			return nil
		}), nil
	case "XOAUTH2":
		return &xoauth2Server{check: func(user, token string) error {
			return o.srv.checkToken(o.memSession, mech, user, token)
		}}, nil
	}
	return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "SASL mechanism not supported"}
}

// xoauth2Server is the server side of XOAUTH2 as Gmail documents it
// (developers.google.com/gmail/imap/xoauth2-protocol): on failure, a JSON
// challenge, then NO once the client has answered it.
type xoauth2Server struct {
	check  func(user, token string) error
	failed error
}

func (x *xoauth2Server) Next(resp []byte) ([]byte, bool, error) {
	if x.failed != nil {
		return nil, true, x.failed
	}
	if resp == nil {
		return []byte{}, false, nil // ask for the initial response
	}
	const bearer = "auth=Bearer "
	var user, token string
	for _, kv := range strings.Split(string(resp), "\x01") {
		switch {
		case strings.HasPrefix(kv, "user="):
			user = kv[len("user="):]
		case len(kv) >= len(bearer) && strings.EqualFold(kv[:len(bearer)], bearer):
			token = kv[len(bearer):]
		}
	}
	if err := x.check(user, token); err != nil {
		x.failed = err
		return []byte(`{"status":"401","schemes":"Bearer","scope":"https://mail.google.com/"}`), false, nil
	}
	return nil, true, nil
}

// Seed logs in to the plaintext IMAP server at addr and creates every
// folder of fx (parents first, under the personal namespace prefix, with
// the server's delimiter) and appends its messages with their flags and
// internal dates. Folders that exist are reused.
func Seed(addr, user, password string, fx *migratetest.Fixture) error {
	c, err := Login(addr, user, password)
	if err != nil {
		return err
	}
	defer c.Close()
	return SeedClient(c, fx)
}

// Login dials the plaintext IMAP server at addr and logs in as user. The
// caller closes the client.
func Login(addr, user, password string) (*imapclient.Client, error) {
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		return nil, fmt.Errorf("imapsrctest: dial: %w", err)
	}
	if err := c.Login(user, password).Wait(); err != nil {
		c.Close()
		return nil, fmt.Errorf("imapsrctest: login as %s: %w", user, err)
	}
	return c, nil
}

// Client is Login for tests: it fails tb on an error and closes the
// client when the test ends.
func Client(tb testing.TB, addr, user, password string) *imapclient.Client {
	tb.Helper()
	c, err := Login(addr, user, password)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// SeedClient seeds through a client that is already logged in. Folders
// with a role are created with its SPECIAL-USE attribute where the server
// offers CREATE-SPECIAL-USE. APPENDs are pipelined, a window at a time,
// so that thousands of messages seed in seconds.
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
	specialUse := c.Caps().Has(imap.CapCreateSpecialUse)
	created := map[string]bool{"INBOX": true}
	for _, f := range fx.Folders {
		for n := 1; n <= len(f.Path); n++ {
			mbox := name(f.Path[:n])
			if created[mbox] {
				continue
			}
			var opts *imap.CreateOptions
			if attr := roleAttr[f.Role]; attr != "" && specialUse && n == len(f.Path) {
				opts = &imap.CreateOptions{SpecialUse: []imap.MailboxAttr{attr}}
			}
			if err := c.Create(mbox, opts).Wait(); err != nil && !alreadyExists(err) {
				return fmt.Errorf("imapsrctest: create %q: %w", mbox, err)
			}
			created[mbox] = true
		}
		mbox := name(f.Path)
		const window = 64
		var pending []*imapclient.AppendCommand
		wait := func() error {
			for _, cmd := range pending {
				if _, err := cmd.Wait(); err != nil {
					return fmt.Errorf("imapsrctest: append to %q: %w", mbox, err)
				}
			}
			pending = pending[:0]
			return nil
		}
		for _, m := range f.Messages {
			flags := make([]imap.Flag, len(m.Flags))
			for i, fl := range m.Flags {
				flags[i] = imap.Flag(fl)
			}
			cmd := c.Append(mbox, int64(len(m.Raw)), &imap.AppendOptions{Flags: flags, Time: m.InternalDate})
			if _, err := cmd.Write(m.Raw); err != nil {
				return fmt.Errorf("imapsrctest: append to %q: %w", mbox, err)
			}
			if err := cmd.Close(); err != nil {
				return fmt.Errorf("imapsrctest: append to %q: %w", mbox, err)
			}
			if pending = append(pending, cmd); len(pending) == window {
				if err := wait(); err != nil {
					return err
				}
			}
		}
		if err := wait(); err != nil {
			return err
		}
	}
	return nil
}

// roleAttr is the SPECIAL-USE attribute of each role.
var roleAttr = map[migrate.Role]imap.MailboxAttr{
	migrate.RoleSent:    imap.MailboxAttrSent,
	migrate.RoleDrafts:  imap.MailboxAttrDrafts,
	migrate.RoleTrash:   imap.MailboxAttrTrash,
	migrate.RoleJunk:    imap.MailboxAttrJunk,
	migrate.RoleArchive: imap.MailboxAttrArchive,
	migrate.RoleAll:     imap.MailboxAttrAll,
	migrate.RoleFlagged: imap.MailboxAttrFlagged,
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
		strings.Contains(strings.ToLower(ierr.Text), "exists"))
}
