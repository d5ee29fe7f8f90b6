package exchange

import (
	"cmp"
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
	// sweeps is where the sweep of each mailbox's leftover scratch
	// folders stands (Mailbox.sweepProbes), by lower-cased user.
	sweeps map[string]*probeSweep
}

// probeSweep is where the sweep of one mailbox stands. The zero value
// has not swept.
type probeSweep struct {
	// done is set once a sweep ended without a failure.
	done bool
	// running is set while a sweep is under way.
	running bool
	// retryAt is the time before which no sweep runs again, after one
	// that failed.
	retryAt time.Time
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
// A process that dies during the probe (killed, crashed, its machine
// down) cannot remove them, nor can a step 5 that failed: they stay at
// the top of the mailbox until a Client sweeps it. Each Client sweeps
// each mailbox it uses, once: after the first EnsureFolder look-up that
// succeeds there or before a probe there, whichever comes first, so
// every mailbox of a batch is swept, not only the one that is probed. A
// sweep lists the top-level folders with
// GET /users/{id}/mailFolders?$filter=startswith(displayName,'mailferry-probe-')
// and removes, with permanentDelete, each one whose name is exactly a
// probe's ("mailferry-probe-" and 12 lower-case hexadecimal digits) that
// has no child folder and holds nothing but canaries of that name (read
// with GET .../mailFolders/{id}/messages?$select=internetMessageId),
// logging each removal with the folder's name. A folder of a probe under
// way in this process, in any Client, is left alone; so is one that
// holds anything else, with a warning. A mailbox with nothing to remove
// costs one request; each folder removed, two more. A sweep that fails
// is logged and fails nothing else: the call that made it goes on, and
// the mailbox is swept again by its next EnsureFolder look-up or probe a
// minute later or more, as it is after a step 5 that failed there. A
// probe that another process runs in the same mailbox at the same moment
// is not known to this one, and may be removed under it: that probe then
// fails.
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

		mb.sweepProbes(ctx)
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
	var rnd [probeRandomBytes]byte
	_, _ = rand.Read(rnd[:])
	name := probePrefix + hex.EncodeToString(rnd[:])
	const op = "received-date probe"

	// Registered before the folder exists and until it is gone, so that
	// no sweep of this process that sees the folder removes it.
	probesUnderWay.add(name)
	defer probesUnderWay.remove(name)

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
		mb.c.logger.LogAttrs(ctx, slog.LevelWarn, "exchange: received-date probe: could not delete the scratch folder; "+
			"a later sweep of the mailbox removes it",
			slog.String("user", mb.user), slog.String("folder", name),
			slog.String("error", classify("delete folder", err).Error()))
		mb.c.probe.sweepAgain(mb.user)
	}
}

// probeMIME is the canary message of the probe whose folder is name.
func probeMIME(name string) []byte {
	return []byte("From: mailferry <probe@mailferry.invalid>\r\n" +
		"To: <probe@mailferry.invalid>\r\n" +
		"Subject: mailferry received-date probe\r\n" +
		"Date: Sat, 01 Jan 2000 00:00:00 +0000\r\n" +
		"Message-ID: " + canaryMessageID(name) + "\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=us-ascii\r\n" +
		"\r\n" +
		"mailferry imported this message to learn whether Exchange keeps the\r\n" +
		"received date of an imported message, and deletes it at once.\r\n")
}

// canaryMessageID is the Message-ID of the canary of the probe whose
// folder is name.
func canaryMessageID(name string) string {
	return "<" + name + "@mailferry.invalid>"
}

// probePrefix starts the name of every probe's scratch folder; probe
// names it with probeRandomBytes random bytes in lower-case hexadecimal
// after it.
const (
	probePrefix      = "mailferry-probe-"
	probeRandomBytes = 6
)

