package targetcheck

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/mailferry/mailferry/exchange"
	"github.com/mailferry/mailferry/exchange/exchangetest"
	"github.com/mailferry/mailferry/migrate"
)

// recorder is a testing.TB that counts the errors a check reports.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

const user = "alice@contoso.com"

// create stores a message in user's inbox through Graph's JSON create,
// with the watermark wm (none if "") and a file attachment big-1.bin of
// payload (none if nil).
func create(t *testing.T, g *exchangetest.Server, messageID, wm string, payload []byte) {
	t.Helper()
	body := map[string]any{"subject": messageID, "internetMessageId": messageID,
		"body": map[string]string{"contentType": "text", "content": "hi"}}
	if wm != "" {
		body["singleValueExtendedProperties"] = []map[string]string{{"id": exchange.WatermarkProperty, "value": wm}}
	}
	if payload != nil {
		body["attachments"] = []map[string]any{{"@odata.type": "#microsoft.graph.fileAttachment", "name": "big-1.bin",
			"contentBytes": base64.StdEncoding.EncodeToString(payload)}}
	}
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, g.URL()+"/v1.0/users/"+user+"/mailFolders/inbox/messages", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer t")
	req.Header.Set("Content-Type", "application/json")
	resp, err := g.Client().Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create %s: %v %v", messageID, resp, err)
	}
	resp.Body.Close()
}

// TestCopies: two items with one watermark, and a large attachment that
// is not the one sent, are each reported; an item without a watermark
// is left to the caller.
func TestCopies(t *testing.T) {
	g := exchangetest.NewServer(nil)
	defer g.Close()
	g.AddMailbox(user)
	payload := []byte("the large attachment")
	create(t, g, "<a@x>", "1/7/INBOX", payload)
	create(t, g, "<b@x>", "1/8/INBOX", nil)
	create(t, g, "<c@x>", "", nil)
	ok := &recorder{TB: t}
	Copies(ok, g, user, map[string][]byte{"<a@x>": payload})
	if len(ok.errors) != 0 {
		t.Errorf("one copy each: %q", ok.errors)
	}

	create(t, g, "<b2@x>", "1/8/INBOX", nil)
	bad := &recorder{TB: t}
	Copies(bad, g, user, map[string][]byte{"<a@x>": []byte("another attachment")})
	if len(bad.errors) != 2 {
		t.Errorf("a second copy of 1/8/INBOX and a wrong attachment: %d errors %q, want 2", len(bad.errors), bad.errors)
	}
}

// TestComplete: a report is complete only with every mailbox completed,
// no folder error, no problem and nothing failed or degraded.
func TestComplete(t *testing.T) {
	good := &migrate.Report{Mailboxes: []*migrate.MailboxReport{{Mailbox: "a", Status: migrate.StatusCompleted,
		Folders: []*migrate.FolderReport{{Source: "INBOX", Copied: 3}}}}}
	r := &recorder{TB: t}
	if tot := Complete(r, good); len(r.errors) != 0 || tot.Copied != 3 {
		t.Errorf("a complete report: %q, totals %+v", r.errors, tot)
	}
	for name, mb := range map[string]*migrate.MailboxReport{
		"failed":       {Mailbox: "a", Status: migrate.StatusFailed, Error: "stopped"},
		"folder error": {Mailbox: "a", Status: migrate.StatusCompleted, Folders: []*migrate.FolderReport{{Source: "INBOX", Error: "gone"}}},
		"problem":      {Mailbox: "a", Status: migrate.StatusCompleted, Problems: []migrate.Problem{{Folder: "INBOX", UID: 1}}},
		"degraded":     {Mailbox: "a", Status: migrate.StatusCompleted, Folders: []*migrate.FolderReport{{Source: "INBOX", Degraded: 1}}},
	} {
		r := &recorder{TB: t}
		Complete(r, &migrate.Report{Mailboxes: []*migrate.MailboxReport{mb}})
		if len(r.errors) == 0 {
			t.Errorf("%s: not reported", name)
		}
	}
}
