package migrate_test

import (
	"context"
	"fmt"

	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

// Migrate one mailbox, here between the in-memory test backends; with
// imapsrc and exchange it is the same call.
func ExampleMailbox() {
	src := migratetest.NewSource(migratetest.Sample())
	dst := migratetest.NewSink()

	rep, err := migrate.Mailbox(context.Background(), "alice@example.com", src, dst)
	if err != nil {
		fmt.Println(err)
		return
	}
	t := rep.Totals()
	fmt.Println(rep.Status, t.Copied, "messages copied")
	// Output: completed 15 messages copied
}

// A batch with a State, progress events and a bad-item limit; run it
// again and only what is new is copied.
func ExampleEngine_Run() {
	state := migrate.NewMemoryState() // boltstate.Open(path, nil) keeps it across processes
	eng := migrate.NewEngine(&migrate.Options{
		MaxMailboxes: 8,
		State:        state,
		BadItemLimit: 10,
		OnEvent: func(e migrate.Event) {
			if e.Kind == migrate.EventFolderDone && e.Count > 0 {
				fmt.Printf("%s: %s -> %s, %d copied\n", e.Mailbox, e.Folder, e.Target, e.Count)
			}
		},
	})
	src := migratetest.NewSource(migratetest.Sample())
	dst := migratetest.NewSink()
	job := migrate.Job{Mailbox: "alice", Source: src, Sink: dst}
	eng.Run(context.Background(), job)
	rep := eng.Run(context.Background(), job)
	fmt.Println("second run copied", rep.Totals().Copied)
	// Output:
	// alice: INBOX -> Inbox, 4 copied
	// alice: Sent -> Sent Items, 2 copied
	// alice: Drafts -> Drafts, 1 copied
	// alice: Trash -> Deleted Items, 1 copied
	// alice: Junk -> Junk Email, 1 copied
	// alice: Archive -> Archive, 1 copied
	// alice: Projects -> Projects, 1 copied
	// alice: Projects/2024 -> Projects/2024, 2 copied
	// alice: Café -> Café, 1 copied
	// alice: Café/Réunions -> Café/Réunions, 1 copied
	// second run copied 0
}
