package exchangetest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"slices"
	"strings"
	"time"
)

// This file holds the in-memory store: mailboxes, their folders, messages
// and attachments, and the ids they are known by. s.mu guards all of it.

type mailbox struct {
	user      string
	folders   map[string]*folder // by id
	order     []string           // folder ids in creation order
	wellKnown map[string]string  // well-known name -> folder id
	messages  map[string]*message
	msgOrder  []string
	full      bool
}

type folder struct {
	id, parentID, displayName, wellKnown string
	hidden                               bool
	created                              int64
}

type message struct {
	id, folderID                 string
	mime                         []byte
	isDraft, isRead              bool
	flagStatus                   string
	flagDates                    followupDates // see followup.go
	categories                   []string
	importance                   string
	internetMessageID, subject   string
	received, sent, created, mod time.Time
	props                        []extProp // in insertion order
	body                         map[string]any
	from, sender                 any
	to, cc, bcc, replyTo         any
	headers                      []internetHeader
	inference                    string // inferenceClassification: focused or other
	lastVerb                     int
	attachments                  []*attachment
	// replica and version make the message's changeKey (see changeKey):
	// version counts the saves of the message, 1 at creation, one more at
	// each change (touch).
	replica [16]byte
	version uint64
}

// extProp is a singleValueExtendedProperty of a message, its id as the
// client spelled it (see normalizePropID for how ids compare, and
// canonicalPropID for how Graph spells them in its answers).
type extProp struct{ id, value string }

// internetHeader is an internetMessageHeader
// (https://learn.microsoft.com/graph/api/resources/internetmessageheader).
type internetHeader struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type attachment struct {
	id, name, contentType, contentID string
	isInline                         bool
	item                             bool // an itemAttachment: a message/rfc822 part of imported MIME (see attachmentOf)
	content                          []byte
	mod                              time.Time
}

// wellKnownFolders are created in every mailbox under msgfolderroot
// (https://learn.microsoft.com/graph/api/resources/mailfolder#well-known-folder-names).
var wellKnownFolders = []struct{ name, display string }{
	{"inbox", "Inbox"},
	{"drafts", "Drafts"},
	{"sentitems", "Sent Items"},
	{"deleteditems", "Deleted Items"},
	{"junkemail", "Junk Email"},
	{"archive", "Archive"},
	{"outbox", "Outbox"},
	{"conversationhistory", "Conversation History"},
}

// newMailbox returns an empty mailbox for user with msgfolderroot and the
// well-known folders.
func (s *Server) newMailbox(user string) *mailbox {
	mb := &mailbox{
		user:      user,
		folders:   map[string]*folder{},
		wellKnown: map[string]string{},
		messages:  map[string]*message{},
	}
	// The root of the mailbox (not msgfolderroot) is hidden from every
	// listing; msgfolderroot ("Top of Information Store") is its child.
	rootID := s.newID("AAMkAGRt")
	root := s.addFolder(mb, "msgfolderroot", "Top of Information Store", rootID)
	for _, wk := range wellKnownFolders {
		s.addFolder(mb, wk.name, wk.display, root.id)
	}
	return mb
}

// newID returns an opaque, unique, URL-safe id that looks like an
// Exchange id ("AAMk..."). Callers hold s.mu or own s exclusively.
func (s *Server) newID(prefix string) string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return prefix + base64.URLEncoding.EncodeToString(b[:])
}

// now is the emulator's clock, truncated to seconds as Graph reports times.
func now() time.Time { return time.Now().UTC().Truncate(time.Second) }

func (s *Server) lookup(user string) *mailbox { return s.mailboxes[strings.ToLower(user)] }

func (s *Server) addFolder(mb *mailbox, wellKnown, display, parent string) *folder {
	s.seq++
	f := &folder{id: s.newID("AAMkAGFd"), parentID: parent, displayName: display, wellKnown: wellKnown, created: s.seq}
	mb.folders[f.id] = f
	mb.order = append(mb.order, f.id)
	if wellKnown != "" {
		mb.wellKnown[wellKnown] = f.id
	}
	return f
}

