package exchange

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/microsoftgraph/msgraph-sdk-go/users"

	"github.com/mailferry/mailferry/exchange/exchangetest"
	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

// deepMIME returns a message whose multiparts nest deeper than maxDepth,
// which the JSON create cannot take, with a Date header unless date is
// zero.
func deepMIME(msgID, subject string, date time.Time) []byte {
	var b strings.Builder
	b.WriteString("From: Bob Martin <bob@example.org>\r\nTo: Alice <alice@contoso.com>, carol@contoso.com\r\n")
	b.WriteString("Subject: " + subject + "\r\nMessage-ID: " + msgID + "\r\n")
	if !date.IsZero() {
		b.WriteString("Date: " + date.Format(time.RFC1123Z) + "\r\n")
	}
	b.WriteString("X-Mailer: deep\r\nMIME-Version: 1.0\r\n")
	for i := range maxDepth + 2 {
		bd := fmt.Sprintf("nest-%d", i)
		b.WriteString("Content-Type: multipart/mixed; boundary=" + bd + "\r\n\r\n--" + bd + "\r\n")
	}
	b.WriteString("Content-Type: text/plain\r\n\r\nat the bottom\r\n")
	return []byte(b.String())
}

var deepDate = time.Date(2018, 7, 8, 9, 10, 11, 0, time.FixedZone("", -4*3600))

// putDegraded puts m, expects it stored degraded, and returns the item
// and the error Put returned.
func putDegraded(t *testing.T, e *env, folder string, m *migrate.Message) (exchangetest.Message, error) {
	t.Helper()
	id, err := e.mb.Put(t.Context(), folder, m)
	if id == "" || !errors.Is(err, migrate.ErrDegraded) || errors.Is(err, migrate.ErrItem) || errors.Is(err, migrate.ErrMailbox) {
		t.Fatalf("Put = %q, %v; want an id and an error matching ErrDegraded only", id, err)
	}
	got, ok := e.srv.Message(testUser, id)
	if !ok {
		t.Fatalf("Put returned %q, which the mailbox does not hold", id)
	}
	return got, err
}

// checkDegraded checks a degraded item against its source: one
// attachment, the original unchanged, the watermark, flags, dates.
func checkDegraded(t *testing.T, got exchangetest.Message, m *migrate.Message, raw []byte, name string, sent time.Time) {
	t.Helper()
	if got.IsDraft || got.MIME != nil {
		t.Errorf("draft %v, MIME %d bytes: want a non-draft item created from JSON", got.IsDraft, len(got.MIME))
	}
	if !got.ReceivedDateTime.Equal(m.InternalDate) || !got.SentDateTime.Equal(sent) {
		t.Errorf("received %v, sent %v; want %v (INTERNALDATE), %v", got.ReceivedDateTime, got.SentDateTime, m.InternalDate, sent)
	}
	checkFlags(t, got, m.Flags)
	if got.ExtendedProperties[WatermarkProperty] != m.ID.String() {
		t.Errorf("watermark %q, want %q", got.ExtendedProperties[WatermarkProperty], m.ID)
	}
	if len(got.Attachments) != 1 {
		t.Fatalf("%d attachments, want the original alone", len(got.Attachments))
	}
	a := got.Attachments[0]
	if a.Name != name || a.ContentType != "message/rfc822" || a.IsInline {
		t.Errorf("attachment %q %q inline=%v, want %q message/rfc822", a.Name, a.ContentType, a.IsInline, name)
	}
	if !bytes.Equal(a.Content, raw) {
		t.Errorf("the attached original (%d bytes) differs from the source (%d bytes)", len(a.Content), len(raw))
	}
}

