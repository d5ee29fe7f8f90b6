package exchange

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/microsoftgraph/msgraph-sdk-go/users"

	"github.com/mailferry/mailferry/exchange/exchangetest"
	"github.com/mailferry/mailferry/migrate"
)

const (
	testUser  = "alice@contoso.com"
	testToken = "test-token-7f3a9c"
)

// fakeCredential is a static azcore.TokenCredential: it returns tokens[i]
// on call i (the last one forever after), valid for an hour.
type fakeCredential struct {
	tokens []string
	calls  atomic.Int32
	scopes sync.Map
	err    error
}

func (f *fakeCredential) GetToken(_ context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	n := int(f.calls.Add(1)) - 1
	for _, s := range opts.Scopes {
		f.scopes.Store(s, true)
	}
	if f.err != nil {
		return azcore.AccessToken{}, f.err
	}
	tok := f.tokens[min(n, len(f.tokens)-1)]
	return azcore.AccessToken{Token: tok, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// credFunc adapts a function to azcore.TokenCredential.
type credFunc func(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error)

func (f credFunc) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return f(ctx, o)
}

// roundTripFunc adapts a function to http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type env struct {
	srv   *exchangetest.Server
	cred  *fakeCredential
	c     *Client
	mb    *Mailbox
	waits []time.Duration // backoffs and Retry-After waits, not slept
	mu    sync.Mutex
}

type envOptions struct {
	serverToken string
	tokens      []string
	maxRetries  int
	budget      *Budget // nil: no pacing
	dates       ReceivedDates
	server      *exchangetest.Options // emulator options; Token is set from serverToken
	// hook, if set, sees every request first; returning a nil response
	// and nil error passes it on to the emulator.
	hook func(*http.Request) (*http.Response, error)
}

func newEnv(t testing.TB, o *envOptions) *env {
	t.Helper()
	if o == nil {
		o = &envOptions{}
	}
	serverToken := o.serverToken
	if serverToken == "" {
		serverToken = testToken
	}
	so := exchangetest.Options{}
	if o.server != nil {
		so = *o.server
	}
	so.Token = serverToken
	srv := newServer(t, &so)
	if o.budget == nil {
		o.budget = &Budget{}
	}
	tokens := o.tokens
	if tokens == nil {
		tokens = []string{testToken}
	}
	e := &env{srv: srv, cred: &fakeCredential{tokens: tokens}}
	transport := srv.Client().Transport
	if o.hook != nil {
		base := transport
		transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if resp, err := o.hook(r); resp != nil || err != nil {
				return resp, err
			}
			return base.RoundTrip(r)
		})
	}
	c, err := NewClient(&Options{
		Credential:    e.cred,
		BaseURL:       srv.URL(),
		Transport:     transport,
		Logger:        slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		MaxRetries:    o.maxRetries,
		Budget:        o.budget,
		ReceivedDates: o.dates,
	})
	if err != nil {
		t.Fatal(err)
	}
	c.retry.sleep = func(ctx context.Context, d time.Duration) error {
		e.mu.Lock()
		e.waits = append(e.waits, d)
		e.mu.Unlock()
		return ctx.Err()
	}
	e.c = c
	e.mb = c.Mailbox(testUser)
	return e
}

