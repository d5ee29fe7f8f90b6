package exchange

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/mailferry/mailferry/exchange/exchangetest"
	"github.com/mailferry/mailferry/migrate"
)

// TestTokenRenewalAfter401: the first token is refused; the client gets a
// new one once and the call succeeds.
func TestTokenRenewalAfter401(t *testing.T) {
	e := newEnv(t, &envOptions{tokens: []string{"revoked-token", testToken}})
	id, err := e.mb.EnsureFolder(t.Context(), "", "Inbox", migrate.RoleInbox)
	if err != nil || id == "" {
		t.Fatalf("EnsureFolder after a 401: %q, %v", id, err)
	}
	if n := e.cred.calls.Load(); n != 2 {
		t.Errorf("GetToken called %d times, want 2", n)
	}
	// The renewed token is cached.
	e.folder(t, "Projects", migrate.RoleNone)
	if n := e.cred.calls.Load(); n != 2 {
		t.Errorf("GetToken called %d times after more requests, want 2", n)
	}
	if _, ok := e.cred.scopes.Load(e.srv.URL() + "/.default"); !ok {
		t.Errorf("token scope is not %s/.default", e.srv.URL())
	}
}

func TestTokenNeverInErrors(t *testing.T) {
	const secret = "SECRET-bearer-value-1234"
	e := newEnv(t, &envOptions{tokens: []string{secret}, dates: ReceivedDateAtImport}) // no probe: the Put's own requests
	inbox := "inbox"
	_, err := e.mb.Put(t.Context(), inbox, message("INBOX", 1, sampleMIME("<tok@example.org>", "tok")))
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
	_, err = e2.mb.EnsureFolder(t.Context(), "", "Inbox", migrate.RoleInbox)
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
	ctx := t.Context()
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

// TestTokenNotLogged runs a refused token through renewal and retries
// with debug logging and looks for the token in the log.
func TestTokenNotLogged(t *testing.T) {
	const secret = "SECRET-in-logs-5678"
	var logs bytes.Buffer
	srv := newServer(t, &exchangetest.Options{Token: "the-right-one"})
	c, err := NewClient(&Options{
		Credential: &fakeCredential{tokens: []string{secret}},
		BaseURL:    srv.URL(), Transport: srv.Client().Transport,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	c.retry.backoff.Min = time.Millisecond
	srv.FailNext(1, http.StatusServiceUnavailable, 0)
	_, err = c.Mailbox(testUser).EnsureFolder(t.Context(), "", "Inbox", migrate.RoleInbox)
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