// TestPutDegraded: a message that importMime refuses and that cannot be
// parsed for the JSON create is stored degraded: its readable headers,
// dates, flags and watermark, a note, the original attached unchanged.
func TestPutDegraded(t *testing.T) {
	e := newEnv(t, &envOptions{dates: ReceivedDateAtImport})
	inbox := e.wellKnown(t, "inbox")
	e.srv.RejectMIME(func([]byte) bool { return true })
	raw := deepMIME("<deep@example.org>", "Budget: Q3/Q4?", deepDate)
	m := message("INBOX", 1, raw, migrate.FlagSeen, migrate.FlagFlagged, migrate.FlagAnswered, "Work")
	got, err := putDegraded(t, e, inbox, m)
	checkDegraded(t, got, m, raw, "Budget Q3 Q4.eml", deepDate)
	if got.Subject != "Budget: Q3/Q4?" || got.InternetMessageID != "<deep@example.org>" || got.FolderID != inbox {
		t.Errorf("subject %q, Message-ID %q, folder %q", got.Subject, got.InternetMessageID, got.FolderID)
	}
	for _, want := range []string{"stored degraded", "importMime refused it: 400 ErrorMimeContentInvalid", "nested more than 20 deep"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("reason %q does not say %q", err, want)
		}
	}
	var ge *GraphError
	if !errors.As(err, &ge) || ge.Code != "ErrorMimeContentInvalid" {
		t.Errorf("errors.As GraphError: %v", ge)
	}
	if n := len(e.srv.Messages(testUser)); n != 1 {
		t.Errorf("%d messages, want the degraded item alone", n)
	}

	msg, gerr := e.c.graph.Users().ByUserId(testUser).Messages().ByMessageId(got.ID).Get(t.Context(),
		&users.ItemMessagesMessageItemRequestBuilderGetRequestConfiguration{
			QueryParameters: &users.ItemMessagesMessageItemRequestBuilderGetQueryParameters{
				Select: []string{"body", "from", "toRecipients", "ccRecipients", "internetMessageHeaders"},
			},
		})
	if gerr != nil {
		t.Fatal(gerr)
	}
	body := deref(msg.GetBody().GetContent())
	if !strings.Contains(body, "could not be migrated as it was") || !strings.Contains(body, "attached unchanged: Budget Q3 Q4.eml") ||
		!strings.Contains(body, "ErrorMimeContentInvalid") {
		t.Errorf("body %q", body)
	}
	if a := msg.GetFrom().GetEmailAddress(); deref(a.GetAddress()) != "bob@example.org" || deref(a.GetName()) != "Bob Martin" {
		t.Errorf("from %s <%s>", deref(a.GetName()), deref(a.GetAddress()))
	}
	if n := len(msg.GetToRecipients()); n != 2 || len(msg.GetCcRecipients()) != 0 || len(msg.GetInternetMessageHeaders()) != 0 {
		t.Errorf("%d to, %d cc, %d x- headers; want 2, 0, 0", n, len(msg.GetCcRecipients()), len(msg.GetInternetMessageHeaders()))
	}
	// A rerun finds it by its watermark.
	if id, err := e.mb.FindWatermark(t.Context(), inbox, m.ID); err != nil || id != got.ID {
		t.Errorf("FindWatermark = %q, %v; want %q", id, err, got.ID)
	}
}

// TestPutDegradedWithoutHeaders: without a Date header the sent date is
// INTERNALDATE; without a subject the original is "original.eml"; a
// draft stays a draft.
func TestPutDegradedWithoutHeaders(t *testing.T) {
	e := newEnv(t, &envOptions{dates: ReceivedDateAtImport})
	inbox := e.wellKnown(t, "inbox")
	e.srv.RejectMIME(func([]byte) bool { return true })
	raw := []byte("Content-Type: multipart/mixed; boundary=nowhere\r\n\r\nno boundary here\x00\r\n")
	m := message("INBOX", 2, raw)
	got, err := putDegraded(t, e, inbox, m)
	checkDegraded(t, got, m, raw, "original.eml", m.InternalDate)
	if !strings.Contains(err.Error(), `multipart boundary "nowhere" never appears`) {
		t.Errorf("reason %q", err)
	}

	draft := message("Drafts", 3, deepMIME("<d@example.org>", "draft", time.Time{}), migrate.FlagDraft)
	id, err := e.mb.Put(t.Context(), e.wellKnown(t, "drafts"), draft)
	if got, _ := e.srv.Message(testUser, id); !errors.Is(err, migrate.ErrDegraded) || !got.IsDraft {
		t.Errorf("draft: %v, isDraft %v", err, got.IsDraft)
	}
}