// isProbeName reports whether name is one that probeDeliveryTime gives
// its scratch folder. Graph's startswith ignores case; this does not.
func isProbeName(name string) bool {
	rnd, ok := strings.CutPrefix(name, probePrefix)
	if !ok || len(rnd) != 2*probeRandomBytes {
		return false
	}
	for i := range len(rnd) {
		if c := rnd[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// probesUnderWay holds the names of the scratch folders of the probes
// under way in this process, whatever their Client: no sweep removes
// them.
var probesUnderWay = probeNames{names: map[string]bool{}}

type probeNames struct {
	mu    sync.Mutex
	names map[string]bool
}

func (p *probeNames) add(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.names[name] = true
}

func (p *probeNames) remove(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.names, name)
}

func (p *probeNames) has(name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.names[name]
}

// sweepPageSize is the $top of the sweep's listings: the folders that a
// probe may have left, and the messages of one of them. A folder that
// holds more than that is not a probe's.
const sweepPageSize = 50

// sweepProbes removes the scratch folders that probes which could not
// clean up left at the top of mb's mailbox, once per mailbox and Client,
// as ProbeReceivedDates documents. It returns at once when this mailbox
// was swept already, is being swept, or failed its last sweep less than a
// minute ago. A failure is logged, never returned.
func (mb *Mailbox) sweepProbes(ctx context.Context) {
	p := &mb.c.probe
	key := strings.ToLower(mb.user)
	p.mu.Lock()
	s := p.sweeps[key]
	if s == nil {
		if p.sweeps == nil {
			p.sweeps = map[string]*probeSweep{}
		}
		s = &probeSweep{}
		p.sweeps[key] = s
	}
	if s.done || s.running || time.Now().Before(s.retryAt) {
		p.mu.Unlock()
		return
	}
	s.running = true
	p.mu.Unlock()

	err := mb.sweepProbeFolders(ctx)

	p.mu.Lock()
	s.running = false
	switch {
	case err == nil:
		s.done = true
	case ctx.Err() != nil:
		// The caller gave up: the next caller sweeps.
	default:
		s.retryAt = time.Now().Add(probeRetryDelay)
	}
	p.mu.Unlock()
	if err != nil && ctx.Err() == nil {
		mb.c.logger.LogAttrs(ctx, slog.LevelWarn, "exchange: could not remove the leftovers of interrupted received-date probes; "+
			"a later call tries again",
			slog.String("user", mb.user), slog.String("error", err.Error()))
	}
}

// sweepAgain makes the next sweep of user's mailbox run, a minute from
// now at the earliest: a probe could not delete its scratch folder there.
func (p *dateProbe) sweepAgain(user string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s := p.sweeps[strings.ToLower(user)]; s != nil {
		s.done, s.retryAt = false, time.Now().Add(probeRetryDelay)
	}
}

// sweepProbeFolders runs one sweep's requests (see ProbeReceivedDates).
// Folders it leaves on purpose are no error; the first failure to list
// or remove one is, after every other folder had its turn.
func (mb *Mailbox) sweepProbeFolders(ctx context.Context) error {
	const op = "sweep received-date probe folders"
	folders := mb.c.graph.Users().ByUserId(mb.user).MailFolders()
	filter := "startswith(displayName," + quote(probePrefix) + ")"
	top := int32(sweepPageSize)
	resp, err := folders.Get(ctx, &users.ItemMailFoldersRequestBuilderGetRequestConfiguration{
		QueryParameters: &users.ItemMailFoldersRequestBuilderGetQueryParameters{
			Filter: &filter, Select: []string{"id", "displayName", "childFolderCount"}, Top: &top,
		},
	})
	type leftover struct {
		id, name string
		children *int32
	}
	var found []leftover
	for {
		if err != nil {
			return classify(op+": list folders", err)
		}
		if resp == nil {
			break
		}
		for _, f := range resp.GetValue() {
			if f == nil || f.GetId() == nil || *f.GetId() == "" || f.GetDisplayName() == nil || !isProbeName(*f.GetDisplayName()) {
				continue
			}
			found = append(found, leftover{*f.GetId(), *f.GetDisplayName(), f.GetChildFolderCount()})
		}
		next := resp.GetOdataNextLink()
		if next == nil || *next == "" {
			break
		}
		resp, err = folders.WithUrl(*next).Get(ctx, nil)
	}

	var first error
	for _, f := range found {
		if probesUnderWay.has(f.name) {
			continue
		}
		canaries := -1 // a probe's folder has no child folder
		if f.children != nil && *f.children == 0 {
			canaries, err = mb.probeCanaries(ctx, f.id, f.name)
			if err != nil {
				first = cmp.Or(first, classify(op+": list the messages of "+f.name, err))
				continue
			}
		}
		if canaries < 0 {
			mb.c.logger.LogAttrs(ctx, slog.LevelWarn, "exchange: a folder named like a received-date probe's holds more than its canary; left in place",
				slog.String("user", mb.user), slog.String("folder", f.name))
			continue
		}
		err = folders.ByMailFolderId(f.id).PermanentDelete().Post(ctx, nil)
		var ge *GraphError
		if err = classify(op+": delete folder "+f.name, err); err != nil &&
			!(errors.As(err, &ge) && ge.StatusCode == http.StatusNotFound && errors.Is(err, migrate.ErrItem)) {
			first = cmp.Or(first, err)
			continue
		}
		// Removed, by this sweep or, when Graph answered 404, by another.
		mb.c.logger.LogAttrs(ctx, slog.LevelInfo, "exchange: removed the scratch folder of an interrupted received-date probe",
			slog.String("user", mb.user), slog.String("folder", f.name), slog.Int("canaries", canaries))
	}
	return first
}

// probeCanaries returns the number of messages in the folder id, all
// of them canaries of the probe that named it name, or -1 when it holds
// anything else or more than sweepPageSize messages. Errors are the
// SDK's, unclassified.
func (mb *Mailbox) probeCanaries(ctx context.Context, id, name string) (int, error) {
	top := int32(sweepPageSize)
	resp, err := mb.c.graph.Users().ByUserId(mb.user).MailFolders().ByMailFolderId(id).Messages().Get(ctx,
		&users.ItemMailFoldersItemMessagesRequestBuilderGetRequestConfiguration{
			QueryParameters: &users.ItemMailFoldersItemMessagesRequestBuilderGetQueryParameters{
				Select: []string{"internetMessageId"}, Top: &top,
			},
		})
	if err != nil || resp == nil {
		return 0, err
	}
	if next := resp.GetOdataNextLink(); next != nil && *next != "" {
		return -1, nil
	}
	want := canaryMessageID(name)
	for _, m := range resp.GetValue() {
		if m == nil || m.GetInternetMessageId() == nil || !strings.EqualFold(*m.GetInternetMessageId(), want) {
			return -1, nil
		}
	}
	return len(resp.GetValue()), nil
}
