package exchange

import (
	"context"
	"fmt"

	"github.com/microsoftgraph/msgraph-sdk-go/users"

	"github.com/mailferry/mailferry/migrate"
)

// findPageSize is the $top of the look-ups: far more than a folder should
// ever hold of one watermark or one Message-ID.
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
	filter := fmt.Sprintf("singleValueExtendedProperties/Any(ep: ep/id eq %s and ep/value eq %s)",
		quote(WatermarkProperty), quote(id.String()))
	ids, err := mb.findMessages(ctx, folderID, filter, 1)
	if err != nil {
		return "", classify(fmt.Sprintf("find watermark %s in folder %s", id, folderID), err)
	}
	if len(ids) == 0 {
		return "", nil
	}
	return ids[0], nil
}

// FindMessageID implements migrate.MessageIDFinder: it returns the ids of
// the messages in folderID whose internetMessageId is messageID (with its
// angle brackets), at most 100, with
// GET /users/{id}/mailFolders/{id}/messages?$filter=internetMessageId eq '...'&$select=id
// (https://learn.microsoft.com/graph/api/user-list-messages).
//
// Needs the Mail.ReadWrite permission (Mail.Read suffices).
func (mb *Mailbox) FindMessageID(ctx context.Context, folderID, messageID string) ([]string, error) {
	if messageID == "" {
		return nil, nil
	}
	ids, err := mb.findMessages(ctx, folderID, "internetMessageId eq "+quote(messageID), findPageSize)
	if err != nil {
		return nil, classify(fmt.Sprintf("find Message-ID %s in folder %s", messageID, folderID), err)
	}
	return ids, nil
}

// findMessages returns the ids of the first top messages of folderID that
// match filter. The error is the SDK's, unclassified.
func (mb *Mailbox) findMessages(ctx context.Context, folderID, filter string, top int32) ([]string, error) {
	resp, err := mb.c.graph.Users().ByUserId(mb.user).MailFolders().ByMailFolderId(folderID).Messages().Get(ctx,
		&users.ItemMailFoldersItemMessagesRequestBuilderGetRequestConfiguration{
			QueryParameters: &users.ItemMailFoldersItemMessagesRequestBuilderGetQueryParameters{
				Filter: &filter,
				Select: []string{"id"},
				Top:    &top,
			},
		})
	if err != nil {
		return nil, err
	}
	if resp == nil {
		return nil, nil
	}
	var ids []string
	for _, m := range resp.GetValue() {
		if m != nil && m.GetId() != nil && *m.GetId() != "" {
			ids = append(ids, *m.GetId())
		}
	}
	return ids, nil
}
