package migrate

import (
	"errors"
	"fmt"
)

// The error kinds. Backends mark their errors with ItemError, MailboxError
// or TransientError; the Engine tells them apart with errors.Is.
var (
	// ErrItem: one message cannot be copied (rejected MIME, too large). The
	// message is skipped and reported; the mailbox goes on.
	ErrItem = errors.New("item failed")
	// ErrMailbox: the mailbox cannot go on (bad credentials, quota full,
	// mailbox missing). It stops; the batch goes on.
	ErrMailbox = errors.New("mailbox failed")
	// ErrTransient: throttling, a 5xx, a dropped connection. Backends retry
	// these themselves; one that reaches the Engine counts as an item failure.
	ErrTransient = errors.New("transient failure")
	// ErrUIDValidityChanged: a source folder's UIDVALIDITY changed since the
	// last run, so its UIDs name other messages. The folder is not copied
	// again (that would duplicate it); the report says so.
	ErrUIDValidityChanged = errors.New("UIDVALIDITY changed")
	// ErrNoModSeq: a ChangeLister cannot list changes for this folder (the
	// server lacks CONDSTORE, or forgot the mod-sequence); the Engine lists
	// the whole folder instead.
	ErrNoModSeq = errors.New("no mod-sequence for a delta listing")
	// ErrBadItemLimit: a mailbox had more item failures than
	// Options.BadItemLimit allows and was stopped.
	ErrBadItemLimit = errors.New("bad item limit reached")
	// ErrDegraded: the sink stored the message, but not as it is on the
	// source (it could not be parsed or was refused as it was, so the sink
	// kept what it could read and attached the original bytes). A Put that
	// returns a non-empty item id with an error matching ErrDegraded
	// succeeded: the Engine commits the item and reports it as degraded,
	// with the error as the reason.
	ErrDegraded = errors.New("stored degraded")
)

// kindError marks an error with a kind while keeping its own message.
type kindError struct {
	kind error
	err  error
}

// Error implements error.
func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.kind, e.err} }
func mark(kind, err error) error {
	if err == nil || errors.Is(err, kind) {
		return err
	}
	return &kindError{kind: kind, err: err}
}

// ItemError marks err as an item failure (errors.Is(err, ErrItem)).
func ItemError(err error) error { return mark(ErrItem, err) }

// MailboxError marks err as a mailbox failure (errors.Is(err, ErrMailbox)).
func MailboxError(err error) error { return mark(ErrMailbox, err) }

// DegradedError marks err, the reason a message was stored in a degraded
// form, as such (errors.Is(err, ErrDegraded)).
func DegradedError(err error) error { return mark(ErrDegraded, err) }

// TransientError marks err as transient (errors.Is(err, ErrTransient)).
func TransientError(err error) error { return mark(ErrTransient, err) }

// MessageError is an item failure with the message it concerns.
type MessageError struct {
	Mailbox string
	Folder  string
	UID     uint32
	Err     error
}

// Error implements error.
func (e *MessageError) Error() string {
	return fmt.Sprintf("migrate: mailbox %s, folder %q, UID %d: %v", e.Mailbox, e.Folder, e.UID, e.Err)
}

// Unwrap returns the underlying error.
func (e *MessageError) Unwrap() error { return e.Err }
