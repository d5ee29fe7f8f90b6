package imapsrc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailferry/mailferry/migrate"
)

// Folders lists every folder of the mailbox with LIST "" "*" (asking for
// SPECIAL-USE attributes where the server supports it; only subscribed
// folders with Options.SubscribedOnly; only those below Options.UserRoot
// when set), then asks STATUS (MESSAGES UIDVALIDITY, plus HIGHESTMODSEQ
// with CONDSTORE and SIZE with STATUS=SIZE or IMAP4rev2) of each
// selectable folder, pipelined. The folder an earlier operation left
// selected on the connection is closed first (UNSELECT, or CLOSE where
// the server lacks it), since a server may answer STATUS of the selected
// folder as it was when it was opened. INBOX comes first; the others
// follow ordered by path, so parents precede their children. Folders
// marked \NonExistent are left out; \Noselect ones are kept with NoSelect
// set.
// Folder.ModSeq is 0 and Folder.Bytes -1 where the server cannot tell.
//
// A folder whose STATUS the server refuses (NO or BAD: deleted between
// LIST and STATUS, or damaged) is still listed, with Folder.Err saying
// why (matching ErrNoFolder for a NO) and no UIDVALIDITY, so that the
// Engine reports it as failed with that reason instead of losing it from
// the report, and goes on with the others. A connection that fails during
// STATUS fails Folders as a whole (and is retried).
//
// Roles come from SPECIAL-USE attributes; for a role that no folder claims
// that way, from the folder names of Options.RoleNames. INBOX always has
// RoleInbox.
func (s *Source) Folders(ctx context.Context) ([]migrate.Folder, error) {
	var out []migrate.Folder
	err := s.do(ctx, "list folders", func() int { return 0 }, func(pc *pconn) error {
		var err error
		out, err = s.folders(pc)
		return err
	})
	if err != nil {
		return nil, wrapErr("list folders", err)
	}
	return out, nil
}

// folders is Folders on pc.
func (s *Source) folders(pc *pconn) ([]migrate.Folder, error) {
	// STATUS of the folder an earlier operation left selected on pc
	// would tell how it was then (see deselect).
	if err := deselect(pc); err != nil {
		return nil, err
	}
	c, info := pc.c, pc.info
	extended := info.caps.Has(imap.CapListExtended) || info.caps.Has(imap.CapIMAP4rev2)
	opts := &imap.ListOptions{
		ReturnSpecialUse: info.caps.Has(imap.CapSpecialUse) && extended,
		SelectSubscribed: s.opts.SubscribedOnly,
	}
	if s.opts.SubscribedOnly && !extended {
		return nil, migrate.MailboxError(errors.New("SubscribedOnly needs LIST-EXTENDED (RFC 5258), which the server lacks"))
	}
	pattern, root := "*", ""
	if s.opts.UserRoot != "" {
		delim, err := delimiter(c, info)
		if err != nil {
			return nil, err
		}
		root = strings.TrimSuffix(s.opts.UserRoot, string(delim)) + string(delim)
		pattern = root + "*"
	}
	list, err := c.List("", pattern, opts).Collect()
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
		var path []string
		if root != "" {
			rest, ok := cutPrefixFold(d.Mailbox, root)
			if !ok {
				continue
			}
			path = splitPath(rest, d.Delim, "")
		} else {
			path = splitPath(d.Mailbox, d.Delim, info.prefix)
		}
		f := migrate.Folder{
			Name:      d.Mailbox,
			Path:      path,
			Delimiter: d.Delim,
			Role:      roleFromAttrs(d.Attrs),
			NoSelect:  hasAttr(d.Attrs, imap.MailboxAttrNoSelect),
			Messages:  -1,
			Bytes:     -1,
		}
		if root == "" && strings.EqualFold(f.Name, "INBOX") {
			f.Name, f.Role = "INBOX", migrate.RoleInbox
		}
		claimed[f.Role] = true
		folders = append(folders, f)
	}
	for i := range folders {
		f := &folders[i]
		if f.Role == migrate.RoleNone {
			if r := roleFromName(s.opts.RoleNames, f.Path); r != migrate.RoleNone && !claimed[r] {
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
	statusOpts := &imap.StatusOptions{
		NumMessages:   true,
		UIDValidity:   true,
		HighestModSeq: info.caps.Has(imap.CapCondStore),
		Size:          hasStatusSize(info.caps),
	}
	cmds := make([]*imapclient.StatusCommand, len(folders))
	for i, f := range folders {
		if !f.NoSelect {
			cmds[i] = c.Status(f.Name, statusOpts)
		}
	}
	var firstErr error
	for i, cmd := range cmds {
		if cmd == nil {
			continue
		}
		data, err := cmd.Wait()
		var ie *imap.Error
		if errors.As(err, &ie) && (ie.Type == imap.StatusResponseTypeNo || ie.Type == imap.StatusResponseTypeBad) {
			// The server refused STATUS for this folder alone (deleted
			// since LIST, say): the folder fails, the others go on.
			if ie.Type == imap.StatusResponseTypeNo {
				err = fmt.Errorf("%w: %w", ErrNoFolder, err)
			}
			folders[i].Err = fmt.Errorf("imapsrc: STATUS %q: %w", folders[i].Name, err)
			s.opts.Logger.Warn("imapsrc: STATUS failed; the folder cannot be read", "source", s.String(), "folder", folders[i].Name, "err", err)
			continue
		}
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
		if data.Size != nil {
			folders[i].Bytes = *data.Size
		}
		folders[i].ModSeq = data.HighestModSeq
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return folders, nil
}

// hasStatusSize reports whether STATUS can return SIZE (RFC 8438).
func hasStatusSize(caps imap.CapSet) bool {
	return caps.Has(imap.CapStatusSize) || caps.Has(imap.CapIMAP4rev2)
}

// delimiter returns the hierarchy delimiter: the personal namespace's, or
// the one LIST "" "" reports.
func delimiter(c *imapclient.Client, info *serverInfo) (rune, error) {
	if info.delim != 0 {
		return info.delim, nil
	}
	list, err := c.List("", "", nil).Collect()
	if err != nil {
		return 0, fmt.Errorf("LIST delimiter: %w", err)
	}
	if len(list) == 0 || list[0].Delim == 0 {
		return '/', nil
	}
	return list[0].Delim, nil
}

// splitPath splits a folder's full name into levels below the personal
// namespace prefix: "INBOX.Sent" with prefix "INBOX." is ["Sent"], INBOX
// itself is ["INBOX"].
func splitPath(name string, delim rune, prefix string) []string {
	if rest, ok := cutPrefixFold(name, prefix); ok {
		name = rest
	}
	if delim == 0 {
		return []string{name}
	}
	return strings.Split(name, string(delim))
}

// cutPrefixFold returns s without prefix, matched case-insensitively, and
// true, if s is longer than a non-empty prefix and starts with it.
func cutPrefixFold(s, prefix string) (string, bool) {
	if prefix == "" || len(s) <= len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return s, false
	}
	return s[len(prefix):], true
}

// hasAttr reports whether attrs holds want, compared case-insensitively.
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
