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
	// PutsPerMailbox is how many Sink.Put calls run at once per mailbox.
	// Exchange Online allows 4 concurrent requests per app per mailbox.
	// Above 1, bodies are read into memory (within MaxBytesInFlight) so
	// that the source streams on while the sink works. Default 4.
	PutsPerMailbox int
	// MaxBytesInFlight bounds the message bytes held in memory per mailbox
	// while waiting for or in a Put. A message larger than this is put
	// alone, streamed from the source. Default 64 MiB.
	MaxBytesInFlight int64
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
	if out.PutsPerMailbox <= 0 {
		out.PutsPerMailbox = 4
	}
	if out.MaxBytesInFlight <= 0 {
		out.MaxBytesInFlight = 64 << 20
	}
	if out.OnEvent == nil {
		out.OnEvent = func(Event) {}
	}
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	}
	return out
}
