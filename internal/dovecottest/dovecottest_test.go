package dovecottest_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailferry/mailferry/imapsrc/imapsrctest"
	"github.com/mailferry/mailferry/internal/dovecottest"
)

func listNames(t *testing.T, c *imapclient.Client) map[string][]imap.MailboxAttr {
	t.Helper()
	l, err := c.List("", "*", &imap.ListOptions{ReturnSpecialUse: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]imap.MailboxAttr{}
	for _, d := range l {
		out[d.Mailbox] = d.Attrs
	}
	return out
}

func TestLayouts(t *testing.T) {
	for _, tc := range []struct {
		layout string
		sent   string
	}{
		{dovecottest.LayoutDefault, "Sent"},
		{dovecottest.LayoutCourier, "INBOX.Sent"},
	} {
		t.Run(tc.layout, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			s := dovecottest.Start(t, &dovecottest.Options{Layout: tc.layout})
			t.Logf("started in %v at %s", time.Since(start), s.Addr())
			c := imapsrctest.Client(t, s.Addr(), "alice", "secret")
			names := listNames(t, c)
			if _, ok := names["INBOX"]; !ok {
				t.Errorf("no INBOX in %v", names)
			}
			if !slices.Contains(names[tc.sent], imap.MailboxAttrSent) {
				t.Errorf("%s attrs = %v, want \\Sent; all: %v", tc.sent, names[tc.sent], names)
			}
			if len(names) != 6 {
				t.Errorf("got %d mailboxes, want 6: %v", len(names), names)
			}
			ns, err := c.Namespace().Wait()
			if err != nil {
				t.Fatal(err)
			}
			if got := ns.Personal[0].Prefix; got != s.Prefix() {
				t.Errorf("prefix = %q, want %q", got, s.Prefix())
			}
			if got := string(ns.Personal[0].Delim); got != s.Delimiter() {
				t.Errorf("delimiter = %q, want %q", got, s.Delimiter())
			}
		})
	}
}

