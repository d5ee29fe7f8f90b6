package migrate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
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
	opts    Options
	eventMu sync.Mutex // serializes opts.OnEvent
}

// NewEngine returns an Engine with opts (nil means defaults).
func NewEngine(opts *Options) *Engine {
	return &Engine{opts: opts.withDefaults()}
}

// Mailbox migrates one mailbox with default options: the five-line way in.
func Mailbox(ctx context.Context, name string, src Source, dst Sink) (*MailboxReport, error) {
	r := NewEngine(nil).Migrate(ctx, Job{Mailbox: name, Source: src, Sink: dst})
	if r.Status == StatusFailed {
		return r, r.Err
	}
	return r, nil
}

// Run migrates every job, Options.MaxMailboxes at a time, and reports on
// all of them. A failed mailbox does not stop the others. When ctx is
// cancelled, the mailboxes in progress stop at once (a message that a Put
// in flight stored is still recorded in the State, so that a rerun does
// not copy it again) and every job not yet begun is still started but
// fails at its first step, so the report has an entry for each job, in
// order, with ctx's error for those that did not finish.
func (e *Engine) Run(ctx context.Context, jobs ...Job) *Report {
	rep := &Report{Started: time.Now(), Mailboxes: make([]*MailboxReport, len(jobs))}
	var g errgroup.Group
	g.SetLimit(e.opts.MaxMailboxes)
	for i, job := range jobs {
		g.Go(func() error {
			rep.Mailboxes[i] = e.Migrate(ctx, job)
			return nil
		})
	}
	g.Wait() // every job's outcome is in its report
	rep.Finished = time.Now()
	return rep
}

// Migrate migrates one mailbox and reports on it.
func (e *Engine) Migrate(ctx context.Context, job Job) *MailboxReport {
	m := &mailboxRun{Engine: e, job: job, rep: &MailboxReport{Mailbox: job.Mailbox, Started: time.Now()},
		folderIDs: map[string]string{}}
	m.emit(Event{Kind: EventMailboxStarted})
	// Backends report their own events through the context, so that they
	// reach this run and no other.
	err := m.run(WithObserver(ctx, m.emit))
	m.rep.Finished = time.Now()
	m.rep.Throttled, m.rep.Reconnects = m.throttled, m.reconnects
	switch {
	case err != nil:
		m.rep.Status = StatusFailed
		m.rep.Err, m.rep.Error = err, err.Error()
	case m.failures > 0 || m.flagFailures > 0 || m.folderFailures > 0:
		m.rep.Status = StatusCompletedWithErrors
	default:
		m.rep.Status = StatusCompleted
	}
	m.emit(Event{Kind: EventMailboxDone, Err: err})
	e.opts.Logger.Info("mailbox done", "mailbox", job.Mailbox, "status", m.rep.Status, "error", m.rep.Error)
	return m.rep
}

// mailboxRun is the state of one mailbox's migration.
type mailboxRun struct {
	*Engine
	job            Job
	rep            *MailboxReport
	folderIDs      map[string]string // target path key -> sink folder id
	roles          map[string]Role   // target path key -> role, from the mapping
	folderFailures int

	// mu guards what the Put workers and backend events change: failures,
	// rep.Problems, rep.Notices, throttled and reconnects.
	mu           sync.Mutex
	failures     int // messages not copied (the bad-item limit counts these)
	flagFailures int // flag changes not carried
	throttled    int
	reconnects   int
}

func (m *mailboxRun) emit(ev Event) {
	ev.Time = time.Now()
	ev.Mailbox = m.job.Mailbox
	switch ev.Kind {
	case EventThrottled, EventReconnected, EventNotice:
		m.mu.Lock()
		switch {
		case ev.Kind == EventThrottled:
			m.throttled++
		case ev.Kind == EventReconnected:
			m.reconnects++
		case !slices.Contains(m.rep.Notices, ev.Reason):
			m.rep.Notices = append(m.rep.Notices, ev.Reason)
		}
		m.mu.Unlock()
	}
	m.eventMu.Lock()
	defer m.eventMu.Unlock()
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
		if f.Err != nil { // the source cannot read it: reported, not copied
			err := fmt.Errorf("migrate: folder %q: %w", f.Name, f.Err)
			fr.Err, fr.Error = err, err.Error()
			m.emit(Event{Kind: EventFolderDone, Folder: f.Name, Target: t.Key(), Err: err})
			m.folderFailures++
			continue
		}
		if err := m.copyFolder(ctx, f, t, fr); err != nil {
			fr.Err, fr.Error = err, err.Error()
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
		key := Target{Path: path[:i+1]}.Key()
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