// TestPutDegradedFromSource: under ReceivedDateFromSource a message that
// cannot be parsed is degraded before importMime is asked at all.
func TestPutDegradedFromSource(t *testing.T) {
	e := newEnv(t, &envOptions{dates: ReceivedDateFromSource})
	inbox := e.wellKnown(t, "inbox")
	raw := deepMIME("<src@example.org>", "from source", deepDate)
	m := message("INBOX", 4, raw, migrate.FlagSeen)
	got, err := putDegraded(t, e, inbox, m)
	checkDegraded(t, got, m, raw, "from source.eml", deepDate)
	if strings.Contains(err.Error(), "importMime") {
		t.Errorf("reason %q names importMime", err)
	}
}

// TestPutRefusedCreates: when Graph refuses the JSON create too, the
// degraded item is made; when it refuses the degraded item's headers,
// one without them.
func TestPutRefusedCreates(t *testing.T) {
	refuse := func(status int, code string, when func(body string) bool) func(*http.Request) (*http.Response, error) {
		return func(r *http.Request) (*http.Response, error) {
			if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/messages") || r.Header.Get("Content-Type") != "application/json" {
				return nil, nil
			}
			b, err := io.ReadAll(r.Body)
			if err != nil {
				return nil, err
			}
			r.Body = io.NopCloser(bytes.NewReader(b))
			if !when(string(gunzip(t, r, b))) {
				return nil, nil
			}
			return jsonError(r, status, code, "Refused by the test."), nil
		}
	}
	t.Run("rebuilt refused", func(t *testing.T) {
		e := newEnv(t, &envOptions{dates: ReceivedDateAtImport, hook: refuse(400, "ErrorInvalidInternetMessageHeader",
			func(b string) bool { return strings.Contains(b, "X-Mailer") })})
		e.srv.RejectMIME(func([]byte) bool { return true })
		tm := genMessage(21)
		m := genPut(tm, 21, migrate.FlagSeen)
		got, err := putDegraded(t, e, e.wellKnown(t, "inbox"), m)
		checkDegraded(t, got, m, tm.raw, tm.subject+".eml", tm.date)
		if !strings.Contains(err.Error(), "importMime refused it") || !strings.Contains(err.Error(), "create from JSON refused it: 400 ErrorInvalidInternetMessageHeader") {
			t.Errorf("reason %q", err)
		}
	})
	t.Run("headers refused", func(t *testing.T) {
		e := newEnv(t, &envOptions{dates: ReceivedDateAtImport, hook: refuse(400, "ErrorInvalidProperty",
			func(b string) bool { return strings.Contains(b, "internetMessageId") })})
		e.srv.RejectMIME(func([]byte) bool { return true })
		raw := deepMIME("<refused@example.org>", "headers refused", deepDate)
		m := message("INBOX", 22, raw)
		got, _ := putDegraded(t, e, e.wellKnown(t, "inbox"), m)
		checkDegraded(t, got, m, raw, "headers refused.eml", deepDate)
		if got.Subject != "" || got.InternetMessageID == "<refused@example.org>" {
			t.Errorf("subject %q, Message-ID %q: the second try keeps no header", got.Subject, got.InternetMessageID)
		}
	})
	t.Run("everything refused", func(t *testing.T) {
		e := newEnv(t, &envOptions{dates: ReceivedDateAtImport, hook: refuse(400, "ErrorInvalidRequest",
			func(string) bool { return true })})
		e.srv.RejectMIME(func([]byte) bool { return true })
		_, err := e.mb.Put(t.Context(), e.wellKnown(t, "inbox"), message("INBOX", 23, sampleMIME("<no@example.org>", "no")))
		if !errors.Is(err, migrate.ErrItem) || errors.Is(err, migrate.ErrDegraded) || !strings.Contains(err.Error(), "ErrorMimeContentInvalid") {
			t.Errorf("Put = %v, want ErrItem naming every refusal", err)
		}
		if n := len(e.srv.Messages(testUser)); n != 0 {
			t.Errorf("%d messages left behind", n)
		}
	})
}

func gunzip(t *testing.T, r *http.Request, b []byte) []byte {
	t.Helper()
	if r.Header.Get("Content-Encoding") != "gzip" {
		return b
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func jsonError(r *http.Request, status int, code, msg string) *http.Response {
	body := fmt.Sprintf(`{"error":{"code":%q,"message":%q}}`, code, msg)
	return &http.Response{
		StatusCode: status, Status: fmt.Sprintf("%d %s", status, http.StatusText(status)), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/json"}}, Request: r,
		Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)),
	}
}

