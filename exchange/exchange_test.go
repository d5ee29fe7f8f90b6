package exchange

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	abstractions "github.com/microsoft/kiota-abstractions-go"
	khttp "github.com/microsoft/kiota-http-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"

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

func newEnv(t *testing.T, o *envOptions) *env {
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
	srv := exchangetest.NewServer(&so)
	t.Cleanup(srv.Close)
	srv.AddMailbox(testUser)
	if o.budget == nil {
		o.budget = &Budget{}
	}
	tokens := o.tokens
	if tokens == nil {
		tokens = []string{testToken}
	}
	e := &env{srv: srv, cred: &fakeCredential{tokens: tokens}}
	hc := srv.Client()
	if o.hook != nil {
		base := hc.Transport
		hc = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if resp, err := o.hook(r); resp != nil || err != nil {
				return resp, err
			}
			return base.RoundTrip(r)
		})}
	}
	c, err := NewClient(&Options{
		Credential:    e.cred,
		BaseURL:       srv.URL(),
		HTTPClient:    hc,
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

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (e *env) folder(t *testing.T, id string) exchangetest.Folder {
	t.Helper()
	for _, f := range e.srv.Folders(testUser) {
		if f.ID == id {
			return f
		}
	}
	t.Fatalf("folder %q not in the mailbox", id)
	return exchangetest.Folder{}
}

func (e *env) wellKnown(t *testing.T, name string) string {
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

func TestEnsureFolderWellKnown(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	roles := map[migrate.Role]string{
		migrate.RoleInbox: "inbox", migrate.RoleSent: "sentitems", migrate.RoleDrafts: "drafts",
		migrate.RoleTrash: "deleteditems", migrate.RoleJunk: "junkemail", migrate.RoleArchive: "archive",
	}
	for role, wk := range roles {
		id, err := e.mb.EnsureFolder(ctx, "", migrate.RoleNames[role], role)
		if err != nil {
			t.Fatalf("EnsureFolder(%s): %v", role, err)
		}
		if want := e.wellKnown(t, wk); id != want {
			t.Errorf("EnsureFolder(%s) = %q, want the %s folder %q", role, id, wk, want)
		}
	}
	before := e.srv.Stats().Requests
	for role := range roles {
		if _, err := e.mb.EnsureFolder(ctx, "", migrate.RoleNames[role], role); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.srv.Stats().Requests - before; n != 0 {
		t.Errorf("second round of EnsureFolder made %d requests, want 0 (cached)", n)
	}
}

func TestEnsureFolderNested(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	proj, err := e.mb.EnsureFolder(ctx, "", "Projects", migrate.RoleNone)
	if err != nil {
		t.Fatal(err)
	}
	child, err := e.mb.EnsureFolder(ctx, proj, "Bob's 2024 & co", migrate.RoleNone)
	if err != nil {
		t.Fatal(err)
	}
	inbox, err := e.mb.EnsureFolder(ctx, "", "Inbox", migrate.RoleInbox)
	if err != nil {
		t.Fatal(err)
	}
	underInbox, err := e.mb.EnsureFolder(ctx, inbox, "Projects", migrate.RoleNone)
	if err != nil {
		t.Fatal(err)
	}
	if underInbox == proj {
		t.Errorf("Inbox/Projects and Projects share id %q", proj)
	}
	root := e.wellKnown(t, "msgfolderroot")
	for _, c := range []struct{ id, parent, name string }{
		{proj, root, "Projects"}, {child, proj, "Bob's 2024 & co"}, {underInbox, inbox, "Projects"},
	} {
		f := e.folder(t, c.id)
		if f.ParentID != c.parent || f.DisplayName != c.name {
			t.Errorf("folder %q: parent %q name %q, want %q %q", c.id, f.ParentID, f.DisplayName, c.parent, c.name)
		}
	}

	// A new Mailbox (a new run: empty cache) finds the same folders by
	// name and creates nothing.
	n := len(e.srv.Folders(testUser))
	mb2 := e.c.Mailbox(testUser)
	proj2, err := mb2.EnsureFolder(ctx, "", "Projects", migrate.RoleNone)
	if err != nil || proj2 != proj {
		t.Errorf("second run: Projects = %q, %v; want %q", proj2, err, proj)
	}
	child2, err := mb2.EnsureFolder(ctx, proj2, "Bob's 2024 & co", migrate.RoleNone)
	if err != nil || child2 != child {
		t.Errorf("second run: child = %q, %v; want %q", child2, err, child)
	}
	if got := len(e.srv.Folders(testUser)); got != n {
		t.Errorf("second run created folders: %d, want %d", got, n)
	}
	if st := e.srv.Stats(); st.ByRoute["GET /users/{user}/mailFolders"] == 0 {
		t.Errorf("top-level look-up did not use GET /users/{user}/mailFolders: %v", st.ByRoute)
	}
}

// TestEnsureFolderExistsRace makes another writer create the folder
// between EnsureFolder's look-up and its creation: the creation fails with
// ErrorFolderExists and EnsureFolder returns the other writer's folder.
func TestEnsureFolderExistsRace(t *testing.T) {
	var other *Mailbox
	var raced atomic.Bool
	e := newEnv(t, &envOptions{hook: func(r *http.Request) (*http.Response, error) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/childFolders") && raced.CompareAndSwap(false, true) {
			if _, err := other.EnsureFolder(r.Context(), parentFromPath(r.URL.Path), "Racy", migrate.RoleNone); err != nil {
				return nil, err
			}
		}
		return nil, nil
	}})
	other = e.c.Mailbox(testUser)
	ctx := context.Background()
	inbox, err := e.mb.EnsureFolder(ctx, "", "Inbox", migrate.RoleInbox)
	if err != nil {
		t.Fatal(err)
	}
	id, err := e.mb.EnsureFolder(ctx, inbox, "Racy", migrate.RoleNone)
	if err != nil {
		t.Fatalf("EnsureFolder after a race: %v", err)
	}
	if !raced.Load() {
		t.Fatal("the race was not staged")
	}
	var racy []exchangetest.Folder
	for _, f := range e.srv.Folders(testUser) {
		if f.DisplayName == "Racy" {
			racy = append(racy, f)
		}
	}
	if len(racy) != 1 || racy[0].ID != id || racy[0].ParentID != inbox {
		t.Errorf("after the race: folders %+v, EnsureFolder returned %q", racy, id)
	}
}

// parentFromPath returns the {id} of .../mailFolders/{id}/childFolders.
func parentFromPath(p string) string {
	parts := strings.Split(p, "/")
	return parts[len(parts)-2]
}

func TestPut(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	inbox, err := e.mb.EnsureFolder(ctx, "", "Inbox", migrate.RoleInbox)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		flags    []migrate.Flag
		read     bool
		flagged  string
		wantCats []string
	}{
		{"unread", nil, false, "notFlagged", nil},
		{"read", []migrate.Flag{migrate.FlagSeen}, true, "notFlagged", nil},
		{"flagged", []migrate.Flag{`\seen`, migrate.FlagFlagged, migrate.FlagAnswered}, true, "flagged", nil},
		{"keywords", []migrate.Flag{"Work", "$Forwarded", "work", "Personal", `\Deleted`}, false, "notFlagged", []string{"Work", "Personal"}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			raw := sampleMIME(fmt.Sprintf("<put-%d@example.org>", i), "Put "+c.name)
			m := message("INBOX", uint32(i+1), raw, c.flags...)
			id, err := e.mb.Put(ctx, inbox, m)
			if err != nil {
				t.Fatalf("Put: %v", err)
			}
			got, ok := e.srv.Message(testUser, id)
			if !ok {
				t.Fatalf("Put returned %q, which the mailbox does not hold", id)
			}
			if !bytes.Equal(got.MIME, raw) {
				t.Errorf("MIME differs:\n%q\nwant\n%q", got.MIME, raw)
			}
			if got.FolderID != inbox || got.IsDraft {
				t.Errorf("folder %q draft %v, want %q false", got.FolderID, got.IsDraft, inbox)
			}
			if got.IsRead != c.read || got.FlagStatus != c.flagged {
				t.Errorf("isRead %v flag %q, want %v %q", got.IsRead, got.FlagStatus, c.read, c.flagged)
			}
			if len(got.Categories) != 0 || len(c.wantCats) != 0 {
				if !slices.Equal(got.Categories, c.wantCats) {
					t.Errorf("categories %q, want %q", got.Categories, c.wantCats)
				}
			}
			if wm := got.ExtendedProperties[WatermarkProperty]; wm != m.ID.String() {
				t.Errorf("watermark %q, want %q (props %v)", wm, m.ID.String(), got.ExtendedProperties)
			}
		})
	}
	st := e.srv.Stats()
	if st.ByRoute["POST /users/{user}/mailFolders/{id}/importMime"] != len(cases) {
		t.Errorf("importMime calls: %v", st.ByRoute)
	}
}

