package exchange

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mailferry/mailferry/migrate"
)

// LastVerbProperty is PidTagLastVerbExecuted (MS-OXPROPS 2.760,
// MS-OXOMSG 2.2.1.62) as a Graph extended property id: the last action
// taken on a message, which Outlook shows as "You replied to this
// message". \Answered sets it to lastVerbReply.
const LastVerbProperty = "Integer 0x1081"

// lastVerbReply is NOTEREPLY, "reply to sender" (MS-OXOMSG 2.2.1.62).
const lastVerbReply = "102"

// maxBatch is the most requests one $batch may hold
// (https://learn.microsoft.com/graph/json-batching#batch-size-limitations).
const maxBatch = 20

// SetFlags implements migrate.FlagSetter: it sets the item's isRead,
// flag, categories and last verb from IMAP flags in one
// PATCH /users/{id}/messages/{id} (https://learn.microsoft.com/graph/api/message-update):
//
//   - \Seen sets isRead; its absence clears it.
//   - \Flagged sets flag.flagStatus to "flagged"; its absence to
//     "notFlagged".
//   - \Answered sets PidTagLastVerbExecuted (LastVerbProperty) to 102,
//     "replied"; its absence to 0. The property is writable after
//     creation, unlike PidTagMessageFlags.
//   - Keywords become categories, in order, without duplicates (compared
//     case-insensitively). Keywords that start with '$' ($Forwarded,
//     $MDNSent, $Junk, ...) are IMAP client state, not user labels, and are
//     left out. The item's categories are replaced: categories added in
//     Exchange since are lost.
//   - \Draft and \Deleted have no counterpart here and are ignored (a
//     draft stays a draft and a non-draft stays one: PidTagMessageFlags is
//     read-only after the first save).
//
// Needs the Mail.ReadWrite permission.
func (mb *Mailbox) SetFlags(ctx context.Context, itemID string, flags []migrate.Flag) error {
	ctx = mb.scoped(ctx)
	if err := mb.patchMessage(ctx, itemID, newItemFlags(flags).properties(true)); err != nil {
		return classify(fmt.Sprintf("set flags of message %s", itemID), err)
	}
	return nil
}

// itemFlags is what IMAP flags become on an Exchange item (see SetFlags).
// It is the one encoding of flags: for the PATCH after an import, for
// SetFlags and SetFlagsBatch, and for the JSON create.
type itemFlags struct {
	read       bool     // \Seen
	flagged    bool     // \Flagged
	answered   bool     // \Answered
	categories []string // keywords, never nil
}

func newItemFlags(flags []migrate.Flag) itemFlags {
	return itemFlags{
		read:       migrate.ContainsFlag(flags, migrate.FlagSeen),
		flagged:    migrate.ContainsFlag(flags, migrate.FlagFlagged),
		answered:   migrate.ContainsFlag(flags, migrate.FlagAnswered),
		categories: categories(flags),
	}
}

// extendedProperty is one of a message's singleValueExtendedProperties
// (https://learn.microsoft.com/graph/api/resources/singlevaluelegacyextendedproperty).
type extendedProperty struct {
	ID    string `json:"id"`
	Value string `json:"value"`
}

// properties renders f as the JSON properties of a message create or
// update (https://learn.microsoft.com/graph/api/resources/message):
// isRead, flag.flagStatus ("flagged" or "notFlagged"), categories, and as
// singleValueExtendedProperties extra followed by PidTagLastVerbExecuted
// (LastVerbProperty): lastVerbReply when answered; otherwise "0" when
// replace is set (an update that replaces the item's flags), else left
// out (a new item has no last verb).
func (f itemFlags) properties(replace bool, extra ...extendedProperty) map[string]any {
	status := "notFlagged"
	if f.flagged {
		status = "flagged"
	}
	props := append([]extendedProperty(nil), extra...)
	switch {
	case f.answered:
		props = append(props, extendedProperty{LastVerbProperty, lastVerbReply})
	case replace:
		props = append(props, extendedProperty{LastVerbProperty, "0"})
	}
	out := map[string]any{
		"isRead":     f.read,
		"flag":       map[string]string{"flagStatus": status},
		"categories": f.categories,
	}
	if len(props) > 0 {
		out["singleValueExtendedProperties"] = props
	}
	return out
}

// categories returns the keywords of flags that become categories: not
// system flags, not '$'-prefixed, each once. It never returns nil, so
// that an empty list is sent and clears the categories.
func categories(flags []migrate.Flag) []string {
	out := []string{}
	for _, f := range flags {
		if !f.IsKeyword() || strings.HasPrefix(string(f), "$") ||
			slices.ContainsFunc(out, func(c string) bool { return strings.EqualFold(c, string(f)) }) {
			continue
		}
		out = append(out, string(f))
	}
	return out
}

