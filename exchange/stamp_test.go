package exchange

import (
	"errors"
	"slices"
	"testing"

	"github.com/mailferry/mailferry/migrate"
)

// TestStampWatermark: an unstamped message (imported by a run that
// stopped before its PATCH) stamped with StampWatermark is then found by
// its watermark, listed by ListWatermarks, and reported stamped by
// FindMessageID, in one request; a message that is gone is an item
// error.
func TestStampWatermark(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	inbox := e.wellKnown(t, "inbox")
	const msgID = "<unstamped@example.org>"
	itemID := e.createRaw(t, inbox, msgID, nil)
	id := message("INBOX", 7, nil).ID

	before := e.srv.Stats()
	if err := e.mb.StampWatermark(ctx, itemID, id); err != nil {
		t.Fatal(err)
	}
	if n := e.srv.Stats().Requests - before.Requests; n != 1 {
		t.Errorf("StampWatermark sent %d requests, want 1", n)
	}
	if got, err := e.mb.FindWatermark(ctx, inbox, id); err != nil || got != itemID {
		t.Errorf("FindWatermark = %q, %v; want %q", got, err, itemID)
	}
	want := []migrate.FoundItem{{ItemID: itemID, Watermark: id}}
	if found, err := e.mb.FindMessageID(ctx, inbox, msgID); err != nil || !slices.Equal(found, want) {
		t.Errorf("FindMessageID = %+v, %v; want %+v", found, err, want)
	}
	var listed []migrate.SourceID
	if err := e.mb.ListWatermarks(ctx, inbox, func(w migrate.SourceID, got string) error {
		if got == itemID {
			listed = append(listed, w)
		}
		return nil
	}); err != nil || !slices.Equal(listed, []migrate.SourceID{id}) {
		t.Errorf("ListWatermarks listed %v, %v; want %v", listed, err, id)
	}

	if err := e.mb.StampWatermark(ctx, "AAMkAGone", id); !errors.Is(err, migrate.ErrItem) {
		t.Errorf("stamping a message that is gone: %v, want an item error", err)
	}
}