func TestPutTooLarge(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	inbox := e.wellKnown(t, "inbox")
	before := e.srv.Stats().Requests
	huge := message("INBOX", 1, sampleMIME("<huge@example.org>", "huge"))
	huge.Size = MaxMessageSize + 1
	if _, err := e.mb.Put(ctx, inbox, huge); !errors.Is(err, migrate.ErrItem) || !strings.Contains(err.Error(), "more than") {
		t.Errorf("Put of %d bytes: %v, want ErrItem too large", huge.Size, err)
	}
	// Over MaxImportSize it takes the JSON path, where a main body over
	// 3 MB cannot go into the create.
	raw := append(sampleMIME("<big@example.org>", "big"), bytes.Repeat([]byte("x"), MaxImportSize)...)
	m := message("INBOX", 1, raw)
	m.Size = 0 // a source that does not know the size: Put still counts
	_, err := e.mb.Put(ctx, inbox, m)
	if !errors.Is(err, migrate.ErrItem) || !strings.Contains(err.Error(), "main body over") {
		t.Errorf("Put of %d bytes of text: %v, want ErrItem body too large", len(raw), err)
	}
	if n := e.srv.Stats().Requests - before; n != 0 {
		t.Errorf("Put of too large messages made %d requests", n)
	}
	// Exactly MaxImportSize goes through importMime (4 MB of base64).
	exact := append(sampleMIME("<exact@example.org>", "exact"), []byte{}...)
	exact = append(exact, bytes.Repeat([]byte("y"), MaxImportSize-len(exact))...)
	id, err := e.mb.Put(ctx, inbox, message("INBOX", 2, exact))
	if err != nil {
		t.Fatalf("Put of exactly %d bytes: %v", len(exact), err)
	}
	if got, _ := e.srv.Message(testUser, id); !bytes.Equal(got.MIME, exact) {
		t.Errorf("Put of exactly %d bytes: MIME not kept", len(exact))
	}
}

