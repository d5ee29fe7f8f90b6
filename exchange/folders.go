package exchange

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/users"

	"github.com/mailferry/mailferry/migrate"
)

// wellKnownNames maps roles to Exchange's well-known folder names, which
// Graph accepts in place of a folder id
// (https://learn.microsoft.com/graph/api/resources/mailfolder#well-known-folder-names).
// RoleAll and RoleFlagged have no Exchange counterpart: those folders are
// created by name like any other.
var wellKnownNames = map[migrate.Role]string{
	migrate.RoleInbox:   "inbox",
	migrate.RoleSent:    "sentitems",
	migrate.RoleDrafts:  "drafts",
	migrate.RoleTrash:   "deleteditems",
	migrate.RoleJunk:    "junkemail",
	migrate.RoleArchive: "archive",
}

// folderKey is the key of EnsureFolder's cache: its arguments.
type folderKey struct {
	parentID, name string
	role           migrate.Role
}

// EnsureFolder implements migrate.Sink. It returns the id of the folder
// for role if role has an Exchange well-known folder (inbox, sentitems,
// drafts, deleteditems, junkemail, archive), looked up with
// GET /users/{id}/mailFolders/{well-known name}; otherwise the id of the
// folder named name under parentID ("" is the top of the mailbox, that is
// msgfolderroot), which it looks up by displayName and creates when it is
// absent. Results are cached in the Mailbox, so each folder costs one
// look-up per run. The display name is FolderDisplayName(name): names
// Graph would refuse (blank ones) or that are too long are escaped or
// shortened, reversibly where possible.
//
// Exchange refuses a second folder of the same name under one parent with
// ErrorFolderExists (https://learn.microsoft.com/graph/api/mailfolder-post-childfolders);
// when another writer creates the folder between the look-up and the
// creation, EnsureFolder looks it up again and returns its id.
//
// After a look-up that succeeded, EnsureFolder has the Client sweep the
// mailbox of what received-date probes that could not clean up left
// there, once per mailbox and Client (see ProbeReceivedDates): a cached
// folder costs nothing, and a sweep that fails is logged, not returned,
// and tried again after a later look-up.
//
// Needs the Mail.ReadWrite permission.
func (mb *Mailbox) EnsureFolder(ctx context.Context, parentID, name string, role migrate.Role) (string, error) {
	ctx = mb.scoped(ctx)
	key := folderKey{parentID, name, role}
	mb.mu.Lock()
	id, ok := mb.folders[key]
	mb.mu.Unlock()
	if ok {
		return id, nil
	}

	var err error
	if wk, ok := wellKnownNames[role]; ok {
		id, err = mb.wellKnownFolder(ctx, wk)
		var ge *GraphError
		if err != nil && errors.As(err, &ge) && ge.StatusCode == http.StatusNotFound && errors.Is(err, migrate.ErrItem) && name != "" {
			// A mailbox may lack a well-known folder (archive, for
			// one); create an ordinary folder of that name instead.
			mb.c.logger.LogAttrs(ctx, slog.LevelInfo, "exchange: well-known folder missing, creating it by name",
				slog.String("user", mb.user), slog.String("folder", wk))
			id, err = mb.folderByName(ctx, parentID, FolderDisplayName(name))
		}
	} else {
		if name == "" {
			return "", migrate.ItemError(errors.New("exchange: ensure folder: empty folder name"))
		}
		id, err = mb.folderByName(ctx, parentID, FolderDisplayName(name))
	}
	if err != nil {
		return "", err
	}
	mb.sweepProbes(ctx)
	mb.mu.Lock()
	mb.folders[key] = id
	mb.mu.Unlock()
	return id, nil
}

// wellKnownFolder returns the id of a well-known folder.
func (mb *Mailbox) wellKnownFolder(ctx context.Context, wellKnown string) (string, error) {
	f, err := mb.c.graph.Users().ByUserId(mb.user).MailFolders().ByMailFolderId(wellKnown).Get(ctx,
		&users.ItemMailFoldersMailFolderItemRequestBuilderGetRequestConfiguration{
			QueryParameters: &users.ItemMailFoldersMailFolderItemRequestBuilderGetQueryParameters{
				Select: []string{"id", "displayName"},
			},
		})
	if err != nil {
		return "", classify(fmt.Sprintf("get well-known folder %q", wellKnown), err)
	}
	if f == nil || f.GetId() == nil || *f.GetId() == "" {
		return "", fmt.Errorf("exchange: get well-known folder %q: no id in the answer", wellKnown)
	}
	return *f.GetId(), nil
}

// folderByName returns the id of the child of parentID named name,
// creating it when absent.
func (mb *Mailbox) folderByName(ctx context.Context, parentID, name string) (string, error) {
	id, err := mb.findFolder(ctx, parentID, name)
	if err != nil || id != "" {
		return id, err
	}
	id, err = mb.createFolder(ctx, parentID, name)
	if err == nil {
		return id, nil
	}
	var ge *GraphError
	if errors.As(err, &ge) && (ge.Code == "ErrorFolderExists" || ge.StatusCode == http.StatusConflict) {
		// Someone created it since the look-up: take theirs.
		id, ferr := mb.findFolder(ctx, parentID, name)
		if ferr != nil {
			return "", ferr
		}
		if id != "" {
			return id, nil
		}
	}
	return "", err
}

