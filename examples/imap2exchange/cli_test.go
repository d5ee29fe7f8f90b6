package main

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailferry/mailferry/exchange/exchangetest"
	"github.com/mailferry/mailferry/imapsrc/imapsrctest"
	"github.com/mailferry/mailferry/internal/dovecottest"
	"github.com/mailferry/mailferry/internal/targetcheck"
	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

// This file tests the command line of the reference command, each flag
// and exit status as a user meets them: the command runs as a child
// process (TestMain, startTool and runTool of fault_test.go) against a
// real Dovecot and the Graph emulator. Signals are in main_test.go
// (TestSignals).

// newCLIBatch starts a Dovecot (with TLS when withTLS is set) holding the
// mailboxes u1 … u<users>, each with the password "<user>-imap-pw" and
// seeded with fx: a faultBatch, whose targets (newTarget) give each case
// an emulator, a CSV of the batch and a directory of its own.
func newCLIBatch(t *testing.T, users int, fx *migratetest.Fixture, withTLS bool) *faultBatch {
	t.Helper()
	b := &faultBatch{fx: fx, payloads: map[string][]byte{}}
	pws := map[string]string{}
	for i := range users {
		u := "u" + strconv.Itoa(i+1)
		b.users = append(b.users, u)
		pws[u] = u + "-imap-pw"
	}
	b.dc = dovecottest.Start(t, &dovecottest.Options{Users: pws, TLS: withTLS})
	for u, pw := range pws {
		if err := imapsrctest.Seed(b.dc.Addr(), u, pw, fx); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// cliMessage returns a message named name (Message-ID
// <cli-name@mailferry.test>, Subject name) that the IMAP server received
// at received (its INTERNALDATE), with a Date header of sent, and a file
// attachment of attachment pseudo-random bytes when attachment > 0.
func cliMessage(name string, received, sent time.Time, attachment int) migratetest.FixtureMessage {
	var b strings.Builder
	fmt.Fprintf(&b, "Message-ID: <cli-%s@mailferry.test>\r\nDate: %s\r\nFrom: Grace <grace@example.org>\r\n"+
		"To: alice@example.com\r\nSubject: %s\r\nMIME-Version: 1.0\r\n", name, sent.Format(time.RFC1123Z), name)
	if attachment == 0 {
		b.WriteString("Content-Type: text/plain; charset=us-ascii\r\n\r\nThe message " + name + ".\r\n")
	} else {
		payload := make([]byte, attachment)
		rand.Read(payload)
		b.WriteString("Content-Type: multipart/mixed; boundary=\"cli-b\"\r\n\r\n" +
			"--cli-b\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nThe file is attached.\r\n" +
			"--cli-b\r\nContent-Type: application/octet-stream; name=\"" + name + ".bin\"\r\n" +
			"Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"" + name + ".bin\"\r\n\r\n")
		enc := base64.StdEncoding.EncodeToString(payload)
		for len(enc) > 76 {
			b.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		b.WriteString(enc + "\r\n--cli-b--\r\n")
	}
	return migratetest.FixtureMessage{Raw: []byte(b.String()), InternalDate: received}
}

// cliName returns the name cliMessage gave a Message-ID, or "".
func cliName(messageID string) string {
	name, ok := strings.CutPrefix(messageID, "<cli-")
	if !ok {
		return ""
	}
	name, _ = strings.CutSuffix(name, "@mailferry.test>")
	return name
}

// targetNames returns how many items of user's target mailbox carry each
// cliMessage name.
func targetNames(g *exchangetest.Server, user string) map[string]int {
	n := map[string]int{}
	for _, m := range g.Messages(user) {
		n[cliName(m.InternetMessageID)]++
	}
	return n
}

// checkNames fails t unless user's target holds each of want exactly
// once, and nothing else.
func checkNames(t *testing.T, g *exchangetest.Server, user, when string, want ...string) {
	t.Helper()
	got := targetNames(g, user)
	for _, name := range want {
		if got[name] != 1 {
			t.Errorf("%s: %s holds %d copies of %s, want 1", when, user, got[name], name)
		}
	}
	for name, n := range got {
		if !slices.Contains(want, name) {
			t.Errorf("%s: %s holds %d copies of %q, which it should not hold yet", when, user, n, name)
		}
	}
}

// setFlag returns args with flag name set to value: replaced where args
// has it, else appended.
func setFlag(args []string, name, value string) []string {
	args = slices.Clone(args)
	for i := 0; i+1 < len(args); i++ {
		if args[i] == name {
			args[i+1] = value
			return args
		}
	}
	return append(args, name, value)
}

// dropFlag returns args without flag name and its value.
func dropFlag(args []string, name string) []string {
	args = slices.Clone(args)
	if i := slices.Index(args, name); i >= 0 && i+1 < len(args) {
		return slices.Delete(args, i, i+2)
	}
	panic("no flag " + name + " in the arguments")
}

// cliFixture is a mailbox of small messages, in INBOX and Projects.
func cliFixture() *migratetest.Fixture {
	d := time.Date(2023, time.May, 10, 8, 30, 0, 0, time.UTC)
	return &migratetest.Fixture{Folders: []migratetest.FixtureFolder{
		{Path: []string{"INBOX"}, Role: migrate.RoleInbox, Messages: []migratetest.FixtureMessage{
			cliMessage("one", d, d, 0), cliMessage("two", d.Add(time.Hour), d.Add(time.Hour), 0),
		}},
		{Path: []string{"Projects"}, Messages: []migratetest.FixtureMessage{
			cliMessage("three", d.Add(2*time.Hour), d.Add(2*time.Hour), 0),
		}},
	}}
}

// checkNothingDone fails t if a run that should have stopped before
// migrating anything sent the target a request or created the state.
func checkNothingDone(t *testing.T, tg *faultTarget, c *child) {
	t.Helper()
	if n := tg.front.requests.Load(); n != 0 {
		t.Errorf("%d Graph requests sent\n%s", n, c.output())
	}
	if _, err := os.Stat(tg.statePath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the state file was created (%v)", err)
	}
}

// TestExitCodes checks each exit status the command documents (see the
// package documentation and the usage): 0 for a batch that completed, 2
// for a command line it cannot take, 1 for a batch that did not complete,
// whatever the reason: a mailbox failed, messages were not copied, or
// the CSV cannot be read (each bad line named).
func TestExitCodes(t *testing.T) {
	t.Parallel()
	fx := cliFixture()
	b := newCLIBatch(t, 2, fx, false)

	t.Run("complete", func(t *testing.T) {
		t.Parallel()
		tg := b.newTarget(t, nil)
		code, c := runTool(t, tg.args())
		if code != 0 {
			t.Errorf("exit %d, want 0\n%s", code, c.output())
		}
		targetcheck.Complete(t, tg.report(t))
		tg.checkExactlyOnce(t)
	})

	// Usage errors: exit 2 with the usage on stderr, before anything
	// is read, written or sent.
	for _, tc := range []struct {
		name string
		edit func(args []string) []string
		says string
	}{
		{"unknown-flag", func(a []string) []string { return append(a, "-bogus") }, "flag provided but not defined: -bogus"},
		{"bad-flag-syntax", func(a []string) []string { return append(a, "-mailboxes", "four") }, `invalid value "four" for flag -mailboxes`},
		{"missing-csv", func(a []string) []string { return dropFlag(a, "-csv") }, "-csv and -imap are required"},
		{"missing-imap", func(a []string) []string { return dropFlag(a, "-imap") }, "-csv and -imap are required"},
		// A word after the flags ends them: what follows it would be
		// ignored silently ("-probe false" would probe).
		{"stray-argument", func(a []string) []string { return append(a, "-probe", "false") }, `unexpected argument "false"`},
		{"bad-security", func(a []string) []string { return setFlag(a, "-security", "ssl") }, `-security "ssl"`},
		{"missing-tenant", func(a []string) []string { return append(a, "-client-id", "app") }, "-tenant and -client-id are required"},
	} {
		t.Run("usage/"+tc.name, func(t *testing.T) {
			t.Parallel()
			tg := b.newTarget(t, nil)
			var extra []string
			if tc.name == "missing-tenant" {
				extra = []string{"MAILFERRY_GRAPH_TOKEN="} // no token: -tenant and -client-id are needed
			}
			code, c := runTool(t, tc.edit(tg.args()), extra...)
			stderr := c.stderr.String()
			if code != 2 || !strings.Contains(stderr, tc.says) {
				t.Errorf("exit %d, want 2 and stderr saying %q\n%s", code, tc.says, c.output())
			}
			if !strings.Contains(stderr, "Usage: imap2exchange") || !strings.Contains(stderr, "Exit status") {
				t.Errorf("stderr shows no usage with the exit statuses\n%s", c.output())
			}
			checkNothingDone(t, tg, c)
		})
	}

	// -h shows the usage, with the exit statuses; asked for, it is no
	// error.
	t.Run("help", func(t *testing.T) {
		t.Parallel()
		tg := b.newTarget(t, nil)
		code, c := runTool(t, []string{"-h"})
		if code != 0 || !strings.Contains(c.stderr.String(), "Usage: imap2exchange") || !strings.Contains(c.stderr.String(), "Exit status") ||
			strings.Contains(c.stderr.String(), "help requested") {
			t.Errorf("exit %d, want 0 and the usage alone\n%s", code, c.output())
		}
		checkNothingDone(t, tg, c)
	})

	// A mailbox failed (its target mailbox is full: every write is
	// refused), the other completed: exit 1.
	t.Run("mailbox-failed", func(t *testing.T) {
		t.Parallel()
		tg := b.newTarget(t, nil)
		tg.g.SetQuotaExceeded("u2@contoso.com", true)
		code, c := runTool(t, tg.args())
		if code != 1 {
			t.Errorf("exit %d, want 1\n%s", code, c.output())
		}
		rep := tg.report(t)
		if len(rep.Mailboxes) != 2 {
			t.Fatalf("report: %d mailboxes, want 2", len(rep.Mailboxes))
		}
		if mb := rep.Mailboxes[0]; mb.Status != migrate.StatusCompleted {
			t.Errorf("u1: %s (%s), want completed", mb.Status, mb.Error)
		}
		if mb := rep.Mailboxes[1]; mb.Status != migrate.StatusFailed || !strings.Contains(mb.Error, "ErrorQuotaExceeded") {
			t.Errorf("u2: %s (%s), want failed, the mailbox full", mb.Status, mb.Error)
		}
		checkNames(t, tg.g, "u1@contoso.com", "u1", "one", "two", "three")
		checkNames(t, tg.g, "u2@contoso.com", "u2")
		if !strings.Contains(c.stdout.String(), "u2@contoso.com: stopped") || !strings.Contains(c.stderr.String(), "not migrated") {
			t.Errorf("the output does not say that u2 stopped and the batch is not migrated\n%s", c.output())
		}
	})

	// A message the target refuses (larger than the target mailbox
	// takes), the rest copied: the mailbox completed with errors, exit 1.
	t.Run("item-failures", func(t *testing.T) {
		t.Parallel()
		fx := cliFixture()
		big := cliMessage("big", time.Date(2023, time.May, 11, 9, 0, 0, 0, time.UTC), time.Date(2023, time.May, 11, 9, 0, 0, 0, time.UTC), 48<<10)
		fx.Folders[0].Messages = append(fx.Folders[0].Messages, big)
		b := newCLIBatch(t, 1, fx, false)
		tg := b.newTarget(t, &exchangetest.Options{MaxMessageBytes: 32 << 10})
		code, c := runTool(t, tg.args())
		if code != 1 {
			t.Errorf("exit %d, want 1\n%s", code, c.output())
		}
		rep := tg.report(t)
		if mb := rep.Mailboxes[0]; mb.Status != migrate.StatusCompletedWithErrors || len(mb.Problems) != 1 ||
			!strings.Contains(mb.Problems[0].Reason, "ErrorMessageSizeExceeded") {
			t.Errorf("u1: %s, problems %+v; want completed with errors, the large message refused", mb.Status, mb.Problems)
		}
		if tot := rep.Totals(); tot.Copied != 3 || tot.Failed != 1 {
			t.Errorf("report: %d copied, %d failed; want 3 and 1", tot.Copied, tot.Failed)
		}
		checkNames(t, tg.g, "u1@contoso.com", "u1", "one", "two", "three")
		if !strings.Contains(c.stdout.String(), "not copied") || !strings.Contains(c.stderr.String(), "not migrated") {
			t.Errorf("the output does not say that a message was not copied\n%s", c.output())
		}
	})

	// A CSV with bad lines: every one named, nothing migrated, exit 1.
	t.Run("bad-csv", func(t *testing.T) {
		t.Parallel()
		tg := b.newTarget(t, nil)
		csv := "EmailAddress,UserName,Password\n" +
			"u1@contoso.com,u1,u1-imap-pw\n" +
			"not-an-address,u2,u2-imap-pw\n" +
			"u1@contoso.com,u1,u1-imap-pw\n"
		if err := os.WriteFile(filepath.Join(tg.dir, "batch.csv"), []byte(csv), 0o600); err != nil {
			t.Fatal(err)
		}
		code, c := runTool(t, tg.args())
		stderr := c.stderr.String()
		if code != 1 || !strings.Contains(stderr, "line 3:") || !strings.Contains(stderr, "line 4:") || strings.Contains(stderr, "line 2:") {
			t.Errorf("exit %d, want 1 and stderr naming lines 3 and 4 (and not 2)\n%s", code, c.output())
		}
		if strings.Contains(c.output(), "imap-pw") {
			t.Errorf("the output shows a password\n%s", c.output())
		}
		checkNothingDone(t, tg, c)
	})

	t.Run("missing-csv-file", func(t *testing.T) {
		t.Parallel()
		tg := b.newTarget(t, nil)
		args := setFlag(tg.args(), "-csv", filepath.Join(tg.dir, "no-such.csv"))
		code, c := runTool(t, args)
		if code != 1 || !strings.Contains(c.stderr.String(), "no-such.csv") {
			t.Errorf("exit %d, want 1 and stderr naming the file\n%s", code, c.output())
		}
		checkNothingDone(t, tg, c)
	})
}

// TestDateRange runs the command with -since and -before: only the
// messages the IMAP server received in the range ([since, before), from
// midnight UTC; the Date header does not count) are copied, the report
// counts the others as filtered; a run with a wider range copies those
// it takes in, and nothing twice; a run without a range copies the rest.
// A date that is not YYYY-MM-DD is a usage error.
func TestDateRange(t *testing.T) {
	t.Parallel()
	at := func(s string) time.Time {
		d, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	// Every Date header says a day inside the range: the received date
	// alone decides.
	sent := at("2024-02-15T10:00:00+01:00")
	fx := &migratetest.Fixture{Folders: []migratetest.FixtureFolder{
		{Path: []string{"INBOX"}, Role: migrate.RoleInbox, Messages: []migratetest.FixtureMessage{
			cliMessage("old", at("2023-06-15T12:00:00Z"), sent, 0),
			// 2024-02-01 00:30 in Paris: still January in UTC.
			cliMessage("eve", at("2024-02-01T00:30:00+01:00"), sent, 0),
			cliMessage("since-edge", at("2024-02-01T00:00:00Z"), sent, 0),
			cliMessage("mid", at("2024-02-15T12:00:00Z"), sent, 0),
		}},
		{Path: []string{"Projects"}, Messages: []migratetest.FixtureMessage{
			cliMessage("last-second", at("2024-02-29T23:59:59Z"), sent, 0),
			cliMessage("before-edge", at("2024-03-01T00:00:00Z"), sent, 0),
			cliMessage("new", at("2024-06-01T12:00:00Z"), sent, 0),
		}},
	}}
	b := newCLIBatch(t, 1, fx, false)
	const user = "u1@contoso.com"
	// The command runs 9 hours ahead of UTC: the days still start at
	// 00:00 UTC.
	const tokyo = "TZ=Asia/Tokyo"

	t.Run("widening", func(t *testing.T) {
		t.Parallel()
		tg := b.newTarget(t, nil)
		for _, run := range []struct {
			flags                    []string
			copied, already, filtred int
			want                     []string // the target after the run
		}{
			{[]string{"-since", "2024-02-01", "-before", "2024-03-01"}, 3, 0, 4,
				[]string{"since-edge", "mid", "last-second"}},
			{[]string{"-since", "2024-01-01"}, 3, 3, 1,
				[]string{"since-edge", "mid", "last-second", "eve", "before-edge", "new"}},
			{nil, 1, 6, 0,
				[]string{"since-edge", "mid", "last-second", "eve", "before-edge", "new", "old"}},
		} {
			what := "run with " + strings.Join(run.flags, " ")
			code, c := runTool(t, append(tg.args(), run.flags...), tokyo)
			if code != 0 {
				t.Errorf("%s: exit %d, want 0\n%s", what, code, c.output())
			}
			tot := targetcheck.Complete(t, tg.report(t))
			if tot.Copied != run.copied || tot.AlreadyCopied != run.already || tot.Filtered != run.filtred {
				t.Errorf("%s: %d copied, %d already copied, %d filtered; want %d, %d, %d\n%s", what,
					tot.Copied, tot.AlreadyCopied, tot.Filtered, run.copied, run.already, run.filtred, c.output())
			}
			checkNames(t, tg.g, user, what, run.want...)
			if t.Failed() {
				t.FailNow()
			}
		}
		tg.checkExactlyOnce(t)
	})

	t.Run("before-only", func(t *testing.T) {
		t.Parallel()
		tg := b.newTarget(t, nil)
		code, c := runTool(t, append(tg.args(), "-before", "2024-02-01"), tokyo)
		if code != 0 {
			t.Errorf("exit %d, want 0\n%s", code, c.output())
		}
		if tot := targetcheck.Complete(t, tg.report(t)); tot.Copied != 2 || tot.Filtered != 5 {
			t.Errorf("%d copied, %d filtered; want 2 and 5", tot.Copied, tot.Filtered)
		}
		checkNames(t, tg.g, user, "-before 2024-02-01", "old", "eve")
	})

	for _, bad := range [][]string{{"-since", "2024-13-01"}, {"-before", "1 March 2024"}, {"-since", "2024-02-01T00:00:00Z"}} {
		t.Run("usage/"+bad[0]+"="+bad[1], func(t *testing.T) {
			t.Parallel()
			tg := b.newTarget(t, nil)
			code, c := runTool(t, append(tg.args(), bad...))
			if code != 2 || !strings.Contains(c.stderr.String(), bad[0]+" \""+bad[1]+"\": want YYYY-MM-DD") {
				t.Errorf("exit %d, want 2 and stderr naming the flag and its value\n%s", code, c.output())
			}
			checkNothingDone(t, tg, c)
		})
	}
}

// TestReceivedDates runs the command with each value of -received-dates
// and checks what the target keeps: with source (the default), each
// item's received date is its IMAP INTERNALDATE, through the JSON create
// on a tenant that ignores the delivery time PATCHed after an import, or
// with the exact MIME on one that honours it; with import, the exact MIME
// and the import time. Any other value is a usage error.
func TestReceivedDates(t *testing.T) {
	t.Parallel()
	fx := cliFixture()
	b := newCLIBatch(t, 1, fx, false)
	raw := map[string]migratetest.FixtureMessage{}
	for _, f := range fx.Folders {
		for _, m := range f.Messages {
			raw[cliName(m.MessageID())] = m
		}
	}
	for _, tc := range []struct {
		name    string
		flags   []string
		honour  bool // the tenant honours the delivery time PATCH
		keepsRD bool // the items keep their IMAP received date
		exact   bool // the items keep their MIME byte for byte
	}{
		{"default", nil, false, true, false},
		{"source", []string{"-received-dates", "source"}, false, true, false},
		{"source-honoured", []string{"-received-dates", "source"}, true, true, true},
		{"import", []string{"-received-dates", "import"}, false, false, true},
		{"import-honoured", []string{"-received-dates", "import"}, true, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tg := b.newTarget(t, &exchangetest.Options{HonourDeliveryTimePatch: tc.honour})
			start := time.Now().Add(-time.Second)
			code, c := runTool(t, append(tg.args(), tc.flags...))
			end := time.Now().Add(time.Second)
			if code != 0 {
				t.Fatalf("exit %d\n%s", code, c.output())
			}
			targetcheck.Complete(t, tg.report(t))
			tg.checkExactlyOnce(t)
			msgs := tg.g.Messages("u1@contoso.com")
			if len(msgs) != fx.Count() {
				t.Fatalf("%d items, want %d", len(msgs), fx.Count())
			}
			for _, m := range msgs {
				src := raw[cliName(m.InternetMessageID)]
				rd := m.ReceivedDateTime
				switch {
				case tc.keepsRD && !rd.Equal(src.InternalDate):
					t.Errorf("%s: received %v, want the IMAP date %v", m.Subject, rd, src.InternalDate)
				case !tc.keepsRD && (rd.Before(start) || rd.After(end)):
					t.Errorf("%s: received %v, want the import time (%v to %v)", m.Subject, rd, start, end)
				}
				if exact := bytes.Equal(m.MIME, src.Raw); exact != tc.exact {
					t.Errorf("%s: MIME kept byte for byte: %v, want %v (%d bytes stored)", m.Subject, exact, tc.exact, len(m.MIME))
				}
			}
		})
	}
	t.Run("usage/bad-value", func(t *testing.T) {
		t.Parallel()
		tg := b.newTarget(t, nil)
		code, c := runTool(t, append(tg.args(), "-received-dates", "now"))
		if code != 2 || !strings.Contains(c.stderr.String(), `-received-dates "now": want source or import`) {
			t.Errorf("exit %d, want 2 and stderr naming the flag and its value\n%s", code, c.output())
		}
		checkNothingDone(t, tg, c)
	})
}

// caPEM returns the PEM of the CA that signed the certificate dc serves
// on its TLS port (dovecottest generates one per server): the last
// certificate of the chain it presents, checked against dc.RootCAs.
func caPEM(t *testing.T, dc *dovecottest.Server) []byte {
	t.Helper()
	conn, err := tls.Dial("tcp", dc.TLSAddr(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	chain := conn.ConnectionState().PeerCertificates
	ca := chain[len(chain)-1]
	own := x509.NewCertPool()
	own.AddCert(ca)
	for _, roots := range []*x509.CertPool{own, dc.RootCAs()} {
		if _, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, DNSName: "127.0.0.1"}); err != nil || !ca.IsCA || len(chain) < 2 {
			t.Fatalf("the chain Dovecot presents does not end with its CA: %v", err)
		}
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})
}

// selfSigned returns a new self-signed certificate for cn, with its RSA
// key, and both as PEM (the certificate, then the key in PKCS #8).
func selfSigned(t *testing.T, cn string) (*x509.Certificate, []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return cert, append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})...)
}

