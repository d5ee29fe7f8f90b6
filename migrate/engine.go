package migrate

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Job is one mailbox to migrate: where from, where to, and its name in
// reports (usually the target address).
type Job struct {
	Mailbox string
	Source  Source
	Sink    Sink
}

// Engine migrates mailboxes. It is safe for concurrent use; its Options
// are fixed at creation.
type Engine struct {
	opts Options
}

// NewEngine returns an Engine with opts (nil means defaults).
func NewEngine(opts *Options) *Engine {
	return &Engine{opts: opts.withDefaults()}
}

// Mailbox migrates one mailbox with default options: the five-line way in.
func Mailbox(ctx context.Context, name string, src Source, dst Sink) (*MailboxReport, error) {
	r := NewEngine(nil).Migrate(ctx, Job{Mailbox: name, Source: src, Sink: dst})
	if r.Status == StatusFailed {
		return r, errors.New(r.Err)
	}
	return r, nil
}

// Run migrates every job, Options.Mailboxes at a time, and reports on all
// of them. A failed mailbox does not stop the others. Run returns early
// (with what was done so far) only when ctx is cancelled.
func (e *Engine) Run(ctx context.Context, jobs ...Job) *Report {
	rep := &Report{Started: time.Now(), Mailboxes: make([]*MailboxReport, len(jobs))}
	sem := make(chan struct{}, e.opts.Mailboxes)
	var wg sync.WaitGroup
	for i, job := range jobs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			rep.Mailboxes[i] = e.Migrate(ctx, job)
		}()
	}
	wg.Wait()
	rep.Finished = time.Now()
	return rep
}

// Migrate migrates one mailbox and reports on it.
func (e *Engine) Migrate(ctx context.Context, job Job) *MailboxReport {
	m := &mailboxRun{Engine: e, job: job, rep: &MailboxReport{Mailbox: job.Mailbox, Started: time.Now()},
		folderIDs: map[string]string{}}
	m.emit(Event{Kind: EventMailboxStarted})
	err := m.run(ctx)
	m.rep.Finished = time.Now()
	switch {
	case err != nil:
		m.rep.Status = StatusFailed
		m.rep.Err = err.Error()
	case m.failures > 0 || m.folderFailures > 0:
		m.rep.Status = StatusCompletedWithErrors
	default:
		m.rep.Status = StatusCompleted
	}
	m.emit(Event{Kind: EventMailboxDone, Err: err})
	e.opts.Logger.Info("mailbox done", "mailbox", job.Mailbox, "status", m.rep.Status, "error", m.rep.Err)
	return m.rep
}

// mailboxRun is the state of one mailbox's migration.
type mailboxRun struct {
	*Engine
	job            Job
	rep            *MailboxReport
	folderIDs      map[string]string // target path key -> sink folder id
	roles          map[string]Role   // target path key -> role, from the mapping
	failures       int
	folderFailures int
}

func (m *mailboxRun) emit(ev Event) {
	ev.Time = time.Now()
	ev.Mailbox = m.job.Mailbox
	m.opts.OnEvent(ev)
}

func (m *mailboxRun) run(ctx context.Context) error {
	folders, err := m.job.Source.Folders(ctx)
	if err != nil {
		return fmt.Errorf("migrate: list folders: %w", err)
	}
	targets, err := m.opts.Mapper.MapFolders(folders)
	if err != nil {
		return fmt.Errorf("migrate: map folders: %w", err)
	}
	if len(targets) != len(folders) {
		return fmt.Errorf("migrate: folder mapper returned %d targets for %d folders", len(targets), len(folders))
	}
	m.roles = map[string]Role{}
	for _, t := range targets {
		if !t.Skip && t.Role != RoleNone {
			m.roles[t.Key()] = t.Role
		}
	}
	for i, f := range folders {
		t := targets[i]
		fr := &FolderReport{Source: f.Name, Target: t.Key(), Skipped: t.Skip}
		m.rep.Folders = append(m.rep.Folders, fr)
		if t.Skip {
			continue
		}
		if err := m.copyFolder(ctx, f, t, fr); err != nil {
			fr.Err = err.Error()
			m.emit(Event{Kind: EventFolderDone, Folder: f.Name, Target: t.Key(), Err: err})
			if errors.Is(err, ErrMailbox) || errors.Is(err, ErrBadItemLimit) || ctx.Err() != nil {
				return err
			}
			m.folderFailures++
			continue
		}
		m.emit(Event{Kind: EventFolderDone, Folder: f.Name, Target: t.Key(), Count: fr.Copied, Bytes: fr.Bytes})
	}
	return nil
}

