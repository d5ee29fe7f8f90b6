package migrate_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailferry/mailferry/migrate"
)

// fullReport is a batch with every kind of row a report holds: a mailbox
// completed with errors (a folder copied with every counter set, a folder
// left out by the mapper, a folder that failed, and a problem of each
// action, plus notices), a mailbox that failed before it listed any
// folder, and a mailbox that completed.
func fullReport() *migrate.Report {
	at := func(sec int) time.Time { return time.Date(2024, 5, 1, 12, 0, sec, 0, time.UTC) }
	refused := migrate.ItemError(errors.New("ErrorMimeContentInvalid"))
	degraded := migrate.DegradedError(errors.New("multipart: NextPart: EOF"))
	flags := migrate.ItemError(errors.New("ErrorItemNotFound"))
	stamp := migrate.ItemError(errors.New("stamp refused"))
	gone := errors.New(`migrate: folder "Old": no such folder`)
	login := migrate.MailboxError(errors.New("login refused"))
	return &migrate.Report{Started: at(0), Finished: at(59), Mailboxes: []*migrate.MailboxReport{
		{
			Mailbox: "alice@example.com", Status: migrate.StatusCompletedWithErrors, Started: at(1), Finished: at(31),
			Folders: []*migrate.FolderReport{
				{Source: "INBOX", Target: "Inbox", Listed: 40, Copied: 11, Bytes: 3 << 20, AlreadyCopied: 12, Repaired: 2,
					FoundOnTarget: 3, Filtered: 4, Duplicates: 1, Degraded: 1, Failed: 2, FlagsFailed: 1, Vanished: 1,
					FlagsUpdated: 5, Pass: "full"},
				{Source: "Trash", Skipped: true},
				{Source: "Old", Target: "Old", Err: gone, Error: gone.Error()},
			},
			Problems: []migrate.Problem{
				{Folder: "INBOX", UID: 7, MessageID: "<seven@x>", Size: 2048, Action: migrate.ActionCopy, Err: refused, Reason: refused.Error()},
				{Folder: "INBOX", UID: 8, MessageID: "<eight@x>", Size: 1536, Action: migrate.ActionDegrade, Err: degraded, Reason: degraded.Error()},
				{Folder: "INBOX", UID: 9, Size: 100, Action: migrate.ActionSetFlags, Err: flags, Reason: flags.Error()},
				{Folder: "INBOX", UID: 10, MessageID: "<ten@x>", Size: 5 << 20, Action: migrate.ActionStamp, Err: stamp, Reason: stamp.Error()},
			},
			Reconnects: 2, Throttled: 3,
			Notices: []string{"received dates kept", "signed messages kept as MIME"},
		},
		{Mailbox: "bob@example.com", Status: migrate.StatusFailed, Err: login, Error: "migrate: list folders: login refused",
			Started: at(2), Finished: at(3)},
		{Mailbox: "carol@example.com", Status: migrate.StatusCompleted, Started: at(4), Finished: at(5),
			Folders: []*migrate.FolderReport{{Source: "INBOX", Target: "Inbox", Listed: 1, Copied: 1, Bytes: 10, Pass: "first"}}},
	}}
}

// The JSON report keeps every field but the error values, whose text
// (Error, Reason) it carries instead.
func TestReportWriteJSON(t *testing.T) {
	rep := fullReport()
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var got migrate.Report
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("the JSON report does not parse: %v\n%s", err, buf.String())
	}
	want := fullReport()
	for _, m := range want.Mailboxes { // what JSON does not carry
		m.Err = nil
		for _, f := range m.Folders {
			f.Err = nil
		}
		for i := range m.Problems {
			m.Problems[i].Err = nil
		}
	}
	if !reflect.DeepEqual(&got, want) {
		t.Errorf("round trip through JSON:\n got %+v\nwant %+v\n%s", got, want, buf.String())
	}
	// The texts survive, under their own names; no error value is written.
	var generic any
	if err := json.Unmarshal(buf.Bytes(), &generic); err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	collectKeys(generic, keys)
	for _, k := range []string{"Err", "err"} {
		if keys[k] {
			t.Errorf("the JSON report has a key %q:\n%s", k, buf.String())
		}
	}
	for _, k := range []string{"error", "reason", "notices", "skipped", "foundOnTarget", "flagsFailed"} {
		if !keys[k] {
			t.Errorf("the JSON report has no key %q:\n%s", k, buf.String())
		}
	}
}

func collectKeys(v any, keys map[string]bool) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			keys[k] = true
			collectKeys(e, keys)
		}
	case []any:
		for _, e := range v {
			collectKeys(e, keys)
		}
	}
}

