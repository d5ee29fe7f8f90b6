package exchange

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/microsoftgraph/msgraph-sdk-go/users"

	"github.com/mailferry/mailferry/migrate"
)

// This file holds the received-date probe: whether the tenant lets the
// PATCH after importMime set PidTagMessageDeliveryTime, learnt once per
// Client, and what Put makes of the answer.

// mailFoldersPath is the top-level folders of the mailbox: POST creates
// one (https://learn.microsoft.com/graph/api/user-post-mailfolders).
const mailFoldersPath = "{+graphroot}/v1.0/users/{user}/mailFolders"

// probeDeliveryTime is the received date the probe gives its canary: a
// fixed past time, unlike any time of import and unlike the canary's
// Date header, so that reading it back can only mean the PATCH set it.
const probeDeliveryTime = "2001-02-03T04:05:06Z"

// probeRetryDelay is how long Puts do without an answer after a probe
// that failed for a transient reason (throttling, a connection dropped
// beyond the retries) before one of them probes again.
const probeRetryDelay = time.Minute

// dateProbe is what a Client knows of its tenant's answer to the probe.
// The zero value knows nothing. mu guards every field.
type dateProbe struct {
	mu sync.Mutex
	// answered is set once the tenant answered: honoured is its answer.
	answered, honoured bool
	// settled is set once no later probe would change anything: after an
	// answer, or after a failure that is neither transient nor the
	// mailbox's (err).
	settled bool
	err     error
	// running is closed when the probe under way ends; nil when none runs.
	running chan struct{}
	// lastErr and retryAt: the last transient failure, and the time
	// before which no probe runs again.
	lastErr error
	retryAt time.Time
	// mailboxErrs are the failures of probes that a mailbox caused
	// (migrate.ErrMailbox), by lower-cased user: the probe is not run
	// there again, but may run in another mailbox.
	mailboxErrs map[string]error
}

// ReceivedDatesProbe returns what the Client has learnt of its tenant
// through Mailbox.ProbeReceivedDates, without probing: known is false
// until a probe has been answered, and honoured is then whether Exchange
// Online honours PidTagMessageDeliveryTime set by the PATCH after
// importMime, that is whether every message up to MaxImportSize keeps both
// its exact MIME and its received date.
func (c *Client) ReceivedDatesProbe() (honoured, known bool) {
	c.probe.mu.Lock()
	defer c.probe.mu.Unlock()
	return c.probe.honoured, c.probe.answered
}

// ProbeReceivedDates reports whether the tenant honours
// PidTagMessageDeliveryTime (SystemTime 0x0E06) set by a PATCH after
// importMime, that is whether a message imported byte for byte can be
// given its source's received date. Microsoft documents neither a way to
// set the received date of an imported message nor whether Exchange
// Online lets this property change after an item's first save, so the
// Client finds out, once per tenant, in mb's mailbox:
//
//  1. POST /users/{id}/mailFolders: a scratch folder,
//     "mailferry-probe-<random>", at the top of the mailbox;
//  2. POST /beta/users/{id}/mailFolders/{id}/importMime: a small canary
//     message into it;
//  3. PATCH /users/{id}/messages/{id}: the canary's
//     PidTagMessageDeliveryTime to 2001-02-03T04:05:06Z;
//  4. GET /users/{id}/messages/{id}?$select=receivedDateTime: honoured
//     when it reads back that date;
//  5. DELETE /users/{id}/messages/{id} and
//     POST /users/{id}/mailFolders/{id}/permanentDelete
//     (https://learn.microsoft.com/graph/api/mailfolder-permanentdelete):
//     the canary and the folder are removed, also when a step failed or
//     ctx ended (within 30 seconds of it); a failure to remove them is
//     logged with the folder's name.
//
// A PATCH that Graph refuses (400) is an answer too: not honoured. The
// answer is kept for the Client's life, and concurrent callers wait for
// the probe under way. A probe that failed for a transient reason is run
// again by a call a minute later at the earliest; one that failed for a
// reason of this mailbox (migrate.ErrMailbox: no mailbox, a full one,
// access refused) is not run in this mailbox again, but may be in
// another; any other failure is kept for the Client's life. The error
// says why there is no answer, and the answer is then false.
//
// Under ReceivedDateFromSource, Put calls it for every non-draft message
// that importMime could take, and routes by its answer (see
// ReceivedDates); under ReceivedDateAtImport, Put never calls it. Tools
// may call it beforehand, to know. It needs Put's permissions:
// Mail.ReadWrite and Mail-Advanced.ReadWrite.All.
func (mb *Mailbox) ProbeReceivedDates(ctx context.Context) (bool, error) {
	ctx = mb.scoped(ctx)
	p := &mb.c.probe
	key := strings.ToLower(mb.user)
	for {
		p.mu.Lock()
		switch {
		case p.settled:
			honoured, err := p.honoured, p.err
			p.mu.Unlock()
			return honoured, err
		case p.running != nil:
			running := p.running
			p.mu.Unlock()
			select {
			case <-running:
				continue
			case <-ctx.Done():
				return false, ctx.Err()
			}
		case p.mailboxErrs[key] != nil:
			err := p.mailboxErrs[key]
			p.mu.Unlock()
			return false, err
		case time.Now().Before(p.retryAt):
			err := p.lastErr
			p.mu.Unlock()
			return false, err
		}
		running := make(chan struct{})
		p.running = running
		p.mu.Unlock()

		honoured, err := mb.probeDeliveryTime(ctx)
		mb.logProbe(ctx, honoured, err)

		p.mu.Lock()
		p.running = nil
		close(running)
		switch {
		case err == nil:
			p.answered, p.honoured, p.settled = true, honoured, true
		case ctx.Err() != nil:
			// The caller gave up: the next caller probes.
		case errors.Is(err, migrate.ErrTransient):
			p.lastErr, p.retryAt = err, time.Now().Add(probeRetryDelay)
		case errors.Is(err, migrate.ErrMailbox):
			if p.mailboxErrs == nil {
				p.mailboxErrs = map[string]error{}
			}
			p.mailboxErrs[key] = err
		default:
			p.err, p.settled = err, true
		}
		p.mu.Unlock()
		return honoured, err
	}
}

