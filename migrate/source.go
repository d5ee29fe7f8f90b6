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
