package exchange

import (
	"errors"
	"testing"

	khttp "github.com/microsoft/kiota-http-go"

	"github.com/mailferry/mailferry/exchange/exchangetest"
	"github.com/mailferry/mailferry/migrate"
)

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

// TestPipeline checks that kiota's RetryHandler is not in the pipeline:
// retries happen in retryTransport only.
func TestPipeline(t *testing.T) {
	for _, m := range pipeline() {
		if _, ok := m.(*khttp.RetryHandler); ok {
			t.Errorf("kiota's RetryHandler is in the pipeline")
		}
	}
}

// TestTLS runs against the emulator over HTTPS.
func TestTLS(t *testing.T) {
	srv := exchangetest.NewTLSServer(nil)
	defer srv.Close()
	srv.AddMailbox(testUser)
	c, err := NewClient(&Options{Credential: &fakeCredential{tokens: []string{"any"}}, BaseURL: srv.URL(), Transport: srv.Client().Transport})
	if err != nil {
		t.Fatal(err)
	}
	ensureFolder(t, c.Mailbox(testUser), "", "Projects", migrate.RoleNone)
}

func TestUnknownUser(t *testing.T) {
	e := newEnv(t, nil)
	mb := e.c.Mailbox("nobody@contoso.com")
	_, err := mb.EnsureFolder(t.Context(), "", "Inbox", migrate.RoleInbox)
	if !errors.Is(err, migrate.ErrMailbox) {
		t.Errorf("EnsureFolder for an unknown user: %v, want ErrMailbox", err)
	}
	_, err = mb.EnsureFolder(t.Context(), "", "Projects", migrate.RoleNone)
	if !errors.Is(err, migrate.ErrMailbox) {
		t.Errorf("EnsureFolder(Projects) for an unknown user: %v, want ErrMailbox", err)
	}
}
