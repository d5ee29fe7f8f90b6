package migrate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"
)

// flagBatch is how many flag changes go to a BatchFlagSetter at once.
const flagBatch = 200

func (m *mailboxRun) copyFolder(ctx context.Context, f Folder, t Target, fr *FolderReport) error {
	folderID, err := m.ensure(ctx, t.Path)
	if err != nil {
		return err
	}
	if f.NoSelect {
		return nil
	}
	st, err := m.opts.State.Load(ctx, m.job.Mailbox, f.Name)
	if err != nil {
		return fmt.Errorf("migrate: load state of %q: %w", f.Name, err)
	}
	if st.UIDValidity != 0 && st.UIDValidity != f.UIDValidity && len(st.Records) > 0 {
		return fmt.Errorf("migrate: folder %q: UIDVALIDITY was %d, is %d; not copied again to avoid duplicates: %w",
			f.Name, st.UIDValidity, f.UIDValidity, ErrUIDValidityChanged)
	}
	fc := &folderCopy{mailboxRun: m, folder: f, target: t, folderID: folderID, st: st, rep: fr,
		onTarget: map[uint32]string{}, unread: map[uint32]readFailure{}}
	fc.reset()
	if len(st.Records) == 0 {
		// Nothing recorded: a first run, or the State was lost. Whatever
		// the target already holds of the folder is adopted, not copied.
		if err := fc.inventory(ctx); err != nil {
			return err
		}
	}
	if err := fc.list(ctx); err != nil {
		return err
	}
	fc.onTarget, fc.unstamped = nil, nil // what the source no longer lists stays on the sink, unrecorded
	m.emit(Event{Kind: EventFolderStarted, Folder: f.Name, Target: t.Key(), Count: len(fc.toCopy)})
	if err := fc.copyAll(ctx); err != nil {
		return err
	}
	if err := fc.updateFlags(ctx); err != nil {
		return err
	}
	// A pass that left nothing behind lets the next one list only changes;
	// one that did must list again what it could not carry, and one that
	// filtered messages out what a later run with a wider Filter copies.
	if f.ModSeq != 0 && fr.Failed == 0 && fr.FlagsFailed == 0 && fr.Filtered == 0 && fr.Pass != "unchanged" && f.ModSeq != st.ModSeq {
		if err := m.opts.State.SetModSeq(ctx, m.job.Mailbox, f.Name, f.UIDValidity, f.ModSeq); err != nil {
			return fmt.Errorf("migrate: state: %w", err)
		}
	}
	return nil
}

// folderCopy is the state of one folder's copy.
type folderCopy struct {
	*mailboxRun
	folder   Folder
	target   Target
	folderID string
	st       FolderState
	rep      *FolderReport          // guarded by mailboxRun.mu once Puts run
	toCopy   []uint32               // UIDs to fetch and put
	pending  map[uint32]int64       // their sizes, until taken for a Put (fetching goroutine only)
	begun    map[uint32]MessageInfo // those an earlier run began but did not commit
	flagJobs []FlagChange
	flagInfo []MessageInfo // the source message of each flag job
	// onTarget holds, until the listing is done, the items that a
	// WatermarkLister found stamped with a UID of the folder's current
	// UIDVALIDITY (UID to item id); adopted, those the listing met.
	onTarget map[uint32]string
	// unstamped holds, until the listing is done, the items that an
	// ItemLister found without a watermark, by Message-ID; a listed
	// message that no watermark accounts for adopts the first of its
	// Message-ID.
	unstamped map[string][]string
	adopted   []adoption
	// repairedItems are the items repairs of this pass adopted (item id
	// to UID), which no other UID may adopt.
	repairedItems map[string]uint32
	// unread holds the messages delivered with a body that could not be
	// read to its end (a connection dropped mid-body): still pending, so
	// that the source's second delivery is put (fetching goroutine only).
	unread map[uint32]readFailure
	// firstPass: the UIDs came from a UIDLister, so metadata (and the
	// Deduper's verdict) comes with each fetched message.
	firstPass bool
}

// reset forgets what a listing found. What it keeps per message to copy
// is small (a UID and a size), so that a folder of 500,000 messages costs
// a few megabytes.
func (fc *folderCopy) reset() {
	fc.toCopy, fc.flagJobs, fc.flagInfo, fc.adopted = nil, nil, nil, nil
	fc.pending, fc.begun = map[uint32]int64{}, map[uint32]MessageInfo{}
}

