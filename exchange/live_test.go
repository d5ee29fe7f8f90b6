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
//
// It first runs the received-date probe (Mailbox.ProbeReceivedDates: a
// scratch folder at the top of the mailbox, deleted at once) and logs
// which behaviour the tenant has: whether a PATCH of
// PidTagMessageDeliveryTime after importMime sets receivedDateTime. On a
// tenant that honours it, the suite runs under the default policy, which
// then imports every message byte for byte, and a delivered message's
// received date is checked as well; on one that does not, it runs under
// ReceivedDateAtImport, since the default policy would rebuild messages
// and the suite wants the MIME byte for byte.
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
	honoured, err := c.Mailbox(user).ProbeReceivedDates(ctx)
	switch {
	case err != nil:
		t.Errorf("live tenant: the received-date probe failed: %v", err)
	case honoured:
		t.Logf("live tenant: Exchange honours PidTagMessageDeliveryTime set by the PATCH after importMime: " +
			"every message up to 3 MB keeps its exact MIME and its received date")
	default:
		t.Logf("live tenant: Exchange does not honour PidTagMessageDeliveryTime set by the PATCH after importMime: " +
			"the default policy keeps received dates by rebuilding messages (ReceivedDateFromSource)")
	}
	if !honoured {
		// The default policy would rebuild messages: TestSink wants them
		// byte for byte.
		if c, err = exchange.NewClient(&exchange.Options{Credential: cred, ReceivedDates: exchange.ReceivedDateAtImport}); err != nil {
			t.Fatal(err)
		}
	}
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
	if !honoured {
		migratetest.TestSink(t, newSink,
			migratetest.ReceivedDateNotKept("the tenant does not honour PidTagMessageDeliveryTime after importMime (exchange.ReceivedDateAtImport)"))
		return
	}
	migratetest.TestSink(t, newSink,
		migratetest.ReceivedDateNotKept("a draft is created at the time of the Put; the received-date subtest checks delivered messages"))
	t.Run("received-date", func(t *testing.T) {
		sink, insp := newSink(t)
		raw := "From: Bob <bob@example.org>\r\nTo: <" + user + ">\r\nSubject: mailferry live received date\r\n" +
			"Date: Mon, 04 Mar 2019 05:06:07 +0000\r\nMessage-ID: <live-date-" + hex.EncodeToString(rnd[:]) + "@mailferry.test>\r\n" +
			"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nReceived long ago.\r\n"
		internal := time.Date(2019, 3, 4, 5, 6, 9, 0, time.UTC)
		root := sink.(liveSink).root
		id, err := sink.Put(ctx, root, &migrate.Message{
			ID:          migrate.SourceID{Folder: "INBOX", UIDValidity: 1, UID: 1},
			MessageInfo: migrate.MessageInfo{UID: 1, InternalDate: internal, Size: int64(len(raw))},
			Body:        strings.NewReader(raw),
		})
		if err != nil {
			t.Fatal(err)
		}
		it, err := insp.Item(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if string(it.MIME) != raw || !it.Received.Equal(internal) {
			t.Errorf("MIME kept %v, received %v; want the MIME and %v", string(it.MIME) == raw, it.Received, internal)
		}
	})
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
