// Package migrate moves mailboxes from a Source (an IMAP server, say) to a
// Sink (an Exchange Online mailbox, say) and reports what it did.
//
// The package holds the contracts and the Engine that drives them; it imports
// no backend. Backends live in their own packages (imapsrc, exchange) and
// assert their conformance at compile time:
//
//	var _ migrate.Source = (*imapsrc.Source)(nil)
//
// The flow of one mailbox:
//
//	Source.Folders ─► FolderMapper ─► Sink.EnsureFolder (parents first, cached)
//	per folder:
//	  Source.List (metadata only) ─► State (already copied?) ─► filters ─► Deduper
//	  ─► Source.Fetch (streamed bodies) ─► Limiter ─► Sink.Put ─► State.Commit
//	  flags changed since the last pass ─► FlagSetter.SetFlags (if the sink can)
//	Report (+ Events all along)
//
// A source message is identified by its SourceID: folder name, UIDVALIDITY
// and UID. The State records which identities were committed; a sink that
// implements WatermarkFinder stamps every item with its SourceID so that a
// crash between Put and Commit is repaired on the next run instead of
// producing a duplicate.
//
// Errors are classified with sentinel kinds matched by errors.Is: ErrItem
// (skip that message and report it), ErrTransient (the backend retries; the
// engine treats an exhausted retry as an item failure), ErrMailbox (stop
// this mailbox; the batch goes on).
package migrate
