package imapsrc

import (
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/migrate"
)

// specialUseRoles maps RFC 6154 SPECIAL-USE attributes to roles.
var specialUseRoles = map[imap.MailboxAttr]migrate.Role{
	imap.MailboxAttrSent:    migrate.RoleSent,
	imap.MailboxAttrDrafts:  migrate.RoleDrafts,
	imap.MailboxAttrTrash:   migrate.RoleTrash,
	imap.MailboxAttrJunk:    migrate.RoleJunk,
	imap.MailboxAttrArchive: migrate.RoleArchive,
	imap.MailboxAttrAll:     migrate.RoleAll,
	imap.MailboxAttrFlagged: migrate.RoleFlagged,
}

// roleFromAttrs returns the role given by a SPECIAL-USE attribute, if any.
func roleFromAttrs(attrs []imap.MailboxAttr) migrate.Role {
	for _, a := range attrs {
		for attr, role := range specialUseRoles {
			if strings.EqualFold(string(a), string(attr)) {
				return role
			}
		}
	}
	return migrate.RoleNone
}

// DefaultRoleNames returns the folder names, lower-cased, that give a
// folder its role on servers without SPECIAL-USE: the English names of
// common clients and servers (Gmail's "[gmail]/sent mail" included) and
// their German, French, Spanish, Italian, Portuguese and Dutch
// translations. It is the default of Options.RoleNames. Each call returns
// a new map, which the caller may change (add a site's own names) and set
// as Options.RoleNames.
func DefaultRoleNames() map[string]migrate.Role {
	return map[string]migrate.Role{
		// English, and the names of common clients and servers.
		"sent":                    migrate.RoleSent,
		"sent items":              migrate.RoleSent,
		"sent messages":           migrate.RoleSent,
		"sent mail":               migrate.RoleSent,
		"sent-mail":               migrate.RoleSent,
		"[gmail]/sent mail":       migrate.RoleSent,
		"[google mail]/sent mail": migrate.RoleSent,
		"drafts":                  migrate.RoleDrafts,
		"draft":                   migrate.RoleDrafts,
		"[gmail]/drafts":          migrate.RoleDrafts,
		"[google mail]/drafts":    migrate.RoleDrafts,
		"trash":                   migrate.RoleTrash,
		"deleted items":           migrate.RoleTrash,
		"deleted messages":        migrate.RoleTrash,
		"deleted":                 migrate.RoleTrash,
		"bin":                     migrate.RoleTrash,
		"[gmail]/trash":           migrate.RoleTrash,
		"[gmail]/bin":             migrate.RoleTrash,
		"[google mail]/trash":     migrate.RoleTrash,
		"[google mail]/bin":       migrate.RoleTrash,
		"junk":                    migrate.RoleJunk,
		"spam":                    migrate.RoleJunk,
		"junk e-mail":             migrate.RoleJunk,
		"junk email":              migrate.RoleJunk,
		"junk mail":               migrate.RoleJunk,
		"bulk mail":               migrate.RoleJunk,
		"[gmail]/spam":            migrate.RoleJunk,
		"[google mail]/spam":      migrate.RoleJunk,
		"archive":                 migrate.RoleArchive,
		"archives":                migrate.RoleArchive,
		"[gmail]/all mail":        migrate.RoleAll,
		"[google mail]/all mail":  migrate.RoleAll,
		"[gmail]/starred":         migrate.RoleFlagged,
		"[google mail]/starred":   migrate.RoleFlagged,
		// German.
		"gesendet":           migrate.RoleSent,
		"gesendete objekte":  migrate.RoleSent,
		"gesendete elemente": migrate.RoleSent,
		"entwürfe":           migrate.RoleDrafts,
		"papierkorb":         migrate.RoleTrash,
		"gelöschte elemente": migrate.RoleTrash,
		"gelöschte objekte":  migrate.RoleTrash,
		"spam-verdacht":      migrate.RoleJunk,
		"junk-e-mail":        migrate.RoleJunk,
		"archiv":             migrate.RoleArchive,
		// French.
		"envoyés":              migrate.RoleSent,
		"éléments envoyés":     migrate.RoleSent,
		"messages envoyés":     migrate.RoleSent,
		"brouillons":           migrate.RoleDrafts,
		"corbeille":            migrate.RoleTrash,
		"éléments supprimés":   migrate.RoleTrash,
		"courrier indésirable": migrate.RoleJunk,
		"indésirables":         migrate.RoleJunk,
		// Spanish.
		"enviados":             migrate.RoleSent,
		"elementos enviados":   migrate.RoleSent,
		"borradores":           migrate.RoleDrafts,
		"papelera":             migrate.RoleTrash,
		"elementos eliminados": migrate.RoleTrash,
		"correo no deseado":    migrate.RoleJunk,
		"archivo":              migrate.RoleArchive,
		// Italian.
		"posta inviata":      migrate.RoleSent,
		"inviata":            migrate.RoleSent,
		"elementi inviati":   migrate.RoleSent,
		"bozze":              migrate.RoleDrafts,
		"cestino":            migrate.RoleTrash,
		"posta eliminata":    migrate.RoleTrash,
		"elementi eliminati": migrate.RoleTrash,
		"posta indesiderata": migrate.RoleJunk,
		"archivio":           migrate.RoleArchive,
		// Portuguese.
		"itens enviados":  migrate.RoleSent,
		"rascunhos":       migrate.RoleDrafts,
		"lixeira":         migrate.RoleTrash,
		"itens excluídos": migrate.RoleTrash,
		"lixo eletrônico": migrate.RoleJunk,
		// Dutch.
		"verzonden":         migrate.RoleSent,
		"verzonden items":   migrate.RoleSent,
		"concepten":         migrate.RoleDrafts,
		"prullenbak":        migrate.RoleTrash,
		"verwijderde items": migrate.RoleTrash,
		"ongewenste e-mail": migrate.RoleJunk,
		"archief":           migrate.RoleArchive,
	}
}

// roleFromName returns the role that a folder's name suggests, given its
// path below the personal namespace and the names of Options.RoleNames
// (keys lower-cased).
func roleFromName(names map[string]migrate.Role, path []string) migrate.Role {
	if len(path) == 1 && strings.EqualFold(path[0], "INBOX") {
		return migrate.RoleInbox
	}
	return names[strings.ToLower(strings.Join(path, "/"))]
}