func TestSetFlags(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	inbox := e.wellKnown(t, "inbox")
	id, err := e.mb.Put(ctx, inbox, message("INBOX", 1, sampleMIME("<flags@example.org>", "flags"), "Work"))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.mb.SetFlags(ctx, id, []migrate.Flag{migrate.FlagSeen, migrate.FlagFlagged, "Later"}); err != nil {
		t.Fatal(err)
	}
	got, _ := e.srv.Message(testUser, id)
	if !got.IsRead || got.FlagStatus != "flagged" || !slices.Equal(got.Categories, []string{"Later"}) {
		t.Errorf("after SetFlags: read %v flag %q categories %q", got.IsRead, got.FlagStatus, got.Categories)
	}
	if err := e.mb.SetFlags(ctx, id, nil); err != nil {
		t.Fatal(err)
	}
	got, _ = e.srv.Message(testUser, id)
	if got.IsRead || got.FlagStatus != "notFlagged" || len(got.Categories) != 0 {
		t.Errorf("after SetFlags(nil): read %v flag %q categories %q", got.IsRead, got.FlagStatus, got.Categories)
	}
	if got.ExtendedProperties[WatermarkProperty] == "" {
		t.Errorf("SetFlags lost the watermark")
	}
	err = e.mb.SetFlags(ctx, "AAMkAGI2nosuchmessage", []migrate.Flag{migrate.FlagSeen})
	if !errors.Is(err, migrate.ErrItem) {
		t.Errorf("SetFlags of a missing item: %v, want ErrItem", err)
	}
}

func TestFind(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	folder, err := e.mb.EnsureFolder(ctx, "", "O'Brien's", migrate.RoleNone)
	if err != nil {
		t.Fatal(err)
	}
	msgID := "<o'brien.1@example.org>"
	m := message("Folder 'quoted'/x", 7, sampleMIME(msgID, "find me"))
	id, err := e.mb.Put(ctx, folder, m)
	if err != nil {
		t.Fatal(err)
	}
	m2 := message("Folder 'quoted'/x", 8, sampleMIME("<other@example.org>", "other"))
	id2, err := e.mb.Put(ctx, folder, m2)
	if err != nil {
		t.Fatal(err)
	}

	if got, err := e.mb.FindWatermark(ctx, folder, m.ID); err != nil || got != id {
		t.Errorf("FindWatermark = %q, %v; want %q", got, err, id)
	}
	if got, err := e.mb.FindWatermark(ctx, folder, m2.ID); err != nil || got != id2 {
		t.Errorf("FindWatermark(2nd) = %q, %v; want %q", got, err, id2)
	}
	absent := m.ID
	absent.UID = 9999
	if got, err := e.mb.FindWatermark(ctx, folder, absent); err != nil || got != "" {
		t.Errorf("FindWatermark(absent) = %q, %v; want nothing", got, err)
	}
	inbox := e.wellKnown(t, "inbox")
	if got, err := e.mb.FindWatermark(ctx, inbox, m.ID); err != nil || got != "" {
		t.Errorf("FindWatermark in another folder = %q, %v; want nothing", got, err)
	}

	if ids, err := e.mb.FindMessageID(ctx, folder, msgID); err != nil || !slices.Equal(ids, []string{id}) {
		t.Errorf("FindMessageID = %v, %v; want [%s]", ids, err, id)
	}
	if ids, err := e.mb.FindMessageID(ctx, folder, "<nope@example.org>"); err != nil || len(ids) != 0 {
		t.Errorf("FindMessageID(absent) = %v, %v; want none", ids, err)
	}
}