// writeFile writes b to name in dir, readable by its owner only, and
// returns its path.
func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCA runs the command against a Dovecot whose certificate a private
// CA signed: without -ca the IMAP connection is refused as untrusted
// (the mailbox fails, nothing copied, exit 1), with a -ca that is not
// that CA too, and with -ca naming the CA every message is copied, over
// implicit TLS and over STARTTLS. A -ca file without a certificate, or
// missing, stops the run before anything is done.
func TestCA(t *testing.T) {
	t.Parallel()
	b := newCLIBatch(t, 1, cliFixture(), true)
	ca := writeFile(t, t.TempDir(), "ca.pem", caPEM(t, b.dc))
	other, _ := selfSigned(t, "another CA")
	otherCA := writeFile(t, t.TempDir(), "other-ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: other.Raw}))
	tlsArgs := func(tg *faultTarget) []string {
		return setFlag(setFlag(tg.args(), "-imap", b.dc.TLSAddr()), "-security", "tls")
	}

	for _, tc := range []struct {
		name  string
		extra []string
	}{{"without-ca", nil}, {"other-ca", []string{"-ca", otherCA}}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tg := b.newTarget(t, nil)
			code, c := runTool(t, append(tlsArgs(tg), tc.extra...))
			if code != 1 {
				t.Errorf("exit %d, want 1\n%s", code, c.output())
			}
			rep := tg.report(t)
			if mb := rep.Mailboxes[0]; mb.Status != migrate.StatusFailed || !strings.Contains(mb.Error, "certificate signed by unknown authority") {
				t.Errorf("u1: %s (%s); want failed, the server's certificate not trusted", mb.Status, mb.Error)
			}
			if !strings.Contains(c.stdout.String(), "certificate signed by unknown authority") {
				t.Errorf("the output does not say why\n%s", c.output())
			}
			if all, _ := tg.items(); all != 0 {
				t.Errorf("%d items copied from a server that is not trusted", all)
			}
		})
	}
	for _, tc := range []struct {
		name string
		args func(tg *faultTarget) []string
	}{
		{"tls", tlsArgs},
		{"starttls", func(tg *faultTarget) []string { return setFlag(tg.args(), "-security", "starttls") }},
	} {
		t.Run("with-ca/"+tc.name, func(t *testing.T) {
			t.Parallel()
			tg := b.newTarget(t, nil)
			code, c := runTool(t, append(tc.args(tg), "-ca", ca))
			if code != 0 {
				t.Errorf("exit %d, want 0\n%s", code, c.output())
			}
			targetcheck.Complete(t, tg.report(t))
			tg.checkExactlyOnce(t)
		})
	}
	for _, tc := range []struct{ name, file, says string }{
		{"no-certificate", writeFile(t, t.TempDir(), "empty.pem", []byte("not a certificate\n")), "no certificate found"},
		{"missing", filepath.Join(t.TempDir(), "none.pem"), "-ca: open "},
	} {
		t.Run("bad-ca/"+tc.name, func(t *testing.T) {
			t.Parallel()
			tg := b.newTarget(t, nil)
			code, c := runTool(t, append(tlsArgs(tg), "-ca", tc.file))
			if code != 1 || !strings.Contains(c.stderr.String(), tc.says) {
				t.Errorf("exit %d, want 1 and stderr saying %q\n%s", code, tc.says, c.output())
			}
			checkNothingDone(t, tg, c)
		})
	}
}