// ensure returns the sink id of the target folder at path, creating it and
// its parents (parents first) as needed; each path is ensured once a run.
func (m *mailboxRun) ensure(ctx context.Context, path []string) (string, error) {
	parent := ""
	for i := range path {
		key := strings.Join(path[:i+1], "/")
		if id, ok := m.folderIDs[key]; ok {
			parent = id
			continue
		}
		id, err := m.job.Sink.EnsureFolder(ctx, parent, path[i], m.roles[key])
		if err != nil {
			return "", fmt.Errorf("migrate: ensure folder %q: %w", key, err)
		}
		m.folderIDs[key] = id
		m.emit(Event{Kind: EventFolderCreated, Target: key})
		parent = id
	}
	return parent, nil
}

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
		return fmt.Errorf("migrate: folder %q: was %d, is %d; not copied again to avoid duplicates: %w",
			f.Name, st.UIDValidity, f.UIDValidity, ErrUIDValidityChanged)
	}
	fc := &folderCopy{mailboxRun: m, folder: f, target: t, folderID: folderID, st: st, rep: fr,
		pending: map[uint32]MessageInfo{}}
	if err := m.job.Source.List(ctx, f, fc.consider); err != nil {
		return fmt.Errorf("migrate: list %q: %w", f.Name, err)
	}
	m.emit(Event{Kind: EventFolderStarted, Folder: f.Name, Target: t.Key(), Count: len(fc.toCopy)})
	if err := fc.copyAll(ctx); err != nil {
		return err
	}
	return fc.updateFlags(ctx)
}

// folderCopy is the state of one folder's copy.
type folderCopy struct {
	*mailboxRun
	folder   Folder
	target   Target
	folderID string
	st       FolderState
	rep      *FolderReport
	toCopy   []uint32               // UIDs to fetch and put, ascending
	pending  map[uint32]MessageInfo // their metadata, until fetched
	flagJobs []flagJob
}

type flagJob struct {
	info   MessageInfo
	itemID string
}

func (fc *folderCopy) id(uid uint32) SourceID {
	return SourceID{Folder: fc.folder.Name, UIDValidity: fc.folder.UIDValidity, UID: uid}
}

// consider decides, for each listed message, whether it must be copied.
func (fc *folderCopy) consider(info MessageInfo) error {
	fc.rep.Listed++
	rec, known := fc.st.Records[info.UID]
	if known && rec.Committed() {
		fc.rep.AlreadyCopied++
		fc.seen(info)
		if !SameFlags(rec.Flags, info.Flags) {
			fc.flagJobs = append(fc.flagJobs, flagJob{info: info, itemID: rec.ItemID})
		}
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
		fc.pending[info.UID] = info
		fc.seen(info)
		return nil
	}
	if fc.seen(info) {
		fc.rep.Duplicates++
		fc.emit(Event{Kind: EventMessageSkipped, Folder: fc.folder.Name, UID: info.UID, Reason: "duplicate of " + info.MessageID})
		return nil
	}
	fc.toCopy = append(fc.toCopy, info.UID)
	fc.pending[info.UID] = info
	return nil
}

func (fc *folderCopy) seen(info MessageInfo) bool {
	return fc.opts.Deduper != nil && fc.opts.Deduper.Seen(fc.job.Mailbox, fc.target, info)
}

// repair looks for the sink item of a message whose copy began in an
// earlier run but was not committed: by watermark first, then by
// Message-ID (a sink may have stored the item but not yet its watermark).
// It returns the item id or "".
func (fc *folderCopy) repair(ctx context.Context, info MessageInfo) (string, error) {
	if w, ok := fc.job.Sink.(WatermarkFinder); ok {
		id, err := w.FindWatermark(ctx, fc.folderID, fc.id(info.UID))
		if err != nil || id != "" {
			return id, err
		}
	}
	if f, ok := fc.job.Sink.(MessageIDFinder); ok && info.MessageID != "" {
		ids, err := f.FindMessageID(ctx, fc.folderID, info.MessageID)
		if err != nil || len(ids) == 0 {
			return "", err
		}
		return ids[0], nil
	}
	return "", nil
}