// SetFlagsBatch implements migrate.BatchFlagSetter: it applies each change
// as SetFlags does, 20 PATCH requests per POST /$batch
// (https://learn.microsoft.com/graph/json-batching), and returns one error
// per change, in order.
//
// Graph answers a batch 200 even when some of its requests were
// throttled: each sub-response carries its own status and Retry-After,
// which no HTTP middleware sees. SetFlagsBatch therefore sends the
// throttled (429, 503, 504) changes again, in a later batch, after the
// longest Retry-After among them (or a backoff), pausing every request of
// the mailbox meanwhile and reporting each as an EventThrottled, at most
// Options.MaxRetries times; what is still throttled then fails with
// migrate.ErrTransient. Every sub-request counts against the mailbox's
// Budget, and a batch takes up to 4 concurrency slots, since Outlook may
// run 4 of its requests at once.
//
// Needs the Mail.ReadWrite permission.
func (mb *Mailbox) SetFlagsBatch(ctx context.Context, changes []migrate.FlagChange) []error {
	ctx = mb.scoped(ctx)
	errs := make([]error, len(changes))
	for start := 0; start < len(changes); start += maxBatch {
		end := min(start+maxBatch, len(changes))
		mb.setFlagsBatch(ctx, changes[start:end], errs[start:end])
	}
	return errs
}

// batchPart is one request of a $batch.
type batchPart struct {
	ID      string            `json:"id"`
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    any               `json:"body,omitempty"`
}

// batchAnswer is one response of a $batch.
type batchAnswer struct {
	ID      string            `json:"id"`
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	Body    json.RawMessage   `json:"body"`
}

func (mb *Mailbox) setFlagsBatch(ctx context.Context, changes []migrate.FlagChange, errs []error) {
	pending := make([]int, len(changes)) // indexes still to send
	for i := range pending {
		pending[i] = i
	}
	for attempt := 0; len(pending) > 0; attempt++ {
		answers, err := mb.sendBatch(ctx, changes, pending)
		if err != nil {
			for _, i := range pending {
				errs[i] = err
			}
			return
		}
		var again []int
		var wait time.Duration
		for _, i := range pending {
			op := fmt.Sprintf("set flags of message %s", changes[i].ItemID)
			a, ok := answers[fmt.Sprint(i)]
			switch {
			case !ok:
				errs[i] = migrate.TransientError(fmt.Errorf("exchange: %s: no answer in the $batch response", op))
			case a.Status < 300:
				errs[i] = nil
			default:
				ge := graphError(op, a.Status, a.Body)
				errs[i] = mark(ge)
				if !isThrottle(a.Status) {
					continue
				}
				w := retryAfter(a.Headers["Retry-After"])
				if w <= 0 {
					w = mb.c.retry.backoff.Wait(attempt)
				}
				mb.throttled(ctx, ge.reason(), w)
				wait = max(wait, w)
				again = append(again, i)
			}
		}
		if len(again) == 0 || attempt >= mb.c.retry.maxRetries || ctx.Err() != nil {
			return
		}
		// The next batch waits, and so does every other request of the
		// mailbox, since throttling is per app per mailbox.
		mb.pacer.pause(time.Now().Add(wait))
		pending = again
	}
}

// sendBatch sends the changes at indexes idx as one $batch, through the
// request adapter (authentication, retries of the envelope, pacing with
// one request per change), and returns the answers by id.
func (mb *Mailbox) sendBatch(ctx context.Context, changes []migrate.FlagChange, idx []int) (map[string]batchAnswer, error) {
	parts := make([]batchPart, 0, len(idx))
	for _, i := range idx {
		parts = append(parts, batchPart{
			ID:      fmt.Sprint(i),
			Method:  http.MethodPatch,
			URL:     "/users/" + url.PathEscape(mb.user) + "/messages/" + url.PathEscape(changes[i].ItemID),
			Headers: map[string]string{"Content-Type": "application/json"},
			Body:    newItemFlags(changes[i].Flags).properties(true),
		})
	}
	var env struct {
		Responses []batchAnswer `json:"responses"`
	}
	err := mb.send(mb.withWeight(ctx, len(idx)), http.MethodPost, "{+graphroot}/v1.0/$batch", nil,
		map[string]any{"requests": parts}, &env)
	var bad *badAnswerError
	switch {
	case errors.As(err, &bad):
		return nil, migrate.TransientError(fmt.Errorf("exchange: $batch of flag changes: %w", err))
	case err != nil:
		return nil, classify("$batch of flag changes", err)
	}
	out := make(map[string]batchAnswer, len(env.Responses))
	for _, a := range env.Responses {
		// Header names are case-insensitive; keep them canonical.
		h := make(map[string]string, len(a.Headers))
		for k, v := range a.Headers {
			h[http.CanonicalHeaderKey(k)] = v
		}
		a.Headers = h
		out[a.ID] = a
	}
	return out, nil
}
