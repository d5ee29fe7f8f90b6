package exchange

import (
	"context"
	"fmt"

	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/users"

	"github.com/mailferry/mailferry/migrate"
)

// findPageSize is the $top of the look-ups by Message-ID; further pages
// are followed.
const findPageSize = 100

// FindWatermark implements migrate.WatermarkFinder: it returns the id of
// the message in folderID that Put stamped with id (WatermarkProperty), or
// "" when there is none, with
// GET /users/{id}/mailFolders/{id}/messages?$filter=singleValueExtendedProperties/Any(ep: ep/id eq '...' and ep/value eq '...')&$select=id
// (https://learn.microsoft.com/graph/api/singlevaluelegacyextendedproperty-get).
//
// Exchange compares the value case-insensitively (same page): only two
// source folders whose names differ in case alone, mapped into one target
// folder, could be confused.
//
// Needs the Mail.ReadWrite permission (Mail.Read suffices).
func (mb *Mailbox) FindWatermark(ctx context.Context, folderID string, id migrate.SourceID) (string, error) {
	ctx = mb.scoped(ctx)
	found, err := mb.findStamped(ctx, folderID, WatermarkProperty, id)
	if err != nil {
		return "", classify(fmt.Sprintf("find watermark %s in folder %s", id, folderID), err)
	}
	return found, nil
}

// findStamped returns the id of a message of folderID whose extended
// property prop (WatermarkProperty or PendingProperty) is id, or "". The
// error is the SDK's, unclassified.
func (mb *Mailbox) findStamped(ctx context.Context, folderID, prop string, id migrate.SourceID) (string, error) {
	ids, err := mb.findMessages(ctx, folderID, stampFilter(prop, id), 1, 1)
	if err != nil || len(ids) == 0 {
		return "", err
	}
	return ids[0], nil
}

// stampFilter is the $filter of the messages whose extended property prop
// is id.
func stampFilter(prop string, id migrate.SourceID) string {
	return fmt.Sprintf("singleValueExtendedProperties/Any(ep: ep/id eq %s and ep/value eq %s)", quote(prop), quote(id.String()))
}

// FindMessageID implements migrate.MessageIDFinder: it returns the ids of
// the messages in folderID whose internetMessageId is messageID (with its
// angle brackets), all of them, 100 per page, with
// GET /users/{id}/mailFolders/{id}/messages?$filter=internetMessageId eq '...'&$select=id
// (https://learn.microsoft.com/graph/api/user-list-messages).
//
// Needs the Mail.ReadWrite permission (Mail.Read suffices).
func (mb *Mailbox) FindMessageID(ctx context.Context, folderID, messageID string) ([]string, error) {
	ctx = mb.scoped(ctx)
	if messageID == "" {
		return nil, nil
	}
	ids, err := mb.findMessages(ctx, folderID, "internetMessageId eq "+quote(messageID), findPageSize, 0)
	if err != nil {
		return nil, classify(fmt.Sprintf("find Message-ID %s in folder %s", messageID, folderID), err)
	}
	return ids, nil
}

// findMessages returns the ids of the messages of folderID that match
// filter, following @odata.nextLink (https://learn.microsoft.com/graph/paging)
// until limit ids are found (0: all of them), top per page. The error is
// the SDK's, unclassified.
func (mb *Mailbox) findMessages(ctx context.Context, folderID, filter string, top int32, limit int) ([]string, error) {
	msgs := mb.c.graph.Users().ByUserId(mb.user).MailFolders().ByMailFolderId(folderID).Messages()
	resp, err := msgs.Get(ctx, &users.ItemMailFoldersItemMessagesRequestBuilderGetRequestConfiguration{
		QueryParameters: &users.ItemMailFoldersItemMessagesRequestBuilderGetQueryParameters{
			Filter: &filter,
			Select: []string{"id"},
			Top:    &top,
		},
	})
	var ids []string
	for {
		if err != nil {
			return nil, err
		}
		if resp == nil {
			return ids, nil
		}
		for _, m := range resp.GetValue() {
			if m != nil && m.GetId() != nil && *m.GetId() != "" {
				ids = append(ids, *m.GetId())
			}
		}
		next := resp.GetOdataNextLink()
		if next == nil || *next == "" || (limit > 0 && len(ids) >= limit) {
			return ids, nil
		}
		resp, err = msgs.WithUrl(*next).Get(ctx, nil)
	}
}

// listStamped returns the first page (findPageSize) of the messages of
// folderID that match filter, with their id, createdDateTime and
// WatermarkProperty (expanded: present only on stamped items). The error
// is the SDK's, unclassified.
func (mb *Mailbox) listStamped(ctx context.Context, folderID, filter string) ([]models.Messageable, error) {
	top := int32(findPageSize)
	resp, err := mb.c.graph.Users().ByUserId(mb.user).MailFolders().ByMailFolderId(folderID).Messages().Get(ctx,
		&users.ItemMailFoldersItemMessagesRequestBuilderGetRequestConfiguration{
			QueryParameters: &users.ItemMailFoldersItemMessagesRequestBuilderGetQueryParameters{
				Filter: &filter,
				Select: []string{"id", "createdDateTime"},
				Expand: []string{"singleValueExtendedProperties($filter=id eq " + quote(WatermarkProperty) + ")"},
				Top:    &top,
			},
		})
	if err != nil || resp == nil {
		return nil, err
	}
	var out []models.Messageable
	for _, m := range resp.GetValue() {
		if m != nil {
			out = append(out, m)
		}
	}
	return out, nil
}
