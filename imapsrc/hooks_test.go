package imapsrc_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailferry/mailferry/imapsrc"
	"github.com/mailferry/mailferry/imapsrc/imapsrctest"
	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

// imapHooks returns SourceHooks that change user's mailbox on the
// plaintext server at addr through a session of their own, as another
// client of the mailbox would while imapsrc reads it: the changes reach
// imapsrc's connections only as the server tells them.
func imapHooks(t testing.TB, addr, user, pass string) migratetest.SourceHooks {
	c := imapsrctest.Client(t, addr, user, pass)
	return migratetest.SourceHooks{
		Append: func(_ context.Context, f migrate.Folder, m migratetest.FixtureMessage) error {
			return appendTo(c, f.Name, m)
		},
		SetFlags: func(_ context.Context, f migrate.Folder, uid uint32, flags []migrate.Flag) error {
			if _, err := c.Select(f.Name, nil).Wait(); err != nil {
				return err
			}
			return c.Store(imap.UIDSetNum(imap.UID(uid)), &imap.StoreFlags{Op: imap.StoreFlagsSet, Silent: true, Flags: imapFlags(flags)}, nil).Close()
		},
		Expunge: func(_ context.Context, f migrate.Folder, uid uint32) error {
			return expungeUID(c, f.Name, uid)
		},
		ChangeUIDValidity: func(_ context.Context, f migrate.Folder) error {
			return recreate(c, f.Name)
		},
	}
}

// appendTo appends m to mailbox with its flags and internal date.
func appendTo(c *imapclient.Client, mailbox string, m migratetest.FixtureMessage) error {
	cmd := c.Append(mailbox, int64(len(m.Raw)), &imap.AppendOptions{Flags: imapFlags(m.Flags), Time: m.InternalDate})
	if _, err := cmd.Write(m.Raw); err != nil {
		return err
	}
	if err := cmd.Close(); err != nil {
		return err
	}
	_, err := cmd.Wait()
	return err
}

// expungeUID selects mailbox and removes its message uid
// (UID STORE +FLAGS (\Deleted), UID EXPUNGE).
func expungeUID(c *imapclient.Client, mailbox string, uid uint32) error {
	if _, err := c.Select(mailbox, nil).Wait(); err != nil {
		return err
	}
	set := imap.UIDSetNum(imap.UID(uid))
	if err := c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		return err
	}
	return c.UIDExpunge(set).Close()
}

// recreate gives mailbox (a folder without children) a new UIDVALIDITY:
// it is renamed, created again empty, and the renamed one deleted.
func recreate(c *imapclient.Client, mailbox string) error {
	if c.Mailbox() != nil {
		if err := c.Unselect().Wait(); err != nil {
			return err
		}
	}
	old := mailbox + "-old"
	if err := c.Rename(mailbox, old, nil).Wait(); err != nil {
		return err
	}
	if err := c.Create(mailbox, nil).Wait(); err != nil {
		return err
	}
	return c.Delete(old).Wait()
}

func imapFlags(flags []migrate.Flag) []imap.Flag {
	out := []imap.Flag{}
	for _, f := range flags {
		out = append(out, imap.Flag(f))
	}
	return out
}

// oneConn returns a Source logged in as alice on the plaintext server at
// addr, with opts and a single connection: every operation runs on the
// session the one before left a folder selected on.
func oneConn(t testing.TB, addr string, opts imapsrc.Options) *imapsrc.Source {
	opts.Addr, opts.Security, opts.Username, opts.Password = addr, imapsrc.Plaintext, "alice", "secret"
	opts.MaxConnections = 1
	src := imapsrc.New(&opts)
	closeSrc(t, src)
	return src
}