func TestRetryThrottled(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	inbox := e.wellKnown(t, "inbox")
	e.srv.FailNext(2, http.StatusTooManyRequests, time.Second)
	id, err := e.mb.Put(ctx, inbox, message("INBOX", 1, sampleMIME("<throttled@example.org>", "throttled")))
	if err != nil {
		t.Fatalf("Put through two 429s: %v", err)
	}
	if _, ok := e.srv.Message(testUser, id); !ok {
		t.Fatal("message missing")
	}
	if len(e.srv.Messages(testUser)) != 1 {
		t.Errorf("%d messages after retries, want 1", len(e.srv.Messages(testUser)))
	}
	// The throttled request waits Retry-After itself; with the clock
	// standing still in this test, the PATCH that follows also sees the
	// mailbox paused (every request of a throttled mailbox waits).
	if len(e.waits) < 2 || !slices.Equal(e.waits[:2], []time.Duration{time.Second, time.Second}) ||
		len(e.waits) > 3 || (len(e.waits) == 3 && e.waits[2] > time.Second) {
		t.Errorf("waits %v, want Retry-After's [1s 1s] and at most the rest of the pause", e.waits)
	}
	if st := e.srv.Stats(); st.Throttled != 2 {
		t.Errorf("throttled %d, want 2", st.Throttled)
	}
}

func TestRetryBackoffAndExhaustion(t *testing.T) {
	e := newEnv(t, &envOptions{maxRetries: 3})
	ctx := context.Background()
	e.srv.FailNext(10, http.StatusServiceUnavailable, 0)
	_, err := e.mb.EnsureFolder(ctx, "", "Projects", migrate.RoleNone)
	if !errors.Is(err, migrate.ErrTransient) {
		t.Fatalf("EnsureFolder through 503s: %v, want ErrTransient", err)
	}
	var ge *GraphError
	if !errors.As(err, &ge) || ge.StatusCode != 503 {
		t.Errorf("error %v: want a *GraphError with status 503", err)
	}
	if !strings.HasPrefix(err.Error(), "exchange: ") {
		t.Errorf("error %q lacks the package prefix", err)
	}
	if len(e.waits) != 3 {
		t.Fatalf("waits %v, want 3 backoffs", e.waits)
	}
	// No Retry-After: exponential backoff with jitter, from 500ms.
	for i, w := range e.waits {
		lo, hi := (500*time.Millisecond<<i)/2, 500*time.Millisecond<<i
		if w < lo || w > hi {
			t.Errorf("backoff %d = %v, want in [%v, %v]", i, w, lo, hi)
		}
	}
	if n := e.srv.Stats().Requests; n != 4 {
		t.Errorf("%d requests, want 1+3 retries", n)
	}
}

func TestRetryResetConnection(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	inbox := e.wellKnown(t, "inbox")
	e.srv.ResetNext(2)
	id, err := e.mb.Put(ctx, inbox, message("INBOX", 1, sampleMIME("<reset@example.org>", "reset")))
	if err != nil {
		t.Fatalf("Put through two dropped connections: %v", err)
	}
	if got, ok := e.srv.Message(testUser, id); !ok || got.ExtendedProperties[WatermarkProperty] == "" {
		t.Errorf("message %q after resets: %+v", id, got)
	}
	if len(e.waits) != 2 {
		t.Errorf("waits %v, want 2", e.waits)
	}
}

func TestRetryHonoursContext(t *testing.T) {
	e := newEnv(t, nil)
	e.c.retry.sleep = nil // real timers
	e.srv.FailNext(1, http.StatusTooManyRequests, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := e.mb.EnsureFolder(ctx, "", "Projects", migrate.RoleNone)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("EnsureFolder during a 1h Retry-After: %v, want DeadlineExceeded", err)
	}
	if errors.Is(err, migrate.ErrItem) || errors.Is(err, migrate.ErrMailbox) {
		t.Errorf("a cancelled call is marked: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestQuotaExceeded(t *testing.T) {
	e := newEnv(t, nil)
	inbox := e.wellKnown(t, "inbox")
	e.srv.SetQuotaExceeded(testUser, true)
	_, err := e.mb.Put(context.Background(), inbox, message("INBOX", 1, sampleMIME("<full@example.org>", "full")))
	if !errors.Is(err, migrate.ErrMailbox) {
		t.Fatalf("Put into a full mailbox: %v, want ErrMailbox", err)
	}
	var ge *GraphError
	if !errors.As(err, &ge) || ge.Code != "ErrorQuotaExceeded" {
		t.Errorf("error %v: want code ErrorQuotaExceeded", err)
	}
}

func TestRejectMIME(t *testing.T) {
	e := newEnv(t, nil)
	inbox := e.wellKnown(t, "inbox")
	e.srv.RejectMIME(func(b []byte) bool { return bytes.Contains(b, []byte("Subject: bad")) })
	_, err := e.mb.Put(context.Background(), inbox, message("INBOX", 1, sampleMIME("<bad@example.org>", "bad")))
	if !errors.Is(err, migrate.ErrItem) || errors.Is(err, migrate.ErrMailbox) {
		t.Fatalf("Put of rejected MIME: %v, want ErrItem", err)
	}
	if !strings.Contains(err.Error(), "ErrorMimeContentInvalid") {
		t.Errorf("error %q does not give Graph's reason", err)
	}
	if _, err := e.mb.Put(context.Background(), inbox, message("INBOX", 2, sampleMIME("<good@example.org>", "good"))); err != nil {
		t.Errorf("Put of good MIME after a rejection: %v", err)
	}
}

// TestPutUndo checks that an import whose PATCH fails is deleted.
func TestPutUndo(t *testing.T) {
	e := newEnv(t, &envOptions{hook: func(r *http.Request) (*http.Response, error) {
		if r.Method == http.MethodPatch {
			body := `{"error":{"code":"ErrorInvalidProperty","message":"The property is not valid."}}`
			return &http.Response{
				StatusCode: 400, Status: "400 Bad Request", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
				Header: http.Header{"Content-Type": {"application/json"}}, Request: r,
				Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)),
			}, nil
		}
		return nil, nil
	}})
	inbox := e.wellKnown(t, "inbox")
	_, err := e.mb.Put(context.Background(), inbox, message("INBOX", 1, sampleMIME("<undo@example.org>", "undo")))
	if !errors.Is(err, migrate.ErrItem) || !strings.Contains(err.Error(), "ErrorInvalidProperty") {
		t.Errorf("Put with a failing PATCH: %v, want ErrItem ErrorInvalidProperty", err)
	}
	if n := len(e.srv.Messages(testUser)); n != 0 {
		t.Errorf("%d messages left behind, want 0", n)
	}
}

