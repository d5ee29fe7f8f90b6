package exchange

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	abstractions "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models"

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
	patch := flagPatch(flags)
	patch.SetSingleValueExtendedProperties([]models.SingleValueLegacyExtendedPropertyable{lastVerb(flags, true)})
	if err := mb.patchMessage(ctx, itemID, patch); err != nil {
		return classify(fmt.Sprintf("set flags of message %s", itemID), err)
	}
	return nil
}

// flagState is what IMAP flags become on an Exchange item.
type flagState struct {
	read       bool
	flagStatus string // "flagged" or "notFlagged"
	categories []string
	answered   bool
}

func flagsOf(flags []migrate.Flag) flagState {
	st := flagState{
		read:       hasFlag(flags, migrate.FlagSeen),
		flagStatus: "notFlagged",
		categories: categories(flags),
		answered:   hasFlag(flags, migrate.FlagAnswered),
	}
	if hasFlag(flags, migrate.FlagFlagged) {
		st.flagStatus = "flagged"
	}
	return st
}

// flagPatch returns a message update with isRead, flag and categories set
// from flags (see SetFlags).
func flagPatch(flags []migrate.Flag) *models.Message {
	st := flagsOf(flags)
	msg := models.NewMessage()
	msg.SetIsRead(&st.read)
	status := models.NOTFLAGGED_FOLLOWUPFLAGSTATUS
	if st.flagStatus == "flagged" {
		status = models.FLAGGED_FOLLOWUPFLAGSTATUS
	}
	flag := models.NewFollowupFlag()
	flag.SetFlagStatus(&status)
	msg.SetFlag(flag)
	msg.SetCategories(st.categories)
	return msg
}

// lastVerb returns the PidTagLastVerbExecuted property for flags: 102
// with \Answered; otherwise 0 when always is set, else nil.
func lastVerb(flags []migrate.Flag, always bool) models.SingleValueLegacyExtendedPropertyable {
	v := "0"
	if hasFlag(flags, migrate.FlagAnswered) {
		v = lastVerbReply
	} else if !always {
		return nil
	}
	return extProp(LastVerbProperty, v)
}

func extProp(id, value string) models.SingleValueLegacyExtendedPropertyable {
	p := models.NewSingleValueLegacyExtendedProperty()
	p.SetId(&id)
	p.SetValue(&value)
	return p
}

// categories returns the keywords of flags that become categories: not
// system flags, not '$'-prefixed, each once. It never returns nil, so
// that an empty list is sent and clears the categories.
func categories(flags []migrate.Flag) []string {
	out := []string{}
	for _, f := range flags {
		if !f.IsKeyword() || strings.HasPrefix(string(f), "$") || hasCategory(out, string(f)) {
			continue
		}
		out = append(out, string(f))
	}
	return out
}

func hasCategory(cats []string, c string) bool {
	for _, x := range cats {
		if strings.EqualFold(x, c) {
			return true
		}
	}
	return false
}

// hasFlag reports whether flags holds f, compared case-insensitively as
// IMAP does.
func hasFlag(flags []migrate.Flag, f migrate.Flag) bool {
	for _, g := range flags {
		if strings.EqualFold(string(g), string(f)) {
			return true
		}
	}
	return false
}

// patchMessage sends PATCH /users/{id}/messages/{id} with the set fields
// of msg. The error is the SDK's, unclassified.
func (mb *Mailbox) patchMessage(ctx context.Context, id string, msg models.Messageable) error {
	_, err := mb.c.graph.Users().ByUserId(mb.user).Messages().ByMessageId(id).Patch(ctx, msg, nil)
	return err
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

// flagBody is the JSON of a flag update, as flagPatch and lastVerb make it.
func flagBody(flags []migrate.Flag) map[string]any {
	st := flagsOf(flags)
	verb := "0"
	if st.answered {
		verb = lastVerbReply
	}
	return map[string]any{
		"isRead":     st.read,
		"flag":       map[string]any{"flagStatus": st.flagStatus},
		"categories": st.categories,
		"singleValueExtendedProperties": []map[string]string{
			{"id": LastVerbProperty, "value": verb},
		},
	}
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
				ge := batchError(op, a)
				errs[i] = mark(ge)
				if !isThrottle(a.Status) {
					continue
				}
				w := retryAfter(a.Headers["Retry-After"])
				if w <= 0 {
					w = mb.c.retry.backoff(attempt)
				}
				mb.emitThrottled(ctx, throttleText(ge), w)
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
			Body:    flagBody(changes[i].Flags),
		})
	}
	payload, err := json.Marshal(map[string]any{"requests": parts})
	if err != nil {
		return nil, fmt.Errorf("exchange: $batch: %w", err)
	}
	ri := abstractions.NewRequestInformation()
	ri.Method = abstractions.POST
	ri.UrlTemplate = "{+graphroot}/v1.0/$batch"
	ri.PathParameters["graphroot"] = mb.c.baseURL
	ri.Headers.TryAdd("Accept", "application/json")
	ri.SetStreamContentAndContentType(payload, "application/json")
	res, err := mb.c.adapter.SendPrimitive(mb.withWeight(ctx, len(idx)), ri, "[]byte", errorMapping)
	if err != nil {
		return nil, classify("$batch of flag changes", err)
	}
	raw, _ := res.([]byte)
	var env struct {
		Responses []batchAnswer `json:"responses"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, migrate.TransientError(fmt.Errorf("exchange: $batch of flag changes: bad answer: %w", err))
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

// batchError turns a failed sub-response into a GraphError.
func batchError(op string, a batchAnswer) *GraphError {
	var body struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	_ = json.Unmarshal(a.Body, &body)
	ge := &GraphError{Op: op, StatusCode: a.Status, Code: body.Error.Code, Message: body.Error.Message}
	ge.err = errors.New(http.StatusText(a.Status))
	return ge
}

// throttleText is the Reason of an EventThrottled for ge.
func throttleText(ge *GraphError) string {
	s := fmt.Sprintf("%d %s", ge.StatusCode, ge.Code)
	if ge.Code == "" {
		s = fmt.Sprintf("%d %s", ge.StatusCode, http.StatusText(ge.StatusCode))
	}
	if ge.Message != "" {
		s += ": " + ge.Message
	}
	return s
}
