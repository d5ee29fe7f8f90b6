package migrate

import (
	"fmt"
	"time"
)

// EventKind says what an Event reports.
type EventKind int

// The kinds of Event.
const (
	EventMailboxStarted  EventKind = iota + 1
	EventFolderCreated             // a target folder was ensured (Target holds its path)
	EventFolderStarted             // copying a source folder begins (Count: messages to copy)
	EventMessageCopied             // a message was copied (UID, Bytes)
	EventMessageSkipped            // a message was left out on purpose (filter, duplicate); Reason says why
	EventMessageFailed             // a message could not be copied; Err says why
	EventMessageRepaired           // an uncommitted copy from an earlier run was found on the sink
	EventFlagsUpdated              // a delta pass carried changed flags
	EventFolderDone                // a source folder is done (Err set if it failed)
	EventMailboxDone               // a mailbox is done (Err set if it failed)
	EventThrottled                 // the sink was told to slow down (Reason; Wait: how long it pauses)
	EventReconnected               // the source reopened a dropped connection (Err: why)
	EventFlagsFailed               // a delta pass could not carry a message's changed flags; Err says why
	EventMessageDegraded           // a message was stored, but degraded (UID, Bytes); Err says why
	EventNotice                    // a backend reports a fact about the run, such as what its target keeps (Reason)
)

var eventNames = map[EventKind]string{
	EventMailboxStarted: "mailbox-started", EventFolderCreated: "folder-created",
	EventFolderStarted: "folder-started", EventMessageCopied: "message-copied",
	EventMessageSkipped: "message-skipped", EventMessageFailed: "message-failed",
	EventMessageRepaired: "message-repaired", EventFlagsUpdated: "flags-updated",
	EventFolderDone: "folder-done", EventMailboxDone: "mailbox-done",
	EventThrottled: "throttled", EventReconnected: "reconnected", EventFlagsFailed: "flags-failed",
	EventMessageDegraded: "message-degraded", EventNotice: "notice",
}

// String returns the kind's name, such as "message-copied".
func (k EventKind) String() string {
	if s, ok := eventNames[k]; ok {
		return s
	}
	return fmt.Sprintf("event(%d)", int(k))
}

// Event is a progress report for a UI. Only the fields that apply to its
// Kind are set.
type Event struct {
	Kind    EventKind
	Time    time.Time
	Mailbox string
	Folder  string // source folder name
	Target  string // target folder path
	UID     uint32
	Bytes   int64
	Count   int
	// Wait is how long the backend pauses (EventThrottled).
	Wait   time.Duration
	Reason string
	Err    error
}