func TestUnknownUser(t *testing.T) {
	e := newEnv(t, nil)
	mb := e.c.Mailbox("nobody@contoso.com")
	_, err := mb.EnsureFolder(context.Background(), "", "Inbox", migrate.RoleInbox)
	if !errors.Is(err, migrate.ErrMailbox) {
		t.Errorf("EnsureFolder for an unknown user: %v, want ErrMailbox", err)
	}
	_, err = mb.EnsureFolder(context.Background(), "", "Projects", migrate.RoleNone)
	if !errors.Is(err, migrate.ErrMailbox) {
		t.Errorf("EnsureFolder(Projects) for an unknown user: %v, want ErrMailbox", err)
	}
}

// TestTokenRenewalAfter401: the first token is refused; the client gets a
// new one once and the call succeeds.
func TestTokenRenewalAfter401(t *testing.T) {
	e := newEnv(t, &envOptions{tokens: []string{"revoked-token", testToken}})
	id, err := e.mb.EnsureFolder(context.Background(), "", "Inbox", migrate.RoleInbox)
	if err != nil || id == "" {
		t.Fatalf("EnsureFolder after a 401: %q, %v", id, err)
	}
	if n := e.cred.calls.Load(); n != 2 {
		t.Errorf("GetToken called %d times, want 2", n)
	}
	// The renewed token is cached.
	if _, err := e.mb.EnsureFolder(context.Background(), "", "Projects", migrate.RoleNone); err != nil {
		t.Fatal(err)
	}
	if n := e.cred.calls.Load(); n != 2 {
		t.Errorf("GetToken called %d times after more requests, want 2", n)
	}
	if _, ok := e.cred.scopes.Load(e.srv.URL() + "/.default"); !ok {
		t.Errorf("token scope is not %s/.default", e.srv.URL())
	}
}

func TestTokenNeverInErrors(t *testing.T) {
	const secret = "SECRET-bearer-value-1234"
	e := newEnv(t, &envOptions{tokens: []string{secret}})
	inbox := "inbox"
	_, err := e.mb.Put(context.Background(), inbox, message("INBOX", 1, sampleMIME("<tok@example.org>", "tok")))
	if err == nil {
		t.Fatal("Put with a refused token succeeded")
	}
	if !errors.Is(err, migrate.ErrMailbox) {
		t.Errorf("Put with a refused token: %v, want ErrMailbox", err)
	}
	if strings.Contains(err.Error(), secret) || strings.Contains(fmt.Sprintf("%+v", err), secret) {
		t.Errorf("error contains the token: %v", err)
	}
	if n := e.cred.calls.Load(); n != 2 {
		t.Errorf("GetToken called %d times, want 2 (one renewal)", n)
	}

	// A failing credential: a mailbox error, prefixed.
	e2 := newEnv(t, nil)
	e2.cred.err = errors.New("AADSTS7000215: Invalid client secret provided")
	_, err = e2.mb.EnsureFolder(context.Background(), "", "Inbox", migrate.RoleInbox)
	if !errors.Is(err, migrate.ErrMailbox) || !strings.HasPrefix(err.Error(), "exchange: ") {
		t.Errorf("EnsureFolder with a failing credential: %v, want exchange: ... ErrMailbox", err)
	}
}

