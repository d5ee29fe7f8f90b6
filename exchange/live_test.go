package exchange_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	msgraphsdk "github.com/microsoftgraph/msgraph-sdk-go"
	"github.com/microsoftgraph/msgraph-sdk-go/users"

	"github.com/mailferry/mailferry/exchange"
	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

// liveVars are the environment variables of the live-tenant run.
var liveVars = []string{
	"MAILFERRY_LIVE_TENANT_ID", "MAILFERRY_LIVE_CLIENT_ID",
	"MAILFERRY_LIVE_CLIENT_SECRET", "MAILFERRY_LIVE_MAILBOX",
}

// TestLiveTenant runs migratetest.TestSink against a real Exchange Online
// mailbox when the four MAILFERRY_LIVE_* variables are set: the tenant id,
// the app registration's client id and secret (application permissions
// Mail.ReadWrite and Mail-Advanced.ReadWrite.All, admin consent) and the
// mailbox's address. It works inside one new top-level folder,
// "mailferry-live-<time>-<random>", and deletes it permanently at the end:
// folders that TestSink asks for at the top of the mailbox are created
// under it, and folders with a role (Inbox, Sent, ...) are ordinary
// folders named after the role there, so that the mailbox's own Inbox and
// Drafts are never written to. Items are read back through Graph: GET
// message (flags, dates, draft state, the watermark property by $expand)
// and GET .../$value (the MIME).
func TestLiveTenant(t *testing.T) {
	env := map[string]string{}
	for _, v := range liveVars {
		if env[v] = os.Getenv(v); env[v] == "" {
			t.Skipf("live tenant: set %s to run the sink conformance suite against a real mailbox", strings.Join(liveVars, ", "))
		}
	}
	cred, err := azidentity.NewClientSecretCredential(env["MAILFERRY_LIVE_TENANT_ID"], env["MAILFERRY_LIVE_CLIENT_ID"],
		env["MAILFERRY_LIVE_CLIENT_SECRET"], nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := exchange.NewClient(&exchange.Options{Credential: cred})
	if err != nil {
		t.Fatal(err)
	}
	graph, err := msgraphsdk.NewGraphServiceClientWithCredentials(cred, []string{"https://graph.microsoft.com/.default"})
	if err != nil {
		t.Fatal(err)
	}
	user := env["MAILFERRY_LIVE_MAILBOX"]
	ctx := t.Context()
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	rootName := fmt.Sprintf("mailferry-live-%s-%s", time.Now().UTC().Format("20060102T150405"), hex.EncodeToString(rnd[:]))
	root, err := c.Mailbox(user).EnsureFolder(ctx, "", rootName, migrate.RoleNone)
	if err != nil {
		t.Fatalf("create the run's folder: %v", err)
	}
	t.Cleanup(func() {
		// Not t.Context(): it is done before the cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// permanentDelete: not even Deleted Items keeps the run's folders
		// (https://learn.microsoft.com/graph/api/mailfolder-permanentdelete).
		if err := graph.Users().ByUserId(user).MailFolders().ByMailFolderId(root).PermanentDelete().Post(ctx, nil); err != nil {
			t.Errorf("could not delete the run's folder %q (delete it by hand): %v", rootName, err)
		}
	})
	t.Logf("live tenant: working in folder %q of %s", rootName, user)

	var n atomic.Int32
	newSink := func(t testing.TB) (migrate.Sink, migratetest.Inspector) {
		mb := c.Mailbox(user)
		sub, err := mb.EnsureFolder(ctx, root, fmt.Sprintf("run-%d", n.Add(1)), migrate.RoleNone)
		if err != nil {
			t.Fatal(err)
		}
		return liveSink{Mailbox: mb, root: sub}, liveInspector{graph: graph, user: user}
	}
	migratetest.TestSink(t, newSink,
		migratetest.ReceivedDateNotKept("importMime documents no way to set receivedDateTime (exchange.ReceivedDateAtImport)"))
}

// liveSink confines a Mailbox to one folder: the top of the mailbox is
// root, and role folders are ordinary folders named after their role.
type liveSink struct {
	*exchange.Mailbox
	root string
}

func (s liveSink) EnsureFolder(ctx context.Context, parentID, name string, role migrate.Role) (string, error) {
	if parentID == "" {
		parentID = s.root
	}
	if role != migrate.RoleNone {
		name = fmt.Sprintf("%s (role %s)", name, role)
	}
	return s.Mailbox.EnsureFolder(ctx, parentID, name, migrate.RoleNone)
}

// liveInspector reads items back through Graph.
type liveInspector struct {
	graph *msgraphsdk.GraphServiceClient
	user  string
}

func (i liveInspector) Item(ctx context.Context, itemID string) (migratetest.StoredItem, error) {
	msg := i.graph.Users().ByUserId(i.user).Messages().ByMessageId(itemID)
	m, err := msg.Get(ctx, &users.ItemMessagesMessageItemRequestBuilderGetRequestConfiguration{
		QueryParameters: &users.ItemMessagesMessageItemRequestBuilderGetQueryParameters{
			Select: []string{"id", "parentFolderId", "isRead", "flag", "categories", "receivedDateTime", "isDraft", "internetMessageId"},
			Expand: []string{"singleValueExtendedProperties($filter=id eq '" + exchange.WatermarkProperty +
				"' or id eq '" + exchange.LastVerbProperty + "')"},
		},
	})
	if err != nil {
		return migratetest.StoredItem{}, fmt.Errorf("get message %s: %w", itemID, err)
	}
	mime, err := msg.Content().Get(ctx, nil)
	if err != nil {
		return migratetest.StoredItem{}, fmt.Errorf("get the MIME of %s: %w", itemID, err)
	}
	it := migratetest.StoredItem{ID: itemID, MIME: mime}
	if p := m.GetParentFolderId(); p != nil {
		it.FolderID = *p
	}
	if r := m.GetIsRead(); r != nil && *r {
		it.Flags = append(it.Flags, migrate.FlagSeen)
	}
	if f := m.GetFlag(); f != nil && f.GetFlagStatus() != nil && f.GetFlagStatus().String() == "flagged" {
		it.Flags = append(it.Flags, migrate.FlagFlagged)
	}
	for _, c := range m.GetCategories() {
		it.Flags = append(it.Flags, migrate.Flag(c))
	}
	if r := m.GetReceivedDateTime(); r != nil {
		it.Received = *r
	}
	if d := m.GetIsDraft(); d != nil {
		it.Draft = *d
	}
	if id := m.GetInternetMessageId(); id != nil {
		it.MessageID = *id
	}
	for _, p := range m.GetSingleValueExtendedProperties() {
		switch {
		case p.GetId() == nil || p.GetValue() == nil:
		case strings.EqualFold(*p.GetId(), exchange.WatermarkProperty):
			it.Watermark = *p.GetValue()
		case strings.EqualFold(*p.GetId(), exchange.LastVerbProperty) && *p.GetValue() != "0":
			it.Flags = append(it.Flags, migrate.FlagAnswered)
		}
	}
	return it, nil
}