// TestPutMalformedLarge: a malformed message over 3 MB takes the JSON
// path and is rebuilt when it can be parsed (no closing boundary, an
// mbox From line), degraded when it cannot (a text body over 3 MB: the
// original then goes through an upload session); never failed.
func TestPutMalformedLarge(t *testing.T) {
	t.Run("rebuilt", func(t *testing.T) {
		e := newEnv(t, &envOptions{dates: ReceivedDateAtImport})
		tm := genMessage(31, 3500<<10)
		raw := append([]byte("From bob@example.org Mon Mar  4 05:06:07 2019\r\n"), bytes.TrimSuffix(tm.raw, []byte("--mixed-b--\r\n"))...)
		tm.raw = raw
		m := genPut(tm, 31, migrate.FlagSeen)
		id := e.put(t, e.wellKnown(t, "inbox"), m)
		checkJSONCopy(t, e, id, tm, m)
	})
	t.Run("degraded", func(t *testing.T) {
		e := newEnv(t, &envOptions{dates: ReceivedDateAtImport})
		raw := append(sampleMIME("<huge-text@example.org>", "huge text"), bytes.Repeat([]byte("all text, no attachment\r\n"), (MaxImportSize+100<<10)/25)...)
		m := message("INBOX", 32, raw, migrate.FlagFlagged)
		got, err := putDegraded(t, e, e.wellKnown(t, "inbox"), m)
		checkDegraded(t, got, m, raw, "huge text.eml", time.Date(2006, 1, 2, 15, 4, 5, 0, time.FixedZone("", -7*3600)))
		if !strings.Contains(err.Error(), "main body over") {
			t.Errorf("reason %q", err)
		}
		if st := e.srv.Stats(); st.ByRoute["POST /users/{user}/messages/{id}/attachments/createUploadSession"] != 1 || st.ByRoute["POST /users/{user}/mailFolders/{id}/importMime"] != 0 {
			t.Errorf("routes %v: want one upload session and no importMime", st.ByRoute)
		}
	})
	t.Run("over the mailbox's limit", func(t *testing.T) {
		// Failed, with its reason, when even the degraded item is too
		// large for the mailbox.
		e := newEnv(t, &envOptions{dates: ReceivedDateAtImport, server: &exchangetest.Options{MaxMessageBytes: 3 << 20}})
		raw := append(sampleMIME("<over@example.org>", "over"), bytes.Repeat([]byte("0123456789\r\n"), (MaxImportSize+100<<10)/12)...)
		_, err := e.mb.Put(t.Context(), e.wellKnown(t, "inbox"), message("INBOX", 33, raw))
		if !errors.Is(err, migrate.ErrItem) || errors.Is(err, migrate.ErrDegraded) || !strings.Contains(err.Error(), "ErrorMessageSizeExceeded") {
			t.Errorf("Put = %v, want ErrItem ErrorMessageSizeExceeded", err)
		}
		if n := len(e.srv.Messages(testUser)); n != 0 {
			t.Errorf("%d messages left behind", n)
		}
	})
}

// TestPutDegradedLostAnswer drops the answer to the degraded item's
// create after Graph carried it out: Put finds the item by its watermark
// instead of creating a second one.
func TestPutDegradedLostAnswer(t *testing.T) {
	e, dropped := newEnvLosingAnswer(t, ReceivedDateAtImport, "/messages")
	e.srv.RejectMIME(func([]byte) bool { return true })
	raw := deepMIME("<lost@example.org>", "lost", deepDate)
	m := message("INBOX", 41, raw, migrate.FlagSeen)
	got, _ := putDegraded(t, e, e.wellKnown(t, "inbox"), m)
	checkDegraded(t, got, m, raw, "lost.eml", deepDate)
	if msgs := e.srv.Messages(testUser); len(msgs) != 1 || dropped.Load() != 1 {
		t.Errorf("%d messages after %d dropped answers, want 1 after 1", len(msgs), dropped.Load())
	}
}