// adoption is a message found on the target, to record: by its
// watermark, or by its Message-ID on an item without one, which is
// stamped first (unstamped).
type adoption struct {
	info      MessageInfo
	itemID    string
	unstamped bool
}

// readFailure is a delivery whose body could not be read to its end.
type readFailure struct {
	info MessageInfo
	err  error
}

// inventory asks an ItemLister or WatermarkLister sink which items of
// the target folder are stamped with a UID of this folder under its
// current UIDVALIDITY, and an ItemLister also which carry no watermark;
// consider adopts those the source still lists. Items stamped under
// another UIDVALIDITY alone stop the folder, as records of them in the
// State would: their UIDs name other messages now.
func (fc *folderCopy) inventory(ctx context.Context) error {
	if fc.folder.UIDValidity == 0 {
		return nil
	}
	var stale uint32
	stamped := func(id SourceID, itemID string) {
		switch {
		case id.Folder != fc.folder.Name || itemID == "":
		case id.UIDValidity != fc.folder.UIDValidity:
			stale = id.UIDValidity
		default:
			if _, dup := fc.onTarget[id.UID]; !dup {
				fc.onTarget[id.UID] = itemID
			}
		}
	}
	var err error
	switch l := fc.job.Sink.(type) {
	case ItemLister:
		err = l.ListItems(ctx, fc.folderID, func(it ListedItem) error {
			switch {
			case it.Watermark != SourceID{}:
				stamped(it.Watermark, it.ItemID)
			case it.MessageID != "" && it.ItemID != "":
				if fc.unstamped == nil {
					fc.unstamped = map[string][]string{}
				}
				fc.unstamped[it.MessageID] = append(fc.unstamped[it.MessageID], it.ItemID)
			}
			return nil
		})
	case WatermarkLister:
		err = l.ListWatermarks(ctx, fc.folderID, func(id SourceID, itemID string) error {
			stamped(id, itemID)
			return nil
		})
	default:
		return nil
	}
	if err != nil {
		return fmt.Errorf("migrate: list the items of %q: %w", fc.target.Key(), err)
	}
	if len(fc.onTarget) == 0 && stale != 0 {
		return fmt.Errorf("migrate: folder %q: %q holds copies made under UIDVALIDITY %d, which is %d now; not copied again to avoid duplicates: %w",
			fc.folder.Name, fc.target.Key(), stale, fc.folder.UIDValidity, ErrUIDValidityChanged)
	}
	return nil
}

func (fc *folderCopy) id(uid uint32) SourceID {
	return SourceID{Folder: fc.folder.Name, UIDValidity: fc.folder.UIDValidity, UID: uid}
}

// list reads the folder's messages and decides what to copy: on a first
// pass, every UID (if the source can list UIDs alone); later, only what
// changed since the last complete pass when the source and the State
// allow it; else every message's metadata.
func (fc *folderCopy) list(ctx context.Context) error {
	f, st := fc.folder, fc.st
	// Items found on the target need the source's metadata (its flags, to
	// carry them): the folder is listed in full.
	found := len(fc.onTarget) > 0 || len(fc.unstamped) > 0
	if ul, ok := fc.job.Source.(UIDLister); ok && len(st.Records) == 0 && fc.opts.Filter.isZero() && !found {
		uids, err := ul.UIDs(ctx, f)
		if err != nil {
			return fmt.Errorf("migrate: list UIDs of %q: %w", f.Name, err)
		}
		fc.rep.Pass, fc.rep.Listed, fc.firstPass = "first", len(uids), true
		fc.toCopy = uids
		for _, uid := range uids {
			fc.pending[uid] = 0 // the size comes with the message
		}
		return nil
	}
	if f.ModSeq != 0 && st.ModSeq != 0 && st.UIDValidity == f.UIDValidity && !found {
		if f.ModSeq == st.ModSeq {
			fc.rep.Pass = "unchanged"
			fc.rep.AlreadyCopied = countCommitted(st)
			return nil
		}
		if cl, ok := fc.job.Source.(ChangeLister); ok {
			fc.rep.Pass = "changes"
			err := cl.ListChanges(ctx, f, st.ModSeq, fc.consider)
			if err == nil {
				// The messages not listed are unchanged, and as copied
				// as the State says: counted, as in an unchanged folder.
				fc.rep.AlreadyCopied = countCommitted(st)
				return nil
			}
			if !errors.Is(err, ErrNoModSeq) {
				return fmt.Errorf("migrate: list changes in %q: %w", f.Name, err)
			}
			// Start again with a full listing.
			*fc.rep = FolderReport{Source: fc.rep.Source, Target: fc.rep.Target}
			fc.reset()
		}
	}
	fc.rep.Pass = "full"
	if err := fc.job.Source.List(ctx, f, fc.consider); err != nil {
		return fmt.Errorf("migrate: list %q: %w", f.Name, err)
	}
	return nil
}

