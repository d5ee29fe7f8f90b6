package exchange

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/microsoftgraph/msgraph-sdk-go/users"

	"github.com/mailferry/mailferry/exchange/exchangetest"
	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

// testAttachment is an attachment of a generated message.
type testAttachment struct {
	name, contentType, contentID string
	inline                       bool
	content                      []byte
}

// testMessage is a generated multipart message and what it holds.
type testMessage struct {
	raw       []byte
	date      time.Time
	messageID string
	subject   string
	text      string
	html      string
	atts      []testAttachment
}

// genMessage builds a multipart/mixed message (multipart/alternative text
// and HTML, an inline image, attachments of the given sizes, random
// bytes in base64) with From, To, Cc, an encoded subject, a Date, x-
// headers and a Received line.
func genMessage(seed uint64, sizes ...int) testMessage {
	rng := rand.New(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	tm := testMessage{
		date:      time.Date(2019, 3, 4, 5, 6, 7, 0, time.FixedZone("", 2*3600)),
		messageID: fmt.Sprintf("<gen-%d@mailferry.test>", seed),
		subject:   fmt.Sprintf("Réunion n°%d", seed),
		text:      "Bonjour Alice,\r\n\r\nvoici les pièces jointes.\r\n",
		html:      "<html><body><p>Bonjour Alice,</p><p>voici les <b>pièces jointes</b>.</p><img src=\"cid:logo@mailferry.test\"></body></html>",
	}
	tm.atts = append(tm.atts, testAttachment{name: "logo.png", contentType: "image/png", contentID: "logo@mailferry.test",
		inline: true, content: random(600)})
	for i, n := range sizes {
		tm.atts = append(tm.atts, testAttachment{name: fmt.Sprintf("report-%d.pdf", i+1), contentType: "application/pdf",
			content: random(n)})
	}
	var b bytes.Buffer
	w := func(s string) { b.WriteString(s + "\r\n") }
	w("Received: from mx.example.org by mail.example.org; Mon, 4 Mar 2019 05:06:08 +0200")
	w("From: Bob Martin <bob@example.org>")
	w("To: Alice <alice@contoso.com>, carol@contoso.com")
	w("Cc: Dave <dave@example.org>")
	w("Subject: =?utf-8?q?" + strings.ReplaceAll(qEncode(tm.subject), " ", "_") + "?=")
	w("Date: " + tm.date.Format(time.RFC1123Z))
	w("Message-ID: " + tm.messageID)
	w("X-Mailer: mailferry-test 1.0")
	w("X-Campaign: spring")
	w("Importance: high")
	w("MIME-Version: 1.0")
	w(`Content-Type: multipart/mixed; boundary="mixed-b"`)
	w("")
	w("This is a multi-part message in MIME format.")
	w("--mixed-b")
	w(`Content-Type: multipart/alternative; boundary="alt-b"`)
	w("")
	w("--alt-b")
	w("Content-Type: text/plain; charset=utf-8")
	w("Content-Transfer-Encoding: 8bit")
	w("")
	b.WriteString(tm.text)
	w("--alt-b")
	w("Content-Type: text/html; charset=iso-8859-1")
	w("Content-Transfer-Encoding: quoted-printable")
	w("")
	w(latin1QP(tm.html))
	w("--alt-b--")
	for _, a := range tm.atts {
		w("--mixed-b")
		w("Content-Type: " + a.contentType + `; name="` + a.name + `"`)
		w("Content-Transfer-Encoding: base64")
		if a.inline {
			w("Content-ID: <" + a.contentID + ">")
			w(`Content-Disposition: inline; filename="` + a.name + `"`)
		} else {
			w(`Content-Disposition: attachment; filename="` + a.name + `"`)
		}
		w("")
		enc := base64.StdEncoding.EncodeToString(a.content)
		for len(enc) > 76 {
			w(enc[:76])
			enc = enc[76:]
		}
		w(enc)
	}
	w("--mixed-b--")
	tm.raw = b.Bytes()
	return tm
}

func qEncode(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c < 128 && c != '=' && c != '?' && c != '_' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "=%02X", c)
		}
	}
	return b.String()
}

