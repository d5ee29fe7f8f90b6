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
	// ErrItem; a full or missing mailbox one matching ErrMailbox. When
	// reading m.Body fails (a source connection that dropped mid-body),
	// Put returns an error and stores nothing: the Engine puts the message
	// again when the source delivers it again.
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
// Engine uses it as the second way to repair an uncommitted copy. Since
// several source messages may share a Message-ID, the Engine adopts a
// found item only when nothing else claims it: it carries no watermark
// of another source message, and the State records it for no other UID
// of the folder. Without such an item, the message is copied again.
type MessageIDFinder interface {
	// FindMessageID returns the items in folderID whose Message-ID header
	// is messageID, each with the watermark it carries. Items that are not
	// complete (a Put still building them, or one that stopped halfway
	// and left them half-built) are left out: the Engine must never adopt
	// them.
	FindMessageID(ctx context.Context, folderID, messageID string) ([]FoundItem, error)
}

// FoundItem is an item that a MessageIDFinder found.
type FoundItem struct {
	// ItemID is the item's id in the sink.
	ItemID string
	// Watermark is the SourceID the item is stamped with, or the zero
	// SourceID when it carries none (a Put stopped before stamping it, the
	// sink does not stamp, or something other than the Engine stored it).
	// A sink that stamps items must report the stamp here.
	Watermark SourceID
}

// A WatermarkStamper is a Sink that can stamp an item it already holds
// with a SourceID, after the fact. When a repair adopts an item found by
// Message-ID that carries no watermark (a Put that stored the item and
// stopped before stamping it), the Engine stamps it before recording it,
// so that a later run whose State is lost finds it by its watermark
// (WatermarkFinder, WatermarkLister) instead of copying it again. An item
// the Engine cannot stamp stays begun in the State and is reported as
// failed (ActionStamp), so that the next run tries again; it is not
// copied twice. Without a WatermarkStamper such items are adopted as they
// are.
type WatermarkStamper interface {
	// StampWatermark stamps the item itemID with id, replacing any stamp
	// it carries.
	StampWatermark(ctx context.Context, itemID string, id SourceID) error
}

// A WatermarkLister is a Sink that can list, in one pass over a folder,
// the watermarks of the items it holds (a request per page of items for
// Exchange, rather than one per message). Before it copies into a target
// folder for which the State records nothing (a first run, or a rerun
// whose State was lost or deleted), the Engine asks it what the folder
// already holds, and adopts every complete item stamped with the SourceID
// of a message the source still lists under the folder's current
// UIDVALIDITY: it records the item in the State (its flags unknown, so
// the pass then sets the source's flags on it once) and does not copy the
// message again. Items stamped only under another UIDVALIDITY of the
// folder stop the folder, as a State recording them would (see
// ErrUIDValidityChanged). Without a WatermarkLister, a run without State
// copies every message again.
type WatermarkLister interface {
	// ListWatermarks calls fn with the watermark and the item id of every
	// complete item of folderID stamped with a watermark, whatever source
	// folder or UIDVALIDITY it names, in any order. Items without a
	// watermark, and items not complete (see MessageIDFinder), are left
	// out. If fn returns an error, ListWatermarks stops and returns it.
	ListWatermarks(ctx context.Context, folderID string, fn func(id SourceID, itemID string) error) error
}

// An ItemLister is a Sink that can list, in one pass over a folder, every
// complete item it holds: with its watermark, or, when it carries none,
// with its Message-ID. The Engine prefers it to a WatermarkLister (it
// does all a WatermarkLister does, in the same pass) and also adopts, for
// a listed source message that no watermark accounts for, an item without
// a watermark that has the message's Message-ID: one item per message, in
// listing order. It stamps the item (WatermarkStamper), records it and
// counts it in FolderReport.FoundOnTarget. These are items a Put stored
// but did not live to stamp (a run killed between the two, whose State
// was then lost), or copies of the same mail made by other means (another
// migration tool, mail delivered to both systems), which a migration must
// not duplicate either. Should the stamp fail, the message stays begun in
// the State and the next run repairs it. Without an ItemLister, a run
// without State copies such messages again.
type ItemLister interface {
	// ListItems calls fn with every complete item of folderID, in any
	// order. Items not complete (see MessageIDFinder) are left out. If fn
	// returns an error, ListItems stops and returns it.
	ListItems(ctx context.Context, folderID string, fn func(ListedItem) error) error
}

// ListedItem is an item that an ItemLister listed.
type ListedItem struct {
	// ItemID is the item's id in the sink.
	ItemID string
	// Watermark is the SourceID the item is stamped with, or the zero
	// SourceID when it carries none.
	Watermark SourceID
	// MessageID is the item's Message-ID, "" when it has none; it matters
	// only for items without a watermark.
	MessageID string
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
