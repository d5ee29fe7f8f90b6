package migrate

import (
	"maps"
	"strings"
)

// Role is the special purpose of a folder: its RFC 6154 SPECIAL-USE
// attribute on IMAP, its well-known name on Exchange.
type Role string

// The folder roles. RoleNone is an ordinary folder.
const (
	RoleNone    Role = ""
	RoleInbox   Role = "inbox"
	RoleSent    Role = "sent"
	RoleDrafts  Role = "drafts"
	RoleTrash   Role = "trash"
	RoleJunk    Role = "junk"
	RoleArchive Role = "archive"
	RoleAll     Role = "all"     // \All: a virtual folder of every message (Gmail's All Mail)
	RoleFlagged Role = "flagged" // \Flagged: a virtual folder of flagged messages
)

// Folder is a folder of a source mailbox.
type Folder struct {
	// Name is the folder's full name on the source, decoded to UTF-8, with
	// the source's own delimiter ("INBOX.Sent", "Projects/2024"). It is the
	// folder's key: Source methods take it back.
	Name string
	// Path is Name split into its hierarchy levels below the user's root:
	// the personal namespace prefix and any admin root are removed
	// (["Sent"] for "INBOX.Sent" on a Courier-style server).
	Path []string
	// Delimiter is the source's hierarchy delimiter, 0 for a flat namespace.
	Delimiter rune
	// Role is the folder's special use, RoleNone if it has none.
	Role Role
	// UIDValidity is the folder's UIDVALIDITY (0 when NoSelect).
	UIDValidity uint32
	// Messages is the number of messages, or -1 when unknown.
	Messages int
	// NoSelect marks a folder that holds no messages, only children.
	NoSelect bool
	// ModSeq is the folder's HIGHESTMODSEQ (IMAP CONDSTORE, RFC 7162), or
	// 0 when the source has none. When it equals what the State recorded
	// after the last complete pass, nothing in the folder changed.
	ModSeq uint64
	// Bytes is the total size of the folder's messages, or -1 when unknown.
	Bytes int64
	// Err, when set, is why the source cannot read this folder (its
	// status could not be had: deleted since it was listed, say). The
	// Engine then neither creates its target nor reads it: it reports the
	// folder as failed with Err and goes on with the others, so that the
	// folder stays in the report rather than vanishing from it.
	Err error
}

// Target is where a source folder goes in the sink mailbox.
type Target struct {
	// Path is the display name of each level, from the mailbox root down.
	Path []string
	// Role, if set, makes the last level the sink's own folder for that
	// role (Exchange's "sentitems" for RoleSent) whatever its name.
	Role Role
	// Skip leaves the source folder out of the migration.
	Skip bool
}

// Key returns the target path as one string, for maps and reports: its
// levels joined with "/", a "/" or "\" inside a level escaped with "\"
// (`a\/b` is the one folder "a/b"; "a/b" is the folder "b" inside "a"),
// so that two different paths never share a key.
func (t Target) Key() string {
	escaped := make([]string, len(t.Path))
	for i, level := range t.Path {
		escaped[i] = keyEscaper.Replace(level)
	}
	return strings.Join(escaped, "/")
}

var keyEscaper = strings.NewReplacer(`\`, `\\`, "/", `\/`)

// A FolderMapper decides where each source folder goes. It sees the whole
// tree at once, so it can resolve parents and collisions; it returns one
// Target per folder, in the same order.
type FolderMapper interface {
	MapFolders(folders []Folder) ([]Target, error)
}

// FolderMapperFunc adapts a function to a FolderMapper.
type FolderMapperFunc func(folders []Folder) ([]Target, error)

// MapFolders calls f.
func (f FolderMapperFunc) MapFolders(folders []Folder) ([]Target, error) { return f(folders) }

// DefaultRoleNames returns the display names DefaultMapper gives the
// folders that have a role: Outlook's English names, which Exchange shows
// localized anyway. Each call returns a new map, which the caller may
// change and give to NewRoleMapper.
func DefaultRoleNames() map[Role]string {
	return map[Role]string{
		RoleInbox:   "Inbox",
		RoleSent:    "Sent Items",
		RoleDrafts:  "Drafts",
		RoleTrash:   "Deleted Items",
		RoleJunk:    "Junk Email",
		RoleArchive: "Archive",
	}
}

// DefaultMapper returns the FolderMapper that maps folders the way
// Exchange's own IMAP migration does: NewRoleMapper(DefaultRoleNames()).
func DefaultMapper() FolderMapper { return NewRoleMapper(DefaultRoleNames()) }

// NewRoleMapper returns a FolderMapper that sends a folder with a role in
// names (Inbox, Sent, Drafts, Trash, Junk, Archive) to the sink's
// well-known folder for that role, named names[role]; every other folder
// keeps its path, with any ancestor that has a role replaced by that
// role's name ("INBOX/Projects" lands in Inbox/Projects). Folders whose
// role is not in names (such as the virtual \All and \Flagged) keep their
// names as ordinary folders. When two source folders claim the same role,
// the first (in source order) takes it and the other stays an ordinary
// folder under its own name. The mapper keeps its own copy of names.
func NewRoleMapper(names map[Role]string) FolderMapper {
	names = maps.Clone(names)
	return FolderMapperFunc(func(folders []Folder) ([]Target, error) { return mapByRole(names, folders) })
}

func mapByRole(roleNames map[Role]string, folders []Folder) ([]Target, error) {
	byPath := make(map[string]*Folder, len(folders))
	roleTaken := map[Role]string{}
	for i := range folders {
		f := &folders[i]
		byPath[strings.Join(f.Path, "\x00")] = f
		if _, ok := roleNames[f.Role]; ok && len(f.Path) > 0 {
			if _, taken := roleTaken[f.Role]; !taken {
				roleTaken[f.Role] = f.Name
			}
		}
	}
	hasRole := func(f *Folder) bool {
		_, ok := roleNames[f.Role]
		return ok && roleTaken[f.Role] == f.Name
	}
	out := make([]Target, len(folders))
	for i := range folders {
		f := &folders[i]
		if len(f.Path) == 0 {
			out[i] = Target{Skip: true}
			continue
		}
		if hasRole(f) {
			out[i] = Target{Path: []string{roleNames[f.Role]}, Role: f.Role}
			continue
		}
		path := append([]string(nil), f.Path...)
		// The deepest ancestor with a role replaces its whole prefix.
		for n := len(f.Path) - 1; n > 0; n-- {
			if a, ok := byPath[strings.Join(f.Path[:n], "\x00")]; ok && hasRole(a) {
				path = append([]string{roleNames[a.Role]}, f.Path[n:]...)
				break
			}
		}
		out[i] = Target{Path: path}
	}
	return out, nil
}