// latin1QP encodes s (whose runes are all Latin-1) as ISO-8859-1
// quoted-printable, in lines of at most 76 characters.
func latin1QP(s string) string {
	var b, line strings.Builder
	for _, r := range s {
		var tok string
		if r < 128 && r != '=' {
			tok = string(r)
		} else {
			tok = fmt.Sprintf("=%02X", byte(r))
		}
		if line.Len()+len(tok) > 75 {
			b.WriteString(line.String() + "=\r\n")
			line.Reset()
		}
		line.WriteString(tok)
	}
	b.WriteString(line.String())
	return b.String()
}

var testInternalDate = time.Date(2019, 3, 4, 3, 6, 9, 0, time.UTC)

func genPut(tm testMessage, uid uint32, flags ...migrate.Flag) *migrate.Message {
	m := message("INBOX", uid, tm.raw, flags...)
	m.InternalDate = testInternalDate
	m.MessageID = tm.messageID
	return m
}

// checkJSONCopy checks a message created through the JSON path against
// its source: dates, flags, fields, headers, body and every attachment
// byte.
func checkJSONCopy(t *testing.T, e *env, id string, tm testMessage, m *migrate.Message) {
	t.Helper()
	got, ok := e.srv.Message(testUser, id)
	if !ok {
		t.Fatalf("no message %s", id)
	}
	if got.IsDraft {
		t.Errorf("created as a draft")
	}
	if !got.ReceivedDateTime.Equal(m.InternalDate) {
		t.Errorf("received %v, want INTERNALDATE %v", got.ReceivedDateTime, m.InternalDate)
	}
	if !got.SentDateTime.Equal(tm.date) {
		t.Errorf("sent %v, want the Date header %v", got.SentDateTime, tm.date)
	}
	checkFlags(t, got, m.Flags)
	if got.Subject != tm.subject || got.InternetMessageID != tm.messageID || got.Importance != "high" {
		t.Errorf("subject %q, Message-ID %q, importance %q; want %q, %q, high", got.Subject, got.InternetMessageID, got.Importance, tm.subject, tm.messageID)
	}
	if got.ExtendedProperties[WatermarkProperty] != m.ID.String() {
		t.Errorf("watermark %q, want %q", got.ExtendedProperties[WatermarkProperty], m.ID)
	}
	if len(got.Attachments) != len(tm.atts) {
		t.Fatalf("%d attachments, want %d", len(got.Attachments), len(tm.atts))
	}
	for i, a := range tm.atts {
		g := got.Attachments[i]
		if g.Name != a.name || !strings.HasPrefix(g.ContentType, a.contentType) || g.IsInline != a.inline || g.ContentID != a.contentID {
			t.Errorf("attachment %d: %q %q inline=%v cid=%q; want %q %q inline=%v cid=%q", i, g.Name, g.ContentType, g.IsInline, g.ContentID,
				a.name, a.contentType, a.inline, a.contentID)
		}
		if !bytes.Equal(g.Content, a.content) {
			t.Errorf("attachment %q: %d bytes differ from the source's %d", a.name, len(g.Content), len(a.content))
		}
	}
	// Body and headers, read back through Graph.
	msg, err := e.c.graph.Users().ByUserId(testUser).Messages().ByMessageId(id).Get(context.Background(),
		&users.ItemMessagesMessageItemRequestBuilderGetRequestConfiguration{
			QueryParameters: &users.ItemMessagesMessageItemRequestBuilderGetQueryParameters{
				Select: []string{"body", "from", "toRecipients", "ccRecipients", "internetMessageHeaders"},
			},
		})
	if err != nil {
		t.Fatal(err)
	}
	if c := msg.GetBody().GetContent(); c == nil || *c != tm.html {
		t.Errorf("body %q, want the HTML part %q", deref(c), tm.html)
	}
	if a := msg.GetFrom().GetEmailAddress(); deref(a.GetAddress()) != "bob@example.org" || deref(a.GetName()) != "Bob Martin" {
		t.Errorf("from %s <%s>", deref(a.GetName()), deref(a.GetAddress()))
	}
	if n := len(msg.GetToRecipients()); n != 2 || len(msg.GetCcRecipients()) != 1 {
		t.Errorf("%d to, %d cc; want 2 and 1", n, len(msg.GetCcRecipients()))
	}
	hs := map[string]string{}
	for _, h := range msg.GetInternetMessageHeaders() {
		hs[deref(h.GetName())] = deref(h.GetValue())
	}
	if hs["X-Mailer"] != "mailferry-test 1.0" || hs["X-Campaign"] != "spring" {
		t.Errorf("x- headers %v", hs)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func checkFlags(t *testing.T, got exchangetest.Message, flags []migrate.Flag) {
	t.Helper()
	if got.IsRead != hasFlag(flags, migrate.FlagSeen) {
		t.Errorf("isRead %v, flags %v", got.IsRead, flags)
	}
	if (got.FlagStatus == "flagged") != hasFlag(flags, migrate.FlagFlagged) {
		t.Errorf("flagStatus %q, flags %v", got.FlagStatus, flags)
	}
	if answered := hasFlag(flags, migrate.FlagAnswered); (got.LastVerbExecuted == 102) != answered {
		t.Errorf("last verb %d, flags %v", got.LastVerbExecuted, flags)
	}
	if want := categories(flags); !slices.Equal(got.Categories, want) && !(len(got.Categories) == 0 && len(want) == 0) {
		t.Errorf("categories %v, want %v", got.Categories, want)
	}
}

// TestPutSizes puts generated multipart messages of about 1 KB, 3.5 MB
// and 40 MB and checks what arrives: the small one through importMime,
// byte for byte, the others through the JSON create with attachments and
// upload sessions.
func TestPutSizes(t *testing.T) {
	ctx := context.Background()
	t.Run("1KB-importMime", func(t *testing.T) {
		e := newEnv(t, nil)
		tm := genMessage(1)
		m := genPut(tm, 1, migrate.FlagSeen, migrate.FlagFlagged, migrate.FlagAnswered, "Work")
		id, err := e.mb.Put(ctx, e.wellKnown(t, "inbox"), m)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := e.srv.Message(testUser, id)
		if !bytes.Equal(got.MIME, tm.raw) {
			t.Errorf("MIME differs from the source")
		}
		if !got.SentDateTime.Equal(tm.date) || got.IsDraft {
			t.Errorf("sent %v, draft %v", got.SentDateTime, got.IsDraft)
		}
		checkFlags(t, got, m.Flags)
	})
	t.Run("1KB-received-from-source", func(t *testing.T) {
		e := newEnv(t, &envOptions{dates: ReceivedDateFromSource})
		tm := genMessage(2)
		m := genPut(tm, 2, migrate.FlagAnswered, "Work", "$Forwarded")
		id, err := e.mb.Put(ctx, e.wellKnown(t, "inbox"), m)
		if err != nil {
			t.Fatal(err)
		}
		checkJSONCopy(t, e, id, tm, m)
		if st := e.srv.Stats(); st.ByRoute["POST /users/{user}/mailFolders/{id}/messages"] != 1 || st.Requests > 4 {
			t.Errorf("one create expected, with its attachments: %v", st.ByRoute)
		}
	})
	t.Run("3.5MB", func(t *testing.T) {
		e := newEnv(t, nil)
		tm := genMessage(3, 100<<10, 3300<<10)
		m := genPut(tm, 3, migrate.FlagFlagged)
		id, err := e.mb.Put(ctx, e.wellKnown(t, "inbox"), m)
		if err != nil {
			t.Fatal(err)
		}
		checkJSONCopy(t, e, id, tm, m)
	})
	t.Run("40MB", func(t *testing.T) {
		e := newEnv(t, nil)
		tm := genMessage(4, 2<<20, 9<<20, 18<<20, 700<<10)
		m := genPut(tm, 4, migrate.FlagSeen, "Projects")
		start := time.Now()
		id, err := e.mb.Put(ctx, e.wellKnown(t, "inbox"), m)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d bytes of MIME in %v", len(tm.raw), time.Since(start))
		checkJSONCopy(t, e, id, tm, m)
		st := e.srv.Stats()
		if st.ByRoute["POST /users/{user}/messages/{id}/attachments/createUploadSession"] != 2 {
			t.Errorf("upload sessions: %v", st.ByRoute)
		}
	})
}

// TestLargePutResumesAfterCrash leaves a partial JSON-path copy behind,
// as a process killed during its uploads would, and checks that the next
// Put replaces it: one complete copy, never found by watermark before it
// is complete.
func TestLargePutResumesAfterCrash(t *testing.T) {
	ctx := context.Background()
	var puts, failDeletes atomic.Int32
	failDeletes.Store(1)
	e := newEnv(t, &envOptions{hook: func(r *http.Request) (*http.Response, error) {
		if r.Method == http.MethodPut && puts.Add(1) == 2 {
			return nil, errors.New("killed") // not retried: the run dies here
		}
		if r.Method == http.MethodDelete && failDeletes.Load() == 1 {
			return nil, errors.New("killed")
		}
		return nil, nil
	}})
	inbox := e.wellKnown(t, "inbox")
	tm := genMessage(5, 5<<20)
	m := genPut(tm, 5, migrate.FlagSeen)
	if _, err := e.mb.Put(ctx, inbox, m); err == nil {
		t.Fatal("Put survived its kill")
	}
	msgs := e.srv.Messages(testUser)
	if len(msgs) != 1 || msgs[0].ExtendedProperties[PendingProperty] != m.ID.String() {
		t.Fatalf("want one partial copy marked pending, have %d messages", len(msgs))
	}
	if id, err := e.mb.FindWatermark(ctx, inbox, m.ID); err != nil || id != "" {
		t.Errorf("FindWatermark found the partial copy: %q, %v", id, err)
	}
	failDeletes.Store(0)
	m = genPut(tm, 5, migrate.FlagSeen)
	id, err := e.c.Mailbox(testUser).Put(ctx, inbox, m)
	if err != nil {
		t.Fatal(err)
	}
	if msgs := e.srv.Messages(testUser); len(msgs) != 1 || msgs[0].ID != id {
		t.Fatalf("%d messages after the rerun, want exactly the new one", len(msgs))
	}
	checkJSONCopy(t, e, id, tm, m)
	// Once complete, a Put of the same message (a rerun that crashed
	// before its commit) finds it instead of copying it again.
	if found, err := e.mb.FindWatermark(ctx, inbox, m.ID); err != nil || found != id {
		t.Errorf("FindWatermark = %q, %v; want %q", found, err, id)
	}
}

// TestPutLostAnswer drops the answer to the creating request after Graph
// carried it out: Put must find the item instead of creating it again.
func TestPutLostAnswer(t *testing.T) {
	for _, tc := range []struct {
		name  string
		route string
		dates ReceivedDates
	}{
		{"importMime", "/importMime", ReceivedDateAtImport},
		{"json", "/messages", ReceivedDateFromSource},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var base http.RoundTripper
			var dropped atomic.Int32
			e := newEnv(t, &envOptions{dates: tc.dates, hook: func(r *http.Request) (*http.Response, error) {
				if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, tc.route) && dropped.Add(1) == 1 {
					resp, err := base.RoundTrip(r)
					if err == nil {
						drain(resp)
					}
					return nil, fmt.Errorf("read: %w", syscall.ECONNRESET)
				}
				return nil, nil
			}})
			base = e.srv.Client().Transport
			tm := genMessage(6)
			m := genPut(tm, 6, migrate.FlagSeen)
			id, err := e.mb.Put(context.Background(), e.wellKnown(t, "inbox"), m)
			if err != nil {
				t.Fatal(err)
			}
			msgs := e.srv.Messages(testUser)
			if len(msgs) != 1 || msgs[0].ID != id {
				t.Fatalf("%d messages, want the one Put returned", len(msgs))
			}
			if msgs[0].ExtendedProperties[WatermarkProperty] != m.ID.String() || !msgs[0].IsRead {
				t.Errorf("the found item was not completed: %+v", msgs[0].ExtendedProperties)
			}
		})
	}
}