func TestMasterUserAndBadPassword(t *testing.T) {
	s := dovecottest.Start(t, &dovecottest.Options{
		Users:      map[string]string{"alice": "pw1", "bob": "pw2"},
		MasterUser: "admin", MasterPassword: "adminpw",
	})
	c := imapsrctest.Client(t, s.Addr(), "alice*admin", "adminpw")
	if err := c.Create("FromAdmin", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	a := imapsrctest.Client(t, s.Addr(), "alice", "pw1")
	if _, ok := listNames(t, a)["FromAdmin"]; !ok {
		t.Error("folder created by the master user is not alice's")
	}
	imapsrctest.Client(t, s.Addr(), "bob", "pw2")

	bad, err := imapclient.DialInsecure(s.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if err := bad.Login("alice", "wrong").Wait(); err == nil {
		t.Error("login with a wrong password succeeded")
	}
}

func TestDropConnections(t *testing.T) {
	s := dovecottest.Start(t, nil)
	c := imapsrctest.Client(t, s.Addr(), "alice", "secret")
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if n := s.DropConnections(); n != 1 {
		t.Errorf("DropConnections = %d, want 1", n)
	}
	select {
	case <-c.Closed():
	case <-time.After(5 * time.Second):
		t.Fatal("connection still open after DropConnections")
	}
	// The server still accepts new sessions.
	imapsrctest.Client(t, s.Addr(), "alice", "secret")
}

func TestStop(t *testing.T) {
	s := dovecottest.Start(t, nil)
	s.Stop()
	if c, err := imapclient.DialInsecure(s.Addr(), nil); err == nil {
		err = c.WaitGreeting()
		c.Close()
		if err == nil {
			t.Error("server still answers after Stop")
		}
	}
	s.Stop() // idempotent
}

// TestRestart restarts a server with a message in it: the sessions open
// before see their connections drop, the server is refused while down,
// then answers on the same address with the same users and mail.
func TestRestart(t *testing.T) {
	s := dovecottest.Start(t, nil)
	c := imapsrctest.Client(t, s.Addr(), "alice", "secret")
	msg := "Subject: kept\r\n\r\nacross a restart\r\n"
	app := c.Append("INBOX", int64(len(msg)), nil)
	if _, err := app.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	if err := app.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	down := make(chan struct{})
	restarted := make(chan error, 1)
	go func() {
		close(down)
		restarted <- s.Restart(300 * time.Millisecond)
	}()
	<-down
	select {
	case <-c.Closed():
	case <-time.After(5 * time.Second):
		t.Fatal("connection still open after Restart")
	}
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
	if s.Addr() != addr {
		t.Errorf("address %s after Restart, was %s", s.Addr(), addr)
	}
	c2 := imapsrctest.Client(t, addr, "alice", "secret")
	sel, err := c2.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages != 1 {
		t.Errorf("INBOX holds %d messages after Restart, want 1", sel.NumMessages)
	}
	s.Stop()
	if err := s.Restart(0); err == nil {
		t.Error("Restart after Stop succeeded")
	}
}

func TestTLS(t *testing.T) {
	s := dovecottest.Start(t, &dovecottest.Options{TLS: true})
	cfg := &tls.Config{RootCAs: s.RootCAs(), ServerName: "127.0.0.1"}
	c, err := imapclient.DialTLS(s.TLSAddr(), &imapclient.Options{TLSConfig: cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("alice", "secret").Wait(); err != nil {
		t.Fatalf("login over TLS: %v", err)
	}
	st, err := imapclient.DialStartTLS(s.Addr(), &imapclient.Options{TLSConfig: cfg})
	if err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
	defer st.Close()
	if err := st.Login("alice", "secret").Wait(); err != nil {
		t.Fatalf("login after STARTTLS: %v", err)
	}
	// The certificate is the test's own: without its CA, it is refused.
	if c, err := imapclient.DialTLS(s.TLSAddr(), nil); err == nil {
		c.Close()
		t.Error("TLS with system roots accepted the test certificate")
	}
	// Plaintext stays available on Addr.
	imapsrctest.Client(t, s.Addr(), "alice", "secret")
}

func TestWriteMaildir(t *testing.T) {
	for _, layout := range []string{dovecottest.LayoutDefault, dovecottest.LayoutCourier} {
		t.Run(layout, func(t *testing.T) {
			s := dovecottest.Start(t, &dovecottest.Options{Layout: layout})
			folder := s.Prefix() + "Bulk"
			date := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
			var msgs []dovecottest.MaildirMessage
			for i := range 300 {
				raw := fmt.Sprintf("Message-ID: <m%d@x>\r\nSubject: %d\r\n\r\nbody %d\r\n", i+1, i+1, i+1)
				msgs = append(msgs, dovecottest.MaildirMessage{Raw: []byte(raw), Flags: []string{`\Seen`, `\Flagged`}, Date: date})
			}
			if err := s.WriteMaildir("alice", folder, msgs); err != nil {
				t.Fatal(err)
			}
			c := imapsrctest.Client(t, s.Addr(), "alice", "secret")
			if _, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
				t.Fatal(err)
			}
			var set imap.UIDSet
			set.AddRange(1, 0)
			got, err := c.Fetch(set, &imap.FetchOptions{UID: true, Flags: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(msgs) {
				t.Fatalf("%d messages, want %d", len(got), len(msgs))
			}
			for _, m := range got {
				want := msgs[m.UID-1]
				if string(m.FindBodySection(&imap.FetchItemBodySection{})) != string(want.Raw) || !m.InternalDate.Equal(date) ||
					!slices.Contains(m.Flags, imap.FlagSeen) || !slices.Contains(m.Flags, imap.FlagFlagged) {
					t.Fatalf("UID %d: %q %v %v", m.UID, m.FindBodySection(&imap.FetchItemBodySection{}), m.InternalDate, m.Flags)
				}
			}
		})
	}
}

// verdictTB is a testing.TB that records whether Require skipped or
// failed it. Like the real ones, Skipf and Fatalf end the goroutine.
type verdictTB struct {
	testing.TB
	skipped, failed bool
}

func (v *verdictTB) Helper() {}
func (v *verdictTB) Skipf(string, ...any) {
	v.skipped = true
	runtime.Goexit()
}
func (v *verdictTB) Fatalf(string, ...any) {
	v.failed = true
	runtime.Goexit()
}

// TestRequire: a missing Dovecot skips a test, except under CI=true
// where it fails it; any other launch error fails it.
func TestRequire(t *testing.T) {
	other := errors.New("dovecot exited (exit status 89): Fatal: Invalid configuration")
	missing := fmt.Errorf("%w: dovecot not found in PATH or /usr/sbin", dovecottest.ErrNotInstalled)
	for _, tc := range []struct {
		name, ci        string
		err             error
		skipped, failed bool
	}{
		{"no error", "", nil, false, false},
		{"not installed", "", missing, true, false},
		{"not installed, CI", "true", missing, false, true},
		{"other error", "", other, false, true},
		{"other error, CI", "true", other, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			v := &verdictTB{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				dovecottest.Require(v, tc.err)
			}()
			<-done
			if v.skipped != tc.skipped || v.failed != tc.failed {
				t.Errorf("Require(%v) with CI=%q: skipped %v, failed %v; want skipped %v, failed %v",
					tc.err, tc.ci, v.skipped, v.failed, tc.skipped, tc.failed)
			}
		})
	}
}

// TestCrashRevive: once Crash returns, every process of the server has
// exited, so a connection is refused at once, with no waiting; Revive
// brings the same server back. Crash and Revive out of turn fail.
func TestCrashRevive(t *testing.T) {
	s := dovecottest.Start(t, nil)
	c := imapsrctest.Client(t, s.Addr(), "alice", "secret")
	if err := s.Crash(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Closed():
	case <-time.After(time.Minute): // a hang guard
		t.Fatal("session still open after Crash")
	}
	if conn, err := net.Dial("tcp", s.Addr()); err == nil {
		conn.Close()
		t.Fatal("connection accepted after Crash returned")
	}
	if err := s.Crash(); err == nil {
		t.Error("Crash of a crashed server succeeded")
	}
	if n := s.DropConnections(); n != 0 {
		t.Errorf("DropConnections of a crashed server = %d", n)
	}
	if err := s.Revive(); err != nil {
		t.Fatal(err)
	}
	if err := s.Revive(); err == nil {
		t.Error("Revive of a running server succeeded")
	}
	imapsrctest.Client(t, s.Addr(), "alice", "secret")
}
