package exchange

import (
	"context"
	"fmt"

	"github.com/mailferry/mailferry/migrate"
)

var _ migrate.WatermarkStamper = (*Mailbox)(nil)

// StampWatermark implements migrate.WatermarkStamper: it sets the
// message's WatermarkProperty to id with
// PATCH /users/{id}/messages/{id} and a singleValueExtendedProperties
// body (https://learn.microsoft.com/graph/api/singlevaluelegacyextendedproperty-post-singlevalueextendedproperties:
// "update an existing message" creates or replaces the property). The
// Engine calls it for an item imported by an earlier run that stopped
// before the PATCH that stamps imported items, found by its Message-ID;
// stamped, the item is found by FindWatermark and ListWatermarks, even by
// a run that lost its State. Nothing else of the item changes.
//
// Needs the Mail.ReadWrite permission.
func (mb *Mailbox) StampWatermark(ctx context.Context, itemID string, id migrate.SourceID) error {
	ctx = mb.scoped(ctx)
	fields := map[string]any{"singleValueExtendedProperties": []extendedProperty{{WatermarkProperty, id.String()}}}
	if err := mb.patchMessage(ctx, itemID, fields); err != nil {
		return classify(fmt.Sprintf("stamp message %s with its watermark", itemID), err)
	}
	return nil
}
