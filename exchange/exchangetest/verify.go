package exchangetest

import (
	"bytes"
	"fmt"
	"mime"
	"net/mail"
	"strings"
	"time"

	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

// CheckFixture compares user's mailbox with a fixture migrated into it
// with migrate.DefaultMapper(), message by message, and returns every
// difference: a message missing or present more than once, a wrong
// folder, read or flagged state not carried, a draft that is not one (or
// the reverse), content not kept, and messages the fixture does not have.
// Content is kept when a message imported as MIME (importMime, or a
// draft's MIME create) is byte-identical to the source, and when a
// message created from JSON, whose MIME Exchange rebuilds, has the
// source's Message-ID and subject and its INTERNALDATE as received date
// (to the second). No differences means nothing was lost, changed or
// duplicated beyond what the path taken documents.
func (s *Server) CheckFixture(user string, fx *migratetest.Fixture) []string {
	var diffs []string
	fail := func(format string, args ...any) { diffs = append(diffs, fmt.Sprintf(format, args...)) }
	folders := make([]migrate.Folder, len(fx.Folders))
	for i, f := range fx.Folders {
		folders[i] = migrate.Folder{Name: strings.Join(f.Path, "/"), Path: f.Path, Role: f.Role}
	}
	targets, err := migrate.DefaultMapper().MapFolders(folders)
	if err != nil {
		return []string{err.Error()}
	}
	stored := s.Messages(user)
	for i, f := range fx.Folders {
		for _, m := range f.Messages {
			id := m.MessageID()
			var copies []Message
			for _, st := range stored {
				if bytes.Equal(st.MIME, m.Raw) || (st.MIME == nil && id != "" && st.InternetMessageID == id) {
					copies = append(copies, st)
				}
			}
			if len(copies) != 1 {
				fail("%s: %d copies in the mailbox, want 1", id, len(copies))
				continue
			}
			got := copies[0]
			if got.MIME == nil {
				if want := fixtureSubject(m.Raw); got.Subject != want {
					fail("%s: subject %q, want %q", id, got.Subject, want)
				}
				if want := m.InternalDate.Truncate(time.Second); !got.ReceivedDateTime.Equal(want) {
					fail("%s: received %v, want the source's INTERNALDATE %v", id, got.ReceivedDateTime, want)
				}
			}
			if path := s.FolderPath(user, got.FolderID); !strings.EqualFold(path, targets[i].Key()) {
				fail("%s: in folder %q, want %q", id, path, targets[i].Key())
			}
			info := migrate.MessageInfo{Flags: m.Flags}
			if got.IsRead != info.HasFlag(migrate.FlagSeen) {
				fail("%s: isRead=%v, source flags %v", id, got.IsRead, m.Flags)
			}
			if (got.FlagStatus == "flagged") != info.HasFlag(migrate.FlagFlagged) {
				fail("%s: flag %q, source flags %v", id, got.FlagStatus, m.Flags)
			}
			if got.IsDraft != info.HasFlag(migrate.FlagDraft) {
				fail("%s: isDraft=%v, source flags %v", id, got.IsDraft, m.Flags)
			}
		}
	}
	if len(stored) != fx.Count() {
		fail("the mailbox holds %d messages, the fixture %d", len(stored), fx.Count())
	}
	return diffs
}

// fixtureSubject returns the decoded Subject of raw, as Graph shows it.
func fixtureSubject(raw []byte) string {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return ""
	}
	subject := msg.Header.Get("Subject")
	if dec, err := new(mime.WordDecoder).DecodeHeader(subject); err == nil {
		return dec
	}
	return subject
}