// The CSV report has one row per folder of each mailbox, and one for a
// mailbox without folders, all as wide as the header; each count is in
// the column named after its FolderReport field.
func TestReportWriteCSV(t *testing.T) {
	rep := fullReport()
	var buf bytes.Buffer
	if err := rep.WriteCSV(&buf); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll() // fails on a row wider or narrower than the header
	if err != nil {
		t.Fatalf("the CSV report does not parse: %v\n%s", err, buf.String())
	}
	header, rows := rows[0], rows[1:]
	col := map[string]int{}
	for i, name := range header {
		col[name] = i
	}
	if len(col) != len(header) {
		t.Errorf("header %q repeats a column", header)
	}
	// Every count a FolderReport keeps has its column, under its name.
	counts := countFields()
	for _, name := range append([]string{"Mailbox", "Status", "SourceFolder", "TargetFolder", "Error"}, counts...) {
		if _, ok := col[name]; !ok {
			t.Errorf("no column %s in %q", name, header)
		}
	}

	var want []*migrate.FolderReport // the folder of each row, nil for a mailbox's own row
	var owner []*migrate.MailboxReport
	for _, m := range rep.Mailboxes {
		for _, f := range m.Folders {
			want, owner = append(want, f), append(owner, m)
		}
		if len(m.Folders) == 0 {
			want, owner = append(want, nil), append(owner, m)
		}
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d (one per folder, one per mailbox without folders):\n%s", len(rows), len(want), buf.String())
	}
	for i, row := range rows {
		m, f := owner[i], want[i]
		cell := func(name string) string { return row[col[name]] }
		if cell("Mailbox") != m.Mailbox || cell("Status") != string(m.Status) {
			t.Errorf("row %d: mailbox %q status %q, want %q %q", i, cell("Mailbox"), cell("Status"), m.Mailbox, m.Status)
		}
		if f == nil {
			// A mailbox that failed before it listed folders: its error,
			// and nothing else.
			if cell("Error") != m.Error {
				t.Errorf("row %d: error %q, want the mailbox's %q", i, cell("Error"), m.Error)
			}
			for _, name := range append([]string{"SourceFolder", "TargetFolder"}, counts...) {
				if cell(name) != "" {
					t.Errorf("row %d of a mailbox without folders: %s is %q", i, name, cell(name))
				}
			}
			continue
		}
		if cell("SourceFolder") != f.Source || cell("TargetFolder") != f.Target || cell("Error") != f.Error {
			t.Errorf("row %d: %q -> %q error %q, want %q -> %q error %q", i,
				cell("SourceFolder"), cell("TargetFolder"), cell("Error"), f.Source, f.Target, f.Error)
		}
		v := reflect.ValueOf(f).Elem()
		for _, name := range counts {
			if got, want := cell(name), strconv.FormatInt(v.FieldByName(name).Int(), 10); got != want {
				t.Errorf("row %d (%s): %s = %s, want %s", i, f.Source, name, got, want)
			}
		}
	}
}

// countFields returns the names of FolderReport's counters: its integer
// fields.
func countFields() []string {
	var names []string
	rt := reflect.TypeFor[migrate.FolderReport]()
	for i := range rt.NumField() {
		switch rt.Field(i).Type.Kind() {
		case reflect.Int, reflect.Int64:
			names = append(names, rt.Field(i).Name)
		}
	}
	return names
}

