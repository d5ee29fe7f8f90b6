package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailferry/mailferry/exchange/exchangetest"
	"github.com/mailferry/mailferry/imapsrc/imapsrctest"
	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

// TestBatch runs the command on a CSV of two mailboxes, against an
// in-memory IMAP server and the Graph emulator, twice.
func TestBatch(t *testing.T) {
	users := map[string]string{"alice": "alice-imap-secret", "bob": "bob-imap-secret"}
	imapSrv, err := imapsrctest.StartMemServer(users)
	if err != nil {
		t.Fatal(err)
	}
	defer imapSrv.Close()
	fx := migratetest.Sample()
	for u, pw := range users {
		if err := imapsrctest.Seed(imapSrv.Addr(), u, pw, fx); err != nil {
			t.Fatal(err)
		}
	}
	graph := exchangetest.NewServer(nil)
	defer graph.Close()
	graph.AddMailbox("alice@contoso.com")
	graph.AddMailbox("bob@contoso.com")

	dir := t.TempDir()
	csvPath := filepath.Join(dir, "batch.csv")
	os.WriteFile(csvPath, []byte("EmailAddress,UserName,Password\n"+
		"alice@contoso.com,alice,alice-imap-secret\n"+
		"bob@contoso.com,bob,bob-imap-secret\n"), 0o600)
	args := []string{"-csv", csvPath, "-imap", imapSrv.Addr(), "-security", "plaintext", "-graph-url", graph.URL(),
		"-state", filepath.Join(dir, "journal"), "-report", filepath.Join(dir, "report.json"), "-report-csv", filepath.Join(dir, "report.csv")}
	env := func(k string) string {
		if k == "MAILFERRY_GRAPH_TOKEN" {
			return "graph-token-value"
		}
		return ""
	}
	var out, errs bytes.Buffer
	if code := run(context.Background(), args, &out, &errs, env); code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errs.String())
	}
	for _, box := range []string{"alice@contoso.com", "bob@contoso.com"} {
		for _, d := range graph.CheckFixture(box, fx) {
			t.Errorf("%s: %s", box, d)
		}
	}
	var rep migrate.Report
	b, _ := os.ReadFile(filepath.Join(dir, "report.json"))
	if err := json.Unmarshal(b, &rep); err != nil || len(rep.Mailboxes) != 2 || rep.Totals().Copied != 2*fx.Count() {
		t.Errorf("report.json: %v, %+v", err, rep.Totals())
	}
	if csv, _ := os.ReadFile(filepath.Join(dir, "report.csv")); !strings.Contains(string(csv), "bob@contoso.com,completed,INBOX,Inbox,4,4,") {
		t.Errorf("report.csv:\n%s", csv)
	}
	all := out.String() + errs.String()
	for _, secret := range []string{"alice-imap-secret", "bob-imap-secret", "graph-token-value"} {
		if strings.Contains(all, secret) {
			t.Errorf("output shows a secret %q", secret)
		}
	}

	// The second run is an incremental sync with nothing to do.
	out.Reset()
	if code := run(context.Background(), args, &out, &errs, env); code != 0 {
		t.Fatalf("second run: exit %d\n%s", code, out.String())
	}
	b, _ = os.ReadFile(filepath.Join(dir, "report.json"))
	rep = migrate.Report{}
	json.Unmarshal(b, &rep)
	if tot := rep.Totals(); tot.Copied != 0 || tot.AlreadyCopied != 2*fx.Count() {
		t.Errorf("second run: %+v", tot)
	}
}

func TestProbe(t *testing.T) {
	imapSrv, err := imapsrctest.StartMemServer(map[string]string{"alice": "alice-imap-secret"})
	if err != nil {
		t.Fatal(err)
	}
	defer imapSrv.Close()
	fx := migratetest.Sample()
	if err := imapsrctest.Seed(imapSrv.Addr(), "alice", "alice-imap-secret", fx); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	csvPath := filepath.Join(dir, "batch.csv")
	os.WriteFile(csvPath, []byte("EmailAddress,UserName,Password\n"+
		"alice@contoso.com,alice,alice-imap-secret\n"+
		"bob@contoso.com,bob,wrong-imap-secret\n"), 0o600)
	var out, errs bytes.Buffer
	code := run(context.Background(), []string{"-probe", "-csv", csvPath, "-imap", imapSrv.Addr(), "-security", "plaintext"}, &out, &errs, func(string) string { return "" })
	if code != 1 {
		t.Errorf("exit %d with a failing mailbox", code)
	}
	if !strings.Contains(out.String(), "alice@contoso.com: ok (plaintext, LOGIN): 10 folders, 15 messages") ||
		!strings.Contains(out.String(), "bob@contoso.com: FAILED") || strings.Contains(out.String()+errs.String(), "imap-secret") {
		t.Errorf("probe output:\n%s%s", out.String(), errs.String())
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	csvPath := filepath.Join(dir, "batch.csv")
	os.WriteFile(csvPath, []byte("EmailAddress,UserName,Password\nnot-an-address,alice,hunter2hunter2\n"), 0o600)
	var out, errs bytes.Buffer
	code := run(context.Background(), []string{"-csv", csvPath, "-imap", "127.0.0.1:1"}, &out, &errs, func(string) string { return "" })
	if code != 1 || !strings.Contains(errs.String(), "line 2") || strings.Contains(errs.String(), "hunter2") {
		t.Errorf("bad CSV: exit %d, stderr %q", code, errs.String())
	}
	errs.Reset()
	if code := run(context.Background(), []string{"-imap", "x:993"}, &out, &errs, func(string) string { return "" }); code != 2 {
		t.Errorf("missing -csv: exit %d", code)
	}
	os.WriteFile(csvPath, []byte("EmailAddress,UserName,Password\na@b.c,alice,pw\n"), 0o600)
	errs.Reset()
	code = run(context.Background(), []string{"-csv", csvPath, "-imap", "127.0.0.1:1"}, &out, &errs, func(string) string { return "" })
	if code != 1 || !strings.Contains(errs.String(), "MAILFERRY_GRAPH_TOKEN") {
		t.Errorf("no credentials: exit %d, stderr %q", code, errs.String())
	}
}
