package exchange

import (
	"bytes"
	"errors"
	"slices"
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

func TestReceivedDatesPolicy(t *testing.T) {
	var zero ReceivedDates
	if zero != ReceivedDateFromSource || zero.String() != "from-source" || ReceivedDateAtImport.String() != "at-import" {
		t.Errorf("zero value %v, at-import %v", zero, ReceivedDateAtImport)
	}
	if s := ReceivedDates(7).String(); s != "ReceivedDates(7)" {
		t.Errorf("ReceivedDates(7) = %q", s)
	}
	if _, err := NewClient(&Options{Credential: &fakeCredential{tokens: []string{"x"}}, ReceivedDates: 7}); err == nil {
		t.Error("NewClient accepted ReceivedDates(7)")
	}
}

func TestMustKeepMIME(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  string
		want bool
	}{
		{"plain", "Subject: x\r\nContent-Type: text/plain\r\n\r\nhi\r\n", false},
		{"no content type", "Subject: x\r\n\r\nContent-Type: multipart/signed\r\n", false},
		{"S/MIME signed", "Subject: x\r\nContent-Type: multipart/signed; protocol=\"application/pkcs7-signature\";\r\n\tmicalg=sha-256; boundary=b\r\n\r\n--b\r\n", true},
		{"PGP/MIME signed, folded, LF only", "Subject: x\nContent-Type:\n multipart/signed; protocol=\"application/pgp-signature\"\n\n", true},
		{"PGP/MIME encrypted", "content-type: Multipart/Encrypted; protocol=\"application/pgp-encrypted\"; boundary=b\r\n\r\n", true},
		{"S/MIME enveloped", "Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\r\n\r\nMIIB", true},
		{"old S/MIME", "Content-Type: application/x-pkcs7-mime; name=smime.p7m\r\n\r\n", true},
		{"bad parameters", "Content-Type: application/pkcs7-mime; name=\"smime.p7m\r\n\r\n", true},
		{"nested signed part", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: multipart/signed\r\n", false},
		{"first field only", "Content-Type: text/plain\r\nContent-Type: multipart/signed\r\n\r\n", false},
	} {
		if got := mustKeepMIME([]byte(tc.raw)); got != tc.want {
			t.Errorf("%s: mustKeepMIME = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// signedMIME is a small S/MIME signed message (the signature is not real:
// only the structure matters here).
func signedMIME(msgID string) []byte {
	return []byte("From: Bob <bob@example.org>\r\n" +
		"To: Alice <alice@contoso.com>\r\n" +
		"Subject: signed\r\n" +
		"Date: Mon, 02 Jan 2006 15:04:05 -0700\r\n" +
		"Message-ID: " + msgID + "\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256;\r\n" +
		"\tboundary=\"sig-b\"\r\n" +
		"\r\n" +
		"--sig-b\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"\r\n" +
		"Signed by Bob.\r\n" +
		"--sig-b\r\n" +
		"Content-Type: application/pkcs7-signature; name=smime.p7s\r\n" +
		"Content-Transfer-Encoding: base64\r\n" +
		"Content-Disposition: attachment; filename=smime.p7s\r\n" +
		"\r\n" +
		"MIIBkQYJKoZIhvcNAQcCoIIBgjCCAX4CAQExDTALBglghkgBZQMEAgEwCwYJKoZI\r\n" +
		"--sig-b--\r\n")
}

// TestReceivedDatesRouting puts one message per case and checks the path
// it took (importMime keeps the MIME; the JSON create does not), its
// received date, the delivery time in the PATCH after an import, whether
// the tenant was probed, and the notice the Put reported.
func TestReceivedDatesRouting(t *testing.T) {
	const (
		imported = "POST /users/{user}/mailFolders/{id}/importMime"
		probed   = "POST /users/{user}/mailFolders/{id}/permanentDelete"
	)
	notHonoured := noticeNotHonoured + noticeRebuilt
	for _, tc := range []struct {
		name     string
		dates    ReceivedDates
		honour   bool // the emulator honours the delivery-time PATCH
		raw      []byte
		flags    []migrate.Flag
		keepMIME bool // importMime, byte for byte
		keepDate bool // received = INTERNALDATE
		probe    bool
		notice   string
	}{
		{"default", ReceivedDateFromSource, false, sampleMIME("<r1@example.org>", "r1"), nil, false, true, true, notHonoured},
		{"signed", ReceivedDateFromSource, false, signedMIME("<r2@example.org>"), nil, true, false, true, notHonoured},
		{"honoured", ReceivedDateFromSource, true, sampleMIME("<r3@example.org>", "r3"), nil, true, true, true, noticeHonoured},
		{"signed honoured", ReceivedDateFromSource, true, signedMIME("<r4@example.org>"), nil, true, true, true, noticeHonoured},
		{"at import", ReceivedDateAtImport, false, sampleMIME("<r5@example.org>", "r5"), nil, true, false, false, noticeAtImport},
		{"at import on a tenant that honours", ReceivedDateAtImport, true, sampleMIME("<r6@example.org>", "r6"), nil, true, false, false, noticeAtImport},
		{"draft", ReceivedDateFromSource, true, sampleMIME("<r7@example.org>", "r7"), []migrate.Flag{migrate.FlagDraft}, true, false, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, &envOptions{dates: tc.dates, server: &exchangetest.Options{HonourDeliveryTimePatch: tc.honour}})
			inbox := e.wellKnown(t, "inbox")
			ctx, events := observed(t.Context())
			m := message("INBOX", 1, tc.raw, tc.flags...)
			id, err := e.mb.Put(ctx, inbox, m)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := e.srv.Message(testUser, id)
			if keptMIME := bytes.Equal(got.MIME, tc.raw); keptMIME != tc.keepMIME {
				t.Errorf("MIME kept: %v, want %v", keptMIME, tc.keepMIME)
			}
			if keptDate := got.ReceivedDateTime.Equal(m.InternalDate); keptDate != tc.keepDate {
				t.Errorf("received %v (INTERNALDATE %v): kept %v, want %v", got.ReceivedDateTime, m.InternalDate, keptDate, tc.keepDate)
			}
			if tc.keepMIME && !got.IsDraft {
				// The delivery time travels in the PATCH after the import,
				// and only when the tenant honours it.
				if p, set := got.ExtendedProperties[deliveryTimeProperty]; set != tc.keepDate || (set && p != systemTime(m.InternalDate)) {
					t.Errorf("PidTagMessageDeliveryTime %q (set %v) after the import, want set %v", p, set, tc.keepDate)
				}
			}
			st := e.srv.Stats()
			if n := st.ByRoute[probed]; n != map[bool]int{false: 0, true: 1}[tc.probe] {
				t.Errorf("%d probes, want probed %v", n, tc.probe)
			}
			if n, want := st.ByRoute[imported], map[bool]int{false: 0, true: 1}[tc.probe]+map[bool]int{false: 0, true: 1}[tc.keepMIME && !got.IsDraft]; n != want {
				t.Errorf("%d importMime, want %d: %v", n, want, st.ByRoute)
			}
			if n := len(e.srv.Messages(testUser)); n != 1 {
				t.Errorf("%d messages in the mailbox, want 1 (the probe leaves none)", n)
			}
			var notices []string
			for _, ev := range events() {
				if ev.Kind == migrate.EventNotice && !slices.Contains(notices, ev.Reason) {
					notices = append(notices, ev.Reason)
				}
			}
			if want := []string{tc.notice}; (tc.notice == "" && len(notices) != 0) || (tc.notice != "" && !slices.Equal(notices, want)) {
				t.Errorf("notices %q, want %q", notices, tc.notice)
			}
		})
	}
}
