package imapsrc_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/mailferry/mailferry/imapsrc"
	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

// rolesByName returns the role of each of src's folders, by name.
func rolesByName(t *testing.T, src *imapsrc.Source) map[string]migrate.Role {
	t.Helper()
	got := map[string]migrate.Role{}
	for _, f := range folders(t, src) {
		got[f.Name] = f.Role
	}
	return got
}

func TestRolesFromNames(t *testing.T) {
	// imapmemserver without SPECIAL-USE attributes: roles come from names.
	addr := startMem(t, "alice", "secret")
	fx := &migratetest.Fixture{}
	for _, p := range []string{"Sent Items", "Entwürfe", "Papierkorb", "Spam", "Archiv", "Notes"} {
		fx.Folders = append(fx.Folders, migratetest.FixtureFolder{Path: []string{p}})
	}
	seed(t, addr, "alice", "secret", fx)
	newSrc := func(names map[string]migrate.Role) *imapsrc.Source {
		src := imapsrc.New(&imapsrc.Options{Addr: addr, Security: imapsrc.Plaintext, Username: "alice", Password: "secret", RoleNames: names})
		closeSrc(t, src)
		return src
	}

	t.Run("default", func(t *testing.T) {
		assert.Equal(t, map[string]migrate.Role{"INBOX": migrate.RoleInbox, "Sent Items": migrate.RoleSent, "Entwürfe": migrate.RoleDrafts,
			"Papierkorb": migrate.RoleTrash, "Spam": migrate.RoleJunk, "Archiv": migrate.RoleArchive, "Notes": migrate.RoleNone},
			rolesByName(t, newSrc(nil)))
	})
	t.Run("own-names", func(t *testing.T) {
		// Options.RoleNames replaces the defaults, its keys in any case;
		// the Source keeps its own copy.
		names := map[string]migrate.Role{"NOTES": migrate.RoleArchive, "spam": migrate.RoleJunk}
		src := newSrc(names)
		names["sent items"] = migrate.RoleSent
		assert.Equal(t, map[string]migrate.Role{"INBOX": migrate.RoleInbox, "Sent Items": migrate.RoleNone, "Entwürfe": migrate.RoleNone,
			"Papierkorb": migrate.RoleNone, "Spam": migrate.RoleJunk, "Archiv": migrate.RoleNone, "Notes": migrate.RoleArchive},
			rolesByName(t, src))
	})
	t.Run("none", func(t *testing.T) {
		got := rolesByName(t, newSrc(map[string]migrate.Role{}))
		assert.Len(t, got, 1+len(fx.Folders))
		for name, role := range got {
			if name == "INBOX" {
				assert.Equal(t, migrate.RoleInbox, role, "INBOX")
			} else {
				assert.Equal(t, migrate.RoleNone, role, "%q without role names", name)
			}
		}
	})
}

func TestDefaultRoleNames(t *testing.T) {
	names := imapsrc.DefaultRoleNames()
	assert.Equal(t, migrate.RoleSent, names["sent items"])
	assert.Equal(t, migrate.RoleDrafts, names["entwürfe"])
	for name := range names {
		assert.Equal(t, strings.ToLower(name), name, "keys are lower-cased")
	}
	names["sent items"] = migrate.RoleNone
	delete(names, "drafts")
	again := imapsrc.DefaultRoleNames()
	assert.Equal(t, migrate.RoleSent, again["sent items"], "each call returns a new map")
	assert.Equal(t, migrate.RoleDrafts, again["drafts"], "each call returns a new map")
}