// certTokenService is an Entra token endpoint (adfs) for the client
// credentials grant with a certificate: it gives a bearer token for a
// client assertion (a JWT, RS256, x5t the SHA-1 thumbprint of the
// certificate, RFC 7523) signed with the key of the one certificate
// registered for the app, and refuses anything else.
type certTokenService struct {
	*adfs
	clientID string
	cert     *x509.Certificate
	bearer   string

	mu      sync.Mutex
	ok      int      // tokens given
	refused []string // why each request was refused
}

func newCertTokenService(t *testing.T, clientID string, cert *x509.Certificate, bearer string) *certTokenService {
	ts := &certTokenService{clientID: clientID, cert: cert, bearer: bearer}
	ts.adfs = startADFS(t, func(r *http.Request, tokenURL string) (string, *adfsRefusal) {
		err := ts.check(r, tokenURL)
		ts.mu.Lock()
		defer ts.mu.Unlock()
		if err != nil {
			ts.refused = append(ts.refused, err.Error())
			return "", &adfsRefusal{700027, "AADSTS700027: " + err.Error()}
		}
		ts.ok++
		return ts.bearer, nil
	})
	return ts
}

// check returns why the token request r, to the endpoint aud, is
// refused, or nil.
func (ts *certTokenService) check(r *http.Request, aud string) error {
	f := r.PostForm
	switch {
	case f.Get("grant_type") != "client_credentials":
		return fmt.Errorf("grant_type %q", f.Get("grant_type"))
	case f.Get("client_id") != ts.clientID:
		return fmt.Errorf("client_id %q", f.Get("client_id"))
	case f.Get("client_secret") != "":
		return errors.New("a client secret, not a certificate")
	case f.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
		return fmt.Errorf("client_assertion_type %q", f.Get("client_assertion_type"))
	}
	parts := strings.Split(f.Get("client_assertion"), ".")
	if len(parts) != 3 {
		return errors.New("the client assertion is not a JWT")
	}
	var hdr struct {
		Alg string `json:"alg"`
		X5t string `json:"x5t"`
	}
	var claims struct {
		Aud, Iss, Sub string
		Exp           int64
	}
	for i, into := range []any{&hdr, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, into); err != nil {
			return err
		}
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return err
	}
	thumb := sha1.Sum(ts.cert.Raw)
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	switch {
	case hdr.Alg != "RS256":
		return fmt.Errorf("alg %q", hdr.Alg)
	case hdr.X5t != base64.StdEncoding.EncodeToString(thumb[:]) && hdr.X5t != base64.RawURLEncoding.EncodeToString(thumb[:]):
		return errors.New("the assertion names a certificate not registered for the app")
	case rsa.VerifyPKCS1v15(ts.cert.PublicKey.(*rsa.PublicKey), crypto.SHA256, digest[:], sig) != nil:
		return errors.New("the assertion's signature does not verify with the registered certificate")
	case claims.Aud != aud || claims.Iss != ts.clientID || claims.Sub != ts.clientID:
		return fmt.Errorf("claims %+v", claims)
	case time.Unix(claims.Exp, 0).Before(time.Now()):
		return errors.New("the assertion has expired")
	}
	return nil
}

