package exchange

import (
	"bytes"
	"context"
	"encoding/base64"
	"time"

	"github.com/mailferry/mailferry/migrate"
)

// importMIMEPath is importMime, which makes a non-draft message from its
// MIME "as if it was delivered"
// (https://learn.microsoft.com/graph/api/mailfolder-importmime?view=graph-rest-beta).
// A draft is made from its MIME by POST .../messages
// (folderMessagesPath) instead. Either takes the base64 of the MIME as
// text/plain and answers 201 with the new message.
const importMIMEPath = "{+graphroot}/beta/users/{user}/mailFolders/{folder}/importMime"

// noticeImportForbidden is the notice (migrate.EventNotice) of a run in
// which Graph answered importMime 403.
const noticeImportForbidden = "exchange: importMime was forbidden (403): the app registration lacks " +
	"Mail-Advanced.ReadWrite.All; messages that needed their exact MIME (signed or encrypted ones, or all under " +
	"ReceivedDateAtImport) were rebuilt from their fields, each with its original attached, and reported as degraded"

// guardWindow is how far back the creation time of an unstamped item may
// lie for Put to take it for the item that its own lost request created.
const guardWindow = 2 * time.Minute

// putMIME is Put's importMime path for raw, the whole MIME of m: it
// creates the item from raw, byte for byte, then sets its flags and the
// watermark in one PATCH, and deletes the item if that PATCH fails.
//
// When Graph refuses raw as it is (refusedAsIs: a 400 such as
// ErrorMimeContentInvalid), m is created from its parsed fields
// instead, or else stored degraded with raw attached: see
// rebuildOrDegrade.
func (mb *Mailbox) putMIME(ctx context.Context, op, folderID string, m *migrate.Message, raw []byte) (string, error) {
	// A draft stays a draft: importMime makes delivered mail, the MIME
	// create of POST /messages makes a draft, both keeping the MIME.
	create, how := importMIMEPath, "importMime"
	if m.HasFlag(migrate.FlagDraft) {
		create, how = folderMessagesPath, "create draft"
	}
	start := time.Now()
	guard := func(ctx context.Context) (string, error) {
		return mb.findOwnImport(ctx, folderID, m.MessageID, start)
	}
	if m.MessageID == "" {
		guard = nil
	}
	enc := make([]byte, base64.StdEncoding.EncodedLen(len(raw)))
	base64.StdEncoding.Encode(enc, raw)
	id, err := mb.createItem(ctx, op+": "+how, guard, create, map[string]string{"folder": folderID}, textBody(enc))
	if how == "importMime" && forbidden(err) {
		// Every other request of the mailbox got through: importMime
		// alone needs Mail-Advanced.ReadWrite.All, which the app lacks.
		// The message is rebuilt rather than the mailbox stopped.
		migrate.Notify(ctx, migrate.Event{Kind: migrate.EventNotice, Reason: noticeImportForbidden})
		err = migrate.ItemError(err)
	}
	if refusedAsIs(err) || (how == "importMime" && forbidden(err)) {
		p, perr := parseMIME(bytes.NewReader(raw))
		if p != nil {
			defer p.close()
		}
		return mb.rebuildOrDegrade(ctx, op, folderID, m, p, perr, rawBytes(raw), err)
	}
	if err != nil {
		return "", err
	}
	fields := newItemFlags(m.Flags).properties(false, mb.deliveryTimeProperties(ctx, m)...)
	if err := mb.patchMessage(ctx, id, fields); err != nil {
		mb.discard(ctx, id)
		return "", classify(op+": set flags and watermark", err)
	}
	return id, nil
}

// findOwnImport looks for the item that a lost importMime request of
// this Put may have created in folderID: one with internetMessageId
// messageID, no watermark yet (Put stamps it only after the import) and
// created since the Put started (less guardWindow, for clock skew). It
// returns its id only when there is exactly one such item, so that two
// copies of one message are never taken for each other.
func (mb *Mailbox) findOwnImport(ctx context.Context, folderID, messageID string, since time.Time) (string, error) {
	msgs, err := mb.listStamped(ctx, folderID, "internetMessageId eq "+quote(messageID))
	if err != nil {
		return "", err
	}
	found := ""
	for _, it := range msgs {
		if it.GetId() == nil || len(it.GetSingleValueExtendedProperties()) > 0 {
			continue
		}
		if c := it.GetCreatedDateTime(); c == nil || c.Before(since.Add(-guardWindow)) {
			continue
		}
		if found != "" {
			return "", nil // ambiguous
		}
		found = *it.GetId()
	}
	return found, nil
}