func countCommitted(st FolderState) int {
	n := 0
	for _, r := range st.Records {
		if r.Committed() {
			n++
		}
	}
	return n
}

// consider decides, for each listed message, whether it must be copied.
func (fc *folderCopy) consider(info MessageInfo) error {
	fc.rep.Listed++
	rec, known := fc.st.Records[info.UID]
	if known && rec.Committed() {
		fc.rep.AlreadyCopied++
		fc.seen(info)
		if !SameFlags(rec.Flags, info.Flags) {
			fc.flagJobs = append(fc.flagJobs, FlagChange{ItemID: rec.ItemID, Flags: info.Flags})
			fc.flagInfo = append(fc.flagInfo, info)
		}
		return nil
	}
	if itemID, ok := fc.onTarget[info.UID]; ok && !known {
		// On the target already, though the State does not say so.
		fc.adopted = append(fc.adopted, adoption{info: info, itemID: itemID})
		fc.seen(info)
		return nil
	}
	if items := fc.unstamped[info.MessageID]; len(items) > 0 && !known && info.MessageID != "" {
		// On the target without a watermark: a Put that did not live to
		// stamp it, or a copy made by other means.
		fc.unstamped[info.MessageID] = items[1:]
		fc.adopted = append(fc.adopted, adoption{info: info, itemID: items[0], unstamped: true})
		fc.seen(info)
		return nil
	}
	if reason := fc.opts.Filter.reason(info); reason != "" {
		fc.rep.Filtered++
		fc.emit(Event{Kind: EventMessageSkipped, Folder: fc.folder.Name, UID: info.UID, Reason: reason})
		return nil
	}
	if known {
		// Begun but never committed: a run stopped between Put and Commit.
		// Repair happens in copyAll, where the sink may be asked.
		fc.toCopy = append(fc.toCopy, info.UID)
		fc.pending[info.UID] = info.Size
		fc.begun[info.UID] = info
		fc.seen(info)
		return nil
	}
	if fc.seen(info) {
		fc.rep.Duplicates++
		fc.emit(Event{Kind: EventMessageSkipped, Folder: fc.folder.Name, UID: info.UID, Reason: "duplicate of " + info.MessageID})
		return nil
	}
	fc.toCopy = append(fc.toCopy, info.UID)
	fc.pending[info.UID] = info.Size
	return nil
}

func (fc *folderCopy) seen(info MessageInfo) bool {
	return fc.opts.Deduper != nil && fc.opts.Deduper.Seen(fc.job.Mailbox, fc.target, info)
}

// repair looks for the sink item of a message whose copy began in an
// earlier run but was not committed: by watermark first, then by
// Message-ID (a sink may have stored the item but not yet its watermark).
// It returns the item id, or "" when no item can be adopted. An item is
// adopted only when nothing else claims it: found by Message-ID, it must
// carry no watermark of another message (several messages may share a
// Message-ID), and the State (or a repair of this pass) must record it
// for no other UID. Sinks leave out items they have not completed.
// unstamped is set when the item carries no watermark (found by
// Message-ID only).
func (fc *folderCopy) repair(ctx context.Context, info MessageInfo) (itemID string, unstamped bool, err error) {
	id := fc.id(info.UID)
	if w, ok := fc.job.Sink.(WatermarkFinder); ok {
		itemID, err := w.FindWatermark(ctx, fc.folderID, id)
		if err != nil {
			return "", false, err
		}
		if itemID != "" && !fc.claimedByOther(itemID, info.UID) {
			return itemID, false, nil
		}
	}
	if f, ok := fc.job.Sink.(MessageIDFinder); ok && info.MessageID != "" {
		found, err := f.FindMessageID(ctx, fc.folderID, info.MessageID)
		if err != nil {
			return "", false, err
		}
		for _, it := range found {
			if it.ItemID == "" || (it.Watermark != SourceID{} && it.Watermark != id) || fc.claimedByOther(it.ItemID, info.UID) {
				continue
			}
			return it.ItemID, it.Watermark == SourceID{}, nil
		}
	}
	return "", false, nil
}