func TestParseMIMENames(t *testing.T) {
	raw := "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n" +
		"--b\r\nContent-Type: text/plain; name=\"=?utf-8?q?r=C3=A9sum=C3=A9.txt?=\"\r\nContent-Disposition: attachment\r\n\r\nx\r\n" +
		"--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nbody\r\n" +
		"--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename*=utf-8''na%C3%AFve.bin\r\n\r\nzz\r\n--b--\r\n"
	p, err := parseMIME(strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	var names []string
	for _, a := range p.atts {
		names = append(names, a.name)
	}
	if p.body != "hi" || !slices.Equal(names, []string{"résumé.txt", "part3.eml", "naïve.bin"}) {
		t.Errorf("body %q, attachments %q", p.body, names)
	}
	b, _ := io.ReadAll(io.NewSectionReader(p.open(p.atts[1]), 0, p.atts[1].size))
	if string(b) != "Subject: inner\r\n\r\nbody" {
		t.Errorf("nested message %q", b)
	}
}

// TestEngineLargeCrashBetweenPutAndCommit runs the Engine over a folder
// with a large (JSON path) message whose commit is lost, then again from
// the reopened state: the rerun repairs it by watermark and the mailbox
// holds exactly one copy of each message.
func TestEngineLargeCrashBetweenPutAndCommit(t *testing.T) {
	e := newEnv(t, nil)
	large := genMessage(8, 4<<20)
	fx := &migratetest.Fixture{Folders: []migratetest.FixtureFolder{{Path: []string{"INBOX"}, Role: migrate.RoleInbox,
		Messages: []migratetest.FixtureMessage{
			{Raw: sampleMIME("<s1@example.org>", "s1"), InternalDate: testInternalDate},
			{Raw: large.raw, Flags: []migrate.Flag{migrate.FlagSeen}, InternalDate: testInternalDate},
			{Raw: sampleMIME("<s3@example.org>", "s3"), InternalDate: testInternalDate},
		}}}}
	src := migratetest.NewSource(fx)
	job := migrate.Job{Mailbox: testUser, Source: src, Sink: e.mb}
	// The resumed run is a new process, with a new Mailbox value.
	rep := migratetest.CrashAndResume(t, job, func(id migrate.SourceID) bool { return id.UID == 2 }, e.c.Mailbox(testUser))
	// UID 2 at least; a Put in flight beside it may also have been stored
	// uncommitted when the run stopped.
	if rep.Lost() || rep.Totals().Repaired < 1 {
		t.Fatalf("rerun: %+v", rep.Totals())
	}
	msgs := e.srv.Messages(testUser)
	if len(msgs) != 3 {
		t.Fatalf("%d messages in the mailbox, want 3", len(msgs))
	}
	for _, m := range msgs {
		if m.InternetMessageID == large.messageID && len(m.Attachments) != len(large.atts) {
			t.Errorf("the large message has %d attachments, want %d", len(m.Attachments), len(large.atts))
		}
	}
}

// TestLargePutErrors checks the classification of the JSON path's
// failures: a message over the mailbox's size limit is an item error and
// leaves nothing behind; a user without a mailbox is a mailbox error.
func TestLargePutErrors(t *testing.T) {
	e := newEnv(t, &envOptions{server: &exchangetest.Options{MaxMessageBytes: 6 << 20}})
	ctx := context.Background()
	tm := genMessage(9, 4<<20, 4<<20)
	_, err := e.mb.Put(ctx, e.wellKnown(t, "inbox"), genPut(tm, 9))
	if !errors.Is(err, migrate.ErrItem) || !strings.Contains(err.Error(), "ErrorMessageSizeExceeded") {
		t.Errorf("Put over the size limit: %v, want ErrItem ErrorMessageSizeExceeded", err)
	}
	if n := len(e.srv.Messages(testUser)); n != 0 {
		t.Errorf("%d messages left behind", n)
	}
	e.srv.AddUserWithoutMailbox("guest@contoso.com")
	_, err = e.c.Mailbox("guest@contoso.com").Put(ctx, "inbox", genPut(tm, 9))
	if !errors.Is(err, migrate.ErrMailbox) || !strings.Contains(err.Error(), "MailboxNotEnabledForRESTAPI") {
		t.Errorf("Put for a user without a mailbox: %v, want ErrMailbox", err)
	}
	_, err = e.c.Mailbox("nobody@contoso.com").Put(ctx, "inbox", genPut(genMessage(10), 10))
	if !errors.Is(err, migrate.ErrMailbox) || !strings.Contains(err.Error(), "ErrorInvalidUser") {
		t.Errorf("Put for a user that does not exist: %v, want ErrMailbox", err)
	}
}