// deliveryTimeSettable reports whether the PATCH after an import may give
// the message its received date: under ReceivedDateFromSource, the
// answer of ProbeReceivedDates (false when the probe failed); under
// ReceivedDateAtImport, false without probing. Either way it reports what
// messages get on this tenant as a migrate.EventNotice on ctx, which the
// Engine keeps once per mailbox. Put calls it for every non-draft message
// that importMime could take.
func (mb *Mailbox) deliveryTimeSettable(ctx context.Context) bool {
	honoured, err := false, error(nil)
	if mb.c.dates == ReceivedDateFromSource {
		honoured, err = mb.ProbeReceivedDates(ctx)
	}
	if ctx.Err() == nil {
		migrate.Notify(ctx, migrate.Event{Kind: migrate.EventNotice, Reason: mb.c.datesNotice(honoured, err)})
	}
	return honoured
}

// deliveryTimeProperties returns the extended properties that the PATCH
// after the import of m sets besides its flags: the watermark, and
// PidTagMessageDeliveryTime = m.InternalDate for a non-draft message with
// an INTERNALDATE when the tenant honours it (deliveryTimeSettable).
func (mb *Mailbox) deliveryTimeProperties(ctx context.Context, m *migrate.Message) []extendedProperty {
	props := []extendedProperty{{WatermarkProperty, m.ID.String()}}
	if !m.HasFlag(migrate.FlagDraft) && !m.InternalDate.IsZero() && mb.deliveryTimeSettable(ctx) {
		props = append(props, extendedProperty{deliveryTimeProperty, systemTime(m.InternalDate)})
	}
	return props
}

// The notices of deliveryTimeSettable: what the run's messages get.
const (
	noticeHonoured = "Exchange honours PidTagMessageDeliveryTime set after importMime: " +
		"every message up to 3 MB keeps its exact MIME and its received date"
	noticeNotHonoured = "Exchange does not honour PidTagMessageDeliveryTime set after importMime"
	noticeRebuilt     = ": received dates kept by rebuilding messages from JSON (ReceivedDateFromSource); " +
		"signed and encrypted messages keep their exact MIME and show the time of the import as received"
	noticeAtImport = "ReceivedDateAtImport: messages up to 3 MB keep their exact MIME " +
		"and show the time of the import as received"
)

// datesNotice is the sentence that tells a run what received dates and
// MIME its messages get, from the policy and the probe's answer.
func (c *Client) datesNotice(honoured bool, err error) string {
	switch {
	case c.dates == ReceivedDateAtImport:
		return noticeAtImport
	case honoured:
		return noticeHonoured
	case err != nil:
		return "Could not learn whether Exchange honours PidTagMessageDeliveryTime set after importMime (" +
			err.Error() + ")" + noticeRebuilt
	}
	return noticeNotHonoured + noticeRebuilt
}