// TestFetchLeavesOutMessageExpungedMidFetch: a message expunged by
// another session after Fetch opened the folder, before its UID FETCH,
// is answered by Dovecot as "* n FETCH (UID n ... BODY[] NIL)" with
// OK [EXPUNGEISSUED]. Fetch leaves it out, without an error, and hands
// over the others whole; it never hands over an empty body.
func TestFetchLeavesOutMessageExpungedMidFetch(t *testing.T) {
	fx := migratetest.Sample()
	srv := startDovecot(t, "", fx)
	// One UID per command, one command at a time: the UID FETCH of the
	// second message is sent after fn has had the first.
	src := oneConn(t, srv.Addr(), imapsrc.Options{MaxUIDsPerFetch: 1, MaxBytesInFlight: 1})
	other := imapsrctest.Client(t, srv.Addr(), "alice", "secret")
	ctx := context.Background()
	f := inbox(t, src)
	var uids []uint32
	raw := map[string][]byte{}
	require.NoError(t, src.List(ctx, f, func(m migrate.MessageInfo) error { uids = append(uids, m.UID); return nil }))
	for _, m := range fx.Folders[0].Messages {
		raw[m.MessageID()] = m.Raw
	}
	require.GreaterOrEqual(t, len(uids), 3)
	gone := uids[1]
	var got []uint32
	err := src.Fetch(ctx, f, uids, func(m *migrate.Message) error {
		if m.UID == uids[0] {
			require.NoError(t, expungeUID(other, f.Name, gone))
		}
		body, err := io.ReadAll(m.Body)
		if err != nil {
			return err
		}
		got = append(got, m.UID)
		assert.Equal(t, string(raw[m.MessageID]), string(body), "body of UID %d (%q)", m.UID, m.MessageID)
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, slices.DeleteFunc(slices.Clone(uids), func(u uint32) bool { return u == gone }), got,
		"UIDs delivered after UID %d was expunged", gone)
}

// TestFoldersFreshForSelectedFolder: Folders reports a folder as it is
// now even when the connection it runs on has that folder selected (a
// STATUS of the selected folder is answered by Dovecot from the
// session's own, older view): the message count and HIGHESTMODSEQ after
// an append and a flag change by another session, the new UIDVALIDITY
// after the folder was created again. Probe too.
func TestFoldersFreshForSelectedFolder(t *testing.T) {
	fx := migratetest.Sample()
	srv := startDovecot(t, "", fx)
	src := oneConn(t, srv.Addr(), imapsrc.Options{})
	other := imapsrctest.Client(t, srv.Addr(), "alice", "secret")
	ctx := context.Background()
	list := func(f migrate.Folder) {
		t.Helper()
		require.NoError(t, src.List(ctx, f, func(migrate.MessageInfo) error { return nil }))
	}

	f := inbox(t, src)
	require.NotZero(t, f.ModSeq, "Dovecot has CONDSTORE")
	list(f) // INBOX stays selected on the one connection
	require.NoError(t, appendTo(other, f.Name, fx.Folders[1].Messages[0]))
	now := inbox(t, src)
	assert.Equal(t, f.Messages+1, now.Messages, "Messages after an append")
	assert.Greater(t, now.ModSeq, f.ModSeq, "ModSeq after an append")

	list(now)
	_, err := other.Select(f.Name, nil).Wait()
	require.NoError(t, err)
	require.NoError(t, other.Store(imap.UIDSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{"$Changed"}}, nil).Close())
	later := inbox(t, src)
	assert.Greater(t, later.ModSeq, now.ModSeq, "ModSeq after a flag change")

	p := folderNamed(t, src, "Projects/2024")
	list(p)
	require.NoError(t, recreate(other, p.Name))
	q := folderNamed(t, src, "Projects/2024")
	assert.NotEqual(t, p.UIDValidity, q.UIDValidity, "UIDVALIDITY after the folder was created again")
	assert.Equal(t, 0, q.Messages, "Messages of the folder created again")

	// Probe asks STATUS on the Source's connection too.
	list(later)
	require.NoError(t, appendTo(other, f.Name, fx.Folders[1].Messages[1]))
	res, err := src.Probe(ctx)
	require.NoError(t, err)
	i := slices.IndexFunc(res.Folders, func(g migrate.Folder) bool { return g.Name == f.Name })
	require.GreaterOrEqual(t, i, 0, "Probe lists %q", f.Name)
	assert.Equal(t, later.Messages+1, res.Folders[i].Messages, "Messages Probe reports after an append")
}

