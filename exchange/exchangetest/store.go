package exchangetest

import (
	"crypto/rand"
	"encoding/base64"
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
	categories                   []string
	importance                   string
	internetMessageID, subject   string
	received, sent, created, mod time.Time
	props                        []extProp // in insertion order
	body                         map[string]any
	from, sender                 any
	to, cc, bcc, replyTo         any
	headers                      []internetHeader
	hasAttachments               bool // of the MIME (multipart/mixed); see hasAttachment
	lastVerb                     int
	attachments                  []*attachment
}

// extProp is a singleValueExtendedProperty of a message, its id as the
// client spelled it (see normalizePropID for how ids compare).
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
// now, not flagged, of normal importance, and a draft (and read) when
// draft is set. Its internetMessageId is made up from its id until the
// caller sets one. It is not in a mailbox until mb.add.
func (s *Server) newMessage(f *folder, draft bool) *message {
	t := now()
	m := &message{
		id: s.newID(messageIDPrefix), folderID: f.id,
		isDraft: draft, isRead: draft, flagStatus: "notFlagged", importance: "normal",
		created: t, mod: t, received: t, sent: t,
	}
	m.internetMessageID = "<" + strings.TrimPrefix(m.id, messageIDPrefix) + "@exchangetest.invalid>"
	return m
}

// add stores m in mb, after the messages already there.
func (mb *mailbox) add(m *message) {
	mb.messages[m.id] = m
	mb.msgOrder = append(mb.msgOrder, m.id)
}

// size is the message's size as the maximum message size measures it:
// its MIME (or its body) plus its attachments.
func (m *message) size() int64 {
	n := int64(len(m.mime))
	if m.body != nil {
		content, _ := m.body["content"].(string)
		n += int64(len(content))
	}
	for _, a := range m.attachments {
		n += int64(len(a.content))
	}
	return n
}

// hasAttachment is the message's hasAttachments: "This property doesn't
// include inline attachments" (https://learn.microsoft.com/graph/api/resources/message#properties).
func (m *message) hasAttachment() bool {
	if m.hasAttachments {
		return true
	}
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