// stamp gives an item that a repair adopted without a watermark the
// message's SourceID, where the sink can (WatermarkStamper), so that a
// run that lost its State finds it. It reports whether the item may be
// recorded: a stamp the sink refused is reported as a failure
// (ActionStamp) and leaves the message begun, for the next run to repair
// again; the item is not copied twice.
func (fc *folderCopy) stamp(ctx context.Context, info MessageInfo, itemID string) (bool, error) {
	s, ok := fc.job.Sink.(WatermarkStamper)
	if !ok {
		return true, nil
	}
	err := s.StampWatermark(ctx, itemID, fc.id(info.UID))
	switch {
	case err == nil:
		return true, nil
	case ctx.Err() != nil || errors.Is(err, ErrMailbox):
		return false, err
	}
	return false, fc.fail(&Message{ID: fc.id(info.UID), MessageInfo: info}, ActionStamp, err)
}

// claimedByOther reports whether the State, or a repair of this pass,
// records itemID as the copy of a UID other than uid. It reads every
// record, but only for the few items a repair finds.
func (fc *folderCopy) claimedByOther(itemID string, uid uint32) bool {
	if u, ok := fc.repairedItems[itemID]; ok {
		return u != uid
	}
	for u, r := range fc.st.Records {
		if r.ItemID == itemID && u != uid {
			return true
		}
	}
	return false
}

