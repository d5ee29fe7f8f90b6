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
// MS-OXOMSG 2.2.1.62,
// https://learn.microsoft.com/openspecs/exchange_server_protocols/ms-oxomsg/)
// as a Graph extended property id: the last action taken on a message,
// which Outlook shows as "You replied to this message" or "You forwarded
// this message". \Answered sets it to lastVerbReply, $Forwarded to
// lastVerbForward.
const LastVerbProperty = "Integer 0x1081"

// The values of PidTagLastVerbExecuted that flags set (MS-OXOMSG
// 2.2.1.62).
const (
	lastVerbReply   = "102" // NOTEIVERB_REPLYTOSENDER: \Answered
	lastVerbForward = "104" // NOTEIVERB_FORWARD: $Forwarded
)

// forwardedKeyword is the IMAP keyword of a message that was forwarded
// (RFC 5788's registry: https://www.iana.org/assignments/imap-jmap-keywords).
const forwardedKeyword = "$Forwarded"

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
//     "replied"; without it, $Forwarded sets it to 104, "forwarded"; with
//     neither it is 0. An item has one last verb, and \Answered wins: a
//     reply is what a user looks for first. The property is writable after
//     creation, unlike PidTagMessageFlags.
//   - Keywords become categories through Options.Keywords (see
//     DefaultKeywords: Thunderbird's $Label1 to $Label5 become Important,
//     Work, Personal, To Do and Later; client and filter state such as
//     $MDNSent, $Junk or NonJunk, and unknown keywords that start with
//     '$', are left out), in order, without duplicates (compared
//     case-insensitively). The item's categories are replaced: categories
//     added in Exchange since are lost.
//   - \Draft and \Deleted have no counterpart here and are ignored (a
//     draft stays a draft and a non-draft stays one: PidTagMessageFlags is
//     read-only after the first save).
//
// Needs the Mail.ReadWrite permission.
func (mb *Mailbox) SetFlags(ctx context.Context, itemID string, flags []migrate.Flag) error {
	ctx = mb.scoped(ctx)
	if err := mb.patchMessage(ctx, itemID, newItemFlags(mb.c.keywords.translate(flags)).properties(true)); err != nil {
		return classify(fmt.Sprintf("set flags of message %s", itemID), err)
	}
	return nil
}

// DefaultKeywords returns a new copy of the table that Options.Keywords
// defaults to: IMAP keyword (compared case-insensitively) to the Outlook
// category it becomes, or "" for a keyword deliberately left out.
// Keywords the table does not name become categories of the same name,
// except those that start with '$'.
//
//	keyword                       category                     why
//	$label1 … $label5             Important, Work, Personal,   Thunderbird's five default tags (it
//	                              To Do, Later                 writes them in lower case)
//	$Forwarded                    left out                     carried as the "forwarded" last verb
//	                                                           instead (see SetFlags)
//	$MDNSent                      left out                     a read receipt was sent (RFC 3503)
//	$SubmitPending, $Submitted    left out                     a draft's submission state (RFC 5550)
//	$Junk, $NotJunk, $Phishing    left out                     a filter's verdict (RFC 5788 registry);
//	Junk, NonJunk, NotJunk                                     Thunderbird tags every message it
//	                                                           classifies, and the folder (Junk Email
//	                                                           or not) already carries the verdict
//	$Important                    left out                     a server's guess that a message
//	                                                           matters (RFC 8457, Gmail's marker), not
//	                                                           a label the user chose
//	$MailFlagBit0 … 2             left out                     Apple Mail's flag colour, three bits of
//	                                                           one colour; Outlook flags have none
//
// Unknown keywords that start with '$' are left out as well: '$' marks
// keywords that clients and servers set for themselves (the IANA IMAP and
// JMAP keywords registry, https://www.iana.org/assignments/imap-jmap-keywords:
// $HasAttachment, $IsMailingList, $Muted, $CanUnsubscribe, …), so that
// making them categories would cover a mailbox with labels nobody chose,
// while user labels are plain words (Thunderbird names new tags after
// their text). A client that keeps user labels under '$' keywords is
// served by adding them to the table.
func DefaultKeywords() map[string]string {
	return map[string]string{
		"$label1":        "Important",
		"$label2":        "Work",
		"$label3":        "Personal",
		"$label4":        "To Do",
		"$label5":        "Later",
		"$Forwarded":     "",
		"$MDNSent":       "",
		"$SubmitPending": "",
		"$Submitted":     "",
		"$Junk":          "",
		"$NotJunk":       "",
		"$Phishing":      "",
		"Junk":           "",
		"NonJunk":        "",
		"NotJunk":        "",
		"$Important":     "",
		"$MailFlagBit0":  "",
		"$MailFlagBit1":  "",
		"$MailFlagBit2":  "",
	}
}

