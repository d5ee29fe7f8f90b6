package migrate_test

import (
	"testing"

	"github.com/mailferry/mailferry/migrate"
)

func TestMemoryState(t *testing.T) {
	ctx := t.Context()
	st := migrate.NewMemoryState()
	id := func(uid uint32) migrate.SourceID { return migrate.SourceID{Folder: "INBOX", UIDValidity: 7, UID: uid} }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	fs, err := st.Load(ctx, "a", "INBOX")
	must(err)
	if fs.UIDValidity != 0 || fs.ModSeq != 0 || fs.Records == nil || len(fs.Records) != 0 {
		t.Fatalf("empty state: %+v", fs)
	}
	must(st.Begin(ctx, "a", id(1)))
	must(st.Commit(ctx, "a", id(1), "item-1", []migrate.Flag{migrate.FlagSeen}))
	must(st.Begin(ctx, "a", id(2)))
	must(st.Begin(ctx, "a", id(1))) // leaves the commit as it is
	must(st.SetModSeq(ctx, "a", "INBOX", 7, 42))
	if err := st.Commit(ctx, "a", id(3), "", nil); err == nil {
		t.Error("Commit without an item id succeeded")
	}
	fs, err = st.Load(ctx, "a", "INBOX")
	must(err)
	if fs.UIDValidity != 7 || fs.ModSeq != 42 || len(fs.Records) != 2 {
		t.Fatalf("loaded %+v", fs)
	}
	if r := fs.Records[1]; r.UID != 1 || r.ItemID != "item-1" || !r.Committed() || len(r.Flags) != 1 {
		t.Errorf("record 1: %+v", r)
	}
	if r := fs.Records[2]; r.UID != 2 || r.Committed() {
		t.Errorf("record 2 should be begun only: %+v", r)
	}
	// Load returns a copy.
	delete(fs.Records, 1)
	if again, _ := st.Load(ctx, "a", "INBOX"); len(again.Records) != 2 {
		t.Errorf("changing a loaded FolderState changed the State: %+v", again)
	}
	// Other mailboxes and folders are apart.
	if other, _ := st.Load(ctx, "b", "INBOX"); len(other.Records) != 0 {
		t.Errorf("mailbox b: %+v", other)
	}
	// A new UIDVALIDITY starts afresh.
	must(st.Begin(ctx, "a", migrate.SourceID{Folder: "INBOX", UIDValidity: 8, UID: 1}))
	fs, _ = st.Load(ctx, "a", "INBOX")
	if fs.UIDValidity != 8 || fs.ModSeq != 0 || len(fs.Records) != 1 || fs.Records[1].Committed() {
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
