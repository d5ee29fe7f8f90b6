// Package migrate moves mailboxes from a [Source] (an IMAP server, say) to
// a [Sink] (an Exchange Online mailbox, say) and reports what it did.
//
// The package holds the contracts and the [Engine] that drives them; it
// imports no backend. Backends live in their own packages (imapsrc,
// exchange) and assert their conformance at compile time:
//
//	var _ migrate.Source = (*imapsrc.Source)(nil)
//
// # The flow of one mailbox
//
//	Source.Folders ─► FolderMapper ─► Sink.EnsureFolder (parents first, cached)
//	per folder, read one of three ways:
//	  first pass:  UIDLister.UIDs ─► Source.Fetch (metadata comes with each body)
//	  delta pass:  ChangeLister.ListChanges (or nothing, if HIGHESTMODSEQ has not moved)
//	  otherwise:   Source.List (metadata only)
//	  ─► State (already copied?) ─► Filter ─► Deduper
//	  ─► Source.Fetch (streamed bodies) ─► Limiter ─► State.Begin ─► Sink.Put ─► State.Commit
//	  flags changed since the last pass ─► BatchFlagSetter / FlagSetter ─► State.Commit
//	Report (+ Events all along)
//
// A source message is identified by its [SourceID]: folder name,
// UIDVALIDITY and UID. The [State] records which identities were begun and
// committed, so that a rerun copies only what is new (an incremental
// sync).
//
// # Required and optional capabilities
//
// A backend must implement [Source] or [Sink]. Everything else is
// optional: the Engine finds it with a type assertion on the Source or
// Sink of the [Job], as database/sql finds a driver's optional interfaces,
// and does without it when it is missing:
//
//   - [UIDLister] (Source): a folder's first pass lists UIDs alone and
//     learns each message's metadata from Fetch, reading the folder once.
//     Without it, or when a [Filter] is set, the first pass calls
//     Source.List first.
//   - [ChangeLister] (Source): a later pass lists only what changed since
//     the last complete pass (IMAP CONDSTORE). Without it, or when it
//     returns an error matching [ErrNoModSeq], every later pass lists the
//     whole folder with Source.List and compares it with the State.
//   - [BatchFlagSetter] (Sink): flag changes found by a later pass are
//     carried in batches (Graph's $batch). Without it, the Engine uses
//     [FlagSetter] one item at a time.
//   - [FlagSetter] (Sink): flag changes are carried item by item. A sink
//     with neither keeps the flags each item had when it was copied: later
//     changes on the source are not carried, and the report does not list
//     them.
//   - [WatermarkFinder] (Sink): the sink stamps each item with its
//     SourceID and finds it again, so that a copy begun but never committed
//     (a crash between Put and Commit) is adopted instead of copied again.
//   - [MessageIDFinder] (Sink): the second way to find such a copy, by
//     Message-ID. An item found so is adopted only when nothing else
//     claims it (no other message's watermark on it, no other UID's
//     record in the State), and never while half-built. A sink with
//     neither gets such messages copied again.
//   - [WatermarkStamper] (Sink): an item adopted by Message-ID that carries
//     no watermark (a Put stopped between storing and stamping it) is
//     stamped before it is recorded, so that a later run that lost its
//     State finds it. Without it, such an item is adopted unstamped, and
//     a run without State would copy its message again.
//   - [WatermarkLister] (Sink): before copying into a target folder for
//     which the State records nothing (a first run, or a rerun whose State
//     was lost or deleted), the Engine lists the watermarks the folder
//     holds and adopts each item of a message the source still lists
//     under the folder's UIDVALIDITY: recorded, counted in
//     [FolderReport].FoundOnTarget, its flags set from the source once,
//     not copied again. Without it, such a run copies every message
//     again.
//   - [ItemLister] (Sink): preferred to a WatermarkLister, in the same
//     one pass, it also lists the items without a watermark with their
//     Message-ID; a listed message that no watermark accounts for adopts
//     (and stamps) such an item with its Message-ID: one a Put stored and
//     did not live to stamp before the State was lost, or a copy made by
//     other means. Without it, those are copied again.
//
// Backends report events of their own ([EventThrottled],
// [EventReconnected]) with [Notify] on the context the Engine passed to the
// call. The Engine gives each mailbox run its own observer ([WithObserver]),
// so events reach the run that caused them, even when several runs or
// Engines share one backend; it counts them into [MailboxReport].Throttled
// and Reconnects.
//
// # Errors
//
// Errors are classified with sentinel kinds matched by errors.Is:
// [ErrItem] (skip that message and report it), [ErrTransient] (the backend
// retries; the Engine treats an exhausted retry as an item failure),
// [ErrMailbox] (stop this mailbox; the batch goes on). Reports keep each
// error as a value (Err, not serialized) beside its text (Error or Reason,
// serialized), so that an embedding program can branch on the kind:
//
//	if errors.Is(report.Err, migrate.ErrMailbox) { ... }
//
// # Concurrency
//
// [Options].MaxMailboxes mailboxes run at once. Within a mailbox, one
// goroutine lists and fetches while up to [Options].MaxPutsPerMailbox
// Puts run at once, holding at most [Options].MaxBytesInFlightPerMailbox
// bytes of bodies. Limits across the package are named Max<What>[Per<Scope>].
package migrate
