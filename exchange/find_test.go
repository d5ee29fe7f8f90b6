package exchange

import (
	"slices"
	"testing"

	"github.com/mailferry/mailferry/migrate"
)

func TestFind(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	folder := e.folder(t, "O'Brien's", migrate.RoleNone)
	msgID := "<o'brien.1@example.org>"
	m := message("Folder 'quoted'/x", 7, sampleMIME(msgID, "find me"))
	id := e.put(t, folder, m)
	m2 := message("Folder 'quoted'/x", 8, sampleMIME("<other@example.org>", "other"))
	id2 := e.put(t, folder, m2)

	if got, err := e.mb.FindWatermark(ctx, folder, m.ID); err != nil || got != id {
		t.Errorf("FindWatermark = %q, %v; want %q", got, err, id)
	}
	if got, err := e.mb.FindWatermark(ctx, folder, m2.ID); err != nil || got != id2 {
		t.Errorf("FindWatermark(2nd) = %q, %v; want %q", got, err, id2)
	}
	absent := m.ID
	absent.UID = 9999
	if got, err := e.mb.FindWatermark(ctx, folder, absent); err != nil || got != "" {
		t.Errorf("FindWatermark(absent) = %q, %v; want nothing", got, err)
	}
	inbox := e.wellKnown(t, "inbox")
	if got, err := e.mb.FindWatermark(ctx, inbox, m.ID); err != nil || got != "" {
		t.Errorf("FindWatermark in another folder = %q, %v; want nothing", got, err)
	}

	if ids, err := e.mb.FindMessageID(ctx, folder, msgID); err != nil || !slices.Equal(ids, []string{id}) {
		t.Errorf("FindMessageID = %v, %v; want [%s]", ids, err, id)
	}
	if ids, err := e.mb.FindMessageID(ctx, folder, "<nope@example.org>"); err != nil || len(ids) != 0 {
		t.Errorf("FindMessageID(absent) = %v, %v; want none", ids, err)
	}
}

// TestFindMessageIDPages finds more copies of one Message-ID than one page
// holds.
func TestFindMessageIDPages(t *testing.T) {
	e := newEnv(t, nil)
	inbox := e.wellKnown(t, "inbox")
	raw := sampleMIME("<many@example.org>", "many")
	for i := range findPageSize + 5 {
		e.put(t, inbox, message("INBOX", uint32(i+1), raw))
	}
	ids, err := e.mb.FindMessageID(t.Context(), inbox, "<many@example.org>")
	if err != nil || len(ids) != findPageSize+5 {
		t.Errorf("FindMessageID: %d ids, %v; want %d", len(ids), err, findPageSize+5)
	}
}
