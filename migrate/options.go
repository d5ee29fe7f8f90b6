package migrate

import "log/slog"

// Options configures an Engine. A nil *Options means every default.
type Options struct {
	// MaxMailboxes is how many mailboxes are migrated at once. Default 4.
	MaxMailboxes int
	// Mapper decides where source folders go. Default: DefaultMapper().
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
	// MaxUIDsPerFetch is how many UIDs go into one Source.Fetch call.
	// Default 200.
	MaxUIDsPerFetch int
	// MaxPutsPerMailbox is how many Sink.Put calls run at once per mailbox.
	// Exchange Online allows 4 concurrent requests per app per mailbox.
	// Above 1, bodies are read into memory (within
	// MaxBytesInFlightPerMailbox) so that the source streams on while the
	// sink works. Default 4.
	MaxPutsPerMailbox int
	// MaxBytesInFlightPerMailbox bounds the message bytes held in memory
	// per mailbox while waiting for or in a Put. A message larger than
	// this is put alone, streamed from the source. Default 64 MiB.
	MaxBytesInFlightPerMailbox int64
	// OnEvent, if set, receives progress events. The Engine calls it from
	// its goroutines but never from two at once, so it needs no locking;
	// it must return quickly, since the migration waits for it.
	OnEvent func(Event)
	// Logger receives the Engine's logs. Default: discarded.
	Logger *slog.Logger
}

func (o *Options) withDefaults() Options {
	var out Options
	if o != nil {
		out = *o
	}
	if out.MaxMailboxes <= 0 {
		out.MaxMailboxes = 4
	}
	if out.Mapper == nil {
		out.Mapper = DefaultMapper()
	}
	if out.State == nil {
		out.State = NewMemoryState()
	}
	if out.MaxUIDsPerFetch <= 0 {
		out.MaxUIDsPerFetch = 200
	}
	if out.MaxPutsPerMailbox <= 0 {
		out.MaxPutsPerMailbox = 4
	}
	if out.MaxBytesInFlightPerMailbox <= 0 {
		out.MaxBytesInFlightPerMailbox = 64 << 20
	}
	if out.OnEvent == nil {
		out.OnEvent = func(Event) {}
	}
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	}
	return out
}
