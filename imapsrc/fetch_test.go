package imapsrc_test

import (
	"bytes"
	"context"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailferry/mailferry/imapsrc"
	"github.com/mailferry/mailferry/internal/dovecottest"
	"github.com/mailferry/mailferry/migrate"
)

func TestFetchDovecotBodiesAndSeen(t *testing.T) {
	fx := bigFixture(12)
	srv := startDovecot(t, "", fx)
	src := imapsrc.New(&imapsrc.Options{Addr: srv.Addr(), Security: imapsrc.Plaintext, Username: "alice", Password: "secret", MaxUIDsPerFetch: 5})
	closeSrc(t, src)
	f := inbox(t, src)
	uids := []uint32{12, 1, 5, 5, 40, 7} // unordered, duplicated, one missing
	var got []uint32
	err := src.Fetch(context.Background(), f, uids, func(m *migrate.Message) error {
		got = append(got, m.UID)
		body, err := io.ReadAll(m.Body)
		if err != nil {
			return err
		}
		want := fx.Folders[0].Messages[m.UID-1].Raw
		assert.True(t, bytes.Equal(want, body), "UID %d: body differs (%d bytes, want %d)", m.UID, len(body), len(want))
		assert.Equal(t, int64(len(want)), m.Size, "UID %d: size", m.UID)
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, []uint32{1, 5, 7, 12}, got, "delivered")
	require.NoError(t, src.List(context.Background(), f, func(m migrate.MessageInfo) error {
		wasSeen := migrate.ContainsFlag(fx.Folders[0].Messages[m.UID-1].Flags, migrate.FlagSeen)
		assert.Equal(t, wasSeen, m.HasFlag(migrate.FlagSeen), "UID %d: flags %v after Fetch", m.UID, m.Flags)
		return nil
	}))
}

// dropSession kills the Dovecot session serving the test. Dovecot hands a
// new login to its imap process a moment after the client sees the
// login's answer, so it waits (up to 2 s) for there to be one to kill.
func dropSession(t *testing.T, srv *dovecottest.Server) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); srv.DropConnections() == 0; {
		if time.Now().After(deadline) {
			t.Error("no session to drop")
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
}

// TestDropDuringFetch kills the Dovecot session twice while Fetch is
// streaming: every message must still arrive exactly once, intact, with
// its Message-ID, and each drop be noticed and reported. Little is in
// flight, so that the messages after a drop cannot all be sitting in the
// socket already.
func TestDropDuringFetch(t *testing.T) {
	fetchThroughDrops(t, 30, &imapsrc.Options{MaxUIDsPerFetch: 4, MaxBytesInFlight: 8 << 10}, 6, 19)
}

// TestDropDuringPipelinedFetch is the same with several UID FETCH
// commands in flight when the session dies.
func TestDropDuringPipelinedFetch(t *testing.T) {
	fetchThroughDrops(t, 60, &imapsrc.Options{MaxUIDsPerFetch: 5, MaxBytesInFlight: 64 << 10}, 7, 33)
}

// fetchThroughDrops fetches n messages from a Dovecot with opts (its
// address and credentials filled in), killing the session once when each
// of dropAt is delivered.
func fetchThroughDrops(t *testing.T, n int, opts *imapsrc.Options, dropAt ...uint32) {
	fx := bigFixture(n)
	srv := startDovecot(t, "", fx)
	opts.Addr, opts.Security, opts.Username, opts.Password = srv.Addr(), imapsrc.Plaintext, "alice", "secret"
	src := imapsrc.New(opts)
	closeSrc(t, src)
	f := inbox(t, src)
	var events int
	ctx := migrate.WithObserver(context.Background(), func(ev migrate.Event) {
		assert.Equal(t, migrate.EventReconnected, ev.Kind, "event")
		events++
	})
	uids := uidsUpTo(n)
	count := map[uint32]int{}
	dropped := map[uint32]bool{}
	err := src.Fetch(ctx, f, uids, func(m *migrate.Message) error {
		if slices.Contains(dropAt, m.UID) && !dropped[m.UID] {
			dropped[m.UID] = true
			dropSession(t, srv)
		}
		body, err := io.ReadAll(m.Body)
		if err != nil {
			return err // the connection broke mid-body: Fetch retries it
		}
		want := fx.Folders[0].Messages[m.UID-1]
		assert.True(t, bytes.Equal(want.Raw, body), "UID %d: body differs (%d bytes, want %d)", m.UID, len(body), len(want.Raw))
		assert.Equal(t, want.MessageID(), m.MessageID, "UID %d: Message-ID", m.UID)
		count[m.UID]++
		return nil
	})
	require.NoError(t, err, "Fetch")
	for _, u := range uids {
		assert.Equal(t, 1, count[u], "UID %d: times delivered", u)
	}
	assert.GreaterOrEqual(t, src.Reconnects(), len(dropAt), "Reconnects")
	assert.Equal(t, src.Reconnects(), events, "events, one per reconnect")
}
