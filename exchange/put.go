package exchange

import (
	"bytes"
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
// imports with importMime. Graph refuses requests over 4 MB with 413
// (https://learn.microsoft.com/graph/api/user-post-messages), and base64
// makes 3 MB of MIME exactly 4 MB. Larger messages, up to MaxMessageSize,
// are created from JSON (see Put).
const MaxImportSize = 3 << 20

// WatermarkProperty is the id of the named extended property in which Put
// stamps each item with its migrate.SourceID (as SourceID.String): a
// string property named "mailferrySourceId" in mailferry's own property
// set (https://learn.microsoft.com/graph/api/singlevaluelegacyextendedproperty-post-singlevalueextendedproperties).
// FindWatermark filters on it. Put sets it last, once the item is
// complete.
const WatermarkProperty = "String {e41bb99b-fe1e-4497-b99a-d015dcc8d579} Name mailferrySourceId"

// undoTimeout bounds the clean-up of a half-imported item.
const undoTimeout = 30 * time.Second

// guardWindow is how far back the creation time of an unstamped item may
// lie for Put to take it for the item that its own lost request created.
const guardWindow = 2 * time.Minute

// Put implements migrate.Sink. It stores m in folder folderID, non-draft
// (or draft for \Draft), with its flags, and stamps it with
// WatermarkProperty = m.ID.String(). It takes one of two paths.
//
// # importMime: the exact MIME, received at import time
//
// A message of at most MaxImportSize bytes is imported byte for byte with
// POST /beta/users/{id}/mailFolders/{id}/importMime, whose body is the
// base64 of the MIME with Content-Type text/plain and whose answer is the
// new message, 201 Created, "as if it was delivered"
// (https://learn.microsoft.com/graph/api/mailfolder-importmime?view=graph-rest-beta);
// a message flagged \Draft is created as a draft from the same MIME with
// POST /users/{id}/mailFolders/{id}/messages. Put then sets the flags and
// the watermark in one PATCH /users/{id}/messages/{id}
// (https://learn.microsoft.com/graph/api/message-update): isRead from
// \Seen, flag.flagStatus from \Flagged, categories from keywords,
// PidTagLastVerbExecuted = 102 from \Answered (see SetFlags). If that
// PATCH fails, Put deletes the imported message, so that a retry does
// not leave a duplicate behind, and returns the error.
//
// The received date is the time of the import and the sent date the
// Date header: importMime takes nothing but the MIME, and
// PidTagMessageDeliveryTime cannot be changed once the item is saved.
// Options.ReceivedDates = ReceivedDateFromSource sends every non-draft
// message through the JSON create instead.
//
// # JSON create: the exact received date, the MIME rebuilt
//
// A larger message (up to MaxMessageSize), or every non-draft message
// under ReceivedDateFromSource, is read in one streaming pass (memory
// holds the main body and attachments under 256 KB; larger attachments
// are spooled to a temporary file) and created with
// POST /users/{id}/mailFolders/{id}/messages and JSON
// (https://learn.microsoft.com/graph/api/user-post-messages): from,
// sender, toRecipients, ccRecipients, bccRecipients, replyTo, subject,
// internetMessageId, importance (Importance or X-Priority), the main body
// (text/html preferred to text/plain), the x- headers as
// internetMessageHeaders, isRead, flag, categories and, as extended
// properties set at creation, PidTagMessageFlags (0x0E07: 1 read or 0
// unread, non-draft), PidTagMessageDeliveryTime (0x0E06: m.InternalDate,
// the received date), PidTagClientSubmitTime (0x0039: the Date header,
// the sent date) and PidTagLastVerbExecuted (0x1081: 102 for \Answered).
// Attachments go into the same request while it stays under Graph's 4 MB;
// the others follow, each with POST .../attachments or, from 3 MB, an
// upload session whose 3.75 MB chunks are PUT to the uploadUrl without
// the Authorization header
// (https://learn.microsoft.com/graph/outlook-large-attachments). A
// message created in several requests carries PendingProperty until its
// last attachment is in, then the watermark; an interrupted earlier
// attempt's partial copy is deleted before the next one starts.
//
// What the JSON path cannot keep (Exchange rebuilds the MIME from the
// fields, so GET .../$value is not the source's bytes):
//
//   - the MIME bytes themselves: boundaries, transfer encodings, header
//     folding and order, charsets (bodies become UTF-8);
//   - header fields other than those above: Received, Return-Path,
//     Authentication-Results, DKIM-Signature, List-*, In-Reply-To,
//     References (so Outlook's threading relies on the subject), Exchange's
//     own X-MS-Exchange-Organization-* headers, and any x- header Graph
//     refuses;
//   - more than one body: a second text part or the text/plain
//     alternative of an HTML message (the HTML one is kept); extra text
//     parts become attachments;
//   - the structure of S/MIME and PGP/MIME messages: a signed message
//     loses its valid signature (the smime.p7s part becomes an ordinary
//     attachment) and an encrypted one becomes an item with the encrypted
//     part as attachment;
//   - nested messages (message/rfc822) as items: each becomes a .eml file
//     attachment;
//   - attachment metadata beyond name, type, Content-ID and inline
//     (dates, size parameters, Content-Description).
//
// Messages over MaxMessageSize fail with an error matching
// migrate.ErrItem, as do those Graph refuses (bad MIME, over the
// mailbox's size limit, a main body over 3 MB). Needs the
// Mail-Advanced.ReadWrite.All permission (importMime) and Mail.ReadWrite
// (everything else).
func (mb *Mailbox) Put(ctx context.Context, folderID string, m *migrate.Message) (string, error) {
	ctx = mb.scoped(ctx)
	if m == nil || m.Body == nil {
		return "", migrate.ItemError(errors.New("exchange: put: message without a body"))
	}
	op := fmt.Sprintf("put %s into folder %s", m.ID, folderID)
	if m.Size > MaxMessageSize {
		return "", tooLarge(op, m.Size)
	}
	draft := m.HasFlag(migrate.FlagDraft)
	body := io.LimitReader(m.Body, MaxMessageSize+1)
	if m.Size > MaxImportSize || (mb.c.dates == ReceivedDateFromSource && !draft) {
		return mb.putLarge(ctx, op, folderID, m, body)
	}
	buf := bytes.NewBuffer(make([]byte, 0, max(m.Size, 0)+bytes.MinRead)) // ReadFrom wants MinRead free
	_, err := buf.ReadFrom(io.LimitReader(body, MaxImportSize+1))
	raw := buf.Bytes()
	if err != nil {
		return "", fmt.Errorf("exchange: %s: read body: %w", op, err)
	}
	if len(raw) > MaxImportSize {
		// The source's size was wrong: go on with what is left.
		return mb.putLarge(ctx, op, folderID, m, io.MultiReader(bytes.NewReader(raw), body))
	}
	if len(raw) == 0 {
		return "", migrate.ItemError(fmt.Errorf("exchange: %s: empty message", op))
	}

	// A draft stays a draft: importMime makes delivered mail, the MIME
	// create of POST /messages makes a draft, both keeping the MIME.
	create, how := importMIMEPath, "importMime"
	if draft {
		create, how = draftMIMEPath, "create draft"
	}
	start := time.Now()
	guard := func(ctx context.Context) (string, error) {
		return mb.findOwnImport(ctx, folderID, m.MessageID, start)
	}
	if m.MessageID == "" {
		guard = nil
	}
	id, err := mb.createFromMIME(mb.withGuard(ctx, guard), create, folderID, raw)
	var ac *alreadyCreatedError
	switch {
	case errors.As(err, &ac):
		id = ac.id
	case err != nil:
		return "", classify(op+": "+how, err)
	}

	patch := flagPatch(m.Flags)
	props := []models.SingleValueLegacyExtendedPropertyable{extProp(WatermarkProperty, m.ID.String())}
	if p := lastVerb(m.Flags, false); p != nil {
		props = append(props, p)
	}
	patch.SetSingleValueExtendedProperties(props)
	if err := mb.patchMessage(ctx, id, patch); err != nil {
		mb.undoImport(ctx, id)
		return "", classify(op+": set flags and watermark", err)
	}
	return id, nil
}

// putLarge is Put's JSON path, with its size check.
func (mb *Mailbox) putLarge(ctx context.Context, op, folderID string, m *migrate.Message, body io.Reader) (string, error) {
	cr := &countingReader{r: body}
	id, err := mb.putJSON(ctx, op, folderID, m, cr)
	if cr.n > MaxMessageSize {
		if id != "" {
			mb.undoImport(ctx, id)
		}
		return "", tooLarge(op, cr.n)
	}
	return id, err
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func tooLarge(op string, size int64) error {
	return migrate.ItemError(fmt.Errorf("exchange: %s: %d bytes of MIME, more than %d (Exchange Online's largest message)",
		op, size, MaxMessageSize))
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