// logProbe logs the outcome of one probe.
func (mb *Mailbox) logProbe(ctx context.Context, honoured bool, err error) {
	if err != nil {
		mb.c.logger.LogAttrs(ctx, slog.LevelWarn, "exchange: received-date probe failed; imported messages get no received date",
			slog.String("user", mb.user), slog.String("error", err.Error()))
		return
	}
	mb.c.logger.LogAttrs(ctx, slog.LevelInfo, "exchange: received-date probe",
		slog.String("user", mb.user), slog.Bool("honoured", honoured), slog.String("policy", mb.c.dates.String()))
}

// probeDeliveryTime runs the probe's requests (see ProbeReceivedDates)
// and returns the tenant's answer, or why there is none.
func (mb *Mailbox) probeDeliveryTime(ctx context.Context) (bool, error) {
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	name := "mailferry-probe-" + hex.EncodeToString(rnd[:])
	const op = "received-date probe"

	folderID, err := mb.createItem(ctx, op+": create folder "+name,
		func(ctx context.Context) (string, error) { return mb.findFolder(ctx, "", name) },
		mailFoldersPath, nil, map[string]string{"displayName": name})
	if err != nil {
		return false, err
	}
	var canary string
	defer func() { mb.dropProbe(ctx, name, folderID, canary) }()

	raw := probeMIME(name)
	enc := make([]byte, base64.StdEncoding.EncodedLen(len(raw)))
	base64.StdEncoding.Encode(enc, raw)
	// No guard: a second canary would be removed with the folder.
	canary, err = mb.createItem(ctx, op+": importMime", nil, importMIMEPath,
		map[string]string{"folder": folderID}, textBody(enc))
	if err != nil {
		return false, err
	}
	err = mb.patchMessage(ctx, canary, map[string]any{
		"singleValueExtendedProperties": []extendedProperty{{deliveryTimeProperty, probeDeliveryTime}},
	})
	if err != nil {
		err = classify(op+": set PidTagMessageDeliveryTime", err)
		var ge *GraphError
		if errors.As(err, &ge) && ge.StatusCode == http.StatusBadRequest {
			mb.c.logger.LogAttrs(ctx, slog.LevelInfo, "exchange: received-date probe: Exchange refused the PATCH",
				slog.String("user", mb.user), slog.String("error", err.Error()))
			return false, nil
		}
		return false, err
	}
	msg, err := mb.c.graph.Users().ByUserId(mb.user).Messages().ByMessageId(canary).Get(ctx,
		&users.ItemMessagesMessageItemRequestBuilderGetRequestConfiguration{
			QueryParameters: &users.ItemMessagesMessageItemRequestBuilderGetQueryParameters{
				Select: []string{"receivedDateTime"},
			},
		})
	if err != nil {
		return false, classify(op+": read receivedDateTime back", err)
	}
	want, _ := time.Parse(time.RFC3339, probeDeliveryTime)
	got := msg.GetReceivedDateTime()
	if got == nil {
		return false, fmt.Errorf("exchange: %s: no receivedDateTime in the answer", op)
	}
	return got.Equal(want), nil
}

// dropProbe deletes the probe's canary and folder, even when ctx has
// ended; a failure is only logged.
func (mb *Mailbox) dropProbe(ctx context.Context, name, folderID, canary string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), undoTimeout)
	defer cancel()
	user := mb.c.graph.Users().ByUserId(mb.user)
	if canary != "" {
		if err := user.Messages().ByMessageId(canary).Delete(ctx, nil); err != nil {
			mb.c.logger.LogAttrs(ctx, slog.LevelWarn, "exchange: received-date probe: could not delete the canary message",
				slog.String("user", mb.user), slog.String("folder", name),
				slog.String("error", classify("delete message", err).Error()))
		}
	}
	if err := user.MailFolders().ByMailFolderId(folderID).PermanentDelete().Post(ctx, nil); err != nil {
		mb.c.logger.LogAttrs(ctx, slog.LevelWarn, "exchange: received-date probe: could not delete the scratch folder; delete it by hand",
			slog.String("user", mb.user), slog.String("folder", name),
			slog.String("error", classify("delete folder", err).Error()))
	}
}

// probeMIME is the canary message of the probe whose folder is name.
func probeMIME(name string) []byte {
	return []byte("From: mailferry <probe@mailferry.invalid>\r\n" +
		"To: <probe@mailferry.invalid>\r\n" +
		"Subject: mailferry received-date probe\r\n" +
		"Date: Sat, 01 Jan 2000 00:00:00 +0000\r\n" +
		"Message-ID: <" + name + "@mailferry.invalid>\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=us-ascii\r\n" +
		"\r\n" +
		"mailferry imported this message to learn whether Exchange keeps the\r\n" +
		"received date of an imported message, and deletes it at once.\r\n")
}
