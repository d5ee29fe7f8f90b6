package exchangetest

import (
	"slices"
	"strings"
	"time"
)

// This file is the inspection API: what a test reads of the mailboxes
// without going through Graph.

// Folder is a mail folder as the inspection API shows it.
type Folder struct {
	// ID is the folder's id, as Graph answers it.
	ID string
	// ParentID is the id of the parent folder; msgfolderroot's parent is
	// the mailbox root, which no listing shows.
	ParentID string
	// DisplayName is the folder's displayName.
	DisplayName string
	// WellKnownName is the well-known name ("msgfolderroot", "inbox",
	// "drafts", …) of a folder every mailbox has; "" for a folder created
	// by a client.
	WellKnownName string
	// ChildFolderCount is the number of the folder's direct children.
	ChildFolderCount int
	// TotalItemCount is the number of messages in the folder itself.
	TotalItemCount int
}

// Message is a message as the inspection API shows it.
type Message struct {
	// ID is the message's id, as Graph answers it.
	ID string
	// FolderID is the id of the folder the message is in (parentFolderId).
	FolderID string
	// MIME is exactly the bytes imported (after base64 decoding); nil for
	// a message created from JSON.
	MIME []byte
	// IsDraft is isDraft: false for importMime, and for a JSON create that
	// sets PidTagMessageFlags without MSGFLAG_UNSENT.
	IsDraft bool
	// IsRead is isRead.
	IsRead bool
	// FlagStatus is flag.flagStatus: "notFlagged", "flagged" or "complete".
	FlagStatus string
	// Categories are the message's categories, in the order given.
	Categories []string
	// Importance is "low", "normal" or "high".
	Importance string
	// InternetMessageID is internetMessageId: the Message-ID of imported
	// MIME, the one given to a JSON create, or one the emulator made up.
	InternetMessageID string
	// Subject is the subject (RFC 2047 words of imported MIME decoded).
	Subject string
	// ReceivedDateTime is receivedDateTime.
	ReceivedDateTime time.Time
	// SentDateTime is sentDateTime.
	SentDateTime time.Time
	// CreatedDateTime is createdDateTime: when the emulator stored the
	// message.
	CreatedDateTime time.Time
	// ExtendedProperties maps a singleValueExtendedProperties id, as the
	// client spelled it, to its value, e.g.
	// "String {GUID} Name mailferrySourceId" -> "...".
	ExtendedProperties map[string]string
	// LastVerbExecuted is PidTagLastVerbExecuted (Integer 0x1081): 102
	// reply, 103 reply all, 104 forward (NOTEIVERB_REPLYTOSENDER,
	// NOTEIVERB_REPLYTOALL, NOTEIVERB_FORWARD of MS-OXOMSG;
	// https://learn.microsoft.com/openspecs/exchange_server_protocols/ms-oxprops/4ec55eac-14b3-4dfa-adf3-340c0dcccd44);
	// 0 when unset.
	LastVerbExecuted int
	// Attachments are the message's attachments, in the order they were
	// added (POST .../attachments, upload sessions, or the attachments of
	// a JSON create); those of a MIME import are read from its MIME at
	// import, in the order of its parts (see readMIMEContent).
	Attachments []Attachment
}

// Attachment is an attachment as the inspection API shows it: a file
// attachment (https://learn.microsoft.com/graph/api/resources/fileattachment),
// or an item attachment of a MIME import (IsItem).
type Attachment struct {
	// ID is the attachment's id, as Graph answers it.
	ID string
	// Name is the file name.
	Name string
	// ContentType is the media type given, or sniffed from Content when
	// none was.
	ContentType string
	// ContentID is contentId, "" when none was given.
	ContentID string
	// IsInline is isInline.
	IsInline bool
	// Size is the number of bytes of Content.
	Size int
	// Content is the attachment's bytes (an item attachment's: the
	// attached message's MIME).
	Content []byte
	// IsItem reports an itemAttachment: a message/rfc822 part of a MIME
	// import.
	IsItem bool
}

// withMailbox runs f on user's mailbox with s.mu held; it does nothing
// for an unknown mailbox.
func (s *Server) withMailbox(user string, f func(mb *mailbox)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if mb := s.lookup(user); mb != nil {
		f(mb)
	}
}

// Folders returns every folder of user's mailbox (msgfolderroot and
// everything below it), in creation order; nil for an unknown mailbox.
func (s *Server) Folders(user string) []Folder {
	var out []Folder
	s.withMailbox(user, func(mb *mailbox) {
		for _, id := range mb.order {
			f := mb.folders[id]
			total, _ := mb.itemCount(id)
			out = append(out, Folder{
				ID: f.id, ParentID: f.parentID, DisplayName: f.displayName, WellKnownName: f.wellKnown,
				ChildFolderCount: mb.childCount(id), TotalItemCount: total,
			})
		}
	})
	return out
}

// FolderPath returns the display-name path of a folder of user's mailbox
// from the top of the folder tree ("Inbox/Projects"), or "" if unknown.
func (s *Server) FolderPath(user, folderID string) string {
	byID := map[string]Folder{}
	for _, f := range s.Folders(user) {
		byID[f.ID] = f
	}
	var parts []string
	for f, ok := byID[folderID]; ok && f.WellKnownName != "msgfolderroot"; f, ok = byID[f.ParentID] {
		parts = append([]string{f.DisplayName}, parts...)
	}
	return strings.Join(parts, "/")
}

// Messages returns every message in every folder of user's mailbox, in
// creation order; nil for an unknown mailbox.
func (s *Server) Messages(user string) []Message {
	var out []Message
	s.withMailbox(user, func(mb *mailbox) {
		for _, id := range mb.msgOrder {
			if m, ok := mb.messages[id]; ok {
				out = append(out, m.export())
			}
		}
	})
	return out
}

// Message returns the message with the given id in user's mailbox.
func (s *Server) Message(user, id string) (Message, bool) {
	var out Message
	found := false
	s.withMailbox(user, func(mb *mailbox) {
		if m, ok := mb.messages[id]; ok {
			out, found = m.export(), true
		}
	})
	return out, found
}

func (m *message) export() Message {
	props := make(map[string]string, len(m.props))
	for _, p := range m.props {
		props[p.id] = p.value
	}
	var atts []Attachment
	for _, a := range m.attachments {
		atts = append(atts, a.export())
	}
	return Message{
		LastVerbExecuted: m.lastVerb, Attachments: atts,
		ID: m.id, FolderID: m.folderID, MIME: slices.Clone(m.mime),
		IsDraft: m.isDraft, IsRead: m.isRead, FlagStatus: m.flagStatus,
		Categories: slices.Clone(m.categories), Importance: m.importance,
		InternetMessageID: m.internetMessageID, Subject: m.subject,
		ReceivedDateTime: m.received, SentDateTime: m.sent, CreatedDateTime: m.created,
		ExtendedProperties: props,
	}
}

func (a *attachment) export() Attachment {
	return Attachment{
		ID: a.id, Name: a.name, ContentType: a.contentType, ContentID: a.contentID,
		IsInline: a.isInline, Size: len(a.content), Content: slices.Clone(a.content), IsItem: a.item,
	}
}
