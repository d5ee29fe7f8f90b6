package exchange

import (
	"context"
	"fmt"
	"slices"

	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/users"

	"github.com/mailferry/mailferry/migrate"
)

// findPageSize is the $top of the look-ups by Message-ID; further pages
// are followed.
const findPageSize = 100

// listPageSize is the $top of ListWatermarks: the largest page Graph
// serves of a folder's messages ("$top ... within the range of 1 and
// 1000", https://learn.microsoft.com/graph/api/mailfolder-list-messages),
// which the emulator caps alike.
const listPageSize = 1000

var (
	_ migrate.WatermarkLister = (*Mailbox)(nil)
	_ migrate.ItemLister      = (*Mailbox)(nil)
)

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

// FindMessageID implements migrate.MessageIDFinder: it returns the
// messages in folderID whose internetMessageId is messageID (with its
// angle brackets), all of them, each with its watermark
// (WatermarkProperty), with
// GET /users/{id}/mailFolders/{id}/messages?$filter=internetMessageId eq '...'&$select=id&$expand=singleValueExtendedProperties($filter=id eq '<WatermarkProperty>')
// (https://learn.microsoft.com/graph/api/user-list-messages,
// https://learn.microsoft.com/graph/api/singlevaluelegacyextendedproperty-get),
// 100 per page. Messages without a watermark are asked about once more,
// the same way with PendingProperty expanded: a partial copy that an
// interrupted Put left behind (its attachments not all in) is left out,
// never to be adopted; Put deletes it before it builds the message again.
//
// Needs the Mail.ReadWrite permission (Mail.Read suffices).
func (mb *Mailbox) FindMessageID(ctx context.Context, folderID, messageID string) ([]migrate.FoundItem, error) {
	ctx = mb.scoped(ctx)
	if messageID == "" {
		return nil, nil
	}
	op := fmt.Sprintf("find Message-ID %s in folder %s", messageID, folderID)
	filter := "internetMessageId eq " + quote(messageID)
	var found []migrate.FoundItem
	unstamped := 0
	err := mb.listExpanded(ctx, folderID, filter, WatermarkProperty, findPageSize, func(id string, w *migrate.SourceID) error {
		it := migrate.FoundItem{ItemID: id}
		if w != nil {
			it.Watermark = *w
		} else {
			unstamped++
		}
		found = append(found, it)
		return nil
	})
	if err != nil {
		return nil, classify(op, err)
	}
	if unstamped == 0 {
		return found, nil
	}
	pending := map[string]bool{}
	err = mb.listExpanded(ctx, folderID, filter, PendingProperty, findPageSize, func(id string, p *migrate.SourceID) error {
		if p != nil {
			pending[id] = true
		}
		return nil
	})
	if err != nil {
		return nil, classify(op, err)
	}
	return slices.DeleteFunc(found, func(it migrate.FoundItem) bool {
		return it.Watermark == (migrate.SourceID{}) && pending[it.ItemID]
	}), nil
}

// ListWatermarks implements migrate.WatermarkLister: it calls fn with the
// watermark (WatermarkProperty) and id of every stamped message of
// folderID, in one paged listing of the folder,
// GET /users/{id}/mailFolders/{id}/messages?$select=id&$expand=singleValueExtendedProperties($filter=id eq '<WatermarkProperty>')&$top=1000
// (https://learn.microsoft.com/graph/api/mailfolder-list-messages,
// https://learn.microsoft.com/graph/api/singlevaluelegacyextendedproperty-get),
// following @odata.nextLink (https://learn.microsoft.com/graph/paging):
// about one request per 1,000 messages. Put stamps a message only once it
// is complete, so a partial copy (PendingProperty alone) is never
// reported; nor are messages without a watermark, or whose watermark does
// not parse.
//
// Needs the Mail.ReadWrite permission (Mail.Read suffices).
func (mb *Mailbox) ListWatermarks(ctx context.Context, folderID string, fn func(id migrate.SourceID, itemID string) error) error {
	ctx = mb.scoped(ctx)
	var fnErr error
	err := mb.listExpanded(ctx, folderID, "", WatermarkProperty, listPageSize, func(id string, w *migrate.SourceID) error {
		if w == nil {
			return nil
		}
		fnErr = fn(*w, id)
		return fnErr
	})
	switch {
	case fnErr != nil:
		return fnErr
	case err != nil:
		return classify(fmt.Sprintf("list the watermarks of folder %s", folderID), err)
	}
	return nil
}