// keywordTable is Options.Keywords ready for look-ups: lower-cased
// keyword to category, "" for left out.
type keywordTable map[string]string

// newKeywordTable returns the look-up table of m (nil: DefaultKeywords()),
// or an error naming a category that the flags could not carry: empty
// names are fine (left out), but a name must not start with '\' (it
// would read as a system flag) or '$' (it would read as a keyword left
// out).
func newKeywordTable(m map[string]string) (keywordTable, error) {
	if m == nil {
		m = DefaultKeywords()
	}
	t := make(keywordTable, len(m))
	for k, v := range m {
		if strings.HasPrefix(v, `\`) || strings.HasPrefix(v, "$") {
			return nil, fmt.Errorf("exchange: Options.Keywords[%q] = %q: a category cannot start with '\\' or '$'", k, v)
		}
		t[strings.ToLower(k)] = v
	}
	return t, nil
}

// translate returns flags as Exchange is to carry them: system flags and
// $Forwarded (for the last verb) as they are, and in place of every other
// keyword the category the table gives it, or nothing when the table
// leaves it out or, for a keyword it does not name, when it starts with
// '$'. Put translates a message's flags once, before either import path
// reads them, and SetFlags and SetFlagsBatch translate theirs, so that
// newItemFlags always reads translated flags.
func (t keywordTable) translate(flags []migrate.Flag) []migrate.Flag {
	out := make([]migrate.Flag, 0, len(flags))
	for _, f := range flags {
		if !f.IsKeyword() {
			out = append(out, f)
			continue
		}
		if strings.EqualFold(string(f), forwardedKeyword) {
			out = append(out, forwardedKeyword)
		}
		cat, named := t[strings.ToLower(string(f))]
		switch {
		case named && cat != "":
			out = append(out, migrate.Flag(cat))
		case !named && !strings.HasPrefix(string(f), "$"):
			out = append(out, f)
		}
	}
	return out
}

// message returns a copy of m whose flags are translated (translate);
// m itself is left as it is, since it belongs to the caller.
func (t keywordTable) message(m *migrate.Message) *migrate.Message {
	cp := *m
	cp.Flags = t.translate(m.Flags)
	return &cp
}

// itemFlags is what IMAP flags become on an Exchange item (see SetFlags).
// It is the one encoding of flags: for the PATCH after an import, for
// SetFlags and SetFlagsBatch, and for the JSON create. It is made from
// translated flags (keywordTable.translate).
type itemFlags struct {
	read       bool     // \Seen
	flagged    bool     // \Flagged
	answered   bool     // \Answered
	forwarded  bool     // $Forwarded
	categories []string // keywords, never nil
}

func newItemFlags(flags []migrate.Flag) itemFlags {
	return itemFlags{
		read:       migrate.ContainsFlag(flags, migrate.FlagSeen),
		flagged:    migrate.ContainsFlag(flags, migrate.FlagFlagged),
		answered:   migrate.ContainsFlag(flags, migrate.FlagAnswered),
		forwarded:  migrate.ContainsFlag(flags, forwardedKeyword),
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
// (LastVerbProperty): lastVerbReply when answered, else lastVerbForward
// when forwarded; otherwise "0" when replace is set (an update that
// replaces the item's flags, and so clears a verb set before), else left
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
	case f.forwarded:
		props = append(props, extendedProperty{LastVerbProperty, lastVerbForward})
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

// categories returns the keywords of translated flags that are
// categories: not system flags, not '$'-prefixed ($Forwarded, or any
// keyword that was not translated), each once. It never returns nil, so
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
			Body:    newItemFlags(mb.c.keywords.translate(changes[i].Flags)).properties(true),
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
