package migrate_test

import (
	"slices"
	"testing"

	"github.com/mailferry/mailferry/migrate"
)

func TestDefaultMapper(t *testing.T) {
	folders := []migrate.Folder{
		{Name: "INBOX", Path: []string{"INBOX"}, Role: migrate.RoleInbox},
		{Name: "INBOX.Projects", Path: []string{"INBOX", "Projects"}},
		{Name: "INBOX.Sent", Path: []string{"Sent"}, Role: migrate.RoleSent},
		{Name: "INBOX.Sent.2019", Path: []string{"Sent", "2019"}},
		{Name: "INBOX.Old Sent", Path: []string{"Old Sent"}, Role: migrate.RoleSent},
		{Name: "[Gmail]/All Mail", Path: []string{"[Gmail]", "All Mail"}, Role: migrate.RoleAll},
		{Name: "Gesendet", Path: []string{"Gesendet", "Privat"}},
	}
	got, err := migrate.DefaultMapper().MapFolders(folders)
	if err != nil {
		t.Fatal(err)
	}
	want := []migrate.Target{
		{Path: []string{"Inbox"}, Role: migrate.RoleInbox},
		{Path: []string{"Inbox", "Projects"}},
		{Path: []string{"Sent Items"}, Role: migrate.RoleSent},
		{Path: []string{"Sent Items", "2019"}},
		{Path: []string{"Old Sent"}}, // the second \Sent folder stays itself
		{Path: []string{"[Gmail]", "All Mail"}},
		{Path: []string{"Gesendet", "Privat"}},
	}
	for i := range want {
		if !slices.Equal(got[i].Path, want[i].Path) || got[i].Role != want[i].Role || got[i].Skip {
			t.Errorf("%s -> %+v, want %+v", folders[i].Name, got[i], want[i])
		}
	}
}

// NewRoleMapper takes localized names and keeps its own copy of them;
// DefaultRoleNames hands out a fresh map each time, so that no caller can
// change another's mapping.
func TestRoleMapperNamesAreItsOwn(t *testing.T) {
	names := migrate.DefaultRoleNames()
	names[migrate.RoleSent] = "Gesendete Elemente"
	mapper := migrate.NewRoleMapper(names)
	names[migrate.RoleSent] = "changed after the mapper was made"
	got, err := mapper.MapFolders([]migrate.Folder{{Name: "Sent", Path: []string{"Sent"}, Role: migrate.RoleSent}})
	if err != nil || !slices.Equal(got[0].Path, []string{"Gesendete Elemente"}) || got[0].Role != migrate.RoleSent {
		t.Errorf("localized mapper: %+v, %v", got, err)
	}
	if migrate.DefaultRoleNames()[migrate.RoleSent] != "Sent Items" {
		t.Errorf("DefaultRoleNames changed by a caller's edit")
	}
}