func (ts *certTokenService) counts() (ok int, refused []string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.ok, slices.Clone(ts.refused)
}

// TestClientCert runs the command with -client-cert, the app's
// certificate and key for Graph: it signs the client assertion that the
// token service exchanges for the bearer token the emulator takes (and
// is used rather than MAILFERRY_CLIENT_SECRET, set too, and wrong). A
// certificate not registered for the app is refused by the token service
// (every mailbox fails, nothing copied); a file that is missing or holds
// no certificate and key stops the run before anything is done.
func TestClientCert(t *testing.T) {
	t.Parallel()
	const clientID = "00000000-0000-0000-0000-00000000ce27"
	const bearer = "bearer-for-the-certificate"
	b := newCLIBatch(t, 2, cliFixture(), false)
	cert, certPEM := selfSigned(t, "imap2exchange app")
	_, otherPEM := selfSigned(t, "another app")
	keyOnly := certPEM[bytes.Index(certPEM, []byte("-----BEGIN PRIVATE KEY")):]
	dir := t.TempDir()
	ts := newCertTokenService(t, clientID, cert, bearer)
	env := append([]string{"MAILFERRY_GRAPH_TOKEN=", "MAILFERRY_CLIENT_SECRET=a-wrong-client-secret"}, ts.env(t)...)
	args := func(tg *faultTarget, certFile string) []string {
		return append(tg.args(), "-tenant", "adfs", "-client-id", clientID, "-client-cert", certFile)
	}

	// One after the other: the token service counts the requests of each.
	t.Run("registered", func(t *testing.T) {
		tg := b.newTarget(t, &exchangetest.Options{Token: bearer})
		code, c := runTool(t, args(tg, writeFile(t, dir, "app.pem", certPEM)), env...)
		if code != 0 {
			t.Errorf("exit %d, want 0\n%s", code, c.output())
		}
		ok, refused := ts.counts()
		if ok == 0 || len(refused) != 0 {
			t.Errorf("token service: %d tokens given, refused: %q", ok, refused)
		}
		targetcheck.Complete(t, tg.report(t))
		tg.checkExactlyOnce(t)
		if strings.Contains(c.output(), bearer) {
			t.Errorf("the output shows the bearer token\n%s", c.output())
		}
	})
	t.Run("not-registered", func(t *testing.T) {
		tg := b.newTarget(t, &exchangetest.Options{Token: bearer})
		ok0, _ := ts.counts()
		code, c := runTool(t, args(tg, writeFile(t, dir, "other.pem", otherPEM)), env...)
		if code != 1 {
			t.Errorf("exit %d, want 1\n%s", code, c.output())
		}
		ok, refused := ts.counts()
		if ok != ok0 || len(refused) == 0 {
			t.Errorf("token service: %d more tokens given, refused: %q; want the certificate refused", ok-ok0, refused)
		}
		for _, mb := range tg.report(t).Mailboxes {
			if mb.Status != migrate.StatusFailed || !strings.Contains(mb.Error, "invalid_client") {
				t.Errorf("%s: %s (%s), want failed, the token refused", mb.Mailbox, mb.Status, mb.Error)
			}
		}
		if all, _ := tg.items(); all != 0 {
			t.Errorf("%d items copied without a token", all)
		}
	})
	for _, tc := range []struct {
		name string
		pem  []byte // nil: no file
		says string
	}{
		{"missing", nil, "-client-cert: open " + filepath.Join(dir, "no-such.pem")},
		{"not-pem", []byte("not a certificate\n"), "want a PEM file with the app's certificate and its private key"},
		{"key-only", keyOnly, "want a PEM file with the app's certificate and its private key"},
	} {
		t.Run("bad-file/"+tc.name, func(t *testing.T) {
			tg := b.newTarget(t, nil)
			file := filepath.Join(dir, "no-such.pem")
			if tc.pem != nil {
				file = writeFile(t, dir, tc.name+".pem", tc.pem)
			}
			ok0, refused0 := ts.counts()
			code, c := runTool(t, args(tg, file), env...)
			if code != 1 || !strings.Contains(c.stderr.String(), tc.says) {
				t.Errorf("exit %d, want 1 and stderr saying %q\n%s", code, tc.says, c.output())
			}
			if ok, refused := ts.counts(); ok != ok0 || len(refused) != len(refused0) {
				t.Errorf("the token service was asked")
			}
			checkNothingDone(t, tg, c)
		})
	}
}

