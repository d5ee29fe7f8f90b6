package migrate

import "context"

// A Source reads one mailbox. Its methods are called by one goroutine at a
// time per Source unless the implementation documents otherwise.
type Source interface {
	// Folders lists every folder of the mailbox, parents before children.
	Folders(ctx context.Context) ([]Folder, error)

	// List calls fn with the metadata of every message in folder f, in
	// ascending UID order, without reading bodies. If fn returns an error,
	// List stops and returns it. If the folder's UIDVALIDITY is no longer
	// f.UIDValidity, List returns an error matching ErrUIDValidityChanged.
	List(ctx context.Context, f Folder, fn func(MessageInfo) error) error

	// Fetch calls fn with each message of folder f whose UID is in uids,
	// body streamed, in ascending UID order. Messages that no longer exist
	// are left out (the caller notices by their absence). It must not alter
	// the source (no \Seen is set). If fn returns an error, Fetch stops and
	// returns it.
	Fetch(ctx context.Context, f Folder, uids []uint32, fn func(*Message) error) error
}

// A ChangeLister is a Source that can list only what changed in a folder
// since an earlier pass (IMAP CONDSTORE/QRESYNC, RFC 7162). The Engine
// uses it for delta passes when the State holds the folder's ModSeq from
// a complete earlier pass; otherwise, or when ListChanges returns an error
// matching ErrNoModSeq, it falls back to a full List.
type ChangeLister interface {
	// ListChanges calls fn, in ascending UID order, with every message of
	// f added or whose flags changed since the mod-sequence since, and
	// returns nothing else: unchanged messages are not reported.
	ListChanges(ctx context.Context, f Folder, since uint64, fn func(MessageInfo) error) error
}

// A UIDLister is a Source that can list a folder's UIDs alone, far faster
// than List (IMAP's UID SEARCH ALL against a UID FETCH of every message's
// metadata). The Engine uses it for a folder's first pass, when nothing is
// recorded for the folder yet and no Filter is set: it fetches every UID
// and learns each message's metadata from Fetch, so the first pass reads
// the folder once instead of twice.
type UIDLister interface {
	// UIDs returns the UIDs of folder f in ascending order. Like List, it
	// fails with ErrUIDValidityChanged if f.UIDValidity is out of date.
	UIDs(ctx context.Context, f Folder) ([]uint32, error)
}
