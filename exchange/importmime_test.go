package exchange

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mailferry/mailferry/migrate"
)

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
	e := newEnv(t, &envOptions{dates: ReceivedDateAtImport, hook: func(r *http.Request) (*http.Response, error) {
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
	e.put(t, inbox, message("INBOX", 1, raw))
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

// TestPutUndo checks that an import whose PATCH fails is deleted.
func TestPutUndo(t *testing.T) {
	e := newEnv(t, &envOptions{dates: ReceivedDateAtImport, hook: func(r *http.Request) (*http.Response, error) {
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
	_, err := e.mb.Put(t.Context(), inbox, message("INBOX", 1, sampleMIME("<undo@example.org>", "undo")))
	if !errors.Is(err, migrate.ErrItem) || !strings.Contains(err.Error(), "ErrorInvalidProperty") {
		t.Errorf("Put with a failing PATCH: %v, want ErrItem ErrorInvalidProperty", err)
	}
	if n := len(e.srv.Messages(testUser)); n != 0 {
		t.Errorf("%d messages left behind, want 0", n)
	}
}

// TestRejectMIME: a message that importMime refuses is created from its
// parsed fields instead (received date kept, watermark and flags set),
// with its original attached unchanged, and Put reports it degraded (the
// caller asked for its exact MIME); the run is told once
// (noticeRefusedRebuilt); a refused draft stays a draft.
func TestRejectMIME(t *testing.T) {
	e := newEnv(t, &envOptions{dates: ReceivedDateAtImport})
	inbox := e.wellKnown(t, "inbox")
	e.srv.RejectMIME(func(b []byte) bool { return bytes.Contains(b, []byte("Subject: bad")) })
	ctx, events := observed(t.Context())
	raw := sampleMIME("<bad@example.org>", "bad")
	m := message("INBOX", 1, raw, migrate.FlagSeen, migrate.FlagFlagged)
	id, err := e.mb.Put(ctx, inbox, m)
	if id == "" || !errors.Is(err, migrate.ErrDegraded) || !strings.Contains(err.Error(), "rebuilt from its fields, the original attached") ||
		!strings.Contains(err.Error(), "ErrorMimeContentInvalid") {
		t.Fatalf("Put of refused MIME = %q, %v; want it created from JSON and reported degraded", id, err)
	}
	got, _ := e.srv.Message(testUser, id)
	if got.MIME != nil || got.IsDraft || got.Subject != "bad" || got.InternetMessageID != "<bad@example.org>" ||
		!got.ReceivedDateTime.Equal(m.InternalDate) || got.ExtendedProperties[WatermarkProperty] != m.ID.String() {
		t.Errorf("item %+v: want a non-draft JSON create with the source's fields, received date and watermark", got)
	}
	if n := len(got.Attachments); n == 0 || !bytes.Equal(got.Attachments[n-1].Content, raw) || got.Attachments[n-1].Name != "bad.eml" {
		t.Errorf("attachments %+v: want the original, unchanged, as bad.eml", got.Attachments)
	}
	checkFlags(t, got, m.Flags)
	if evs := events(); len(evs) != 1 || evs[0].Kind != migrate.EventNotice || evs[0].Reason != noticeRefusedRebuilt {
		t.Errorf("events %+v, want one notice", evs)
	}
	if _, err := e.mb.Put(t.Context(), inbox, message("INBOX", 2, sampleMIME("<good@example.org>", "good"))); err != nil {
		t.Errorf("Put of good MIME after a rejection: %v", err)
	}
	draft := message("Drafts", 3, sampleMIME("<bad-draft@example.org>", "bad draft"), migrate.FlagDraft)
	id, err = e.mb.Put(t.Context(), e.wellKnown(t, "drafts"), draft)
	if got, _ := e.srv.Message(testUser, id); !errors.Is(err, migrate.ErrDegraded) || !got.IsDraft || got.MIME != nil {
		t.Errorf("refused draft: %v, isDraft %v, MIME %d bytes; want a JSON draft, reported degraded", err, got.IsDraft, len(got.MIME))
	}
	// importMime for bad and good; the JSON create of bad; the MIME and
	// then the JSON create of the draft.
	st := e.srv.Stats()
	if st.ByRoute["POST /users/{user}/mailFolders/{id}/importMime"] != 2 || st.ByRoute["POST /users/{user}/mailFolders/{id}/messages"] != 3 {
		t.Errorf("routes %v", st.ByRoute)
	}
}

// TestImportForbidden: an app without Mail-Advanced.ReadWrite.All gets 403
// from importMime alone. The message is rebuilt from its fields with its
// original attached and reported degraded, and the mailbox goes on.
func TestImportForbidden(t *testing.T) {
	e := newEnv(t, &envOptions{dates: ReceivedDateAtImport, hook: func(r *http.Request) (*http.Response, error) {
		if strings.HasSuffix(r.URL.Path, "/importMime") {
			body := `{"error":{"code":"ErrorAccessDenied","message":"Access is denied. Check credentials and try again."}}`
			return &http.Response{StatusCode: http.StatusForbidden, Header: http.Header{"Content-Type": {"application/json"}},
				Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
		}
		return nil, nil
	}})
	inbox := e.wellKnown(t, "inbox")
	ctx, events := observed(t.Context())
	raw := sampleMIME("<forbidden@example.org>", "forbidden")
	m := message("INBOX", 1, raw, migrate.FlagSeen)
	id, err := e.mb.Put(ctx, inbox, m)
	if id == "" || !errors.Is(err, migrate.ErrDegraded) || errors.Is(err, migrate.ErrMailbox) || !strings.Contains(err.Error(), "403") {
		t.Fatalf("Put = %q, %v; want it rebuilt and reported degraded, not a mailbox failure", id, err)
	}
	got, _ := e.srv.Message(testUser, id)
	if n := len(got.Attachments); got.MIME != nil || n == 0 || !bytes.Equal(got.Attachments[n-1].Content, raw) {
		t.Errorf("item %+v: want a JSON create with the original attached", got)
	}
	checkFlags(t, got, m.Flags)
	var notices []string
	for _, ev := range events() {
		if ev.Kind == migrate.EventNotice {
			notices = append(notices, ev.Reason)
		}
	}
	if !slices.Contains(notices, noticeImportForbidden) {
		t.Errorf("notices %q, want %q", notices, noticeImportForbidden)
	}
}