// TestBadItemLimit runs the command on a mailbox of which the target
// refuses 3 messages (larger than the target mailbox takes: 400
// ErrorMessageSizeExceeded), in INBOX, the first folder; the others, in
// INBOX and in Projects after it, are taken. With -bad-item-limit 2 the
// mailbox stops at the third failure, before Projects: failed, "bad item
// limit", exit 1. With 3, or without a limit, it completes with errors:
// every other message copied, exit 1.
func TestBadItemLimit(t *testing.T) {
	t.Parallel()
	d := time.Date(2023, time.May, 10, 8, 30, 0, 0, time.UTC)
	var inbox []migratetest.FixtureMessage
	for i := range 5 {
		size := 0
		if i%2 == 0 {
			size = 48 << 10 // refused: i = 0, 2, 4
		}
		inbox = append(inbox, cliMessage("inbox-"+strconv.Itoa(i), d.Add(time.Duration(i)*time.Minute), d, size))
	}
	fx := &migratetest.Fixture{Folders: []migratetest.FixtureFolder{
		{Path: []string{"INBOX"}, Role: migrate.RoleInbox, Messages: inbox},
		{Path: []string{"Projects"}, Messages: []migratetest.FixtureMessage{
			cliMessage("projects-0", d, d, 0), cliMessage("projects-1", d, d, 0),
		}},
	}}
	b := newCLIBatch(t, 1, fx, false)
	const refused = 3
	for _, tc := range []struct {
		limit  string
		stops  bool
		copied []string
	}{
		{"2", true, nil},
		{"3", false, []string{"inbox-1", "inbox-3", "projects-0", "projects-1"}},
		{"0", false, []string{"inbox-1", "inbox-3", "projects-0", "projects-1"}},
	} {
		t.Run("limit-"+tc.limit, func(t *testing.T) {
			t.Parallel()
			tg := b.newTarget(t, &exchangetest.Options{MaxMessageBytes: 32 << 10})
			code, c := runTool(t, append(tg.args(), "-bad-item-limit", tc.limit))
			if code != 1 {
				t.Errorf("exit %d, want 1\n%s", code, c.output())
			}
			mb := tg.report(t).Mailboxes[0]
			failed := 0
			for _, f := range mb.Folders {
				failed += f.Failed
			}
			if failed != refused || len(mb.Problems) != refused {
				t.Errorf("%d failed, %d problems; want %d", failed, len(mb.Problems), refused)
			}
			for _, p := range mb.Problems {
				if !strings.Contains(p.Reason, "ErrorMessageSizeExceeded") {
					t.Errorf("problem %+v, want the message refused as too large", p)
				}
			}
			got := targetNames(tg.g, "u1@contoso.com")
			if tc.stops {
				if mb.Status != migrate.StatusFailed || !strings.Contains(mb.Error, "bad item limit") {
					t.Errorf("status %s (%s), want failed, bad item limit reached", mb.Status, mb.Error)
				}
				if got["projects-0"]+got["projects-1"] != 0 {
					t.Errorf("Projects copied after the mailbox stopped: %v", got)
				}
				if !strings.Contains(c.stdout.String(), "stopped") || !strings.Contains(c.stdout.String(), "bad item limit") {
					t.Errorf("the output does not say the mailbox stopped at its bad item limit\n%s", c.output())
				}
				return
			}
			if mb.Status != migrate.StatusCompletedWithErrors {
				t.Errorf("status %s (%s), want completed with errors", mb.Status, mb.Error)
			}
			checkNames(t, tg.g, "u1@contoso.com", "limit "+tc.limit, tc.copied...)
		})
	}
}