// TestFoldersWithoutUnselect: on a server without UNSELECT, Folders
// still reports the folder an earlier operation left selected as it is
// now, and closes it without CLOSE, which go-imap's server answers by
// expunging the messages marked \Deleted even from a folder opened with
// EXAMINE: they are all still there afterwards.
func TestFoldersWithoutUnselect(t *testing.T) {
	for _, server := range []string{"dovecot", "mem"} {
		t.Run(server, func(t *testing.T) {
			fx := migratetest.Sample()
			var addr string
			if server == "dovecot" {
				addr = startDovecot(t, "", fx).Addr()
			} else {
				// IMAP4rev1 alone: IMAP4rev2 includes UNSELECT.
				addr = startMemOpts(t, &imapsrctest.MemOptions{Users: map[string]string{"alice": "secret"},
					Caps: imap.CapSet{imap.CapIMAP4rev1: {}}}).Addr()
				seed(t, addr, "alice", "secret", fx)
			}
			src := oneConn(t, withoutCap(t, addr, "UNSELECT"), imapsrc.Options{})
			other := imapsrctest.Client(t, addr, "alice", "secret")
			ctx := context.Background()

			f := inbox(t, src)
			var uids []uint32
			require.NoError(t, src.List(ctx, f, func(m migrate.MessageInfo) error { uids = append(uids, m.UID); return nil }))
			require.NotEmpty(t, uids)
			require.NoError(t, appendTo(other, f.Name, fx.Folders[1].Messages[0]))
			_, err := other.Select(f.Name, nil).Wait()
			require.NoError(t, err)
			require.NoError(t, other.Store(imap.UIDSetNum(imap.UID(uids[0])), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close())

			now := inbox(t, src) // INBOX is selected on the one connection
			assert.Equal(t, len(uids)+1, now.Messages, "Messages after an append")
			var after []migrate.MessageInfo
			require.NoError(t, src.List(ctx, now, func(m migrate.MessageInfo) error { after = append(after, m); return nil }))
			require.Len(t, after, len(uids)+1, "messages listed after Folders")
			assert.True(t, migrate.ContainsFlag(after[0].Flags, migrate.FlagDeleted), "UID %d has \\Deleted: %v", after[0].UID, after[0].Flags)
			assert.Equal(t, len(uids)+1, inbox(t, src).Messages, "Messages, again")
		})
	}
}

// withoutCap starts a proxy to the IMAP server at target that leaves the
// capability c out of what the server announces, and returns its address.
func withoutCap(t testing.TB, target, c string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				client.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, client, server)
			mu.Unlock()
			go func() { _, _ = io.Copy(server, client); server.Close() }()
			go func() {
				defer client.Close()
				r := bufio.NewReader(server)
				for {
					line, err := r.ReadSlice('\n')
					if bytes.Contains(line, []byte("CAPABILITY")) {
						line = bytes.ReplaceAll(line, []byte(" "+c+" "), []byte(" "))
						line = bytes.ReplaceAll(line, []byte(" "+c+"]"), []byte("]"))
						line = bytes.ReplaceAll(line, []byte(" "+c+"\r\n"), []byte("\r\n"))
					}
					if _, werr := client.Write(line); werr != nil {
						return
					}
					if err != nil && err != bufio.ErrBufferFull {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// TestFetchDoesNotTrustSelection: a Fetch on a connection that still has
// the folder selected from an earlier List, with the folder's old
// UIDVALIDITY, fails with ErrUIDValidityChanged once the folder was
// created again by another session, before handing anything over; with
// the new UIDVALIDITY it works, and a later Fetch, once the selection
// that one made is no longer trusted, sees the folder created again. The
// in-memory server keeps serving the old folder to a session that has it
// selected; Dovecot answers for its messages with NIL bodies, or fails
// the session.
func TestFetchDoesNotTrustSelection(t *testing.T) {
	for _, server := range []string{"dovecot", "mem"} {
		t.Run(server, func(t *testing.T) {
			fx := migratetest.Sample()
			var addr string
			if server == "dovecot" {
				addr = startDovecot(t, "", fx).Addr()
			} else {
				addr = startMem(t, "alice", "secret")
				seed(t, addr, "alice", "secret", fx)
			}
			src := oneConn(t, addr, imapsrc.Options{})
			other := imapsrctest.Client(t, addr, "alice", "secret")
			ctx := context.Background()

			old := folderNamed(t, src, "Projects/2024")
			var uids []uint32
			require.NoError(t, src.List(ctx, old, func(m migrate.MessageInfo) error { uids = append(uids, m.UID); return nil }))
			require.NotEmpty(t, uids)
			require.NoError(t, recreate(other, old.Name))
			require.NoError(t, appendTo(other, old.Name, fx.Folders[0].Messages[0]))

			calls := 0
			err := src.Fetch(ctx, old, uids, func(*migrate.Message) error { calls++; return nil })
			assert.True(t, errors.Is(err, migrate.ErrUIDValidityChanged), "Fetch with the old UIDVALIDITY: err = %v, want ErrUIDValidityChanged", err)
			assert.Zero(t, calls, "messages handed over")

			now := folderNamed(t, src, "Projects/2024")
			require.NotEqual(t, old.UIDValidity, now.UIDValidity)
			var got []string
			require.NoError(t, src.Fetch(ctx, now, []uint32{1}, func(m *migrate.Message) error { got = append(got, m.MessageID); return nil }))
			assert.Equal(t, []string{fx.Folders[0].Messages[0].MessageID()}, got, "Fetch with the new UIDVALIDITY")

			// Back-to-back Fetch calls share the selection a Fetch made,
			// but only for a while (a second or so): a Fetch after that
			// sees the folder created again.
			require.NoError(t, recreate(other, now.Name))
			start := time.Now()
			for {
				err := src.Fetch(ctx, now, []uint32{1}, func(*migrate.Message) error { return nil })
				if errors.Is(err, migrate.ErrUIDValidityChanged) {
					t.Logf("UIDVALIDITY change seen by Fetch after %v", time.Since(start).Round(time.Millisecond))
					break
				}
				require.NoError(t, err)
				require.Less(t, time.Since(start), 10*time.Second, "Fetch still trusts its selection")
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}

// TestFetchExpungeIssuedNo: a server that refuses a FETCH of messages
// another session expunged with NO [EXPUNGEISSUED] (RFC 5530, RFC 2180
// section 4.1.2), after sending the messages that still exist, has Fetch
// hand those over and leave the others out, without an error and without
// reconnecting.
func TestFetchExpungeIssuedNo(t *testing.T) {
	h := startHostile(t, bigFixture(3))
	src := imapsrc.New(&imapsrc.Options{Addr: h.addr, Security: imapsrc.Plaintext, Username: "alice", Password: "secret"})
	closeSrc(t, src)
	f := inbox(t, src)
	msgs := []fakeMessage{
		{uid: 1, declared: 4000, sent: 4000, head: "Message-ID: <one@example.org>\r\n"},
		{uid: 2, declared: 4000, sent: 4000, head: "Message-ID: <two@example.org>\r\n"},
	}
	h.mu.Lock()
	h.fetch = func(w *imapserver.FetchWriter, uids imap.UIDSet, opts *imap.FetchOptions) error {
		if err := writeFetch(w, uids, opts, msgs); err != nil {
			return err
		}
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: "EXPUNGEISSUED", Text: "Some of the requested messages no longer exist"}
	}
	h.mu.Unlock()
	var got []string
	err := src.Fetch(context.Background(), f, []uint32{1, 2, 3}, func(m *migrate.Message) error {
		body, err := io.ReadAll(m.Body)
		assert.Len(t, body, 4000, "body of UID %d", m.UID)
		got = append(got, m.MessageID)
		return err
	})
	require.NoError(t, err)
	assert.Equal(t, []string{"<one@example.org>", "<two@example.org>"}, got)
	assert.Zero(t, src.Reconnects(), "reconnects")
}