func TestTokenCache(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	var calls int
	cred := credFunc(func(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
		calls++
		return azcore.AccessToken{Token: fmt.Sprintf("t%d", calls), ExpiresOn: now.Add(time.Hour)}, nil
	})
	ts := newTokenSource(cred, "https://graph.microsoft.com/.default")
	ts.now = func() time.Time { return now }
	ctx := context.Background()
	for range 3 {
		if tok, _ := ts.token(ctx); tok != "t1" {
			t.Fatalf("token = %q, want t1", tok)
		}
	}
	now = now.Add(54 * time.Minute) // 6 minutes left: still good
	if tok, _ := ts.token(ctx); tok != "t1" {
		t.Errorf("token 6 minutes before expiry = %q, want t1", tok)
	}
	now = now.Add(2 * time.Minute) // 4 minutes left: renewed
	if tok, _ := ts.token(ctx); tok != "t2" {
		t.Errorf("token 4 minutes before expiry = %q, want t2", tok)
	}
	// renew with a stale token that was already replaced does not fetch.
	if tok, _ := ts.renew(ctx, "t1"); tok != "t2" || calls != 2 {
		t.Errorf("renew(stale t1) = %q after %d calls, want t2 after 2", tok, calls)
	}
	if tok, _ := ts.renew(ctx, "t2"); tok != "t3" {
		t.Errorf("renew(t2) = %q, want t3", tok)
	}
}

type credFunc func(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error)

func (f credFunc) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return f(ctx, o)
}

func TestNewClientOptions(t *testing.T) {
	cred := &fakeCredential{tokens: []string{"x"}}
	if _, err := NewClient(nil); err == nil {
		t.Error("NewClient(nil) succeeded without a credential")
	}
	if _, err := NewClient(&Options{Credential: cred, BaseURL: "http://graph.example.com"}); err == nil {
		t.Error("plain http to a remote host accepted")
	}
	for _, u := range []string{"", "https://graph.microsoft.us/", "http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:2"} {
		c, err := NewClient(&Options{Credential: cred, BaseURL: u})
		if err != nil {
			t.Errorf("BaseURL %q: %v", u, err)
			continue
		}
		if u == "" && (c.baseURL != defaultBaseURL || c.tokens.scope != "https://graph.microsoft.com/.default" ||
			c.adapter.GetBaseUrl() != "https://graph.microsoft.com/v1.0") {
			t.Errorf("defaults: base %q scope %q adapter %q", c.baseURL, c.tokens.scope, c.adapter.GetBaseUrl())
		}
		if c.retry.maxRetries != 5 {
			t.Errorf("default MaxRetries = %d", c.retry.maxRetries)
		}
	}
	c, _ := NewClient(&Options{Credential: cred, MaxRetries: -1})
	if c.retry.maxRetries != 0 {
		t.Errorf("MaxRetries -1 gives %d retries", c.retry.maxRetries)
	}
}

func TestShouldRetry(t *testing.T) {
	resp := func(code int, ra string) *http.Response {
		h := http.Header{}
		if ra != "" {
			h.Set("Retry-After", ra)
		}
		return &http.Response{StatusCode: code, Header: h}
	}
	cases := []struct {
		name  string
		resp  *http.Response
		err   error
		retry bool
		wait  time.Duration
	}{
		{"200", resp(200, ""), nil, false, 0},
		{"400", resp(400, ""), nil, false, 0},
		{"401", resp(401, ""), nil, false, 0},
		{"404", resp(404, ""), nil, false, 0},
		{"500", resp(500, ""), nil, false, 0},
		{"429 Retry-After 3", resp(429, "3"), nil, true, 3 * time.Second},
		{"429 no Retry-After", resp(429, ""), nil, true, 0},
		{"429 bad Retry-After", resp(429, "soon"), nil, true, 0},
		{"503", resp(503, "1"), nil, true, time.Second},
		{"504", resp(504, ""), nil, true, 0},
		{"EOF", nil, &netErr{io.EOF}, true, 0},
		{"reset", nil, fmt.Errorf("read: %w", errConnReset), true, 0},
		{"cancelled", nil, context.Canceled, false, 0},
		{"deadline", nil, fmt.Errorf("x: %w", context.DeadlineExceeded), false, 0},
		{"other", nil, errors.New("x509: certificate signed by unknown authority"), false, 0},
	}
	for _, c := range cases {
		retry, wait := shouldRetry(c.resp, c.err)
		if retry != c.retry || wait != c.wait {
			t.Errorf("%s: shouldRetry = %v, %v; want %v, %v", c.name, retry, wait, c.retry, c.wait)
		}
	}
	if d := retryAfter(time.Now().Add(10 * time.Second).UTC().Format(http.TimeFormat)); d < 8*time.Second || d > 10*time.Second {
		t.Errorf("Retry-After as a date: %v", d)
	}
}

type netErr struct{ err error }