// The text report says, per mailbox, its status and totals, its error,
// its notices and what was found on the target; then a line per folder
// and a line per problem, each problem named by what went wrong.
func TestReportWriteText(t *testing.T) {
	rep := fullReport()
	var buf bytes.Buffer
	if err := rep.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	text := buf.String()
	lines := strings.Split(text, "\n")
	find := func(prefix string) string {
		t.Helper()
		for _, l := range lines {
			if strings.HasPrefix(strings.TrimSpace(l), prefix) {
				return strings.TrimSpace(l)
			}
		}
		t.Errorf("no line starts with %q:\n%s", prefix, text)
		return ""
	}

	alice := rep.Mailboxes[0]
	tot := alice.Totals()
	head := find("Mailbox alice@example.com:")
	for _, want := range []string{
		string(alice.Status),
		fmt.Sprintf("%d copied (%s)", tot.Copied, migrate.FormatBytes(tot.Bytes)),
		fmt.Sprintf("%d degraded", tot.Degraded),
		fmt.Sprintf("%d already there", tot.AlreadyCopied+tot.Repaired+tot.FoundOnTarget),
		fmt.Sprintf("%d failed", tot.Failed),
		alice.Finished.Sub(alice.Started).String(),
	} {
		if !strings.Contains(head, want) {
			t.Errorf("mailbox line %q lacks %q", head, want)
		}
	}
	for _, n := range alice.Notices {
		find("note: " + n)
	}
	if got := find("found on the target:"); !strings.Contains(got, strconv.Itoa(tot.FoundOnTarget)+" messages") {
		t.Errorf("found-on-target line %q, want %d messages", got, tot.FoundOnTarget)
	}

	// Folder rows: source, target, listed, copied, bytes (two words),
	// degraded, left out, failed, error.
	inbox := strings.Fields(find("INBOX "))
	f := alice.Folders[0]
	wantRow := []string{f.Source, f.Target, strconv.Itoa(f.Listed), strconv.Itoa(f.Copied)}
	wantRow = append(wantRow, strings.Fields(migrate.FormatBytes(f.Bytes))...)
	wantRow = append(wantRow, strconv.Itoa(f.Degraded),
		strconv.Itoa(f.AlreadyCopied+f.Repaired+f.FoundOnTarget+f.Filtered+f.Duplicates+f.Vanished),
		strconv.Itoa(f.Failed+f.FlagsFailed))
	if !reflect.DeepEqual(inbox, wantRow) {
		t.Errorf("INBOX row %q, want %q", inbox, wantRow)
	}
	if got := find("Trash "); !strings.Contains(got, "(not migrated)") {
		t.Errorf("a folder the mapper left out: %q", got)
	}
	if got := find("Old "); !strings.HasSuffix(got, alice.Folders[2].Error) {
		t.Errorf("a failed folder: %q, want its error %q", got, alice.Folders[2].Error)
	}

	for _, c := range []struct {
		what string
		p    migrate.Problem
	}{
		{"not copied", alice.Problems[0]},
		{"degraded", alice.Problems[1]},
		{"flags not carried", alice.Problems[2]},
		{"not stamped", alice.Problems[3]},
	} {
		line := find(fmt.Sprintf("%s: %s UID %d ", c.what, c.p.Folder, c.p.UID))
		for _, want := range []string{c.p.MessageID, "(" + migrate.FormatBytes(c.p.Size) + ")", c.p.Reason} {
			if !strings.Contains(line, want) {
				t.Errorf("problem line %q lacks %q", line, want)
			}
		}
	}

	bob := rep.Mailboxes[1]
	if got := find("Mailbox bob@example.com:"); !strings.Contains(got, string(migrate.StatusFailed)) {
		t.Errorf("failed mailbox line %q", got)
	}
	if got := find("error: "); got != "error: "+bob.Error {
		t.Errorf("mailbox error line %q, want %q", got, bob.Error)
	}
	// Only what happened is said: carol found nothing on the target and
	// had no notice.
	if n := strings.Count(text, "found on the target:"); n != 1 {
		t.Errorf("%d found-on-target lines, want alice's alone:\n%s", n, text)
	}
	if n := strings.Count(text, "note: "); n != len(alice.Notices) {
		t.Errorf("%d notes, want alice's %d:\n%s", n, len(alice.Notices), text)
	}
}

func TestFormatBytes(t *testing.T) {
	for _, c := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"},
		{1, "1 B"},
		{1023, "1023 B"},
		{1024, "1.0 KB"},
		{1536, "1.5 KB"},
		{3 << 19, "1.5 MB"},
		{150 << 20, "150.0 MB"},
		{1 << 30, "1.0 GB"},
		{1 << 40, "1.0 TB"},
		{5 << 50, "5.0 PB"},
		{1 << 60, "1.0 EB"},
		// Just below a unit, the value rounds up to it, never to "1024.0"
		// of the unit below.
		{1<<20 - 1, "1.0 MB"},
		{1<<30 - 1, "1.0 GB"},
		{1<<40 - 1<<20, "1.0 TB"},
		{1<<63 - 1, "8.0 EB"},
	} {
		if got := migrate.FormatBytes(c.n); got != c.want {
			t.Errorf("FormatBytes(%d) = %q, want %q", c.n, got, c.want)
		}
	}
	// From 1 KB up, the number shown is at least 1.0 and below 1024.
	for n := int64(1024); n > 0 && n < 1<<62; n = n*3 + 7 {
		num, unit, _ := strings.Cut(migrate.FormatBytes(n), " ")
		v, err := strconv.ParseFloat(num, 64)
		if err != nil || v < 1 || v >= 1024 || unit == "B" {
			t.Errorf("FormatBytes(%d) = %q", n, migrate.FormatBytes(n))
		}
	}
}