// TestPutDegradedResumesAfterCrash kills a Put during the upload of a
// large original: the partial item stays pending, never found by its
// watermark, and the next Put replaces it with one complete item.
func TestPutDegradedResumesAfterCrash(t *testing.T) {
	var puts atomic.Int32
	var failDeletes atomic.Bool
	failDeletes.Store(true)
	e := newEnv(t, &envOptions{dates: ReceivedDateAtImport, hook: func(r *http.Request) (*http.Response, error) {
		if r.Method == http.MethodPut && puts.Add(1) == 1 {
			return nil, errors.New("killed")
		}
		if r.Method == http.MethodDelete && failDeletes.Load() {
			return nil, errors.New("killed")
		}
		return nil, nil
	}})
	inbox := e.wellKnown(t, "inbox")
	raw := append(sampleMIME("<crash@example.org>", "crash"), bytes.Repeat([]byte("all text, no attachment\r\n"), (MaxImportSize+100<<10)/25)...)
	m := message("INBOX", 42, raw)
	if id, err := e.mb.Put(t.Context(), inbox, m); err == nil || id != "" {
		t.Fatalf("Put survived its kill: %q, %v", id, err)
	}
	msgs := e.srv.Messages(testUser)
	if len(msgs) != 1 || msgs[0].ExtendedProperties[PendingProperty] != m.ID.String() || msgs[0].ExtendedProperties[WatermarkProperty] != "" {
		t.Fatalf("want one partial item marked pending, have %d", len(msgs))
	}
	if id, err := e.mb.FindWatermark(t.Context(), inbox, m.ID); err != nil || id != "" {
		t.Errorf("FindWatermark found the partial item: %q, %v", id, err)
	}
	failDeletes.Store(false)
	got, _ := putDegraded(t, e, inbox, message("INBOX", 42, raw))
	checkDegraded(t, got, m, raw, "crash.eml", time.Date(2006, 1, 2, 15, 4, 5, 0, time.FixedZone("", -7*3600)))
	if msgs := e.srv.Messages(testUser); len(msgs) != 1 {
		t.Errorf("%d messages after the rerun, want the complete item alone", len(msgs))
	}
}

// TestEngineDegraded runs the Engine over a folder with one good and two
// malformed messages that importMime refuses: nothing fails; one is
// rebuilt from its fields and one stored as a degraded item, each with its
// original attached, both counted apart with their reasons; and a rerun
// copies nothing again.
func TestEngineDegraded(t *testing.T) {
	e := newEnv(t, &envOptions{dates: ReceivedDateAtImport})
	e.srv.RejectMIME(func(b []byte) bool { return !bytes.Contains(b, []byte("Subject: good")) })
	fx := &migratetest.Fixture{Folders: []migratetest.FixtureFolder{{Path: []string{"INBOX"}, Role: migrate.RoleInbox,
		Messages: []migratetest.FixtureMessage{
			{Raw: sampleMIME("<good@example.org>", "good"), InternalDate: testInternalDate},
			{Raw: deepMIME("<deep@example.org>", "deep", deepDate), InternalDate: testInternalDate},
			{Raw: []byte("From x\r\nSubject: stray\r\nno colon\r\n\r\nrefused, then rebuilt"), InternalDate: testInternalDate},
		}}}}
	job := migrate.Job{Mailbox: testUser, Source: migratetest.NewSource(fx), Sink: e.mb}
	eng := migrate.NewEngine(nil)
	rep := eng.Run(t.Context(), job)
	tot := rep.Totals()
	if tot.Copied != 1 || tot.Degraded != 2 || tot.Failed != 0 {
		t.Fatalf("copied %d, degraded %d, failed %d; want 1, 2, 0", tot.Copied, tot.Degraded, tot.Failed)
	}
	mr := rep.Mailboxes[0]
	reasons := map[uint32]string{}
	for _, p := range mr.Problems {
		if p.Action == migrate.ActionDegrade {
			reasons[p.UID] = p.Reason
		}
	}
	if len(mr.Problems) != 2 || !strings.Contains(reasons[2], "nested") || !strings.Contains(reasons[3], "rebuilt from its fields") {
		t.Errorf("problems %+v", mr.Problems)
	}
	if len(mr.Notices) == 0 || !strings.Contains(strings.Join(mr.Notices, "\n"), noticeRefusedRebuilt) {
		t.Errorf("notices %q, want %q", mr.Notices, noticeRefusedRebuilt)
	}
	rep = eng.Run(t.Context(), job)
	if tot := rep.Totals(); tot.Copied != 0 || tot.Degraded != 0 || len(e.srv.Messages(testUser)) != 3 {
		t.Errorf("rerun: %+v, %d messages; want nothing copied again", tot, len(e.srv.Messages(testUser)))
	}
}
