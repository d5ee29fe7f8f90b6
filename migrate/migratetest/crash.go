package migratetest

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/boltstate"
)

// ErrKilled is what a State from KillCommit returns instead of committing.
var ErrKilled = errors.New("migratetest: killed between put and commit")

// KillCommit wraps st so that committing a message that kill matches
// fails with ErrKilled, as a process killed after the sink stored the
// message but before the State recorded it would leave things: the copy
// is begun in the State and present on the sink. Run the Engine again
// with st alone to test the repair.
func KillCommit(st migrate.State, kill func(migrate.SourceID) bool) migrate.State {
	return &killCommit{State: st, kill: kill}
}

type killCommit struct {
	migrate.State
	kill func(migrate.SourceID) bool
}

func (k *killCommit) Commit(ctx context.Context, mailbox string, id migrate.SourceID, itemID string, flags []migrate.Flag) error {
	if k.kill(id) {
		return ErrKilled
	}
	return k.State.Commit(ctx, mailbox, id, itemID, flags)
}

// CrashAndResume runs job with a State kept in a file (a boltstate.State
// in t.TempDir()) whose commits of the messages kill matches fail, as a
// process killed between the sink's Put and the State's Commit would
// leave things, and checks that the report shows it. Then, as a new
// process would, it reopens the file and runs job again (with resumed as
// its Sink when not nil: a new process has a new sink value) and returns
// that second report. The caller checks the sink: every message must be
// there exactly once.
func CrashAndResume(t testing.TB, job migrate.Job, kill func(migrate.SourceID) bool, resumed migrate.Sink) *migrate.Report {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	st, err := boltstate.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	rep := migrate.NewEngine(&migrate.Options{State: KillCommit(st, kill)}).Run(ctx, job)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if !rep.Lost() {
		t.Fatalf("the simulated crash did not show in the report: %+v", rep.Mailboxes[0])
	}
	st, err = boltstate.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if resumed != nil {
		job.Sink = resumed
	}
	return migrate.NewEngine(&migrate.Options{State: st}).Run(ctx, job)
}