func (fc *folderCopy) copyAll(ctx context.Context) error {
	sort.Slice(fc.toCopy, func(i, j int) bool { return fc.toCopy[i] < fc.toCopy[j] })
	var fetch []uint32
	for _, uid := range fc.toCopy {
		info := fc.pending[uid]
		if rec, ok := fc.st.Records[uid]; ok && !rec.Committed() {
			itemID, err := fc.repair(ctx, info)
			if err != nil {
				return fmt.Errorf("migrate: look for an earlier copy of UID %d: %w", uid, err)
			}
			if itemID != "" {
				if err := fc.opts.State.Commit(ctx, fc.job.Mailbox, fc.id(uid), itemID, nil); err != nil {
					return err
				}
				fc.rep.Repaired++
				fc.emit(Event{Kind: EventMessageRepaired, Folder: fc.folder.Name, UID: uid})
				// Its flags are carried by the flag pass, as for any copied item.
				fc.flagJobs = append(fc.flagJobs, flagJob{info: info, itemID: itemID})
				delete(fc.pending, uid)
				continue
			}
		}
		fetch = append(fetch, uid)
	}
	for start := 0; start < len(fetch); start += fc.opts.FetchBatch {
		batch := fetch[start:min(start+fc.opts.FetchBatch, len(fetch))]
		put := func(msg *Message) error { return fc.put(ctx, msg) }
		if err := fc.job.Source.Fetch(ctx, fc.folder, batch, put); err != nil {
			return fmt.Errorf("migrate: fetch from %q: %w", fc.folder.Name, err)
		}
	}
	// Whatever is still pending was listed but not delivered: it left the
	// source between List and Fetch.
	for _, uid := range fetch {
		if info, ok := fc.pending[uid]; ok {
			fc.rep.Vanished++
			delete(fc.pending, uid)
			fc.emit(Event{Kind: EventMessageSkipped, Folder: fc.folder.Name, UID: info.UID, Reason: "no longer on the source"})
		}
	}
	return nil
}

// put copies one fetched message to the sink and commits it.
func (fc *folderCopy) put(ctx context.Context, msg *Message) error {
	info, ok := fc.pending[msg.UID]
	if !ok {
		return nil // not asked for, or delivered twice: never put twice
	}
	delete(fc.pending, msg.UID)
	msg.ID = fc.id(msg.UID)
	if msg.MessageID == "" {
		msg.MessageID = info.MessageID
	}
	if fc.opts.Limiter != nil {
		if err := fc.opts.Limiter.WaitN(ctx, 1); err != nil {
			return err
		}
	}
	if err := fc.opts.State.Begin(ctx, fc.job.Mailbox, msg.ID); err != nil {
		return fmt.Errorf("migrate: state: %w", err)
	}
	itemID, err := fc.job.Sink.Put(ctx, fc.folderID, msg)
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, ErrMailbox) {
			return err
		}
		return fc.fail(msg, err)
	}
	if err := fc.opts.State.Commit(ctx, fc.job.Mailbox, msg.ID, itemID, msg.Flags); err != nil {
		return fmt.Errorf("migrate: state: %w", err)
	}
	fc.rep.Copied++
	fc.rep.Bytes += msg.Size
	fc.emit(Event{Kind: EventMessageCopied, Folder: fc.folder.Name, Target: fc.target.Key(), UID: msg.UID, Bytes: msg.Size})
	return nil
}

// fail records an item failure and applies the bad-item limit.
func (fc *folderCopy) fail(msg *Message, err error) error {
	fc.rep.Failed++
	fc.failures++
	merr := &MessageError{Mailbox: fc.job.Mailbox, Folder: fc.folder.Name, UID: msg.UID, Err: err}
	fc.mailboxRun.rep.Problems = append(fc.mailboxRun.rep.Problems, Problem{
		Folder: fc.folder.Name, UID: msg.UID, MessageID: msg.MessageID, Size: msg.Size, Reason: err.Error()})
	fc.emit(Event{Kind: EventMessageFailed, Folder: fc.folder.Name, UID: msg.UID, Err: merr})
	fc.opts.Logger.Warn("message not copied", "mailbox", fc.job.Mailbox, "folder", fc.folder.Name, "uid", msg.UID, "error", err)
	if fc.opts.BadItemLimit > 0 && fc.failures > fc.opts.BadItemLimit {
		return fmt.Errorf("migrate: %d messages failed: %w", fc.failures, ErrBadItemLimit)
	}
	return nil
}

// updateFlags carries flag changes to items copied earlier (the delta pass).
func (fc *folderCopy) updateFlags(ctx context.Context) error {
	setter, ok := fc.job.Sink.(FlagSetter)
	if !ok || len(fc.flagJobs) == 0 {
		return nil
	}
	for _, j := range fc.flagJobs {
		if err := setter.SetFlags(ctx, j.itemID, j.info.Flags); err != nil {
			if ctx.Err() != nil || errors.Is(err, ErrMailbox) {
				return err
			}
			fc.opts.Logger.Warn("flags not updated", "mailbox", fc.job.Mailbox, "folder", fc.folder.Name, "uid", j.info.UID, "error", err)
			continue
		}
		if err := fc.opts.State.Commit(ctx, fc.job.Mailbox, fc.id(j.info.UID), j.itemID, j.info.Flags); err != nil {
			return fmt.Errorf("migrate: state: %w", err)
		}
		fc.rep.FlagsUpdated++
		fc.emit(Event{Kind: EventFlagsUpdated, Folder: fc.folder.Name, UID: j.info.UID})
	}
	return nil
}