// findFolder looks a child folder up by display name with
// $filter=displayName eq '...' on the parent's childFolders (or on the
// top-level mailFolders when parentID is ""), and returns "" when there is
// none. Exchange compares folder names case-insensitively; an exact match
// is preferred when several come back.
func (mb *Mailbox) findFolder(ctx context.Context, parentID, name string) (string, error) {
	filter := "displayName eq " + quote(name)
	sel := []string{"id", "displayName"}
	var (
		resp models.MailFolderCollectionResponseable
		err  error
	)
	folders := mb.c.graph.Users().ByUserId(mb.user).MailFolders()
	if parentID == "" {
		resp, err = folders.Get(ctx, &users.ItemMailFoldersRequestBuilderGetRequestConfiguration{
			QueryParameters: &users.ItemMailFoldersRequestBuilderGetQueryParameters{Filter: &filter, Select: sel},
		})
	} else {
		resp, err = folders.ByMailFolderId(parentID).ChildFolders().Get(ctx, &users.ItemMailFoldersItemChildFoldersRequestBuilderGetRequestConfiguration{
			QueryParameters: &users.ItemMailFoldersItemChildFoldersRequestBuilderGetQueryParameters{Filter: &filter, Select: sel},
		})
	}
	if err != nil {
		return "", classify(fmt.Sprintf("find folder %q under %s", name, parentName(parentID)), err)
	}
	if resp == nil {
		return "", nil
	}
	found := ""
	for _, f := range resp.GetValue() {
		if f == nil || f.GetId() == nil || f.GetDisplayName() == nil {
			continue
		}
		switch dn := *f.GetDisplayName(); {
		case dn == name:
			return *f.GetId(), nil
		case found == "" && strings.EqualFold(dn, name):
			found = *f.GetId()
		}
	}
	return found, nil
}

// createFolder creates a child folder with
// POST .../childFolders {"displayName": name}
// (https://learn.microsoft.com/graph/api/mailfolder-post-childfolders),
// or POST /users/{id}/mailFolders at the top
// (https://learn.microsoft.com/graph/api/user-post-mailfolders).
func (mb *Mailbox) createFolder(ctx context.Context, parentID, name string) (string, error) {
	body := models.NewMailFolder()
	body.SetDisplayName(&name)
	var (
		f   models.MailFolderable
		err error
	)
	folders := mb.c.graph.Users().ByUserId(mb.user).MailFolders()
	if parentID == "" {
		f, err = folders.Post(ctx, body, nil)
	} else {
		f, err = folders.ByMailFolderId(parentID).ChildFolders().Post(ctx, body, nil)
	}
	op := fmt.Sprintf("create folder %q under %s", name, parentName(parentID))
	if err != nil {
		return "", classify(op, err)
	}
	if f == nil || f.GetId() == nil || *f.GetId() == "" {
		return "", fmt.Errorf("exchange: %s: no id in the answer", op)
	}
	return *f.GetId(), nil
}

func parentName(parentID string) string {
	if parentID == "" {
		return "the top of the mailbox"
	}
	return "folder " + parentID
}

// quote renders s as an OData string literal: in single quotes, with each
// single quote doubled (https://learn.microsoft.com/graph/query-parameters#escaping-single-quotes).
func quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// maxFolderName is the longest folder name EnsureFolder creates, in
// characters. No Graph page documents a limit for a mailFolder's
// displayName; Exchange ActiveSync's FolderCreate allows 1 to 256
// characters (MS-ASCMD DisplayName), the one documented Exchange bound,
// and 255 leaves room for a UTF-16 surrogate.
const maxFolderName = 255

// FolderDisplayName returns the displayName EnsureFolder gives a folder
// named name. Names are kept as they are, except where Exchange would
// refuse or alter them:
//
//   - A name that is empty or all white space (Graph refuses a blank
//     displayName) has every character escaped as %XX (UTF-8 bytes in
//     hexadecimal), e.g. " " becomes "%20".
//   - Control characters (U+0000 to U+001F, U+007F) are escaped as %XX.
//   - A '%' that is followed by two hexadecimal digits, and could thus be
//     read as an escape, is escaped as "%25", so that the mapping is
//     reversible: UnescapeFolderName returns the original name. A '%' not
//     followed so ("100% done") stays.
//   - A name longer than 255 characters after escaping is cut to 246 and
//     given "~" and 8 hexadecimal digits of its SHA-256, so that long
//     names stay distinct; such a name cannot be reversed (the migration
//     report and State keep the source names).
func FolderDisplayName(name string) string {
	blank := strings.TrimSpace(name) == ""
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case blank, c < 0x20, c == 0x7f:
			fmt.Fprintf(&b, "%%%02X", c)
		case c == '%' && i+2 < len(name) && isHex(name[i+1]) && isHex(name[i+2]):
			b.WriteString("%25")
		default:
			b.WriteByte(c)
		}
	}
	out := b.String()
	if utf8.RuneCountInString(out) <= maxFolderName {
		return out
	}
	sum := sha256.Sum256([]byte(name))
	runes := []rune(out)[:maxFolderName-9]
	return string(runes) + "~" + hex.EncodeToString(sum[:4])
}

// UnescapeFolderName reverses FolderDisplayName for names it did not
// shorten: each %XX becomes the byte XX.
func UnescapeFolderName(display string) string {
	var b strings.Builder
	for i := 0; i < len(display); i++ {
		if display[i] == '%' && i+2 < len(display) && isHex(display[i+1]) && isHex(display[i+2]) {
			v, _ := strconv.ParseUint(display[i+1:i+3], 16, 8)
			b.WriteByte(byte(v))
			i += 2
			continue
		}
		b.WriteByte(display[i])
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
