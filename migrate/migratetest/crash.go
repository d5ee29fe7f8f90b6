package migratetest

import (
	"context"
	"errors"

	"github.com/mailferry/mailferry/migrate"
)

// ErrKilled is what a State from KillCommit returns instead of committing.
var ErrKilled = errors.New("migratetest: killed between put and commit")

// KillCommit wraps st so that committing a message that kill matches
// fails with ErrKilled, as a process killed after the sink stored the
// message but before the journal recorded it would leave things: the copy
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
