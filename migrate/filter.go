package migrate

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A Limiter paces the copy: the Engine takes one token per message before
// each Put. *rate.Limiter from golang.org/x/time/rate is a Limiter.
type Limiter interface {
	WaitN(ctx context.Context, n int) error
}

// A Deduper decides whether a message is a copy of one already seen in the
// same target folder. The Engine shows it, in UID order, each message of
// the folder that a pass reads and the Filter keeps, including those
// copied by earlier runs (so that it knows them), and skips those it calls
// duplicates. What a pass reads depends on how it reads the folder
// (FolderReport.Pass): a first or a full pass reads every message, but a
// delta pass through a ChangeLister reads only the messages added, or
// whose flags changed, since the last complete pass, and a folder whose
// mod-sequence has not moved is not read at all. So a message that
// arrives after an earlier run copied its twin is a duplicate only to a
// Deduper that remembers that run (the same MessageIDDeduper, kept by an
// Engine across its runs): a new Deduper is not shown the twin on a delta
// pass, and the message is copied. Safe for concurrent use.
type Deduper interface {
	Seen(mailbox string, target Target, m MessageInfo) (duplicate bool)
}

// MessageIDDeduper is a Deduper that takes two messages with the same
// Message-ID and size in the same target folder for one. Messages without a
// Message-ID are never duplicates. It remembers, in memory, every message
// it was shown for as long as it is kept: across the runs of an Engine
// that holds it, never across processes.
type MessageIDDeduper struct {
	mu   sync.Mutex
	seen map[string]struct{}
}

// Seen implements Deduper.
func (d *MessageIDDeduper) Seen(mailbox string, target Target, m MessageInfo) bool {
	if m.MessageID == "" {
		return false
	}
	key := strings.Join([]string{mailbox, target.Key(), m.MessageID, strconv.FormatInt(m.Size, 10)}, "\x00")
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.seen == nil {
		d.seen = map[string]struct{}{}
	}
	if _, ok := d.seen[key]; ok {
		return true
	}
	d.seen[key] = struct{}{}
	return false
}

// Filter leaves messages out of the copy by date and size, as Exchange's
// migration batches do. The zero Filter keeps everything.
type Filter struct {
	// Since keeps messages whose InternalDate is at or after it.
	Since time.Time
	// Before keeps messages whose InternalDate is before it.
	Before time.Time
	// MaxSize keeps messages of at most this many bytes; 0 means no limit.
	MaxSize int64
}

func (f Filter) isZero() bool {
	return f.Since.IsZero() && f.Before.IsZero() && f.MaxSize == 0
}

// reason returns why m is filtered out, or "" if it is kept.
func (f Filter) reason(m MessageInfo) string {
	switch {
	case !f.Since.IsZero() && m.InternalDate.Before(f.Since):
		return "older than " + f.Since.Format(time.DateOnly)
	case !f.Before.IsZero() && !m.InternalDate.Before(f.Before):
		return "not before " + f.Before.Format(time.DateOnly)
	case f.MaxSize > 0 && m.Size > f.MaxSize:
		return "larger than " + strconv.FormatInt(f.MaxSize, 10) + " bytes"
	}
	return ""
}