// resolve finds a folder by id or well-known name
// (https://learn.microsoft.com/graph/api/resources/mailfolder#well-known-folder-names).
func (mb *mailbox) resolve(idOrName string) *folder {
	if f, ok := mb.folders[idOrName]; ok {
		return f
	}
	if id, ok := mb.wellKnown[strings.ToLower(idOrName)]; ok {
		return mb.folders[id]
	}
	return nil
}

func (mb *mailbox) childCount(id string) int {
	n := 0
	for _, f := range mb.folders {
		if f.parentID == id {
			n++
		}
	}
	return n
}

func (mb *mailbox) itemCount(id string) (total, unread int) {
	for _, m := range mb.messages {
		if m.folderID == id {
			total++
			if !m.isRead {
				unread++
			}
		}
	}
	return
}

// messageIDPrefix starts the id of every message.
const messageIDPrefix = "AAMkAGI2"

// newMessage returns a message in f, created, modified, received and sent
// now, not flagged, of normal importance, focused (see
// inferenceFocused), and a draft (and read) when draft is set. Its
// internetMessageId is made up from its id until the caller sets one. It
// is not in a mailbox until mb.add.
func (s *Server) newMessage(f *folder, draft bool) *message {
	t := now()
	m := &message{
		id: s.newID(messageIDPrefix), folderID: f.id,
		isDraft: draft, isRead: draft, flagStatus: "notFlagged", importance: "normal",
		inference: inferenceFocused, created: t, mod: t, received: t, sent: t, version: 1,
	}
	_, _ = rand.Read(m.replica[:])
	m.internetMessageID = "<" + strings.TrimPrefix(m.id, messageIDPrefix) + "@exchangetest.invalid>"
	return m
}

// add stores m in mb, after the messages already there.
func (mb *mailbox) add(m *message) {
	mb.messages[m.id] = m
	mb.msgOrder = append(mb.msgOrder, m.id)
}

// size is the message's size as the maximum message size measures it:
// its body plus its attachments (for imported MIME, the body and
// attachments read from it, see applyMIMEContent).
func (m *message) size() int64 {
	var n int64
	if m.body != nil {
		content, _ := m.body["content"].(string)
		n += int64(len(content))
	}
	for _, a := range m.attachments {
		n += int64(len(a.content))
	}
	return n
}

// hasAttachment is the message's hasAttachments, which its attachments
// decide: "This property doesn't include inline attachments"
// (https://learn.microsoft.com/graph/api/resources/message#properties).
func (m *message) hasAttachment() bool {
	return slices.ContainsFunc(m.attachments, func(a *attachment) bool { return !a.isInline })
}

func (m *message) attachment(id string) *attachment {
	for _, a := range m.attachments {
		if a.id == id {
			return a
		}
	}
	return nil
}

// touch records a change of m (a PATCH, an attachment added or removed):
// lastModifiedDateTime is now and m has a new changeKey, one that no
// earlier version of m had, however close together the changes come.
func (m *message) touch() {
	m.version++
	m.mod = now()
}

// changeKey is the message's changeKey
// (https://learn.microsoft.com/graph/api/resources/message#properties:
// "The version of the message"); its @odata.etag is
// W/"changeKey" (see etag). Exchange's change keys are base64 of 30 bytes
// (for example "CQAAABYAAADfB6WWdg0CTr9zYQh/xfDNAAAEg+rR"): 09 00 00 00,
// 16 00 00 00 (the 22 bytes that follow), a 16-byte replica GUID and a
// 6-byte change number. The emulator keeps that shape with a random GUID
// per message and the message's version as the change number, so that
// every version of a message has a change key of its own, even when two
// versions share lastModifiedDateTime (whole seconds).
func (m *message) changeKey() string {
	var b [30]byte
	b[0], b[4] = 0x09, 0x16
	copy(b[8:24], m.replica[:])
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], m.version)
	copy(b[24:], n[2:])
	return base64.StdEncoding.EncodeToString(b[:])
}

// etag is the message's @odata.etag: W/"changeKey", as Graph answers it
// (https://learn.microsoft.com/graph/api/resources/message#json-representation
// shows both; ETags are weak, RFC 9110 section 8.8.1).
func (m *message) etag() string { return `W/"` + m.changeKey() + `"` }
