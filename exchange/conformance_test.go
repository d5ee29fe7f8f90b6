package exchange_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/mailferry/mailferry/exchange"
	"github.com/mailferry/mailferry/exchange/exchangetest"
	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

// inspector reads items back from the emulator for migratetest.TestSink:
// isRead is \Seen, flagStatus "flagged" is \Flagged, a last verb
// (PidTagLastVerbExecuted) is \Answered, categories are keywords.
type inspector struct {
	srv  *exchangetest.Server
	user string
}

func (i inspector) Item(_ context.Context, itemID string) (migratetest.StoredItem, error) {
	m, ok := i.srv.Message(i.user, itemID)
	if !ok {
		return migratetest.StoredItem{}, fmt.Errorf("no item %q in %s's mailbox", itemID, i.user)
	}
	var flags []migrate.Flag
	if m.IsRead {
		flags = append(flags, migrate.FlagSeen)
	}
	if m.FlagStatus == "flagged" {
		flags = append(flags, migrate.FlagFlagged)
	}
	if m.LastVerbExecuted != 0 {
		flags = append(flags, migrate.FlagAnswered)
	}
	for _, c := range m.Categories {
		flags = append(flags, migrate.Flag(c))
	}
	return migratetest.StoredItem{
		ID: m.ID, FolderID: m.FolderID, MIME: m.MIME, Flags: flags,
		Received: m.ReceivedDateTime, Draft: m.IsDraft,
		Watermark: m.ExtendedProperties[exchange.WatermarkProperty], MessageID: m.InternetMessageID,
	}, nil
}

func newEmulatorSink(t testing.TB) (migrate.Sink, migratetest.Inspector) {
	const user = "conformance@contoso.com"
	srv := exchangetest.NewServer(&exchangetest.Options{Token: "conformance-token"})
	t.Cleanup(srv.Close)
	srv.AddMailbox(user)
	c, err := exchange.NewClient(&exchange.Options{
		Credential: staticCredential{"conformance-token"},
		BaseURL:    srv.URL(),
		Transport:  srv.Client().Transport,
		Budget:     &exchange.Budget{}, // the emulator has no budgets here
	})
	if err != nil {
		t.Fatal(err)
	}
	return c.Mailbox(user), inspector{srv, user}
}

// TestConformance runs migratetest.TestSink against the emulator, through
// the real msgraph-sdk-go client. The received date is not checked:
// importMime takes none and stamps the import time
// (https://learn.microsoft.com/graph/api/mailfolder-importmime?view=graph-rest-beta);
// carrying INTERNALDATE is the subject of the next sink issue.
func TestConformance(t *testing.T) {
	migratetest.TestSink(t, newEmulatorSink,
		migratetest.ReceivedDateNotKept("importMime documents no way to set receivedDateTime"))
}
