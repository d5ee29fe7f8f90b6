// Package mailferry moves mailboxes from IMAP servers into Exchange Online
// (Microsoft 365) through Microsoft Graph. It is an SDK: the work is done
// by importable packages, and this package only documents them.
//
//   - migrate: the contracts (Source, Sink, FolderMapper, Deduper, Limiter,
//     State, Event, Report) and the Engine that runs one mailbox or a batch:
//     folders mapped and created parents first, messages listed, what the
//     State committed skipped, bodies streamed, put, committed; flag changes
//     carried on later passes; a report at the end.
//   - migrate/migratetest: in-memory Source and Sink, a realistic sample
//     mailbox, and the TestSource/TestSink conformance suites any backend
//     can run.
//   - imapsrc: a migrate.Source over any IMAP server (go-imap v2).
//   - exchange: a migrate.Sink over Microsoft Graph (msgraph-sdk-go):
//     folders by well-known name or display name, messages imported as
//     delivered mail with importMime, read and flagged state carried.
//   - exchange/exchangetest: a Graph emulator with Exchange Online's
//     documented behaviour, for tests (yours too).
//   - csvbatch: Exchange's IMAP migration CSV (EmailAddress, UserName,
//     Password, UserRoot).
//
// examples/quickstart runs a whole migration on embedded servers;
// examples/imap2exchange is the command-line tool for real migrations.
//
// Migrating one mailbox takes five lines:
//
//	src := imapsrc.New(&imapsrc.Options{Addr: "imap.example.com:993", Username: "alice", Password: pw})
//	defer src.Close()
//	client, _ := exchange.NewClient(&exchange.Options{Credential: cred})
//	report, err := migrate.Mailbox(ctx, "alice@contoso.com", src, client.Mailbox("alice@contoso.com"))
package mailferry
