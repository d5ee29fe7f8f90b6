package exchangetest

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

// CheckFixture takes an imported message by its bytes and a message
// created from JSON by its Message-ID, subject and received date.
func TestCheckFixture(t *testing.T) {
	date := time.Date(2019, 3, 4, 5, 6, 7, 0, time.UTC)
	imported := crlfMessage("<imported@x>", "Imported")
	rebuilt := crlfMessage("<rebuilt@x>", "Rebuilt")
	fx := &migratetest.Fixture{Folders: []migratetest.FixtureFolder{{Path: []string{"INBOX"}, Role: migrate.RoleInbox,
		Messages: []migratetest.FixtureMessage{
			{Raw: imported, InternalDate: date},
			{Raw: rebuilt, InternalDate: date, Flags: []migrate.Flag{migrate.FlagSeen}},
		}}}}

	s := newTestServer(t, nil)
	r := do(t, s, "POST", "/beta/users/"+alice+"/mailFolders/inbox/importMime",
		[]byte(base64.StdEncoding.EncodeToString(imported)), "text/plain")
	require.Equal(t, 201, r.status, string(r.raw))
	create := func(received time.Time, subject string) {
		r := doJSON(t, s, "POST", "/v1.0/users/"+alice+"/mailFolders/inbox/messages", map[string]any{
			"subject": subject, "internetMessageId": "<rebuilt@x>", "isRead": true,
			"body": map[string]any{"contentType": "text", "content": "hi"},
			"singleValueExtendedProperties": []map[string]string{
				{"id": "Integer 0x0E07", "value": "1"},
				{"id": "SystemTime 0x0E06", "value": received.Format(time.RFC3339)},
			}})
		require.Equal(t, 201, r.status, string(r.raw))
	}
	create(date, "Rebuilt")
	assert.Empty(t, s.CheckFixture(alice, fx))

	// The same, with the received date of the import time and another
	// subject: both are differences.
	s = newTestServer(t, nil)
	r = do(t, s, "POST", "/beta/users/"+alice+"/mailFolders/inbox/importMime",
		[]byte(base64.StdEncoding.EncodeToString(imported)), "text/plain")
	require.Equal(t, 201, r.status)
	create(time.Now().UTC().Truncate(time.Second), "Changed")
	diffs := s.CheckFixture(alice, fx)
	assert.Len(t, diffs, 2, "%q", diffs)
}

func crlfMessage(id, subject string) []byte {
	return []byte("From: a@example.org\r\nTo: b@example.org\r\nSubject: " + subject + "\r\nMessage-ID: " + id +
		"\r\nDate: Mon, 4 Mar 2019 05:06:07 +0000\r\n\r\nhi\r\n")
}
