package migrate

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Flag is an IMAP system flag (\Seen, \Flagged, ...) or keyword ($Label1,
// Work, ...), spelled as on the wire.
type Flag string

// The IMAP system flags (RFC 9051 section 2.3.2).
const (
	FlagSeen     Flag = `\Seen`
	FlagAnswered Flag = `\Answered`
	FlagFlagged  Flag = `\Flagged`
	FlagDeleted  Flag = `\Deleted`
	FlagDraft    Flag = `\Draft`
)

// IsKeyword reports whether f is a keyword rather than a system flag
// (system flags start with a backslash).
func (f Flag) IsKeyword() bool { return f != "" && f[0] != '\\' }

// MessageInfo is the metadata of a source message, known without its body.
type MessageInfo struct {
	// UID is the message's IMAP UID, unique within one UIDVALIDITY of its folder.
	UID uint32
	// Flags are the message's flags and keywords.
	Flags []Flag
	// InternalDate is the date the source server received the message
	// (IMAP INTERNALDATE); it becomes the received date on the sink.
	InternalDate time.Time
	// Size is the size of the whole message in bytes (RFC822.SIZE).
	Size int64
	// MessageID is the Message-ID header with its angle brackets, or "".
	MessageID string
}

// HasFlag reports whether the message carries flag f (case-insensitively,
// as IMAP compares flags).
func (m *MessageInfo) HasFlag(f Flag) bool { return ContainsFlag(m.Flags, f) }

// ContainsFlag reports whether flags holds f, compared case-insensitively
// as IMAP compares flags and keywords (RFC 9051 section 2.3.2).
func ContainsFlag(flags []Flag, f Flag) bool {
	return slices.ContainsFunc(flags, func(g Flag) bool { return strings.EqualFold(string(g), string(f)) })
}

// SameFlags reports whether a and b hold the same set of flags: every
// flag of each is in the other, compared as ContainsFlag compares them
// (ignoring case), whatever the order and however often a flag is
// repeated. The answer does not depend on the order of the arguments.
func SameFlags(a, b []Flag) bool {
	for _, f := range a {
		if !ContainsFlag(b, f) {
			return false
		}
	}
	for _, f := range b {
		if !ContainsFlag(a, f) {
			return false
		}
	}
	return true
}

// SortedFlags returns a sorted copy of flags, for stable output.
func SortedFlags(flags []Flag) []Flag {
	out := slices.Clone(flags)
	slices.Sort(out)
	return out
}

// SourceID identifies a source message for as long as its folder keeps its
// UIDVALIDITY. Sinks stamp it on every item as a watermark.
type SourceID struct {
	// Folder is the source folder's Name.
	Folder string
	// UIDValidity is the folder's UIDVALIDITY when the message was read.
	UIDValidity uint32
	// UID is the message's UID.
	UID uint32
}

// String renders the identity as "UIDVALIDITY/UID/Folder", a form that is
// unambiguous whatever the folder name contains.
func (id SourceID) String() string {
	return fmt.Sprintf("%d/%d/%s", id.UIDValidity, id.UID, id.Folder)
}

// ParseSourceID parses the form produced by SourceID.String.
func ParseSourceID(s string) (SourceID, error) {
	v, rest, ok1 := strings.Cut(s, "/")
	u, folder, ok2 := strings.Cut(rest, "/")
	validity, err1 := strconv.ParseUint(v, 10, 32)
	uid, err2 := strconv.ParseUint(u, 10, 32)
	if !ok1 || !ok2 || err1 != nil || err2 != nil {
		return SourceID{}, fmt.Errorf("migrate: malformed source id %q", s)
	}
	return SourceID{Folder: folder, UIDValidity: uint32(validity), UID: uint32(uid)}, nil
}

// Message is a source message being copied: its identity, its metadata and
// its body.
type Message struct {
	ID SourceID
	MessageInfo
	// Body streams the message exactly as the source holds it (RFC 5322
	// bytes). It is valid only until the callback that received the
	// Message returns, and yields Size bytes when the source's size is right.
	Body io.Reader
}
