// Command quickstart runs a whole migration on embedded servers, with
// nothing to set up: an IMAP server seeded with a realistic mailbox
// (folders with special uses, nested and non-ASCII folders, read, flagged
// and answered messages, a draft, an attachment, non-ASCII headers), and
// an emulated Exchange Online mailbox behind a Microsoft Graph emulator.
// It migrates the mailbox with the same packages a real migration uses,
// prints a report, then checks every message that arrived against its
// source: byte for byte where it was imported, its subject and received
// date where Exchange rebuilt it (the emulator, like a cautious reading of
// Exchange Online, does not let an import keep its received date, so the
// default policy rebuilds messages to keep their dates; see the report's
// note). It exits non-zero if anything was lost.
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/mailferry/mailferry/exchange"
	"github.com/mailferry/mailferry/exchange/exchangetest"
	"github.com/mailferry/mailferry/imapsrc"
	"github.com/mailferry/mailferry/imapsrc/imapsrctest"
	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

const (
	imapUser     = "alice"
	imapPassword = "quickstart-imap-password"
	target       = "alice@contoso.com"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The source: an IMAP server on a loopback port, seeded over IMAP.
	fx := migratetest.Sample()
	imapSrv, err := imapsrctest.StartMemServer(map[string]string{imapUser: imapPassword})
	if err != nil {
		return err
	}
	defer imapSrv.Close()
	if err := imapsrctest.Seed(imapSrv.Addr(), imapUser, imapPassword, fx); err != nil {
		return err
	}
	fmt.Printf("IMAP server      %s, mailbox %q: %d messages in %d folders\n", imapSrv.Addr(), imapUser, fx.Count(), len(fx.Folders))

	// The target: Exchange Online, emulated, reached through msgraph-sdk-go.
	graph := exchangetest.NewServer(nil)
	defer graph.Close()
	graph.AddMailbox(target)
	fmt.Printf("Graph emulator   %s, mailbox %q\n\n", graph.URL(), target)

	src := imapsrc.New(&imapsrc.Options{
		Addr:     imapSrv.Addr(),
		Security: imapsrc.Plaintext, // an embedded loopback server; real servers get TLS by default
		Username: imapUser,
		Password: imapPassword,
	})
	defer src.Close()
	client, err := exchange.NewClient(&exchange.Options{Credential: exchange.StaticToken("quickstart-token"), BaseURL: graph.URL()})
	if err != nil {
		return err
	}

	folders := 0
	eng := migrate.NewEngine(&migrate.Options{OnEvent: func(e migrate.Event) {
		if e.Kind == migrate.EventFolderCreated {
			folders++
		}
		progress(e)
	}})
	report := eng.Run(ctx, migrate.Job{Mailbox: target, Source: src, Sink: client.Mailbox(target)})

	fmt.Println()
	if err := report.WriteText(os.Stdout); err != nil {
		return err
	}
	t := report.Totals()
	elapsed := report.Finished.Sub(report.Started)
	fmt.Printf("\nCopied %d messages (%s) into %d folders in %s; %d skipped, %d failed.\n", t.Copied, migrate.FormatBytes(t.Bytes),
		folders, elapsed.Round(time.Millisecond), t.Filtered+t.Duplicates+t.Vanished, t.Failed)

	// Check every message in Exchange against its source.
	diffs := graph.CheckFixture(target, fx)
	for _, d := range diffs {
		fmt.Println("  MISMATCH:", d)
	}
	if len(diffs) > 0 || report.Lost() {
		return fmt.Errorf("%d differences between source and target: something was not migrated faithfully", len(diffs))
	}
	fmt.Println("Nothing lost: every message is in Exchange once, in its folder, with its read, flagged and draft state,")
	fmt.Println("byte-identical or, rebuilt by Exchange, with its subject and received date (see the note above).")
	return nil
}

// progress prints the Engine's events as they come.
func progress(e migrate.Event) {
	switch e.Kind {
	case migrate.EventFolderCreated:
		fmt.Printf("  folder ready    %s\n", e.Target)
	case migrate.EventFolderDone:
		if e.Err != nil {
			fmt.Printf("  folder failed   %s: %v\n", e.Folder, e.Err)
		} else {
			fmt.Printf("  folder copied   %-16s -> %-16s %d messages, %s\n", e.Folder, e.Target, e.Count, migrate.FormatBytes(e.Bytes))
		}
	case migrate.EventMessageFailed:
		fmt.Printf("  not copied      %s UID %d: %v\n", e.Folder, e.UID, e.Err)
	case migrate.EventMessageDegraded:
		fmt.Printf("  degraded        %s UID %d (original attached): %v\n", e.Folder, e.UID, e.Err)
	}
}