func (e *netErr) Error() string { return "net: " + e.err.Error() }
func (e *netErr) Unwrap() error { return e.err }

func TestCategories(t *testing.T) {
	got := categories([]migrate.Flag{`\Seen`, "Work", "$Label1", "WORK", "Family", `\Flagged`, "NonJunk"})
	if want := []string{"Work", "Family", "NonJunk"}; !slices.Equal(got, want) {
		t.Errorf("categories = %q, want %q", got, want)
	}
	if got := categories(nil); got == nil || len(got) != 0 {
		t.Errorf("categories(nil) = %#v, want an empty, non-nil slice", got)
	}
}

func TestQuote(t *testing.T) {
	if got := quote("Bob's 'x'"); got != "'Bob''s ''x'''" {
		t.Errorf("quote = %s", got)
	}
}

var errConnReset error = syscall.ECONNRESET

func odataErr(status int, code, msg string) error {
	e := odataerrors.NewODataError()
	me := odataerrors.NewMainError()
	if code != "" {
		me.SetCode(&code)
	}
	if msg != "" {
		me.SetMessage(&msg)
	}
	e.SetErrorEscaped(me)
	e.ResponseStatusCode = status
	return e
}

func TestClassify(t *testing.T) {
	noBody := odataerrors.NewODataError() // no "error" object at all
	noBody.ResponseStatusCode = 502
	cases := []struct {
		name string
		err  error
		kind error // nil: unmarked
	}{
		{"quota", odataErr(403, "ErrorQuotaExceeded", "Mailbox has exceeded maximum mailbox size."), migrate.ErrMailbox},
		{"507", odataErr(507, "QuotaExceededException", ""), migrate.ErrMailbox},
		{"not enabled", odataErr(404, "MailboxNotEnabledForRESTAPI", "The mailbox is either inactive, soft-deleted, or is hosted on-premise."), migrate.ErrMailbox},
		{"resource not found", odataErr(404, "ResourceNotFound", "Resource could not be discovered."), migrate.ErrMailbox},
		{"invalid user", odataErr(404, "ErrorInvalidUser", "The requested user 'x' is invalid."), migrate.ErrMailbox},
		{"401", odataErr(401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid."), migrate.ErrMailbox},
		{"403", odataErr(403, "ErrorAccessDenied", "Access is denied."), migrate.ErrMailbox},
		{"mime", odataErr(400, "ErrorMimeContentInvalid", "The MIME content is invalid."), migrate.ErrItem},
		{"invalid request", odataErr(400, "ErrorInvalidRequest", "Cannot process the request."), migrate.ErrItem},
		{"item not found", odataErr(404, "ErrorItemNotFound", "The specified object was not found in the store."), migrate.ErrItem},
		{"413 typed", odataErr(413, "RequestEntityTooLarge", ""), migrate.ErrItem},
		{"413 raw", &abstractions.ApiError{ResponseStatusCode: 413, Message: "no body"}, migrate.ErrItem},
		{"429", odataErr(429, "ApplicationThrottled", "Application is over its MailboxConcurrency limit."), migrate.ErrTransient},
		{"503", odataErr(503, "ServiceUnavailable", ""), migrate.ErrTransient},
		{"504 raw", &abstractions.ApiError{ResponseStatusCode: 504}, migrate.ErrTransient},
		{"502 no error object", noBody, migrate.ErrTransient},
		{"network", &url.Error{Op: "Post", URL: "https://graph.microsoft.com/v1.0/x", Err: errConnReset}, migrate.ErrTransient},
		{"token", &tokenError{errors.New("get token: boom")}, migrate.ErrMailbox},
		{"cancelled", fmt.Errorf("x: %w", context.Canceled), nil},
	}
	for _, c := range cases {
		err := classify("do things", c.err)
		if !strings.HasPrefix(err.Error(), "exchange: do things: ") {
			t.Errorf("%s: %q lacks the prefix", c.name, err)
		}
		if !errors.Is(err, c.err) {
			t.Errorf("%s: %v does not wrap the original", c.name, err)
		}
		for _, k := range []error{migrate.ErrItem, migrate.ErrMailbox, migrate.ErrTransient} {
			if errors.Is(err, k) != (k == c.kind) {
				t.Errorf("%s: %q: errors.Is(%v) = %v", c.name, err, k, errors.Is(err, k))
			}
		}
	}
	if got := classify("op", odataErr(400, "ErrorMimeContentInvalid", "bad MIME")).Error(); got != "exchange: op: 400 ErrorMimeContentInvalid: bad MIME" {
		t.Errorf("message %q", got)
	}
}

// TestImportMimeRequest checks the wire shape of importMime: POST to the
// beta endpoint, Content-Type text/plain, a body that is the base64 of the
// MIME (gzipped by the SDK's compression middleware), a bearer token.
func TestImportMimeRequest(t *testing.T) {
	type seen struct {
		method, path, ctype, encoding, auth string
		body                                []byte
	}
	var got []seen
	var mu sync.Mutex
	e := newEnv(t, &envOptions{hook: func(r *http.Request) (*http.Response, error) {
		if !strings.HasSuffix(r.URL.Path, "/importMime") {
			return nil, nil
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(bytes.NewReader(b))
			if err != nil {
				return nil, err
			}
			if b, err = io.ReadAll(zr); err != nil {
				return nil, err
			}
		}
		mu.Lock()
		got = append(got, seen{r.Method, r.URL.EscapedPath(), r.Header.Get("Content-Type"), r.Header.Get("Content-Encoding"), r.Header.Get("Authorization"), b})
		mu.Unlock()
		return nil, nil
	}})
	inbox := e.wellKnown(t, "inbox")
	raw := sampleMIME("<shape@example.org>", "shape")
	if _, err := e.mb.Put(context.Background(), inbox, message("INBOX", 1, raw)); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("%d importMime requests, want 1", len(got))
	}
	s := got[0]
	if want := "/beta/users/alice%40contoso.com/mailFolders/" + url.PathEscape(inbox) + "/importMime"; s.method != "POST" || s.path != want {
		t.Errorf("request %s %s, want POST %s", s.method, s.path, want)
	}
	if !strings.HasPrefix(s.ctype, "text/plain") || s.auth != "Bearer "+testToken {
		t.Errorf("Content-Type %q, Authorization %q", s.ctype, s.auth)
	}
	if s.encoding != "gzip" {
		t.Errorf("Content-Encoding %q: the SDK's compression middleware is not in the pipeline", s.encoding)
	}
	if want := base64.StdEncoding.EncodeToString(raw); string(s.body) != want {
		t.Errorf("body %q, want base64 of the MIME %q", s.body, want)
	}
}

// TestPipeline checks that kiota's RetryHandler is not in the pipeline:
// retries happen in retryTransport only.
func TestPipeline(t *testing.T) {
	for _, m := range pipeline() {
		if _, ok := m.(*khttp.RetryHandler); ok {
			t.Errorf("kiota's RetryHandler is in the pipeline")
		}
	}
}

// TestTokenNotLogged runs a refused token through renewal and retries
// with debug logging and looks for the token in the log.
func TestTokenNotLogged(t *testing.T) {
	const secret = "SECRET-in-logs-5678"
	var logs bytes.Buffer
	srv := exchangetest.NewServer(&exchangetest.Options{Token: "the-right-one"})
	defer srv.Close()
	srv.AddMailbox(testUser)
	c, err := NewClient(&Options{
		Credential: &fakeCredential{tokens: []string{secret}},
		BaseURL:    srv.URL(), HTTPClient: srv.Client(),
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	c.retry.minBackoff = time.Millisecond
	srv.FailNext(1, http.StatusServiceUnavailable, 0)
	_, err = c.Mailbox(testUser).EnsureFolder(context.Background(), "", "Inbox", migrate.RoleInbox)
	if err == nil {
		t.Fatal("no error with a refused token")
	}
	if logs.Len() == 0 {
		t.Error("nothing was logged")
	}
	if strings.Contains(logs.String(), secret) || strings.Contains(err.Error(), secret) {
		t.Errorf("the token leaked:\n%s\n%v", logs.String(), err)
	}
}

// TestConcurrentPut puts from several goroutines into one Mailbox.
func TestConcurrentPut(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	ids := make([]string, 12)
	errs := make([]error, len(ids))
	for i := range ids {
		wg.Go(func() {
			folder, err := e.mb.EnsureFolder(ctx, "", fmt.Sprintf("F%d", i%3), migrate.RoleNone)
			if err != nil {
				errs[i] = err
				return
			}
			ids[i], errs[i] = e.mb.Put(ctx, folder, message(fmt.Sprintf("F%d", i%3), uint32(i+1), sampleMIME(fmt.Sprintf("<c%d@example.org>", i), "c")))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Put %d: %v", i, err)
		}
	}
	if n := len(e.srv.Messages(testUser)); n != len(ids) {
		t.Errorf("%d messages, want %d", n, len(ids))
	}
	names := map[string]int{}
	for _, f := range e.srv.Folders(testUser) {
		names[f.DisplayName]++
	}
	for i := range 3 {
		if n := names[fmt.Sprintf("F%d", i)]; n != 1 {
			t.Errorf("folder F%d exists %d times", i, n)
		}
	}
}

// TestTLS runs against the emulator over HTTPS.
func TestTLS(t *testing.T) {
	srv := exchangetest.NewTLSServer(nil)
	defer srv.Close()
	srv.AddMailbox(testUser)
	c, err := NewClient(&Options{Credential: &fakeCredential{tokens: []string{"any"}}, BaseURL: srv.URL(), HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Mailbox(testUser).EnsureFolder(context.Background(), "", "Projects", migrate.RoleNone); err != nil {
		t.Fatal(err)
	}
}
