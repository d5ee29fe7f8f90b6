package migrate

import "log/slog"

// Options configures an Engine. A nil *Options means every default.
type Options struct {
	// Mailboxes is how many mailboxes are migrated at once. Default 4.
	Mailboxes int
	// Mapper decides where source folders go. Default DefaultMapper.
	Mapper FolderMapper
	// State remembers what was copied across runs. Default: a new
	// MemoryState, which remembers only within this Engine.
	State State
	// Deduper skips copies of the same message within a target folder.
	// Default nil: no deduplication beyond the State's.
	Deduper Deduper
	// Limiter, if set, is waited on (one token) before each message is put.
	Limiter Limiter
	// Filter leaves messages out by date or size. Default: keep all.
	Filter Filter
	// BadItemLimit stops a mailbox once more than this many messages failed,
	// as Exchange's -BadItemLimit does. Default 0: no limit (every failure
	// is skipped and reported).
	BadItemLimit int
	// FetchBatch is how many UIDs go into one Source.Fetch call. Default 200.
	FetchBatch int
	// OnEvent, if set, receives progress events. It is called from the
	// Engine's goroutines, possibly from several at once (one per mailbox),
	// and must return quickly.
	OnEvent func(Event)
	// Logger receives the Engine's logs. Default: discarded.
	Logger *slog.Logger
}

func (o *Options) withDefaults() Options {
	var out Options
	if o != nil {
		out = *o
	}
	if out.Mailboxes <= 0 {
		out.Mailboxes = 4
	}
	if out.Mapper == nil {
		out.Mapper = DefaultMapper
	}
	if out.State == nil {
		out.State = NewMemoryState()
	}
	if out.FetchBatch <= 0 {
		out.FetchBatch = 200
	}
	if out.OnEvent == nil {
		out.OnEvent = func(Event) {}
	}
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	}
	return out
}
