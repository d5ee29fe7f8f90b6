package exchange_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/mailferry/mailferry/exchange"
	"github.com/mailferry/mailferry/exchange/exchangetest"
	"github.com/mailferry/mailferry/migrate"
)

// staticCredential is an azcore.TokenCredential that always returns the
// same token: enough for the emulator, never for a real tenant.
type staticCredential struct{ token string }

func (c staticCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: c.token, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// Example copies one message into a mailbox of the exchangetest emulator:
// ensure the folders, put the message, find it again by its watermark.
func Example() {
	srv := exchangetest.NewServer(&exchangetest.Options{Token: "emulator-token"})
	defer srv.Close()
	srv.AddMailbox("alice@contoso.com")

	c, err := exchange.NewClient(&exchange.Options{
		Credential: staticCredential{"emulator-token"},
		BaseURL:    srv.URL(),
		Transport:  srv.Client().Transport,
		// Exact MIME, received at the time of the import; the default,
		// ReceivedDateFromSource, keeps received dates instead.
		ReceivedDates: exchange.ReceivedDateAtImport,
	})
	if err != nil {
		log.Fatal(err)
	}
	mb := c.Mailbox("alice@contoso.com")
	ctx := context.Background()

	inbox, err := mb.EnsureFolder(ctx, "", "Inbox", migrate.RoleInbox)
	if err != nil {
		log.Fatal(err)
	}
	projects, err := mb.EnsureFolder(ctx, inbox, "Projects", migrate.RoleNone)
	if err != nil {
		log.Fatal(err)
	}

	raw := "From: Bob <bob@example.org>\r\n" +
		"To: Alice <alice@contoso.com>\r\n" +
		"Subject: Kick-off\r\n" +
		"Message-ID: <kickoff@example.org>\r\n" +
		"\r\n" +
		"Monday, 10:00.\r\n"
	src := migrate.SourceID{Folder: "INBOX/Projects", UIDValidity: 1700000000, UID: 7}
	id, err := mb.Put(ctx, projects, &migrate.Message{
		ID:          src,
		MessageInfo: migrate.MessageInfo{UID: 7, Flags: []migrate.Flag{migrate.FlagSeen, "Work"}, Size: int64(len(raw))},
		Body:        strings.NewReader(raw),
	})
	if err != nil {
		log.Fatal(err)
	}

	m, _ := srv.Message("alice@contoso.com", id)
	fmt.Println(m.Subject, "read:", m.IsRead, "draft:", m.IsDraft, "categories:", m.Categories)
	fmt.Println("same MIME:", bytes.Equal(m.MIME, []byte(raw)))
	found, _ := mb.FindWatermark(ctx, projects, src)
	fmt.Println("found by watermark:", found == id)
	// Output:
	// Kick-off read: true draft: false categories: [Work]
	// same MIME: true
	// found by watermark: true
}

// ExampleNewClient connects to a real tenant with an app registration's
// client secret. The app needs the Mail.ReadWrite and
// Mail-Advanced.ReadWrite.All application permissions (see the package
// documentation). The secret comes from the environment or a vault, never
// from the source code.
func ExampleNewClient() {
	cred, err := azidentity.NewClientSecretCredential("<tenant id>", "<client id>", os.Getenv("MAILFERRY_CLIENT_SECRET"), nil)
	if err != nil {
		log.Fatal(err)
	}
	c, err := exchange.NewClient(&exchange.Options{Credential: cred})
	if err != nil {
		log.Fatal(err)
	}
	var sink migrate.Sink = c.Mailbox("alice@contoso.com")
	_ = sink
}

// ExampleNewClient_certificate connects with a certificate registered on
// the app registration instead of a secret: a PEM or PKCS#12 file holding
// the certificate and its private key.
func ExampleNewClient_certificate() {
	data, err := os.ReadFile("mailferry-app.pem")
	if err != nil {
		log.Fatal(err)
	}
	certs, key, err := azidentity.ParseCertificates(data, nil) // nil: the key has no password
	if err != nil {
		log.Fatal(err)
	}
	cred, err := azidentity.NewClientCertificateCredential("<tenant id>", "<client id>", certs, key, nil)
	if err != nil {
		log.Fatal(err)
	}
	c, err := exchange.NewClient(&exchange.Options{
		Credential:    cred,
		ReceivedDates: exchange.ReceivedDateAtImport, // exact MIME; received at the time of the import
	})
	if err != nil {
		log.Fatal(err)
	}
	_ = c.Mailbox("alice@contoso.com")
}