// copyAll repairs interrupted copies, then fetches and puts the rest:
// Options.MaxPutsPerMailbox Puts at once, fed by one fetching goroutine
// that holds at most Options.MaxBytesInFlightPerMailbox bytes of bodies.
func (fc *folderCopy) copyAll(ctx context.Context) error {
	// Found on the target: recorded without flags, which the flag pass
	// then sets from the source's, once.
	for _, a := range fc.adopted {
		if a.unstamped {
			// Begun first: should the stamp fail, the next run repairs
			// it (by Message-ID) instead of copying it.
			if err := fc.opts.State.Begin(ctx, fc.job.Mailbox, fc.id(a.info.UID)); err != nil {
				return fmt.Errorf("migrate: state: %w", err)
			}
			ok, err := fc.stamp(ctx, a.info, a.itemID)
			if err != nil {
				return err
			}
			if !ok {
				continue // reported; the next run finds it again
			}
		}
		if err := fc.opts.State.Commit(ctx, fc.job.Mailbox, fc.id(a.info.UID), a.itemID, nil); err != nil {
			return fmt.Errorf("migrate: state: %w", err)
		}
		fc.rep.FoundOnTarget++
		fc.emit(Event{Kind: EventMessageSkipped, Folder: fc.folder.Name, UID: a.info.UID, Reason: "already on the target"})
		fc.flagJobs = append(fc.flagJobs, FlagChange{ItemID: a.itemID, Flags: a.info.Flags})
		fc.flagInfo = append(fc.flagInfo, a.info)
	}
	fc.adopted = nil
	slices.Sort(fc.toCopy)
	var fetch []uint32
	for _, uid := range fc.toCopy {
		if info, ok := fc.begun[uid]; ok {
			itemID, unstamped, err := fc.repair(ctx, info)
			if err != nil {
				return fmt.Errorf("migrate: look for an earlier copy of UID %d: %w", uid, err)
			}
			if itemID != "" && unstamped {
				ok, err := fc.stamp(ctx, info, itemID)
				if err != nil {
					return err
				}
				if !ok {
					delete(fc.pending, uid)
					continue
				}
			}
			if itemID != "" {
				if err := fc.opts.State.Commit(ctx, fc.job.Mailbox, fc.id(uid), itemID, nil); err != nil {
					return err
				}
				if fc.repairedItems == nil {
					fc.repairedItems = map[string]uint32{}
				}
				fc.repairedItems[itemID] = uid
				fc.rep.Repaired++
				fc.emit(Event{Kind: EventMessageRepaired, Folder: fc.folder.Name, UID: uid})
				// Its flags are carried by the flag pass, as for any copied item.
				fc.flagJobs = append(fc.flagJobs, FlagChange{ItemID: itemID, Flags: info.Flags})
				fc.flagInfo = append(fc.flagInfo, info)
				delete(fc.pending, uid)
				continue
			}
		}
		fetch = append(fetch, uid)
	}
	if len(fetch) == 0 {
		return nil
	}

	g, gctx := errgroup.WithContext(ctx)
	workers := fc.opts.MaxPutsPerMailbox
	inFlight := semaphore.NewWeighted(fc.opts.MaxBytesInFlightPerMailbox)
	jobs := make(chan *Message)
	for range workers {
		g.Go(func() error {
			for msg := range jobs {
				err := fc.put(gctx, msg, nil)
				inFlight.Release(weight(msg.Size, fc.opts.MaxBytesInFlightPerMailbox))
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	// A UID stays pending until it is taken: its body read whole (or, when
	// streamed, its Put done). A delivery whose body breaks off leaves it
	// pending, so that the source's second delivery (imapsrc delivers a
	// message again after reconnecting) is the one put; a UID already
	// taken is never put twice.
	dispatch := func(msg *Message) error {
		size, ok := fc.pending[msg.UID]
		if !ok {
			return nil // not asked for, or taken already: never put twice
		}
		msg.ID = fc.id(msg.UID)
		if msg.Size <= 0 {
			msg.Size = size
		}
		_, again := fc.unread[msg.UID] // the Deduper saw its first delivery
		if fc.firstPass && !again && fc.seen(msg.MessageInfo) {
			delete(fc.pending, msg.UID)
			fc.rep.Duplicates++
			fc.emit(Event{Kind: EventMessageSkipped, Folder: fc.folder.Name, UID: msg.UID, Reason: "duplicate of " + msg.MessageID})
			return nil
		}
		w := weight(msg.Size, fc.opts.MaxBytesInFlightPerMailbox)
		if err := inFlight.Acquire(gctx, w); err != nil {
			return err
		}
		if workers == 1 || w == fc.opts.MaxBytesInFlightPerMailbox {
			// Alone in flight: stream it straight from the source.
			body := &sourceBody{r: msg.Body}
			streamed := *msg
			streamed.Body = body
			err := fc.put(gctx, &streamed, body)
			inFlight.Release(w)
			var cut *cutBodyError
			if errors.As(err, &cut) {
				fc.unread[msg.UID] = readFailure{info: msg.MessageInfo, err: cut.err}
				return nil // pending still
			}
			delete(fc.pending, msg.UID)
			delete(fc.unread, msg.UID)
			return err
		}
		body, err := io.ReadAll(msg.Body)
		if err != nil {
			inFlight.Release(w)
			if gctx.Err() != nil {
				return gctx.Err()
			}
			fc.unread[msg.UID] = readFailure{info: msg.MessageInfo, err: err}
			return nil // pending still
		}
		delete(fc.pending, msg.UID)
		delete(fc.unread, msg.UID)
		buffered := *msg
		buffered.Body = bytes.NewReader(body)
		select {
		case jobs <- &buffered:
			return nil
		case <-gctx.Done():
			inFlight.Release(w)
			return gctx.Err()
		}
	}
	var fetchErr error
	for start := 0; start < len(fetch) && fetchErr == nil; start += fc.opts.MaxUIDsPerFetch {
		batch := fetch[start:min(start+fc.opts.MaxUIDsPerFetch, len(fetch))]
		if err := fc.job.Source.Fetch(gctx, fc.folder, batch, dispatch); err != nil {
			fetchErr = fmt.Errorf("migrate: fetch from %q: %w", fc.folder.Name, err)
		}
	}
	close(jobs)
	if err := g.Wait(); err != nil {
		return err // a Put's error says more than the fetch it cancelled
	}
	if fetchErr != nil {
		return fetchErr
	}
	// Whatever is still pending was listed but not delivered whole: it
	// left the source between List and Fetch, or the source never
	// delivered again a message whose body broke off.
	for _, uid := range fetch {
		if _, ok := fc.pending[uid]; !ok {
			continue
		}
		delete(fc.pending, uid)
		if rf, ok := fc.unread[uid]; ok {
			delete(fc.unread, uid)
			err := fmt.Errorf("migrate: read UID %d from %q: %w", uid, fc.folder.Name, rf.err)
			if err := fc.fail(&Message{ID: fc.id(uid), MessageInfo: rf.info}, ActionCopy, err); err != nil {
				return err
			}
			continue
		}
		fc.rep.Vanished++
		fc.emit(Event{Kind: EventMessageSkipped, Folder: fc.folder.Name, UID: uid, Reason: "no longer on the source"})
	}
	return nil
}

// sourceBody reads a message's body from the source for a streamed Put
// and keeps the first error other than io.EOF, so that a Put that failed
// because the source broke off is told from one the sink refused.
type sourceBody struct {
	r   io.Reader
	err error
}

func (b *sourceBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

// cutBodyError is put's error for a streamed Put that failed because its
// body could not be read to its end: not the sink's failure, and not
// counted as one.
type cutBodyError struct{ err error }

func (e *cutBodyError) Error() string { return "body cut short: " + e.err.Error() }
func (e *cutBodyError) Unwrap() error { return e.err }

// weight is what a message of size bytes takes of the in-flight budget:
// its size, at least 1, at most the whole budget.
func weight(size, budget int64) int64 {
	return min(max(size, 1), budget)
}

// put copies one fetched message to the sink and commits it. Several run
// at once. body, when not nil, is what msg.Body streams from the source:
// a Put that failed because it broke off returns a *cutBodyError and
// counts nothing. A message the sink stored is committed even when ctx
// was cancelled meanwhile (the run interrupted while the Put was in
// flight): the State must know every item the sink holds, or a rerun
// copies it again.
func (fc *folderCopy) put(ctx context.Context, msg *Message, body *sourceBody) error {
	if fc.opts.Limiter != nil {
		if err := fc.opts.Limiter.WaitN(ctx, 1); err != nil {
			return err
		}
	}
	if err := fc.opts.State.Begin(ctx, fc.job.Mailbox, msg.ID); err != nil {
		return fmt.Errorf("migrate: state: %w", err)
	}
	itemID, err := fc.job.Sink.Put(ctx, fc.folderID, msg)
	degraded := err != nil && itemID != "" && errors.Is(err, ErrDegraded)
	if err != nil && !degraded {
		if ctx.Err() != nil {
			return err
		}
		if body != nil && body.err != nil {
			return &cutBodyError{err: body.err}
		}
		if errors.Is(err, ErrMailbox) {
			return err
		}
		return fc.fail(msg, ActionCopy, err)
	}
	if err := fc.opts.State.Commit(context.WithoutCancel(ctx), fc.job.Mailbox, msg.ID, itemID, msg.Flags); err != nil {
		return fmt.Errorf("migrate: state: %w", err)
	}
	if degraded {
		fc.degraded(msg, err)
		return nil
	}
	fc.mu.Lock()
	fc.rep.Copied++
	fc.rep.Bytes += msg.Size
	fc.mu.Unlock()
	fc.emit(Event{Kind: EventMessageCopied, Folder: fc.folder.Name, Target: fc.target.Key(), UID: msg.UID, Bytes: msg.Size})
	return nil
}

// degraded records a message the sink stored degraded, with its reason.
// It is not a failure: the message is there, its original attached.
func (fc *folderCopy) degraded(msg *Message, reason error) {
	fc.mu.Lock()
	fc.rep.Degraded++
	fc.mailboxRun.rep.Problems = append(fc.mailboxRun.rep.Problems, Problem{Folder: fc.folder.Name, UID: msg.UID,
		MessageID: msg.MessageID, Size: msg.Size, Action: ActionDegrade, Err: reason, Reason: reason.Error()})
	fc.mu.Unlock()
	fc.emit(Event{Kind: EventMessageDegraded, Folder: fc.folder.Name, Target: fc.target.Key(), UID: msg.UID, Bytes: msg.Size,
		Err: &MessageError{Mailbox: fc.job.Mailbox, Folder: fc.folder.Name, UID: msg.UID, Err: reason}})
	fc.opts.Logger.Warn("message stored degraded", "mailbox", fc.job.Mailbox, "folder", fc.folder.Name, "uid", msg.UID, "reason", reason)
}

// fail records an item failure (action: ActionCopy or ActionStamp) and
// applies the bad-item limit.
func (fc *folderCopy) fail(msg *Message, action string, err error) error {
	merr := &MessageError{Mailbox: fc.job.Mailbox, Folder: fc.folder.Name, UID: msg.UID, Err: err}
	fc.mu.Lock()
	fc.rep.Failed++
	fc.failures++
	failures := fc.failures
	fc.mailboxRun.rep.Problems = append(fc.mailboxRun.rep.Problems, Problem{Folder: fc.folder.Name, UID: msg.UID,
		MessageID: msg.MessageID, Size: msg.Size, Action: action, Err: err, Reason: err.Error()})
	fc.mu.Unlock()
	fc.emit(Event{Kind: EventMessageFailed, Folder: fc.folder.Name, UID: msg.UID, Err: merr})
	fc.opts.Logger.Warn("message failed", "mailbox", fc.job.Mailbox, "folder", fc.folder.Name, "uid", msg.UID, "action", action, "error", err)
	if fc.opts.BadItemLimit > 0 && failures > fc.opts.BadItemLimit {
		return fmt.Errorf("migrate: %d messages failed: %w", failures, ErrBadItemLimit)
	}
	return nil
}

// flagsFailed records a flag change that the sink did not take. It counts
// as a failure of the mailbox (the report says "completed with errors")
// but not against the bad-item limit, since the message itself is there.
func (fc *folderCopy) flagsFailed(info MessageInfo, err error) {
	fc.mu.Lock()
	fc.rep.FlagsFailed++
	fc.flagFailures++
	fc.mailboxRun.rep.Problems = append(fc.mailboxRun.rep.Problems, Problem{Folder: fc.folder.Name, UID: info.UID,
		MessageID: info.MessageID, Size: info.Size, Action: ActionSetFlags, Err: err, Reason: err.Error()})
	fc.mu.Unlock()
	fc.emit(Event{Kind: EventFlagsFailed, Folder: fc.folder.Name, UID: info.UID,
		Err: &MessageError{Mailbox: fc.job.Mailbox, Folder: fc.folder.Name, UID: info.UID, Err: err}})
	fc.opts.Logger.Warn("flags not carried", "mailbox", fc.job.Mailbox, "folder", fc.folder.Name, "uid", info.UID, "error", err)
}

// updateFlags carries flag changes to items copied earlier (the delta
// pass), in batches where the sink can take them.
func (fc *folderCopy) updateFlags(ctx context.Context) error {
	if len(fc.flagJobs) == 0 {
		return nil
	}
	var apply func(ctx context.Context, changes []FlagChange) []error
	switch s := fc.job.Sink.(type) {
	case BatchFlagSetter:
		apply = s.SetFlagsBatch
	case FlagSetter:
		apply = func(ctx context.Context, changes []FlagChange) []error {
			errs := make([]error, len(changes))
			for i, c := range changes {
				errs[i] = s.SetFlags(ctx, c.ItemID, c.Flags)
			}
			return errs
		}
	default:
		return nil
	}
	for start := 0; start < len(fc.flagJobs); start += flagBatch {
		end := min(start+flagBatch, len(fc.flagJobs))
		errs := apply(ctx, fc.flagJobs[start:end])
		for i, err := range errs {
			info, change := fc.flagInfo[start+i], fc.flagJobs[start+i]
			if err != nil {
				if ctx.Err() != nil || errors.Is(err, ErrMailbox) {
					return err
				}
				fc.flagsFailed(info, err)
				continue
			}
			if err := fc.opts.State.Commit(ctx, fc.job.Mailbox, fc.id(info.UID), change.ItemID, info.Flags); err != nil {
				return fmt.Errorf("migrate: state: %w", err)
			}
			fc.rep.FlagsUpdated++
			fc.emit(Event{Kind: EventFlagsUpdated, Folder: fc.folder.Name, UID: info.UID})
		}
	}
	return nil
}
