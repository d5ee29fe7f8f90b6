package migrate_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/mailferry/mailferry/migrate"
)

func TestFileStateSurvivesReopenAndTornLine(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sub", "state.jsonl")
	st, err := migrate.OpenFileState(path)
	if err != nil {
		t.Fatal(err)
	}
	id := func(uid uint32) migrate.SourceID { return migrate.SourceID{Folder: "INBOX", UIDValidity: 7, UID: uid} }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.Begin(ctx, "a", id(1)))
	must(st.Commit(ctx, "a", id(1), "item-1", []migrate.Flag{migrate.FlagSeen}))
	must(st.Begin(ctx, "a", id(2)))
	must(st.Close())
	// A crash in the middle of a write leaves half a line.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"op":"commit","mailbox":"a","fol`)
	f.Close()

	st, err = migrate.OpenFileState(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fs, err := st.Load(ctx, "a", "INBOX")
	must(err)
	if fs.UIDValidity != 7 || len(fs.Records) != 2 {
		t.Fatalf("reloaded %+v", fs)
	}
	if r := fs.Records[1]; r.ItemID != "item-1" || !r.Committed() || len(r.Flags) != 1 {
		t.Errorf("record 1: %+v", r)
	}
	if r := fs.Records[2]; r.Committed() {
		t.Errorf("record 2 should be begun only: %+v", r)
	}
	// A new UIDVALIDITY starts afresh.
	must(st.Begin(ctx, "a", migrate.SourceID{Folder: "INBOX", UIDValidity: 8, UID: 1}))
	fs, _ = st.Load(ctx, "a", "INBOX")
	if fs.UIDValidity != 8 || len(fs.Records) != 1 {
		t.Errorf("after a new UIDVALIDITY: %+v", fs)
	}
}

func TestSourceIDRoundTrip(t *testing.T) {
	id := migrate.SourceID{Folder: "Café/2024 3/4", UIDValidity: 42, UID: 9}
	got, err := migrate.ParseSourceID(id.String())
	if err != nil || got != id {
		t.Errorf("ParseSourceID(%q) = %+v, %v", id.String(), got, err)
	}
	if _, err := migrate.ParseSourceID("nonsense"); err == nil {
		t.Error("ParseSourceID accepted nonsense")
	}
}
