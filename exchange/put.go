package exchange

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	abstractions "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models"

	"github.com/mailferry/mailferry/migrate"
)

// MaxImportSize is the largest message, in bytes of MIME, that Put
// imports. Graph refuses requests over 4 MB with 413
// (https://learn.microsoft.com/graph/api/user-post-messages), and base64
// makes 3 MB of MIME exactly 4 MB. Larger messages need a JSON create and
// attachment upload sessions, not implemented yet: Put fails them with
// migrate.ErrItem.
const MaxImportSize = 3 << 20

// WatermarkProperty is the id of the named extended property in which Put
// stamps each item with its migrate.SourceID (as SourceID.String): a
// string property named "mailferrySourceId" in mailferry's own property
// set (https://learn.microsoft.com/graph/api/singlevaluelegacyextendedproperty-post-singlevalueextendedproperties).
// FindWatermark filters on it.
const WatermarkProperty = "String {e41bb99b-fe1e-4497-b99a-d015dcc8d579} Name mailferrySourceId"

// undoTimeout bounds the clean-up of a half-imported item.
const undoTimeout = 30 * time.Second

// Put implements migrate.Sink. It imports m's MIME, byte for byte, into
// folder folderID as a non-draft message, "as if it was delivered" (a
// message flagged \Draft is created as a draft instead, from the same
// MIME, with POST /users/{id}/mailFolders/{id}/messages), with
// POST /beta/users/{id}/mailFolders/{id}/importMime, whose body is the
// base64 of the MIME with Content-Type text/plain and whose answer is the
// new message, 201 Created
// (https://learn.microsoft.com/graph/api/mailfolder-importmime?view=graph-rest-beta).
// It then sets the message's flags and its watermark in one
// PATCH /users/{id}/messages/{id} (https://learn.microsoft.com/graph/api/message-update):
// isRead from \Seen, flag.flagStatus "flagged" from \Flagged, categories
// from the keywords (see SetFlags), and WatermarkProperty = m.ID.String().
// If that PATCH fails, Put deletes the imported message, so that a retry
// does not leave a duplicate behind, and returns the error.
//
// The received date is the import time: importMime takes no
// receivedDateTime and PidTagMessageDeliveryTime cannot be changed after
// the item is saved, so m.InternalDate is not carried yet.
//
// Messages over MaxImportSize fail with an error matching migrate.ErrItem.
// Needs the Mail-Advanced.ReadWrite.All permission (importMime) and
// Mail.ReadWrite (the PATCH).
func (mb *Mailbox) Put(ctx context.Context, folderID string, m *migrate.Message) (string, error) {
	if m == nil || m.Body == nil {
		return "", migrate.ItemError(errors.New("exchange: put: message without a body"))
	}
	op := fmt.Sprintf("put %s into folder %s", m.ID, folderID)
	if m.Size > MaxImportSize {
		return "", tooLarge(op, m.Size)
	}
	raw, err := io.ReadAll(io.LimitReader(m.Body, MaxImportSize+1))
	if err != nil {
		return "", fmt.Errorf("exchange: %s: read body: %w", op, err)
	}
	if len(raw) > MaxImportSize {
		return "", tooLarge(op, int64(len(raw)))
	}
	if len(raw) == 0 {
		return "", migrate.ItemError(fmt.Errorf("exchange: %s: empty message", op))
	}

	// A draft stays a draft: importMime makes delivered mail, the MIME
	// create of POST /messages makes a draft, both keeping the MIME.
	create, how := importMIMEPath, "importMime"
	if m.HasFlag(migrate.FlagDraft) {
		create, how = draftMIMEPath, "create draft"
	}
	id, err := mb.createFromMIME(ctx, create, folderID, raw)
	if err != nil {
		return "", classify(op+": "+how, err)
	}

	patch := flagPatch(m.Flags)
	wm := models.NewSingleValueLegacyExtendedProperty()
	wmID, wmValue := WatermarkProperty, m.ID.String()
	wm.SetId(&wmID)
	wm.SetValue(&wmValue)
	patch.SetSingleValueExtendedProperties([]models.SingleValueLegacyExtendedPropertyable{wm})
	if err := mb.patchMessage(ctx, id, patch); err != nil {
		mb.undoImport(ctx, id)
		return "", classify(op+": set flags and watermark", err)
	}
	return id, nil
}

func tooLarge(op string, size int64) error {
	return migrate.ItemError(fmt.Errorf("exchange: %s: %d bytes of MIME (more than %d): too large for importMime (large-item path not implemented yet)",
		op, size, MaxImportSize))
}

// The two ways to create a message from its MIME (base64 of the MIME,
// Content-Type text/plain, 201 with the new message):
//
//   - importMime makes a non-draft message "as if it was delivered"
//     (https://learn.microsoft.com/graph/api/mailfolder-importmime?view=graph-rest-beta);
//   - POST .../messages with MIME makes a draft
//     (https://learn.microsoft.com/graph/api/user-post-messages).
const (
	importMIMEPath = "{+graphroot}/beta/users/{user}/mailFolders/{folder}/importMime"
	draftMIMEPath  = "{+graphroot}/v1.0/users/{user}/mailFolders/{folder}/messages"
)

// createFromMIME sends the MIME to one of the two creation paths through
// the Client's request adapter, so that it shares the authentication,
// middleware and retries of every other call and the SDK parses the
// answer. It returns the new message's id.
func (mb *Mailbox) createFromMIME(ctx context.Context, path, folderID string, raw []byte) (string, error) {
	enc := make([]byte, base64.StdEncoding.EncodedLen(len(raw)))
	base64.StdEncoding.Encode(enc, raw)

	ri := abstractions.NewRequestInformation()
	ri.Method = abstractions.POST
	ri.UrlTemplate = path
	ri.PathParameters["graphroot"] = mb.c.baseURL // not "baseurl": the adapter sets that one to its v1.0 URL
	ri.PathParameters["user"] = mb.user
	ri.PathParameters["folder"] = folderID
	ri.Headers.TryAdd("Accept", "application/json")
	ri.SetStreamContentAndContentType(enc, "text/plain")

	res, err := mb.c.adapter.Send(ctx, ri, models.CreateMessageFromDiscriminatorValue, errorMapping)
	if err != nil {
		return "", err
	}
	msg, ok := res.(models.Messageable)
	if !ok || msg.GetId() == nil || *msg.GetId() == "" {
		return "", errors.New("no message id in the answer")
	}
	return *msg.GetId(), nil
}

// undoImport deletes a message whose import could not be completed, even
// when ctx has ended; a failure is only logged.
func (mb *Mailbox) undoImport(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), undoTimeout)
	defer cancel()
	if err := mb.c.graph.Users().ByUserId(mb.user).Messages().ByMessageId(id).Delete(ctx, nil); err != nil {
		mb.c.logger.LogAttrs(ctx, slog.LevelWarn, "exchange: could not delete a half-imported message",
			slog.String("user", mb.user), slog.String("message", id),
			slog.String("error", classify("delete message", err).Error()))
	}
}