// ListItems implements migrate.ItemLister: it calls fn with every
// message of folderID, its watermark (WatermarkProperty) and its
// internetMessageId, in one paged listing of the folder,
// GET /users/{id}/mailFolders/{id}/messages?$select=id,internetMessageId&$expand=singleValueExtendedProperties($filter=id eq '<WatermarkProperty>')&$top=1000
// (as ListWatermarks, with the Message-ID). When some messages carry no
// watermark, a second listing, with PendingProperty expanded, leaves out
// the partial copies that an interrupted Put left (see FindMessageID). So
// it costs about one request per 1,000 messages of the folder, twice that
// when some carry no watermark. A watermark that does not parse counts as
// none. It holds only the messages without a watermark in memory.
//
// Needs the Mail.ReadWrite permission (Mail.Read suffices).
func (mb *Mailbox) ListItems(ctx context.Context, folderID string, fn func(migrate.ListedItem) error) error {
	ctx = mb.scoped(ctx)
	op := fmt.Sprintf("list the messages of folder %s", folderID)
	// Stamped messages go to fn as they come; those without a watermark
	// wait for the listing of partial copies.
	var unstamped []migrate.ListedItem
	var fnErr error
	err := mb.listMessages(ctx, folderID, "", WatermarkProperty, listPageSize, []string{"internetMessageId"},
		func(m models.Messageable, w *migrate.SourceID) error {
			it := migrate.ListedItem{ItemID: *m.GetId()}
			if m.GetInternetMessageId() != nil {
				it.MessageID = *m.GetInternetMessageId()
			}
			if w == nil {
				unstamped = append(unstamped, it)
				return nil
			}
			it.Watermark = *w
			fnErr = fn(it)
			return fnErr
		})
	switch {
	case fnErr != nil:
		return fnErr
	case err != nil:
		return classify(op, err)
	case len(unstamped) == 0:
		return nil
	}
	pending := map[string]bool{}
	err = mb.listExpanded(ctx, folderID, "", PendingProperty, listPageSize, func(id string, p *migrate.SourceID) error {
		if p != nil {
			pending[id] = true
		}
		return nil
	})
	if err != nil {
		return classify(op, err)
	}
	for _, it := range unstamped {
		if pending[it.ItemID] {
			continue
		}
		if err := fn(it); err != nil {
			return err
		}
	}
	return nil
}

// listExpanded calls fn with the id of every message of folderID that
// matches filter ("": all of them), top per page, following
// @odata.nextLink (https://learn.microsoft.com/graph/paging), and the
// SourceID that the message's extended property prop (WatermarkProperty
// or PendingProperty) holds, or nil when it has none or it does not
// parse. fn's error stops the listing and is returned; other errors are
// the SDK's, unclassified.
func (mb *Mailbox) listExpanded(ctx context.Context, folderID, filter, prop string, top int32,
	fn func(id string, stamp *migrate.SourceID) error) error {
	return mb.listMessages(ctx, folderID, filter, prop, top, nil, func(m models.Messageable, stamp *migrate.SourceID) error {
		return fn(*m.GetId(), stamp)
	})
}

// listMessages is listExpanded with more properties selected (besides
// the id) and the message itself handed to fn.
func (mb *Mailbox) listMessages(ctx context.Context, folderID, filter, prop string, top int32, selectMore []string,
	fn func(m models.Messageable, stamp *migrate.SourceID) error) error {
	msgs := mb.c.graph.Users().ByUserId(mb.user).MailFolders().ByMailFolderId(folderID).Messages()
	q := &users.ItemMailFoldersItemMessagesRequestBuilderGetQueryParameters{
		Select: append([]string{"id"}, selectMore...),
		Expand: []string{"singleValueExtendedProperties($filter=id eq " + quote(prop) + ")"},
		Top:    &top,
	}
	if filter != "" {
		q.Filter = &filter
	}
	resp, err := msgs.Get(ctx, &users.ItemMailFoldersItemMessagesRequestBuilderGetRequestConfiguration{QueryParameters: q})
	for {
		if err != nil {
			return err
		}
		if resp == nil {
			return nil
		}
		for _, m := range resp.GetValue() {
			if m == nil || m.GetId() == nil || *m.GetId() == "" {
				continue
			}
			if err := fn(m, stampOf(m)); err != nil {
				return err
			}
		}
		next := resp.GetOdataNextLink()
		if next == nil || *next == "" {
			return nil
		}
		resp, err = msgs.WithUrl(*next).Get(ctx, nil)
	}
}

// stampOf returns the SourceID held by the one extended property that a
// listing expanded on m, or nil. The property's id is not compared: Graph
// may spell it otherwise than it was asked for (the case of the GUID, say).
func stampOf(m models.Messageable) *migrate.SourceID {
	for _, p := range m.GetSingleValueExtendedProperties() {
		if p == nil || p.GetValue() == nil {
			continue
		}
		if id, err := migrate.ParseSourceID(*p.GetValue()); err == nil {
			return &id
		}
	}
	return nil
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
