package migrate

import "context"

// A Sink writes one mailbox. Its methods may be called from several
// goroutines at once: the Engine keeps up to Options.MaxPutsPerMailbox
// Puts in flight per mailbox. The optional capabilities a Sink may add are
// listed in the package documentation.
type Sink interface {
	// EnsureFolder returns the id of the folder named name under the folder
	// parentID ("" is the mailbox root), creating it if needed. With a role,
	// it returns the sink's own folder for that role (name then only serves
	// where the sink must create it). Calling it twice with the same
	// arguments returns the same id.
	EnsureFolder(ctx context.Context, parentID, name string, role Role) (string, error)

	// Put stores message m in folder folderID, made from the bytes read
	// from m.Body, with its flags, and returns the new item's id. A sink
	// keeps the message's bytes and its InternalDate (as received date) as
	// far as its target allows, and documents what it cannot keep: the
	// exchange sink, for one, keeps the exact bytes or the received date,
	// not always both. A message the sink refuses returns an error matching
	// ErrItem; a full or missing mailbox one matching ErrMailbox.
	Put(ctx context.Context, folderID string, m *Message) (string, error)
}

// A FlagSetter is a Sink that can change the flags of an item it holds; the
// Engine uses it to carry flag changes in delta passes. Without it, flag
// changes after the first copy are not carried, and nothing reports them.
// A change that SetFlags refuses is reported as a Problem with
// ActionSetFlags and tried again on the next pass.
type FlagSetter interface {
	SetFlags(ctx context.Context, itemID string, flags []Flag) error
}

// A WatermarkFinder is a Sink that stamps items with their SourceID and can
// find them by it. The Engine asks it about messages whose copy began but
// was never committed (a crash between Put and Commit), so it need not copy
// them again; a MessageIDFinder is asked next. A sink that is neither gets
// such messages copied again.
type WatermarkFinder interface {
	// FindWatermark returns the id of the item in folderID stamped with id,
	// or "" and no error when there is none.
	FindWatermark(ctx context.Context, folderID string, id SourceID) (string, error)
}

// A MessageIDFinder is a Sink that can look items up by Message-ID; the
// Engine uses it as the second way to repair an uncommitted copy.
type MessageIDFinder interface {
	// FindMessageID returns the ids of the items in folderID whose
	// Message-ID header is messageID.
	FindMessageID(ctx context.Context, folderID, messageID string) ([]string, error)
}

// FlagChange is one item's new flags, for BatchFlagSetter.
type FlagChange struct {
	ItemID string
	Flags  []Flag
}

// A BatchFlagSetter is a FlagSetter that can change many items in fewer
// requests (Graph's $batch). The Engine prefers it for delta passes.
type BatchFlagSetter interface {
	// SetFlagsBatch applies the changes and returns one error per change,
	// in order (nil for success).
	SetFlagsBatch(ctx context.Context, changes []FlagChange) []error
}
