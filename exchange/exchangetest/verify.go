package exchangetest

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

// CheckFixture compares user's mailbox with a fixture migrated into it
// with migrate.DefaultMapper(), message by message, and returns every
// difference: a message missing or present more than once, MIME that is
// not byte-identical, a wrong folder, read or flagged state not carried,
// a draft that is not one (or the reverse), and messages the fixture does
// not have. No differences means nothing was lost, changed or duplicated.
// Received dates are not compared: importMime cannot set them.
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
			var copies []Message
			for _, st := range stored {
				if bytes.Equal(st.MIME, m.Raw) {
					copies = append(copies, st)
				}
			}
			id := m.MessageID()
			if len(copies) != 1 {
				fail("%s: %d byte-identical copies in the mailbox, want 1", id, len(copies))
				continue
			}
			got := copies[0]
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