// observed returns ctx carrying an observer (migrate.WithObserver) that
// records the events reported through it, and the function that returns
// those recorded so far.
func observed(ctx context.Context) (context.Context, func() []migrate.Event) {
	var mu sync.Mutex
	var events []migrate.Event
	ctx = migrate.WithObserver(ctx, func(ev migrate.Event) {
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
	})
	return ctx, func() []migrate.Event {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(events)
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// newServer starts an emulator, closed when the test ends, that holds
// testUser's mailbox.
func newServer(t testing.TB, o *exchangetest.Options) *exchangetest.Server {
	t.Helper()
	srv := exchangetest.NewServer(o)
	t.Cleanup(srv.Close)
	srv.AddMailbox(testUser)
	return srv
}

// newMailbox returns testUser's Mailbox on srv through a Client of its
// own that paces by b and, unlike newEnv's, really sleeps its waits.
func newMailbox(t testing.TB, srv *exchangetest.Server, b *Budget) *Mailbox {
	t.Helper()
	c, err := NewClient(&Options{Credential: &fakeCredential{tokens: []string{"t"}}, BaseURL: srv.URL(),
		Transport: srv.Client().Transport, Budget: b})
	if err != nil {
		t.Fatal(err)
	}
	return c.Mailbox(testUser)
}

// ensureFolder returns the id of the folder name under parent ("": the
// top of the mailbox) in mb, which it creates if need be; an error fails
// the test.
func ensureFolder(t testing.TB, mb *Mailbox, parent, name string, role migrate.Role) string {
	t.Helper()
	id, err := mb.EnsureFolder(t.Context(), parent, name, role)
	if err != nil {
		t.Fatalf("EnsureFolder(%q, %q, %q): %v", parent, name, role, err)
	}
	return id
}

// folder is ensureFolder for a top-level folder of e's mailbox.
func (e *env) folder(t testing.TB, name string, role migrate.Role) string {
	t.Helper()
	return ensureFolder(t, e.mb, "", name, role)
}

// put puts m into folder of e's mailbox and returns the item's id; an
// error fails the test.
func (e *env) put(t testing.TB, folder string, m *migrate.Message) string {
	t.Helper()
	id, err := e.mb.Put(t.Context(), folder, m)
	if err != nil {
		t.Fatalf("Put %s: %v", m.ID, err)
	}
	return id
}

// storedFolder returns the emulator's folder with the given id, failing
// the test if there is none.
func (e *env) storedFolder(t testing.TB, id string) exchangetest.Folder {
	t.Helper()
	for _, f := range e.srv.Folders(testUser) {
		if f.ID == id {
			return f
		}
	}
	t.Fatalf("folder %q not in the mailbox", id)
	return exchangetest.Folder{}
}

func (e *env) wellKnown(t testing.TB, name string) string {
	t.Helper()
	for _, f := range e.srv.Folders(testUser) {
		if f.WellKnownName == name {
			return f.ID
		}
	}
	t.Fatalf("no well-known folder %q", name)
	return ""
}

func sampleMIME(msgID, subject string) []byte {
	return []byte("From: Bob <bob@example.org>\r\n" +
		"To: Alice <alice@contoso.com>\r\n" +
		"Subject: " + subject + "\r\n" +
		"Date: Mon, 02 Jan 2006 15:04:05 -0700\r\n" +
		"Message-ID: " + msgID + "\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"\r\n" +
		"Hello Alice,\r\n\r\nsee you at 3.\r\n")
}

func message(folder string, uid uint32, raw []byte, flags ...migrate.Flag) *migrate.Message {
	return &migrate.Message{
		ID: migrate.SourceID{Folder: folder, UIDValidity: 42, UID: uid},
		MessageInfo: migrate.MessageInfo{
			UID: uid, Flags: flags, Size: int64(len(raw)),
			InternalDate: time.Date(2020, 5, 17, 10, 0, 0, 0, time.UTC),
		},
		Body: bytes.NewReader(raw),
	}
}

type netErr struct{ err error }

func (e *netErr) Error() string { return "net: " + e.err.Error() }

func (e *netErr) Unwrap() error { return e.err }

var errConnReset error = syscall.ECONNRESET

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
func checkJSONCopy(t testing.TB, e *env, id string, tm testMessage, m *migrate.Message) {
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
	msg, err := e.c.graph.Users().ByUserId(testUser).Messages().ByMessageId(id).Get(t.Context(),
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

// checkFlags checks the item got against the source flags, translated by
// DefaultKeywords.
func checkFlags(t testing.TB, got exchangetest.Message, flags []migrate.Flag) {
	t.Helper()
	kw, _ := newKeywordTable(nil)
	flags = kw.translate(flags)
	if got.IsRead != migrate.ContainsFlag(flags, migrate.FlagSeen) {
		t.Errorf("isRead %v, flags %v", got.IsRead, flags)
	}
	if (got.FlagStatus == "flagged") != migrate.ContainsFlag(flags, migrate.FlagFlagged) {
		t.Errorf("flagStatus %q, flags %v", got.FlagStatus, flags)
	}
	verb := 0
	switch {
	case migrate.ContainsFlag(flags, migrate.FlagAnswered):
		verb = 102
	case migrate.ContainsFlag(flags, forwardedKeyword):
		verb = 104
	}
	if got.LastVerbExecuted != verb {
		t.Errorf("last verb %d, want %d for flags %v", got.LastVerbExecuted, verb, flags)
	}
	if want := categories(flags); !slices.Equal(got.Categories, want) && !(len(got.Categories) == 0 && len(want) == 0) {
		t.Errorf("categories %v, want %v", got.Categories, want)
	}
}

// newEnvLosingAnswer returns an env whose first POST to a path ending in
// suffix the emulator carries out, but whose answer is lost to a reset
// connection, as when a connection drops after Graph created the item. It
// also returns the count of such requests seen.
func newEnvLosingAnswer(t testing.TB, dates ReceivedDates, suffix string) (*env, *atomic.Int32) {
	t.Helper()
	var base http.RoundTripper
	var dropped atomic.Int32
	e := newEnv(t, &envOptions{dates: dates, hook: func(r *http.Request) (*http.Response, error) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, suffix) && dropped.Add(1) == 1 {
			resp, err := base.RoundTrip(r)
			if err == nil {
				drain(resp)
			}
			return nil, fmt.Errorf("read: %w", syscall.ECONNRESET)
		}
		return nil, nil
	}})
	base = e.srv.Client().Transport
	return e, &dropped
}
