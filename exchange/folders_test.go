package exchange

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mailferry/mailferry/exchange/exchangetest"
	"github.com/mailferry/mailferry/migrate"
)

func TestEnsureFolderWellKnown(t *testing.T) {
	e := newEnv(t, nil)
	roles := map[migrate.Role]string{
		migrate.RoleInbox: "inbox", migrate.RoleSent: "sentitems", migrate.RoleDrafts: "drafts",
		migrate.RoleTrash: "deleteditems", migrate.RoleJunk: "junkemail", migrate.RoleArchive: "archive",
	}
	for role, wk := range roles {
		id := e.folder(t, migrate.DefaultRoleNames()[role], role)
		if want := e.wellKnown(t, wk); id != want {
			t.Errorf("EnsureFolder(%s) = %q, want the %s folder %q", role, id, wk, want)
		}
	}
	before := e.srv.Stats().Requests
	for role := range roles {
		e.folder(t, migrate.DefaultRoleNames()[role], role)
	}
	if n := e.srv.Stats().Requests - before; n != 0 {
		t.Errorf("second round of EnsureFolder made %d requests, want 0 (cached)", n)
	}
}

func TestEnsureFolderNested(t *testing.T) {
	e := newEnv(t, nil)
	proj := e.folder(t, "Projects", migrate.RoleNone)
	child := ensureFolder(t, e.mb, proj, "Bob's 2024 & co", migrate.RoleNone)
	inbox := e.folder(t, "Inbox", migrate.RoleInbox)
	underInbox := ensureFolder(t, e.mb, inbox, "Projects", migrate.RoleNone)
	if underInbox == proj {
		t.Errorf("Inbox/Projects and Projects share id %q", proj)
	}
	root := e.wellKnown(t, "msgfolderroot")
	for _, c := range []struct{ id, parent, name string }{
		{proj, root, "Projects"}, {child, proj, "Bob's 2024 & co"}, {underInbox, inbox, "Projects"},
	} {
		f := e.storedFolder(t, c.id)
		if f.ParentID != c.parent || f.DisplayName != c.name {
			t.Errorf("folder %q: parent %q name %q, want %q %q", c.id, f.ParentID, f.DisplayName, c.parent, c.name)
		}
	}

	// A new Mailbox (a new run: empty cache) finds the same folders by
	// name and creates nothing.
	n := len(e.srv.Folders(testUser))
	mb2 := e.c.Mailbox(testUser)
	proj2, err := mb2.EnsureFolder(t.Context(), "", "Projects", migrate.RoleNone)
	if err != nil || proj2 != proj {
		t.Errorf("second run: Projects = %q, %v; want %q", proj2, err, proj)
	}
	child2, err := mb2.EnsureFolder(t.Context(), proj2, "Bob's 2024 & co", migrate.RoleNone)
	if err != nil || child2 != child {
		t.Errorf("second run: child = %q, %v; want %q", child2, err, child)
	}
	if got := len(e.srv.Folders(testUser)); got != n {
		t.Errorf("second run created folders: %d, want %d", got, n)
	}
	if st := e.srv.Stats(); st.ByRoute["GET /users/{user}/mailFolders"] == 0 {
		t.Errorf("top-level look-up did not use GET /users/{user}/mailFolders: %v", st.ByRoute)
	}
}

// TestEnsureFolderExistsRace makes another writer create the folder
// between EnsureFolder's look-up and its creation: the creation fails with
// ErrorFolderExists and EnsureFolder returns the other writer's folder.
func TestEnsureFolderExistsRace(t *testing.T) {
	var other *Mailbox
	var raced atomic.Bool
	e := newEnv(t, &envOptions{hook: func(r *http.Request) (*http.Response, error) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/childFolders") && raced.CompareAndSwap(false, true) {
			if _, err := other.EnsureFolder(r.Context(), parentFromPath(r.URL.Path), "Racy", migrate.RoleNone); err != nil {
				return nil, err
			}
		}
		return nil, nil
	}})
	other = e.c.Mailbox(testUser)
	inbox := e.folder(t, "Inbox", migrate.RoleInbox)
	id, err := e.mb.EnsureFolder(t.Context(), inbox, "Racy", migrate.RoleNone)
	if err != nil {
		t.Fatalf("EnsureFolder after a race: %v", err)
	}
	if !raced.Load() {
		t.Fatal("the race was not staged")
	}
	var racy []exchangetest.Folder
	for _, f := range e.srv.Folders(testUser) {
		if f.DisplayName == "Racy" {
			racy = append(racy, f)
		}
	}
	if len(racy) != 1 || racy[0].ID != id || racy[0].ParentID != inbox {
		t.Errorf("after the race: folders %+v, EnsureFolder returned %q", racy, id)
	}
}

// parentFromPath returns the {id} of .../mailFolders/{id}/childFolders.
func parentFromPath(p string) string {
	parts := strings.Split(p, "/")
	return parts[len(parts)-2]
}

func TestFolderDisplayName(t *testing.T) {
	long := strings.Repeat("é", 300)
	for _, tc := range []struct{ in, want string }{
		{"Projects", "Projects"},
		{"100% done", "100% done"},
		{"%41", "%2541"},
		{" ", "%20"},
		{"\t ", "%09%20"},
		{"a\x01b", "a%01b"},
		{"Café/Réunions", "Café/Réunions"},
	} {
		got := FolderDisplayName(tc.in)
		if got != tc.want {
			t.Errorf("FolderDisplayName(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if back := UnescapeFolderName(got); back != tc.in {
			t.Errorf("UnescapeFolderName(%q) = %q, want %q", got, back, tc.in)
		}
	}
	a, b := FolderDisplayName(long), FolderDisplayName(long+"x")
	if n := len([]rune(a)); n != maxFolderName || a == b || !strings.HasPrefix(a, strings.Repeat("é", 200)) {
		t.Errorf("long names: %d runes, distinct %v", n, a != b)
	}

	e := newEnv(t, nil)
	for _, name := range []string{"  ", "%41", long} {
		id := e.folder(t, name, migrate.RoleNone)
		if got := e.storedFolder(t, id).DisplayName; got != FolderDisplayName(name) {
			t.Errorf("folder %q created as %q", name, got)
		}
		// A new Mailbox (a new run) finds it again.
		if again, err := e.c.Mailbox(testUser).EnsureFolder(t.Context(), "", name, migrate.RoleNone); err != nil || again != id {
			t.Errorf("EnsureFolder(%q) again = %q, %v; want %q", name, again, err, id)
		}
	}
}

func TestQuote(t *testing.T) {
	if got := quote("Bob's 'x'"); got != "'Bob''s ''x'''" {
		t.Errorf("quote = %s", got)
	}
}
