package exchange

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/mailferry/mailferry/migrate"
)

// MaxImportSize is the largest message, in bytes of MIME, that Put
// imports with importMime. Graph refuses requests over 4 MB with 413
// (https://learn.microsoft.com/graph/api/user-post-messages), and base64
// makes 3 MB of MIME exactly 4 MB. Larger messages, up to MaxMessageSize,
// are created from JSON (see the package documentation's Fidelity
// section).
const MaxImportSize = 3 << 20

// MaxMessageSize is the largest message Put takes, in bytes of MIME:
// Exchange Online's largest configurable message size, 150 MB
// (https://learn.microsoft.com/graph/outlook-large-attachments). The
// mailbox's own limit (35 MB by default) may be lower; Graph then refuses
// the item, an error matching migrate.ErrItem.
const MaxMessageSize = 150 << 20

// WatermarkProperty is the id of the named extended property in which Put
// stamps each item with its migrate.SourceID (as SourceID.String): a
// string property named "mailferrySourceId" in mailferry's own property
// set (https://learn.microsoft.com/graph/api/singlevaluelegacyextendedproperty-post-singlevalueextendedproperties).
// FindWatermark filters on it. Put sets it last, once the item is
// complete.
const WatermarkProperty = "String {e41bb99b-fe1e-4497-b99a-d015dcc8d579} Name mailferrySourceId"

// undoTimeout bounds the clean-up of a half-created item.
const undoTimeout = 30 * time.Second

// Put implements migrate.Sink. It stores m in folder folderID, non-draft
// (or draft for \Draft), with its flags, and stamps it with
// WatermarkProperty = m.ID.String(). A message of at most MaxImportSize
// bytes is imported with importMime, its exact MIME, and given its
// received date in the PATCH that follows when the tenant honours that
// (Mailbox.ProbeReceivedDates); when it does not, Options.ReceivedDates
// chooses between importMime (received at the time of the import) and
// the JSON create (the source's received date, a MIME that Exchange
// rebuilds), except that signed and encrypted messages keep their MIME
// (see ReceivedDates). A larger message is created from JSON. Each such
// Put reports the tenant's answer and what it means for the run as a
// migrate.EventNotice. The package documentation's Fidelity section says
// what each path keeps and how.
//
// A message that importMime refuses is created from JSON instead, and
// one that cannot be created from JSON either (it cannot be parsed, or
// Graph refuses the create) is stored degraded, its original attached:
// Put returns the item's id with an error matching migrate.ErrDegraded
// that says why. Messages over MaxMessageSize fail with an error
// matching migrate.ErrItem, as do those Graph refuses in every form (over
// the mailbox's size limit, say). Needs the
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
	m = mb.c.keywords.message(m) // keywords as categories (Options.Keywords)
	draft := m.HasFlag(migrate.FlagDraft)
	body := io.LimitReader(m.Body, MaxMessageSize+1)
	if m.Size > MaxImportSize {
		return mb.putJSON(ctx, op, folderID, m, body)
	}
	buf := bytes.NewBuffer(make([]byte, 0, max(m.Size, 0)+bytes.MinRead)) // ReadFrom wants MinRead free
	_, err := buf.ReadFrom(io.LimitReader(body, MaxImportSize+1))
	raw := buf.Bytes()
	if err != nil {
		return "", fmt.Errorf("exchange: %s: read body: %w", op, err)
	}
	if len(raw) > MaxImportSize {
		// The source's size was wrong: go on with what is left.
		return mb.putJSON(ctx, op, folderID, m, io.MultiReader(bytes.NewReader(raw), body))
	}
	if len(raw) == 0 { // nothing for importMime: an empty item
		return mb.putJSON(ctx, op, folderID, m, bytes.NewReader(raw))
	}
	if !draft && mb.rebuildsForDate(ctx, raw) {
		return mb.putJSON(ctx, op, folderID, m, bytes.NewReader(raw))
	}
	return mb.putMIME(ctx, op, folderID, m, raw)
}

func tooLarge(op string, size int64) error {
	return migrate.ItemError(fmt.Errorf("exchange: %s: %d bytes of MIME, more than %d (Exchange Online's largest message)",
		op, size, MaxMessageSize))
}

// createItem sends the creating POST of either path, guarded by guard (see
// retryTransport; nil: none), and returns the new item's id: the
// answer's or, when the answer was lost, that of the item the guard
// found. Errors are classified under op.
func (mb *Mailbox) createItem(ctx context.Context, op string, guard func(context.Context) (string, error),
	template string, params map[string]string, in any) (string, error) {
	var created struct {
		ID string `json:"id"`
	}
	err := mb.send(mb.withGuard(ctx, guard), http.MethodPost, template, params, in, &created)
	var ac *alreadyCreatedError
	switch {
	case errors.As(err, &ac):
		return ac.id, nil
	case err != nil:
		return "", classify(op, err)
	case created.ID == "":
		return "", fmt.Errorf("exchange: %s: no message id in the answer", op)
	}
	return created.ID, nil
}

// discard deletes a message whose creation could not be completed, even
// when ctx has ended; a failure is only logged.
func (mb *Mailbox) discard(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), undoTimeout)
	defer cancel()
	if err := mb.c.graph.Users().ByUserId(mb.user).Messages().ByMessageId(id).Delete(ctx, nil); err != nil {
		mb.c.logger.LogAttrs(ctx, slog.LevelWarn, "exchange: could not delete a half-imported message",
			slog.String("user", mb.user), slog.String("message", id),
			slog.String("error", classify("delete message", err).Error()))
	}
}
