package imapsrc

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailferry/mailferry/migrate"
)

// Folders lists every folder of the mailbox with LIST "" "*" (asking for
// SPECIAL-USE attributes where the server supports it), then asks STATUS
// (MESSAGES UIDVALIDITY) of each selectable folder. INBOX comes first; the
// others follow ordered by path, so parents precede their children.
// Folders marked \NonExistent are left out; \Noselect ones are kept with
// NoSelect set.
//
// Roles come from SPECIAL-USE attributes; for a role that no folder claims
// that way, from WellKnownNames. INBOX always has RoleInbox.
func (s *Source) Folders(ctx context.Context) ([]migrate.Folder, error) {
	var out []migrate.Folder
	err := s.do(ctx, "list folders", func() int { return 0 }, func(c *imapclient.Client, info *serverInfo) error {
		var err error
		out, err = s.folders(c, info)
		return err
	})
	if err != nil {
		return nil, wrapErr("list folders", err)
	}
	return out, nil
}

func (s *Source) folders(c *imapclient.Client, info *serverInfo) ([]migrate.Folder, error) {
	var opts *imap.ListOptions
	if info.caps.Has(imap.CapSpecialUse) && (info.caps.Has(imap.CapListExtended) || info.caps.Has(imap.CapIMAP4rev2)) {
		opts = &imap.ListOptions{ReturnSpecialUse: true}
	}
	list, err := c.List("", "*", opts).Collect()
	if err != nil {
		return nil, fmt.Errorf("LIST: %w", err)
	}

	folders := make([]migrate.Folder, 0, len(list))
	seen := map[string]bool{}
	claimed := map[migrate.Role]bool{}
	for _, d := range list {
		if hasAttr(d.Attrs, imap.MailboxAttrNonExistent) || seen[d.Mailbox] {
			continue
		}
		seen[d.Mailbox] = true
		f := migrate.Folder{
			Name:      d.Mailbox,
			Path:      splitPath(d.Mailbox, d.Delim, info.prefix),
			Delimiter: d.Delim,
			Role:      roleFromAttrs(d.Attrs),
			NoSelect:  hasAttr(d.Attrs, imap.MailboxAttrNoSelect),
			Messages:  -1,
		}
		if strings.EqualFold(f.Name, "INBOX") {
			f.Name, f.Role = "INBOX", migrate.RoleInbox
		}
		claimed[f.Role] = true
		folders = append(folders, f)
	}
	for i := range folders {
		f := &folders[i]
		if f.Role == migrate.RoleNone {
			if r := roleFromName(f.Path); r != migrate.RoleNone && !claimed[r] {
				f.Role = r
			}
		}
	}
	slices.SortStableFunc(folders, func(a, b migrate.Folder) int {
		if ai, bi := a.Role == migrate.RoleInbox && len(a.Path) == 1, b.Role == migrate.RoleInbox && len(b.Path) == 1; ai != bi {
			if ai {
				return -1
			}
			return 1
		}
		return slices.Compare(a.Path, b.Path)
	})

	// STATUS every selectable folder, pipelined.
	cmds := make([]*imapclient.StatusCommand, len(folders))
	for i, f := range folders {
		if !f.NoSelect {
			cmds[i] = c.Status(f.Name, &imap.StatusOptions{NumMessages: true, UIDValidity: true})
		}
	}
	var firstErr error
	for i, cmd := range cmds {
		if cmd == nil {
			continue
		}
		data, err := cmd.Wait()
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("STATUS %q: %w", folders[i].Name, err)
			}
			continue
		}
		folders[i].UIDValidity = data.UIDValidity
		if data.NumMessages != nil {
			folders[i].Messages = int(*data.NumMessages)
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return folders, nil
}

// splitPath splits a folder's full name into levels below the personal
// namespace prefix: "INBOX.Sent" with prefix "INBOX." is ["Sent"], INBOX
// itself is ["INBOX"].
func splitPath(name string, delim rune, prefix string) []string {
	if prefix != "" && len(name) > len(prefix) && strings.HasPrefix(strings.ToUpper(name), strings.ToUpper(prefix)) {
		name = name[len(prefix):]
	}
	if delim == 0 {
		return []string{name}
	}
	return strings.Split(name, string(delim))
}

func hasAttr(attrs []imap.MailboxAttr, want imap.MailboxAttr) bool {
	return slices.ContainsFunc(attrs, func(a imap.MailboxAttr) bool { return strings.EqualFold(string(a), string(want)) })
}

// wrapErr gives err the package prefix and the operation, keeping its
// kind (errors.Is) intact.
func wrapErr(what string, err error) error {
	if err == nil || strings.HasPrefix(err.Error(), "imapsrc: ") {
		return err
	}
	return fmt.Errorf("imapsrc: %s: %w", what, err)
}
